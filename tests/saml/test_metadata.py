"""IdP metadata parsing (precise refusals, every signing certificate kept) and SP metadata rendering."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from deskgate.saml._xml import METADATA_XSD, schema_errors
from deskgate.saml.certs import certificate_body_b64, normalize_certificate_pem, sha256_fingerprint
from deskgate.saml.config import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, SPConfig
from deskgate.saml.errors import MetadataError, MetadataErrorCode
from deskgate.saml.metadata import ParsedMetadata, parse_idp_metadata, render_sp_metadata

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
REDIRECT = f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location="https://idp.example.test/sso/redirect"/>'
POST = f'<md:SingleSignOnService Binding="{BINDING_HTTP_POST}" Location="https://idp.example.test/sso/post"/>'


def key_descriptor(cert_pem: str, use: str | None = "signing") -> str:
    use_attr = f' use="{use}"' if use else ""
    return (
        f"<md:KeyDescriptor{use_attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>"
        f"{certificate_body_b64(cert_pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )


def idp_metadata(
    *children: str,
    entity_id: str = "https://idp.example.test/metadata",
    protocols: str = "urn:oasis:names:tc:SAML:2.0:protocol",
    valid_until: str | None = None,
) -> str:
    valid = f' validUntil="{valid_until}"' if valid_until else ""
    entity = f' entityID="{entity_id}"' if entity_id is not None else ""
    return (
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}"{entity}{valid}>'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="{protocols}">{"".join(children)}</md:IDPSSODescriptor>'
        "</md:EntityDescriptor>"
    )


def refused(xml: str | bytes, code: MetadataErrorCode, **kwargs) -> MetadataError:
    with pytest.raises(MetadataError) as caught:
        parse_idp_metadata(xml, NOW, **kwargs)
    assert caught.value.code == code, caught.value
    return caught.value


# ---------------------------------------------------------------- accepted


def test_minimal_idp_metadata(idp_key):
    parsed = parse_idp_metadata(
        idp_metadata(key_descriptor(idp_key.certificate_pem), POST, REDIRECT), NOW
    )

    assert isinstance(parsed, ParsedMetadata)
    assert parsed.idp.entity_id == "https://idp.example.test/metadata"
    assert (
        parsed.idp.sso_url == "https://idp.example.test/sso/redirect"
    )  # Redirect preferred over POST
    assert parsed.idp.sso_binding == BINDING_HTTP_REDIRECT
    assert parsed.idp.signing_certificates == (normalize_certificate_pem(idp_key.certificate_pem),)
    [info] = parsed.certificates
    assert info.subject == "CN=test idp"
    assert info.sha256_fingerprint == sha256_fingerprint(idp_key.certificate_pem)
    assert len(info.sha256_fingerprint.split(":")) == 32
    assert not info.expired
    assert parsed.warnings == ()


def test_post_only_sso_is_accepted_with_a_warning(idp_key):
    parsed = parse_idp_metadata(idp_metadata(key_descriptor(idp_key.certificate_pem), POST), NOW)
    assert parsed.idp.sso_binding == BINDING_HTTP_POST
    assert parsed.idp.sso_url == "https://idp.example.test/sso/post"
    assert any("HTTP-POST only" in w for w in parsed.warnings)


def test_every_signing_or_useless_certificate_is_kept(factory, idp_key):
    current, next_, encryption = (
        idp_key,
        factory.keypair("next-idp"),
        factory.keypair("idp-encryption"),
    )
    xml = idp_metadata(
        key_descriptor(current.certificate_pem),
        key_descriptor(next_.certificate_pem, use=None),
        key_descriptor(encryption.certificate_pem, use="encryption"),
        key_descriptor(current.certificate_pem),  # listed twice: kept once
        REDIRECT,
    )
    parsed = parse_idp_metadata(xml, NOW)
    assert parsed.idp.signing_certificates == (
        normalize_certificate_pem(current.certificate_pem),
        normalize_certificate_pem(next_.certificate_pem),
    )
    assert [c.subject for c in parsed.certificates] == ["CN=test idp", "CN=test next-idp"]


def test_expired_certificate_is_a_warning_not_an_error(factory):
    old = factory.keypair("expired-idp", days=30)  # valid 2020-01-01 .. 2020-01-31
    parsed = parse_idp_metadata(idp_metadata(key_descriptor(old.certificate_pem), REDIRECT), NOW)
    [info] = parsed.certificates
    assert info.expired
    assert info.not_after == datetime(2020, 1, 31, tzinfo=UTC)
    [warning] = parsed.warnings
    assert "expired on 2020-01-31T00:00:00Z" in warning and info.sha256_fingerprint in warning


def test_expired_metadata_is_a_warning(idp_key):
    xml = idp_metadata(
        key_descriptor(idp_key.certificate_pem), REDIRECT, valid_until="2021-01-01T00:00:00Z"
    )
    assert any("validUntil" in w for w in parse_idp_metadata(xml, NOW).warnings)
    fresh = idp_metadata(
        key_descriptor(idp_key.certificate_pem), REDIRECT, valid_until="2099-01-01T00:00:00Z"
    )
    assert parse_idp_metadata(fresh, NOW).warnings == ()


def test_str_and_bytes_are_both_accepted(idp_key):
    xml = idp_metadata(key_descriptor(idp_key.certificate_pem), REDIRECT)
    assert parse_idp_metadata(xml, NOW) == parse_idp_metadata(xml.encode(), NOW)


def test_entities_descriptor_with_one_idp_and_an_sp(idp_key):
    sp = '<md:EntityDescriptor entityID="https://sp.example.test"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>'
    idp = idp_metadata(key_descriptor(idp_key.certificate_pem), REDIRECT).replace(
        f' xmlns:md="{MD}" xmlns:ds="{DS}"', ""
    )
    xml = (
        f'<md:EntitiesDescriptor xmlns:md="{MD}" xmlns:ds="{DS}">{sp}{idp}</md:EntitiesDescriptor>'
    )
    assert parse_idp_metadata(xml, NOW).idp.entity_id == "https://idp.example.test/metadata"


def test_entities_descriptor_with_two_idps_needs_an_entity_id(idp_key):
    one = idp_metadata(
        key_descriptor(idp_key.certificate_pem), REDIRECT, entity_id="https://a.example/idp"
    )
    two = idp_metadata(
        key_descriptor(idp_key.certificate_pem), REDIRECT, entity_id="https://b.example/idp"
    )
    strip = f' xmlns:md="{MD}" xmlns:ds="{DS}"'
    xml = f'<md:EntitiesDescriptor xmlns:md="{MD}" xmlns:ds="{DS}">{one.replace(strip, "")}{two.replace(strip, "")}</md:EntitiesDescriptor>'
    error = refused(xml, MetadataErrorCode.AMBIGUOUS_ENTITY)
    assert "https://a.example/idp" in error.message and "https://b.example/idp" in error.message
    assert (
        parse_idp_metadata(xml, NOW, entity_id="https://b.example/idp").idp.entity_id
        == "https://b.example/idp"
    )
    refused(xml, MetadataErrorCode.NO_IDP_DESCRIPTOR, entity_id="https://c.example/idp")


# ----------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("xml", "code", "words"),
    [
        ("", MetadataErrorCode.NOT_XML, "empty"),
        ("this is not xml", MetadataErrorCode.NOT_XML, "not well-formed"),
        ("<md:EntityDescriptor", MetadataErrorCode.NOT_XML, "not well-formed"),
        (
            "<!DOCTYPE html><html><body>Sign in</body></html>",
            MetadataErrorCode.DTD_FORBIDDEN,
            "HTML page",
        ),
        (
            '<!DOCTYPE x [<!ENTITY a "a"><!ENTITY b "&a;&a;">]><x>&b;</x>',
            MetadataErrorCode.DTD_FORBIDDEN,
            "DOCTYPE",
        ),
        ("<html/>", MetadataErrorCode.NOT_METADATA, "html"),
    ],
    ids=["empty", "text", "truncated", "html-page", "billion-laughs", "not-metadata"],
)
def test_not_metadata(xml, code, words):
    assert words in refused(xml, code).message


def test_sp_metadata_is_recognised(sp_config):
    error = refused(render_sp_metadata(sp_config), MetadataErrorCode.NO_IDP_DESCRIPTOR)
    assert "SPSSODescriptor" in error.message


def test_idp_descriptor_without_saml2(idp_key):
    xml = idp_metadata(
        key_descriptor(idp_key.certificate_pem),
        REDIRECT,
        protocols="urn:oasis:names:tc:SAML:1.1:protocol",
    )
    assert "SAML 2.0 protocol" in refused(xml, MetadataErrorCode.NO_IDP_DESCRIPTOR).message


def test_missing_entity_id(idp_key):
    refused(
        idp_metadata(key_descriptor(idp_key.certificate_pem), REDIRECT, entity_id=None),
        MetadataErrorCode.MISSING_ENTITY_ID,
    )


def test_no_usable_sso_service(idp_key):
    soap = '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://idp/soap"/>'
    error = refused(
        idp_metadata(key_descriptor(idp_key.certificate_pem), soap),
        MetadataErrorCode.NO_SSO_SERVICE,
    )
    assert "offered: SOAP" in error.message
    refused(idp_metadata(key_descriptor(idp_key.certificate_pem)), MetadataErrorCode.NO_SSO_SERVICE)


def _service(element: str, binding: str, location: str, attribute: str = "Location") -> str:
    return f'<md:{element} Binding="{binding}" {attribute}="{location}"/>'


@pytest.mark.parametrize(
    ("element", "binding", "attribute", "location", "reason"),
    [
        (
            "SingleSignOnService",
            BINDING_HTTP_POST,
            "Location",
            "javascript:alert(document.domain)",
            "not an absolute https URL",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "data:text/html,hi",
            "not an absolute https URL",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "//idp.example.test/sso",
            "not an absolute https URL",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "http://idp.example.test/sso",
            "plain http",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "https://idp.example.test/s so",
            "whitespace",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "https://idp.example.test/a&#9;b",
            "whitespace",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "https://idp.example.test:99999/sso",
            "not a valid absolute URL",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            "https://[::1/sso",
            "not a valid absolute URL",
        ),
        (
            "SingleSignOnService",
            BINDING_HTTP_REDIRECT,
            "Location",
            f"https://{'a' * 64}.example/sso",
            "not a valid absolute URL",
        ),
        (
            "SingleLogoutService",
            BINDING_HTTP_POST,
            "Location",
            "javascript:alert(1)",
            "not an absolute https URL",
        ),
        (
            "SingleLogoutService",
            BINDING_HTTP_REDIRECT,
            "ResponseLocation",
            "http://idp.example.test/slo",
            "plain http",
        ),
    ],
)
def test_browser_endpoints_must_be_absolute_https_urls(
    idp_key, element, binding, attribute, location, reason
):
    # A javascript: Location would land in the auto-submitted POST form (saml_post.html).
    xml = idp_metadata(
        key_descriptor(idp_key.certificate_pem),
        REDIRECT,
        _service(element, binding, location, attribute),
    )
    if element == "SingleSignOnService":  # the only SSO service, so it is the one used
        xml = idp_metadata(
            key_descriptor(idp_key.certificate_pem), _service(element, binding, location, attribute)
        )
    error = refused(xml, MetadataErrorCode.INVALID_ENDPOINT)
    assert f"{element} ({binding.rsplit(':', 1)[-1]}) {attribute}" in error.message
    assert reason in error.message
    assert location.split("&")[0][:20] in error.message  # names the Location it refused


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:8080/sso",
        "http://localhost:8085/realms/master/protocol/saml",
        "http://idp.localhost:9000/sso",
        "http://[::1]/sso",
        "  https://idp.example.test/sso  ",
    ],
)
def test_http_is_accepted_for_loopback_hosts(idp_key, location):
    parsed = parse_idp_metadata(
        idp_metadata(
            key_descriptor(idp_key.certificate_pem),
            _service("SingleSignOnService", BINDING_HTTP_REDIRECT, location),
        ),
        NOW,
    )
    assert parsed.idp.sso_url == location.strip()


def test_http_is_accepted_anywhere_when_allowed(idp_key):
    xml = idp_metadata(
        key_descriptor(idp_key.certificate_pem),
        _service("SingleSignOnService", BINDING_HTTP_REDIRECT, "http://idp.intranet.example/sso"),
    )
    refused(xml, MetadataErrorCode.INVALID_ENDPOINT)
    assert (
        parse_idp_metadata(xml, NOW, allow_http=True).idp.sso_url
        == "http://idp.intranet.example/sso"
    )
    javascript = idp_metadata(
        key_descriptor(idp_key.certificate_pem),
        _service("SingleSignOnService", BINDING_HTTP_POST, "javascript:x"),
    )
    refused(javascript, MetadataErrorCode.INVALID_ENDPOINT, allow_http=True)


def test_back_channel_endpoints_are_not_checked(idp_key):
    soap = _service(
        "SingleLogoutService",
        "urn:oasis:names:tc:SAML:2.0:bindings:SOAP",
        "http://idp.example.test/soap",
    )
    assert parse_idp_metadata(
        idp_metadata(key_descriptor(idp_key.certificate_pem), REDIRECT, soap), NOW
    )


def test_no_signing_certificate(idp_key):
    error = refused(idp_metadata(REDIRECT), MetadataErrorCode.NO_SIGNING_CERTIFICATE)
    assert "no signing certificate" in error.message
    encryption_only = idp_metadata(
        key_descriptor(idp_key.certificate_pem, use="encryption"), REDIRECT
    )
    assert (
        "only 1 encryption"
        in refused(encryption_only, MetadataErrorCode.NO_SIGNING_CERTIFICATE).message
    )


def test_invalid_certificate():
    bogus = (
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>bm90IGEgY2VydA=='
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )
    assert (
        "KeyDescriptor #1"
        in refused(idp_metadata(bogus, REDIRECT), MetadataErrorCode.INVALID_CERTIFICATE).message
    )


def test_naive_now_is_refused(idp_key):
    with pytest.raises(ValueError):
        parse_idp_metadata(
            idp_metadata(key_descriptor(idp_key.certificate_pem), REDIRECT),
            NOW.replace(tzinfo=None),
        )


# ------------------------------------------------------------ corpus metadata

CORPUS_METADATA = [
    # (path, entity ID or error code, number of signing certificates)
    (
        "ssoready/internal/saml/testdata/assertions/adfs/metadata.xml",
        "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/",
        1,
    ),
    (
        "ssoready/internal/saml/testdata/assertions/google/metadata.xml",
        "https://accounts.google.com/o/saml2?idpid=C029op2ga",
        1,
    ),
    ("ssoready/internal/saml/testdata/assertions/jumpcloud/metadata.xml", "IdP Entity ID", 1),
    (
        "ssoready/internal/saml/testdata/assertions/keycloak/metadata.xml",
        "http://localhost:8085/realms/master",
        1,
    ),
    (
        "ssoready/internal/saml/testdata/assertions/okta/metadata.xml",
        "http://www.okta.com/exkdoocxa1VmjpXmX697",
        1,
    ),
    (
        "ssoready/internal/saml/testdata/assertions/ping/metadata.xml",
        "https://auth.pingone.com/3030059e-440b-4ad0-9217-44326f1757f6",
        1,
    ),
    ("crewjam-saml/testdata/SP_IDPMetadata", "https://idp.testshib.org/idp/shibboleth", 1),
    (
        "crewjam-saml/testdata/TestGetArtifactBindingLocation_IDPMetadata",
        "https://samltest.id/saml/idp",
        2,
    ),
    (
        "crewjam-saml/testdata/TestSPCanHandleOneloginResponse_IDPMetadata",
        "https://app.onelogin.com/saml/metadata/503983",
        1,
    ),
    (
        "python3-saml/tests/data/metadata/idp_metadata_multi_signing_certs.xml",
        "https://idp.examle.com/saml/metadata",
        2,
    ),
    (
        "python3-saml/tests/data/metadata/idp_metadata_different_sign_and_encrypt_cert.xml",
        "https://app.onelogin.com/saml/metadata/383123",
        1,
    ),
    (
        "python3-saml/tests/data/metadata/testshib-providers.xml",
        "https://idp.testshib.org/idp/shibboleth",
        1,
    ),
    # one of its certificates is base64 of a whole PEM file: unwrapped
    (
        "ruby-saml/test/metadata/idp_metadata_multi_signing_certs.xml",
        "https://idp.examle.com/saml/metadata",
        3,
    ),
    ("ruby-saml/test/metadata/idp_multiple_descriptors.xml", MetadataErrorCode.AMBIGUOUS_ENTITY, 0),
    ("ruby-saml/test/metadata/no_idp_descriptor.xml", MetadataErrorCode.NO_IDP_DESCRIPTOR, 0),
    (
        "python3-saml/tests/data/metadata/metadata_settings1.xml",
        MetadataErrorCode.NO_IDP_DESCRIPTOR,
        0,
    ),
    (
        "python3-saml/tests/data/metadata/noentity_metadata_settings1.xml",
        MetadataErrorCode.NOT_METADATA,
        0,
    ),
    ("python3-saml/tests/data/metadata/unparsed_metadata.xml", MetadataErrorCode.NOT_XML, 0),
]


@pytest.mark.parametrize(
    ("path", "outcome", "certificates"), CORPUS_METADATA, ids=[p for p, _, _ in CORPUS_METADATA]
)
def test_corpus_metadata(corpus: Path, path: str, outcome, certificates: int):
    xml = (corpus / path).read_bytes()
    if isinstance(outcome, MetadataErrorCode):
        refused(xml, outcome)
        return
    parsed = parse_idp_metadata(xml, NOW)
    assert parsed.idp.entity_id == outcome
    assert len(parsed.idp.signing_certificates) == certificates
    assert parsed.idp.sso_url.startswith(("https://", "http://"))


# ------------------------------------------------------------------- SP side


def _sp_metadata_tree(sp: SPConfig) -> etree._Element:
    return etree.fromstring(render_sp_metadata(sp).encode())


def test_sp_metadata_is_schema_valid_and_complete(sp_config):
    root = _sp_metadata_tree(sp_config)
    assert schema_errors(root, METADATA_XSD) is None
    ns = {"md": MD, "ds": DS}
    assert root.get("entityID") == sp_config.entity_id
    assert root.get("validUntil") is None and root.get("cacheDuration") is None
    descriptor = root.find("md:SPSSODescriptor", ns)
    assert descriptor.get("WantAssertionsSigned") == "true"
    assert descriptor.get("AuthnRequestsSigned") == "true"
    [acs] = descriptor.findall("md:AssertionConsumerService", ns)
    assert (acs.get("Binding"), acs.get("Location")) == (BINDING_HTTP_POST, sp_config.acs_url)
    assert (
        descriptor.findtext("md:NameIDFormat", namespaces=ns)
        == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    )
    uses = {
        kd.get("use"): kd.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=ns)
        for kd in descriptor.findall("md:KeyDescriptor", ns)
    }
    body = certificate_body_b64(sp_config.certificate_pem)
    assert uses == {"signing": body, "encryption": body}


def test_sp_metadata_reflects_request_signing(sp_config):
    unsigned = dataclasses.replace(sp_config, sign_authn_requests=False)
    assert (
        _sp_metadata_tree(unsigned).find(f"{{{MD}}}SPSSODescriptor").get("AuthnRequestsSigned")
        == "false"
    )


def test_sp_metadata_escapes_urls(sp_config):
    odd = dataclasses.replace(
        sp_config,
        entity_id='https://sp.example.test/m?a=1&b="2"',
        acs_url="https://sp.example.test/acs?x=1&y=2",
    )
    root = _sp_metadata_tree(odd)
    assert root.get("entityID") == 'https://sp.example.test/m?a=1&b="2"'
    assert (
        root.find(f"{{{MD}}}SPSSODescriptor/{{{MD}}}AssertionConsumerService").get("Location")
        == odd.acs_url
    )


def test_our_metadata_roundtrips_through_a_peer_parser(sp_config):
    """pysaml2 (an independent implementation) reads our SP metadata as we meant it."""
    from saml2.config import Config
    from saml2.mdstore import MetadataStore

    store = MetadataStore(attrc=None, config=Config())
    store.load("inline", render_sp_metadata(sp_config))
    [(binding, location)] = [
        (acs["binding"], acs["location"])
        for acs in store.assertion_consumer_service(sp_config.entity_id)
    ]
    assert (binding, location) == (BINDING_HTTP_POST, sp_config.acs_url)
    assert store.certs(sp_config.entity_id, "spsso", use="encryption")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=60,
    )
)
def test_any_sso_location_is_used_or_refused_with_a_metadata_error(idp_key, text):
    location = escape("https://" + text, {'"': "&quot;"})
    xml = idp_metadata(
        key_descriptor(idp_key.certificate_pem),
        _service("SingleSignOnService", BINDING_HTTP_REDIRECT, location),
    )
    try:
        parsed = parse_idp_metadata(xml, NOW)
    except MetadataError as error:
        assert error.code in (MetadataErrorCode.INVALID_ENDPOINT, MetadataErrorCode.NOT_XML)
    else:
        assert not any(c.isspace() for c in parsed.idp.sso_url)
