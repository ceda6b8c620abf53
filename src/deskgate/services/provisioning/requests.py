"""SCIM authentication and the request log."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.scim.errors import ForbiddenException, UnauthorizedException
from deskgate.services.tokens import hash_token
from deskgate.store import scim_request_log, scim_tokens
from deskgate.store.models import Plan
from deskgate.store.scim import Executor

TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class ScimCaller:
    account_id: str
    token: scim_tokens.TokenOwner


_BEARER = re.compile(r"bearer\s+(\S+)\s*", re.IGNORECASE)


def token_from_header(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`, or of a bare `Authorization: <token>`
    (Okta's "Header Auth" apps send their API Token field verbatim)."""
    if not authorization:
        return None
    value = authorization.strip()
    match = _BEARER.fullmatch(value)
    if match:
        return match.group(1)
    return value if value and " " not in value and len(value) <= 200 else None


def authenticate(
    db: Executor, account_id: str, authorization: str | None, now: dt.datetime
) -> ScimCaller:
    """The caller of a SCIM request to `account_id`'s base URL.

    401 when the token is missing, unknown, expired or belongs to another account (the same
    answer whether or not the account exists); 403 when the account is not on Scale Plus.
    """
    token = token_from_header(authorization)
    owner = scim_tokens.token_owner(db, hash_token(token), now) if token else None
    if owner is None or owner.account_id != account_id:
        raise UnauthorizedException(
            detail="The bearer token is missing, expired, or not valid for this SCIM base URL. "
            "Copy the SCIM base URL and a current token from Manage › Security in deskgate."
        )
    if owner.plan != Plan.SCALE_PLUS:
        raise ForbiddenException(
            detail="SCIM provisioning is available on the Scale Plus plan; this account is on "
            f"the {owner.plan} plan."
        )
    return ScimCaller(account_id=account_id, token=owner)


@dataclass(frozen=True)
class RequestRecord:
    """One SCIM request for the log: never the token, never a password."""

    account_id: str
    method: str
    path: str
    status: int
    duration_ms: float
    client: str | None
    detail: str | None
    ip: str | None = None


UNAUTHENTICATED_LOG_WINDOW = dt.timedelta(minutes=1)


def record_unauthenticated_request(
    db: Executor, request: RequestRecord, *, now: dt.datetime, per_ip_per_minute: int
) -> bool:
    """Log a 401 when the path's account exists and its source is under its cap (anonymous
    requests must not fill the log); True when a row was written."""
    if not scim_request_log.account_exists(db, request.account_id):
        return False
    recent = scim_request_log.unauthenticated_requests_since(
        db, request.account_id, request.ip, now - UNAUTHENTICATED_LOG_WINDOW
    )
    if recent >= per_ip_per_minute:
        return False
    record_request(db, request, now=now)
    return True


def record_request(
    db: Executor,
    request: RequestRecord,
    *,
    now: dt.datetime,
    token: scim_tokens.TokenOwner | None = None,
) -> None:
    """Add the request to the account's log; note the token's use at most once a minute."""
    scim_request_log.add_request_log(
        db,
        {
            "id": ids.new_id(ids.SCIM_REQUEST),
            "account_id": request.account_id,
            "at": now,
            "method": request.method[:10],
            "path": for_display(request.path) or "",
            "status": request.status,
            "duration_ms": round(request.duration_ms, 2),
            "client": for_display(request.client, 400) or None,
            "detail": for_display(request.detail) or None,
            "ip": request.ip,
        },
    )
    if token is not None and (
        token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL
    ):
        scim_tokens.touch_token(db, token.token_id, now)
