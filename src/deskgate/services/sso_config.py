"""An account's SSO connection as the sign-in paths use it: the addresses, the SP and IdP
configurations, and what makes a connection unusable.

Every sign-in reads the account and its connection settings from the database (one query by
the SSO token): plan, on/off, options and `updated_at` are never taken from memory. Only the
parsed `SPConfig`/`IdPConfig` (PEM keys and certificates checked and normalised) are kept per
worker, keyed by the connection and its `updated_at` among others, so a change saved on any node
is used at the next request everywhere.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from deskgate.saml.config import BINDING_HTTP_REDIRECT, IdPConfig, SPConfig, SPKeyPair
from deskgate.services.domains import DomainGate
from deskgate.store import certificates as certificate_store
from deskgate.store import sso as sso_store
from deskgate.store.models import IdPKind, Plan, SSOConnection

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


def urls_for(base_url: str, sso_token: str, idp_kind: str) -> SSOUrls:
    root = f"{base_url}/api/v1/sso/{sso_token}"
    return SSOUrls(
        sso_token=sso_token,
        acs_url=f"{root}/acs/{idp_kind}",
        sp_entity_id=f"{root}/metadata/{idp_kind}",
        sp_metadata_url=f"{root}/metadata/{idp_kind}",
        login_url=f"{root}/login/{idp_kind}",
    )


def _key_pair(private_key_pem: str | None, certificate_pem: str | None) -> SPKeyPair | None:
    if not (private_key_pem and certificate_pem):
        return None
    return SPKeyPair(private_key_pem=private_key_pem, certificate_pem=certificate_pem)


def sp_config(connection: SSOConnection, urls: SSOUrls, clock_skew: dt.timedelta) -> SPConfig:
    return SPConfig(
        entity_id=urls.sp_entity_id,
        acs_url=urls.acs_url,
        private_key_pem=connection.sp_private_key_pem,
        certificate_pem=connection.sp_certificate_pem,
        allow_sha1=connection.allow_sha1,
        clock_skew=clock_skew,
        allow_unsolicited=connection.allow_idp_initiated,
        next_key=_key_pair(connection.sp_next_private_key_pem, connection.sp_next_certificate_pem),
        previous_key=_key_pair(
            connection.sp_previous_private_key_pem, connection.sp_previous_certificate_pem
        ),
    )


def idp_config(connection: SSOConnection, certificates: Sequence[str]) -> IdPConfig | None:
    """`certificates`: the connection's IdP signing certificates (store.certificates.pems)."""
    if not (connection.idp_entity_id and connection.idp_sso_url and certificates):
        return None
    return IdPConfig(
        entity_id=connection.idp_entity_id,
        sso_url=connection.idp_sso_url,
        signing_certificates=tuple(certificates),
        sso_binding=connection.idp_sso_binding or BINDING_HTTP_REDIRECT,
    )


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
class SignInConfig:
    """One account's usable SSO connection, as read for this request."""

    account_id: str
    account_name: str
    label: str
    """The IdP's name for messages ("Okta")."""
    jit_enabled: bool
    jit_role: str
    domains: DomainGate
    """The account's claimed domains: which emails this IdP may sign in."""
    sign_in_match: str
    sp: SPConfig
    idp: IdPConfig


def load(
    db: Session, *, sso_token: str, idp_kind: str, base_url: str, clock_skew: dt.timedelta
) -> SignInConfig | SSOFailure:
    """The account's connection for a sign-in at this address, or why there is none."""
    row = sso_store.sign_in_connection(db, sso_token)
    if row is None:
        return SSOFailure(
            "This single sign-on address is not valid. If your admin recently rotated the account's "
            "SSO token, sign in from our login page with “Login with SSO”.",
            status_code=404,
        )
    if row.plan != Plan.SCALE_PLUS or row.connection_id is None or not row.enabled:
        return SSOFailure(
            f"Single sign-on is not turned on for {row.account_name}. Sign in with your password, "
            "or ask your admin to turn it on under Manage › Security.",
            status_code=403,
        )
    label = IDP_LABELS[IdPKind(row.idp_kind)]
    if idp_kind != row.idp_kind:
        return SSOFailure(
            f"{row.account_name} signs in with {label}, not at this address. "
            "Ask your admin to update the app in your identity provider with the ACS URL shown on "
            "the Security page.",
            status_code=404,
        )
    parsed = _parsed_configs(db, row, sso_token, base_url, clock_skew)
    if parsed is None:
        return SSOFailure(
            f"Single sign-on for {row.account_name} is not finished: the admin still has to paste "
            "the identity provider's metadata on the Security page.",
            status_code=403,
        )
    sp, idp = parsed
    return SignInConfig(
        account_id=row.account_id,
        account_name=row.account_name,
        label=label,
        jit_enabled=row.jit_enabled,
        jit_role=row.jit_role,
        domains=DomainGate.from_column(row.domains),
        sign_in_match=row.sign_in_match,
        sp=sp,
        idp=idp,
    )


# --- the per-worker cache of parsed configurations -------------------------------------------

_CACHE_SIZE = 512
_cache: dict[tuple[Any, ...], tuple[SPConfig, IdPConfig] | None] = {}
_cache_lock = threading.Lock()


def _parsed_configs(
    db: Session, row: Row[*tuple[Any, ...]], sso_token: str, base_url: str, clock_skew: dt.timedelta
) -> tuple[SPConfig, IdPConfig] | None:
    # Everything the configurations are built from is in the key: the columns this request read,
    # and `updated_at` standing for the keys and certificates (every change to them sets it).
    key = (
        row.account_id,
        row.updated_at,
        sso_token,
        row.idp_kind,
        row.idp_entity_id,
        row.idp_sso_url,
        row.idp_sso_binding,
        row.allow_sha1,
        row.allow_idp_initiated,
        base_url,
        clock_skew,
    )
    try:
        return _cache[key]
    except KeyError:
        pass
    keys = sso_store.connection_keys(db, row.account_id)
    if keys is None:  # deleted since the first query: nothing to keep
        return None
    connection = SSOConnection(
        allow_sha1=row.allow_sha1,
        allow_idp_initiated=row.allow_idp_initiated,
        idp_entity_id=row.idp_entity_id,
        idp_sso_url=row.idp_sso_url,
        idp_sso_binding=row.idp_sso_binding,
        sp_private_key_pem=keys.sp_private_key_pem,
        sp_certificate_pem=keys.sp_certificate_pem,
        sp_next_private_key_pem=keys.sp_next_private_key_pem,
        sp_next_certificate_pem=keys.sp_next_certificate_pem,
        sp_previous_private_key_pem=keys.sp_previous_private_key_pem,
        sp_previous_certificate_pem=keys.sp_previous_certificate_pem,
    )  # transient: never added to the session
    idp = idp_config(connection, certificate_store.pems(db, row.account_id))
    parsed = (
        None
        if idp is None
        else (sp_config(connection, urls_for(base_url, sso_token, row.idp_kind), clock_skew), idp)
    )
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))  # the oldest entry
        _cache[key] = parsed
    return parsed
