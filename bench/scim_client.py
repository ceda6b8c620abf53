"""Okta's provisioning pattern as an HTTP client (aiohttp, K concurrent clients), and the list crawl.

For each new agent Okta sends, in order (Okta's SCIM 2.0 reference, "Create the user" and
"Update a specific user"; bodies as Okta sends them):

1. `GET /Users?filter=userName eq "<email>"&startIndex=1&count=100` (expects an empty list)
2. `POST /Users` with the full user (password included) -> 201
3. `GET /Users/{id}` -> 200
4. `PUT /Users/{id}` with the whole user, a changed name -> 200
5. `PATCH /Users/{id}` `{"op": "replace", "value": {"active": false}}` -> 200

then the crawl: `GET /Users?startIndex=s&count=100` until the server says there is no more, and
a check that every user created above was listed exactly once.

The client is built to cost little per request (pre-encoded bodies, orjson, uvloop when there):
httpx's async client costs 2-3 ms of CPU per request here and would measure itself.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.stats import Latency

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
STEPS = ("filter", "create", "get", "replace", "deactivate")
MAX_ERROR_SAMPLES = 5


def user_name(run: str, index: int) -> str:
    return f"okta.user{index:07d}@{run}.bench.example"


def okta_user(run: str, index: int, *, given: str = "Test") -> dict[str, Any]:
    email = user_name(run, index)
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": given, "familyName": f"User{index}"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} User{index}",
        "locale": "en-US",
        "externalId": f"00u{run[:6]}{index:013d}",
        "groups": [],
        "password": f"Pw-{index:07d}-bench!",
        "active": True,
    }


DEACTIVATE = orjson.dumps(
    {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]}
)


@dataclass
class Tally:
    """What a workload saw: durations per step, status codes, errors with a few samples."""

    durations: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(message[:400])

    def all_durations(self) -> list[float]:
        return [d for values in self.durations.values() for d in values]


class Client:
    """One aiohttp session bound to a SCIM base URL and bearer token."""

    def __init__(self, base_url: str, token: str, concurrency: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=60),
            skip_auto_headers=("User-Agent",),
        )
        self.json_headers = {"Content-Type": "application/scim+json"}

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, bytes, float]:
        """(status, body, seconds); status 0 when the request failed without an answer."""
        started = time.perf_counter()
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                data=body,
                headers=self.json_headers if body is not None else None,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as problem:
            return 0, f"{type(problem).__name__}: {problem}".encode(), time.perf_counter() - started
        return status, payload, time.perf_counter() - started


def _filter_path(email: str) -> str:
    query = urllib.parse.urlencode(
        {"filter": f'userName eq "{email}"', "startIndex": 1, "count": 100},
        quote_via=urllib.parse.quote,
    )
    return f"/Users?{query}"


async def _step(
    client: Client,
    tally: Tally,
    step: str,
    method: str,
    path: str,
    expect: int | tuple[int, ...],
    body: bytes | None = None,
) -> bytes | None:
    status, payload, seconds = await client.call(method, path, body)
    tally.durations[step].append(seconds)
    key = f"{step} {status}"
    tally.statuses[key] = tally.statuses.get(key, 0) + 1
    if status != expect and not (isinstance(expect, tuple) and status in expect):
        tally.error(f"{method} {path[:80]} -> {status} (expected {expect}): {payload[:200]!r}")
        return None
    return payload


async def okta_user_lifecycle(
    client: Client, tally: Tally, run: str, index: int, *, steps: int = 5
) -> str | None:
    """The five requests Okta sends for one new agent (or the first `steps`); returns its id."""
    email = user_name(run, index)
    found = await _step(client, tally, "filter", "GET", _filter_path(email), 200)
    if found is None:
        return None
    if orjson.loads(found).get("totalResults") not in (0, None):
        tally.error(f"filter for new user {email} found something: {found[:200]!r}")
        return None
    if steps < 2:
        return None
    created = await _step(
        client, tally, "create", "POST", "/Users", 201, orjson.dumps(okta_user(run, index))
    )
    if created is None:
        return None
    user_id = str(orjson.loads(created).get("id", ""))
    if not user_id:
        tally.error(f"POST for {email} answered no id")
        return None
    if steps < 3:
        return user_id
    path = f"/Users/{urllib.parse.quote(user_id, safe='')}"
    if await _step(client, tally, "get", "GET", path, 200) is None or steps < 4:
        return user_id
    replacement = {**okta_user(run, index, given="Renamed"), "id": user_id}
    if (
        await _step(client, tally, "replace", "PUT", path, 200, orjson.dumps(replacement)) is None
        or steps < 5
    ):
        return user_id
    # RFC 7644 §3.5.2: 200 with the resource, or 204 No Content (scim2-server answers 204).
    await _step(client, tally, "deactivate", "PATCH", path, (200, 204), DEACTIVATE)
    return user_id


async def run_pool(
    concurrency: int, count: int, job: Callable[[int], Awaitable[None]], deadline_s: float
) -> tuple[int, float, bool]:
    """Run `job(i)` for i in range(count) on `concurrency` workers; returns (done, seconds,
    stopped_early). Workers take no new index once `deadline_s` has passed."""
    next_index = 0
    done = 0
    deadline = time.monotonic() + deadline_s
    stopped = False

    async def worker() -> None:
        nonlocal next_index, done, stopped
        while next_index < count:
            if time.monotonic() > deadline:
                stopped = True
                return
            index = next_index
            next_index += 1
            await job(index)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - started, stopped


@dataclass
class Crawl:
    pages: int
    seconds: float
    listed: int
    total_results: int | None
    expected: int
    missing: int
    duplicates: int
    errors: int
    latency: Latency
    first_error: str | None = None

    @property
    def correct(self) -> bool:
        return self.errors == 0 and self.missing == 0 and self.duplicates == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
            "listed": self.listed,
            "total_results": self.total_results,
            "expected": self.expected,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "correct": self.correct,
            "latency": self.latency.as_dict(),
            "first_error": self.first_error,
        }


async def crawl(
    client: Client, expected_user_names: set[str], *, count: int = 100, max_pages: int | None = None
) -> Crawl:
    """List every user, `count` at a time, the way an IdP's import does: follow startIndex until
    a page is empty or startIndex passes totalResults."""
    max_pages = max_pages or (len(expected_user_names) // count) * 2 + 20
    seen: dict[str, int] = {}
    durations: list[float] = []
    start_index, pages, errors, total = 1, 0, 0, None
    first_error = None
    started = time.perf_counter()
    while pages < max_pages:
        status, payload, seconds = await client.call(
            "GET", f"/Users?startIndex={start_index}&count={count}"
        )
        durations.append(seconds)
        pages += 1
        if status != 200:
            errors += 1
            first_error = first_error or f"GET page at {start_index} -> {status}: {payload[:200]!r}"
            break
        page = orjson.loads(payload)
        resources = page.get("Resources") or []
        total = page.get("totalResults")
        for resource in resources:
            name = str(resource.get("userName", "")).lower()
            seen[name] = seen.get(name, 0) + 1
        start_index += len(resources)
        if not resources or (isinstance(total, int) and start_index > total):
            break
    seconds = time.perf_counter() - started
    expected = {name.lower() for name in expected_user_names}
    return Crawl(
        pages=pages,
        seconds=seconds,
        listed=sum(seen.values()),
        total_results=total,
        expected=len(expected),
        missing=len(expected - seen.keys()),
        duplicates=sum(n - 1 for n in seen.values() if n > 1),
        errors=errors,
        latency=Latency.of(durations),
        first_error=first_error,
    )


async def okta_workload(
    base_url: str,
    token: str,
    *,
    users: int,
    concurrency: int,
    run: str,
    deadline_s: float,
    crawl_after: bool = True,
) -> dict[str, Any]:
    """Okta's pattern for `users` new agents with `concurrency` clients, then the crawl."""
    client = Client(base_url, token, concurrency)
    tally = Tally()
    created: set[str] = set()
    try:

        async def job(index: int) -> None:
            if await okta_user_lifecycle(client, tally, run, index):
                created.add(user_name(run, index))

        done, seconds, stopped = await run_pool(concurrency, users, job, deadline_s)
        requests = len(tally.all_durations())
        result: dict[str, Any] = {
            "created": sorted(created),
            "users": users,
            "users_done": done,
            "concurrency": concurrency,
            "stopped_early": stopped,
            "requests": requests,
            "seconds": round(seconds, 2),
            "per_second": round(requests / seconds, 1) if seconds else 0.0,
            "errors": tally.errors,
            "error_samples": tally.samples,
            "statuses": tally.statuses,
            "latency": Latency.of(tally.all_durations()).as_dict(),
            "steps": {
                step: Latency.of(values).as_dict() for step, values in tally.durations.items()
            },
        }
        if crawl_after:
            result["crawl"] = (
                await crawl(client, {user_name(run, i) for i in range(done)})
            ).as_dict()
        return result
    finally:
        await client.close()


