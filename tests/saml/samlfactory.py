"""Test-time factory for SAML Responses signed by a throw-away test IdP.

Everything here is generated on the fly (keys, certificates, responses) so the
tests can produce valid, expired, wrong-audience, wrapped, SHA-1, encrypted...
responses with fresh signatures. Signing uses python3-saml's
``OneLogin_Saml2_Utils.add_sign`` (xmlsec underneath); encryption uses xmlsec's
template API the same way python3-saml does for EncryptedID.

This module is imported by ``conftest.py`` (fixtures) and by the test modules
directly: pytest puts ``tests/saml`` on ``sys.path`` (rootdir-based,
no ``tests`` package), so ``import samlfactory`` works without ``__init__``.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import xmlsec
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from deskgate.saml.keys import generate_sp_keypair

NS_SAML = C.NS_SAML
NS_SAMLP = C.NS_SAMLP
NS_DS = C.NS_DS
NS_XENC = C.NS_XENC
NSMAP = {"saml": NS_SAML, "samlp": NS_SAMLP, "ds": NS_DS, "xenc": NS_XENC}

EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

# A fixed instant, so tests never read the wall clock.
NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


@dataclass(frozen=True)
class KeyPair:
    """A private key and a self-signed certificate, both PEM."""

    private_key_pem: str
    certificate_pem: str

    @property
    def certificate_b64(self) -> str:
        """The certificate body as it appears in metadata / KeyInfo."""
        lines = self.certificate_pem.strip().splitlines()
        return "".join(line for line in lines if "-----" not in line)


@functools.cache
def keypair(label: str, bits: int = 2048, days: int = 3650) -> KeyPair:
    """A cached RSA key pair per ``label`` (RSA generation is slow), made by deskgate's own SP
    key maker and valid from 2020, so corpus-era clocks accept it too."""
    private_key_pem, certificate_pem = generate_sp_keypair(
        datetime(2020, 1, 1, 0, 5, tzinfo=UTC),
        common_name=f"test {label}",
        validity=timedelta(days=days),
        key_size=bits,
    )
    return KeyPair(private_key_pem=private_key_pem, certificate_pem=certificate_pem)


def isoformat(moment: datetime) -> str:
    """SAML xs:dateTime in UTC with a Z suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return "_" + uuid.uuid4().hex


@dataclass
class ResponseSpec:
    """Every knob of a test Response; defaults make a valid SP-initiated response."""

    sp_entity_id: str = "https://sp.example.test/api/v1/sso/tok/metadata/idp1"
    acs_url: str = "https://sp.example.test/api/v1/sso/tok/acs/idp1"
    idp_entity_id: str = "https://idp.example.test/metadata"
    now: datetime = NOW
    response_id: str = field(default_factory=new_id)
    assertion_id: str = field(default_factory=new_id)
    in_response_to: str | None = "_req-123"
    # None means "same as in_response_to"; "" means "attribute absent".
    scd_in_response_to: str | None = None
    destination: str | None = None  # None: acs_url; "": attribute absent
    recipient: str | None = None  # None: acs_url; "": attribute absent
    audiences: tuple[str, ...] | None = None  # None: (sp_entity_id,)
    response_issuer: str | None = None  # None: idp_entity_id; "": element absent
    assertion_issuer: str | None = None  # None: idp_entity_id; "": element absent
    name_id: str | None = "agent@example.com"
    name_id_format: str | None = EMAIL_FORMAT
    sp_name_qualifier: str | None = None
    method: str = BEARER
    not_before: datetime | None = None  # None: now - 1 min
    not_on_or_after: datetime | None = None  # None: now + 5 min
    scd_not_on_or_after: datetime | None = None  # None: now + 5 min
    omit_scd_not_on_or_after: bool = False
    scd_not_before: datetime | None = None
    issue_instant: datetime | None = None  # None: now
    session_index: str | None = "_session-1"
    session_not_on_or_after: datetime | None = None
    include_conditions: bool = True
    one_time_use: bool = False  # a saml:OneTimeUse condition
    include_authn_statement: bool = True
    attributes: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "email": ("agent@example.com",),
            "firstName": ("Ada",),
            "lastName": ("Lovelace",),
        }
    )
    status_code: str = SUCCESS
    status_message: str | None = None


def _sub(
    parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str
) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", nsmap=None)
    for key, value in attrs.items():
        el.set(key, value)
    if text is not None:
        el.text = text
    return el


