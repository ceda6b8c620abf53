"""docs/benchmarks.png: the run's figures as four panels (SAML, SCIM, scale, RSS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.targets import FILTER_P99_TARGET_MS


def draw(results: dict[str, Any], path: Path) -> None:
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
