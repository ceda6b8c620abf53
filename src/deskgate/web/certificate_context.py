"""What the Security page shows about certificates: expiry banners, the IdP's signing
certificates, and the SP key (with a rollover under way)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from deskgate.saml.certs import CertificateInfo, certificate_info
from deskgate.services.certificate_watch import EXPIRED, days_left, threshold_due
from deskgate.store import certificates as certificate_store
from deskgate.store.models import IdPCertificate, SSOConnection


@dataclass(frozen=True)
class Banner:
    id: str
    message: str
    expired: bool


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _idp_banner(row: IdPCertificate, now: dt.datetime) -> Banner | None:
    due = threshold_due(row.not_after, now)
    if due is None:
        return None
    what = f"The IdP signing certificate {row.subject} (SHA-256 {row.fingerprint})"
    if due == EXPIRED:
        return Banner(
            f"cert-banner-{row.id}",
            f"{what} expired on {_when(row.not_after)} — get the IdP's current certificate and "
            "add it below (or re-import the IdP metadata).",
            expired=True,
        )
    days = days_left(row.not_after, now)
    return Banner(
        f"cert-banner-{row.id}",
        f"{what} expires in {days} day{'s' if days != 1 else ''} on {_when(row.not_after)} — "
        "get the IdP's next certificate and add it below.",
        expired=False,
    )


def _sp_banner(role: str, info: CertificateInfo, now: dt.datetime) -> Banner | None:
    due = threshold_due(info.not_after, now)
    if due is None:
        return None
    what = f"Our SP certificate ({role}, SHA-256 {info.sha256_fingerprint})"
    if due == EXPIRED:
        message = f"{what} expired on {_when(info.not_after)} — start an SP key rollover below."
    else:
        days = days_left(info.not_after, now)
        message = (
            f"{what} expires in {days} day{'s' if days != 1 else ''} on "
            f"{_when(info.not_after)} — start an SP key rollover below."
        )
    return Banner(f"sp-cert-banner-{role}", message, expired=due == EXPIRED)


def context(db: Session, connection: SSOConnection, now: dt.datetime) -> dict[str, Any]:
    """The template variables of _certificates.html and _certificate_banners.html."""
    rows = certificate_store.for_account(db, connection.account_id)
    sp_current = certificate_info(connection.sp_certificate_pem, now)
    sp_next = (
        certificate_info(connection.sp_next_certificate_pem, now)
        if connection.sp_next_certificate_pem
        else None
    )
    banners = [banner for row in rows if (banner := _idp_banner(row, now))]
    banners += [
        banner
        for role, info in (("current", sp_current), ("next", sp_next))
        if info and (banner := _sp_banner(role, info, now))
    ]
    return {
        "idp_certificates": rows,
        "certificate_banners": banners,
        "sp_current": sp_current,
        "sp_next": sp_next,
        "sp_next_pem": connection.sp_next_certificate_pem,
        "sp_previous_until": connection.sp_previous_until
        if connection.sp_previous_certificate_pem
        else None,
    }
