"""Run an ASGI app under uvicorn with N worker processes, each on its own SO_REUSEPORT socket.

`uvicorn --workers N` shares one listening socket, and whichever worker wakes first accepts every
connection waiting in the backlog: a client that opens its keep-alive connections in a burst (an
IdP's provisioning agent) then lands almost entirely on one worker — measured here with 16
connections and 2 workers, 14 went to one, and the second core sat idle. With one SO_REUSEPORT
socket per worker, Linux spreads new connections across the workers.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
from typing import Any

import uvicorn


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


def serve(app: str, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Serve the ASGI app named `app` ("module:attr"); extra options go to uvicorn.Config.

    With several workers, a worker that dies takes the others down with it, so that the process
    supervisor (systemd, a container runtime) restarts the whole node.
    """
    options = {"access_log": False, "timeout_keep_alive": 30, **options}
    if workers <= 1:
        uvicorn.run(app, host=host, port=port, **options)
        return
    # Fail fast, in the parent, if the address is taken.
    _listen(host, port, reuse_port=True).close()
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_worker, args=(app, host, port, options), name=f"deskgate-worker-{n}")
        for n in range(workers)
    ]
    for child in children:
        child.start()

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
            child.join(timeout=10)
