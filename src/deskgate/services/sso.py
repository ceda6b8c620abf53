"""Single sign-on use cases: set up an account's IdP, start a sign-in, finish it at the ACS.

The SAML core (deskgate.saml) validates bytes; this module adds what needs the database:
outstanding request IDs (InResponseTo), the replay store, JIT provisioning, and the record of
every attempt that admins read on the Security page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate import metrics
from deskgate.errors import Conflict, DeskgateError, Forbidden, InvalidInput, NotFound
from deskgate.redirects import local_path
from deskgate.saml.acs import VerifiedAssertion, validate_response
from deskgate.saml.attributes import profile_from_assertion
from deskgate.saml.config import BINDING_HTTP_REDIRECT, IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError
from deskgate.saml.keys import generate_sp_keypair
from deskgate.saml.login import LoginPost, build_login_post, build_login_redirect
from deskgate.saml.metadata import ParsedMetadata, parse_idp_metadata
from deskgate.services import agents as agent_service
from deskgate.services import auth, scim_credentials, sign_in_match, validation
from deskgate.store import accounts as account_store
from deskgate.store import sso as sso_store
from deskgate.store.models import (
    Account,
    Agent,
    AgentSource,
    IdPKind,
    Plan,
    Role,
    SignInMatch,
    SSOConnection,
)

REQUEST_TTL = dt.timedelta(minutes=10)
REFUSAL_WINDOW = dt.timedelta(minutes=1)
"""The window of the per-source cap on recorded ACS refusals."""
IDP_LABELS = {
    IdPKind.OKTA: "Okta",
    IdPKind.ENTRA: "Microsoft Entra ID",
    IdPKind.GOOGLE: "Google Workspace",
    IdPKind.ONELOGIN: "OneLogin",
    IdPKind.SAML: "your SAML 2.0 identity provider",
}


@dataclass(frozen=True)
class SSOUrls:
    """What the admin copies into the IdP (shown on the Security page and by the CLI)."""

    sso_token: str
    acs_url: str
    sp_entity_id: str
    sp_metadata_url: str
    login_url: str


def urls_for(base_url: str, account: Account, idp_kind: str) -> SSOUrls:
    root = f"{base_url}/api/v1/sso/{account.sso_token}"
    return SSOUrls(
        sso_token=account.sso_token,
        acs_url=f"{root}/acs/{idp_kind}",
        sp_entity_id=f"{root}/metadata/{idp_kind}",
        sp_metadata_url=f"{root}/metadata/{idp_kind}",
        login_url=f"{root}/login/{idp_kind}",
    )


def _require_scale_plus(account: Account) -> None:
    if account.plan != Plan.SCALE_PLUS:
        raise Forbidden("Single sign-on is available on the Scale Plus plan.")


def ensure_connection(db: Session, account: Account, now: dt.datetime) -> SSOConnection:
    """The account's SSO connection, created (with its own SP key pair) on first use."""
    existing = sso_store.connection(db, account.id)
    if existing is not None:
        return existing
    private_key, certificate = generate_sp_keypair(
        now, common_name=f"deskgate SP for {account.name}"[:64]
    )
    connection = SSOConnection(
        account_id=account.id,
        enabled=False,
        idp_kind=IdPKind.OKTA.value,
        idp_certificates=[],
        email_domains=[],
        sp_private_key_pem=private_key,
        sp_certificate_pem=certificate,
        updated_at=now,
    )
    try:
        with db.begin_nested():
            db.add(connection)
    except IntegrityError:
        # Another request created it first (two admins opening the page at once).
        found = sso_store.connection(db, account.id)
        assert found is not None
        return found
    return connection


def sp_config(connection: SSOConnection, urls: SSOUrls, clock_skew: dt.timedelta) -> SPConfig:
    return SPConfig(
        entity_id=urls.sp_entity_id,
        acs_url=urls.acs_url,
        private_key_pem=connection.sp_private_key_pem,
        certificate_pem=connection.sp_certificate_pem,
        allow_sha1=connection.allow_sha1,
        clock_skew=clock_skew,
        allow_unsolicited=connection.allow_idp_initiated,
    )


