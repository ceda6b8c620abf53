"""The public SAML corpus, case by case: real IdP captures must validate, attacks must not.

Every response-like file the corpus index gives a verdict for is a row of
:data:`CASES`: the configuration a correctly set-up SP would have for it
(:class:`Setup`: IdP entity ID and certificate, our entity ID / ACS URL, SP
key for encrypted ones), the instant to freeze the clock at, the index's
verdict for a strict SP, and **our** expected outcome: ``ACCEPT`` or the
:class:`~deskgate.saml.errors.SAMLErrorCode` that must refuse it. Where our
outcome differs from the index because of a deliberate policy, ``why`` says so
in one line (a meta-test makes sure no difference goes unexplained).

Setups mirror the upstream SP configurations, which accepted SHA-1:
``allow_sha1=True`` there, and the ``*-default-policy`` variants show that
our default refuses it. Some rows run a *variant* of a file (``mutate``):
the mutation the upstream test applies (comment injection, malformed root),
the Response signature stripped (ssoready's Okta capture has a broken one),
or the signatures replaced by a test IdP's, so that the semantic check a
fixture was written for (audience, recipient, time...) is what refuses it
rather than the missing signature.

The verdict table is printed at the end of the session (conftest.py).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from deskgate.saml._time import parse_xs_datetime
from deskgate.saml.acs import validate_response
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode
from deskgate.saml.metadata import parse_idp_metadata

import samlfactory

ACCEPT = "ACCEPT"
TEST_IDP = "test:idp"  # samlfactory's IdP key, for re-signed variants

P3_CERT = "python3-saml/tests/settings/settings1.json"
P3_CERT2 = "python3-saml/tests/settings/settings2.json"
P3_KEY = "python3-saml/tests/settings/settings8.json"
RUBY_CERT = "ruby-saml/test/certificates/ruby-saml.crt"
RUBY_KEY = "ruby-saml/test/certificates/ruby-saml.key"
CREWJAM_KEY = "crewjam-saml/testdata/sp_key.pem"
NODE_KEY = "node-saml/test/static/testshib encryption pvk.pem"


@dataclass(frozen=True)
class Setup:
    """How a correctly configured SP would be set up for a corpus file.

    ``trust`` holds corpus references to the IdP signing certificate(s): a PEM /
    DER file, python3-saml settings JSON (``idp.x509cert``), IdP metadata, or
    ``path#keyinfo`` for the certificate in that file's own KeyInfo (used only
    where the upstream test pinned exactly that certificate by fingerprint;
    never for files whose point is a forged KeyInfo).
    """

    idp: str
    trust: tuple[str, ...]
    sp: str
    acs: str
    key: str | None = None
    allow_sha1: bool = True
    allow_unsolicited: bool = True


@dataclass(frozen=True)
class Case:
    path: str
    setup: Setup
    now: str
    index: str  # corpus index verdict for a strict SP: ACCEPT, REJECT, or "-" (fixture, no verdict)
    expect: str  # ACCEPT, or the SAMLErrorCode value that must refuse it
    why: str = ""  # one line: why our outcome differs from the index, or what the row shows
    name_id: str | None = None  # ACCEPT rows: the NameID we must return
    irt: str | None = None  # ACCEPT rows: the InResponseTo we must return
    mutate: Callable[[bytes], bytes] | None = field(default=None, compare=False)
    variant: str = ""

    @property
    def id(self) -> str:
        return self.path + (f" [{self.variant}]" if self.variant else "")


def C(path: str, setup: Setup, now: str, index: str, expect: str, **kw: object) -> Case:
    return Case(path, setup, now, index, expect, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------- setups

NGROK_SP = "https://29ee6d2e.ngrok.io/saml/metadata"
NGROK_ACS = "https://29ee6d2e.ngrok.io/saml/acs"
TESTSHIB = Setup(
    "https://idp.testshib.org/idp/shibboleth",
    ("crewjam-saml/testdata/SP_IDPMetadata",),
    "https://15661444.ngrok.io/saml2/metadata",
    "https://15661444.ngrok.io/saml2/acs",
    key=CREWJAM_KEY,
)
SAMLTEST = Setup(
    "https://samltest.id/saml/idp",
    ("crewjam-saml/testdata/TestGetArtifactBindingLocation_IDPMetadata",),
    "http://localhost:8000/saml/metadata",
    "http://localhost:8000/saml/acs",
    key=CREWJAM_KEY,
)
CREWJAM_OKTA = Setup(
    "http://www.okta.com/exkppsa1qwuFV4D7z0h7",
    ("crewjam-saml/testdata/TestSPCanHandleOktaSignedResponseEncryptedAssertion_IDPMetadata",),
    "http://localhost:8000/saml/metadata",
    "http://localhost:8000/saml/acs",
    key=CREWJAM_KEY,
)
CREWJAM_ONELOGIN = Setup(
    "https://app.onelogin.com/saml/metadata/503983",
    ("crewjam-saml/testdata/TestSPCanHandleOneloginResponse_IDPMetadata",),
    NGROK_SP,
    NGROK_ACS,
)
CREWJAM_GOOGLE = Setup(
    "https://accounts.google.com/o/saml2?idpid=C02dfl1r1",
    ("crewjam-saml/testdata/TestSPCanHandlePlaintextResponse_IDPMetadata",),
    NGROK_SP,
    NGROK_ACS,
)
SECUREWORKS = Setup(
    "https://idp.secureworks.com/SAML2",
    ("crewjam-saml/testdata/TestSPRealWorldAssertionSignedNotResponse_idp_metadata",),
    "https://preview.docrocket-ross.test.octolabs.io/saml/metadata",
    "https://preview.docrocket-ross.test.octolabs.io/saml/acs",
)
ONELOGIN_DEMO = Setup(
    "http://idp.example.com/metadata.php",
    ("crewjam-saml/testdata/TestServiceProviderCanHandleSignedAssertionsResponse_IDPMetadata",),
    "http://sp.example.com/demo1/metadata.php",
    "http://sp.example.com/demo1/index.php?acs",
    key=RUBY_KEY,
)
NODE = Setup(
    "https://evil-corp.com",
    ("node-saml/test/static/cert.pem",),
    "onesaml_login",
    "https://evil-corp.madness.com/sso/callback",
    key=NODE_KEY,
)
NODE_TESTSHIB = Setup(
    "https://idp.testshib.org/idp/shibboleth",
    ("crewjam-saml/testdata/SP_IDPMetadata",),
    "http://subspacesw.com",
    "http://localhost/browserSamlLogin",
    key=NODE_KEY,
)
P3_STUFF = Setup(
    "http://idp.example.com/",
    (P3_CERT,),
    "http://stuff.com/endpoints/metadata.php",
    "http://stuff.com/endpoints/endpoints/acs.php",
    key=P3_KEY,
)
P3_PITBULK = Setup(
    "https://pitbulk.no-ip.org/simplesaml/saml2/idp/metadata.php",
    (P3_CERT,),
    "https://pitbulk.no-ip.org/newonelogin/demo1/metadata.php",
    "https://pitbulk.no-ip.org/newonelogin/demo1/index.php?acs",
    key=P3_KEY,
)
P3_EXAMPLE = Setup(
    "https://example.com/simplesaml/saml2/idp/metadata.php",
    (P3_CERT,),
    "https://example.com/newonelogin/demo1/metadata.php",
    "https://example.com/newonelogin/demo1/index.php?acs",
)
P3_PYTOOLKIT = Setup(
    "https://idp.example.com/simplesaml/saml2/idp/metadata.php",
    (P3_CERT2,),
    "http://pytoolkit.com:8000/metadata/",
    "http://pytoolkit.com:8000/?acs",
    key=P3_KEY,
)
RUBYSAML = Setup(
    "https://idp.example.com/simplesaml/saml2/idp/metadata.php",
    (P3_CERT2,),
    "http://rubysaml.com:3000/saml/metadata",
    "http://rubysaml.com:3000/saml/acs",
    key=RUBY_KEY,
)
# Template fixtures with literal {audience}/{recipient} placeholders.
ONELOGIN_13590 = Setup(
    "https://app.onelogin.com/saml/metadata/13590",
    (P3_CERT,),
    "{audience}",
    "https://recipient.invalid/acs",
)
ONELOGIN_SAML2 = Setup(
    "https://app.onelogin.com/saml2",
    ("ruby-saml/test/certificates/certificate1",),
    "audience",
    "https://recipient.invalid/acs",
)
RUBY_MUDA = Setup(
    "https://app.onelogin.com/saml2",
    (RUBY_CERT,),
    "https://someone.example.com/audience",
    "http://app.muda.no/sso/consume",
)
ADFS_EXAMPLE = Setup(
    "http://login.example.com/issuer",
    ("ruby-saml/test/responses/adfs_response_sha256.xml#keyinfo",),
    "example.com",
    "https://someone.example.com/endpoint",
)
ADFS_TRUST = Setup(
    "http://idp.example.com/adfs/services/trust",
    (P3_CERT,),
    "https://sp.invalid/metadata",
    "https://example.com/opensso/Consumer/metaAlias/sp",
)
RUBY_IDP_EXAMPLE = Setup(
    "idp.example.com", (RUBY_CERT,), "example.com", "https://example.com/endpoint"
)
FLAT_WORLD = Setup(
    "http://example.com",
    ("python3-saml/tests/data/responses/response_without_reference_uri.xml.base64#keyinfo",),
    "flat_world",
    "http://localhost:9001/v1/users/authorize/saml",
)
SAMLRAIDER_ADFS = Setup(
    "http://SAMLWIN.saml.lan/adfs/services/trust",
    (RUBY_CERT,),
    "https://samlcent/shibboleth",
    "https://samlcent/Shibboleth.sso/SAML2/POST",
)
SAMLRAIDER_CREWJAM = Setup(
    "http://localhost:8081/metadata",
    (RUBY_CERT,),
    "http://localhost:8080/saml/metadata",
    "http://localhost:8080/saml/acs",
)


def _ssoready(directory: str, idp: str, sp: str, acs: str) -> Setup:
    return Setup(idp, (f"ssoready/internal/saml/testdata/{directory}/metadata.xml",), sp, acs)


SSO_OKTA_IDP = "http://www.okta.com/exkdoocxa1VmjpXmX697"
LOCAL8080 = "http://localhost:8080"
SSOREADY_ADFS = _ssoready(
    "assertions/adfs",
    "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/",
    "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml",
    "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs",
)
SSOREADY_GOOGLE = _ssoready(
    "assertions/google",
    "https://accounts.google.com/o/saml2?idpid=C029op2ga",
    "https://localhost:8080/accounts/bfeb03a0-6022-4862-9bbf-5a4d7608db35/saml",
    "https://example.com/accounts/bfeb03a0-6022-4862-9bbf-5a4d7608db35/saml/acs",
)
SSOREADY_JUMPCLOUD = _ssoready(
    "assertions/jumpcloud", "IdP Entity ID", "ssoready-entity-id", "http://localhost"
)
SSOREADY_KEYCLOAK = _ssoready(
    "assertions/keycloak",
    "http://localhost:8085/realms/master",
    "http://localhost:8080/v1/saml/saml_conn_7o6ylycayrere4h9kg76vqc0k",
    "http://localhost:8080/v1/saml/saml_conn_7o6ylycayrere4h9kg76vqc0k/acs",
)
SSOREADY_OKTA = _ssoready("assertions/okta", SSO_OKTA_IDP, LOCAL8080, LOCAL8080)
SSOREADY_PING = _ssoready(
    "assertions/ping",
    "https://auth.pingone.com/3030059e-440b-4ad0-9217-44326f1757f6",
    "ssoready-entity-id",
    "http://localhost",
)
SSOREADY_NO_CERTIFICATE = _ssoready(
    "bad-assertions/no-certificate", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_CERTIFICATE = _ssoready(
    "bad-assertions/bad-certificate", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_ASSERTION_UTF8 = _ssoready(
    "bad-assertions/bad-assertion-utf8", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_ASSERTION_EXPIRED_EARLY = _ssoready(
    "bad-assertions/bad-assertion-expired-early", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_ASSERTION_EXPIRED_LATE = _ssoready(
    "bad-assertions/bad-assertion-expired-late", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_UNSIGNED_ASSERTION = _ssoready(
    "bad-assertions/unsigned-assertion", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_SIGNATURE_ALGORITHM = _ssoready(
    "bad-assertions/bad-signature-algorithm", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_DIGEST_ALGORITHM = _ssoready(
    "bad-assertions/bad-digest-algorithm", SSO_OKTA_IDP, LOCAL8080, LOCAL8080
)
SSOREADY_BAD_SP_ENTITY_ID = _ssoready(
    "bad-assertions/bad-sp-entity-id", SSO_OKTA_IDP, "DIFFERENT_SP_ENTITY_ID", LOCAL8080
)
SSOREADY_BAD_IDP_ENTITY_ID = _ssoready(
    "bad-assertions/bad-idp-entity-id", "DIFFERENT_IDP_ENTITY_ID", LOCAL8080, LOCAL8080
)


def strict(setup: Setup, **changes: object) -> Setup:
    """``setup`` with our defaults (SHA-1 refused), plus ``changes``."""
    return dataclasses.replace(setup, **{"allow_sha1": False, **changes})  # type: ignore[arg-type]


def resigned(setup: Setup) -> Setup:
    """``setup`` trusting the test IdP that re-signed the file."""
    return dataclasses.replace(setup, trust=(TEST_IDP,))


# -------------------------------------------------------------- mutations

_NS_DS = "http://www.w3.org/2000/09/xmldsig#"
_NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def replace_text(old: str, new: str) -> Callable[[bytes], bytes]:
    """Upstream-style textual edit (e.g. crewjam's comment injection into NameID)."""

    def mutate(data: bytes) -> bytes:
        assert old.encode() in data, f"{old!r} not in document"
        return data.replace(old.encode(), new.encode(), 1)

    return mutate


def drop_response_signature(data: bytes) -> bytes:
    """Remove the Response-level ds:Signature, keep everything else byte for byte."""
    root = _parse(data)
    signature = root.find(f"{{{_NS_DS}}}Signature")
    assert signature is not None
    root.remove(signature)
    return etree.tostring(root)


def resign_with_test_idp(data: bytes) -> bytes:
    """Strip every signature and sign the top-level Assertion with samlfactory's IdP key."""
    root = _parse(data)
    for signature in list(root.iter(f"{{{_NS_DS}}}Signature")):
        signature.getparent().remove(signature)
    assertion = root.find(f"{{{_NS_SAML}}}Assertion")
    assert assertion is not None
    signed = samlfactory.sign_element(_parse(etree.tostring(assertion)), samlfactory.keypair("idp"))
    root.replace(assertion, signed)
    return etree.tostring(root)


# ------------------------------------------------------------------ cases

# Why-strings shared by many rows.
NO_AUDIENCE = "no AudienceRestriction (node-saml runs its tests with audience=false); Web SSO profile 4.1.4.2 requires one"
ADVICE = "an Advice-nested Assertion is a second assertion in the document: we accept exactly one (as python3-saml)"
RSA15 = (
    "RSA-1_5 key transport refused (Bleichenbacher padding oracle); real IdPs encrypt with RSA-OAEP"
)
DIGIT_IDS = "IDs start with a digit, which is not an xs:ID: schema-invalid (python3-saml strict refuses it too)"
ISSUERS = (
    "Response Issuer idp.example.com vs Assertion Issuer idp.myexample.org: both must name the IdP"
)
RESIGNED = (
    "fixture re-signed with a test IdP key, so the check it was written for is what refuses it"
)
ONEL_NOW = "2014-07-17T01:02:59Z"
NODE_NOW = "2020-09-25T16:59:00Z"
OKTA_NOW = "2024-04-25T20:31:55.494Z"
P3_NOW = "2014-02-19T01:37:02Z"
STUFF_NOW = "2011-06-17T14:54:15Z"
STUFF_PITBULK = Setup(P3_STUFF.idp, (P3_CERT,), P3_STUFF.sp, P3_PITBULK.acs, key=P3_KEY)
STUFF_MUDA = Setup(P3_STUFF.idp, (P3_CERT,), P3_STUFF.sp, "http://app.muda.no/sso/consume")
JAVA_SAML = Setup(
    P3_PITBULK.idp,
    (P3_CERT,),
    "http://localhost:8080/java-saml-jspsample/metadata.jsp",
    "http://localhost:8080/java-saml-jspsample/acs.jsp",
)
RUBY_DEMO = Setup(ONELOGIN_DEMO.idp, (RUBY_CERT,), ONELOGIN_DEMO.sp, ONELOGIN_DEMO.acs)
RUBY_FLAT_WORLD = Setup(FLAT_WORLD.idp, (RUBY_CERT,), FLAT_WORLD.sp, FLAT_WORLD.acs)
OKTA_INCLUSIVE = Setup(
    "http://www.okta.com/k7xkhq0jUHUPQAXVMUAN",
    ("ruby-saml/test/responses/inclusive_namespaces.xml#keyinfo",),
    "https://auth0145.auth0.com",
    "https://auth0145.auth0.com",
)
ONELOGIN_13590_FIXED = Setup(
    ONELOGIN_13590.idp,
    (TEST_IDP,),
    "https://sp.example.test/metadata",
    "https://sp.example.test/acs",
)


def own_keyinfo(setup: Setup, path: str) -> Setup:
    """``setup`` trusting the certificate in ``path``'s KeyInfo (pinned by fingerprint upstream)."""
    return dataclasses.replace(setup, trust=(f"{path}#keyinfo",))


def placeholders(data: bytes) -> bytes:
    """Fill python3-saml's template placeholders the way its tests do."""
    return data.replace(b"{audience}", b"https://sp.example.test/metadata").replace(
        b"{recipient}", b"https://sp.example.test/acs"
    )


def then(*steps: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        for step in steps:
            data = step(data)
        return data

    return mutate


def our_name_qualifier(data: bytes) -> bytes:
    """python3-saml fixtures carry SPNameQualifier="hello.com"; make it name our SP."""
    return data.replace(
        b'SPNameQualifier="hello.com"', b'SPNameQualifier="http://stuff.com/endpoints/metadata.php"'
    )


def our_recipient(data: bytes) -> bytes:
    """Two python3-saml fixtures misspell their Recipient ('hhttp://...')."""
    return data.replace(
        b'Recipient="hhttp://stuff.com/endpoints/metadata.php"',
        b'Recipient="http://stuff.com/endpoints/endpoints/acs.php"',
    )


def inflate(data: bytes) -> bytes:
    """ruby-saml fixtures stored DEFLATE-compressed (the Redirect encoding), as ruby-saml inflates them."""
    return zlib.decompress(data, -15)


DEFLATED = "DEFLATE-compressed: the HTTP-POST binding never deflates (ruby-saml inflates leniently); see the inflated row"
RUBY_STUFF = Setup(P3_STUFF.idp, (RUBY_CERT,), P3_STUFF.sp, P3_STUFF.acs)
RUBY_RECIPIENT = "upstream skips the Recipient check (Recipient is 'recipient'); we never do"

P3R = "python3-saml/tests/data/responses/"
RBR = "ruby-saml/test/responses/"
NSV = "node-saml/test/static/signatures/valid/response."
NSI = "node-saml/test/static/signatures/invalid/response."
SSO = "ssoready/internal/saml/testdata/"
CJ = "crewjam-saml/testdata/"

CASES: list[Case] = [
    # --------------------------------------------------------------- real IdP captures
    C(
        SSO + "assertions/adfs/assertion.xml",
        SSOREADY_ADFS,
        "2023-11-17T18:39:30.314Z",
        "ACCEPT",
        ACCEPT,
        why="Microsoft Entra ID, IdP-initiated",
        name_id="ulysse.carion_codomaindata.com#EXT#@ulyssecarioncodomaindata.onmicrosoft.com",
    ),
    C(
        SSO + "assertions/google/assertion.xml",
        SSOREADY_GOOGLE,
        "2023-11-16T21:20:27.514Z",
        "ACCEPT",
        ACCEPT,
        why="Google Workspace, IdP-initiated",
        name_id="ulysse.carion@codomaindata.com",
    ),
    C(
        SSO + "assertions/google/assertion.xml",
        strict(SSOREADY_GOOGLE, allow_unsolicited=False),
        "2023-11-16T21:20:27.514Z",
        "ACCEPT",
        "unsolicited_response",
        variant="unsolicited-disabled",
        why="policy variant: IdP-initiated sign-in turned off for the connection",
    ),
    C(
        SSO + "assertions/jumpcloud/assertion.xml",
        SSOREADY_JUMPCLOUD,
        "2023-11-18T16:43:05.562Z",
        "ACCEPT",
        ACCEPT,
        why="JumpCloud, IdP-initiated",
        name_id="ulysse.carion@codomaindata.com",
    ),
    C(
        SSO + "assertions/keycloak/assertion.xml",
        SSOREADY_KEYCLOAK,
        "2024-05-20T21:10:42.468Z",
        "ACCEPT",
        ACCEPT,
        why="Keycloak, SP-initiated, no AuthnStatement, multi-valued Role sent as repeated Attributes",
        name_id="ulysse.carion@ssoready.com",
        irt="saml_flow_95q1hli3z0vohj0d55l4j4yo1",
    ),
    C(
        SSO + "assertions/ping/assertion.xml",
        SSOREADY_PING,
        "2023-11-18T16:20:31.265Z",
        "ACCEPT",
        ACCEPT,
        why="PingOne, IdP-initiated",
        name_id="9e34fa21-4e8f-4dee-b565-648dbcf25eff",
    ),
    C(
        SSO + "assertions/okta/assertion.xml",
        SSOREADY_OKTA,
        OKTA_NOW,
        "REJECT",
        "signature_invalid",
        why="Okta capture whose Response signature does not verify (index: strict SP must REJECT)",
    ),
    C(
        SSO + "assertions/okta/assertion.xml",
        SSOREADY_OKTA,
        OKTA_NOW,
        "ACCEPT",
        ACCEPT,
        mutate=drop_response_signature,
        variant="response-signature-removed",
        why="same Okta capture with the broken Response signature removed: the signed assertion validates",
        name_id="ulysse.carion@codomaindata.com",
    ),
    C(
        CJ + "TestSPCanHandleOktaSignedResponseEncryptedAssertion_response",
        CREWJAM_OKTA,
        "2020-03-03T19:24:28Z",
        "ACCEPT",
        ACCEPT,
        why="Okta: signed Response, encrypted assertion",
        name_id="testuser@testrsc.com",
        irt="id-a7364d1e4432aa9085a7a8bd824ea2fa8fa8f684",
    ),
    C(
        CJ + "TestSPCanHandleOktaResponseEncryptedSignedAssertion_response",
        CREWJAM_OKTA,
        "2020-03-03T19:31:55Z",
        "ACCEPT",
        ACCEPT,
        why="Okta: encrypted signed assertion",
        name_id="testuser@testrsc.com",
        irt="id-6d976cdde8e76df5df0a8ff58148fc0b7ec6796d",
    ),
    C(
        CJ + "TestSPCanHandleOktaResponseEncryptedAssertionBothSigned_response",
        CREWJAM_OKTA,
        "2020-03-03T19:40:54Z",
        "ACCEPT",
        ACCEPT,
        why="Okta: both signed, encrypted",
        name_id="testuser@testrsc.com",
        irt="id-953d4cab69ff475c5901d12e585b0bb15a7b85fe",
    ),
    C(
        CJ + "TestSPCanHandleOneloginResponse_response",
        CREWJAM_ONELOGIN,
        "2016-01-05T17:53:12Z",
        "ACCEPT",
        ACCEPT,
        why="OneLogin (RSA-SHA1; SP allows SHA-1 as upstream)",
        name_id="ross@kndr.org",
        irt="id-d40c15c104b52691eccf0a2a5c8a15595be75423",
    ),
    C(
        CJ + "TestSPCanHandleOneloginResponse_response",
        strict(CREWJAM_ONELOGIN),
        "2016-01-05T17:53:12Z",
        "ACCEPT",
        "sha1_refused",
        variant="default-policy",
        why="policy: SHA-1 signatures refused unless allow_sha1",
    ),
    C(
        CJ + "TestSPCanHandlePlaintextResponse_response",
        CREWJAM_GOOGLE,
        "2016-01-05T16:55:39Z",
        "ACCEPT",
        ACCEPT,
        why="Google Workspace",
        name_id="ross@octolabs.io",
        irt="id-fd419a5ab0472645427f8e07d87a3a5dd0b2e9a6",
    ),
    C(
        CJ + "SP_SamlResponse",
        TESTSHIB,
        "2015-12-01T01:57:09Z",
        "ACCEPT",
        ACCEPT,
        why="TestShib (Shibboleth), encrypted signed assertion",
        name_id="_41bd295976dadd70e1480f318e772841",
        irt="id-9e61753d64e928af5a7a341a97f420c9",
    ),
    C(
        CJ + "TestSPResponseWithNoIssuer_response",
        TESTSHIB,
        "2015-12-01T01:57:09Z",
        "ACCEPT",
        ACCEPT,
        why="Response Issuer is optional",
        name_id="_41bd295976dadd70e1480f318e772841",
        irt="id-9e61753d64e928af5a7a341a97f420c9",
    ),
    C(
        "node-saml/test/static/testshib encrypted response.xml",
        NODE_TESTSHIB,
        "2014-06-02T17:48:57Z",
        "-",
        ACCEPT,
        why="TestShib encrypted response",
        name_id="_32990a6fe34e615a7657a8fe2056d885",
        irt="_3138d675d6ed416d43d6",
    ),
    C(
        CJ + "TestSPRealWorldAssertionSignedNotResponse_response",
        SECUREWORKS,
        "2017-04-21T13:12:51Z",
        "ACCEPT",
        "schema_invalid",
        why=DIGIT_IDS,
    ),
    C(
        CJ + "TestSPRealWorldKeyInfoHasRSAPublicKeyNotX509Cert_response",
        SECUREWORKS,
        "2017-04-21T13:12:51Z",
        "-",
        "schema_invalid",
        why=DIGIT_IDS,
    ),
    C(
        CJ + "TestParseXMLArtifactResponse_response",
        SAMLTEST,
        "2021-08-17T10:26:57Z",
        "ACCEPT",
        "not_a_response",
        why="SOAP ArtifactResponse is the HTTP-Artifact binding; our ACS takes HTTP-POST Responses only",
    ),
    C(
        CJ + "TestServiceProviderCanHandleSignedAssertionsResponse_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
        irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
    ),
    C(
        RBR + "inclusive_namespaces.xml",
        OKTA_INCLUSIVE,
        "2013-08-03T21:54:44Z",
        "ACCEPT",
        "wrong_issuer",
        why="fixture's unsigned Response has another Issuer/Destination than its (Okta) assertion",
    ),
    C(
        RBR + "inclusive_namespaces.xml",
        OKTA_INCLUSIVE,
        "2013-08-03T21:54:44Z",
        "ACCEPT",
        "in_response_to_mismatch",
        mutate=then(
            replace_text(
                ">http://login.example.com/issuer<", ">http://www.okta.com/k7xkhq0jUHUPQAXVMUAN<"
            ),
            replace_text(
                'Destination="https://someone.example.com/endpoint"',
                'Destination="https://auth0145.auth0.com"',
            ),
        ),
        variant="envelope-consistent",
        why="Okta's exc-c14n InclusiveNamespaces signature verifies; refused last: the unsigned Response claims an InResponseTo the assertion lacks",
    ),
    C(
        RBR + "adfs_response_sha256.xml",
        ADFS_EXAMPLE,
        "2011-06-22T12:49:31Z",
        "ACCEPT",
        ACCEPT,
        name_id="hello@example.com",
        irt="_fc4a34b0-7efb-012e-caae-782bcb13bb38",
    ),
    C(
        RBR + "adfs_response_sha512.xml",
        own_keyinfo(ADFS_EXAMPLE, RBR + "adfs_response_sha512.xml"),
        "2011-06-22T12:49:31Z",
        "ACCEPT",
        ACCEPT,
        name_id="hello@example.com",
        irt="_fc4a34b0-7efb-012e-caae-782bcb13bb38",
    ),
    C(
        RBR + "adfs_response_xmlns.xml",
        own_keyinfo(ADFS_EXAMPLE, RBR + "adfs_response_xmlns.xml"),
        "2011-06-22T12:49:31Z",
        "ACCEPT",
        ACCEPT,
        name_id="hello@example.com",
        irt="_fc4a34b0-7efb-012e-caae-782bcb13bb38",
    ),
    C(
        RBR + "adfs_response_sha1.xml",
        own_keyinfo(ADFS_EXAMPLE, RBR + "adfs_response_sha1.xml"),
        "2011-06-22T12:49:31Z",
        "ACCEPT",
        "unsupported_algorithm",
        why="non-standard URI xmldsig-more#rsa-sha1 (RFC 3275 says xmldsig#rsa-sha1)",
    ),
    C(
        RBR + "adfs_response_sha384.xml",
        own_keyinfo(ADFS_EXAMPLE, RBR + "adfs_response_sha384.xml"),
        "2011-06-22T12:49:31Z",
        "ACCEPT",
        "unsupported_algorithm",
        why="non-standard digest URI xmlenc#sha384 (RFC 6931 says xmldsig-more#sha384)",
    ),
    # --------------------------------------------------------------- crewjam attacks
    C(
        CJ + "TestSPRejectsInjectedComment_response",
        CREWJAM_GOOGLE,
        "2016-01-05T16:55:39Z",
        "ACCEPT",
        ACCEPT,
        mutate=replace_text(">ross@octolabs.io<", ">ross@<!-- and a comment -->octolabs.io<"),
        variant="comment-inside",
        why="comment inside NameID: read whole, never truncated to 'ross@'",
        name_id="ross@octolabs.io",
        irt="id-fd419a5ab0472645427f8e07d87a3a5dd0b2e9a6",
    ),
    C(
        CJ + "TestSPRejectsInjectedComment_response",
        CREWJAM_GOOGLE,
        "2016-01-05T16:55:39Z",
        "REJECT",
        "signature_invalid",
        mutate=replace_text(
            ">ross@octolabs.io<", ">ross@octolabs.io<!-- and a comment -->.example.com<"
        ),
        variant="comment-then-suffix",
        why="appended text changes the canonical value: digest mismatch",
    ),
    C(
        CJ + "TestSPRejectsMalformedResponse_response",
        CREWJAM_GOOGLE,
        "2016-01-05T16:55:39Z",
        "REJECT",
        "malformed_xml",
        mutate=replace_text("<saml2p:Response ", '<saml2p:Response ::foo="bar" '),
        variant="malformed-root-attribute",
    ),
    C(
        CJ + "TestSPMultipleAssertions",
        SECUREWORKS,
        "2017-04-21T13:12:51Z",
        "REJECT",
        "schema_invalid",
        why="CVE-2022-41912 shape, caught first by its digit-leading IDs (see samlraider CVE_2022_41912 row)",
    ),
    C(
        CJ + "TestXswPermutationOneIsRejected_response",
        CREWJAM_ONELOGIN,
        "2016-01-05T17:53:12Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        CJ + "TestXswPermutationTwoIsRejected_response",
        CREWJAM_ONELOGIN,
        "2016-01-05T17:53:12Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        CJ + "TestXswPermutationThreeIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        CJ + "TestXswPermutationFourIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        CJ + "TestXswPermutationFiveIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        CJ + "TestXswPermutationSixIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        CJ + "TestXswPermutationSevenIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        CJ + "TestXswPermutationEightIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        CJ + "TestXswPermutationNineIsRejected_response",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "REJECT",
        "schema_invalid",
    ),
    # --------------------------------------------------------------- node-saml
    C(
        "node-saml/test/static/response-with-uncomplete-attribute.xml",
        NODE,
        "2015-08-31T08:55:00Z",
        "-",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        "node-saml/test/static/response.root-signed.message-signed-double-subjectconfirmation.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "signature_invalid",
        why="embedded Assertion signature is broken (index CAUTION: strict SP rejects)",
    ),
    C(
        "node-saml/test/static/response.root-signed.message-signed-empty-subjectconfirmation.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "signature_invalid",
    ),
    C(
        "node-saml/test/static/response.root-signed.message-signed-no-subjectconfirmation.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "signature_invalid",
    ),
    C(
        NSV + "root-signed.assertion-signed.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-unsigned.assertion-signed.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned-13.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned-13-signature.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned-xd.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned-xd-signature.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "missing_audience",
        why=NO_AUDIENCE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned-encrypted.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
        why="decrypted assertion has an invalid NotOnOrAfter ('16=7:00:00')",
    ),
    C(
        NSV + "root-signed.assertion-signed.1advice-signed.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "schema_invalid",
        why=ADVICE,
    ),
    C(
        NSV + "root-signed.assertion-signed.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "wrong_assertion_count",
        why=ADVICE,
    ),
    C(
        NSV + "root-signed.assertion-signed.2advice-signed.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "schema_invalid",
        why=ADVICE,
    ),
    C(
        NSV + "root-signed.assertion-signed.2advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "wrong_assertion_count",
        why=ADVICE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "wrong_assertion_count",
        why=ADVICE,
    ),
    C(
        NSV + "root-signed.assertion-unsigned.2advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "wrong_assertion_count",
        why=ADVICE,
    ),
    C(
        NSV + "root-unsigned.assertion-signed.1advice-signed.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "schema_invalid",
        why=ADVICE,
    ),
    C(
        NSV + "root-unsigned.assertion-signed.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "ACCEPT",
        "wrong_assertion_count",
        why=ADVICE,
    ),
    C(
        NSI + "root-resigned-by-attacker-assertion-unsigned-attackers-cert-at-keyinfo.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "unknown_signing_certificate",
        why="re-signed by an attacker whose certificate sits in KeyInfo: never trusted",
    ),
    C(
        NSI + "root-signed-transforms.assertion-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "unsupported_algorithm",
    ),
    C(
        NSI + "root-unsigned.assertion-signed-transforms.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "unsupported_algorithm",
    ),
    C(
        NSI + "root-signed.assertion-invalidly-signed.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "signature_invalid",
    ),
    C(
        NSI + "root-signed.assertion-invalidly-signed-encrypted.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(NSI + "root-signed.assertion-signed.xml", NODE, NODE_NOW, "REJECT", "schema_invalid"),
    C(NSI + "root-signed.assertion-unsigned.xml", NODE, NODE_NOW, "REJECT", "schema_invalid"),
    C(NSI + "root-unsigned.assertion-signed.xml", NODE, NODE_NOW, "REJECT", "schema_invalid"),
    C(NSI + "root-unsigned.assertion-unsigned.xml", NODE, NODE_NOW, "REJECT", "unsigned"),
    C(
        NSI + "root-signed.assertion-signed.1advice-signed.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-signed.assertion-signed.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-signed.assertion-signed.2advice-signed.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-signed.assertion-signed.2advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-signed.assertion-unsigned.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-signed.assertion-unsigned.2advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-unsigned.assertion-signed.1advice-signed.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-unsigned.assertion-signed.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        NSI + "root-unsigned.assertion-unsigned.1advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        NSI + "root-unsigned.assertion-unsigned.2advice-unsigned.xml",
        NODE,
        NODE_NOW,
        "REJECT",
        "wrong_assertion_count",
    ),
    C(NSI + "root-signed.multiple-root-elements.xml", NODE, NODE_NOW, "REJECT", "malformed_xml"),
    # --------------------------------------------------------------- python3-saml
    C(
        P3R + "valid_response.xml.base64",
        STUFF_PITBULK,
        P3_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(
        P3R + "valid_response.xml.base64",
        strict(STUFF_PITBULK),
        P3_NOW,
        "ACCEPT",
        "sha1_refused",
        variant="default-policy",
        why="policy: SHA-1 signatures refused unless allow_sha1 (python3-saml rejectDeprecatedAlgorithm)",
    ),
    C(
        P3R + "valid_response_with_namequalifier.xml.base64",
        STUFF_PITBULK,
        P3_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(
        P3R + "valid_response_without_inresponseto.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "ACCEPT",
        ACCEPT,
        why="Response has no InResponseTo; the signed SubjectConfirmationData still names the request",
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(
        P3R + "valid_response2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-24T00:17:00Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_030d5b1ce6d5938444d24d42ce91ec490e5001c7",
    ),
    C(
        P3R + "double_signed_response.xml.base64",
        P3_PITBULK,
        "2014-03-21T13:42:32Z",
        "ACCEPT",
        ACCEPT,
        name_id="_2126dd19b8a9a28238d88fdc7385e60995004a7782",
        irt="ONELOGIN_191c03e68d71d9796f5e07e6262ca4ad883a74b1",
    ),
    C(
        P3R + "double_signed_response2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-23T12:46:32Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_52e8cbdc48cd77ffc70b8eb6181ba0a5c7e5a4bc",
    ),
    C(
        P3R + "signed_assertion_response.xml.base64",
        P3_PITBULK,
        "2014-03-31T00:37:17Z",
        "ACCEPT",
        ACCEPT,
        name_id="_3af62f1d03513bdd61dd5bf04d3deb7aa617480e22",
        irt="ONELOGIN_612bbf9b1645294aa0b4637b1bc5f39de8b79ceb",
    ),
    C(
        P3R + "signed_assertion_response2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-23T12:45:21Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_01335ee15b2276e550e333a503b337442366c06c",
    ),
    C(
        P3R + "signed_message_response.xml.base64",
        P3_PITBULK,
        "2014-03-21T13:41:10Z",
        "ACCEPT",
        ACCEPT,
        why="only the Response is signed: its signature covers the assertion",
        name_id="_b98f98bb1ab512ced653b58baaff543448daed535d",
        irt="ONELOGIN_5d9e319c1b8a67da48227964c28d280e7860f804",
    ),
    C(
        P3R + "signed_message_response2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-23T12:39:28Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_e40b50138006a83f78840c4bb4526704948d6dcd",
    ),
    C(
        P3R + "double_signed_encrypted_assertion2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-24T00:49:50Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_fd78d8a622d0010771932870724f3843816d398a",
    ),
    C(
        P3R + "signed_encrypted_assertion2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-24T00:41:09Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_5580b8a5671ca4b636527564b8aee7e7aa6dd385",
    ),
    C(
        P3R + "signed_message_encrypted_assertion2.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-24T00:39:59Z",
        "ACCEPT",
        ACCEPT,
        name_id="25ddd7d34a7d79db69167625cda56a320adf2876",
        irt="ONELOGIN_81a68cab14e71ac3b771cb07ba125682e8939d80",
    ),
    C(
        P3R + "double_signed_encrypted_assertion.xml.base64",
        STUFF_PITBULK,
        "2014-03-30T20:48:45Z",
        "ACCEPT",
        "unsupported_encryption_algorithm",
        why=RSA15,
    ),
    C(
        P3R + "signed_encrypted_assertion.xml.base64",
        P3_STUFF,
        "2014-03-30T20:39:20Z",
        "ACCEPT",
        "unsupported_encryption_algorithm",
        why=RSA15,
    ),
    C(
        P3R + "signed_message_encrypted_assertion.xml.base64",
        STUFF_PITBULK,
        "2014-03-30T20:47:32Z",
        "ACCEPT",
        "unsupported_encryption_algorithm",
        why=RSA15,
    ),
    C(
        P3R + "valid_encrypted_assertion.xml.base64",
        P3_STUFF,
        "2014-03-29T12:01:58Z",
        "REJECT",
        "unsupported_encryption_algorithm",
    ),
    C(
        P3R + "valid_encrypted_assertion_encrypted_nameid.xml.base64",
        P3_PYTOOLKIT,
        "2014-09-22T16:33:16Z",
        "-",
        "unsupported_encryption_algorithm",
    ),
    C(
        P3R + "response_encrypted_nameid.xml.base64",
        P3_PITBULK,
        "2014-03-09T12:23:38Z",
        "ACCEPT",
        "schema_invalid",
        why="the fixture's EncryptedID sits outside Subject: schema-invalid",
    ),
    C(
        P3R + "response_without_reference_uri.xml.base64",
        FLAT_WORLD,
        "2015-01-02T22:48:49Z",
        "ACCEPT",
        ACCEPT,
        why="Response Reference URI='' (whole document) is accepted for the root signature",
        name_id="saml@user.com",
        irt="_ed915a40-74fb-0132-5b16-48e0eb14a1c7",
    ),
    C(
        P3R + "response_without_assertion_reference_uri.xml.base64",
        FLAT_WORLD,
        "2015-01-02T22:48:49Z",
        "-",
        "signature_misplaced",
        why="an Assertion signature must reference its Assertion by ID, not the whole document",
    ),
    C(
        P3R + "open_saml_response.xml",
        Setup(
            "https://idm.orademo.com",
            (P3_CERT,),
            "hello.com",
            "https://example.hello.com/access/saml",
        ),
        "2011-06-21T13:54:39Z",
        "ACCEPT",
        "schema_invalid",
        why="the fixture's KeyInfo holds 'dfghjkl' instead of a certificate: schema-invalid",
    ),
    C(
        P3R + "simple_saml_php.xml",
        Setup(
            "https://federate.example.net/saml/saml2/idp/metadata.php",
            (P3_CERT,),
            "hello.com",
            "https://example.hello.com/access/saml",
        ),
        STUFF_NOW,
        "ACCEPT",
        "schema_invalid",
        why="the fixture's SignatureValue is truncated (not base64): schema-invalid",
    ),
    C(
        P3R + "adfs_response.xml.base64",
        ADFS_EXAMPLE,
        "2011-06-22T12:49:31Z",
        "-",
        "unknown_signing_certificate",
        why="its ADFS certificate is not in the corpus",
    ),
    C(
        P3R + "decrypted_valid_encrypted_assertion.xml",
        P3_STUFF,
        "2014-03-29T12:01:58Z",
        "-",
        "unsigned",
    ),
    C(
        P3R + "pretty_decrypted_valid_encrypted_assertion.xml",
        P3_STUFF,
        "2014-03-29T12:01:58Z",
        "-",
        "unsigned",
    ),
    C(
        P3R + "pretty_signed_message_response.xml",
        P3_PITBULK,
        "2014-03-21T13:41:10Z",
        "-",
        "signature_invalid",
        why="pretty-printing a signed document breaks its signature",
    ),
    C(
        P3R + "expired_response.xml.base64",
        P3_PITBULK,
        "2014-02-19T01:05:50Z",
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "expired_response.xml.base64",
        resigned(P3_PITBULK),
        "2014-02-19T01:20:00Z",
        "REJECT",
        "expired",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(P3R + "no_audience.xml.base64", P3_STUFF, STUFF_NOW, "-", "unsigned"),
    C(
        P3R + "no_audience.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "-",
        "missing_audience",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "response1.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "REJECT",
        "unknown_signing_certificate",
    ),
    C(
        P3R + "response1_with_duplicate_attributes.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "signature_invalid",
    ),
    C(
        P3R + "response1_with_friendlyname.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "wrong_destination",
    ),
    C(
        P3R + "response2.xml.base64",
        Setup(
            "wibble", (P3_CERT,), "example.com", "https://wibble1299693208.example.com/access/saml"
        ),
        "2011-04-18T15:12:06Z",
        "-",
        "schema_invalid",
    ),
    C(
        P3R + "response3.xml.base64",
        Setup(
            "http://example.com/services/trust",
            (P3_CERT,),
            "consumer.example.com",
            "https://example.com/access/saml",
        ),
        "2011-05-02T19:43:55Z",
        "-",
        "schema_invalid",
    ),
    C(
        P3R + "response4.xml.base64",
        ONELOGIN_SAML2,
        "2011-06-04T02:22:03Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        P3R + "response5.xml.base64",
        Setup("example", (P3_CERT,), "fooble.com", "https://examplesaml.fooble.com/access/saml"),
        "2011-06-14T18:26:02Z",
        "-",
        "schema_invalid",
    ),
    C(
        P3R + "response_node_text_attack.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "schema_invalid",
    ),
    C(
        P3R + "response_node_text_attack.xml.base64",
        ONELOGIN_13590_FIXED,
        "2010-11-18T21:57:38Z",
        "-",
        ACCEPT,
        mutate=then(placeholders, resign_with_test_idp),
        variant="resigned",
        why="comment injection: NameID read as the whole 'support@onelogin.com'",
        name_id="support@onelogin.com",
    ),
    C(
        P3R + "response_with_ampersands.xml",
        Setup("PF-DEMO", (P3_CERT,), "fac", "http://fac.smackaho.st:3000/auth/saml/callback"),
        "2011-12-09T11:23:35Z",
        "-",
        "unknown_signing_certificate",
    ),
    C(
        P3R + "response_with_ampersands.xml.base64",
        ONELOGIN_SAML2,
        "2011-06-04T02:22:03Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        P3R + "response_with_nested_nameid_values.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "schema_invalid",
    ),
    C(P3R + "unsigned_assertion.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "malformed_xml"),
    C(P3R + "unsigned_response.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "unsigned"),
    C(P3R + "unsigned_response_with_miliseconds.xm.base64", P3_STUFF, STUFF_NOW, "-", "unsigned"),
    C(P3R + "valid_unsigned_response.xml", P3_PITBULK, P3_NOW, "REJECT", "unsigned"),
    C(P3R + "valid_unsigned_response.xml.base64", P3_PITBULK, P3_NOW, "REJECT", "unsigned"),
    C(
        P3R + "wrapped_response_2.xml.base64",
        Setup(
            "https://idp/simplesaml/saml2/idp/metadata.php",
            (P3_CERT,),
            "php-saml-fixed",
            "http://localhost/php-saml-fixed/consume.php",
        ),
        "2011-06-13T16:02:26Z",
        "REJECT",
        "schema_invalid",
    ),
    C(P3R + "invalids/bad_reference.xml.base64", P3_EXAMPLE, P3_NOW, "REJECT", "signature_invalid"),
    C(
        P3R + "invalids/duplicated_attributes.xml.base64",
        P3_PITBULK,
        "2014-03-21T13:42:32Z",
        "REJECT",
        ACCEPT,
        why="a repeated attribute Name has its values merged (Keycloak sends multi-valued attributes that way)",
        name_id="_2126dd19b8a9a28238d88fdc7385e60995004a7782",
        irt="ONELOGIN_191c03e68d71d9796f5e07e6262ca4ad883a74b1",
    ),
    C(
        P3R + "invalids/empty_destination.xml.base64",
        STUFF_PITBULK,
        P3_NOW,
        "REJECT",
        "wrong_destination",
    ),
    C(P3R + "invalids/empty_nameid.xml.base64", P3_PITBULK, P3_NOW, "REJECT", "missing_name_id"),
    C(P3R + "invalids/encrypted_attrs.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "unsigned"),
    C(
        P3R + "invalids/encrypted_attrs.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "encrypted_attribute_unsupported",
        mutate=then(our_recipient, our_name_qualifier, resign_with_test_idp),
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/encrypted_nameID_without_EncMethod.xml.base64",
        P3_PITBULK,
        "2014-03-09T12:23:38Z",
        "REJECT",
        "signature_invalid",
    ),
    C(
        P3R + "invalids/encrypted_nameID_without_keyinfo.xml.base64",
        P3_PITBULK,
        "2014-03-09T12:23:38Z",
        "REJECT",
        "signature_invalid",
    ),
    C(P3R + "invalids/invalid_audience.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "unsigned"),
    C(
        P3R + "invalids/invalid_audience.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "wrong_audience",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/invalid_issuer_assertion.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "wrong_issuer",
    ),
    C(
        P3R + "invalids/invalid_issuer_message.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "wrong_issuer",
    ),
    C(P3R + "invalids/invalid_sessionindex.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "unsigned"),
    C(
        P3R + "invalids/invalid_sessionindex.xml.base64",
        resigned(P3_STUFF),
        "2014-01-01T00:00:00Z",
        "REJECT",
        "session_expired",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_inresponse.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_inresponse.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "in_response_to_mismatch",
        mutate=then(our_name_qualifier, resign_with_test_idp),
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_nb.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_nb.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "not_yet_valid",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_noa.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_noa.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "expired",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_recipient.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/invalid_subjectconfirmation_recipient.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "wrong_recipient",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/multiple_assertions.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:46Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        P3R + "invalids/no_authnstatement.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        ACCEPT,
        why="AuthnStatement is optional for us: Keycloak can omit it (see the Keycloak capture)",
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(
        P3R + "invalids/no_conditions.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "missing_conditions",
    ),
    C(
        P3R + "invalids/no_id.xml.base64",
        P3_EXAMPLE,
        "2014-02-19T01:05:50Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        P3R + "invalids/no_issuer_assertion.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        P3R + "invalids/no_issuer_response.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(P3R + "invalids/no_key.xml.base64", P3_EXAMPLE, P3_NOW, "REJECT", "schema_invalid"),
    C(P3R + "invalids/no_nameid.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "unsigned"),
    C(
        P3R + "invalids/no_nameid.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "missing_name_id",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(P3R + "invalids/no_saml2.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "not_a_response"),
    C(P3R + "invalids/no_signature.xml.base64", P3_EXAMPLE, P3_NOW, "REJECT", "unsigned"),
    C(
        P3R + "invalids/no_status.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        P3R + "invalids/no_status_code.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        P3R + "invalids/no_subjectconfirmation_data.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/no_subjectconfirmation_data.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "no_bearer_confirmation",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/no_subjectconfirmation_method.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/no_subjectconfirmation_method.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "no_bearer_confirmation",
        mutate=resign_with_test_idp,
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/not_after_failed.xml.base64",
        P3_EXAMPLE,
        "2014-02-19T01:05:50Z",
        "REJECT",
        "schema_invalid",
        why="refused earlier than its expiry: the fixture has no Status",
    ),
    C(
        P3R + "invalids/not_before_failed.xml.base64",
        P3_EXAMPLE,
        "2014-02-19T01:05:50Z",
        "REJECT",
        "schema_invalid",
        why="refused earlier than its NotBefore: the fixture has no Status",
    ),
    C(
        P3R + "invalids/response_encrypted_attrs.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "unsigned",
    ),
    C(
        P3R + "invalids/response_encrypted_attrs.xml.base64",
        resigned(P3_STUFF),
        STUFF_NOW,
        "REJECT",
        "encrypted_attribute_unsupported",
        mutate=then(our_recipient, our_name_qualifier, resign_with_test_idp),
        variant="resigned",
        why=RESIGNED,
    ),
    C(
        P3R + "invalids/signature_wrapping_attack.xml.base64",
        P3_PITBULK,
        "2014-03-21T13:41:10Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        P3R + "invalids/signature_wrapping_attack2.xml.base64",
        Setup(
            "urn:mace:example.com:saml:roland:idp",
            (
                "python3-saml/tests/data/responses/invalids/signature_wrapping_attack2.xml.base64#keyinfo",
            ),
            "urn:mace:example.com:saml:roland:sp",
            "http://lingon.catalogix.se:8087/",
        ),
        "2019-12-20T12:15:17Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        P3R + "invalids/signed_assertion_response.xml.base64",
        P3_PITBULK,
        "2014-03-31T00:37:17Z",
        "REJECT",
        "unknown_signing_certificate",
    ),
    C(
        P3R + "invalids/status_code_responder.xml.base64",
        ADFS_TRUST,
        STUFF_NOW,
        "REJECT",
        "idp_error_status",
    ),
    C(
        P3R + "invalids/status_code_responer_and_msg.xml.base64",
        ADFS_TRUST,
        STUFF_NOW,
        "REJECT",
        "idp_error_status",
    ),
    C(
        P3R + "invalids/wrong_spnamequalifier.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "wrong_sp_name_qualifier",
    ),
    # --------------------------------------------------------------- ruby-saml
    C(
        RBR + "no_signature_ns.xml",
        RUBY_IDP_EXAMPLE,
        "2012-04-04T07:33:11Z",
        "ACCEPT",
        "wrong_issuer",
        why=ISSUERS,
    ),
    C(
        RBR + "no_signature_ns.xml",
        Setup(
            "idp.myexample.org",
            (RBR + "no_signature_ns.xml#keyinfo",),
            "example.com",
            "https://example.com/endpoint",
        ),
        "2012-04-04T07:33:11Z",
        "ACCEPT",
        "signature_invalid",
        variant="envelope-consistent",
        mutate=replace_text(">idp.example.com<", ">idp.myexample.org<"),
        why="Issuers aligned: its signature does not verify with the certificate it embeds (nor any in the corpus)",
    ),
    C(
        RBR + "response_with_signed_assertion_3.xml",
        RUBY_IDP_EXAMPLE,
        "2012-04-04T07:33:11Z",
        "ACCEPT",
        "wrong_issuer",
        why=ISSUERS,
    ),
    C(
        RBR + "response_with_signed_assertion_3.xml",
        Setup("idp.myexample.org", (RUBY_CERT,), "example.com", "https://example.com/endpoint"),
        "2012-04-04T07:33:11Z",
        "ACCEPT",
        "no_bearer_confirmation",
        variant="envelope-consistent",
        mutate=replace_text(">idp.example.com<", ">idp.myexample.org<"),
        why="unsigned Response Issuer aligned: signature verifies; its SubjectConfirmationData has no NotOnOrAfter",
    ),
    C(
        RBR + "response_with_signed_message_and_assertion.xml",
        RUBY_IDP_EXAMPLE,
        "2012-04-04T07:33:11Z",
        "ACCEPT",
        "wrong_issuer",
        why=ISSUERS,
    ),
    C(
        RBR + "open_saml_response.xml",
        Setup(
            "https://idm.orademo.com",
            (RUBY_CERT,),
            "hello.com",
            "https://example.hello.com/access/saml",
        ),
        "2011-06-21T13:54:39Z",
        "ACCEPT",
        "schema_invalid",
        why="the fixture's KeyInfo holds 'dfghjkl' instead of a certificate: schema-invalid",
    ),
    C(
        RBR + "simple_saml_php.xml",
        Setup(
            "https://federate.example.net/saml/saml2/idp/metadata.php",
            (RUBY_CERT,),
            "hello.com",
            "https://example.hello.com/access/saml",
        ),
        STUFF_NOW,
        "ACCEPT",
        "schema_invalid",
        why="the fixture's SignatureValue is truncated (not base64): schema-invalid",
    ),
    C(
        RBR + "response_with_ds_namespace_at_the_root.xml.base64",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
        irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
    ),
    C(
        RBR + "signed_nameid_in_atts.xml",
        RUBY_DEMO,
        ONEL_NOW,
        "ACCEPT",
        ACCEPT,
        why="a NameID inside an AttributeValue never replaces the Subject NameID",
        name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
        irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
    ),
    C(
        RBR + "signed_unqual_nameid_in_atts.xml",
        RUBY_DEMO,
        ONEL_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
        irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
    ),
    C(
        RBR + "response_without_reference_uri.xml.base64",
        RUBY_FLAT_WORLD,
        "2015-01-02T22:48:49Z",
        "ACCEPT",
        ACCEPT,
        name_id="saml@user.com",
        irt="_ed915a40-74fb-0132-5b16-48e0eb14a1c7",
    ),
    C(
        RBR + "response_with_retrieval_method.xml",
        Setup(
            "http://www.okta.com/exk4jkh2xxJIrTmGP0x7",
            (RBR + "response_with_retrieval_method.xml#keyinfo",),
            "http://sp.example.com/saml/metadata",
            "http://sp.example.com/saml/acs",
            key=RUBY_KEY,
        ),
        "2016-03-15T12:59:12Z",
        "-",
        ACCEPT,
        why="Okta EncryptedKey reached through ds:RetrievalMethod",
        name_id="user1",
        irt="_a20019d0-ccdb-0133-0c29-3888e3304166",
    ),
    C(
        RBR + "response_with_signed_assertion_2.xml.base64",
        Setup(
            "https://sso.wellspringworldwide.com/simplesaml/saml2/idp/metadata.php",
            (RBR + "response_with_signed_assertion_2.xml.base64#keyinfo",),
            "rpm.newrelic.com",
            "https://rpm.newrelic.com/accounts/136857/sso/saml/finalize",
        ),
        "2013-03-25T15:36:01Z",
        "-",
        ACCEPT,
        name_id="e40c0890745ce9250ad223b59090cc6dc5d1f5a1",
        irt="_9e1f35d0-778f-0130-1da9-042b2b4fd265",
    ),
    C(
        RBR + "signed_message_encrypted_signed_assertion.xml.base64",
        RUBYSAML,
        "2015-03-19T14:02:13Z",
        "ACCEPT",
        ACCEPT,
        name_id="98e2bb61075e951b37d6b3be6954a54b340d86c7",
        irt="_77062470-b06e-0132-5c3e-0090f5dedd77",
    ),
    C(
        RBR + "signed_message_encrypted_unsigned_assertion.xml.base64",
        RUBYSAML,
        "2015-03-19T14:01:38Z",
        "ACCEPT",
        ACCEPT,
        why="Response signature covers the EncryptedAssertion",
        name_id="98e2bb61075e951b37d6b3be6954a54b340d86c7",
        irt="_626035b0-b06e-0132-5c3d-0090f5dedd77",
    ),
    C(
        RBR + "unsigned_message_encrypted_signed_assertion.xml.base64",
        RUBYSAML,
        "2015-03-19T14:01:09Z",
        "ACCEPT",
        ACCEPT,
        name_id="98e2bb61075e951b37d6b3be6954a54b340d86c7",
        irt="_50f13de0-b06e-0132-5c3c-0090f5dedd77",
    ),
    C(
        RBR + "unsigned_message_encrypted_unsigned_assertion.xml.base64",
        RUBYSAML,
        "2015-03-19T14:00:32Z",
        "REJECT",
        "unsigned",
    ),
    C(RBR + "unsigned_encrypted_adfs.xml", RUBYSAML, "2015-03-19T14:00:32Z", "REJECT", "unsigned"),
    *[
        C(
            RBR + f"unsigned_message_{cipher}_encrypted_signed_assertion.xml.base64",
            ONELOGIN_DEMO,
            ONEL_NOW,
            "ACCEPT",
            ACCEPT,
            name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
            irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
        )
        for cipher in ("aes128", "aes192", "aes256", "aes128gcm", "aes192gcm", "aes256gcm")
    ],
    C(
        RBR + "unsigned_message_encrypted_assertion_without_saml_namespace.xml.base64",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "-",
        ACCEPT,
        name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
        irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
    ),
    C(
        RBR + "unsigned_message_des192_encrypted_signed_assertion.xml.base64",
        ONELOGIN_DEMO,
        ONEL_NOW,
        "-",
        "unsupported_encryption_algorithm",
        why="3DES with RSA-1_5 key transport refused",
    ),
    C(
        RBR + "response_assertion_wrapped.xml.base64",
        ONELOGIN_SAML2,
        "2011-06-04T02:22:03Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        RBR + "response_double_status_code.xml.base64",
        RUBY_MUDA,
        "2014-06-04T02:22:03Z",
        "REJECT",
        "idp_error_status",
    ),
    C(
        RBR + "response_encrypted_attrs.xml.base64",
        Setup(P3_STUFF.idp, (RUBY_CERT,), P3_STUFF.sp, P3_STUFF.acs),
        STUFF_NOW,
        "-",
        "wrong_recipient",
        why="the fixture misspells its Recipient ('hhttp://')",
    ),
    C(
        RBR + "response_encrypted_nameid.xml.base64",
        RUBY_MUDA,
        "2014-06-04T02:22:03Z",
        "-",
        "schema_invalid",
    ),
    C(
        RBR + "response_eval.xml",
        RUBY_IDP_EXAMPLE,
        "2012-04-04T07:33:11Z",
        "REJECT",
        "unsupported_version",
    ),
    C(
        RBR + "response_no_cert_and_encrypted_attrs.xml",
        Setup(
            "https://hw6dldc.vmwdemo.com/SAAS/API/1.0/GET/metadata/idp.xml",
            (RUBY_CERT,),
            "vmwdemo.socialcast.com",
            "https://vmwdemo.socialcast.com/saml/authenticate",
        ),
        "2014-07-11T18:53:31Z",
        "-",
        "signature_invalid",
    ),
    C(
        RBR + "response_node_text_attack.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "schema_invalid",
    ),
    C(
        RBR + "response_node_text_attack2.xml.base64",
        RUBY_MUDA,
        "2014-06-04T02:22:03Z",
        "ACCEPT",
        "wrong_recipient",
        why="upstream skips the Recipient check (Recipient is 'recipient'); we never do",
    ),
    C(
        RBR + "response_node_text_attack3.xml.base64",
        RUBY_MUDA,
        "2014-06-04T02:22:03Z",
        "REJECT",
        "signature_invalid",
    ),
    C(
        RBR + "response_with_ampersands.xml",
        Setup("PF-DEMO", (RUBY_CERT,), "fac", "http://fac.smackaho.st:3000/auth/saml/callback"),
        "2011-12-09T11:23:35Z",
        "-",
        "unknown_signing_certificate",
    ),
    C(
        RBR + "response_with_ampersands.xml.base64",
        ONELOGIN_SAML2,
        "2011-06-04T02:22:03Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        RBR + "response_with_multiple_attribute_statements.xml",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "unknown_signing_certificate",
    ),
    C(
        RBR + "response_with_multiple_attribute_values.xml",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "-",
        "unknown_signing_certificate",
    ),
    C(
        RBR + "response_with_saml2_namespace.xml.base64",
        Setup("example", (RUBY_CERT,), "fooble.com", "https://examplesaml.fooble.com/access/saml"),
        "2011-06-14T18:26:02Z",
        "-",
        "schema_invalid",
    ),
    C(
        RBR + "response_with_signed_assertion.xml.base64",
        Setup(
            "http://example.com/services/trust",
            (RUBY_CERT,),
            "consumer.example.com",
            "https://example.com/access/saml",
        ),
        "2011-05-02T19:43:55Z",
        "-",
        "schema_invalid",
    ),
    C(
        RBR + "response_with_undefined_recipient.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "REJECT",
        "unknown_signing_certificate",
        why="its certificate is not in the corpus",
    ),
    C(
        RBR + "signed_response_with_undefined_recipient.xml.base64",
        Setup(ONELOGIN_13590.idp, (RUBY_CERT,), "{audience}", "https://recipient.invalid/acs"),
        "2010-11-18T21:57:38Z",
        "REJECT",
        "wrong_destination",
        why="template placeholder Destination '{recipient}' (filling it would break the Response signature)",
    ),
    C(
        RBR + "response_without_attributes.xml.base64",
        Setup(
            "wibble",
            (RUBY_CERT,),
            "example.com",
            "https://wibble1299693208.example.com/access/saml",
        ),
        "2011-04-18T15:12:06Z",
        "-",
        "schema_invalid",
    ),
    C(
        RBR + "response_wrapped.xml.base64",
        Setup(
            "https://idp/simplesaml/saml2/idp/metadata.php",
            (RUBY_CERT,),
            "php-saml-fixed",
            "http://localhost/php-saml-fixed/consume.php",
        ),
        "2011-06-13T16:02:26Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "starfield_response.xml.base64",
        Setup(
            "Beeline.com",
            (RBR + "starfield_response.xml.base64#keyinfo",),
            "https://sp.invalid/metadata",
            "https://sp.invalid/acs",
        ),
        "2012-11-28T17:53:46Z",
        "-",
        "missing_audience",
        why="signature verifies; the response names no Audience",
    ),
    C(
        RBR + "test_sign.xml",
        Setup(
            "https://app.onelogin.com/saml/metadata/433789",
            (RUBY_CERT,),
            "http://audience",
            "http://recipient",
        ),
        "2015-03-18T04:50:25Z",
        "-",
        "unsigned",
    ),
    C(
        RBR + "invalids/duplicated_attributes.xml.base64",
        JAVA_SAML,
        "2014-03-21T13:42:32Z",
        "REJECT",
        ACCEPT,
        why="a repeated attribute Name has its values merged (Keycloak sends multi-valued attributes that way)",
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(
        RBR + "invalids/empty_destination.xml.base64",
        STUFF_PITBULK,
        P3_NOW,
        "REJECT",
        "wrong_destination",
    ),
    C(RBR + "invalids/empty_nameid.xml.base64", P3_PITBULK, P3_NOW, "REJECT", "missing_name_id"),
    C(
        RBR + "invalids/encrypted_new_attack.xml.base64",
        ONELOGIN_DEMO,
        "2014-03-21T13:41:10Z",
        "REJECT",
        "unsupported_encryption_algorithm",
    ),
    C(
        RBR + "invalids/invalid_issuer_message.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "wrong_issuer",
    ),
    C(
        RBR + "invalids/invalid_subjectconfirmation_inresponse.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "wrong_sp_name_qualifier",
        why="refused by its NameID SPNameQualifier 'hello.com' before InResponseTo is compared",
    ),
    C(
        RBR + "invalids/invalid_subjectconfirmation_nb.xml.base64",
        STUFF_MUDA,
        STUFF_NOW,
        "REJECT",
        "not_yet_valid",
    ),
    C(
        RBR + "invalids/invalid_subjectconfirmation_noa.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "wrong_recipient",
        why="its Recipient (app.muda.no) differs from its Destination: refused on Recipient before the expired NotOnOrAfter",
    ),
    C(
        RBR + "invalids/invalid_subjectconfirmation_recipient.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "wrong_recipient",
    ),
    C(
        RBR + "invalids/multiple_assertions.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:46Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(RBR + "invalids/multiple_signed.xml.base64", P3_PITBULK, P3_NOW, "REJECT", "schema_invalid"),
    C(
        RBR + "invalids/no_authnstatement.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        ACCEPT,
        why="AuthnStatement is optional for us: Keycloak can omit it (see the Keycloak capture)",
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(
        RBR + "invalids/no_conditions.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "missing_conditions",
    ),
    C(
        RBR + "invalids/no_id.xml.base64",
        P3_EXAMPLE,
        "2014-02-19T01:05:50Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/no_issuer_assertion.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/no_issuer_response.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "ACCEPT",
        ACCEPT,
        name_id="492882615acf31c8096b627245d76ae53036c090",
        irt="ONELOGIN_5fe9d6e499b2f0913206aab3f7191729049bb807",
    ),
    C(RBR + "invalids/no_nameid.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "unsigned"),
    C(RBR + "invalids/no_saml2.xml.base64", P3_STUFF, STUFF_NOW, "REJECT", "not_a_response"),
    C(RBR + "invalids/no_signature.xml.base64", P3_EXAMPLE, P3_NOW, "REJECT", "unsigned"),
    C(
        RBR + "invalids/no_status.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/no_status_code.xml.base64",
        ONELOGIN_13590,
        "2010-11-18T21:57:38Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/no_subjectconfirmation_data.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "no_bearer_confirmation",
    ),
    C(
        RBR + "invalids/no_subjectconfirmation_method.xml.base64",
        P3_STUFF,
        STUFF_NOW,
        "REJECT",
        "no_bearer_confirmation",
    ),
    C(
        RBR + "invalids/response_invalid_signed_element.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/response_with_concealed_signed_assertion.xml",
        RUBY_IDP_EXAMPLE,
        "2012-04-04T07:33:11Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/response_with_doubled_signed_assertion.xml",
        RUBY_IDP_EXAMPLE,
        "2012-04-04T07:33:11Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        RBR + "invalids/signature_wrapping_attack.xml.base64",
        P3_PITBULK,
        "2014-03-21T13:41:10Z",
        "REJECT",
        "schema_invalid",
    ),
    C(
        RBR + "invalids/status_code_responder.xml.base64",
        ADFS_TRUST,
        STUFF_NOW,
        "REJECT",
        "idp_error_status",
    ),
    C(
        RBR + "invalids/status_code_responer_and_msg.xml.base64",
        ADFS_TRUST,
        STUFF_NOW,
        "REJECT",
        "idp_error_status",
    ),
    C(
        RBR + "invalids/wrong_spnamequalifier.xml.base64",
        P3_PITBULK,
        P3_NOW,
        "REJECT",
        "wrong_sp_name_qualifier",
    ),
    *[
        row
        for path, setup, index, inflated, why in (
            ("valid_response.xml.base64", RUBY_MUDA, "ACCEPT", "wrong_recipient", RUBY_RECIPIENT),
            (
                "valid_response_with_formatted_x509certificate.xml.base64",
                RUBY_MUDA,
                "ACCEPT",
                "wrong_recipient",
                RUBY_RECIPIENT,
            ),
            (
                "valid_response_without_x509certificate.xml.base64",
                RUBY_MUDA,
                "ACCEPT",
                "wrong_recipient",
                "no KeyInfo at all: verified with the configured certificate; then "
                + RUBY_RECIPIENT,
            ),
            (
                "response_audience_self_closed_tag.xml.base64",
                RUBY_STUFF,
                "REJECT",
                "signature_invalid",
                "refused before its empty Audience is looked at: the fixture's signature does not verify",
            ),
            ("invalids/invalid_audience.xml.base64", RUBY_STUFF, "REJECT", "wrong_audience", ""),
            (
                "invalids/invalid_issuer_assertion.xml.base64",
                RUBY_STUFF,
                "REJECT",
                "wrong_issuer",
                "",
            ),
            (
                "invalids/invalid_signature_position.xml.base64",
                RUBY_MUDA,
                "REJECT",
                "schema_invalid",
                "",
            ),
        )
        for row in (
            C(
                RBR + path,
                setup,
                "2014-06-04T02:22:03Z" if setup is RUBY_MUDA else STUFF_NOW,
                index,
                "malformed_xml",
                why=DEFLATED if index == "ACCEPT" else "",
            ),
            C(
                RBR + path,
                setup,
                "2014-06-04T02:22:03Z" if setup is RUBY_MUDA else STUFF_NOW,
                index,
                inflated,
                mutate=inflate,
                variant="inflated",
                why=why,
            ),
        )
    ],
    # --------------------------------------------------------------- SAML Raider exploit shapes
    C(
        "samlraider/scripts/samltest/xxe_test.xml",
        SAMLRAIDER_ADFS,
        "2015-04-06T06:42:40Z",
        "REJECT",
        "dtd_forbidden",
    ),
    C(
        "samlraider/scripts/samltest/saml_response.xml",
        SAMLRAIDER_ADFS,
        "2015-04-06T06:42:40Z",
        "-",
        "unknown_signing_certificate",
        why="its ADFS certificate is not in the corpus",
    ),
    C(
        "samlraider/extracted/CVE_2022_41912.exploitAssertion.xml",
        SAMLRAIDER_CREWJAM,
        "2025-11-30T23:23:11Z",
        "REJECT",
        "wrong_assertion_count",
    ),
    C(
        "samlraider/extracted/CVE_2022_41912.originalAssertion.xml",
        SAMLRAIDER_CREWJAM,
        "2025-11-30T23:23:11Z",
        "-",
        "unknown_signing_certificate",
        why="its IdP certificate is not in the corpus",
    ),
    *[
        C(
            f"samlraider/extracted/CVE_2025_{cve}.exploitAssertion.xml",
            ONELOGIN_DEMO,
            ONEL_NOW,
            "REJECT",
            "dtd_forbidden",
        )
        for cve in ("23369", "25291", "25292")
    ],
    *[
        C(
            f"samlraider/extracted/CVE_2025_{cve}.originalAssertion.xml",
            ONELOGIN_DEMO,
            ONEL_NOW,
            "-",
            ACCEPT,
            why="baseline of the exploit above",
            name_id="_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7",
            irt="ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
        )
        for cve in ("23369", "25291", "25292")
    ],
    # --------------------------------------------------------------- ssoready bad assertions
    C(
        SSO + "bad-assertions/no-certificate/assertion.xml",
        SSOREADY_NO_CERTIFICATE,
        OKTA_NOW,
        "REJECT",
        "signature_invalid",
    ),
    C(
        SSO + "bad-assertions/bad-certificate/assertion.xml",
        SSOREADY_BAD_CERTIFICATE,
        OKTA_NOW,
        "REJECT",
        "unknown_signing_certificate",
    ),
    C(
        SSO + "bad-assertions/bad-assertion-utf8/assertion.xml",
        SSOREADY_BAD_ASSERTION_UTF8,
        OKTA_NOW,
        "REJECT",
        "malformed_xml",
    ),
    C(
        SSO + "bad-assertions/bad-signature-algorithm/assertion.xml",
        SSOREADY_BAD_SIGNATURE_ALGORITHM,
        OKTA_NOW,
        "REJECT",
        "unsupported_algorithm",
    ),
    C(
        SSO + "bad-assertions/bad-digest-algorithm/assertion.xml",
        SSOREADY_BAD_DIGEST_ALGORITHM,
        OKTA_NOW,
        "REJECT",
        "unsupported_algorithm",
    ),
    C(
        SSO + "bad-assertions/bad-idp-entity-id/assertion.xml",
        SSOREADY_BAD_IDP_ENTITY_ID,
        OKTA_NOW,
        "REJECT",
        "wrong_issuer",
    ),
    C(
        SSO + "bad-assertions/bad-assertion-expired-early/assertion.xml",
        SSOREADY_BAD_ASSERTION_EXPIRED_EARLY,
        "2023-04-25T20:31:55.494Z",
        "REJECT",
        "signature_invalid",
        why="refused by its broken Response signature first",
    ),
    C(
        SSO + "bad-assertions/bad-assertion-expired-early/assertion.xml",
        SSOREADY_BAD_ASSERTION_EXPIRED_EARLY,
        "2023-04-25T20:31:55.494Z",
        "REJECT",
        "not_yet_valid",
        mutate=drop_response_signature,
        variant="response-signature-removed",
    ),
    C(
        SSO + "bad-assertions/bad-assertion-expired-late/assertion.xml",
        SSOREADY_BAD_ASSERTION_EXPIRED_LATE,
        "2025-04-25T20:31:55.494Z",
        "REJECT",
        "signature_invalid",
        why="refused by its broken Response signature first",
    ),
    C(
        SSO + "bad-assertions/bad-assertion-expired-late/assertion.xml",
        SSOREADY_BAD_ASSERTION_EXPIRED_LATE,
        "2025-04-25T20:31:55.494Z",
        "REJECT",
        "expired",
        mutate=drop_response_signature,
        variant="response-signature-removed",
    ),
    C(
        SSO + "bad-assertions/bad-sp-entity-id/assertion.xml",
        SSOREADY_BAD_SP_ENTITY_ID,
        OKTA_NOW,
        "REJECT",
        "signature_invalid",
        why="refused by its broken Response signature first",
    ),
    C(
        SSO + "bad-assertions/bad-sp-entity-id/assertion.xml",
        SSOREADY_BAD_SP_ENTITY_ID,
        OKTA_NOW,
        "REJECT",
        "wrong_audience",
        mutate=drop_response_signature,
        variant="response-signature-removed",
    ),
    C(
        SSO + "bad-assertions/unsigned-assertion/assertion.xml",
        SSOREADY_UNSIGNED_ASSERTION,
        OKTA_NOW,
        "REJECT",
        "signature_invalid",
    ),
    C(
        SSO + "bad-assertions/unsigned-assertion/assertion.xml",
        SSOREADY_UNSIGNED_ASSERTION,
        OKTA_NOW,
        "REJECT",
        "unsigned",
        mutate=drop_response_signature,
        variant="response-signature-removed",
    ),
]


# ------------------------------------------------------------------ runner

_CERT_NOW = datetime.fromisoformat("2020-01-01T00:00:00+00:00")


def _read(corpus: Path, path: str) -> bytes:
    """The document as the ACS would decode it: files holding base64 (the POSTed form value) are decoded."""
    data = (corpus / path).read_bytes()
    stripped = data.strip()
    if stripped and re.fullmatch(rb"[A-Za-z0-9+/=\s]+", stripped):
        return base64.b64decode(stripped)
    return data


def trusted_certificates(corpus: Path, refs: tuple[str, ...]) -> tuple[str, ...]:
    certs: list[str] = []
    for ref in refs:
        if ref == TEST_IDP:
            certs.append(samlfactory.keypair("idp").certificate_pem)
            continue
        path, _, fragment = ref.partition("#")
        if fragment == "keyinfo":
            found = re.findall(rb"X509Certificate>\s*([^<]+?)\s*<", _read(corpus, path))
            certs.append(found[0].decode())
        elif path.endswith(".json"):
            idp = json.loads((corpus / path).read_text())["idp"]
            certs.extend(
                [idp["x509cert"]] if idp.get("x509cert") else idp["x509certMulti"]["signing"]
            )
        elif path.endswith(".der"):
            certs.append(base64.b64encode((corpus / path).read_bytes()).decode())
        elif b"-----BEGIN CERTIFICATE-----" in (corpus / path).read_bytes():
            certs.append((corpus / path).read_text())
        else:  # IdP metadata: its signing certificates, through our own parser
            certs.extend(
                parse_idp_metadata((corpus / path).read_bytes(), _CERT_NOW).idp.signing_certificates
            )
    return tuple(certs)


def sp_private_key(corpus: Path, ref: str | None) -> str:
    if ref is None:
        return samlfactory.keypair("sp").private_key_pem
    if ref.endswith(".json"):
        body = json.loads((corpus / ref).read_text())["sp"]["privateKey"]
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----\n"
    return (corpus / ref).read_text()


@dataclass(frozen=True)
class Outcome:
    verdict: str  # ACCEPT or an error code
    detail: str
    name_id: str | None = None
    in_response_to: str | None = None


@dataclass(frozen=True)
class Prepared:
    """What the ACS would be called with for a case (files read, keys loaded)."""

    saml_response: str
    sp: SPConfig
    idp: IdPConfig
    now: datetime


def prepare_case(corpus: Path, case: Case) -> Prepared:
    setup = case.setup
    data = _read(corpus, case.path)
    if case.mutate is not None:
        data = case.mutate(data)
    sp = SPConfig(
        entity_id=setup.sp,
        acs_url=setup.acs,
        private_key_pem=sp_private_key(corpus, setup.key),
        certificate_pem=samlfactory.keypair(
            "sp"
        ).certificate_pem,  # only the key matters for validation
        allow_sha1=setup.allow_sha1,
        allow_unsolicited=setup.allow_unsolicited,
    )
    idp = IdPConfig(
        entity_id=setup.idp,
        sso_url="https://idp.invalid/sso",
        signing_certificates=trusted_certificates(corpus, setup.trust),
    )
    return Prepared(base64.b64encode(data).decode(), sp, idp, parse_xs_datetime(case.now))


def validate_prepared(prepared: Prepared) -> Outcome:
    try:
        verified = validate_response(
            prepared.saml_response, prepared.sp, prepared.idp, prepared.now
        )
    except SAMLError as exc:
        return Outcome(str(exc.code), exc.message)
    return Outcome(ACCEPT, f"NameID {verified.name_id}", verified.name_id, verified.in_response_to)


def run_case(corpus: Path, case: Case) -> Outcome:
    return validate_prepared(prepare_case(corpus, case))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case(case: Case, corpus: Path, record_verdict: Callable[..., None]) -> None:
    outcome = run_case(corpus, case)
    record_verdict(
        case=case.id,
        index=case.index,
        expected=case.expect,
        got=outcome.verdict,
        reason=case.why or outcome.detail,
    )
    assert outcome.verdict == case.expect, f"{case.id}: got {outcome.verdict}: {outcome.detail}"
    if outcome.verdict == ACCEPT:
        assert outcome.name_id == case.name_id
        assert outcome.in_response_to == case.irt


def test_every_expected_code_exists() -> None:
    codes = {code.value for code in SAMLErrorCode}
    assert {c.expect for c in CASES} - {ACCEPT} <= codes


def test_differences_from_the_index_are_explained() -> None:
    unexplained = [
        c.id
        for c in CASES
        if c.index in (ACCEPT, "REJECT")
        and (c.index == ACCEPT) != (c.expect == ACCEPT)
        and not c.why
    ]
    assert not unexplained


def test_index_verdicts_are_all_covered(corpus: Path) -> None:
    """Every response file the index gives an ACCEPT/REJECT verdict for has a row."""
    covered = {c.path for c in CASES}
    missing = []
    for line in (corpus / "index.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) < 5 or not line.startswith("| "):
            continue
        path, verdict = cells[0], cells[2]
        looks_like_response = cells[4].startswith(("Response:", "Envelope:")) or (
            "non-XML" in cells[4] and "assertion" in path
        )
        if looks_like_response and re.match(r"(ACCEPT|REJECT)", verdict) and path not in covered:
            missing.append(path)
    assert not missing
