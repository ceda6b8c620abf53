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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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

    from bench.run import Run

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


def command_line() -> str:
    return "uv run --group bench python -m bench" + (
        "" if len(sys.argv) <= 1 else " " + shlex.join(sys.argv[1:])
    )
