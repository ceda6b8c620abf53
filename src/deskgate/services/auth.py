"""Password sign-in, sessions and sign-out.

A session cookie carries a random value; the database keeps only its SHA-256, so a leaked
database cannot be replayed as cookies. Every request re-checks the agent is active.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from deskgate import metrics
from deskgate.display_text import for_display
from deskgate.errors import SignInRefused, TooManyAttempts
from deskgate.services import events
from deskgate.services.passwords import verify_password
from deskgate.services.tokens import hash_token, new_token
from deskgate.store import accounts as account_store
from deskgate.store import agents as agent_store
from deskgate.store import sessions as session_store
from deskgate.store import throttle
from deskgate.store.models import Account, Agent, Role
from deskgate.store.sessions import SessionAccount, SessionAgent, SessionInfo

WRONG_CREDENTIALS = "That email and password don't match. Check both and try again."
SESSION_TOUCH_INTERVAL = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ThrottlePolicy:
    failures_per_email: int
    failures_per_ip: int
    window: dt.timedelta


@dataclass(frozen=True)
class SessionPolicy:
    lifetime: dt.timedelta


@dataclass(frozen=True)
class SignedIn:
    agent: Agent
    account: Account
    cookie_value: str


@dataclass(frozen=True)
class CurrentSession:
    """A live session, read in one query: plain values, nothing loaded into the ORM session."""

    session: SessionInfo
    agent: SessionAgent
    account: SessionAccount


@dataclass(frozen=True)
class AdminSession:
    """An admin's session on the admin pages, with the account loaded for changing it."""

    session: SessionInfo
    agent: SessionAgent
    account: Account

    @property
    def actor(self) -> events.Actor:
        """The admin as the actor of the changes they make (the event log)."""
        return events.actors.admin(self.agent.id, self.agent.email)


def start_session(
    db: Session,
    agent_id: str,
    account_id: str,
    *,
    method: str,
    policy: SessionPolicy,
    now: dt.datetime,
    ip: str | None,
    user_agent: str | None,
    not_after: dt.datetime | None = None,
    renamed: agent_store.Names | None = None,
) -> str:
    """Create a session for an agent already authenticated; return the cookie value.

    `not_after` caps the session's end (the IdP's SessionNotOnOrAfter): it ends at the earlier
    of that and our own lifetime. `renamed`: names from the assertion, written with the sign-in
    time in the same UPDATE."""
    cookie_value = new_token(32)
    expires_at = now + policy.lifetime
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    session_store.add(
        db,
        agent_id=agent_id,
        account_id=account_id,
        token_hash=hash_token(cookie_value),
        method=method,
        now=now,
        expires_at=expires_at,
        ip=ip,
        user_agent=user_agent,
    )
    agent_store.touch_sign_in(db, agent_id, now, renamed=renamed)
    return cookie_value


def _check_throttle(
    db: Session,
    email_normalized: str,
    candidates: Sequence[Agent],
    ip: str,
    policy: ThrottlePolicy,
    now: dt.datetime,
) -> None:
    """Refuse when this email or this IP has had too many failures within the window.

    Failures for an email count separately for every account that has an agent with it: a
    failure made before that agent's last sign-in no longer counts for its account (the person
    proved who they are, by password or SSO), and the email is refused while any of its accounts
    is at the limit. So signing in to one account never lifts the limit another account's agent
    is under. An email no agent has counts all its failures.
    """
    since = now - policy.window
    blocked_until: list[tuple[dt.datetime, str]] = []
    by_email = throttle.latest_failures(
        db, email_normalized=email_normalized, since=since, limit=policy.failures_per_email
    )
    if len(by_email) >= policy.failures_per_email:
        oldest = by_email[-1]
        resets = [agent.last_sign_in_at for agent in candidates] or [None]
        if any(reset is None or reset < oldest for reset in resets):
            blocked_until.append((oldest + policy.window, "this email"))
    by_ip = throttle.latest_failures(db, ip=ip, since=since, limit=policy.failures_per_ip)
    if len(by_ip) >= policy.failures_per_ip:
        blocked_until.append((by_ip[-1] + policy.window, "your network"))
    if not blocked_until:
        return
    retry_after = max(until for until, _ in blocked_until) - now
    minutes = max(1, math.ceil(retry_after.total_seconds() / 60))
    raise TooManyAttempts(
        f"Too many failed sign-ins for {blocked_until[0][1]}. Wait {minutes} minute"
        f"{'s' if minutes != 1 else ''} and try again, or reset your password.",
        retry_after=int(retry_after.total_seconds()) + 1,
    )