def idp_config(connection: SSOConnection) -> IdPConfig | None:
    if not (connection.idp_entity_id and connection.idp_sso_url and connection.idp_certificates):
        return None
    return IdPConfig(
        entity_id=connection.idp_entity_id,
        sso_url=connection.idp_sso_url,
        signing_certificates=tuple(connection.idp_certificates),
        sso_binding=connection.idp_sso_binding or BINDING_HTTP_REDIRECT,
    )


# --- setup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSOSettingsForm:
    enabled: bool
    idp_kind: str
    metadata_xml: str | None = None
    metadata_url: str | None = None
    allow_idp_initiated: bool = True
    jit_enabled: bool = True
    jit_role: str = Role.AGENT.value
    require_sso: bool = False
    allow_sha1: bool = False
    email_domains: str = ""
    sign_in_match: str = SignInMatch.EMAIL.value


@dataclass(frozen=True)
class SavedSSO:
    metadata: ParsedMetadata | None
    scim: scim_credentials.ScimCredentials | None
    """Set when this save issued the account's first SCIM token (shown once)."""
    urls: SSOUrls


def _parse_domains(text: str) -> list[str]:
    domains: list[str] = []
    for raw in text.replace(",", " ").split():
        domain = raw.strip().lower().lstrip("@")
        if not domain:
            continue
        if "." not in domain or any(c in domain for c in "/:@ ") or len(domain) > 253:
            raise InvalidInput(
                f"'{raw}' is not an email domain (expected something like example.com).",
                field="email_domains",
            )
        if domain not in domains:
            domains.append(domain)
    return domains


def parse_metadata_or_explain(
    xml: bytes | str, now: dt.datetime, *, allow_http: bool = False
) -> ParsedMetadata:
    """`allow_http`: the `allow_private_metadata_urls` setting (http endpoints on any host)."""
    try:
        return parse_idp_metadata(xml, now, allow_http=allow_http)
    except SAMLError as problem:
        raise InvalidInput(
            f"The IdP metadata can't be used: {problem.message}", field="metadata_xml"
        ) from None


def save_settings(
    db: Session,
    account: Account,
    form: SSOSettingsForm,
    *,
    now: dt.datetime,
    base_url: str,
    fetched_metadata: bytes | None = None,
    allow_private_urls: bool = False,
) -> SavedSSO:
    """Check and store the SSO settings. The caller wraps this in a savepoint: on any error
    nothing it wrote stays. `fetched_metadata` is what `form.metadata_url` returned;
    `allow_private_urls` is the `allow_private_metadata_urls` setting."""
    _require_scale_plus(account)
    try:
        idp_kind = IdPKind(form.idp_kind)
    except ValueError:
        raise InvalidInput(
            f"Unknown identity provider '{form.idp_kind}'.", field="idp_kind"
        ) from None
    try:
        jit_role = Role(form.jit_role)
    except ValueError:
        raise InvalidInput(f"Unknown role '{form.jit_role}'.", field="jit_role") from None
    domains = _parse_domains(form.email_domains)
    try:
        sign_in_match_rule = SignInMatch(form.sign_in_match)
    except ValueError:
        raise InvalidInput(
            f"Unknown sign-in matching '{form.sign_in_match}'.", field="sign_in_match"
        ) from None
    connection = ensure_connection(db, account, now)

    parsed: ParsedMetadata | None = None
    metadata_url = (form.metadata_url or "").strip() or None
    metadata_xml = (form.metadata_xml or "").strip() or None
    if metadata_url:
        if fetched_metadata is None:
            raise InvalidInput("The metadata URL has not been fetched.", field="metadata_url")
        parsed = parse_metadata_or_explain(fetched_metadata, now, allow_http=allow_private_urls)
    elif metadata_xml:
        parsed = parse_metadata_or_explain(metadata_xml, now, allow_http=allow_private_urls)
    if form.enabled and parsed is None and idp_config(connection) is None:
        raise InvalidInput(
            "Paste your IdP's metadata XML (or give its metadata URL) before turning on single sign-on.",
            field="metadata_xml",
        )

    taken = sso_store.replace_domains(db, account.id, domains)
    if taken is not None:
        raise Conflict(
            f"The email domain {taken} is already used for SSO by another account.",
            attribute="email_domains",
        )
    connection.enabled = form.enabled
    connection.idp_kind = idp_kind.value
    connection.allow_idp_initiated = form.allow_idp_initiated
    connection.jit_enabled = form.jit_enabled
    connection.jit_role = jit_role.value
    connection.require_sso = form.require_sso
    connection.allow_sha1 = form.allow_sha1
    connection.email_domains = domains
    connection.sign_in_match = sign_in_match_rule.value
    connection.updated_at = now
    if parsed is not None:
        apply_metadata(connection, parsed, now)
        connection.metadata_url = metadata_url
        connection.metadata_xml = metadata_xml if not metadata_url else None

    scim = None
    if parsed is not None and not scim_credentials.has_live_token(db, account, now):
        # Saving working IdP metadata is when the admin wants provisioning credentials too.
        scim = scim_credentials.issue(db, account, base_url=base_url, now=now)
    return SavedSSO(metadata=parsed, scim=scim, urls=urls_for(base_url, account, idp_kind.value))


