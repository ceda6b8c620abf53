"""Start an SP-initiated sign-in: issue an AuthnRequest and remember its ID."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from deskgate.saml.config import BINDING_HTTP_REDIRECT
from deskgate.saml.login import LoginPost, build_login_post, build_login_redirect
from deskgate.services.sso_config import AnonymousCaps, SignInConfig, SSOFailure
from deskgate.store import sso as sso_store

REQUEST_TTL = dt.timedelta(minutes=10)


def start_login(
    db: Session,
    config: SignInConfig,
    *,
    next_path: str,
    now: dt.datetime,
    ip: str | None = None,
    caps: AnonymousCaps,
) -> str | LoginPost | SSOFailure:
    """The IdP URL to redirect to (HTTP-Redirect binding), or the form to post (IdPs whose
    metadata offers only HTTP-POST), with the request's ID stored for the response.

    Anyone may call this, so one IP may leave only `caps.pending_requests` unanswered per
    account: past that, 429 until the oldest expires."""
    pending, first_expiry = sso_store.outstanding_requests(db, config.account_id, ip, now)
    if pending >= caps.pending_requests:
        wait = max(1, int(((first_expiry or now + REQUEST_TTL) - now).total_seconds()) + 1)
        return SSOFailure(
            f"Too many sign-ins to {config.account_name} were started from your network and not "
            f"finished. Wait {max(1, round(wait / 60))} minute(s), then sign in again.",
            status_code=429,
            retry_after=wait,
        )
    relay_state = next_path if len(next_path.encode()) <= 80 else None
    login: LoginPost | str
    if config.idp.sso_binding == BINDING_HTTP_REDIRECT:
        redirect = build_login_redirect(config.sp, config.idp, relay_state, now)
        request_id, login = redirect.request_id, redirect.url
    else:
        post = build_login_post(config.sp, config.idp, relay_state, now)
        request_id, login = post.request_id, post
    sso_store.add_request(
        db,
        request_id=request_id,
        account_id=config.account_id,
        next_path=next_path,
        now=now,
        ttl=REQUEST_TTL,
        ip=ip,
    )
    return login