def password_sign_in(
    db: Session,
    *,
    email: str,
    password: str,
    throttle_policy: ThrottlePolicy,
    session_policy: SessionPolicy,
    now: dt.datetime,
    ip: str,
    user_agent: str | None,
) -> SignedIn:
    """Check the password and open a session.

    Raises TooManyAttempts or SignInRefused. The failure is recorded before raising, so the
    caller must commit even when this raises (the record is what the throttle counts).
    """
    email_normalized = agent_store.normalize_email(email)
    # First, so that checking the limit and recording a failure are one step (no racing guesses).
    throttle.lock(db, email_normalized=email_normalized, ip=ip)
    # The same email may exist in several accounts; the password picks the agent.
    candidates = agent_store.all_with_email(db, email_normalized) if email_normalized else []
    try:
        _check_throttle(db, email_normalized, candidates, ip, throttle_policy, now)
    except TooManyAttempts:
        metrics.count_sign_in("password", succeeded=False, reason="throttled")
        raise
    agent = next((a for a in candidates if verify_password(a.password_hash, password)), None)
    if agent is None:
        if not candidates:
            verify_password(None, password)  # same cost as a wrong password: no email probing
        throttle.record_failure(db, email_normalized=email_normalized, ip=ip, now=now)
        metrics.count_sign_in("password", succeeded=False, reason="wrong_credentials")
        # Each account with an agent of this email sees the failure. Bounded like the failure
        # rows: once the email or the IP is throttled, attempts are refused unrecorded.
        for candidate in candidates:
            _record_refusal(
                db,
                candidate,
                email,
                ip,
                "wrong_credentials",
                "The password does not match this agent's (or the agent has none).",
                password_matched=False,
            )
        raise SignInRefused(WRONG_CREDENTIALS)
    if not agent.active:
        metrics.count_sign_in("password", succeeded=False, reason="agent_deactivated")
        _record_refusal(db, agent, email, ip, "agent_deactivated", f"{agent.email} is deactivated.")
        raise SignInRefused(
            "This agent account has been deactivated. Ask your account's admin to reactivate it."
        )
    account = account_store.get(db, agent.account_id)
    assert account is not None
    connection = account.sso_connection
    if (
        connection is not None
        and connection.enabled
        and connection.require_sso
        and agent.role != Role.ADMIN
    ):
        metrics.count_sign_in("password", succeeded=False, reason="sso_required")
        _record_refusal(
            db,
            agent,
            email,
            ip,
            "sso_required",
            f"{account.name} requires single sign-on; only admins may use a password.",
        )
        raise SignInRefused(
            f"{account.name} requires single sign-on. Use “Login with SSO” instead of a password."
        )
    # No failure rows are deleted: the sign-in below sets this agent's last_sign_in_at, after
    # which earlier failures stop counting for this account only (see _check_throttle).
    cookie_value = start_session(
        db,
        agent.id,
        agent.account_id,
        method="password",
        policy=session_policy,
        now=now,
        ip=ip,
        user_agent=user_agent,
    )
    metrics.count_sign_in("password", succeeded=True)
    events.record(
        db,
        agent.account_id,
        "sign_in.succeeded",
        events.actors.agent(agent.id, agent.email),
        {"method": "password", "email": agent.email, "ip": ip, "idp_initiated": None},
        agent_id=agent.id,
    )
    return SignedIn(agent=agent, account=account, cookie_value=cookie_value)


def _record_refusal(
    db: Session,
    agent: Agent,
    email: str,
    ip: str,
    reason_code: str,
    detail: str,
    *,
    password_matched: bool = True,
) -> None:
    """sign_in.failed in the agent's account. The actor is the agent when the password
    matched, else whoever typed the email."""
    typed = for_display(email, 320)
    events.record(
        db,
        agent.account_id,
        "sign_in.failed",
        events.actors.agent(agent.id, agent.email)
        if password_matched
        else events.actors.agent(None, typed),
        {
            "method": "password",
            "email": typed,
            "ip": ip,
            "reason_code": reason_code,
            "detail": detail,
        },
        agent_id=agent.id,
    )


@dataclass(frozen=True)
class SessionUpkeep:
    """A write a session check found due: remove the session (expired, or its agent
    deactivated) or note that it was seen (at most every SESSION_TOUCH_INTERVAL)."""

    session_id: str
    remove: bool


def read_session(
    db: Session, cookie_value: str, now: dt.datetime
) -> tuple[CurrentSession | None, SessionUpkeep | None]:
    """The live session for a cookie value, or None (unknown, expired, agent inactive), and the
    write it calls for, if any. Only reads, so it can run in a read-only transaction.

    Read from the database every time (one indexed query): a revoked session or a deactivated
    agent is out at the next request, on every node, whether or not the upkeep is written."""
    found = session_store.find(db, hash_token(cookie_value))
    if found is None:
        return None, None
    session, agent, account = found
    if session.expires_at <= now or not agent.active:
        return None, SessionUpkeep(session.id, remove=True)
    current = CurrentSession(session=session, agent=agent, account=account)
    if now - session.last_seen_at > SESSION_TOUCH_INTERVAL:
        return current, SessionUpkeep(session.id, remove=False)
    return current, None


def keep_up(db: Session, upkeep: SessionUpkeep, now: dt.datetime) -> None:
    if upkeep.remove:
        session_store.delete_one(db, upkeep.session_id)
    else:
        session_store.mark_seen(db, upkeep.session_id, now)


def current_session(db: Session, cookie_value: str, now: dt.datetime) -> CurrentSession | None:
    """`read_session` with its upkeep written in the same (writing) transaction."""
    current, upkeep = read_session(db, cookie_value, now)
    if upkeep is not None:
        keep_up(db, upkeep, now)
    return current


def sign_out(db: Session, cookie_value: str) -> None:
    found = session_store.find(db, hash_token(cookie_value))
    if found is not None:
        session_store.delete_one(db, found[0].id)
