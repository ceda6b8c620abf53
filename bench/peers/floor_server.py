"""The floor: a hand-written raw-ASGI SCIM server, as lean as Python gets with the same persistence.

    FLOOR_DB=/tmp/floor.db FLOOR_TOKEN=... uvicorn --factory bench.peers.floor_server:create_app

Per request: the bearer token's SHA-256 looked up in a table, the work, and a request-log row,
committed to SQLite (WAL, synchronous=NORMAL) in one transaction; orjson; one uvicorn process, no
framework, no ORM, no threadpool. It answers what the bench's Okta pattern and crawl send
(filter `userName eq`, POST, GET, PUT, PATCH, list with startIndex/count) and nothing more: it is
the yardstick deskgate's issue 10 measures against, not a SCIM implementation.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
USER_NAME_EQ = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (hash BLOB PRIMARY KEY, account TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, account TEXT NOT NULL,
  user_name TEXT NOT NULL, version INTEGER NOT NULL, doc BLOB NOT NULL,
  UNIQUE (account, user_name));
CREATE TABLE IF NOT EXISTS request_log (
  id INTEGER PRIMARY KEY, account TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
  status INTEGER NOT NULL, at REAL NOT NULL, duration_ms REAL NOT NULL);
"""


class Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _error(status: int, detail: str) -> Reply:
    return Reply(status, {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail})


class Floor:
    def __init__(self, path: str, token: str, base_url: str = "") -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.execute(
            "INSERT OR IGNORE INTO tokens VALUES (?, 'bench')",
            (hashlib.sha256(token.encode()).digest(),),
        )
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        method, path = scope["method"], scope["path"]
        query = scope["query_string"].decode()
        account = None
        self.db.execute("BEGIN IMMEDIATE")  # one process: never waits
        try:
            account = self._account(scope)
            status, payload = self._route(account, method, path, query, body)
        except Reply as reply:
            status, payload = reply.status, reply.body
        except ValueError as problem:  # bad JSON, a non-numeric startIndex
            refused = _error(400, f"Bad request: {problem}")
            status, payload = refused.status, refused.body
        if account is not None:
            self.db.execute(
                "INSERT INTO request_log (account, method, path, status, at, duration_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (account, method, f"{path}?{query}" if query else path, status, time.time(),
                 (time.perf_counter() - started) * 1000),
            )  # fmt: skip
        self.db.execute("COMMIT" if status < 400 else "ROLLBACK")
        if status >= 400 and account is not None:  # the failed request's log row, on its own
            self.db.execute(
                "INSERT INTO request_log (account, method, path, status, at, duration_ms) "
                "VALUES (?, ?, ?, ?, ?, 0)",
                (account, method, path, status, time.time()),
            )
        data = b"" if payload is None else orjson.dumps(payload)
        headers = [
            (b"content-type", b"application/scim+json"),
            (b"content-length", b"%d" % len(data)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _account(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                row = self.db.execute(
                    "SELECT account FROM tokens WHERE hash = ?",
                    (hashlib.sha256(value[7:]).digest(),),
                ).fetchone()
                if row is not None:
                    return str(row[0])
        raise _error(401, "A valid bearer token is required.")

    def _route(
        self, account: str, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        parts = path.rstrip("/").split("/")
        if parts[-1] == "Users" and method == "GET":
            return 200, self._list(account, dict(parse_qsl(query)))
        if parts[-1] == "Users" and method == "POST":
            return 201, self._create(account, orjson.loads(body))
        if len(parts) >= 2 and parts[-2] == "Users":
            if method == "GET":
                return 200, self._get(account, parts[-1])[1]
            if method == "PUT":
                return 200, self._put(account, parts[-1], orjson.loads(body))
            if method == "PATCH":
                return 200, self._patch(account, parts[-1], orjson.loads(body))
        if parts[-1] == "ServiceProviderConfig":
            return 200, {
                "patch": {"supported": True},
                "filter": {"supported": True, "maxResults": 100},
            }
        raise _error(404, f"No such endpoint: {method} {path}")

    def _list(self, account: str, params: dict[str, str]) -> dict[str, Any]:
        start = max(int(params.get("startIndex", 1)), 1)
        count = min(max(int(params.get("count", 100)), 0), 100)
        where, args = "account = ?", [account]
        if "filter" in params:
            match = USER_NAME_EQ.match(params["filter"])
            if match is None:
                raise _error(400, "Only filter=userName eq is supported.")
            where += " AND user_name = ?"
            args.append(match[1].replace('\\"', '"').lower())
        total = self.db.execute(f"SELECT count(*) FROM users WHERE {where}", args).fetchone()[0]
        rows = self.db.execute(
            f"SELECT doc FROM users WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",
            [*args, count, start - 1],
        ).fetchall()
        return {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(rows),
            "Resources": [orjson.loads(row[0]) for row in rows],
        }

    def _document(self, user_id: str, version: int, given: dict[str, Any]) -> dict[str, Any]:
        given.pop("password", None)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        meta = {"resourceType": "User", "lastModified": now, "version": f'W/"{version}"',
                "location": f"{self.base_url}/Users/{user_id}"}  # fmt: skip
        return {**given, "id": user_id, "active": given.get("active", True), "meta": meta}

    def _create(self, account: str, given: dict[str, Any]) -> dict[str, Any]:
        user_name = given.get("userName")
        if not isinstance(user_name, str) or not user_name:
            raise _error(400, "userName is required.")
        user_id = uuid.uuid4().hex
        document = self._document(user_id, 1, given)
        try:
            self.db.execute(
                "INSERT INTO users (id, account, user_name, version, doc) VALUES (?, ?, ?, 1, ?)",
                (user_id, account, user_name.lower(), orjson.dumps(document)),
            )
        except sqlite3.IntegrityError:
            raise _error(409, f"userName {user_name!r} is taken.") from None
        return document

    def _get(self, account: str, user_id: str) -> tuple[int, dict[str, Any]]:
        row = self.db.execute(
            "SELECT version, doc FROM users WHERE id = ? AND account = ?", (user_id, account)
        ).fetchone()
        if row is None:
            raise _error(404, f"No user {user_id}.")
        return int(row[0]), orjson.loads(row[1])

    def _store(self, user_id: str, version: int, document: dict[str, Any]) -> dict[str, Any]:
        document = self._document(user_id, version + 1, document)
        self.db.execute(
            "UPDATE users SET version = ?, user_name = ?, doc = ? WHERE id = ?",
            (
                version + 1,
                str(document.get("userName", "")).lower(),
                orjson.dumps(document),
                user_id,
            ),
        )
        return document

    def _put(self, account: str, user_id: str, given: dict[str, Any]) -> dict[str, Any]:
        version, _old = self._get(account, user_id)
        return self._store(user_id, version, given)

    def _patch(self, account: str, user_id: str, given: dict[str, Any]) -> dict[str, Any]:
        version, document = self._get(account, user_id)
        for operation in given.get("Operations") or []:
            if str(operation.get("op", "")).lower() not in ("replace", "add"):
                raise _error(400, "Only replace and add operations are supported.")
            value, path = operation.get("value"), operation.get("path")
            if path:
                value = {path: value}
            if not isinstance(value, dict):
                raise _error(400, "A value object is required.")
            document.update(value)
        return self._store(user_id, version, document)


def create_app() -> Floor:
    return Floor(
        os.environ["FLOOR_DB"], os.environ["FLOOR_TOKEN"], os.environ.get("FLOOR_BASE", "")
    )