def build_assertion(spec: ResponseSpec) -> etree._Element:
    """An unsigned ``saml:Assertion`` element (standalone document root)."""
    now = spec.now
    a = etree.Element(
        f"{{{NS_SAML}}}Assertion", nsmap={"saml": NS_SAML, "xs": C.NS_XS, "xsi": C.NS_XSI}
    )
    a.set("ID", spec.assertion_id)
    a.set("Version", "2.0")
    a.set("IssueInstant", isoformat(spec.issue_instant or now))
    issuer = spec.idp_entity_id if spec.assertion_issuer is None else spec.assertion_issuer
    if issuer != "":
        _sub(a, NS_SAML, "Issuer", issuer)
    subject = _sub(a, NS_SAML, "Subject")
    if spec.name_id is not None:
        nid = _sub(subject, NS_SAML, "NameID", spec.name_id)
        if spec.name_id_format:
            nid.set("Format", spec.name_id_format)
        if spec.sp_name_qualifier:
            nid.set("SPNameQualifier", spec.sp_name_qualifier)
    sc = _sub(subject, NS_SAML, "SubjectConfirmation", Method=spec.method)
    scd = _sub(sc, NS_SAML, "SubjectConfirmationData")
    scd_irt = spec.in_response_to if spec.scd_in_response_to is None else spec.scd_in_response_to
    if scd_irt:
        scd.set("InResponseTo", scd_irt)
    if not spec.omit_scd_not_on_or_after:
        scd.set("NotOnOrAfter", isoformat(spec.scd_not_on_or_after or now + timedelta(minutes=5)))
    if spec.scd_not_before is not None:
        scd.set("NotBefore", isoformat(spec.scd_not_before))
    recipient = spec.acs_url if spec.recipient is None else spec.recipient
    if recipient != "":
        scd.set("Recipient", recipient)
    if spec.include_conditions:
        cond = _sub(
            a,
            NS_SAML,
            "Conditions",
            NotBefore=isoformat(spec.not_before or now - timedelta(minutes=1)),
            NotOnOrAfter=isoformat(spec.not_on_or_after or now + timedelta(minutes=5)),
        )
        audiences = (spec.sp_entity_id,) if spec.audiences is None else spec.audiences
        if audiences:
            ar = _sub(cond, NS_SAML, "AudienceRestriction")
            for aud in audiences:
                _sub(ar, NS_SAML, "Audience", aud)
        if spec.one_time_use:
            _sub(cond, NS_SAML, "OneTimeUse")
    if spec.include_authn_statement:
        authn = _sub(a, NS_SAML, "AuthnStatement", AuthnInstant=isoformat(now))
        if spec.session_index:
            authn.set("SessionIndex", spec.session_index)
        if spec.session_not_on_or_after:
            authn.set("SessionNotOnOrAfter", isoformat(spec.session_not_on_or_after))
        ctx = _sub(authn, NS_SAML, "AuthnContext")
        _sub(ctx, NS_SAML, "AuthnContextClassRef", C.AC_PASSWORD_PROTECTED)
    if spec.attributes:
        stmt = _sub(a, NS_SAML, "AttributeStatement")
        for name, values in spec.attributes.items():
            attr = _sub(stmt, NS_SAML, "Attribute", Name=name, NameFormat=C.ATTRNAME_FORMAT_BASIC)
            for value in values:
                v = _sub(attr, NS_SAML, "AttributeValue", value)
                v.set(f"{{{C.NS_XSI}}}type", "xs:string")
    return a


def build_response(spec: ResponseSpec, assertion: etree._Element | None) -> etree._Element:
    """An unsigned ``samlp:Response`` wrapping ``assertion`` (copied in)."""
    r = etree.Element(f"{{{NS_SAMLP}}}Response", nsmap={"samlp": NS_SAMLP, "saml": NS_SAML})
    r.set("ID", spec.response_id)
    r.set("Version", "2.0")
    r.set("IssueInstant", isoformat(spec.issue_instant or spec.now))
    destination = spec.acs_url if spec.destination is None else spec.destination
    if destination != "":
        r.set("Destination", destination)
    if spec.in_response_to:
        r.set("InResponseTo", spec.in_response_to)
    issuer = spec.idp_entity_id if spec.response_issuer is None else spec.response_issuer
    if issuer != "":
        _sub(r, NS_SAML, "Issuer", issuer)
    status = _sub(r, NS_SAMLP, "Status")
    code = _sub(status, NS_SAMLP, "StatusCode", Value=spec.status_code)
    if spec.status_code != SUCCESS:
        _sub(code, NS_SAMLP, "StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed")
    if spec.status_message:
        _sub(status, NS_SAMLP, "StatusMessage", spec.status_message)
    if assertion is not None:
        r.append(copy.deepcopy(assertion))
    return r


