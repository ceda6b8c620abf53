"""SP key rollover: the account's own signing/encryption key is replaced without an outage.

1. Start: a new key and certificate are generated and published in the SP metadata beside the
   current one (both as signing and encryption KeyDescriptors). Assertions encrypted to either
   are decrypted; AuthnRequests are still signed with the current key.
2. The admin gives the IdP the new certificate (Okta: upload it as the encryption and, if it
   checks signed requests, signature certificate; metadata-driven IdPs re-read the SP metadata).
3. Complete: the new key signs; the old one leaves the metadata at once and keeps decrypting for
   the overlap (an IdP still encrypting to it keeps working meanwhile), then is dropped by the
   certificate watch.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from deskgate.errors import Conflict
from deskgate.saml.certs import certificate_info, sha256_fingerprint
from deskgate.saml.keys import generate_sp_keypair
from deskgate.services import events
from deskgate.services.events import Actor
from deskgate.store import certificates as certificate_store
from deskgate.store.models import SSOConnection

SP = "sp"


def new_keypair(account_name: str, now: dt.datetime) -> tuple[str, str]:
    """(private key PEM, certificate PEM) for an account's SP."""
    return generate_sp_keypair(now, common_name=f"deskgate SP for {account_name}"[:64])


def start_rollover(
    db: Session, connection: SSOConnection, account_name: str, now: dt.datetime, *, actor: Actor
) -> None:
    """Generate the next SP key and publish it beside the current one.

    A key retired by an earlier rollover and still in its overlap is dropped now: at most two
    SP keys decrypt at any time, which bounds the RSA work an anonymous response can cause.
    """
    if connection.sp_next_certificate_pem:
        raise Conflict(
            "An SP key rollover is already under way: give the IdP the new certificate shown "
            "below, then complete the rollover.",
            attribute="sp_key",
        )
    _forget_previous_key(db, connection)
    private_key, certificate = new_keypair(account_name, now)
    connection.sp_next_private_key_pem = private_key
    connection.sp_next_certificate_pem = certificate
    connection.updated_at = now
    info = certificate_info(certificate, now)
    events.record(
        db,
        connection.account_id,
        "sp_key.rollover_started",
        actor,
        {"fingerprint": info.sha256_fingerprint, "not_after": events.timestamp(info.not_after)},
    )


def complete_rollover(
    db: Session,
    connection: SSOConnection,
    now: dt.datetime,
    *,
    overlap: dt.timedelta,
    actor: Actor,
) -> None:
    """The new key signs from now on; the old one only decrypts, until `now + overlap`."""
    if not (connection.sp_next_private_key_pem and connection.sp_next_certificate_pem):
        raise Conflict("No SP key rollover is under way: start one first.", attribute="sp_key")
    previous_certificate = connection.sp_certificate_pem
    connection.sp_previous_private_key_pem = connection.sp_private_key_pem
    connection.sp_previous_certificate_pem = previous_certificate
    connection.sp_previous_until = now + overlap
    connection.sp_private_key_pem = connection.sp_next_private_key_pem
    connection.sp_certificate_pem = connection.sp_next_certificate_pem
    connection.sp_next_private_key_pem = None
    connection.sp_next_certificate_pem = None
    connection.updated_at = now
    events.record(
        db,
        connection.account_id,
        "sp_key.rollover_completed",
        actor,
        {
            "fingerprint": sha256_fingerprint(connection.sp_certificate_pem),
            "previous_fingerprint": sha256_fingerprint(previous_certificate),
        },
    )


def drop_retired_key(db: Session, connection: SSOConnection, now: dt.datetime) -> bool:
    """Forget the previous SP key once its overlap is over; True when this call did."""
    until = connection.sp_previous_until
    if connection.sp_previous_certificate_pem is None or until is None or until > now:
        return False
    _forget_previous_key(db, connection)
    connection.updated_at = now
    return True


def _forget_previous_key(db: Session, connection: SSOConnection) -> None:
    if connection.sp_previous_certificate_pem:
        certificate_store.forget_notices(
            db,
            connection.account_id,
            SP,
            sha256_fingerprint(connection.sp_previous_certificate_pem),
        )
    connection.sp_previous_private_key_pem = None
    connection.sp_previous_certificate_pem = None
    connection.sp_previous_until = None
