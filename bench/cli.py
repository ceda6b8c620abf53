"""`uv run --group bench python -m bench [--smoke | --full] [options]`: run the benchmark and write the report.

Sizes (see `SIZES`): the default run (1,000,000 agents, a 100,000-user import, every workload
bounded in time) finishes in about 15 minutes on 2 cores; `--full` runs more requests per
workload and longer time limits, and takes much longer; `--smoke` is
the tiny run CI uses to keep the bench working (no figure from it means anything).

Writes `<out>/benchmarks.md` and `<out>/benchmarks.png` (default out: docs/, or the work folder
for --smoke) and `<work>/results.json` (every figure, machine facts, the command), from which
`--report-only` re-renders the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import facts

REPO_ROOT = Path(__file__).resolve().parent.parent
PEERS = ("floor", "scim2-server", "jackson-mem", "jackson-postgres", "jackson-sqlite")
DATABASES = ("sqlite", "postgresql")
PARTS = ("saml", "scim", "scale")


@dataclass(frozen=True)
class Sizes:
    saml_responses: int
    """Responses validated in-process by each of the three validators."""
    saml_sign_ins: int
    """Sign-ins POSTed to the ACS over HTTP, per database."""
    saml_users: int
    """Distinct agents among those sign-ins (each created by JIT on its first)."""
    scim_users: int
    """N: agents taken through Okta's five requests, per target."""
    concurrency: int
    """K: concurrent HTTP clients."""
    scale_agents: int
    scale_lookups: int
    scale_pages: int
    scale_patches: int
    import_users: int


SIZES = {
    "smoke": Sizes(
        saml_responses=20,
        saml_sign_ins=20,
        saml_users=5,
        scim_users=20,
        concurrency=4,
        scale_agents=2_000,
        scale_lookups=30,
        scale_pages=3,
        scale_patches=20,
        import_users=60,
    ),
    "default": Sizes(
        saml_responses=1_000,
        saml_sign_ins=600,
        saml_users=200,
        scim_users=2_000,
        concurrency=16,
        scale_agents=1_000_000,
        scale_lookups=600,
        scale_pages=5,
        scale_patches=300,
        import_users=100_000,
    ),
    "full": Sizes(
        saml_responses=5_000,
        saml_sign_ins=5_000,
        saml_users=500,
        scim_users=2_000,
        concurrency=16,
        scale_agents=1_000_000,
        scale_lookups=3_000,
        scale_pages=20,
        scale_patches=1_000,
        import_users=100_000,
    ),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for CI (seconds)")
    size.add_argument(
        "--full", action="store_true", help="more requests per workload, longer time limits (long)"
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--databases",
        default=None,
        help="deskgate's databases, of sqlite,postgresql (default: both; --smoke: sqlite)",
    )
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="a PostgreSQL server to create the bench's databases on (SQLAlchemy URL); "
        "default: a throwaway durable cluster started with .ci/postgres.sh",
    )
    parser.add_argument(
        "--peers",
        default=None,
        help=f"peers to measure, of {','.join(PEERS)}, or none (default: all but jackson-sqlite; --full: "
        "all, jackson-sqlite when its native driver is built, see --build-native; --smoke: "
        "floor,scim2-server,jackson-mem)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never run npm (Jackson is then skipped if missing)",
    )
    parser.add_argument(
        "--build-native",
        action="store_true",
        help="compile better-sqlite3 for Jackson's SQLite engine if needed (~3 min)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="deskgate's uvicorn workers (default: as `deskgate serve`, one per CPU core)",
    )
    parser.add_argument(
        "--no-reuse-port",
        action="store_true",
        help="plain `uvicorn --workers` (one shared socket) instead of a SO_REUSEPORT socket per worker",
    )
    parser.add_argument("--scim-users", type=int, help="N for the Okta workload")
    parser.add_argument("--concurrency", type=int, help="K concurrent clients")
    parser.add_argument("--scale-agents", type=int, help="agents in the scale account")
    parser.add_argument("--import-users", type=int, help="users in the RSS import")
    parser.add_argument(
        "--saml-responses", type=int, help="responses for the in-process SAML figures"
    )
    parser.add_argument(
        "--sign-response",
        action="store_true",
        help="Okta also signs the Response (two signatures per response)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy (in the bench group) records deskgate's workers during its SCIM, SAML "
        "and import runs; summaries go to <work>/profiles/ and the report's Profiles section",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where benchmarks.md and .png go (default docs/)"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="scratch folder (default .bench-work/)"
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        metavar="RESULTS_JSON",
        help="re-render the report from a results.json, run nothing",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="RESULTS_JSON",
        help="an earlier run's results.json (copy it out of the work folder first): the report "
        "then shows its figures and profiles beside this run's",
    )
    return parser