def apply_metadata(connection: SSOConnection, parsed: ParsedMetadata, now: dt.datetime) -> None:
    connection.idp_entity_id = parsed.idp.entity_id
    connection.idp_sso_url = parsed.idp.sso_url
    connection.idp_sso_binding = parsed.idp.sso_binding
    connection.idp_certificates = list(parsed.idp.signing_certificates)
    connection.metadata_fetched_at = now
    connection.metadata_error = None
    connection.metadata_refresh_failed_at = None


def rotate_sso_token(db: Session, account: Account) -> None:
    from deskgate.services.accounts import rotate_sso_token as rotate

    _require_scale_plus(account)
    rotate(db, account)


# --- sign-in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SSOFailure:
    """Sign-in refused. `message` is for the agent; the admin's record has the precise reason."""

    message: str
    status_code: int = 403
    login_hint: bool = True
    retry_after: int | None = None
    """Seconds, with status 429."""


@dataclass(frozen=True)
class AnonymousCaps:
    """What one source IP may make us write for an account without signing in."""

    refusals_recorded_per_minute: int = 10
    pending_requests: int = 50


@dataclass(frozen=True)
class SSOSuccess:
    agent: Agent
    account: Account
    cookie_value: str
    redirect_to: str


@dataclass
class _Context:
    account: Account
    connection: SSOConnection
    urls: SSOUrls
    idp: IdPConfig
    label: str = field(default="")


def _resolve(db: Session, sso_token: str, idp_kind: str, base_url: str) -> _Context | SSOFailure:
    account = account_store.by_sso_token(db, sso_token)
    if account is None:
        return SSOFailure(
            "This single sign-on address is not valid. If your admin recently rotated the account's "
            "SSO token, sign in from our login page with “Login with SSO”.",
            status_code=404,
        )
    connection = sso_store.connection(db, account.id)
    if account.plan != Plan.SCALE_PLUS or connection is None or not connection.enabled:
        return SSOFailure(
            f"Single sign-on is not turned on for {account.name}. Sign in with your password, "
            "or ask your admin to turn it on under Manage › Security.",
            status_code=403,
        )
    if idp_kind != connection.idp_kind:
        return SSOFailure(
            f"{account.name} signs in with {IDP_LABELS[IdPKind(connection.idp_kind)]}, not at this address. "
            "Ask your admin to update the app in your identity provider with the ACS URL shown on "
            "the Security page.",
            status_code=404,
        )
    idp = idp_config(connection)
    if idp is None:
        return SSOFailure(
            f"Single sign-on for {account.name} is not finished: the admin still has to paste the "
            "identity provider's metadata on the Security page.",
            status_code=403,
        )
    return _Context(
        account=account,
        connection=connection,
        urls=urls_for(base_url, account, idp_kind),
        idp=idp,
        label=IDP_LABELS[IdPKind(connection.idp_kind)],
    )


