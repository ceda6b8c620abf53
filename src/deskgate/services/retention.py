"""Retention: delete what can no longer matter and bound what admins read.

Every app node runs `run` on a timer (web/app.py), and `deskgate retention run` runs it once.
It is idempotent and needs no coordination between nodes: each step deletes a bounded batch
per transaction and loops until nothing is left, so SQLite's write lock is never held long and
requests interleave with the pruning.

    sessions           expired (expires_at passed)
    saml_requests      expired (no response can answer them any more)
    seen_assertions    past their replay window (the assertion would be refused as expired)
    failed_sign_ins    older than the sign-in throttle window (they no longer count)
    login_attempts     older than the period, and beyond the newest N per account
    scim_request_log   older than the period, and beyond the newest N per account
    events             older than the period (never renumbered: a cursor past them still works)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from deskgate.config import Settings
from deskgate.store import audit as audit_store
from deskgate.store import scim_request_log, throttle
from deskgate.store import sessions as session_store
from deskgate.store import sso as sso_store
from deskgate.store.batches import Cutoff


@dataclass(frozen=True)
class RetentionPolicy:
    login_attempts_for: dt.timedelta
    login_attempts_per_account: int
    scim_request_log_for: dt.timedelta
    scim_request_log_per_account: int
    throttle_window: dt.timedelta
    batch_size: int = 1000
    events_for: dt.timedelta = dt.timedelta(days=400)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            login_attempts_for=dt.timedelta(days=settings.retention_login_attempts_days),
            login_attempts_per_account=settings.retention_login_attempts_per_account,
            scim_request_log_for=dt.timedelta(days=settings.retention_scim_request_log_days),
            scim_request_log_per_account=settings.retention_scim_request_log_per_account,
            throttle_window=dt.timedelta(seconds=settings.login_failure_window_seconds),
            batch_size=settings.retention_batch_size,
            events_for=dt.timedelta(days=settings.retention_events_days),
        )


Batch = Callable[[Session, int], int]
"""Delete at most n rows; return how many went."""


def _drain(sessions: Callable[[], Session], batch: Batch, limit: int) -> int:
    """Run `batch` in its own short transaction until a batch comes back short."""
    total = 0
    while True:
        with sessions() as db:
            deleted = batch(db, limit)
            db.commit()
        total += deleted
        if deleted < limit:
            return total


def run(
    sessions: Callable[[], Session], policy: RetentionPolicy, now: dt.datetime
) -> dict[str, int]:
    """One retention pass; {table: rows deleted}."""
    limit = policy.batch_size
    throttle_before = now - policy.throttle_window
    attempts_before = now - policy.login_attempts_for
    log_before = now - policy.scim_request_log_for
    events_before = now - policy.events_for
    steps: dict[str, Batch] = {
        "sessions": lambda db, n: session_store.prune_expired(db, now, n),
        "saml_requests": lambda db, n: sso_store.prune_requests(db, now, n),
        "seen_assertions": lambda db, n: sso_store.prune_seen_assertions(db, now, n),
        "failed_sign_ins": lambda db, n: throttle.prune(db, throttle_before, n),
        "login_attempts": lambda db, n: sso_store.prune_attempts(db, attempts_before, n),
        "scim_request_log": lambda db, n: scim_request_log.prune_request_log(db, log_before, n),
        "events": lambda db, n: audit_store.prune(db, events_before, n),
    }
    counts = {table: _drain(sessions, batch, limit) for table, batch in steps.items()}
    counts["login_attempts"] += _cap_per_account(
        sessions,
        sso_store.accounts_over_attempt_cap,
        sso_store.attempts_cutoff,
        sso_store.prune_attempts_up_to,
        policy.login_attempts_per_account,
        limit,
    )
    counts["scim_request_log"] += _cap_per_account(
        sessions,
        scim_request_log.accounts_over_request_log_cap,
        scim_request_log.request_log_cutoff,
        scim_request_log.prune_request_log_up_to,
        policy.scim_request_log_per_account,
        limit,
    )
    return counts


def _cap_per_account(
    sessions: Callable[[], Session],
    over: Callable[[Session, int], list[str]],
    cutoff_of: Callable[[Session, str, int], Cutoff | None],
    prune_up_to: Callable[[Session, str, Cutoff, int], int],
    keep: int,
    limit: int,
) -> int:
    """Keep only each account's newest `keep` rows, so one noisy source can't fill the disk."""
    with sessions() as db:
        accounts = over(db, keep)
        db.commit()
    deleted = 0
    for account_id in accounts:
        with sessions() as db:
            cutoff = cutoff_of(db, account_id, keep)
            db.commit()
        if cutoff is not None:

            def prune(db: Session, n: int, a: str = account_id, c: Cutoff = cutoff) -> int:
                return prune_up_to(db, a, c, n)

            deleted += _drain(sessions, prune, limit)
    return deleted
