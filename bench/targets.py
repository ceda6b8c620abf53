"""Issue 10's targets checked against a run's results, and what makes a run unusable.

Each target row names the figure it measured and, when missed, by how much.
"""

from __future__ import annotations

from typing import Any

SAML_RATIO_TARGET = 3.0
"""In-process validation vs stock python3-saml `is_valid` (an earlier issue's target, kept)."""
SIGN_IN_VS_STOCK_TARGET = 1.5
"""Sign-ins over HTTP per second vs stock `is_valid` per second in-process."""
SIGN_IN_P95_TARGET_MS = 50.0
SIGN_IN_CPU_TARGET_MS = 2.0
SCIM_VS_JACKSON_TARGET = 1.0
SCIM_VS_FLOOR_TARGET = 0.7
SCIM_P95_TARGET_MS = 10.0
SCIM_CPU_TARGET_MS = 0.3
FILTER_P99_TARGET_MS = 2.0
LAST_PAGE_P99_TARGET_MS = 5.0
PATCH_P99_TARGET_MS = 5.0
IMPORT_USERS_TARGET = 100_000
IMPORT_SECONDS_TARGET = 60.0

DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def scim_entry(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    for entry in results.get("scim") or []:
        if entry["key"] == key:
            return entry
    return None


def problems(results: dict[str, Any]) -> list[str]:
    """What makes the run itself unusable (not a missed target): a part that crashed, requests
    that failed, deskgate's, the floor's or scim2-server's crawl not finding every user."""
    found = [f"failed: {failure}" for failure in results.get("failures", [])]
    for validator in (results.get("saml_in_process") or {}).get("validators", []):
        if validator["errors"]:
            found.append(
                f"SAML {validator['name']}: {validator['errors']} responses refused ({validator['first_error']})"
            )
    for database, http in (results.get("saml_http") or {}).items():
        if http["errors"]:
            found.append(
                f"SAML over HTTP ({database}): {http['errors']} errors ({http['first_error']})"
            )
    for entry in results.get("scim") or []:
        if entry["errors"]:
            found.append(
                f"SCIM {entry['label']}: {entry['errors']} errors ({'; '.join(entry['error_samples'][:2])})"
            )
        if not entry["key"].startswith("jackson") and not entry["crawl"]["correct"]:
            found.append(f"SCIM {entry['label']}: the crawl is wrong ({entry['crawl']})")
    for database, scale in (results.get("scale") or {}).items():
        if scale.get("latency", {}).get("errors"):
            found.append(f"scale ({database}): {scale['latency']['error_samples']}")
        if scale.get("import", {}).get("errors"):
            found.append(f"import ({database}): {scale['import']['error_samples']}")
    return found


def _at_least(what: str, measured: float, target: float, unit: str = "x") -> dict[str, Any]:
    met = measured >= target
    return {
        "target": what,
        "measured": f"{measured:.2f}{unit}",
        "met": met,
        "gap": None if met else f"needs {target / max(measured, 1e-9):.2f}x more",
    }


def _below(
    what: str, measured: float, target: float, digits: int = 1, *, inclusive: bool = False
) -> dict[str, Any]:
    met = measured <= target if inclusive else measured < target
    return {
        "target": what,
        "measured": f"{measured:.{digits}f} ms",
        "met": met,
        "gap": None
        if met
        else f"{measured / target:.1f}x over ({measured - target:.{digits}f} ms)",
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and how far from the target it is."""
    rows: list[dict[str, Any]] = []
    saml = results.get("saml_in_process")
    stock_per_second = None
    if saml:
        by_key = {v["key"]: v for v in saml["validators"]}
        stock_per_second = by_key["stock"]["per_second"] or None
        rows.append(
            _at_least(
                f"SAML validation >= {SAML_RATIO_TARGET:g}x stock python3-saml `is_valid` (in-process)",
                saml["ratio_vs_stock"],
                SAML_RATIO_TARGET,
            )
        )
    for database, http in (results.get("saml_http") or {}).items():
        name = DATABASE_NAMES.get(database, database)
        if stock_per_second:
            ratio = http["per_second"] / stock_per_second
            row = _at_least(
                f"Sign-ins over HTTP >= {SIGN_IN_VS_STOCK_TARGET:g}x stock `is_valid`/s in-process ({name})",
                ratio,
                SIGN_IN_VS_STOCK_TARGET,
            )
            row["measured"] += f" ({http['per_second']:.0f} vs {stock_per_second:.0f}/s)"
            rows.append(row)
        rows.append(
            _below(
                f"Sign-in p95 < {SIGN_IN_P95_TARGET_MS:g} ms at K={http['concurrency']} ({name})",
                http["latency"]["p95_ms"],
                SIGN_IN_P95_TARGET_MS,
            )
        )
        if http.get("server_cpu_ms_per_request") is not None:
            rows.append(
                _below(
                    f"Server CPU per sign-in <= {SIGN_IN_CPU_TARGET_MS:g} ms ({name})",
                    http["server_cpu_ms_per_request"],
                    SIGN_IN_CPU_TARGET_MS,
                    digits=2,
                    inclusive=True,
                )
            )
    rows += _scim_targets(results)
    rows += _scale_targets(results)
    return rows


def _scim_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    peers = [
        ("jackson-mem", "Jackson in memory", SCIM_VS_JACKSON_TARGET),
        ("floor", "the floor server", SCIM_VS_FLOOR_TARGET),
    ]
    for database, name in DATABASE_NAMES.items():
        ours = scim_entry(results, f"deskgate-{database}")
        if ours is None:
            continue
        for key, peer_name, target in peers:
            peer = scim_entry(results, key)
            if peer is None or not peer["per_second"]:
                continue
            row = _at_least(
                f"SCIM Okta pattern >= {target:g}x {peer_name} ({name})",
                ours["per_second"] / peer["per_second"],
                target,
            )
            row["measured"] += f" ({ours['per_second']:.0f} vs {peer['per_second']:.0f} req/s)"
            rows.append(row)
        rows.append(
            _below(
                f"SCIM p95 < {SCIM_P95_TARGET_MS:g} ms at K={ours['concurrency']} ({name})",
                ours["latency"]["p95_ms"],
                SCIM_P95_TARGET_MS,
            )
        )
        crawl = ours["crawl"]
        rows.append(
            {
                "target": f"SCIM crawl finds every user, errors = 0 ({name})",
                "measured": f"{crawl['expected'] - crawl['missing']}/{crawl['expected']} found, "
                f"{crawl['duplicates']} duplicates, {ours['errors']} errors",
                "met": crawl["correct"] and ours["errors"] == 0,
                "gap": None,
            }
        )
        if ours.get("server_cpu_ms_per_request") is not None:
            rows.append(
                _below(
                    f"Server CPU per SCIM request <= {SCIM_CPU_TARGET_MS:g} ms ({name})",
                    ours["server_cpu_ms_per_request"],
                    SCIM_CPU_TARGET_MS,
                    digits=2,
                    inclusive=True,
                )
            )
    return rows


def _scale_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for database, scale in (results.get("scale") or {}).items():
        name = DATABASE_NAMES.get(database, database)
        agents = scale["load"]["agents"]
        latency = scale.get("latency")
        if latency:
            for key, what, target in (
                ("filter", "`filter=userName eq`", FILTER_P99_TARGET_MS),
                ("last_pages", "last list page", LAST_PAGE_P99_TARGET_MS),
                ("patch", "PATCH", PATCH_P99_TARGET_MS),
            ):
                if key in latency:
                    rows.append(
                        _below(
                            f"{what} p99 < {target:g} ms at {agents:,} agents ({name})",
                            latency[key]["p99_ms"],
                            target,
                            digits=2,
                        )
                    )
        imported = scale.get("import")
        if imported:
            done, seconds = imported["users_done"], imported["seconds"]
            complete = done >= IMPORT_USERS_TARGET and not imported.get("stopped_early")
            fast = complete and seconds < IMPORT_SECONDS_TARGET
            rows.append(
                {
                    "target": f"A {IMPORT_USERS_TARGET:,}-user Okta import in < {IMPORT_SECONDS_TARGET:g} s ({name})",
                    "measured": f"{done:,} users in {seconds:.0f} s"
                    + (" (time limit)" if imported.get("stopped_early") else ""),
                    "met": fast,
                    "gap": None
                    if fast
                    else (
                        f"{seconds - IMPORT_SECONDS_TARGET:.0f} s over"
                        if complete
                        else f"needs {IMPORT_USERS_TARGET / max(done, 1) * seconds / IMPORT_SECONDS_TARGET:.1f}x "
                        "the import rate"
                    ),
                }
            )
            rss = imported["rss"]
            rows.append(
                {
                    "target": f"RSS flat during a {done:,}-user import ({name})",
                    "measured": f"{rss.get('after_warmup_mib')} -> peak {rss.get('peak_mib')} MiB "
                    f"(+{rss.get('growth_after_warmup_mib')} MiB after warm-up)",
                    "met": bool(rss.get("flat")),
                    "gap": None,
                }
            )
    return rows
