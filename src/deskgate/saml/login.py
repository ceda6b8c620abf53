"""SP-initiated sign-in: build the AuthnRequest sent to the IdP.

The XML is python3-saml's ``OneLogin_Saml2_Templates.AUTHN_REQUEST`` filled in
here rather than through ``OneLogin_Saml2_Authn_Request``, because that class
reads the wall clock for IssueInstant (``OneLogin_Saml2_Utils.now()``), does
not XML-escape the URLs it interpolates, and always adds a
RequestedAuthnContext (PasswordProtectedTransport, "exact") that makes Entra
ID refuse users who signed in with MFA or Windows auth. Deflate/base64, the
redirect URL and the signed query (``_build_sign_query``) are python3-saml's; the
HTTP-Redirect signature is xmlsec's ``SignatureContext.sign_binary``, as python3-saml's
``sign_binary`` does it, but with the SP key parsed once per PEM (``_signing_key``): parsing
it was half the time of an SP-initiated login.

The caller must remember ``request_id`` (bound to the browser session and the
IdP connection) until the response comes back, then consume it when
``VerifiedAssertion.in_response_to`` names it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from xml.sax.saxutils import escape

import xmlsec
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_templates import OneLogin_Saml2_Templates

from deskgate.saml._time import format_instant, require_utc_aware
from deskgate.saml.config import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, IdPConfig, SPConfig

__all__ = [
    "MAX_RELAY_STATE_BYTES",
    "LoginPost",
    "LoginRedirect",
    "build_login_post",
    "build_login_redirect",
]

#: SAML bindings 3.4.3 / 3.5.3: RelayState MUST NOT exceed 80 bytes.
MAX_RELAY_STATE_BYTES = 80

# "Let the IdP choose" avoids InvalidNameIDPolicy refusals from IdPs whose app
# is configured for another format; the NameID we get is checked on return.
_NAMEID_POLICY = '\n    <samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true" />'
_SIG_ALG = OneLogin_Saml2_Constants.RSA_SHA256


@dataclass(frozen=True)
class LoginRedirect:
    """Where to send the browser (HTTP 302/303) and the AuthnRequest ID to remember."""

    url: str
    request_id: str


@dataclass(frozen=True)
class LoginPost:
    """An HTTP-POST binding sign-in: auto-submit ``fields`` to ``url``; remember ``request_id``."""

    url: str
    fields: dict[str, str] = field(hash=False)
    request_id: str


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _new_request_id() -> str:
    # xs:ID must not start with a digit; 160 random bits make it unguessable.
    return "_" + secrets.token_hex(20)


def _authn_request_xml(
    sp: SPConfig, idp: IdPConfig, request_id: str, now: datetime, force_authn: bool
) -> str:
    template: str = OneLogin_Saml2_Templates.AUTHN_REQUEST
    return template % {
        "id": request_id,
        "provider_name": "",
        "force_authn_str": '\n    ForceAuthn="true"' if force_authn else "",
        "is_passive_str": "",
        "issue_instant": format_instant(now),
        "destination": _attr(idp.sso_url),
        "acs_binding": BINDING_HTTP_POST,
        "assertion_url": _attr(sp.acs_url),
        "attr_consuming_service_str": "",
        "entity_id": escape(sp.entity_id),
        "subject_str": "",
        "nameid_policy_str": _NAMEID_POLICY,
        "requested_authn_context_str": "",
    }


@lru_cache(maxsize=64)
def _signing_key(private_key_pem: str) -> xmlsec.Key:
    """The SP's private key, parsed once per PEM. Only our own keys (from the SSO connection,
    never from a request) come here; a rotated key is a new PEM, and the old one ages out."""
    return xmlsec.Key.from_memory(private_key_pem, xmlsec.KeyFormat.PEM, None)


def _check_relay_state(relay_state: str | None) -> None:
    if relay_state is not None and len(relay_state.encode("utf-8")) > MAX_RELAY_STATE_BYTES:
        raise ValueError(
            f"relay_state must be at most {MAX_RELAY_STATE_BYTES} bytes (SAML bindings 3.4.3)"
        )


def build_login_redirect(
    sp: SPConfig,
    idp: IdPConfig,
    relay_state: str | None,
    now: datetime,
    *,
    force_authn: bool = False,
) -> LoginRedirect:
    """AuthnRequest over the HTTP-Redirect binding, with a fresh random ID.

    The request asks for the response at ``sp.acs_url`` over HTTP-POST, with
    IssueInstant = ``now``. When ``sp.sign_authn_requests``, the query carries
    ``SigAlg`` (RSA-SHA256) and ``Signature`` over
    ``SAMLRequest&RelayState&SigAlg`` as the binding specifies.

    Args:
        relay_state: opaque value (<= 80 bytes) the IdP echoes back; ``None`` to omit.
        now: current instant, timezone-aware.
        force_authn: ask the IdP to re-authenticate the user.

    Raises:
        ValueError: naive ``now``, RelayState too long, or the IdP only accepts
            HTTP-POST (use :func:`build_login_post`).
    """
    now = require_utc_aware(now)
    _check_relay_state(relay_state)
    if idp.sso_binding != BINDING_HTTP_REDIRECT:
        raise ValueError(
            "this IdP's SingleSignOnService only accepts HTTP-POST; use build_login_post"
        )
    request_id = _new_request_id()
    xml = _authn_request_xml(sp, idp, request_id, now, force_authn)
    saml_request = OneLogin_Saml2_Utils.deflate_and_base64_encode(xml)
    parameters: dict[str, str] = {"SAMLRequest": saml_request}
    if relay_state is not None:
        parameters["RelayState"] = relay_state
    if sp.sign_authn_requests:
        signed_query = OneLogin_Saml2_Auth._build_sign_query(
            saml_request, relay_state, _SIG_ALG, "SAMLRequest"
        )
        context = xmlsec.SignatureContext()
        context.key = _signing_key(sp.private_key_pem)  # the context takes its own copy
        signature = context.sign_binary(signed_query.encode("utf-8"), xmlsec.Transform.RSA_SHA256)
        parameters["SigAlg"] = _SIG_ALG
        parameters["Signature"] = OneLogin_Saml2_Utils.b64encode(signature)
    url = OneLogin_Saml2_Utils.redirect(idp.sso_url, parameters)
    return LoginRedirect(url=url, request_id=request_id)


def build_login_post(
    sp: SPConfig,
    idp: IdPConfig,
    relay_state: str | None,
    now: datetime,
    *,
    force_authn: bool = False,
) -> LoginPost:
    """AuthnRequest over the HTTP-POST binding (for IdPs without HTTP-Redirect).

    Same request as :func:`build_login_redirect`; when ``sp.sign_authn_requests``
    it carries an enveloped XML signature (python3-saml ``add_sign``, RSA-SHA256).

    Raises:
        ValueError: naive ``now`` or RelayState too long.
    """
    now = require_utc_aware(now)
    _check_relay_state(relay_state)
    request_id = _new_request_id()
    xml = _authn_request_xml(sp, idp, request_id, now, force_authn)
    if sp.sign_authn_requests:
        signed = OneLogin_Saml2_Utils.add_sign(
            xml,
            sp.private_key_pem,
            sp.certificate_pem,
            sign_algorithm=_SIG_ALG,
            digest_algorithm=OneLogin_Saml2_Constants.SHA256,
        )
        xml = signed.decode("utf-8") if isinstance(signed, bytes) else signed
    fields = {"SAMLRequest": OneLogin_Saml2_Utils.b64encode(xml)}
    if relay_state is not None:
        fields["RelayState"] = relay_state
    return LoginPost(url=idp.sso_url, fields=fields, request_id=request_id)