def start_login(
    db: Session,
    *,
    sso_token: str,
    idp_kind: str,
    next_path: str,
    now: dt.datetime,
    base_url: str,
    clock_skew: dt.timedelta,
    ip: str | None = None,
    caps: AnonymousCaps = AnonymousCaps(),
) -> str | LoginPost | SSOFailure:
    """Issue an AuthnRequest and remember its ID: the IdP URL to redirect to (HTTP-Redirect
    binding), or the form to post (IdPs whose metadata offers only HTTP-POST).

    Anyone may call this, so one IP may leave only `caps.pending_requests` unanswered per
    account: past that, 429 until the oldest expires."""
    context = _resolve(db, sso_token, idp_kind, base_url)
    if isinstance(context, SSOFailure):
        return context
    pending, first_expiry = sso_store.outstanding_requests(db, context.account.id, ip, now)
    if pending >= caps.pending_requests:
        wait = max(1, int(((first_expiry or now + REQUEST_TTL) - now).total_seconds()) + 1)
        return SSOFailure(
            f"Too many sign-ins to {context.account.name} were started from your network and not "
            f"finished. Wait {max(1, round(wait / 60))} minute(s), then sign in again.",
            status_code=429,
            retry_after=wait,
        )
    sp = sp_config(context.connection, context.urls, clock_skew)
    relay_state = next_path if len(next_path.encode()) <= 80 else None
    login: LoginPost | str
    if context.idp.sso_binding == BINDING_HTTP_REDIRECT:
        redirect = build_login_redirect(sp, context.idp, relay_state, now)
        request_id, login = redirect.request_id, redirect.url
    else:
        post = build_login_post(sp, context.idp, relay_state, now)
        request_id, login = post.request_id, post
    sso_store.add_request(
        db,
        request_id=request_id,
        account_id=context.account.id,
        next_path=next_path,
        now=now,
        ttl=REQUEST_TTL,
        ip=ip,
    )
    return login


def _detail(problem: SAMLError) -> str:
    parts = [problem.message]
    if problem.expected is not None:
        parts.append(f"expected: {problem.expected}")
    if problem.received is not None:
        parts.append(f"received: {problem.received}")
    return " — ".join(parts)


