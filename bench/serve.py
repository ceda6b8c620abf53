"""uvicorn workers that each own a SO_REUSEPORT socket, so the kernel spreads connections evenly:

    python -m bench.serve APP --port 8000 --workers 2 [--factory]

`uvicorn --workers N` shares one listening socket between its workers, and whichever worker wakes
first accepts every connection waiting in the backlog. A client that opens its keep-alive
connections in a burst (an IdP's provisioning agent, this bench) then lands almost entirely on
one worker: measured here with 16 connections and 2 workers, 14 went to one worker and 2 to the
other, so the second core sat idle. With one SO_REUSEPORT socket per worker, Linux hashes each
new connection to one of the sockets.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys


def _worker(app: str, host: str, port: int, factory: bool) -> None:
    import uvicorn

    config = uvicorn.Config(
        app, factory=factory, loop="uvloop", http="httptools", access_log=False, log_level="warning",
        timeout_keep_alive=30,
    )
    config.load()  # import and build the app before listening: no connection waits on an import
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    parser.add_argument("app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.app, args.host, args.port, args.factory)
        return
    command = [sys.executable, "-m", "bench.serve", args.app, "--host", args.host, "--port", str(args.port), "--worker"]
    if args.factory:
        command.append("--factory")
    children = [subprocess.Popen(command) for _ in range(args.workers)]

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    sys.exit(max(codes, default=0))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
