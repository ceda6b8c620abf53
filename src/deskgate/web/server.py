"""Run an ASGI app under uvicorn with N worker processes, each on its own SO_REUSEPORT socket.

`uvicorn --workers N` shares one listening socket, and whichever worker wakes first accepts every
connection waiting in the backlog: a client that opens its keep-alive connections in a burst (an
IdP's provisioning agent) then lands almost entirely on one worker — measured here with 16
connections and 2 workers, 14 went to one, and the second core sat idle. With one SO_REUSEPORT
socket per worker, Linux spreads new connections across the workers.

`deskgate serve` runs one worker per CPU this process may use (`default_workers`): a worker is one
Python process, so one core at most; with fewer, the other cores sit idle under load.

Operations: with several workers, metrics are multiprocess (each worker writes its values to
files under PROMETHEUS_MULTIPROC_DIR, a fresh directory made here unless the operator set one,
and a scrape adds them up). `metrics_bind` serves /metrics on its own listener, from the parent.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
from typing import Any

import uvicorn


def default_workers() -> int:
    """One worker per CPU this process may run on (its affinity mask: a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _worker(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    config = uvicorn.Config(app, **options)
    config.load()  # build the app before listening: no connection waits on an import
    uvicorn.Server(config).run(sockets=[_listen(host, port, reuse_port=True)])


def serve_metrics(address: tuple[str, int]) -> Any:
    """Serve /metrics on its own listener, in a daemon thread; returns the WSGI server.

    With several workers this runs in the parent, which adds up the workers' files.
    """
    from prometheus_client import start_http_server

    from deskgate import metrics

    server, _thread = start_http_server(
        address[1], addr=address[0], registry=metrics.scrape_registry()
    )
    return server


def serve(
    app: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    metrics_bind: tuple[str, int] | None = None,
    **options: Any,
) -> None:
    """Serve the ASGI app named `app` ("module:attr"); extra options go to uvicorn.Config.

    With several workers, a worker that dies takes the others down with it, so that the process
    supervisor (systemd, a container runtime) restarts the whole node. On SIGTERM, in-flight
    requests get `timeout_graceful_shutdown` seconds to finish.
    """
    options = {
        "access_log": False,
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": 30,
        **options,
    }
    if workers <= 1:
        if metrics_bind is not None:
            serve_metrics(metrics_bind)
        uvicorn.run(app, host=host, port=port, **options)
        return
    # Fail fast, in the parent, if the address is taken.
    _listen(host, port, reuse_port=True).close()
    own_metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before any worker starts: spawned workers read it when they import prometheus_client.
        own_metrics_dir = tempfile.mkdtemp(prefix="deskgate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    try:
        _serve_workers(app, host, port, workers, metrics_bind, options)
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def _serve_workers(
    app: str,
    host: str,
    port: int,
    workers: int,
    metrics_bind: tuple[str, int] | None,
    options: dict[str, Any],
) -> None:
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_worker, args=(app, host, port, options), name=f"deskgate-worker-{n}"
        )
        for n in range(workers)
    ]
    for child in children:
        child.start()
    if metrics_bind is not None:
        serve_metrics(metrics_bind)

    def stop(_signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: uvicorn finishes in-flight requests

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        multiprocessing.connection.wait([child.sentinel for child in children])
    finally:
        stop(signal.SIGTERM, None)
        for child in children:
            child.join(timeout=(options.get("timeout_graceful_shutdown") or 0) + 10)