def finish_login(
    db: Session,
    *,
    sso_token: str,
    idp_kind: str,
    saml_response: str,
    relay_state: str | None,
    now: dt.datetime,
    base_url: str,
    clock_skew: dt.timedelta,
    session_policy: auth.SessionPolicy,
    ip: str | None,
    user_agent: str | None,
    caps: AnonymousCaps = AnonymousCaps(),
) -> SSOSuccess | SSOFailure:
    """Validate a response posted to the ACS and sign the agent in, or refuse and record why.

    Returns rather than raises, so the caller commits the attempt record either way. Anyone
    can post here: one IP gets `caps.refusals_recorded_per_minute` refusal rows per account a
    minute; later ones are only counted on the last of those rows.
    """
    context = _resolve(db, sso_token, idp_kind, base_url)
    if isinstance(context, SSOFailure):
        return context
    account, connection = context.account, context.connection

    def refuse(
        code: str,
        detail: str,
        message: str | None = None,
        *,
        email: str | None = None,
        agent_id: str | None = None,
    ) -> SSOFailure:
        metrics.count_sign_in("saml", succeeded=False, reason=code)
        recorded = sso_store.refusals_since(db, account.id, ip, now - REFUSAL_WINDOW)
        if recorded >= caps.refusals_recorded_per_minute:
            sso_store.count_suppressed_refusal(db, account.id, ip)
        else:
            sso_store.record_attempt(
                db,
                account_id=account.id,
                method="saml",
                succeeded=False,
                now=now,
                email=email,
                agent_id=agent_id,
                reason_code=code,
                detail=detail,
                ip=ip,
            )
        return SSOFailure(
            message
            or f"Sign-in through {context.label} didn't work. Your admin can see why under "
            f"Manage › Security (reason: {code}). Try again from your identity provider's dashboard.",
        )

    sp = sp_config(connection, context.urls, clock_skew)
    try:
        verified = validate_response(saml_response, sp, context.idp, now)
    except SAMLError as problem:
        return refuse(str(problem.code), _detail(problem))

    target = _redirect_target(db, account, verified, relay_state, now)
    if isinstance(target, tuple):
        return refuse(*target)
    if not sso_store.remember_assertion(
        db,
        account_id=account.id,
        assertion_id=verified.assertion_id,
        keep_until=verified.replay_cache_until,
    ):
        return refuse(
            "replayed_assertion",
            f"Assertion {verified.assertion_id} was already used to sign in; a response can be used once.",
        )

    profile = profile_from_assertion(verified)
    if connection.sign_in_match == SignInMatch.EMAIL.value and profile.email:
        try:  # an address we could never store is named as such, before any scope rule
            validation.email(profile.email)
        except InvalidInput as problem:
            return refuse(
                "invalid_email",
                f"The agent could not be created from the assertion: {problem.message}",
                email=profile.email,
            )
    match = sign_in_match.find_agent(
        db, account.id, connection.sign_in_match, verified.name_id, profile
    )
    if match.refusal is not None:
        return refuse(*match.refusal, email=profile.email)
    agent = match.agent
    scope = _outside_scope(connection, profile.email or (agent.email if agent else None), agent)
    if scope is not None:
        return refuse(*scope, email=profile.email, agent_id=agent.id if agent else None)
    if agent is not None and not agent.active:
        return refuse(
            "agent_deactivated",
            f"{agent.user_name} is deactivated in deskgate; SSO never reactivates an agent.",
            "Your agent account is deactivated. Ask your account's admin to reactivate it.",
            email=profile.email,
            agent_id=agent.id,
        )
    if agent is None:
        if not connection.jit_enabled:
            return refuse(
                "jit_disabled",
                f"{match.key} has no agent in this account and just-in-time provisioning is off.",
                f"There is no agent for {match.key} in {account.name}, and new agents are not created "
                "at sign-in. Ask your admin to add you.",
                email=profile.email,
            )
        try:
            provisioned = _provision(db, account, connection, profile, match)
        except InvalidInput as problem:  # refused before anything was written
            return refuse(
                f"invalid_{problem.field or 'profile'}",
                f"The agent could not be created from the assertion: {problem.message}",
                email=profile.email,
            )
        if isinstance(provisioned, tuple):
            return refuse(*provisioned, email=profile.email)
        agent = provisioned
    else:
        _refresh_names(agent, profile, now)

    cookie = auth.start_session(
        db,
        agent,
        method="saml",
        policy=session_policy,
        now=now,
        ip=ip,
        user_agent=user_agent,
        not_after=verified.session_not_on_or_after,
    )
    metrics.count_sign_in("saml", succeeded=True)
    sso_store.record_attempt(
        db,
        account_id=account.id,
        method="saml",
        succeeded=True,
        now=now,
        email=agent.email,
        agent_id=agent.id,
        detail=f"signed in via {context.label}"
        + (" (IdP-initiated)" if verified.in_response_to is None else ""),
        ip=ip,
    )
    return SSOSuccess(agent=agent, account=account, cookie_value=cookie, redirect_to=target)


