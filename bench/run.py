"""One benchmark run (`python -m bench`): its settings, the databases it made, and the SAML and
scale parts (the SCIM part is bench/scim_run.py)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import facts
from bench.cli import Sizes, command_line, log


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
            "command": command_line(),
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

    def wait_for_jackson_install(self) -> None:
        """Wait for `prepare_jackson`'s install; raise its `Unavailable` if it failed."""
        if self._jackson_install is not None:
            self._jackson_install.join()
        if self._jackson_problem is not None:
            raise self._jackson_problem

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
            result["server_cpu_ms_per_request"] = per_request(
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
        from bench import scim_run

        scim_run.scim(self)

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


def per_request(cpu_seconds: float, requests: int) -> float:
    return round(cpu_seconds / requests * 1000, 2) if requests else 0.0
