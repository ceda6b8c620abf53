"""Server CPU per SCIM request, in-process: the Okta pattern (filter userName eq -> POST -> GET ->
PUT -> PATCH active:false) per user through httpx.ASGITransport against `create_app` on a temp
SQLite (or `--database-url`), timed with time.process_time.

The figure includes httpx's own client work; `--floor` measures that alone (the same requests
against an ASGI app that answers at once), to subtract. Compare two trees interleaved:

    for i in 1 2 3; do
      PYTHONPATH=/tmp/before/src uv run python -m bench.scim_cpu
      uv run python -m bench.scim_cpu
    done
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from deskgate.config import load_settings
from deskgate.web.app import create_app

from bench.deskgate_app import create_account, migrated_engine

ORIGIN = "http://testserver"
REQUESTS_PER_USER = 5


def _user(n: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"user{n}@bench.example",
        "name": {"givenName": "Bench", "familyName": f"User{n}"},
        "emails": [{"value": f"user{n}@bench.example", "primary": True, "type": "work"}],
        "displayName": f"Bench User{n}",
        "active": True,
    }


_PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


async def _okta_pattern(client: httpx.AsyncClient, base: str, first: int, users: int) -> None:
    for n in range(first, first + users):
        body = _user(n)
        found = await client.get(
            f"{base}/Users", params={"filter": f'userName eq "{body["userName"]}"'}
        )
        assert found.status_code == 200, found.text
        created = await client.post(f"{base}/Users", json=body)
        assert created.status_code == 201, created.text
        location = f"{base}/Users/{created.json()['id']}"
        got = await client.get(location)
        assert got.status_code == 200, got.text
        body["name"]["givenName"] = "Renamed"
        put = await client.put(location, json=body)
        assert put.status_code == 200, put.text
        patched = await client.patch(location, json=_PATCH)
        assert patched.status_code == 200, patched.text


async def _floor_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    status = 201 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b'{"id":"x"}'})


async def _measure(
    app: Any, base: str, token: str, users: int, warmup: int, profile: str | None
) -> float:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers=headers) as client:
        await _okta_pattern(client, base, 0, warmup)
        profiler = cProfile.Profile() if profile else None
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        await _okta_pattern(client, base, warmup, users)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        return (time.process_time() - started) * 1000 / (users * REQUESTS_PER_USER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    parser.add_argument("--profile", help="write a cProfile of the timed part to this file")
    parser.add_argument("--floor", action="store_true", help="time httpx alone (no deskgate)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = migrated_engine(url)
        account = create_account(engine, ORIGIN, name=f"cpu-{time.time_ns()}")
        settings = load_settings(
            {}, database_url=url, base_url=ORIGIN, secret_key="bench-secret-key-not-secret"
        )
        app = _floor_app if args.floor else create_app(settings, engine=engine)
        base = account.scim_base("")
        ms = asyncio.run(
            _measure(app, base, account.scim_token, args.users, args.warmup, args.profile)
        )
        engine.dispose()
    print(f"{'floor' if args.floor else 'deskgate'}: {ms:.3f} ms CPU per SCIM request")


if __name__ == "__main__":
    main()
