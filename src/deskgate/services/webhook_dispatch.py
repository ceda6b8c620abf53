"""The webhook dispatcher: every `deskgate serve` worker runs one (web/app.py).

A pass: fan out new events to deliveries, claim due deliveries under a lease, send them
(Standard Webhooks: `webhook-id` = the event's id, `webhook-timestamp`, `webhook-signature`
v1 HMAC-SHA256 by the endpoint's secret, and by the previous one too during a rotation
overlap), and record each attempt. Nodes coordinate only through the database
(store/webhooks.py says how), so a delivery is never sent from two nodes at once; a node killed
mid-send leaves a lease that runs out, and the delivery is sent again: at least once. Receivers
dedupe on `webhook-id`.

2xx is success; anything else (a redirect included: never followed), a refused address or no
answer within the timeout is a failure, retried after 5 s, 30 s, 2 min, 10 min, 30 min, 1 h,
2 h, 4 h, then every 8 h, until 3 days after the first attempt (then `failed`). Deliveries
about one agent go out one at a time in event order; events about no agent are not ordered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import httpx
import orjson
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from deskgate.config import Settings
from deskgate.errors import InvalidInput
from deskgate.services import url_guard
from deskgate.services.events import envelope
from deskgate.services.webhooks import SUBJECT
from deskgate.store import webhooks as webhook_store
from deskgate.store.base import utcnow
from deskgate.store.webhooks import Claimed, Outcome

log = logging.getLogger("deskgate.webhooks")

LEASE_MARGIN = dt.timedelta(seconds=5)
"""A lease outlives the send timeout by this much: the sender has recorded its attempt by then."""
MAX_IN_FLIGHT = 16
"""Deliveries one worker sends at once."""
MAX_ERROR_BACKOFF = 30.0
"""Seconds between passes at most while the database keeps failing."""
MAX_ANSWER_READ = 64 * 1024
"""Bytes of an answer read to keep its connection; past this the connection is closed."""
MAX_CLIENTS = 64
"""HTTP clients (each with its kept-alive connections) kept per worker, the least recent closed."""
PRUNE_EVERY = dt.timedelta(minutes=15)
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class DispatchPolicy:
    timeout: float = 10.0
    poll: float = 1.0
    retry_delays: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)
    retry_for: dt.timedelta = dt.timedelta(days=3)
    allow_private: bool = False
    keep_finished_for: dt.timedelta = dt.timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchPolicy:
        return cls(
            timeout=settings.webhook_timeout_seconds,
            poll=settings.webhook_poll_seconds,
            retry_delays=settings.webhook_retry_delays,
            retry_for=dt.timedelta(hours=settings.webhook_retry_for_hours),
            allow_private=settings.allow_private_webhook_urls,
            keep_finished_for=dt.timedelta(days=settings.webhook_deliveries_retention_days),
        )

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.timeout) + LEASE_MARGIN

    def retry_at(
        self, attempts: int, first_attempt_at: dt.datetime, now: dt.datetime
    ) -> dt.datetime | None:
        """When to try again after `attempts` failed ones; None: give up (past `retry_for`)."""
        delay = self.retry_delays[min(attempts, len(self.retry_delays)) - 1]
        next_at = now + dt.timedelta(seconds=delay)
        return None if next_at - first_attempt_at > self.retry_for else next_at


def signed_headers(claimed: Claimed, body: bytes, now: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers: one signature per live secret, space-separated."""
    message_id = claimed.event["id"]
    signatures = " ".join(Webhook(secret).sign(message_id, now, body) for secret in claimed.secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "deskgate-webhooks",
    }


