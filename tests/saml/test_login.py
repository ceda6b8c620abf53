"""SP-initiated AuthnRequests: HTTP-Redirect (deflated, query-signed) and HTTP-POST (XML-signed)."""

from __future__ import annotations

import base64
import dataclasses
import zlib
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from deskgate.saml._xml import schema_errors
from deskgate.saml.config import BINDING_HTTP_POST
from deskgate.saml.login import LoginPost, LoginRedirect, build_login_post, build_login_redirect

SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def authn_request(login: LoginRedirect) -> etree._Element:
    query = parse_qs(urlsplit(login.url).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(xml)


def test_redirect_carries_a_valid_authn_request(spec, sp_config, idp_config):
    login = build_login_redirect(sp_config, idp_config, "state-123", spec.now)
    assert login.url.startswith(idp_config.sso_url + "?SAMLRequest=")

    request = authn_request(login)
    assert schema_errors(request) is None
    assert request.tag == f"{SAMLP}AuthnRequest"
    assert request.get("ID") == login.request_id
    assert request.get("Version") == "2.0"
    assert (
        request.get("IssueInstant") == "2025-03-14T09:26:53Z"
    )  # the given now, not the wall clock
    assert request.get("Destination") == idp_config.sso_url
    assert request.get("AssertionConsumerServiceURL") == sp_config.acs_url
    assert request.get("ProtocolBinding") == BINDING_HTTP_POST
    assert request.findtext(f"{SAML}Issuer") == sp_config.entity_id
    policy = request.find(f"{SAMLP}NameIDPolicy")
    assert policy.get("Format") == "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    assert policy.get("AllowCreate") == "true"
    assert (
        request.find(f"{SAMLP}RequestedAuthnContext") is None
    )  # would lock out MFA users at Entra ID
    assert request.get("ForceAuthn") is None


def test_every_request_gets_a_fresh_unguessable_id(spec, sp_config, idp_config):
    ids = {
        build_login_redirect(sp_config, idp_config, None, spec.now).request_id for _ in range(20)
    }
    assert len(ids) == 20
    assert all(i.startswith("_") and len(i) >= 40 for i in ids)


def test_relay_state_round_trips_and_is_optional(spec, sp_config, idp_config):
    with_state = parse_qs(
        urlsplit(build_login_redirect(sp_config, idp_config, "a b&c=/?", spec.now).url).query
    )
    assert with_state["RelayState"] == ["a b&c=/?"]
    without = parse_qs(
        urlsplit(build_login_redirect(sp_config, idp_config, None, spec.now).url).query
    )
    assert "RelayState" not in without


def test_relay_state_is_limited_to_80_bytes(spec, sp_config, idp_config):
    build_login_redirect(sp_config, idp_config, "x" * 80, spec.now)
    with pytest.raises(ValueError, match="80 bytes"):
        build_login_redirect(sp_config, idp_config, "x" * 81, spec.now)


def test_redirect_signature_verifies_with_the_sp_certificate(spec, sp_config, idp_config):
    login = build_login_redirect(sp_config, idp_config, "state-123", spec.now)
    query = urlsplit(login.url).query
    parts = dict(part.split("=", 1) for part in query.split("&"))
    assert unquote_plus(parts["SigAlg"]) == RSA_SHA256
    # SAML bindings 3.4.4.1: the signature covers the URL-encoded values as sent, in this order.
    signed = f"SAMLRequest={parts['SAMLRequest']}&RelayState={parts['RelayState']}&SigAlg={parts['SigAlg']}"
    public_key = x509.load_pem_x509_certificate(sp_config.certificate_pem.encode()).public_key()
    public_key.verify(
        base64.b64decode(unquote_plus(parts["Signature"])),
        signed.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_unsigned_requests_when_configured(spec, sp_config, idp_config):
    unsigned = dataclasses.replace(sp_config, sign_authn_requests=False)
    query = parse_qs(urlsplit(build_login_redirect(unsigned, idp_config, "s", spec.now).url).query)
    assert "Signature" not in query and "SigAlg" not in query


def test_sso_url_with_query_and_xml_special_characters(spec, sp_config, idp_config):
    idp = dataclasses.replace(idp_config, sso_url='https://idp.example.test/sso?idpid=C0&x="1"')
    login = build_login_redirect(sp_config, idp, None, spec.now)
    assert login.url.startswith('https://idp.example.test/sso?idpid=C0&x="1"&SAMLRequest=')
    assert (
        authn_request(login).get("Destination") == idp.sso_url
    )  # escaped in XML, intact when parsed


def test_force_authn(spec, sp_config, idp_config):
    login = build_login_redirect(sp_config, idp_config, None, spec.now, force_authn=True)
    assert authn_request(login).get("ForceAuthn") == "true"


def test_a_peer_implementation_reads_our_request(spec, sp_config, idp_config):
    from saml2 import samlp

    request = samlp.authn_request_from_string(
        etree.tostring(
            authn_request(build_login_redirect(sp_config, idp_config, None, spec.now))
        ).decode()
    )
    assert request.assertion_consumer_service_url == sp_config.acs_url
    assert request.issuer.text == sp_config.entity_id


def test_redirect_to_a_post_only_idp_is_a_programming_error(spec, sp_config, idp_config):
    post_only = dataclasses.replace(idp_config, sso_binding=BINDING_HTTP_POST)
    with pytest.raises(ValueError, match="build_login_post"):
        build_login_redirect(sp_config, post_only, None, spec.now)


def test_naive_now_is_refused(spec, sp_config, idp_config):
    with pytest.raises(ValueError):
        build_login_redirect(sp_config, idp_config, None, spec.now.replace(tzinfo=None))


def test_post_binding_request_is_xml_signed(spec, sp_config, idp_config):
    post_only = dataclasses.replace(idp_config, sso_binding=BINDING_HTTP_POST)
    login = build_login_post(sp_config, post_only, "state-9", spec.now)
    assert isinstance(login, LoginPost)
    assert login.url == idp_config.sso_url
    assert login.fields["RelayState"] == "state-9"
    request = etree.fromstring(
        base64.b64decode(login.fields["SAMLRequest"])
    )  # not deflated in POST binding
    assert request.get("ID") == login.request_id
    assert schema_errors(request) is None

    signature = request.find(f"{DS}Signature")
    assert signature.getprevious().tag == f"{SAML}Issuer"  # where the schema wants it
    xmlsec.tree.add_ids(request, ["ID"])
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(sp_config.certificate_pem, xmlsec.KeyFormat.CERT_PEM, None)
    context.verify(signature)


def test_post_binding_unsigned_when_configured(spec, sp_config, idp_config):
    unsigned = dataclasses.replace(sp_config, sign_authn_requests=False)
    login = build_login_post(unsigned, idp_config, None, spec.now)
    assert "RelayState" not in login.fields
    assert (
        etree.fromstring(base64.b64decode(login.fields["SAMLRequest"])).find(f"{DS}Signature")
        is None
    )