def parse(xml: str | bytes) -> etree._Element:
    return etree.fromstring(xml.encode() if isinstance(xml, str) else xml)


def to_bytes(el: etree._Element) -> bytes:
    return etree.tostring(el)


def sign_element(
    el: etree._Element,
    key: KeyPair,
    *,
    sign_algorithm: str = C.RSA_SHA256,
    digest_algorithm: str = C.SHA256,
) -> etree._Element:
    """Enveloped signature on ``el`` (must be a document root) after its Issuer.

    Uses python3-saml's ``add_sign``, which places the Signature right after
    the first ``saml:Issuer`` of the document: pass a standalone Assertion to
    sign the assertion, or a Response whose assertion was already signed or
    encrypted to sign the message.
    """
    signed = OneLogin_Saml2_Utils.add_sign(
        etree.tostring(el),
        key.private_key_pem,
        key.certificate_pem,
        sign_algorithm=sign_algorithm,
        digest_algorithm=digest_algorithm,
    )
    return parse(signed)


def encrypt_assertion(
    assertion: etree._Element,
    recipient_cert_pem: str,
    *,
    block: object = None,
    key_transport: object = None,
) -> etree._Element:
    """Wrap ``assertion`` into a ``saml:EncryptedAssertion`` for ``recipient_cert_pem``."""
    block = block or xmlsec.Transform.AES256
    key_transport = key_transport or xmlsec.Transform.RSA_OAEP
    holder = etree.Element(f"{{{NS_SAML}}}EncryptedAssertion", nsmap={"saml": NS_SAML})
    holder.append(copy.deepcopy(assertion))
    target = holder[0]
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(recipient_cert_pem, xmlsec.KeyFormat.CERT_PEM, None))
    enc_data = xmlsec.template.encrypted_data_create(
        holder, block, type=xmlsec.EncryptionType.ELEMENT, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_data, ns="ds")
    enc_key = xmlsec.template.add_encrypted_key(key_info, key_transport)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    ctx = xmlsec.EncryptionContext(manager)
    bits = {
        xmlsec.Transform.AES128: 128,
        xmlsec.Transform.AES128_GCM: 128,
        xmlsec.Transform.AES192: 192,
    }.get(block, 256)
    ctx.key = xmlsec.Key.generate(
        xmlsec.KeyData.DES if block == xmlsec.Transform.DES3 else xmlsec.KeyData.AES,
        192 if block == xmlsec.Transform.DES3 else bits,
        xmlsec.KeyDataType.SESSION,
    )
    ctx.encrypt_xml(enc_data, target)
    return holder


def make_response_xml(
    spec: ResponseSpec | None = None,
    *,
    idp_key: KeyPair | None = None,
    sign_assertion: bool = True,
    sign_response: bool = False,
    encrypt_for: str | None = None,
    sign_algorithm: str = C.RSA_SHA256,
    digest_algorithm: str = C.SHA256,
) -> bytes:
    """A complete Response as XML bytes, signed/encrypted as requested."""
    spec = spec or ResponseSpec()
    idp_key = idp_key or keypair("idp")
    assertion = build_assertion(spec)
    if sign_assertion:
        assertion = sign_element(
            assertion, idp_key, sign_algorithm=sign_algorithm, digest_algorithm=digest_algorithm
        )
    payload = encrypt_assertion(assertion, encrypt_for) if encrypt_for else assertion
    response = build_response(spec, payload)
    if sign_response:
        response = sign_element(
            response, idp_key, sign_algorithm=sign_algorithm, digest_algorithm=digest_algorithm
        )
    return to_bytes(response)


def b64(xml: bytes | str) -> str:
    return base64.b64encode(xml.encode() if isinstance(xml, str) else xml).decode()


def make_response(spec: ResponseSpec | None = None, **kwargs: object) -> str:
    """Like :func:`make_response_xml`, base64-encoded as the HTTP-POST binding sends it."""
    return b64(make_response_xml(spec, **kwargs))  # type: ignore[arg-type]


