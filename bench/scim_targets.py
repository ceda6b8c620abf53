"""The SCIM servers the Okta workload runs against, each started fresh and stopped after:
deskgate (SQLite, PostgreSQL), the floor (bench/peers/floor_server.py, SQLite), scim2-server (in
memory) and @boxyhq/saml-jackson's directory sync
(in memory, PostgreSQL, SQLite).

A peer that cannot run here (no Node, no npm, an install that fails) is reported as unavailable
with the reason, never as a crash.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import deskgate_app, procs
from bench.databases import node_pg_url

JACKSON_DIR = Path(__file__).resolve().parent / "peers" / "jackson"
JACKSON_PACKAGE = "@boxyhq/saml-jackson"


class Unavailable(Exception):
    """This target cannot run on this machine; the message says why."""


@dataclass
class Target:
    key: str
    """Stable id in results.json, e.g. `deskgate-sqlite`."""
    label: str
    base_url: str
    token: str
    server: procs.Server
    persists: str
    """Where writes go: `SQLite (WAL)`, `PostgreSQL`, `memory`."""
    processes: str
    """How it runs, e.g. `uvicorn, 2 workers`."""


# --- deskgate -------------------------------------------------------------------------------


@contextlib.contextmanager
def deskgate(
    key: str, label: str, database_url: str, *, workers: int, log_dir: Path, reuse_port: bool = True
) -> Iterator[Target]:
    port = procs.free_port()
    origin = f"http://{procs.HOST}:{port}"
    engine = deskgate_app.migrated_engine(database_url)
    account = deskgate_app.create_account(engine, origin)
    engine.dispose()
    with deskgate_app.serve(
        database_url, port=port, workers=workers, log_dir=log_dir, label=key, reuse_port=reuse_port
    ) as server:
        yield Target(
            key=key,
            label=label,
            base_url=account.scim_base(origin),
            token=account.scim_token,
            server=server,
            persists="SQLite (WAL)" if database_url.startswith("sqlite") else "PostgreSQL",
            processes=f"uvicorn, {workers} worker{'s' if workers > 1 else ''}"
            + (" (SO_REUSEPORT)" if reuse_port and workers > 1 else ""),
        )


# --- scim2-server -----------------------------------------------------------------------------


@contextlib.contextmanager
def scim2_server(*, log_dir: Path) -> Iterator[Target]:
    try:
        import scim2_server  # noqa: F401
    except ImportError as problem:
        raise Unavailable(
            f"scim2-server is not installed ({problem}); `uv sync --group bench`"
        ) from None
    port = procs.free_port()
    token = secrets.token_urlsafe(24)
    argv = procs.uvicorn_argv("bench.peers.scim2_server_app:create_app", port=port, workers=1)
    with procs.start(
        "scim2-server",
        argv,
        log_path=log_dir / "scim2-server.log",
        port=port,
        env={"SCIM2_BENCH_TOKEN": token, "PYTHONPATH": procs.repo_pythonpath()},
        ready_url="{origin}/v2/ServiceProviderConfig",
    ) as server:
        yield Target(
            key="scim2-server",
            label="scim2-server (memory)",
            base_url=f"{server.origin}/v2",
            token=token,
            server=server,
            persists="memory",
            processes="uvicorn, 1 worker (in-memory store)",
        )


# --- the floor: a hand-written raw-ASGI server ------------------------------------------------


@contextlib.contextmanager
def floor(*, work: Path, log_dir: Path) -> Iterator[Target]:
    """bench/peers/floor_server.py on a fresh SQLite file, one uvicorn process."""
    port = procs.free_port()
    token = secrets.token_urlsafe(24)
    database = work / "floor.db"
    for stale in (database, database.with_name("floor.db-wal"), database.with_name("floor.db-shm")):
        stale.unlink(missing_ok=True)
    argv = procs.uvicorn_argv("bench.peers.floor_server:create_app", port=port, workers=1)
    with procs.start(
        "floor",
        argv,
        log_path=log_dir / "floor.log",
        port=port,
        env={
            "FLOOR_DB": str(database),
            "FLOOR_TOKEN": token,
            "FLOOR_BASE": f"http://{procs.HOST}:{port}/v2",
            "PYTHONPATH": procs.repo_pythonpath(),
        },
        ready_url="{origin}/v2/ServiceProviderConfig",
    ) as server:
        yield Target(
            key="floor",
            label="floor: raw ASGI (SQLite)",
            base_url=f"{server.origin}/v2",
            token=token,
            server=server,
            persists="SQLite (WAL)",
            processes="uvicorn, 1 process, no framework or ORM",
        )


# --- Jackson ----------------------------------------------------------------------------------


def jackson_version() -> str | None:
    package = JACKSON_DIR / "node_modules" / JACKSON_PACKAGE / "package.json"
    if not package.exists():
        return None
    import json

    return str(json.loads(package.read_text())["version"])


def ensure_jackson(*, allow_install: bool = True, timeout: float = 600) -> str:
    """Install Jackson into bench/peers/jackson (once; node_modules is not committed) and return
    its version. Native modules are not built (`--ignore-scripts`): the pure-JS PostgreSQL
    driver needs none; SQLite needs `ensure_jackson_sqlite`."""
    if shutil.which("node") is None:
        raise Unavailable("Node.js is not installed (`apt-get install nodejs npm`)")
    version = jackson_version()
    if version is not None:
        return version
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed, so @boxyhq/saml-jackson cannot be installed")
    if not allow_install:
        raise Unavailable(
            "@boxyhq/saml-jackson is not installed (run the bench without --no-install)"
        )
    command = [
        npm,
        "ci" if (JACKSON_DIR / "package-lock.json").exists() else "install",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]
    print(f"  installing {JACKSON_PACKAGE} with npm (once) ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            command, cwd=JACKSON_DIR, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`{' '.join(command)}` did not finish within {timeout:.0f}s") from None
    if done.returncode != 0:
        raise Unavailable(
            f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-600:]}"
        )
    version = jackson_version()
    if version is None:
        raise Unavailable("npm finished but @boxyhq/saml-jackson is not in node_modules")
    return version


def _better_sqlite3_binary() -> Path:
    return (
        JACKSON_DIR
        / "node_modules"
        / "better-sqlite3"
        / "build"
        / "Release"
        / "better_sqlite3.node"
    )


def ensure_jackson_sqlite(*, allow_build: bool, timeout: float = 900) -> None:
    """Jackson's SQLite engine needs better-sqlite3's native module. Its install script would
    download a prebuilt binary from GitHub (not reachable here), so it is compiled from source
    with npm's own node-gyp against the installed Node headers (about 3 minutes on 2 cores)."""
    if _better_sqlite3_binary().exists():
        return
    if not allow_build:
        raise Unavailable(
            "better-sqlite3 (Jackson's SQLite driver) is not built; run with --build-native "
            "to compile it (~3 min)"
        )
    node = shutil.which("node")
    assert node is not None
    prefix = Path(node).resolve().parent.parent
    node_gyp = None
    for candidate in (
        prefix / "lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
        prefix / "share/nodejs/node-gyp/bin/node-gyp.js",
    ):
        if candidate.exists():
            node_gyp = candidate
            break
    if node_gyp is None or not (prefix / "include" / "node" / "node.h").exists():
        raise Unavailable("cannot compile better-sqlite3: node-gyp or the Node headers are missing")
    print(
        "  compiling better-sqlite3 for Jackson's SQLite engine (once, ~3 min) ...",
        file=sys.stderr,
        flush=True,
    )
    try:
        done = subprocess.run(
            [node, str(node_gyp), "rebuild", "--release", f"--nodedir={prefix}"],
            cwd=JACKSON_DIR / "node_modules" / "better-sqlite3",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"compiling better-sqlite3 took more than {timeout:.0f}s") from None
    if done.returncode != 0 or not _better_sqlite3_binary().exists():
        raise Unavailable(
            f"compiling better-sqlite3 failed: {(done.stderr or done.stdout).strip()[-600:]}"
        )