class Dispatcher:
    """Sends one worker's share of the deliveries. `sessions(write=False)` must give read-only
    sessions (store.base.Sessions), so an idle poll never takes SQLite's write lock."""

    def __init__(
        self,
        sessions: Callable[..., Session],
        policy: DispatchPolicy,
        *,
        resolve: url_guard.Resolver = url_guard.system_resolver,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.resolve = resolve
        self.tls = verify if verify is not None else httpx.create_ssl_context(trust_env=True)
        self.pruned_at = utcnow()  # the first pass a while after start, not at every start
        self._closing: set[asyncio.Task[None]] = set()
        self._clients: OrderedDict[tuple[str, str, str | None], httpx.AsyncClient] = OrderedDict()

    # --- database (blocking: run in a thread) ---

    def prune(self, now: dt.datetime) -> int:
        """Delete finished deliveries past their retention, in short batches (every node does
        this every 15 minutes; it is idempotent)."""
        self.pruned_at = now
        before = now - self.policy.keep_finished_for
        deleted = 0
        while True:
            with self.sessions() as db:
                batch = webhook_store.prune_finished(db, before, PRUNE_BATCH)
                db.commit()
            deleted += batch
            if batch < PRUNE_BATCH:
                return deleted

    def prepare(self, room: int) -> list[Claimed]:
        """Fan out what is new and claim up to `room` due deliveries."""
        now = utcnow()
        if now - self.pruned_at >= PRUNE_EVERY:
            self.prune(now)
        with self.sessions(write=False) as db:
            behind, due = webhook_store.work_waiting(db, now)
        if behind:
            with self.sessions(write=False) as db:
                endpoint_ids = webhook_store.endpoints_behind(db)
            for endpoint_id in endpoint_ids:
                while True:
                    with self.sessions() as db:
                        read = webhook_store.fan_out(db, endpoint_id, now)
                        db.commit()
                    if read < webhook_store.FAN_OUT_BATCH:
                        break
            due = True
        if not due or room <= 0:
            return []
        with self.sessions() as db:
            claimed = webhook_store.claim(db, now, now + self.policy.lease, room)
            db.commit()
        return claimed

    def record(self, finished: Sequence[tuple[Claimed, Outcome]]) -> None:
        """Record finished attempts, all in one transaction."""
        if not finished:
            return
        with self.sessions() as db:
            lost = [
                c.delivery_id for c, outcome in finished if not webhook_store.finish(db, c, outcome)
            ]
            db.commit()
        if lost:
            log.warning("webhook deliveries %s: lease lost before the attempt was recorded", lost)

    def record_and_prepare(
        self, finished: Sequence[tuple[Claimed, Outcome]], room: int
    ) -> list[Claimed]:
        """One pass: record what was sent, then fan out and claim (one thread hop)."""
        self.record(finished)
        return self.prepare(room)

    # --- the network ---

    async def send(self, claimed: Claimed) -> Outcome:
        """POST the event once; the outcome says what to do next."""
        started = time.perf_counter()
        status, error = await self._post(claimed)
        now = utcnow()
        latency = round((time.perf_counter() - started) * 1000, 1)
        if error is None:
            return Outcome(now, status, latency, None, "succeeded", now)
        retry_at = self.policy.retry_at(claimed.attempts, claimed.first_attempt_at, now)
        if retry_at is None:
            return Outcome(now, status, latency, error, "failed", now)
        return Outcome(now, status, latency, error, "pending", retry_at)

    async def _post(self, claimed: Claimed) -> tuple[int | None, str | None]:
        """(status code, None) on a 2xx, else (status code or None, what went wrong)."""
        body = orjson.dumps(envelope(claimed.event))
        timeout = self.policy.timeout
        try:
            async with asyncio.timeout(timeout):
                hop = await asyncio.to_thread(self._pin, claimed.url)
                headers = {**signed_headers(claimed, body, utcnow()), "host": hop.host_header}
                async with self._client(hop).stream(
                    "POST", hop.url, content=body, headers=headers, extensions=hop.extensions
                ) as response:
                    status = response.status_code
                    # Read (and drop) a short answer so the connection can be kept alive.
                    kept = 0
                    async for chunk in response.aiter_raw():
                        kept += len(chunk)
                        if kept > MAX_ANSWER_READ:
                            break
        except InvalidInput as refused:
            return None, refused.message
        except TimeoutError:
            return None, f"No answer within {timeout:g} seconds."
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            httpx.StreamError,
            OSError,
            ValueError,
        ) as problem:
            return None, f"Could not send: {str(problem)[:300] or type(problem).__name__}."
        if 200 <= status < 300:
            return status, None
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirects are not followed; give the final URL."
        return status, f"HTTP {status} (expected 2xx)."

    def _client(self, hop: url_guard.Hop) -> httpx.AsyncClient:
        """A client per (checked address and port, Host, TLS name): its kept-alive connections
        are only ever reused for that same host name at that same address, never for another
        name (whose certificate was not checked on them) nor after the name moves."""
        key = (str(hop.url.copy_with(path="/", query=None)), hop.host_header, hop.server_name)
        client = self._clients.pop(key, None)
        if client is None:
            client = httpx.AsyncClient(
                verify=self.tls,
                trust_env=False,  # a proxy would resolve the name itself, defeating the pinning
                follow_redirects=False,
                timeout=self.policy.timeout,
                limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, keepalive_expiry=30),
            )
        self._clients[key] = client  # the most recently used last
        while len(self._clients) > MAX_CLIENTS:
            _, oldest = self._clients.popitem(last=False)
            task = asyncio.create_task(oldest.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    def _pin(self, url: str) -> url_guard.Hop:
        parsed = url_guard.parse(url, SUBJECT)
        return url_guard.pin(
            parsed, SUBJECT, allow_private=self.policy.allow_private, resolve=self.resolve
        )

    # --- the loop ---

    async def run_forever(self) -> None:
        """Pass after pass: at once while there is work, every `poll` seconds when idle, and
        when a send finishes (its outcome is recorded, which may let its agent's next go)."""
        in_flight: set[asyncio.Task[Outcome]] = set()
        finished: list[tuple[Claimed, Outcome]] = []
        wake = asyncio.Event()
        failures = 0

        def done(claimed: Claimed, task: asyncio.Task[Outcome]) -> None:
            in_flight.discard(task)
            wake.set()
            if not task.cancelled():
                finished.append((claimed, task.result()))

        try:
            while True:
                wake.clear()
                room = MAX_IN_FLIGHT - len(in_flight)
                batch, finished[:] = finished[:], []
                claimed: list[Claimed] = []
                try:
                    claimed = await asyncio.to_thread(self.record_and_prepare, batch, room)
                    failures = 0
                except Exception:  # the database is away: try again later, never in a hot loop
                    # Unrecorded attempts keep their leases, which run out: they are sent again.
                    failures += 1
                    log.exception("webhook dispatch pass failed")
                for item in claimed:
                    task = asyncio.create_task(self.send(item))
                    in_flight.add(task)
                    task.add_done_callback(partial(done, item))
                if claimed and len(claimed) == room:
                    continue
                wait = (
                    min(self.policy.poll * 2**failures, MAX_ERROR_BACKOFF)
                    if failures
                    else self.policy.poll
                )
                if not finished:
                    try:
                        async with asyncio.timeout(wait):
                            await wake.wait()
                    except TimeoutError:
                        pass
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            try:  # what was sent is recorded, so it is not sent again after a restart
                await asyncio.shield(asyncio.to_thread(self.record, finished))
            except Exception:
                log.exception("webhook attempts not recorded at shutdown (they will be resent)")
            clients, self._clients = list(self._clients.values()), OrderedDict()
            await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
