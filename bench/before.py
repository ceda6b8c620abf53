"""`--before`: an earlier run's headline figures and profiles, kept in this run's results and
shown beside its own (the report's "Before and after" and "Profiles" sections)."""

from __future__ import annotations

from typing import Any

from bench.tables import fmt, table


def before_summary(before: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of an earlier run beside this one (`--before`)."""
    return {
        "command": before.get("command"),
        "started_at": before.get("started_at"),
        "commit": (before.get("machine") or {}).get("commit"),
        "profiles": before.get("profiles") or {},
        "scim": [
            {
                key: entry.get(key)
                for key in ("key", "label", "per_second", "latency", "server_cpu_ms_per_request")
            }
            for entry in before.get("scim") or []
        ],
        "saml_http": {
            database: {
                key: http.get(key) for key in ("per_second", "latency", "server_cpu_ms_per_request")
            }
            for database, http in (before.get("saml_http") or {}).items()
        },
    }


def before_and_after(results: dict[str, Any]) -> list[str]:
    before = results.get("before")
    if not before:
        return []
    rows = []
    then = {entry["key"]: entry for entry in before.get("scim") or []}
    for entry in results.get("scim") or []:
        old = then.get(entry["key"])
        if old is not None:
            rows.append([f"SCIM {entry['label']}", old, entry])
    for database, http in (results.get("saml_http") or {}).items():
        old = (before.get("saml_http") or {}).get(database)
        if old is not None:
            rows.append([f"Sign-in over HTTP ({database})", old, http])
    if not rows:
        return []
    lines = [
        "## Before and after",
        "",
        f"Before: `{before.get('command')}` on {before.get('started_at')} (commit "
        f"{before.get('commit') or '?'}). The figures compare only when both runs used the same "
        "sizes and a similarly loaded machine.",
        "",
    ]
    return lines + table(
        [
            "Workload",
            "Req/s before → after",
            "p95 ms before → after",
            "Server CPU ms/req before → after",
        ],
        [
            [
                name,
                f"{fmt(old['per_second'], 0)} → {fmt(new['per_second'], 0)}",
                f"{fmt(old['latency']['p95_ms'])} → {fmt(new['latency']['p95_ms'])}",
                f"{fmt(old.get('server_cpu_ms_per_request'), 2)} → {fmt(new.get('server_cpu_ms_per_request'), 2)}",
            ]
            for name, old, new in rows
        ],
    )