@contextlib.contextmanager
def jackson(engine: str, *, log_dir: Path, database_url: str | None = None) -> Iterator[Target]:
    """Jackson's directory sync under bench/peers/jackson/server.mjs; `engine` is mem, postgres or
    sqlite (`database_url`: a SQLAlchemy PostgreSQL URL, or a SQLite file path)."""
    version = ensure_jackson()
    env = {
        "JACKSON_ENGINE": engine,
        "PORT": "0",
        "NODE_ENV": "production",
        "DO_NOT_TRACK": "1",
        "BOXYHQ_NO_ANALYTICS": "1",
    }
    if engine == "postgres":
        assert database_url is not None
        env["JACKSON_DB_URL"] = node_pg_url(database_url)
    elif engine == "sqlite":
        assert database_url is not None
        env["JACKSON_DB_URL"] = database_url
    node = shutil.which("node")
    assert node is not None
    label = {"mem": "memory", "postgres": "PostgreSQL", "sqlite": "SQLite"}[engine]
    with procs.start(
        f"jackson ({label})",
        [node, "server.mjs"],
        log_path=log_dir / f"jackson-{engine}.log",
        cwd=JACKSON_DIR,
        env=env,
        announce_json=True,
        timeout=120,
    ) as server:
        yield Target(
            key=f"jackson-{engine}",
            label=f"Jackson {version} ({label})",
            base_url=f"{server.origin}{server.info['base_path']}",
            token=str(server.info["token"]),
            server=server,
            persists=label,
            processes="Node.js, 1 process",
        )
