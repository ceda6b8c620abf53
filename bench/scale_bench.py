"""deskgate at scale: one account with many agents, bulk-loaded through the storage layer's table
(`deskgate.store.models.Agent`'s columns and their types' conversions, written in batches with the
driver's bulk path, on the engine from `deskgate.store.base.make_engine`), then over HTTP:

* `filter=userName eq "..."` for random agents (Okta's lookup), one request at a time;
* list pages near the end of the list (`startIndex` close to `totalResults`, count=100);
* PATCH `active` of random agents;
* the server's RSS, sampled every half second, during an Okta-style import of new users
  (`filter userName eq` then POST for each) with K clients.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from deskgate import ids
from deskgate.store.models import Agent, AgentSource, Role

from bench import scim_client
from bench.procs import RssSampler, Server
from bench.stats import Latency

BATCH = 10_000


def scale_email(index: int) -> str:
    return f"agent{index:07d}@scale.bench.example"


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def _agent_id(millis: int) -> str:
    """`ids.new_id(ids.AGENT)`'s format (prefix, 10 chars of milliseconds, 16 random chars), built
    ten bits at a time: `ids.new_id` costs ~9 us a call, a fifth of a 1M-row load."""
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = [_PAIRS[(value >> shift) & 0x3FF] for shift in range(120, -10, -10)]
    return f"{ids.AGENT}_{''.join(chars)}"


_COLUMNS = (
    "id",
    "account_id",
    "user_name",
    "user_name_normalized",
    "emails",
    "email",
    "email_normalized",
    "first_name",
    "last_name",
    "display_name",
    "role",
    "active",
    "source",
    "external_id",
    "password_hash",
    "locale",
    "title",
    "enterprise",
    "version",
    "created_at",
    "updated_at",
    "last_sign_in_at",
    "scim_deleted_at",
)


def _write_batch(
    engine: Engine, account_id: str, first: int, last: int, base: dt.datetime
) -> list[str]:
    """Agents `first`..`last - 1` in one transaction; returns their ids.

    Values go through the `agents` columns' own types (UTC datetimes, JSON, booleans: the
    conversion an ORM insert applies, via each type's bind processor), and rows are written with
    the driver's bulk path, `executemany` on SQLite and `COPY` on PostgreSQL: SQLAlchemy's per-row
    work in `insert(...)` caps a load at ~20k rows/s on SQLite and ~9k on PostgreSQL here, too
    slow for a million rows in the bench's time.
    """
    table = Agent.__table__
    missing = {column.name for column in table.columns} ^ set(_COLUMNS)
    if missing:
        raise RuntimeError(
            f"the agents table changed ({sorted(missing)}): update bench/scale_bench.py"
        )
    dialect = engine.dialect
    postgres = dialect.name == "postgresql"

    def convert(name: str, value: Any) -> Any:
        if postgres:
            return orjson.dumps(value).decode() if name in ("enterprise", "emails") else value
        process = table.c[name].type._cached_bind_processor(dialect)  # noqa: SLF001
        return process(value) if process is not None else value

    when = convert("created_at", base)  # only for its type; per-row values below
    del when
    constants = {
        name: convert(name, value)
        for name, value in (
            ("role", Role.AGENT.value),
            ("active", True),
            ("source", AgentSource.SCIM.value),
            ("enterprise", {}),
            ("version", 1),
            ("password_hash", None),
            ("locale", "en-US"),
            ("title", None),
            ("last_sign_in_at", None),
            ("scim_deleted_at", None),
            ("first_name", "Scale"),
            ("account_id", account_id),
        )
    }
    start_millis = int(base.timestamp() * 1000)
    rows = []
    agent_ids = []
    for index in range(first, last):
        email = scale_email(index)
        at = convert("created_at", base + dt.timedelta(milliseconds=index))
        agent_id = _agent_id(start_millis + index)
        agent_ids.append(agent_id)
        row = dict(
            constants,
            id=agent_id,
            user_name=email,
            user_name_normalized=email,
            emails=convert("emails", [{"value": email, "type": "work", "primary": True}]),
            email=email,
            email_normalized=email,
            last_name=f"Agent{index}",
            display_name=f"Scale Agent{index}",
            external_id=f"00uscale{index:012d}",
            created_at=at,
            updated_at=at,
        )
        rows.append(tuple(row[name] for name in _COLUMNS))
    with engine.begin() as conn:
        if postgres:
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY {table.name} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for values in rows:
                    copy.write_row(values)
        else:
            placeholders = ", ".join("?" for _ in _COLUMNS)
            conn.exec_driver_sql(
                f"INSERT INTO {table.name} ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows
            )
    return agent_ids


def bulk_load(
    engine: Engine, account_id: str, count: int, *, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Insert `count` SCIM-provisioned agents into the account; returns timing and a sample of ids."""
    started = time.perf_counter()
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    sample_ids: list[str] = []
    sampled = set(random.Random(7).sample(range(count), min(count, 5000)))
    next_report = time.monotonic() + 15
    for first in range(0, count, BATCH):
        last = min(first + BATCH, count)
        written = _write_batch(engine, account_id, first, last, base)
        sample_ids += [
            agent_id for offset, agent_id in enumerate(written) if first + offset in sampled
        ]
        if time.monotonic() > next_report:
            progress(f"    {last:,} / {count:,} agents loaded")
            next_report = time.monotonic() + 15
    loaded = time.perf_counter() - started
    analyze_started = time.perf_counter()
    table = Agent.__table__
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        total = conn.execute(
            select(func.count()).select_from(table).where(table.c.account_id == account_id)
        ).scalar()
    return {
        "agents": int(total or 0),
        "load_seconds": round(loaded, 1),
        "rows_per_second": round(count / loaded) if loaded else 0,
        "analyze_seconds": round(time.perf_counter() - analyze_started, 1),
        "sample_ids": sample_ids,
    }


