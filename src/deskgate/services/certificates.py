"""The IdP signing certificates of a connection: from the metadata, kept during a rollover
overlap, or added ahead of a rotation by an admin. Every one of them verifies signatures.

Every change moves the connection's `updated_at`: that is what makes every worker re-read its
parsed configuration (services/sso_config.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from sqlalchemy import delete
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.errors import Conflict, InvalidInput, NotFound
from deskgate.saml.certs import (
    certificate_fingerprint,
    normalize_certificate_pem,
    parse_certificate,
)
from deskgate.services import events
from deskgate.services.events import Actor
from deskgate.store import certificates as certificate_store
from deskgate.store.models import CertificateSource, IdPCertificate, SSOConnection

DEFAULT_OVERLAP = dt.timedelta(days=14)
"""How long a certificate dropped from the metadata keeps verifying (DESKGATE_CERTIFICATE_OVERLAP_DAYS)."""
MAX_CERTIFICATES = 10
"""Per connection: a bad signature is tried against each (at most this many checks)."""
IDP_SIGNING = "idp_signing"


def certificate_data(row: IdPCertificate, **extra: Any) -> dict[str, Any]:
    """The fields certificate.* events carry."""
    return {
        "fingerprint": row.fingerprint,
        "subject": row.subject,
        "not_after": events.timestamp(row.not_after),
        **extra,
    }


def new_row(account_id: str, pem: str, source: str, now: dt.datetime) -> IdPCertificate:
    """A row for a certificate (PEM or bare base64), not yet added to the session."""
    certificate = parse_certificate(pem)
    return IdPCertificate(
        id=ids.new_id(ids.IDP_CERTIFICATE),
        account_id=account_id,
        certificate_pem=normalize_certificate_pem(pem),
        fingerprint=certificate_fingerprint(certificate),
        subject=certificate.subject.rfc4514_string()[:1024],
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        source=source,
        added_at=now,
    )


def _remove(
    db: Session, connection: SSOConnection, row: IdPCertificate, reason: str, actor: Actor
) -> bool:
    """Delete the row if it is still there (another node may have been first); record it."""
    deleted = db.execute(
        delete(IdPCertificate).where(IdPCertificate.id == row.id),
        execution_options={"synchronize_session": False},
    )
    if getattr(deleted, "rowcount", 0) != 1:
        return False
    db.expunge(row)
    certificate_store.forget_notices(db, connection.account_id, IDP_SIGNING, row.fingerprint)
    events.record(
        db,
        connection.account_id,
        "certificate.removed",
        actor,
        certificate_data(row, reason=reason),
    )
    return True


def sync_from_metadata(
    db: Session,
    connection: SSOConnection,
    metadata_pems: Iterable[str],
    now: dt.datetime,
    *,
    overlap: dt.timedelta,
    actor: Actor,
) -> None:
    """Make the connection's certificates follow freshly read metadata.

    New ones are added (certificate.added, source metadata). One the metadata no longer lists is
    kept until `now + overlap` (source previous_metadata), unless it has expired or the overlap
    is zero: then it goes (certificate.removed). Certificates an admin added stay until the
    admin removes them; one the metadata now lists becomes a metadata certificate.
    """
    rows = {
        row.fingerprint: row for row in certificate_store.for_account(db, connection.account_id)
    }
    listed: set[str] = set()
    for pem in metadata_pems:
        certificate = parse_certificate(pem)
        fingerprint = certificate_fingerprint(certificate)
        listed.add(fingerprint)
        row = rows.get(fingerprint)
        if row is None:
            row = new_row(connection.account_id, pem, CertificateSource.METADATA.value, now)
            db.add(row)
            rows[fingerprint] = row
            events.record(
                db,
                connection.account_id,
                "certificate.added",
                actor,
                certificate_data(row, source=row.source),
            )
        elif row.source != CertificateSource.METADATA:
            row.source = CertificateSource.METADATA.value
            row.keep_until = None
    for fingerprint, row in rows.items():
        if fingerprint in listed or row.source == CertificateSource.ADMIN:
            continue
        if row.not_after <= now or overlap <= dt.timedelta(0):
            _remove(db, connection, row, "dropped_from_metadata", actor)
        elif row.source == CertificateSource.METADATA:
            row.source = CertificateSource.PREVIOUS_METADATA.value
            row.keep_until = now + overlap
    connection.updated_at = now
    db.flush()


def prune_overlap(
    db: Session, connection: SSOConnection, now: dt.datetime, actor: Actor
) -> list[IdPCertificate]:
    """Remove the certificates kept from a previous metadata whose overlap ended or which
    expired meanwhile; return those this call removed."""
    removed = []
    for row in certificate_store.for_account(db, connection.account_id):
        if row.source != CertificateSource.PREVIOUS_METADATA:
            continue
        reason = (
            "expired"
            if row.not_after <= now
            else "overlap_ended"
            if row.keep_until is not None and row.keep_until <= now
            else None
        )
        if reason is not None and _remove(db, connection, row, reason, actor):
            removed.append(row)
    if removed:
        connection.updated_at = now
    return removed


_PEM_HINT = "paste the IdP's certificate as PEM (-----BEGIN CERTIFICATE----- …) or its base64 body"


def parse_pasted_certificate(text: str, now: dt.datetime) -> tuple[str, x509.Certificate]:
    """(canonical PEM, certificate) of a certificate an admin pasted, or why it is refused."""
    text = text.strip()
    if not text:
        raise InvalidInput(f"No certificate given: {_PEM_HINT}.", field="certificate_pem")
    if "PRIVATE KEY" in text:
        raise InvalidInput(
            "That is a private key, not a certificate: never paste a private key here; "
            f"{_PEM_HINT}.",
            field="certificate_pem",
        )
    try:
        pem = normalize_certificate_pem(text)
        certificate = parse_certificate(pem)
    except ValueError as problem:
        raise InvalidInput(
            f"That is not an X.509 certificate ({problem}): {_PEM_HINT}.", field="certificate_pem"
        ) from None
    not_after = certificate.not_valid_after_utc
    if not_after <= now:
        raise InvalidInput(
            f"This certificate expired on {not_after:%Y-%m-%d}: ask the IdP for its new one.",
            field="certificate_pem",
        )
    return pem, certificate


def add_by_admin(
    db: Session, connection: SSOConnection, text: str, now: dt.datetime, *, actor: Actor
) -> IdPCertificate:
    """Accept the IdP's next certificate ahead of a rotation (source admin)."""
    pem, certificate = parse_pasted_certificate(text, now)
    rows = certificate_store.for_account(db, connection.account_id)
    fingerprint = certificate_fingerprint(certificate)
    if any(row.fingerprint == fingerprint for row in rows):
        raise Conflict(
            f"This certificate (SHA-256 {fingerprint}) is already accepted for this connection.",
            attribute="certificate_pem",
        )
    if len(rows) >= MAX_CERTIFICATES:
        raise Conflict(
            f"A connection keeps at most {MAX_CERTIFICATES} signing certificates: remove one first.",
            attribute="certificate_pem",
        )
    row = new_row(connection.account_id, pem, CertificateSource.ADMIN.value, now)
    db.add(row)
    connection.updated_at = now
    db.flush()
    events.record(
        db,
        connection.account_id,
        "certificate.added",
        actor,
        certificate_data(row, source=row.source),
    )
    return row


def remove_by_admin(
    db: Session, connection: SSOConnection, certificate_id: str, now: dt.datetime, *, actor: Actor
) -> IdPCertificate:
    """Remove a certificate the admin added; never the connection's last valid one."""
    row = certificate_store.by_id(db, connection.account_id, certificate_id)
    if row is None:
        raise NotFound("This certificate is not (or no longer) on this connection.")
    if row.source != CertificateSource.ADMIN:
        raise Conflict(
            "This certificate comes from the IdP metadata: it is removed when the metadata no "
            "longer lists it (after the overlap). Only certificates added here can be removed here.",
            attribute="certificate_id",
        )
    others_valid = [
        other
        for other in certificate_store.for_account(db, connection.account_id)
        if other.id != row.id and other.not_after > now
    ]
    if not others_valid:
        raise Conflict(
            "This is the connection's last valid signing certificate: without it no sign-in "
            "would verify. Add the IdP's new certificate (or re-import its metadata) first.",
            attribute="certificate_id",
        )
    _remove(db, connection, row, "removed_by_admin", actor)
    connection.updated_at = now
    return row
