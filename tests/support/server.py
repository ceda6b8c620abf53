"""Serve an ASGI app with a real uvicorn server in a background thread, for real-HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["serve_app"]


@contextmanager
def serve_app(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 15.0,
    **uvicorn_options: Any,
) -> Iterator[str]:
    """Run `app` under uvicorn on host:port (0 = a free port) and yield its base URL.

    The socket is bound before uvicorn starts, so the port cannot be taken in between.
    The app's lifespan runs; if its startup fails, this raises instead of yielding.
    Leaving the block stops the server and waits for its thread. Extra keyword arguments
    go to uvicorn.Config (e.g. proxy_headers=True, root_path="/x").

        with serve_app(create_app(settings)) as base_url:
            page.goto(f"{base_url}/login")
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_config": None,  # leave logging alone: pytest captures uvicorn's log records
        "access_log": False,
        "ws": "none",  # no websockets import (and no DeprecationWarning from it)
        "lifespan": "auto",
        "timeout_graceful_shutdown": 3,
        **uvicorn_options,
    }
    server = uvicorn.Server(uvicorn.Config(app, **options))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                cause = failure[0] if failure else None
                raise RuntimeError(
                    f"uvicorn exited during startup (lifespan failed?): {cause!r}"
                ) from cause
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {startup_timeout}s")
            time.sleep(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
