"""Servers the bench starts (uvicorn, Node): start on 127.0.0.1, wait until they answer, read their
memory, stop them.

Each server runs in its own process group whose id is the server's pid, so stopping it ends the
workers it forked and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


class ServerFailed(RuntimeError):
    """A server did not start; the message ends with the tail of its log."""


def repo_pythonpath() -> str:
    """PYTHONPATH with the repository root first, so child processes can import `bench`."""
    repo = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return f"{repo}{os.pathsep}{existing}" if existing else repo


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    info: dict[str, object] = field(default_factory=dict)
    """What the server announced on start (Jackson: its SCIM base path and token)."""

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        """The server and every process below it (uvicorn's workers)."""
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's workers when it has a supervisor (not
        the supervisor, not multiprocessing's resource tracker), else the server itself."""
        workers = []
        for pid in self.pids()[1:]:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                workers.append(pid)
        return workers or [self.process.pid]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and all its processes."""
        return sum(cpu_of(pid) for pid in self.pids())

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its processes."""
        return sum(rss_of(pid) for pid in self.pids())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        # Workers may outlive a supervisor that died first: they are in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    port: int = 0,
    ready_url: str | None = None,
    announce_json: bool = False,
    timeout: float = 60.0,
) -> Server:
    """Start `argv` and wait until it is ready: `ready_url` answers any HTTP status, or (with
    `announce_json`) the server printed a JSON line on stdout, read into `Server.info`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
    process = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE if announce_json else log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )
    log.close()
    server = Server(name=name, process=process, log_path=log_path, port=port)
    try:
        if announce_json:
            server.info = _read_announcement(server, timeout)
            server.port = int(server.info["port"])  # type: ignore[call-overload]
        if ready_url is not None:
            _wait_http(server, ready_url.format(origin=server.origin), timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _read_announcement(server: Server, timeout: float) -> dict[str, object]:
    result: dict[str, object] = {}
    stdout = server.process.stdout
    assert stdout is not None

    def read() -> None:
        for raw in stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("{"):
                result.update(json.loads(line))
                break
        # Keep draining so the child never blocks on a full pipe.
        for _ in stdout:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not result and time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        time.sleep(0.05)
    if not result:
        raise ServerFailed(
            f"{server.name} did not start within {timeout:.0f}s:\n{server.log_tail()}"
        )
    return result


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (one per worker with SO_REUSEPORT)."""
    wanted = f":{port:04X}"
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":
                count += 1
    return count


def wait_listeners(server: Server, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while listening_sockets(server.port) < count:
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise ServerFailed(
                f"{server.name}: fewer than {count} workers listen:\n{server.log_tail()}"
            )
        time.sleep(0.1)


def _wait_http(server: Server, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise ServerFailed(
        f"{server.name} did not answer {url} within {timeout:.0f}s:\n{server.log_tail()}"
    )


def uvicorn_argv(
    app: str, *, port: int, workers: int, factory: bool = True, reuse_port: bool = False
) -> list[str]:
    """uvicorn with uvloop and httptools, no access log (it would cost as much as a request).
    `reuse_port`: one SO_REUSEPORT socket per worker (deskgate.web.server) instead of uvicorn's `--workers`."""
    if reuse_port:
        argv = [
            sys.executable,
            "-m",
            "bench.serve",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        return [*argv, "--factory"] if factory else argv
    argv = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers), "--loop", "uvloop", "--http", "httptools"]
    argv += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "30"]
    if factory:
        argv.append("--factory")
    return argv


class RssSampler:
    """Samples a server's total RSS every `interval` seconds in a thread, until stopped."""

    def __init__(self, server: Server, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._started, self.server.rss_bytes()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic() - self._started, self.server.rss_bytes()))
