"""Okta-shaped SAML responses signed by a throw-away IdP key, each with fresh Response and
Assertion IDs.

The shape follows a real Okta response (ssoready's `testdata/assertions/okta/assertion.xml`):
`saml2p:`/`saml2:` prefixes, `id<digits>` IDs, an Issuer with the entity Format, the Assertion
signed with RSA-SHA256 and exclusive C14N with the certificate in KeyInfo, an emailAddress NameID,
a bearer SubjectConfirmation with Recipient and NotOnOrAfter, Conditions with one Audience, an
AuthnStatement with a SessionIndex and PasswordProtectedTransport, and Okta's usual attribute
statement (email, firstName, lastName, groups). Signing is python3-saml's
`OneLogin_Saml2_Utils.add_sign`, as in tests/saml/samlfactory.py. Okta can also sign the Response
itself (`sign_response=True`): then each response carries two signatures.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from deskgate.saml.keys import generate_sp_keypair

NS_SAML = C.NS_SAML
NS_SAMLP = C.NS_SAMLP
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS = C.NS_DS
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
ENTITY_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
IDP_ENTITY_ID = "http://www.okta.com/exkbench0000000000697"
IDP_SSO_URL = "https://bench.okta.example/app/deskgate/exkbench0000000000697/sso/saml"


@dataclass(frozen=True)
class IdPKey:
    private_key_pem: str
    certificate_pem: str

    @property
    def certificate_b64(self) -> str:
        return "".join(
            line for line in self.certificate_pem.strip().splitlines() if "-----" not in line
        )


def new_idp_key() -> IdPKey:
    """A fresh RSA-2048 key and self-signed certificate, from deskgate's own key maker."""
    private_key_pem, certificate_pem = generate_sp_keypair(
        datetime.now(UTC) - timedelta(days=1), common_name="bench okta idp"
    )
    return IdPKey(private_key_pem=private_key_pem, certificate_pem=certificate_pem)


def idp_metadata(key: IdPKey) -> str:
    """The IdP metadata an admin pastes into deskgate's Security page."""
    return (
        f'<md:EntityDescriptor xmlns:md="{NS_MD}" entityID="{IDP_ENTITY_ID}">'
        f'<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="{NS_SAMLP}">'
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{NS_DS}"><ds:X509Data>'
        f"<ds:X509Certificate>{key.certificate_b64}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        f"<md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>"
        f'<md:SingleSignOnService Binding="{C.BINDING_HTTP_POST}" Location="{IDP_SSO_URL}"/>'
        f'<md:SingleSignOnService Binding="{C.BINDING_HTTP_REDIRECT}" Location="{IDP_SSO_URL}"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def _okta_id() -> str:
    return "id" + "".join(str(secrets.randbelow(10)) for _ in range(26))


def _instant(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _el(
    parent: etree._Element | None, ns: str, tag: str, text: str | None = None, **attrs: str
) -> etree._Element:
    if parent is None:
        el = etree.Element(f"{{{ns}}}{tag}", nsmap={"saml2p": NS_SAMLP, "saml2": NS_SAML})
    else:
        el = etree.SubElement(parent, f"{{{ns}}}{tag}")
    for key, value in attrs.items():
        el.set(key, value)
    if text is not None:
        el.text = text
    return el


@dataclass(frozen=True)
class Audience:
    """Where the responses go: deskgate's ACS URL and SP entity ID for one connection."""

    acs_url: str
    sp_entity_id: str


def build_response(
    key: IdPKey,
    audience: Audience,
    email: str,
    now: datetime,
    *,
    sign_response: bool = False,
    lifetime: timedelta = timedelta(minutes=10),
) -> str:
    """One IdP-initiated (unsolicited) response for `email`, base64 as the HTTP-POST binding sends it."""
    assertion = etree.Element(
        f"{{{NS_SAML}}}Assertion", nsmap={"saml2": NS_SAML, "xs": C.NS_XS, "xsi": C.NS_XSI}
    )
    assertion.set("ID", _okta_id())
    assertion.set("IssueInstant", _instant(now))
    assertion.set("Version", "2.0")
    _el(assertion, NS_SAML, "Issuer", IDP_ENTITY_ID, Format=ENTITY_FORMAT)
    subject = _el(assertion, NS_SAML, "Subject")
    _el(subject, NS_SAML, "NameID", email, Format=EMAIL_FORMAT)
    confirmation = _el(
        subject, NS_SAML, "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"
    )
    _el(
        confirmation,
        NS_SAML,
        "SubjectConfirmationData",
        NotOnOrAfter=_instant(now + lifetime),
        Recipient=audience.acs_url,
    )
    conditions = _el(
        assertion,
        NS_SAML,
        "Conditions",
        NotBefore=_instant(now - timedelta(minutes=5)),
        NotOnOrAfter=_instant(now + lifetime),
    )
    _el(_el(conditions, NS_SAML, "AudienceRestriction"), NS_SAML, "Audience", audience.sp_entity_id)
    authn = _el(
        assertion,
        NS_SAML,
        "AuthnStatement",
        AuthnInstant=_instant(now - timedelta(seconds=30)),
        SessionIndex=f"id{int(now.timestamp() * 1000)}.{secrets.randbelow(10**9)}",
    )
    context = _el(authn, NS_SAML, "AuthnContext")
    _el(context, NS_SAML, "AuthnContextClassRef", C.AC_PASSWORD_PROTECTED)
    statement = _el(assertion, NS_SAML, "AttributeStatement")
    local = email.split("@", 1)[0]
    for name, values in (
        ("email", (email,)),
        ("firstName", (local.split(".")[0].title(),)),
        ("lastName", ("Bench",)),
        ("groups", ("Everyone", "Support")),
    ):
        attribute = _el(statement, NS_SAML, "Attribute", Name=name, NameFormat=UNSPECIFIED)
        for value in values:
            _el(attribute, NS_SAML, "AttributeValue", value).set(f"{{{C.NS_XSI}}}type", "xs:string")

    signed_assertion = etree.fromstring(
        OneLogin_Saml2_Utils.add_sign(
            etree.tostring(assertion),
            key.private_key_pem,
            key.certificate_pem,
            sign_algorithm=C.RSA_SHA256,
            digest_algorithm=C.SHA256,
        )
    )
    response = _el(
        None,
        NS_SAMLP,
        "Response",
        Destination=audience.acs_url,
        ID=_okta_id(),
        IssueInstant=_instant(now),
        Version="2.0",
    )
    _el(response, NS_SAML, "Issuer", IDP_ENTITY_ID, Format=ENTITY_FORMAT)
    status = _el(response, NS_SAMLP, "Status")
    _el(status, NS_SAMLP, "StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success")
    response.append(signed_assertion)
    xml = etree.tostring(response)
    if sign_response:
        xml = OneLogin_Saml2_Utils.add_sign(
            xml,
            key.private_key_pem,
            key.certificate_pem,
            sign_algorithm=C.RSA_SHA256,
            digest_algorithm=C.SHA256,
        )
    return base64.b64encode(xml).decode()
