"""Single sign-on use cases: set up an account's IdP, start a sign-in, finish it at the ACS.

The SAML core (deskgate.saml) validates bytes; this module adds what needs the database:
outstanding request IDs (InResponseTo), the replay store, JIT provisioning, and the record of
every attempt that admins read on the Security page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate.errors import Conflict, DeskgateError, Forbidden, InvalidInput, NotFound
from deskgate.saml.acs import VerifiedAssertion, validate_response
from deskgate.saml.attributes import profile_from_assertion
from deskgate.saml.config import BINDING_HTTP_REDIRECT, IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError
from deskgate.saml.keys import generate_sp_keypair
from deskgate.saml.login import LoginPost, build_login_post, build_login_redirect
from deskgate.saml.metadata import ParsedMetadata, parse_idp_metadata
from deskgate.services import agents as agent_service
from deskgate.services import auth, scim_credentials
from deskgate.store import accounts as account_store
from deskgate.store import agents as agent_store
from deskgate.store import sso as sso_store
from deskgate.store.models import Account, Agent, AgentSource, IdPKind, Plan, Role, SSOConnection
from deskgate.redirects import local_path

REQUEST_TTL = dt.timedelta(minutes=10)
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
    private_key, certificate = generate_sp_keypair(now, common_name=f"deskgate SP for {account.name}"[:64])
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
            raise InvalidInput(f"'{raw}' is not an email domain (expected something like example.com).",
                               field="email_domains")
        if domain not in domains:
            domains.append(domain)
    return domains


def parse_metadata_or_explain(xml: bytes | str, now: dt.datetime) -> ParsedMetadata:
    try:
        return parse_idp_metadata(xml, now)
    except SAMLError as problem:
        raise InvalidInput(f"The IdP metadata can't be used: {problem.message}", field="metadata_xml") from None


def save_settings(
    db: Session,
    account: Account,
    form: SSOSettingsForm,
    *,
    now: dt.datetime,
    base_url: str,
    fetched_metadata: bytes | None = None,
) -> SavedSSO:
    """Check and store the SSO settings. The caller wraps this in a savepoint: on any error
    nothing it wrote stays. `fetched_metadata` is what `form.metadata_url` returned."""
    _require_scale_plus(account)
    try:
        idp_kind = IdPKind(form.idp_kind)
    except ValueError:
        raise InvalidInput(f"Unknown identity provider '{form.idp_kind}'.", field="idp_kind") from None
    try:
        jit_role = Role(form.jit_role)
    except ValueError:
        raise InvalidInput(f"Unknown role '{form.jit_role}'.", field="jit_role") from None
    domains = _parse_domains(form.email_domains)
    connection = ensure_connection(db, account, now)

    parsed: ParsedMetadata | None = None
    metadata_url = (form.metadata_url or "").strip() or None
    metadata_xml = (form.metadata_xml or "").strip() or None
    if metadata_url:
        if fetched_metadata is None:
            raise InvalidInput("The metadata URL has not been fetched.", field="metadata_url")
        parsed = parse_metadata_or_explain(fetched_metadata, now)
    elif metadata_xml:
        parsed = parse_metadata_or_explain(metadata_xml, now)
    if form.enabled and parsed is None and idp_config(connection) is None:
        raise InvalidInput(
            "Paste your IdP's metadata XML (or give its metadata URL) before turning on single sign-on.",
            field="metadata_xml",
        )

    taken = sso_store.replace_domains(db, account.id, domains)
    if taken is not None:
        raise Conflict(f"The email domain {taken} is already used for SSO by another account.",
                       attribute="email_domains")
    connection.enabled = form.enabled
    connection.idp_kind = idp_kind.value
    connection.allow_idp_initiated = form.allow_idp_initiated
    connection.jit_enabled = form.jit_enabled
    connection.jit_role = jit_role.value
    connection.require_sso = form.require_sso
    connection.allow_sha1 = form.allow_sha1
    connection.email_domains = domains
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
) -> str | LoginPost | SSOFailure:
    """Issue an AuthnRequest and remember its ID: the IdP URL to redirect to (HTTP-Redirect
    binding), or the form to post (IdPs whose metadata offers only HTTP-POST)."""
    context = _resolve(db, sso_token, idp_kind, base_url)
    if isinstance(context, SSOFailure):
        return context
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
        db, request_id=request_id, account_id=context.account.id, next_path=next_path,
        now=now, ttl=REQUEST_TTL,
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
) -> SSOSuccess | SSOFailure:
    """Validate a response posted to the ACS and sign the agent in, or refuse and record why.

    Returns rather than raises, so the caller commits the attempt record either way.
    """
    context = _resolve(db, sso_token, idp_kind, base_url)
    if isinstance(context, SSOFailure):
        return context
    account, connection = context.account, context.connection

    def refuse(code: str, detail: str, message: str | None = None, *, email: str | None = None,
               agent_id: str | None = None) -> SSOFailure:
        sso_store.record_attempt(
            db, account_id=account.id, method="saml", succeeded=False, now=now, email=email,
            agent_id=agent_id, reason_code=code, detail=detail, ip=ip,
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
        db, account_id=account.id, assertion_id=verified.assertion_id, keep_until=verified.replay_cache_until
    ):
        return refuse(
            "replayed_assertion",
            f"Assertion {verified.assertion_id} was already used to sign in; a response can be used once.",
        )

    profile = profile_from_assertion(verified)
    if not profile.email:
        return refuse(
            "missing_email",
            f"The assertion carries no email: NameID was '{verified.name_id}' and no email attribute was "
            f"found among {sorted(verified.attributes) or 'no attributes'}. Send the email as NameID "
            "(EmailAddress format) or as an 'email' attribute.",
        )
    agent = agent_store.by_email(db, account.id, profile.email)
    if agent is not None and not agent.active:
        return refuse(
            "agent_deactivated",
            f"{agent.email} is deactivated in deskgate; SSO never reactivates an agent.",
            "Your agent account is deactivated. Ask your account's admin to reactivate it.",
            email=profile.email, agent_id=agent.id,
        )
    if agent is None:
        if not connection.jit_enabled:
            return refuse(
                "jit_disabled",
                f"{profile.email} has no agent in this account and just-in-time provisioning is off.",
                f"There is no agent for {profile.email} in {account.name}, and new agents are not created "
                "at sign-in. Ask your admin to add you.",
                email=profile.email,
            )
        agent = _provision(db, account, connection, profile)
    else:
        _refresh_names(agent, profile, now)

    cookie = auth.start_session(
        db, agent, method="saml", policy=session_policy, now=now, ip=ip, user_agent=user_agent
    )
    sso_store.record_attempt(
        db, account_id=account.id, method="saml", succeeded=True, now=now, email=agent.email,
        agent_id=agent.id, detail=f"signed in via {context.label}"
        + (" (IdP-initiated)" if verified.in_response_to is None else ""),
        ip=ip,
    )
    return SSOSuccess(agent=agent, account=account, cookie_value=cookie, redirect_to=target)


def _redirect_target(
    db: Session, account: Account, verified: VerifiedAssertion, relay_state: str | None, now: dt.datetime
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


def _provision(db: Session, account: Account, connection: SSOConnection, profile) -> Agent:  # type: ignore[no-untyped-def]
    try:
        return agent_service.add_agent(
            db,
            account.id,
            email=profile.email,
            first_name=(profile.first_name or "")[:200],
            last_name=(profile.last_name or "")[:200],
            role=connection.jit_role,
            source=AgentSource.JIT,
        )
    except Conflict:
        # A concurrent sign-in (or SCIM) created the same agent a moment ago: use that one.
        existing = agent_store.by_email(db, account.id, profile.email)
        assert existing is not None
        return existing


def _refresh_names(agent: Agent, profile, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    changed = False
    for attribute in ("first_name", "last_name"):
        value = getattr(profile, attribute)
        if value and value[:200] != getattr(agent, attribute):
            setattr(agent, attribute, value[:200])
            changed = True
    if changed:
        agent.display_name = (profile.display_name or agent_service.display_name_for(
            agent.first_name, agent.last_name, agent.email
        ))[:agent_service.MAX_DISPLAY_NAME]
        agent.version += 1
        agent.updated_at = now


def sp_metadata_for(db: Session, sso_token: str, idp_kind: str, *, base_url: str, now: dt.datetime,
                    clock_skew: dt.timedelta) -> str:
    from deskgate.saml.metadata import render_sp_metadata

    account = account_store.by_sso_token(db, sso_token)
    if account is None or account.plan != Plan.SCALE_PLUS:
        raise NotFound("No SSO configuration at this address.")
    try:
        IdPKind(idp_kind)
    except ValueError:
        raise NotFound("No SSO configuration at this address.") from None
    connection = ensure_connection(db, account, now)
    return render_sp_metadata(sp_config(connection, urls_for(base_url, account, idp_kind), clock_skew))


# --- metadata refresh ----------------------------------------------------------------------

METADATA_MAX_AGE = dt.timedelta(days=1)


def refresh_stale_metadata(
    sessions: Callable[[], Session], fetch: Callable[[str], bytes], now: dt.datetime
) -> int:
    """Re-read IdP metadata given by URL when older than a day; return how many were refreshed.

    The fetch runs outside any transaction (no database lock is held while waiting on the
    network). A failed refresh keeps the working configuration and records the reason, which
    the Security page shows.
    """
    with sessions() as db:
        due = [
            (row.account_id, row.metadata_url)
            for row in sso_store.connections_with_metadata_url(db, older_than=now - METADATA_MAX_AGE)
        ]
    refreshed = 0
    for account_id, url in due:
        try:
            parsed: ParsedMetadata | None = parse_metadata_or_explain(fetch(url), now)
            error = None
        except DeskgateError as problem:
            parsed, error = None, problem.message
        with sessions() as db:
            connection = sso_store.connection(db, account_id)
            if connection is None or connection.metadata_url != url:
                continue  # changed meanwhile by an admin
            if parsed is not None:
                apply_metadata(connection, parsed, now)
                refreshed += 1
            else:
                connection.metadata_error = error
                connection.metadata_fetched_at = now  # retry tomorrow, not on every pass
            db.commit()
    return refreshed