async def crawl_users(
    base_url: str, token: str, expected_user_names: set[str], *, count: int = 100
) -> dict[str, Any]:
    client = Client(base_url, token, 1)
    try:
        return (await crawl(client, expected_user_names, count=count)).as_dict()
    finally:
        await client.close()


async def import_users(
    base_url: str,
    token: str,
    *,
    users: int,
    concurrency: int,
    run: str,
    deadline_s: float,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """An Okta import of new users: `filter userName eq` then POST, for each."""
    client = Client(base_url, token, concurrency)
    tally = Tally()
    try:

        async def job(index: int) -> None:
            await okta_user_lifecycle(client, tally, run, index, steps=2)
            if on_progress is not None:
                on_progress(index)

        done, seconds, stopped = await run_pool(concurrency, users, job, deadline_s)
        requests = len(tally.all_durations())
        return {
            "users": users,
            "users_done": done,
            "stopped_early": stopped,
            "requests": requests,
            "seconds": round(seconds, 2),
            "per_second": round(requests / seconds, 1) if seconds else 0.0,
            "errors": tally.errors,
            "error_samples": tally.samples,
            "latency": Latency.of(tally.all_durations()).as_dict(),
        }
    finally:
        await client.close()


def run_async(coroutine: Awaitable[Any]) -> Any:
    """Run on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]