def _csv(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if item not in allowed:
            raise SystemExit(f"bench: unknown {what} {item!r} (choose from {', '.join(allowed)})")
    return items


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from bench import report

    if args.report_only is not None:
        results = json.loads(args.report_only.read_text())
        if args.before is not None:
            results["before"] = report.before_summary(json.loads(args.before.read_text()))
        out = args.out or REPO_ROOT / "docs"
        report.write(results, out)
        log(f"wrote {out / report.MARKDOWN} and {out / report.CHART}")
        return

    if args.workers is None:
        from deskgate.web.server import default_workers

        args.workers = default_workers()
    size = "smoke" if args.smoke else "full" if args.full else "default"
    base = SIZES[size]
    sizes = dataclasses.replace(
        base,
        scim_users=args.scim_users or base.scim_users,
        concurrency=args.concurrency or base.concurrency,
        scale_agents=args.scale_agents or base.scale_agents,
        import_users=args.import_users or base.import_users,
        saml_responses=args.saml_responses or base.saml_responses,
    )
    work = (args.work or REPO_ROOT / ".bench-work").resolve()
    out = (args.out or (work if args.smoke else REPO_ROOT / "docs")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    databases = _csv(
        args.databases or ("sqlite" if args.smoke else ",".join(DATABASES)), DATABASES, "database"
    )
    default_peers = {
        "smoke": "floor,scim2-server,jackson-mem",
        "default": "floor,scim2-server,jackson-mem,jackson-postgres",
        "full": ",".join(PEERS),
    }[size]
    peers = [] if args.peers == "none" else _csv(args.peers or default_peers, PEERS, "peer")
    parts = _csv(args.only, PARTS, "part")

    run = Run(
        args=args,
        size=size,
        sizes=sizes,
        work=work,
        databases=databases,
        peers=peers,
        explicit_peers=args.peers is not None,
    )
    started = time.monotonic()
    if "scim" in parts and any(peer.startswith("jackson") for peer in peers):
        # Installing Jackson (npm, ~25-45 s) would disturb measurements: do it before any, or, in a
        # smoke run (whose figures mean nothing), beside them.
        run.prepare_jackson(background=args.smoke)
    # SIGTERM (a CI timeout) must still stop every server and PostgreSQL: turn it into an exception.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    if args.before is not None:
        run.results["before"] = report.before_summary(json.loads(args.before.read_text()))
    try:
        run.results["machine"] = facts.collect()
        if "saml" in parts:
            run.step("SAML", run.saml)
        if "scim" in parts:
            run.step("SCIM", run.scim)
        if "scale" in parts:
            run.step("scale", run.scale)
    finally:
        run.close()
        run.results["duration_seconds"] = round(time.monotonic() - started, 1)
        run.results["machine"]["load_average_at_end"] = [round(x, 2) for x in facts.load_average()]
        run.results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        (work / "results.json").write_text(json.dumps(run.results, indent=1, default=str))
    report.write(run.results, out)
    log(
        f"\nwrote {out / report.MARKDOWN}, {out / report.CHART} and {work / 'results.json'} "
        f"in {run.results['duration_seconds']:.0f}s"
    )
    problems = report.problems(run.results)
    for problem in problems:
        log(f"PROBLEM: {problem}")
    if problems:
        sys.exit(1)


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _command_line() -> str:
    return "uv run --group bench python -m bench" + (
        "" if len(sys.argv) <= 1 else " " + shlex.join(sys.argv[1:])
    )


class Run:
    """One benchmark run: its settings, the databases it made, and everything it measured."""

    def __init__(
        self,
        *,
        args: argparse.Namespace,
        size: str,
        sizes: Sizes,
        work: Path,
        databases: list[str],
        peers: list[str],
        explicit_peers: bool,
    ) -> None:
        self.args = args
        self.size = size
        self.sizes = sizes
        self.work = work
        self.logs = work / "logs"
        self.databases = databases
        self.peers = peers
        self.explicit_peers = explicit_peers
        self.postgres: Any = None
        self.postgres_error: str | None = None
        self._jackson_install: threading.Thread | None = None
        self._jackson_problem: Exception | None = None
        self.results: dict[str, Any] = {
            "command": _command_line(),
            "size": size,
            "sizes": dataclasses.asdict(sizes),
            "workers": args.workers,
            "reuse_port": not args.no_reuse_port,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "unavailable": [],
            "failures": [],
        }

    # --- plumbing -------------------------------------------------------------------------

    def deadline(self, *, import_: bool = False) -> float:
        """Seconds a workload may take before its clients stop taking new users (the result then
        says `stopped_early` and how many users were done): keeps a default run near 15 minutes
        even against a slow server. The default run's 100,000-user import may take twice the 60 s
        target before it is cut short."""
        if self.size == "full":
            return 3600.0 if import_ else 600.0
        return 120.0 if import_ else 100.0

    def prepare_jackson(self, *, background: bool) -> None:
        from bench import scim_targets

        def install() -> None:
            try:
                scim_targets.ensure_jackson(allow_install=not self.args.no_install)
            except scim_targets.Unavailable as problem:
                self._jackson_problem = problem

        self._jackson_install = threading.Thread(target=install, daemon=True)
        self._jackson_install.start()
        if not background:
            self._jackson_install.join()

    def step(self, name: str, action: Callable[[], None]) -> None:
        log(f"\n== {name} ==")
        started = time.monotonic()
        try:
            action()
        except KeyboardInterrupt:
            raise
        except Exception as problem:  # one broken part must not lose the others' figures
            log(traceback.format_exc())
            self.results["failures"].append(f"{name}: {type(problem).__name__}: {problem}")
        log(f"   ({name} took {time.monotonic() - started:.0f}s)")

    def unavailable(self, what: str, reason: str) -> None:
        log(f"   {what}: not measured: {reason}")
        self.results["unavailable"].append({"what": what, "reason": reason})

    def database_url(self, database: str, name: str) -> str | None:
        """A fresh database for one measurement, or None (reported) when PostgreSQL is unavailable."""
        from bench.databases import Postgres, PostgresUnavailable, sqlite_url

        if database == "sqlite":
            return sqlite_url(self.work / f"{name}.db")
        if self.postgres is None and self.postgres_error is None:
            try:
                if self.args.postgres_url:
                    self.postgres = Postgres(server_url=self.args.postgres_url)
                else:
                    log("   starting a throwaway PostgreSQL (.ci/postgres.sh), made durable ...")
                    self.postgres = Postgres.start_throwaway(self.work)
                self.results["postgresql"] = self.postgres.settings()
            except (PostgresUnavailable, OSError, subprocess.SubprocessError, Exception) as problem:  # noqa: BLE001
                self.postgres_error = f"{type(problem).__name__}: {problem}"
                self.unavailable("PostgreSQL", self.postgres_error)
        if self.postgres is None:
            return None
        return self.postgres.create_database(f"bench_{name}")

    def close(self) -> None:
        if self.postgres is not None:
            try:
                self.postgres.close()
            except Exception as problem:  # noqa: BLE001 - cleanup must not hide the results
                log(f"   could not stop/clean PostgreSQL: {problem}")

    @contextmanager
    def profiled(self, server: Any, name: str) -> Iterator[None]:
        """py-spy on the server's workers while the block runs (with --profile)."""
        if not self.args.profile:
            yield
            return
        from bench import profiling

        with profiling.record(server, self.work / "profiles", name, self.results):
            yield

    # --- SAML ------------------------------------------------------------------------------

    def saml(self) -> None:
        from bench import saml_bench

        sizes = self.sizes
        log(f"   in-process: {sizes.saml_responses} Okta-shaped responses x 3 validators ...")
        self.results["saml_in_process"] = saml_bench.in_process(
            sizes.saml_responses, sign_response=self.args.sign_response
        )
        for validator in self.results["saml_in_process"]["validators"]:
            log(
                f"   {validator['name']}: {validator['per_second']:.0f}/s, p50 {validator['latency']['p50_ms']:.2f} ms,"
                f" errors {validator['errors']}"
            )
        http: dict[str, Any] = {}
        self.results["saml_http"] = http
        for database in self.databases:
            url = self.database_url(database, "saml")
            if url is None:
                continue
            http[database] = self._saml_http(database, url)

    def _saml_http(self, database: str, url: str) -> dict[str, Any]:
        from bench import deskgate_app, procs, saml_bench, saml_responses
        from bench.saml_responses import Audience

        sizes = self.sizes
        port = procs.free_port()
        origin = f"http://{procs.HOST}:{port}"
        key = saml_responses.new_idp_key()
        engine = deskgate_app.migrated_engine(url)
        account = deskgate_app.create_account(
            engine, origin, idp_metadata=saml_responses.idp_metadata(key)
        )
        engine.dispose()
        audience = Audience(
            acs_url=account.acs_url(origin), sp_entity_id=account.sp_entity_id(origin)
        )
        bodies = saml_bench.form_bodies(key, audience, sizes.saml_sign_ins, sizes.saml_users)
        with deskgate_app.serve(
            url,
            port=port,
            workers=self.args.workers,
            log_dir=self.logs,
            label=f"saml-{database}",
            reuse_port=not self.args.no_reuse_port,
        ) as server:
            from bench.scim_client import run_async

            # Warm-up: the first sign-in of each worker compiles schemas, loads keys and pools.
            warm = saml_bench.form_bodies(key, audience, 4 * self.args.workers, sizes.saml_users)
            run_async(saml_bench.post_sign_ins(audience.acs_url, warm, self.args.workers, 60))
            cpu_before = server.cpu_seconds()
            meter = facts.CpuMeter().start()
            with self.profiled(server, f"saml-http-{database}"):
                result = run_async(
                    saml_bench.post_sign_ins(audience.acs_url, bodies, sizes.concurrency, 240)
                )
            result["machine_busy"] = round(meter.stop(), 3)
            result["server_cpu_ms_per_request"] = _per_request(
                server.cpu_seconds() - cpu_before, result["requests"]
            )
        result["workers"] = self.args.workers
        result["users"] = sizes.saml_users
        log(
            f"   HTTP ({database}): {result['per_second']:.0f} sign-ins/s, p50 {result['latency']['p50_ms']:.1f} ms, "
            f"p95 {result['latency']['p95_ms']:.1f} ms, errors {result['errors']}"
            + (f" ({result['first_error']})" if result["first_error"] else "")
        )
        return result

    # --- SCIM ------------------------------------------------------------------------------

    def scim(self) -> None:
        from bench import scim_targets

        entries: list[dict[str, Any]] = []
        self.results["scim"] = entries
        plans: list[tuple[str, Callable[[], AbstractContextManager[Any]]]] = []
        for database in self.databases:
            url = self.database_url(database, "scim")
            if url is None:
                continue
            label = "SQLite" if database == "sqlite" else "PostgreSQL"
            plans.append(
                (
                    f"deskgate ({label})",
                    lambda d=database, u=url, lab=label: scim_targets.deskgate(
                        f"deskgate-{d}",
                        f"deskgate ({lab})",
                        u,
                        workers=self.args.workers,
                        log_dir=self.logs,
                        reuse_port=not self.args.no_reuse_port,
                    ),
                )
            )
        if "floor" in self.peers:
            plans.append(("floor", lambda: scim_targets.floor(work=self.work, log_dir=self.logs)))
        if "scim2-server" in self.peers:
            plans.append(("scim2-server", lambda: scim_targets.scim2_server(log_dir=self.logs)))
        for engine in ("mem", "postgres", "sqlite"):
            if f"jackson-{engine}" not in self.peers:
                continue
            plan = self._jackson_plan(engine)
            if plan is not None:
                plans.append((f"Jackson ({engine})", plan))
        for name, plan in plans:
            entry = self._scim_target(name, plan)
            if entry is not None:
                entries.append(entry)

    def _jackson_plan(self, engine: str) -> Callable[[], AbstractContextManager[Any]] | None:
        from bench import scim_targets

        what = f"Jackson ({engine})"
        if self._jackson_install is not None:
            self._jackson_install.join()
        try:
            if self._jackson_problem is not None:
                raise self._jackson_problem
            scim_targets.ensure_jackson(allow_install=not self.args.no_install)
            if engine == "sqlite":
                scim_targets.ensure_jackson_sqlite(allow_build=self.args.build_native)
        except scim_targets.Unavailable as problem:
            self.unavailable(what, str(problem))
            return None
        if engine == "postgres":
            if (
                "postgresql" not in self.databases
                and not self.args.postgres_url
                and not self.explicit_peers
            ):
                return None
            url = self.database_url("postgresql", "jackson")
            if url is None:
                self.unavailable(what, "PostgreSQL is unavailable")
                return None
            return lambda: scim_targets.jackson("postgres", log_dir=self.logs, database_url=url)
        if engine == "sqlite":
            path = self.work / "jackson.sqlite3"
            path.unlink(missing_ok=True)
            return lambda: scim_targets.jackson("sqlite", log_dir=self.logs, database_url=str(path))
        return lambda: scim_targets.jackson("mem", log_dir=self.logs)

    def _scim_target(
        self, name: str, plan: Callable[[], AbstractContextManager[Any]]
    ) -> dict[str, Any] | None:
        from bench import scim_client, scim_targets

        sizes = self.sizes
        log(f"   {name}: Okta pattern, N={sizes.scim_users}, K={sizes.concurrency} ...")
        try:
            with plan() as target:
                # Warm-up (first requests of each worker: imports, pools, caches), in its own run prefix.
                scim_client.run_async(
                    scim_client.okta_workload(
                        target.base_url,
                        target.token,
                        users=4 * sizes.concurrency,
                        concurrency=sizes.concurrency,
                        run="warmup",
                        deadline_s=60,
                        crawl_after=False,
                    )
                )
                cpu_before = target.server.cpu_seconds()
                client_before = facts.own_cpu_seconds()
                meter = facts.CpuMeter().start()
                with self.profiled(target.server, f"scim-{target.key}"):
                    result = scim_client.run_async(
                        scim_client.okta_workload(
                            target.base_url,
                            target.token,
                            users=sizes.scim_users,
                            concurrency=sizes.concurrency,
                            run="okta",
                            deadline_s=self.deadline(),
                            crawl_after=False,
                        )
                    )
                result["machine_busy"] = round(meter.stop(), 3)
                result["server_cpu_ms_per_request"] = _per_request(
                    target.server.cpu_seconds() - cpu_before, result["requests"]
                )
                result["client_cpu_ms_per_request"] = _per_request(
                    facts.own_cpu_seconds() - client_before, result["requests"]
                )
                created = set(result.pop("created"))
                result["crawl"] = scim_client.run_async(
                    scim_client.crawl_users(target.base_url, target.token, created)
                )
                result["rss_mib_after"] = round(target.server.rss_bytes() / 1024 / 1024, 1)
                entry = {
                    "key": target.key,
                    "label": target.label,
                    "persists": target.persists,
                    "processes": target.processes,
                    **result,
                }
        except scim_targets.Unavailable as problem:
            self.unavailable(name, str(problem))
            return None
        except Exception as problem:  # a peer that breaks is reported, not fatal
            if name.startswith("deskgate"):
                raise
            self.unavailable(name, f"{type(problem).__name__}: {str(problem)[:600]}")
            return None
        crawl = entry["crawl"]
        log(
            f"   {entry['label']}: {entry['per_second']:.0f} req/s, p50 {entry['latency']['p50_ms']:.1f} ms, "
            f"p95 {entry['latency']['p95_ms']:.1f} ms, errors {entry['errors']}, crawl "
            f"{crawl['expected'] - crawl['missing']}/{crawl['expected']} found, "
            f"server CPU {entry['server_cpu_ms_per_request']} ms/request"
        )
        for sample in entry["error_samples"][:2]:
            log(f"      error: {sample}")
        return entry

    # --- scale -----------------------------------------------------------------------------

    def scale(self) -> None:
        scale: dict[str, Any] = {}
        self.results["scale"] = scale
        for database in self.databases:
            url = self.database_url(database, "scale")
            if url is None:
                continue
            scale[database] = self._scale(database, url)

    def _scale(self, database: str, url: str) -> dict[str, Any]:
        from bench import deskgate_app, procs, scale_bench

        sizes = self.sizes
        port = procs.free_port()
        origin = f"http://{procs.HOST}:{port}"
        engine = deskgate_app.migrated_engine(url)
        account = deskgate_app.create_account(engine, origin, name="Scale")
        importer = deskgate_app.create_account(engine, origin, name="Import")
        log(
            f"   {database}: bulk-loading {sizes.scale_agents:,} agents through the store's table ..."
        )
        load = scale_bench.bulk_load(engine, account.id, sizes.scale_agents, progress=log)
        engine.dispose()
        sample_ids = load.pop("sample_ids")
        log(
            f"   {database}: {load['agents']:,} agents in {load['load_seconds']}s ({load['rows_per_second']:,} rows/s)"
        )
        result: dict[str, Any] = {"load": load}
        with deskgate_app.serve(
            url,
            port=port,
            workers=self.args.workers,
            log_dir=self.logs,
            label=f"scale-{database}",
            reuse_port=not self.args.no_reuse_port,
        ) as server:
            result["latency"] = scale_bench.latencies(
                account.scim_base(origin),
                account.scim_token,
                agents=sizes.scale_agents,
                sample_ids=sample_ids,
                lookups=sizes.scale_lookups,
                pages=sizes.scale_pages,
                patches=sizes.scale_patches,
                deadline_s=300,
            )
            lat = result["latency"]
            log(
                f"   {database}: filter p50 {lat['filter']['p50_ms']:.2f} / p99 {lat['filter']['p99_ms']:.2f} ms; "
                f"last pages p50 {lat['last_pages']['p50_ms']:.1f} ms; PATCH p50 {lat['patch']['p50_ms']:.2f} / "
                f"p99 {lat['patch']['p99_ms']:.2f} ms; errors {lat['errors']}"
            )
            log(
                f"   {database}: Okta import of {sizes.import_users:,} users (filter + POST), K={sizes.concurrency}, "
                "sampling RSS ..."
            )
            with self.profiled(server, f"import-{database}"):
                imported = scale_bench.import_with_rss(
                    server,
                    importer.scim_base(origin),
                    importer.scim_token,
                    users=sizes.import_users,
                    concurrency=sizes.concurrency,
                    run="import",
                    deadline_s=self.deadline(import_=True),
                )
            result["import"] = imported
            rss = imported["rss"]
            log(
                f"   {database}: import {imported['users_done']:,} users at {imported['per_second']:.0f} req/s, "
                f"errors {imported['errors']}; RSS {rss.get('start_mib')} -> peak {rss.get('peak_mib')} -> "
                f"end {rss.get('end_mib')} MiB (flat: {rss.get('flat')})"
            )
        return result


def _per_request(cpu_seconds: float, requests: int) -> float:
    return round(cpu_seconds / requests * 1000, 2) if requests else 0.0
