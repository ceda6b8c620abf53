"""Finish a sign-in at the ACS: validate the posted response, decide who it signs in (replay,
matching, scope, deactivation, just-in-time provisioning) and open the session.

The SAML core (deskgate.saml) validates bytes; this module adds what needs the database:
outstanding request IDs (InResponseTo), the replay store, JIT provisioning, and the record of
every attempt (services/sso_attempts.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from deskgate.errors import Conflict, InvalidInput
from deskgate.redirects import local_path
from deskgate.saml.acs import VerifiedAssertion, validate_response
from deskgate.saml.attributes import AgentProfile, profile_from_assertion
from deskgate.saml.errors import SAMLError
from deskgate.saml.untrusted_threads import validation_threads
from deskgate.services import agents as agent_service
from deskgate.services import auth, sign_in_match, validation
from deskgate.services.event_snapshots import changed, record_agent_change
from deskgate.services.events import actors, agent_snapshot
from deskgate.services.sso_attempts import detail_of, record_success, refuse
from deskgate.services.sso_config import AnonymousCaps, SignInConfig, SSOFailure
from deskgate.store import agents as agent_store
from deskgate.store import sso as sso_store
from deskgate.store.agents import SignInAgent
from deskgate.store.models import AgentSource, Role, SignInMatch


@dataclass(frozen=True)
class SSOSuccess:
    agent: SignInAgent
    account_id: str
    cookie_value: str
    redirect_to: str


def finish_login(
    db: Session,
    config: SignInConfig,
    *,
    saml_response: str,
    relay_state: str | None,
    now: dt.datetime,
    session_policy: auth.SessionPolicy,
    ip: str | None,
    user_agent: str | None,
    caps: AnonymousCaps,
) -> SSOSuccess | SSOFailure:
    """Validate a response posted to the ACS and sign the agent in, or refuse and record why.

    The response is validated before the first statement, so no transaction is open (on SQLite:
    no write lock held) while signatures are checked, on a thread of `validation_threads`
    (attacker XML must not grow a long-lived thread's parser dictionary): in place when the ACS
    already runs there, else after a hop. Returns rather than raises, so the caller
    commits the attempt record either way. Anyone can post here: one IP gets
    `caps.refusals_recorded_per_minute` refusal rows per account a minute; later ones are only
    counted on the last of those rows.
    """
    refused = partial(refuse, db, config, now=now, ip=ip, caps=caps)
    try:
        verified = validation_threads.run(
            partial(validate_response, saml_response, config.sp, config.idp, now),
            cost=len(saml_response),
        )
    except SAMLError as problem:
        return refused(str(problem.code), detail_of(problem))

    target = _redirect_target(db, config.account_id, verified, relay_state, now)
    if isinstance(target, tuple):
        return refused(*target)
    if not sso_store.remember_assertion(
        db,
        account_id=config.account_id,
        assertion_id=verified.assertion_id,
        keep_until=verified.replay_cache_until,
    ):
        return refused(
            "replayed_assertion",
            f"Assertion {verified.assertion_id} was already used to sign in; a response can be used once.",
        )

    profile = profile_from_assertion(verified)
    if config.sign_in_match == SignInMatch.EMAIL.value and profile.email:
        try:  # an address we could never store is named as such, before any scope rule
            validation.email(profile.email)
        except InvalidInput as problem:
            return refused(
                "invalid_email",
                f"The agent could not be created from the assertion: {problem.message}",
                email=profile.email,
            )
    match = sign_in_match.find_agent(
        db, config.account_id, config.sign_in_match, verified.name_id, profile
    )
    if match.refusal is not None:
        return refused(*match.refusal, email=profile.email)
    agent = match.agent
    scope = _outside_scope(config, profile.email or (agent.email if agent else None), agent)
    if scope is not None:
        return refused(*scope, email=profile.email, agent_id=agent.id if agent else None)
    if agent is not None and not agent.active:
        return refused(
            "agent_deactivated",
            f"{agent.user_name} is deactivated in deskgate; SSO never reactivates an agent.",
            "Your agent account is deactivated. Ask your account's admin to reactivate it.",
            email=profile.email,
            agent_id=agent.id,
        )
    renamed = None
    if agent is None:
        if not config.jit_enabled:
            return refused(
                "jit_disabled",
                f"{match.key} has no agent in this account and just-in-time provisioning is off.",
                f"There is no agent for {match.key} in {config.account_name}, and new agents are "
                "not created at sign-in. Ask your admin to add you.",
                email=profile.email,
            )
        try:
            provisioned = _provision(db, config, profile, match)
        except InvalidInput as problem:  # refused before anything was written
            return refused(
                f"invalid_{problem.field or 'profile'}",
                f"The agent could not be created from the assertion: {problem.message}",
                email=profile.email,
            )
        if isinstance(provisioned, tuple):
            return refused(*provisioned, email=profile.email)
        agent = provisioned
    else:
        renamed = _refreshed_names(agent, profile)
        if renamed is not None:  # the assertion renamed the agent: written with the sign-in
            before = agent_snapshot(agent)
            after = changed(
                before,
                first_name=renamed.first_name,
                last_name=renamed.last_name,
                display_name=renamed.display_name,
                version=agent.version + 1,
                updated_at=now,
            )
            record_agent_change(
                db, config.account_id, actors.idp(config.idp.entity_id), before, after
            )

    cookie = auth.start_session(
        db,
        agent.id,
        config.account_id,
        method="saml",
        policy=session_policy,
        now=now,
        ip=ip,
        user_agent=user_agent,
        not_after=verified.session_not_on_or_after,
        renamed=renamed,
    )
    record_success(
        db,
        config,
        now=now,
        email=agent.email,
        agent_id=agent.id,
        idp_initiated=verified.in_response_to is None,
        ip=ip,
    )
    return SSOSuccess(
        agent=agent, account_id=config.account_id, cookie_value=cookie, redirect_to=target
    )


def _outside_scope(
    config: SignInConfig, email: str | None, agent: SignInAgent | None
) -> tuple[str, str, str] | None:
    """(reason code, detail for the admin, message for the agent) when this IdP may not sign in
    as `email`: an address outside the account's verified domains, or an admin that the IdP did
    not provision (admins created in deskgate keep their password; SSO never takes them over)."""
    refusal = config.domains.refusal(email)
    if refusal is not None:
        code, detail = refusal
        if not email:  # with domains claimed, an identity without an email is outside them too
            return (
                code,
                f"Neither the assertion nor the matched agent has an email: {detail}. Send the "
                "email as an 'email' attribute, or give the agent one.",
                "You can't sign in to this account with single sign-on: no email address came with "
                "the sign-in. Ask your admin.",
            )
        return (
            code,
            f"The assertion is for {email}: {detail}.",
            f"{email} can't sign in to this account with single sign-on: its email domain is not one "
            "your admin has verified.",
        )
    if agent is not None and agent.role == Role.ADMIN and agent.source == AgentSource.PASSWORD:
        return (
            "admin_not_provisioned_by_idp",
            f"{agent.email} is an admin created in deskgate with a password (source: password), not "
            "provisioned by this IdP (JIT or SCIM); SSO may not sign in as such an admin. They sign in "
            "with their password.",
            "You are an admin of this account: sign in with your password.",
        )
    return None


def _redirect_target(
    db: Session,
    account_id: str,
    verified: VerifiedAssertion,
    relay_state: str | None,
    now: dt.datetime,
) -> str | tuple[str, str]:
    """Where to go after sign-in, consuming the AuthnRequest this response answers.

    Returns (reason_code, detail) when the response answers no request we have outstanding.
    """
    if verified.in_response_to is None:
        return local_path(relay_state)
    request = sso_store.consume_request(db, account_id, verified.in_response_to, now)
    if request is None:
        return (
            "unknown_in_response_to",
            f"The response answers request {verified.in_response_to}, which this account never issued, "
            "already used, or issued more than 10 minutes ago.",
        )
    return local_path(request.relay_state)


def _provision(
    db: Session, config: SignInConfig, profile: AgentProfile, match: sign_in_match.Match
) -> SignInAgent | tuple[str, str]:
    """A JIT agent (its userName is the NameID when agents are matched by userName), or the
    refusal (reason_code, detail)."""
    if not profile.email:
        return (
            "missing_email",
            f"{match.key} has no agent in this account and the assertion carries "
            "no email to create one with: send an 'email' attribute.",
        )
    by_user_name = config.sign_in_match == SignInMatch.USER_NAME.value
    try:
        created = agent_service.add_agent(
            db,
            config.account_id,
            email=profile.email,
            user_name=match.key if by_user_name else None,
            first_name=(profile.first_name or "")[:200],
            last_name=(profile.last_name or "")[:200],
            role=config.jit_role,
            source=AgentSource.JIT,
            actor=actors.idp(config.idp.entity_id),
        )
    except Conflict as clash:
        # A concurrent sign-in (or SCIM) created the same agent a moment ago: use that one.
        again = sign_in_match.find_agent(
            db, config.account_id, config.sign_in_match, match.key or "", profile
        )
        if again.agent is not None and again.agent.active and again.refusal is None:
            return again.agent
        # Or, matching by userName, another agent already has this email.
        return (
            "jit_conflict",
            f"No agent has the userName {match.key}, and a new one cannot be created: {clash}",
        )
    return SignInAgent.of(created)


def _refreshed_names(agent: SignInAgent, profile: AgentProfile) -> agent_store.Names | None:
    """The agent's names as the assertion gives them, when they differ from the stored ones."""
    first_name, last_name = agent.first_name, agent.last_name
    if profile.first_name:
        first_name = profile.first_name[:200]
    if profile.last_name:
        last_name = profile.last_name[:200]
    if (first_name, last_name) == (agent.first_name, agent.last_name):
        return None
    display_name = (
        profile.display_name or agent_service.display_name_for(first_name, last_name, agent.email)
    )[: agent_service.MAX_DISPLAY_NAME]
    return agent_store.Names(first_name=first_name, last_name=last_name, display_name=display_name)
