"""Single sign-on setup: an account's connection to its IdP, as the admin saves it.

Signing in is elsewhere: services/sso_start.py (SP-initiated), services/sso_sign_in.py (the
ACS), services/sso_config.py (the connection as sign-ins read it); the daily metadata refresh
is services/sso_refresh.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate.errors import Forbidden, InvalidInput, NotFound
from deskgate.saml.errors import SAMLError
from deskgate.saml.metadata import ParsedMetadata, parse_idp_metadata
from deskgate.services import certificates, events, scim_credentials, sp_keys
from deskgate.services.event_snapshots import OPERATOR, record_sso_change, sso_snapshot
from deskgate.services.events import Actor
from deskgate.services.sso_config import SSOUrls, idp_config, sp_config, urls_for
from deskgate.store import accounts as account_store
from deskgate.store import certificates as certificate_store
from deskgate.store import sso as sso_store
from deskgate.store.models import Account, IdPKind, Plan, Role, SignInMatch, SSOConnection


def _require_scale_plus(account: Account) -> None:
    if account.plan != Plan.SCALE_PLUS:
        raise Forbidden("Single sign-on is available on the Scale Plus plan.")


def ensure_connection(db: Session, account: Account, now: dt.datetime) -> SSOConnection:
    """The account's SSO connection, created (with its own SP key pair) on first use."""
    existing = sso_store.connection(db, account.id)
    if existing is not None:
        return existing
    private_key, certificate = sp_keys.new_keypair(account.name, now)
    connection = SSOConnection(
        account_id=account.id,
        enabled=False,
        idp_kind=IdPKind.OKTA.value,
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
    sign_in_match: str = SignInMatch.EMAIL.value


@dataclass(frozen=True)
class SavedSSO:
    metadata: ParsedMetadata | None
    scim: scim_credentials.ScimCredentials | None
    """Set when this save issued the account's first SCIM token (shown once)."""
    urls: SSOUrls


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
    actor: Actor = OPERATOR,
    certificate_overlap: dt.timedelta = certificates.DEFAULT_OVERLAP,
) -> SavedSSO:
    """Check and store the SSO settings. The caller wraps this in a savepoint: on any error
    nothing it wrote stays. `fetched_metadata` is what `form.metadata_url` returned;
    `allow_private_urls` is the `allow_private_metadata_urls` setting; `certificate_overlap`
    how long certificates the metadata dropped stay. Records sso.enabled, sso.disabled or
    sso.updated by `actor` when a setting changed (after the last check that can refuse)."""
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
    try:
        sign_in_match_rule = SignInMatch(form.sign_in_match)
    except ValueError:
        raise InvalidInput(
            f"Unknown sign-in matching '{form.sign_in_match}'.", field="sign_in_match"
        ) from None
    connection = ensure_connection(db, account, now)
    before = sso_snapshot(connection)

    parsed: ParsedMetadata | None = None
    metadata_url = (form.metadata_url or "").strip() or None
    metadata_xml = (form.metadata_xml or "").strip() or None
    if metadata_url:
        if fetched_metadata is None:
            raise InvalidInput("The metadata URL has not been fetched.", field="metadata_url")
        parsed = parse_metadata_or_explain(fetched_metadata, now, allow_http=allow_private_urls)
    elif metadata_xml:
        parsed = parse_metadata_or_explain(metadata_xml, now, allow_http=allow_private_urls)
    if (
        form.enabled
        and parsed is None
        and idp_config(connection, certificate_store.pems(db, account.id)) is None
    ):
        raise InvalidInput(
            "Paste your IdP's metadata XML (or give its metadata URL) before turning on single sign-on.",
            field="metadata_xml",
        )

    connection.enabled = form.enabled
    connection.idp_kind = idp_kind.value
    connection.allow_idp_initiated = form.allow_idp_initiated
    connection.jit_enabled = form.jit_enabled
    connection.jit_role = jit_role.value
    connection.require_sso = form.require_sso
    connection.allow_sha1 = form.allow_sha1
    connection.sign_in_match = sign_in_match_rule.value
    connection.updated_at = now
    if parsed is not None:
        apply_metadata(
            db,
            connection,
            parsed,
            now,
            actor=actor,
            certificate_overlap=certificate_overlap,
        )
        connection.metadata_url = metadata_url
        connection.metadata_xml = metadata_xml if not metadata_url else None

    scim = None
    if parsed is not None and not scim_credentials.has_live_token(db, account, now):
        # Saving working IdP metadata is when the admin wants provisioning credentials too.
        scim = scim_credentials.issue(db, account, base_url=base_url, now=now, actor=actor)
    record_sso_change(db, account.id, actor, before, sso_snapshot(connection))
    return SavedSSO(
        metadata=parsed, scim=scim, urls=urls_for(base_url, account.sso_token, idp_kind.value)
    )


def apply_metadata(
    db: Session,
    connection: SSOConnection,
    parsed: ParsedMetadata,
    now: dt.datetime,
    *,
    actor: Actor,
    certificate_overlap: dt.timedelta,
) -> None:
    """Use freshly read metadata. `updated_at` moves too: it is what tells every node's cache of
    parsed configurations (services/sso_config.py) that the certificates changed. Certificates
    the metadata no longer lists stay for `certificate_overlap` (services/certificates.py)."""
    connection.updated_at = now
    connection.idp_entity_id = parsed.idp.entity_id
    connection.idp_sso_url = parsed.idp.sso_url
    connection.idp_sso_binding = parsed.idp.sso_binding
    connection.metadata_fetched_at = now
    connection.metadata_error = None
    connection.metadata_refresh_failed_at = None
    certificates.sync_from_metadata(
        db,
        connection,
        parsed.idp.signing_certificates,
        now,
        overlap=certificate_overlap,
        actor=actor,
    )


def rotate_sso_token(db: Session, account: Account, *, actor: Actor = OPERATOR) -> None:
    """A new SSO token (the old ACS and sign-in URLs stop at once); sso.updated names the
    tokens by their last four characters only."""
    from deskgate.services.accounts import rotate_sso_token as rotate

    _require_scale_plus(account)
    old = account.sso_token
    rotate(db, account)
    events.record_change(
        db,
        account.id,
        "sso.updated",
        actor,
        {"sso_token": f"…{old[-4:]}"},
        {"sso_token": f"…{account.sso_token[-4:]}"},
    )


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
        sp_config(connection, urls_for(base_url, account.sso_token, idp_kind), clock_skew)
    )
