"""docs/benchmarks.md and docs/benchmarks.png from a run's results (bench/cli.py's results.json).

The report is generated whole; the hand-written part (what the profiles show, what bounds a missed
target) lives in bench/analysis.md and is copied in under "Analysis".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKDOWN = "benchmarks.md"
CHART = "benchmarks.png"
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"

SAML_RATIO_TARGET = 3.0
SCIM_VS_SCIM2_TARGET = 5.0
SCIM_VS_JACKSON_TARGET = 0.9
"""On par: at least 90% of Jackson's in-memory throughput."""
SCIM_P95_TARGET_MS = 25.0
FILTER_P99_TARGET_MS = 5.0


# --- checks ---------------------------------------------------------------------------------


def _scim(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    for entry in results.get("scim") or []:
        if entry["key"] == key:
            return entry
    return None


def problems(results: dict[str, Any]) -> list[str]:
    """What makes the run itself unusable (not a missed target): a part that crashed, requests
    that failed, deskgate's or scim2-server's crawl not finding every user."""
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


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**missed**")


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and how far from the target it is."""
    rows: list[dict[str, Any]] = []
    saml = results.get("saml_in_process")
    if saml:
        ratio = saml["ratio_vs_stock"]
        rows.append(
            {
                "target": f"SAML validation >= {SAML_RATIO_TARGET:g}x stock python3-saml `is_valid` (in-process throughput)",
                "measured": f"{ratio:.2f}x",
                "met": ratio >= SAML_RATIO_TARGET,
                "gap": None
                if ratio >= SAML_RATIO_TARGET
                else f"needs {SAML_RATIO_TARGET / ratio:.2f}x more speed ({_ms_needed(saml)})",
            }
        )
    scim2 = _scim(results, "scim2-server")
    jackson = _scim(results, "jackson-mem")
    for database in ("sqlite", "postgresql"):
        ours = _scim(results, f"deskgate-{database}")
        if ours is None:
            continue
        name = "SQLite" if database == "sqlite" else "PostgreSQL"
        if scim2 is not None and scim2["per_second"]:
            ratio = ours["per_second"] / scim2["per_second"]
            rows.append(
                {
                    "target": f"SCIM Okta workload >= {SCIM_VS_SCIM2_TARGET:g}x scim2-server ({name})",
                    "measured": f"{ratio:.1f}x ({ours['per_second']:.0f} vs {scim2['per_second']:.0f} req/s)",
                    "met": ratio >= SCIM_VS_SCIM2_TARGET,
                    "gap": None
                    if ratio >= SCIM_VS_SCIM2_TARGET
                    else f"{SCIM_VS_SCIM2_TARGET * scim2['per_second'] - ours['per_second']:.0f} req/s short",
                }
            )
        if jackson is not None and jackson["per_second"]:
            ratio = ours["per_second"] / jackson["per_second"]
            rows.append(
                {
                    "target": f"SCIM on par with Jackson in memory (>= {SCIM_VS_JACKSON_TARGET:.0%} of it), "
                    f"persisting to {name}",
                    "measured": f"{ratio:.0%} ({ours['per_second']:.0f} vs {jackson['per_second']:.0f} req/s)",
                    "met": ratio >= SCIM_VS_JACKSON_TARGET,
                    "gap": None
                    if ratio >= SCIM_VS_JACKSON_TARGET
                    else f"{SCIM_VS_JACKSON_TARGET * jackson['per_second'] / max(ours['per_second'], 1e-9):.1f}x more throughput needed",
                }
            )
        p95 = ours["latency"]["p95_ms"]
        rows.append(
            {
                "target": f"SCIM p95 < {SCIM_P95_TARGET_MS:g} ms ({name}, K={ours['concurrency']})",
                "measured": f"{p95:.1f} ms",
                "met": p95 < SCIM_P95_TARGET_MS,
                "gap": None
                if p95 < SCIM_P95_TARGET_MS
                else f"{p95 / SCIM_P95_TARGET_MS:.1f}x over",
            }
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
    for database, scale in (results.get("scale") or {}).items():
        name = "SQLite" if database == "sqlite" else "PostgreSQL"
        agents = scale["load"]["agents"]
        if "latency" in scale:
            p99 = scale["latency"]["filter"]["p99_ms"]
            rows.append(
                {
                    "target": f"`filter=userName eq` p99 < {FILTER_P99_TARGET_MS:g} ms at {agents:,} agents ({name})",
                    "measured": f"{p99:.2f} ms",
                    "met": p99 < FILTER_P99_TARGET_MS,
                    "gap": None
                    if p99 < FILTER_P99_TARGET_MS
                    else f"{p99 - FILTER_P99_TARGET_MS:.2f} ms over",
                }
            )
        if "import" in scale:
            rss = scale["import"]["rss"]
            rows.append(
                {
                    "target": f"RSS flat during a {scale['import']['users_done']:,}-user import ({name})",
                    "measured": f"{rss.get('after_warmup_mib')} -> peak {rss.get('peak_mib')} MiB "
                    f"(+{rss.get('growth_after_warmup_mib')} MiB after warm-up)",
                    "met": bool(rss.get("flat")),
                    "gap": None,
                }
            )
    return rows


def _ms_needed(saml: dict[str, Any]) -> str:
    by_key = {v["key"]: v for v in saml["validators"]}
    stock_ms = 1000 / by_key["stock"]["per_second"]
    ours_ms = 1000 / by_key["deskgate"]["per_second"]
    return f"{ours_ms:.2f} ms per validation now, {stock_ms / SAML_RATIO_TARGET:.2f} ms needed"


# --- markdown -------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _f(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def render(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    sizes = results.get("sizes", {})
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m bench` (bench/report.py); edit bench/analysis.md, not this file. -->",
        "",
        f"Figures from one run of **`{results.get('command')}`** (size: {results.get('size')}) on "
        f"{results.get('started_at', '?')}, {results.get('duration_seconds', '?')} s. Every peer was measured "
        "in the same run, on the same machine, with the same client. Re-render from the run's "
        "`results.json` with `python -m bench --report-only .bench-work/results.json`.",
        "",
        f"![Benchmark chart]({CHART})",
        "",
        "## Machine",
        "",
    ]
    pg = results.get("postgresql") or {}
    packages = machine.get("packages", {})
    lines += _table(
        ["", ""],
        [
            ["CPUs", f"{machine.get('cpu_count')} × {machine.get('cpu_model')}"],
            ["Memory", f"{machine.get('memory_gib')} GiB"],
            ["OS", f"{machine.get('os')} (Linux {machine.get('kernel')})"],
            ["Python", machine.get("python")],
            ["SQLite", f"{machine.get('sqlite')} (WAL, synchronous=NORMAL: deskgate's settings)"],
            [
                "PostgreSQL",
                f"{pg.get('server_version', 'not used')}"
                + (
                    f" (fsync={pg.get('fsync')}, synchronous_commit={pg.get('synchronous_commit')}, "
                    f"shared_buffers={pg.get('shared_buffers')}; same machine, over TCP)"
                    if pg
                    else ""
                ),
            ],
            ["Node.js", machine.get("node") or "not installed"],
            [
                "Load average at start",
                " ".join(str(x) for x in machine.get("load_average_at_start", [])),
            ],
            [
                "Python packages",
                ", ".join(f"{name} {version}" for name, version in packages.items()),
            ],
            [
                "deskgate server",
                f"uvicorn + uvloop + httptools, {results.get('workers')} workers"
                + (
                    ", one SO_REUSEPORT socket each (`deskgate serve --workers`, deskgate/web/server.py)"
                    if results.get("reuse_port")
                    else ""
                )
                + ", no access log",
            ],
            [
                "Client",
                "aiohttp on uvloop, in one process on the same machine (it shares the 2 cores)",
            ],
        ],
    )
    lines += ["Sizes: " + ", ".join(f"{k}={v:,}" for k, v in sizes.items()), ""]

    rows = targets(results)
    if rows:
        lines += ["## Targets", ""]
        lines += _table(
            ["Target", "Measured", "Verdict", "Gap"],
            [[r["target"], r["measured"], _verdict(r["met"]), r["gap"] or ""] for r in rows],
        )

    saml = results.get("saml_in_process")
    if saml:
        lines += [
            "## SAML sign-in",
            "",
            f"In-process, one core, {saml['responses']:,} Okta-shaped responses ({saml['response_bytes']:,} bytes, "
            f"{saml['signatures_per_response']} RSA-SHA256 signature(s), each a fresh assertion ID), the same "
            "responses through each validator, interleaved in 5 rounds:",
            "",
        ]
        stock = next(v for v in saml["validators"] if v["key"] == "stock")
        lines += _table(
            ["Validator", "Validations/s", "p50 ms", "p95 ms", "p99 ms", "vs stock", "Errors"],
            [
                [
                    v["name"],
                    _f(v["per_second"], 0),
                    _f(v["latency"]["p50_ms"], 3),
                    _f(v["latency"]["p95_ms"], 3),
                    _f(v["latency"]["p99_ms"], 3),
                    f"{v['per_second'] / stock['per_second']:.2f}x",
                    v["errors"],
                ]
                for v in saml["validators"]
            ],
        )
        lines += [
            f"deskgate reaches {saml['fraction_of_bare']:.0%} of the bare signature check's rate.",
            "",
        ]
    http = results.get("saml_http") or {}
    if http:
        lines += [
            "Over HTTP: K concurrent clients POST each response once to `/api/v1/sso/{token}/acs/okta` "
            "(IdP-initiated; a 303 is a sign-in: validation, replay row, JIT or lookup, session, attempt "
            "record, one commit):",
            "",
        ]
        lines += _table(
            [
                "Database",
                "Workers",
                "K",
                "Sign-ins/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "Errors",
                "Server CPU ms/sign-in",
                "Machine busy",
            ],
            [
                [
                    db,
                    h["workers"],
                    h["concurrency"],
                    _f(h["per_second"], 0),
                    _f(h["latency"]["p50_ms"]),
                    _f(h["latency"]["p95_ms"]),
                    _f(h["latency"]["p99_ms"]),
                    h["errors"],
                    _f(h.get("server_cpu_ms_per_request"), 2),
                    f"{h.get('machine_busy', 0):.0%}",
                ]
                for db, h in http.items()
            ],
        )

    scim = results.get("scim") or []
    if scim:
        first = scim[0]
        lines += [
            "## SCIM: Okta's provisioning pattern",
            "",
            f"N={first['users']:,} agents, K={first['concurrency']} concurrent clients: for each agent "
            "`filter userName eq` → POST → GET → PUT → PATCH `active: false` (5 requests), then a full list "
            "crawl with count=100. Server CPU is the server's own processes (user + system) per request; "
            "client CPU is the bench's aiohttp client per request (it runs on the same 2 cores).",
            "",
        ]
        lines += _table(
            [
                "Server",
                "Writes go to",
                "Runs as",
                "Requests/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "Errors",
                "Crawl found",
                "Server CPU ms/req",
                "Client CPU ms/req",
                "Machine busy",
            ],
            [
                [
                    e["label"],
                    e["persists"],
                    e["processes"],
                    _f(e["per_second"], 0),
                    _f(e["latency"]["p50_ms"]),
                    _f(e["latency"]["p95_ms"]),
                    _f(e["latency"]["p99_ms"]),
                    e["errors"],
                    f"{e['crawl']['expected'] - e['crawl']['missing']:,}/{e['crawl']['expected']:,}"
                    + ("" if e["crawl"]["correct"] else " **wrong**"),
                    _f(e.get("server_cpu_ms_per_request"), 2),
                    _f(e.get("client_cpu_ms_per_request"), 2),
                    f"{e.get('machine_busy', 0):.0%}",
                ]
                for e in scim
            ],
        )
        for e in scim:
            if e.get("stopped_early"):
                lines.append(
                    f"- {e['label']}: stopped at the time limit after {e['users_done']:,} of "
                    f"{e['users']:,} agents; its figures cover those."
                )
            if not e["crawl"]["correct"]:
                c = e["crawl"]
                lines.append(
                    f"- {e['label']}: the crawl listed {c['listed']:,} users in {c['pages']} page(s) "
                    f"(totalResults {c['total_results']}), missing {c['missing']:,} of {c['expected']:,}."
                )
        lines += [""]
        lines += ["Per step (p50 / p95 ms):", ""]
        steps = ["filter", "create", "get", "replace", "deactivate"]
        lines += _table(
            ["Server", *steps],
            [
                [
                    e["label"],
                    *[
                        f"{_f(e['steps'][s]['p50_ms'])} / {_f(e['steps'][s]['p95_ms'])}"
                        for s in steps
                    ],
                ]
                for e in scim
            ],
        )

    scale = results.get("scale") or {}
    if scale:
        lines += [
            "## Scale",
            "",
            "One account bulk-loaded through the store's `agents` table, then over HTTP, one request at a "
            "time: Okta's `filter=userName eq` for random agents, list pages near the end of the list "
            "(count=100), PATCH `active` of random agents. Then an Okta-style import (filter + POST per "
            "user, K clients) into another account on the same server while its RSS is sampled every 0.5 s.",
            "",
        ]
        rows = []
        for db, s in scale.items():
            lat = s.get("latency", {})
            imp = s.get("import", {})
            rss = imp.get("rss", {})
            rows.append(
                [
                    db,
                    f"{s['load']['agents']:,}",
                    f"{s['load']['load_seconds']} s",
                    f"{_f(lat.get('filter', {}).get('p50_ms'), 2)} / {_f(lat.get('filter', {}).get('p99_ms'), 2)}",
                    f"{_f(lat.get('last_pages', {}).get('p50_ms'))} / {_f(lat.get('last_pages', {}).get('p99_ms'))}",
                    f"{_f(lat.get('patch', {}).get('p50_ms'), 2)} / {_f(lat.get('patch', {}).get('p99_ms'), 2)}",
                    f"{imp.get('users_done', 0):,} users at {_f(imp.get('per_second'), 0)} req/s"
                    + (" (time limit)" if imp.get("stopped_early") else ""),
                    f"{rss.get('start_mib')} → {rss.get('after_warmup_mib')} → peak {rss.get('peak_mib')} → "
                    f"{rss.get('end_mib')}",
                    "yes" if rss.get("flat") else "**no**",
                ]
            )
        lines += _table(
            [
                "Database",
                "Agents",
                "Bulk load",
                "filter p50 / p99 ms",
                "last pages p50 / p99 ms",
                "PATCH p50 / p99 ms",
                "Import",
                "RSS MiB (start → after warm-up → peak → end)",
                "Flat",
            ],
            rows,
        )

    unavailable = results.get("unavailable") or []
    failures = results.get("failures") or []
    if unavailable or failures:
        lines += ["## Not measured in this run", ""]
        lines += [f"- **{u['what']}**: {u['reason']}" for u in unavailable]
        lines += [f"- **failure**: {f}" for f in failures]
        lines += [""]

    if ANALYSIS.exists():
        lines += ["## Analysis", "", ANALYSIS.read_text().strip(), ""]
    lines += [
        "## How to run",
        "",
        "```",
        "uv run python -m bench            # default sizes, < 10 minutes on 2 cores; writes docs/benchmarks.*",
        "uv run python -m bench --full     # 1,000,000 agents and a 100,000-user import",
        "uv run python -m bench --smoke    # seconds; what CI runs (tests/bench/test_bench_smoke.py)",
        "uv run python -m bench --help     # databases, peers, sizes, --profile (py-spy), --postgres-url",
        "```",
        "",
        "Jackson is installed on first use into `bench/peers/jackson/node_modules` (`npm ci --ignore-scripts`); "
        "its SQLite engine needs `--build-native` once (compiles better-sqlite3). Servers listen on 127.0.0.1 "
        "only and every request loop is bounded in count and time.",
        "",
    ]
    return "\n".join(lines)


# --- chart ----------------------------------------------------------------------------------


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ours, peer, base = "#2b6cb0", "#a0aec0", "#ed8936"

    ax = axes[0][0]
    saml = results.get("saml_in_process")
    if saml:
        labels, values, colors = [], [], []
        for v in saml["validators"]:
            labels.append(
                {
                    "deskgate": "deskgate\nvalidate_response",
                    "stock": "python3-saml\nis_valid (stock)",
                    "bare": "bare xmlsec\nverify",
                }[v["key"]]
            )
            values.append(v["per_second"])
            colors.append({"deskgate": ours, "stock": peer, "bare": base}[v["key"]])
        for db, h in (results.get("saml_http") or {}).items():
            labels.append(f"deskgate HTTP\n{db}, {h['workers']} workers")
            values.append(h["per_second"])
            colors.append(ours)
        bars = ax.bar(labels, values, color=colors)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_ylabel("validations or sign-ins per second")
        ax.set_title(
            f"SAML: in-process (1 core) and over HTTP — {saml['ratio_vs_stock']:.2f}x stock"
        )
        ax.tick_params(axis="x", labelsize=7)
    else:
        ax.set_axis_off()

    ax = axes[0][1]
    scim = results.get("scim") or []
    if scim:
        labels = [e["label"].replace(" (", "\n(") for e in scim]
        values = [e["per_second"] for e in scim]
        colors = [ours if e["key"].startswith("deskgate") else peer for e in scim]
        bars = ax.bar(labels, values, color=colors)
        ax.bar_label(
            bars,
            labels=[
                f"{e['per_second']:.0f}/s\np95 {e['latency']['p95_ms']:.0f} ms"
                + ("" if e["crawl"]["correct"] else "\ncrawl wrong")
                for e in scim
            ],
            fontsize=7,
        )
        ax.set_ylabel("requests per second")
        first = scim[0]
        ax.set_title(f"SCIM Okta pattern, N={first['users']:,}, K={first['concurrency']}")
        ax.tick_params(axis="x", labelsize=7)
        ax.margins(y=0.25)
    else:
        ax.set_axis_off()

    ax = axes[1][0]
    scale = results.get("scale") or {}
    if scale:
        groups = [("filter", "filter eq"), ("last_pages", "last pages"), ("patch", "PATCH")]
        width = 0.2
        for i, (db, s) in enumerate(scale.items()):
            lat = s.get("latency", {})
            for j, pct in enumerate(("p50_ms", "p99_ms")):
                xs = [k + (i * 2 + j) * width for k in range(len(groups))]
                ys = [max(lat.get(g, {}).get(pct, 0.0), 0.01) for g, _ in groups]
                bars = ax.bar(
                    xs,
                    ys,
                    width,
                    label=f"{db} {pct[:3]}",
                    color=[ours, "#90cdf4", base, "#fbd38d"][i * 2 + j],
                )
                ax.bar_label(bars, fmt="%.1f", fontsize=6)
        ax.set_xticks([k + 1.5 * width for k in range(len(groups))], [label for _, label in groups])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _pos: f"{y:g}"))
        ax.set_ylabel("ms (log scale)")
        agents = max(s["load"]["agents"] for s in scale.values())
        ax.set_title(f"Scale: one account with {agents:,} agents")
        ax.axhline(FILTER_P99_TARGET_MS, color="red", linewidth=0.8, linestyle="--")
        ax.legend(fontsize=7)
    else:
        ax.set_axis_off()

    ax = axes[1][1]
    plotted = False
    for i, (db, s) in enumerate(scale.items()):
        series = s.get("import", {}).get("rss_series_mib") or []
        if series:
            ax.plot(
                [t for t, _ in series],
                [m for _, m in series],
                label=f"{db} ({s['import']['users_done']:,} users)",
                color=[ours, base][i % 2],
            )
            plotted = True
    if plotted:
        ax.set_xlabel("seconds into the import")
        ax.set_ylabel("server RSS, all workers (MiB)")
        ax.set_ylim(
            0,
            max(
                m
                for s in scale.values()
                for _, m in s.get("import", {}).get("rss_series_mib") or [(0, 1)]
            )
            * 1.15,
        )
        ax.set_title("RSS during an Okta-style import (filter + POST per user)")
        ax.legend(fontsize=7)
    else:
        ax.set_axis_off()

    fig.suptitle(
        f"deskgate benchmark — {results.get('machine', {}).get('cpu_count')} CPUs, "
        f"`{results.get('command')}`",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKDOWN).write_text(render(results))
    chart(results, out / CHART)
