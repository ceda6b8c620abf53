"""The SCIM part of a bench run: deskgate on each database, the floor, scim2-server and Jackson,
each through Okta's pattern (bench/scim_client.py) and the list crawl, one after another."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from bench import facts
from bench.cli import log
from bench.run import per_request

if TYPE_CHECKING:
    from bench.run import Run


def scim(run: Run) -> None:
    from bench import scim_targets

    entries: list[dict[str, Any]] = []
    run.results["scim"] = entries
    plans: list[tuple[str, Callable[[], AbstractContextManager[Any]]]] = []
    for database in run.databases:
        url = run.database_url(database, "scim")
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
                    workers=run.args.workers,
                    log_dir=run.logs,
                    reuse_port=not run.args.no_reuse_port,
                ),
            )
        )
    if "floor" in run.peers:
        plans.append(("floor", lambda: scim_targets.floor(work=run.work, log_dir=run.logs)))
    if "scim2-server" in run.peers:
        plans.append(("scim2-server", lambda: scim_targets.scim2_server(log_dir=run.logs)))
    for engine in ("mem", "postgres", "sqlite"):
        if f"jackson-{engine}" not in run.peers:
            continue
        plan = _jackson_plan(run, engine)
        if plan is not None:
            plans.append((f"Jackson ({engine})", plan))
    for name, plan in plans:
        entry = _scim_target(run, name, plan)
        if entry is not None:
            entries.append(entry)


def _jackson_plan(run: Run, engine: str) -> Callable[[], AbstractContextManager[Any]] | None:
    from bench import scim_targets

    what = f"Jackson ({engine})"
    try:
        run.wait_for_jackson_install()
        scim_targets.ensure_jackson(allow_install=not run.args.no_install)
        if engine == "sqlite":
            scim_targets.ensure_jackson_sqlite(allow_build=run.args.build_native)
    except scim_targets.Unavailable as problem:
        run.unavailable(what, str(problem))
        return None
    if engine == "postgres":
        if (
            "postgresql" not in run.databases
            and not run.args.postgres_url
            and not run.explicit_peers
        ):
            return None
        url = run.database_url("postgresql", "jackson")
        if url is None:
            run.unavailable(what, "PostgreSQL is unavailable")
            return None
        return lambda: scim_targets.jackson("postgres", log_dir=run.logs, database_url=url)
    if engine == "sqlite":
        path = run.work / "jackson.sqlite3"
        path.unlink(missing_ok=True)
        return lambda: scim_targets.jackson("sqlite", log_dir=run.logs, database_url=str(path))
    return lambda: scim_targets.jackson("mem", log_dir=run.logs)


def _scim_target(
    run: Run, name: str, plan: Callable[[], AbstractContextManager[Any]]
) -> dict[str, Any] | None:
    from bench import scim_client, scim_targets

    sizes = run.sizes
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
            with run.profiled(target.server, f"scim-{target.key}"):
                result = scim_client.run_async(
                    scim_client.okta_workload(
                        target.base_url,
                        target.token,
                        users=sizes.scim_users,
                        concurrency=sizes.concurrency,
                        run="okta",
                        deadline_s=run.deadline(),
                        crawl_after=False,
                    )
                )
            result["machine_busy"] = round(meter.stop(), 3)
            result["server_cpu_ms_per_request"] = per_request(
                target.server.cpu_seconds() - cpu_before, result["requests"]
            )
            result["client_cpu_ms_per_request"] = per_request(
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
        run.unavailable(name, str(problem))
        return None
    except Exception as problem:  # a peer that breaks is reported, not fatal
        if name.startswith("deskgate"):
            raise
        run.unavailable(name, f"{type(problem).__name__}: {str(problem)[:600]}")
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