def spec(**changes: object) -> ResponseSpec:
    """A default :class:`ResponseSpec` with ``changes`` applied."""
    return dataclasses.replace(ResponseSpec(), **changes)  # type: ignore[arg-type]


def encrypt_name_id(assertion: etree._Element, recipient_cert_pem: str) -> etree._Element:
    """Replace the Subject NameID of ``assertion`` (in place) by an EncryptedID for ``recipient_cert_pem``."""
    name_id = assertion.find(f"{{{NS_SAML}}}Subject/{{{NS_SAML}}}NameID")
    assert name_id is not None
    holder = encrypt_assertion(name_id, recipient_cert_pem)  # same XML-Encryption shape
    holder.tag = f"{{{NS_SAML}}}EncryptedID"
    name_id.getparent().replace(name_id, holder)
    return assertion


def signed_assertion(
    spec: ResponseSpec, idp_key: KeyPair | None = None, **sign: str
) -> etree._Element:
    """A standalone signed Assertion element for ``spec``."""
    return sign_element(build_assertion(spec), idp_key or keypair("idp"), **sign)


def wrap(assertion_or_payload: etree._Element, spec: ResponseSpec) -> bytes:
    """An unsigned Response around an already signed/encrypted payload."""
    return to_bytes(build_response(spec, assertion_or_payload))


def idp_metadata_xml(
    key: KeyPair | None = None,
    *,
    entity_id: str = ResponseSpec.idp_entity_id,
    sso_url: str = "https://idp.example.test/sso",
    binding: str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
) -> str:
    """IdP metadata trusting ``key`` (default: the ``idp`` key pair that signs test responses)."""
    key = key or keypair("idp")
    return f"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
      <ds:X509Data><ds:X509Certificate>{key.certificate_b64}</ds:X509Certificate></ds:X509Data>
    </ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="{binding}" Location="{sso_url}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""


# --------------------------------------------------------------- attack shapes
#
# Each takes an EncryptedAssertion/EncryptedID made by encrypt_assertion (the AES key
# really wrapped to the SP certificate, so a vulnerable SP gets past the RSA step) and
# rewrites it in place; the result is what an anonymous attacker can post.

XENC = f"{{{NS_XENC}}}"
DS = f"{{{NS_DS}}}"
ENCRYPTED_KEY_TYPE = "http://www.w3.org/2001/04/xmlenc#EncryptedKey"


def with_cipher_reference(holder: etree._Element, uri: str) -> etree._Element:
    """The EncryptedData's ciphertext replaced by ``<xenc:CipherReference URI=uri>``."""
    cipher_data = holder.find(f"{XENC}EncryptedData/{XENC}CipherData")
    cipher_data.remove(cipher_data.find(f"{XENC}CipherValue"))
    etree.SubElement(cipher_data, f"{XENC}CipherReference", URI=uri)
    return holder


def with_detached_key(holder: etree._Element, uri: str | None = None) -> etree._Element:
    """The EncryptedKey moved beside the EncryptedData (Id ``_ek``), found through a
    ``ds:RetrievalMethod`` with ``uri`` (default: the same-document ``#_ek``, as Okta sends)."""
    key_info = holder.find(f"{XENC}EncryptedData/{DS}KeyInfo")
    encrypted_key = key_info.find(f"{XENC}EncryptedKey")
    encrypted_key.set("Id", "_ek")
    method = etree.Element(f"{DS}RetrievalMethod", URI=uri or "#_ek", Type=ENCRYPTED_KEY_TYPE)
    key_info.replace(encrypted_key, method)
    holder.append(encrypted_key)
    return holder


def encrypted_response_xml(
    spec: ResponseSpec,
    sp_cert_pem: str,
    *,
    rewrite=None,  # type: ignore[no-untyped-def]
    idp_key: KeyPair | None = None,
) -> bytes:
    """A Response carrying the signed assertion of ``spec`` encrypted for ``sp_cert_pem``,
    the EncryptedAssertion passed through ``rewrite`` (one of the attack shapes above)."""
    # Re-parsed: lxml's path lookups miss some nodes of xmlsec's freshly built templates.
    holder = parse(to_bytes(encrypt_assertion(signed_assertion(spec, idp_key), sp_cert_pem)))
    if rewrite is not None:
        holder = rewrite(holder)
    return wrap(holder, spec)
