"""`--profile`: py-spy samples deskgate's workers while a workload runs.

py-spy runs with `--gil`, so only the thread holding the GIL is sampled: the profile is where the
worker's CPU goes, not where its threads wait. Each worker's raw (collapsed) stacks are kept in
`<work>/profiles/<name>.<pid>.txt`, and `<name>.summary.txt` lists the functions with the largest
self and inclusive shares over all workers. py-spy is in the bench dependency group. The report
shows the top frames per workload, beside a `--before` run's (bench/cli.py).
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.procs import Server

_FRAME = re.compile(r"(?P<function>.*?) \((?P<file>.*?):(?P<line>\d+)\)$")


def _py_spy() -> str | None:
    beside_python = Path(sys.executable).parent / "py-spy"
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def record(
    server: Server, folder: Path, name: str, results: dict[str, Any], rate: int = 200
) -> Iterator[None]:
    py_spy = _py_spy()
    profiles = results.setdefault("profiles", {})
    if py_spy is None:
        profiles[name] = {"error": "py-spy is not installed (uv sync --group bench)"}
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    spies = []
    outputs = []
    for pid in server.worker_pids():
        output = folder / f"{name}.{pid}.txt"
        outputs.append(output)
        spies.append(
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "--gil",
                    "--nonblocking",
                    "--output",
                    str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
        summary = summarize([path for path in outputs if path.exists()])
        (folder / f"{name}.summary.txt").write_text(render(summary))
        profiles[name] = summary


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['function']} ({file})"


def summarize(paths: list[Path], top: int = 40) -> dict[str, Any]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            samples = int(count)
            total += samples
            frames = [_short(frame) for frame in stack.split(";")]
            own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "self": [[share(n), frame] for frame, n in own.most_common(top)],
        "inclusive": [[share(n), frame] for frame, n in inclusive.most_common(top * 2)],
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"samples (GIL held): {summary['samples']}", "", "self %:"]
    lines += [f"{pct:5.1f}  {frame}" for pct, frame in summary["self"]]
    lines += ["", "inclusive %:"]
    lines += [f"{pct:5.1f}  {frame}" for pct, frame in summary["inclusive"]]
    return "\n".join(lines) + "\n"


# --- the report's "Profiles" section ----------------------------------------------------------

TOP_FRAMES = 12
_ROOTS = (
    "(threading.py)",
    "(multiprocessing/",
    "(asyncio/",
    "(uvloop/",
    "(uvicorn/server.py)",
    "(uvicorn/main.py)",
    "(<string>)",
    "(anyio/_backends/",
    "(deskgate/web/server.py)",
    "(bench/serve.py)",
)


def _top(summary: dict[str, Any], kind: str) -> list[str]:
    if "error" in summary:
        return [summary["error"]]
    frames = summary.get(kind) or []
    if kind == "inclusive":  # the roots of threads and the event loop say nothing: skip them
        frames = [row for row in frames if not any(root in row[1] for root in _ROOTS)]
    return [f"{pct:.1f}% {frame}" for pct, frame in frames[:TOP_FRAMES]]


def markdown(results: dict[str, Any]) -> list[str]:
    """Top frames per profiled workload; beside the `--before` run's when it has them."""
    after = results.get("profiles") or {}
    before = (results.get("before") or {}).get("profiles") or {}
    if not after and not before:
        return []
    lines = [
        "## Profiles",
        "",
        "py-spy `--gil` samples of deskgate's workers while each workload ran (`--profile`): where "
        "the CPU goes, by function (self = in the function itself, inclusive = with its callees). "
        "Raw stacks: `<work>/profiles/`.",
        "",
    ]
    if before:
        lines += [
            f"Before: `{results['before'].get('command')}` on {results['before'].get('started_at')} "
            f"(commit {results['before'].get('commit') or '?'}).",
            "",
        ]
    for name in sorted(after.keys() | before.keys()):
        lines += [f"### {name}", ""]
        for kind in ("self", "inclusive"):
            columns = (
                [("before", before.get(name)), ("after", after.get(name))]
                if before
                else [("", after.get(name))]
            )
            shown = [
                (
                    f"{label + ': ' if label else ''}{kind} % ({summary.get('samples', 0):,} samples)",
                    summary,
                )
                for label, summary in columns
                if summary is not None
            ]
            tops = [_top(summary, kind) for _, summary in shown]
            depth = max(len(top) for top in tops)
            lines.append("| " + " | ".join(label for label, _ in shown) + " |")
            lines.append("|" + "|".join(" --- " for _ in shown) + "|")
            for i in range(depth):
                cells = [top[i] if i < len(top) else "" for top in tops]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            lines.append("")
    return lines
