"""Serve an ASGI app the way `deskgate serve --workers N` does (deskgate.web.server: one
SO_REUSEPORT socket per worker), for deskgate and for the Python peers alike:

    python -m bench.serve APP --port 8000 --workers 2 [--factory]
"""

from __future__ import annotations

import argparse
import os

from deskgate.web.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serve", description=__doc__.splitlines()[0]
    )
    parser.add_argument("app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--factory", action="store_true")
    args = parser.parse_args()
    serve(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        factory=args.factory,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