async def _latencies(
    base_url: str,
    token: str,
    *,
    agents: int,
    sample_ids: list[str],
    lookups: int,
    pages: int,
    patches: int,
    deadline_s: float,
) -> dict[str, Any]:
    rng = random.Random(11)
    client = scim_client.Client(base_url, token, 1)
    errors: list[str] = []
    deadline = time.monotonic() + deadline_s
    try:
        # Warm the connection (and the server's caches) as a running server would be.
        for _ in range(20):
            await client.call("GET", "/Users?count=1")

        filter_durations: list[float] = []
        for _ in range(lookups):
            if time.monotonic() > deadline:
                break
            email = scale_email(rng.randrange(agents))
            query = urllib.parse.urlencode(
                {"filter": f'userName eq "{email}"', "startIndex": 1, "count": 100},
                quote_via=urllib.parse.quote,
            )
            status, payload, seconds = await client.call("GET", f"/Users?{query}")
            filter_durations.append(seconds)
            if status != 200 or orjson.loads(payload).get("totalResults") != 1:
                errors.append(f"filter {email} -> {status}: {payload[:160]!r}")

        status, payload, _ = await client.call("GET", "/Users?startIndex=1&count=1")
        total = int(orjson.loads(payload).get("totalResults", 0)) if status == 200 else 0
        page_durations: list[float] = []
        for page in range(pages):
            if time.monotonic() > deadline:
                break
            start_index = max(1, total - 100 * (page + 1) + 1)
            status, payload, seconds = await client.call(
                "GET", f"/Users?startIndex={start_index}&count=100"
            )
            page_durations.append(seconds)
            listed = len(orjson.loads(payload).get("Resources") or []) if status == 200 else 0
            if status != 200 or listed != min(100, total - start_index + 1):
                errors.append(f"page at {start_index} -> {status}, {listed} resources")

        patch_durations: list[float] = []
        for i in range(patches):
            if time.monotonic() > deadline:
                break
            agent_id = sample_ids[rng.randrange(len(sample_ids))]
            body = orjson.dumps(
                {
                    "schemas": [scim_client.PATCH_SCHEMA],
                    "Operations": [{"op": "replace", "value": {"active": i % 2 == 1}}],
                }
            )
            status, payload, seconds = await client.call("PATCH", f"/Users/{agent_id}", body)
            patch_durations.append(seconds)
            if status not in (200, 204):
                errors.append(f"PATCH {agent_id} -> {status}: {payload[:160]!r}")
    finally:
        await client.close()
    return {
        "total_results": total,
        "filter": Latency.of(filter_durations).as_dict(),
        "last_pages": Latency.of(page_durations).as_dict(),
        "patch": Latency.of(patch_durations).as_dict(),
        "errors": len(errors),
        "error_samples": errors[:5],
    }


def latencies(base_url: str, token: str, **kwargs: Any) -> dict[str, Any]:
    return scim_client.run_async(_latencies(base_url, token, **kwargs))


def import_with_rss(
    server: Server,
    base_url: str,
    token: str,
    *,
    users: int,
    concurrency: int,
    run: str,
    deadline_s: float,
) -> dict[str, Any]:
    """The Okta import of `users` new users while sampling the server's RSS."""
    with RssSampler(server, interval=0.5) as sampler:
        result = scim_client.run_async(
            scim_client.import_users(
                base_url,
                token,
                users=users,
                concurrency=concurrency,
                run=run,
                deadline_s=deadline_s,
            )
        )
    samples = sampler.samples
    mib = 1024 * 1024
    series = [(round(t, 2), round(rss / mib, 1)) for t, rss in samples]
    result["rss_series_mib"] = series
    result["rss"] = _rss_summary(series)
    return result


def _rss_summary(series: list[tuple[float, float]]) -> dict[str, Any]:
    """Flat means: after the first fifth of the import (warm-up: caches, pools, the first
    requests' allocations), RSS never rises more than 10% (and 20 MiB) above where it was."""
    if not series:
        return {"flat": False}
    end = series[-1][0] or 1.0
    after_warmup = [rss for t, rss in series if t >= end / 5] or [series[-1][1]]
    baseline = after_warmup[0]
    peak = max(rss for _, rss in series)
    growth = max(after_warmup) - baseline
    return {
        "start_mib": series[0][1],
        "after_warmup_mib": baseline,
        "peak_mib": peak,
        "end_mib": series[-1][1],
        "growth_after_warmup_mib": round(growth, 1),
        "flat": growth <= max(20.0, baseline * 0.10),
    }