def _outside_scope(
    connection: SSOConnection, email: str | None, agent: Agent | None
) -> tuple[str, str, str] | None:
    """(reason code, detail for the admin, message for the agent) when this IdP may not sign in
    as `email`: an address outside the connection's email domains, or an admin that the IdP did
    not provision (admins created in deskgate keep their password; SSO never takes them over)."""
    domain = (email or "").rpartition("@")[2].lower()
    if connection.email_domains and domain not in connection.email_domains:
        allowed = ", ".join(connection.email_domains)
        if not email:  # with domains set, an identity without an email is outside them too
            return (
                "email_domain_not_allowed",
                f"Neither the assertion nor the matched agent has an email: expected an email in "
                f"{allowed}, received none. Send the email as an 'email' attribute, or give the "
                "agent one.",
                "You can't sign in to this account with single sign-on: no email address came with "
                "the sign-in. Ask your admin.",
            )
        return (
            "email_domain_not_allowed",
            f"The assertion is for {email}: expected an email in {allowed}, received one in "
            f"{domain}. Add the domain under Email domains, or fix the IdP's email mapping.",
            f"{email} can't sign in to this account with single sign-on: its email domain is not one "
            "your admin allowed.",
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
    account: Account,
    verified: VerifiedAssertion,
    relay_state: str | None,
    now: dt.datetime,
) -> str | tuple[str, str]:
    """Where to go after sign-in, consuming the AuthnRequest this response answers.

    Returns (reason_code, detail) when the response answers no request we have outstanding.
    """
    if verified.in_response_to is None:
        return local_path(relay_state)
    request = sso_store.consume_request(db, account.id, verified.in_response_to, now)
    if request is None:
        return (
            "unknown_in_response_to",
            f"The response answers request {verified.in_response_to}, which this account never issued, "
            "already used, or issued more than 10 minutes ago.",
        )
    return local_path(request.relay_state)


def _provision(  # type: ignore[no-untyped-def]
    db: Session, account: Account, connection: SSOConnection, profile, match: sign_in_match.Match
) -> Agent | tuple[str, str]:
    """A JIT agent (its userName is the NameID when agents are matched by userName), or the
    refusal (reason_code, detail)."""
    if not profile.email:
        return (
            "missing_email",
            f"{match.key} has no agent in this account and the assertion carries "
            "no email to create one with: send an 'email' attribute.",
        )
    by_user_name = connection.sign_in_match == SignInMatch.USER_NAME.value
    try:
        return agent_service.add_agent(
            db,
            account.id,
            email=profile.email,
            user_name=match.key if by_user_name else None,
            first_name=(profile.first_name or "")[:200],
            last_name=(profile.last_name or "")[:200],
            role=connection.jit_role,
            source=AgentSource.JIT,
        )
    except Conflict as clash:
        # A concurrent sign-in (or SCIM) created the same agent a moment ago: use that one.
        again = sign_in_match.find_agent(
            db, account.id, connection.sign_in_match, match.key or "", profile
        )
        if again.agent is not None and again.agent.active and again.refusal is None:
            return again.agent
        # Or, matching by userName, another agent already has this email.
        return (
            "jit_conflict",
            f"No agent has the userName {match.key}, and a new one cannot be created: {clash}",
        )


