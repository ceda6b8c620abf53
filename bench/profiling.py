"""`--profile`: py-spy samples deskgate's workers while a workload runs.

py-spy runs with `--gil`, so only the thread holding the GIL is sampled: the profile is where the
worker's CPU goes, not where its threads wait. Each worker's raw (collapsed) stacks are kept in
`<work>/profiles/<name>.<pid>.txt`, and `<name>.summary.txt` lists the functions with the largest
self and inclusive shares over all workers. py-spy is not a dependency of the bench: install it
into the environment (`uv pip install py-spy`) to use this.
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
        profiles[name] = {"error": "py-spy is not installed (uv pip install py-spy)"}
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
