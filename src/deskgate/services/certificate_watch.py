"""The certificate watch: expiry warnings for every connection's certificates, and the end of
rollover overlaps. Every node runs it (after each metadata refresh pass) and so may
`deskgate certificates check` from cron.

Each certificate (the IdP's signing certificates, the SP's current and next certificates) gets
certificate.expiring at 90, 30, 7 and 1 days before it expires and certificate.expired after,
each once: the notice row and the event are written in one transaction, and the notice is an
insert-if-absent on (account, usage, fingerprint, threshold), so of two nodes passing at once
only one records. A certificate first seen late gets only the most urgent warning due.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from deskgate.saml.certs import certificate_info
from deskgate.services import certificates, events, sp_keys
from deskgate.services.events import actors
from deskgate.store import certificates as certificate_store
from deskgate.store.models import SSOConnection

THRESHOLDS_DAYS = (90, 30, 7, 1)
EXPIRED = 0
ACTOR = actors.system("certificate watch")
log = logging.getLogger("deskgate.certificates")


def threshold_due(not_after: dt.datetime, now: dt.datetime) -> int | None:
    """The most urgent warning due for a certificate: 90/30/7/1 (days), EXPIRED, or None."""
    if not_after <= now:
        return EXPIRED
    left = not_after - now
    due = [days for days in THRESHOLDS_DAYS if left <= dt.timedelta(days=days)]
    return min(due) if due else None


def days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    """Whole days until expiry (0 on its last day, negative once expired)."""
    return (not_after - now) // dt.timedelta(days=1)


@dataclass(frozen=True)
class WatchedCertificate:
    usage: str
    """`idp_signing` or `sp`."""
    fingerprint: str
    subject: str
    not_after: dt.datetime
    role: str
    """metadata / admin / previous_metadata for the IdP's; current / next for the SP's."""


def watched(db: Session, connection: SSOConnection, now: dt.datetime) -> list[WatchedCertificate]:
    """Every certificate of the connection the watch covers."""
    found = [
        WatchedCertificate(
            certificates.IDP_SIGNING, row.fingerprint, row.subject, row.not_after, row.source
        )
        for row in certificate_store.for_account(db, connection.account_id)
    ]
    for role, pem in (
        ("current", connection.sp_certificate_pem),
        ("next", connection.sp_next_certificate_pem),
    ):
        if pem:
            info = certificate_info(pem, now)
            found.append(
                WatchedCertificate(
                    sp_keys.SP, info.sha256_fingerprint, info.subject, info.not_after, role
                )
            )
    return found


@dataclass(frozen=True)
class Finding:
    """A certificate with a warning due, and whether this pass recorded its event."""

    account_id: str
    usage: str
    fingerprint: str
    subject: str
    not_after: str
    days_left: int
    threshold_days: int
    event: str
    recorded: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WatchReport:
    checked_connections: int = 0
    findings: list[Finding] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_connections": self.checked_connections,
            "findings": [finding.to_json() for finding in self.findings],
            "recorded": sum(1 for finding in self.findings if finding.recorded),
            "removed": self.removed,
        }


def _notify(db: Session, connection: SSOConnection, now: dt.datetime) -> Iterator[Finding]:
    notified = certificate_store.notices(db, connection.account_id)
    for cert in watched(db, connection, now):
        threshold = threshold_due(cert.not_after, now)
        if threshold is None:
            continue
        event = "certificate.expired" if threshold == EXPIRED else "certificate.expiring"
        already = any(
            usage == cert.usage and fingerprint == cert.fingerprint and days <= threshold
            for usage, fingerprint, days in notified
        )
        recorded = not already and certificate_store.claim_notice(
            db, connection.account_id, cert.usage, cert.fingerprint, threshold, now
        )
        data: dict[str, Any] = {
            "fingerprint": cert.fingerprint,
            "subject": cert.subject,
            "not_after": events.timestamp(cert.not_after),
            "usage": cert.usage,
        }
        if threshold != EXPIRED:
            data.update(days=days_left(cert.not_after, now), threshold_days=threshold)
        if recorded:
            events.record(db, connection.account_id, event, ACTOR, data)
        yield Finding(
            account_id=connection.account_id,
            usage=cert.usage,
            fingerprint=cert.fingerprint,
            subject=cert.subject,
            not_after=data["not_after"],
            days_left=days_left(cert.not_after, now),
            threshold_days=threshold,
            event=event,
            recorded=recorded,
        )


def check_connection(
    db: Session, connection: SSOConnection, now: dt.datetime
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """One connection's pass, in the caller's transaction: end overlaps, then warn."""
    removed = [
        {
            "account_id": connection.account_id,
            "usage": certificates.IDP_SIGNING,
            **certificates.certificate_data(row),
        }
        for row in certificates.prune_overlap(db, connection, now, ACTOR)
    ]
    if sp_keys.drop_retired_key(db, connection, now):
        removed.append(
            {"account_id": connection.account_id, "usage": sp_keys.SP, "retired_key": True}
        )
    return list(_notify(db, connection, now)), removed


def run(sessions: Callable[[], Session], now: dt.datetime) -> WatchReport:
    """Check every connection, each in its own transaction; one failing never stops the others."""
    with sessions() as db:
        account_ids = certificate_store.connection_account_ids(db)
    report = WatchReport()
    for account_id in account_ids:
        try:
            with sessions() as db:
                connection = db.get(SSOConnection, account_id)
                if connection is None:
                    continue
                findings, removed = check_connection(db, connection, now)
                db.commit()
        except Exception:  # noqa: BLE001 - one connection's failure must not stop the others
            log.exception("The certificate watch failed for account %s", account_id)
            continue
        report.checked_connections += 1
        report.findings.extend(findings)
        report.removed.extend(removed)
    return report