def _refresh_names(agent: Agent, profile, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    changed = False
    for attribute in ("first_name", "last_name"):
        value = getattr(profile, attribute)
        if value and value[:200] != getattr(agent, attribute):
            setattr(agent, attribute, value[:200])
            changed = True
    if changed:
        agent.display_name = (
            profile.display_name
            or agent_service.display_name_for(agent.first_name, agent.last_name, agent.email)
        )[: agent_service.MAX_DISPLAY_NAME]
        agent.version += 1
        agent.updated_at = now


def sp_metadata_for(
    db: Session,
    sso_token: str,
    idp_kind: str,
    *,
    base_url: str,
    now: dt.datetime,
    clock_skew: dt.timedelta,
) -> str:
    from deskgate.saml.metadata import render_sp_metadata

    account = account_store.by_sso_token(db, sso_token)
    if account is None or account.plan != Plan.SCALE_PLUS:
        raise NotFound("No SSO configuration at this address.")
    try:
        IdPKind(idp_kind)
    except ValueError:
        raise NotFound("No SSO configuration at this address.") from None
    connection = ensure_connection(db, account, now)
    return render_sp_metadata(
        sp_config(connection, urls_for(base_url, account, idp_kind), clock_skew)
    )


# --- metadata refresh ----------------------------------------------------------------------

METADATA_MAX_AGE = dt.timedelta(days=1)
METADATA_RETRY_AFTER = dt.timedelta(hours=6)
"""After a failed refresh, the connection waits this long before the next try."""
_MAX_ERROR_CHARS = 1000
log = logging.getLogger("deskgate.sso")


def refresh_stale_metadata(
    sessions: Callable[[], Session],
    fetch: Callable[[str], bytes],
    now: dt.datetime,
    *,
    allow_http: bool = False,
) -> int:
    """Re-read IdP metadata given by URL when older than a day; return how many were refreshed.

    Each connection is refreshed on its own: its fetch runs outside any transaction (no
    database lock is held while waiting on the network), then its result is written in its own
    transaction. Whatever goes wrong with one connection (a refusal, an unexpected exception, a
    failed write) is recorded on that connection and never stops the others. A failed refresh
    keeps the working configuration, records the reason and the time for the Security page,
    and is retried after METADATA_RETRY_AFTER. `allow_http`: the `allow_private_metadata_urls`
    setting.
    """
    with sessions() as db:
        due = [
            (row.account_id, row.metadata_url)
            for row in sso_store.connections_with_metadata_url(
                db, older_than=now - METADATA_MAX_AGE, failed_before=now - METADATA_RETRY_AFTER
            )
        ]
    refreshed = 0
    for account_id, url in due:
        if url is None:
            continue
        parsed, error = _read_metadata(account_id, url, fetch, now, allow_http)
        try:
            refreshed += _record_refresh(sessions, account_id, url, parsed, error, now)
        except Exception:  # noqa: BLE001 - one connection's write must not stop the others
            log.exception("Recording the metadata refresh of account %s failed", account_id)
    return refreshed


def _read_metadata(
    account_id: str, url: str, fetch: Callable[[str], bytes], now: dt.datetime, allow_http: bool
) -> tuple[ParsedMetadata | None, str | None]:
    """(parsed, None), or (None, why not) for the admin."""
    try:
        return parse_metadata_or_explain(fetch(url), now, allow_http=allow_http), None
    except DeskgateError as problem:
        return None, _bounded_reason(problem.message)
    except Exception as problem:  # noqa: BLE001 - any failure stays this connection's
        log.exception("Refreshing the IdP metadata of account %s failed", account_id)
        return (
            None,
            f"unexpected error ({type(problem).__name__}); check the metadata URL and save it again",
        )


def _bounded_reason(text: str) -> str:
    # Shown to the admin and stored in a text column: no control characters (PostgreSQL refuses
    # NUL), bounded length.
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned if len(cleaned) <= _MAX_ERROR_CHARS else cleaned[: _MAX_ERROR_CHARS - 1] + "…"


def _record_refresh(
    sessions: Callable[[], Session],
    account_id: str,
    url: str,
    parsed: ParsedMetadata | None,
    error: str | None,
    now: dt.datetime,
) -> int:
    with sessions() as db:
        connection = sso_store.connection(db, account_id)
        if connection is None or connection.metadata_url != url:
            return 0  # changed meanwhile by an admin
        if parsed is not None:
            apply_metadata(connection, parsed, now)
        else:
            connection.metadata_error = error
            connection.metadata_refresh_failed_at = now
        db.commit()
    return 1 if parsed is not None else 0
