"""The record of each ACS sign-in attempt that admins read on the Security page, and the cap on
what one source can make us record without signing in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from deskgate import metrics
from deskgate.display_text import for_display
from deskgate.saml.errors import SAMLError
from deskgate.services import events
from deskgate.services.sso_config import AnonymousCaps, SignInConfig, SSOFailure
from deskgate.store import sso as sso_store

REFUSAL_WINDOW = dt.timedelta(minutes=1)
"""The window of the per-source cap on recorded ACS refusals."""


def detail_of(problem: SAMLError) -> str:
    """A validation failure as the admin reads it: the message, then expected and received."""
    parts = [problem.message]
    if problem.expected is not None:
        parts.append(f"expected: {problem.expected}")
    if problem.received is not None:
        parts.append(f"received: {problem.received}")
    return " — ".join(parts)


def refuse(
    db: Session,
    config: SignInConfig,
    code: str,
    detail: str,
    message: str | None = None,
    *,
    now: dt.datetime,
    ip: str | None,
    caps: AnonymousCaps,
    email: str | None = None,
    agent_id: str | None = None,
) -> SSOFailure:
    """Record a refusal (or, past the per-IP cap, count it on the last recorded row) and say
    what the agent sees: `message`, or a pointer to the Security page with the reason code."""
    metrics.count_sign_in("saml", succeeded=False, reason=code)
    recorded = sso_store.refusals_since(db, config.account_id, ip, now - REFUSAL_WINDOW)
    if recorded >= caps.refusals_recorded_per_minute:
        sso_store.count_suppressed_refusal(db, config.account_id, ip)
    else:
        sso_store.record_attempt(
            db,
            account_id=config.account_id,
            method="saml",
            succeeded=False,
            now=now,
            email=email,
            agent_id=agent_id,
            reason_code=code,
            detail=detail,
            ip=ip,
        )
        # The event follows the row: past the per-IP cap, neither is written.
        events.record(
            db,
            config.account_id,
            "sign_in.failed",
            events.actors.idp(config.idp.entity_id),
            {
                "method": "saml",
                "email": for_display(email, sso_store.EMAIL_LIMIT),
                "ip": ip,
                "reason_code": code,
                "detail": for_display(detail),
            },
            agent_id=agent_id,
        )
    return SSOFailure(
        message
        or f"Sign-in through {config.label} didn't work. Your admin can see why under "
        f"Manage › Security (reason: {code}). Try again from your identity provider's dashboard.",
    )


def record_success(
    db: Session,
    config: SignInConfig,
    *,
    now: dt.datetime,
    email: str,
    agent_id: str,
    idp_initiated: bool,
    ip: str | None,
) -> None:
    metrics.count_sign_in("saml", succeeded=True)
    sso_store.record_attempt(
        db,
        account_id=config.account_id,
        method="saml",
        succeeded=True,
        now=now,
        email=email,
        agent_id=agent_id,
        detail=f"signed in via {config.label}" + (" (IdP-initiated)" if idp_initiated else ""),
        ip=ip,
    )
    events.record(
        db,
        config.account_id,
        "sign_in.succeeded",
        events.actors.idp(config.idp.entity_id),
        {
            "method": "saml",
            "email": for_display(email, sso_store.EMAIL_LIMIT),
            "ip": ip,
            "idp_initiated": idp_initiated,
        },
        agent_id=agent_id,
    )
