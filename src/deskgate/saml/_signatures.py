"""XML-signature policy and verification for SAML Responses (internal).

Verification is xmlsec, called exactly as python3-saml's
``OneLogin_Saml2_Utils.validate_node_sign`` does (a ``SignatureContext`` whose
key is the configured certificate, ``set_enabled_key_data([X509])``, so KeyInfo
is never a trust source), with two differences: the ``xmlsec.Key`` parsed from
each configured certificate's public key is cached per thread (parsing the
PEM and copying the certificate into every context cost ~0.2 ms per
signature, two thirds of the RSA verification itself), and
xmlsec is told which transforms it may run at all, so our allow-list below is
enforced twice. What python3-saml leaves out, and this module adds *before*
any crypto runs:

* an allow-list for canonicalization, transform, signature and digest
  algorithms on **every** Reference (python3-saml only looks at the first
  SignatureMethod/DigestMethod, and xmlsec would happily run XPath/XSLT
  transforms an attacker put in a Reference);
* exactly one Reference per Signature, pointing at the Signature's parent by
  ID (an empty URI, meaning "the whole document", only for the root Response);
* the Signature made only of what IdPs send (:data:`_ALLOWED_CHILDREN`): no
  ``ds:Object`` (a decoy place for content), no RetrievalMethod or
  KeyInfoReference, no URI anywhere but the one Reference, and none that is
  not same-document (xmlsec cannot open one anyway: ``_xmlsec_io``);
* SHA-1 refused unless ``SPConfig.allow_sha1``;
* helpful diagnostics when nothing verifies (which certificate the IdP
  actually used, by SHA-256 fingerprint).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from deskgate.saml import _xmlsec_io  # noqa: F401  (xmlsec opens no URI)
from deskgate.saml._xml import NS_DS, SAME_DOCUMENT_URI, child, refuse_unlisted_children, text_of
from deskgate.saml.certs import (
    certificate_fingerprint,
    der_fingerprint,
    load_certificate,
    parse_certificate,
    sha256_fingerprint,
)
from deskgate.saml.errors import SAMLError, SAMLErrorCode

_DS = f"{{{NS_DS}}}"

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
CANONICALIZATIONS = frozenset({EXC_C14N, C14N_10, C14N_11})

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SIGNATURE_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
DIGEST_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)


_EC = "{http://www.w3.org/2001/10/xml-exc-c14n#}"
_DSIG11 = "{http://www.w3.org/2009/xmldsig11#}"
# Which element children each element of a Signature may have; anything not
# listed has none.
_ALLOWED_CHILDREN: dict[str, frozenset[str]] = {
    _DS + "Signature": frozenset({_DS + "SignedInfo", _DS + "SignatureValue", _DS + "KeyInfo"}),
    _DS + "SignedInfo": frozenset(
        {_DS + "CanonicalizationMethod", _DS + "SignatureMethod", _DS + "Reference"}
    ),
    _DS + "CanonicalizationMethod": frozenset({_EC + "InclusiveNamespaces"}),
    _DS + "Reference": frozenset({_DS + "Transforms", _DS + "DigestMethod", _DS + "DigestValue"}),
    _DS + "Transforms": frozenset({_DS + "Transform"}),
    _DS + "Transform": frozenset({_EC + "InclusiveNamespaces"}),
    _DS + "KeyInfo": frozenset({_DS + "X509Data", _DS + "KeyName", _DS + "KeyValue"}),
    _DS + "X509Data": frozenset(
        {
            _DS + "X509Certificate",
            _DS + "X509IssuerSerial",
            _DS + "X509SKI",
            _DS + "X509SubjectName",
            _DSIG11 + "X509Digest",
        }
    ),
    _DS + "X509IssuerSerial": frozenset({_DS + "X509IssuerName", _DS + "X509SerialNumber"}),
    _DS + "KeyValue": frozenset({_DS + "RSAKeyValue", _DSIG11 + "ECKeyValue"}),
    _DS + "RSAKeyValue": frozenset({_DS + "Modulus", _DS + "Exponent"}),
    _DSIG11 + "ECKeyValue": frozenset({_DSIG11 + "NamedCurve", _DSIG11 + "PublicKey"}),
}
# Elements whose URI attribute is a name, never dereferenced (the curve's OID as a URN).
_NAMING_URIS = frozenset({_DSIG11 + "NamedCurve"})


def _check_signature_structure(
    signature: etree._Element, reference: etree._Element, owner: str
) -> None:
    """Only the elements IdPs send, and no URI but the Reference's (checked by the caller).

    Raises:
        SAMLError: EXTERNAL_REFERENCE or SIGNATURE_MISPLACED.
    """
    elements = list(signature.iter(etree.Element))  # elements only: no comment / PI
    for element in elements:
        uri = element.get("URI")
        if uri is not None and element is not reference and element.tag not in _NAMING_URIS:
            name = etree.QName(element).localname
            external = not SAME_DOCUMENT_URI.fullmatch(uri)
            raise SAMLError(
                SAMLErrorCode.EXTERNAL_REFERENCE if external else SAMLErrorCode.SIGNATURE_MISPLACED,
                f"{owner} Signature has a {name} with URI {uri!r}; only its one Reference may point "
                "anywhere, and only inside the message",
                expected="no URI outside SignedInfo/Reference",
                received=f"{name} URI={uri!r}",
            )
    refuse_unlisted_children(
        elements,
        lambda element: _ALLOWED_CHILDREN.get(element.tag, frozenset()),
        SAMLErrorCode.SIGNATURE_MISPLACED,
        f"{owner} Signature",
    )


def _algorithm(parent: etree._Element, tag: str) -> str | None:
    node = child(parent, _DS + tag)
    return None if node is None else node.get("Algorithm")


def check_signature_policy(signature: etree._Element, *, allow_sha1: bool, is_root: bool) -> None:
    """Refuse a ``ds:Signature`` whose shape or algorithms we do not accept.

    ``signature`` must already be known (python3-saml's
    ``process_signed_elements``) to be a direct child of the Response or the
    Assertion; ``is_root`` says it is the Response's.

    Raises:
        SAMLError: SIGNATURE_MISPLACED, EXTERNAL_REFERENCE, UNSUPPORTED_ALGORITHM or
            SHA1_REFUSED.
    """
    owner = "Response" if is_root else "Assertion"
    signed_info = child(signature, _DS + "SignedInfo")
    if signed_info is None:
        raise SAMLError(SAMLErrorCode.SIGNATURE_MISPLACED, f"{owner} Signature has no SignedInfo")

    c14n = _algorithm(signed_info, "CanonicalizationMethod")
    if c14n not in CANONICALIZATIONS:
        raise SAMLError(
            SAMLErrorCode.UNSUPPORTED_ALGORITHM,
            f"{owner} Signature uses canonicalization {c14n!r}, which we do not accept",
            expected=EXC_C14N,
            received=c14n,
        )

    sig_method = _algorithm(signed_info, "SignatureMethod")
    _check_sha1_or_allowed(sig_method, RSA_SHA1, SIGNATURE_METHODS, owner, "signature", allow_sha1)

    references = list(signed_info.iterchildren(_DS + "Reference"))
    if len(references) != 1:
        raise SAMLError(
            SAMLErrorCode.SIGNATURE_MISPLACED,
            f"{owner} Signature has {len(references)} References; exactly one, to the {owner}, is accepted",
            expected="1",
            received=str(len(references)),
        )
    reference = references[0]
    uri = reference.get("URI")
    parent_id = signature.getparent().get("ID")
    if uri and not SAME_DOCUMENT_URI.fullmatch(uri):
        raise SAMLError(
            SAMLErrorCode.EXTERNAL_REFERENCE,
            f"{owner} Signature Reference points outside the message (URI {uri!r})",
            expected=f"#{parent_id}",
            received=uri,
        )
    if uri is None or (uri == "" and not is_root) or (uri != "" and uri != f"#{parent_id}"):
        raise SAMLError(
            SAMLErrorCode.SIGNATURE_MISPLACED,
            f"{owner} Signature does not reference its own {owner} (Reference URI {uri!r})",
            expected=f"#{parent_id}",
            received=uri,
        )

    transforms_node = child(reference, _DS + "Transforms")
    transforms = [] if transforms_node is None else [t.get("Algorithm") for t in transforms_node]
    c14n_transforms = [t for t in transforms if t in CANONICALIZATIONS]
    if (
        transforms.count(ENVELOPED) != 1
        or len(c14n_transforms) > 1
        or len(transforms) != 1 + len(c14n_transforms)
    ):
        raise SAMLError(
            SAMLErrorCode.UNSUPPORTED_ALGORITHM,
            f"{owner} Signature Reference transforms are not 'enveloped-signature' plus at most one "
            "canonicalization",
            expected=f"{ENVELOPED} {EXC_C14N}",
            received=" ".join(str(t) for t in transforms) or "(none)",
        )

    digest = _algorithm(reference, "DigestMethod")
    _check_sha1_or_allowed(digest, SHA1, DIGEST_METHODS, owner, "digest", allow_sha1)
    _check_signature_structure(signature, reference, owner)


def _check_sha1_or_allowed(
    algorithm: str | None,
    sha1_uri: str,
    allowed: frozenset[str],
    owner: str,
    kind: str,
    allow_sha1: bool,
) -> None:
    if algorithm in allowed or (allow_sha1 and algorithm == sha1_uri):
        return
    if algorithm == sha1_uri:
        raise SAMLError(
            SAMLErrorCode.SHA1_REFUSED,
            f"{owner} is signed with SHA-1 ({kind} {algorithm}); configure the IdP to sign with "
            "RSA-SHA256, or allow SHA-1 for this connection",
            expected="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
            if kind == "signature"
            else "http://www.w3.org/2001/04/xmlenc#sha256",
            received=algorithm,
        )
    raise SAMLError(
        SAMLErrorCode.UNSUPPORTED_ALGORITHM,
        f"{owner} Signature uses {kind} algorithm {algorithm!r}, which we do not accept",
        expected=", ".join(sorted(allowed)),
        received=algorithm,
    )


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified; ``certificate_pem`` is the configured certificate that did it."""

    signature: etree._Element
    certificate_pem: str


_KEYS_PER_THREAD = 256
_local = threading.local()

# What xmlsec may execute while verifying (defence in depth behind
# check_signature_policy): canonicalizations, the enveloped transform, the
# digests and the signature methods we allow (SHA-1 ones are let through here
# and refused by the policy check unless allow_sha1).
_REFERENCE_TRANSFORMS = (
    xmlsec.Transform.ENVELOPED,
    xmlsec.Transform.EXCL_C14N,
    xmlsec.Transform.C14N,
    xmlsec.Transform.C14N11,
    xmlsec.Transform.SHA1,
    xmlsec.Transform.SHA256,
    xmlsec.Transform.SHA384,
    xmlsec.Transform.SHA512,
)
_SIGNATURE_TRANSFORMS = (
    xmlsec.Transform.EXCL_C14N,
    xmlsec.Transform.C14N,
    xmlsec.Transform.C14N11,
    xmlsec.Transform.RSA_SHA1,
    xmlsec.Transform.RSA_SHA256,
    xmlsec.Transform.RSA_SHA384,
    xmlsec.Transform.RSA_SHA512,
    xmlsec.Transform.ECDSA_SHA256,
    xmlsec.Transform.ECDSA_SHA384,
    xmlsec.Transform.ECDSA_SHA512,
)


def _verification_key(certificate_pem: str) -> xmlsec.Key:
    """The public key of a configured certificate as an xmlsec key, cached per thread.

    Only the public key is loaded, not the certificate: python-xmlsec
    duplicates the key into every context (``xmlSecKeyDuplicate``), and
    duplicating a certificate-carrying key costs ~80 us, a bare RSA key ~1 us.
    The verification is the same (python3-saml does not check certificate
    validity either: ``validatecert=False``).
    """
    keys: OrderedDict[str, xmlsec.Key] | None = getattr(_local, "keys", None)
    if keys is None:
        keys = OrderedDict()
        _local.keys = keys
    key = keys.get(certificate_pem)
    if key is None:
        public_pem = (
            load_certificate(certificate_pem)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        key = xmlsec.Key.from_memory(public_pem, xmlsec.KeyFormat.PEM, None)
        keys[certificate_pem] = key
        if len(keys) > _KEYS_PER_THREAD:
            keys.popitem(last=False)
    else:
        keys.move_to_end(certificate_pem)
    return key


def _xmlsec_verify(signature: etree._Element, certificate_pem: str) -> None:
    """python3-saml's validate_node_sign (validatecert=False branch), plus the transform allow-lists.

    Raises:
        xmlsec.Error: the signature does not verify with this certificate.
    """
    context = xmlsec.SignatureContext()
    context.key = _verification_key(certificate_pem)
    context.set_enabled_key_data([xmlsec.KeyData.X509])
    for transform in _REFERENCE_TRANSFORMS:
        context.enable_reference_transform(transform)
    for transform in _SIGNATURE_TRANSFORMS:
        context.enable_signature_transform(transform)
    context.verify(signature)


def _keyinfo_certificates(signature: etree._Element) -> list[str]:
    """Certificates named in the signature's KeyInfo: used only to order attempts and explain failures."""
    found = []
    for node in signature.iterfind(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate"):
        value = text_of(node)
        if value and value.strip():
            found.append(value)
    return found


def _fingerprint_or_none(cert: str) -> str | None:
    """Fingerprint of a certificate KeyInfo names; uncached, as KeyInfo is unverified attacker text."""
    try:
        return certificate_fingerprint(parse_certificate(cert))
    except ValueError:
        return None


def verify_signature(
    signature: etree._Element,
    trusted_certificates: tuple[str, ...],
    *,
    owner: str,
) -> VerifiedSignature:
    """Verify ``signature`` against the configured certificates only.

    Its document must already have its ``ID`` attributes registered with
    ``xmlsec.tree.add_ids``. The certificate named in KeyInfo (if it is one of
    ours) is tried first, purely to save a failed RSA operation during
    certificate rollover; it never adds trust.

    Raises:
        SAMLError: UNKNOWN_SIGNING_CERTIFICATE or SIGNATURE_INVALID.
    """
    ordered = trusted_certificates
    if len(trusted_certificates) > 1:  # rollover: try the one KeyInfo names first
        hinted = {fp for fp in map(der_fingerprint, _keyinfo_certificates(signature)) if fp}
        ordered = tuple(
            sorted(trusted_certificates, key=lambda pem: sha256_fingerprint(pem) not in hinted)
        )
    for pem in ordered:
        try:
            _xmlsec_verify(signature, pem)
        except xmlsec.Error:
            continue  # xmlsec says only "Signature is invalid"; _explain_failure says more
        return VerifiedSignature(signature=signature, certificate_pem=pem)
    raise _explain_failure(signature, trusted_certificates, owner)


def _explain_failure(signature: etree._Element, trusted: tuple[str, ...], owner: str) -> SAMLError:
    expected = ", ".join(sha256_fingerprint(pem) for pem in trusted)
    trusted_fps = {sha256_fingerprint(pem) for pem in trusted}
    named = _keyinfo_certificates(signature)
    for cert in named:
        fingerprint = _fingerprint_or_none(cert)
        if fingerprint is None or fingerprint in trusted_fps:
            continue
        try:
            subject = parse_certificate(cert).subject.rfc4514_string()
        except ValueError:
            subject = "unparseable certificate"
        return SAMLError(
            SAMLErrorCode.UNKNOWN_SIGNING_CERTIFICATE,
            f"{owner} is signed with a certificate we don't know (SHA-256 {fingerprint}, {subject}); "
            "if the IdP rotated its signing certificate, re-import its metadata (or add the "
            "certificate under Certificates on the Security page)",
            expected=expected,
            received=fingerprint,
        )
    if named:
        hint = "the signed content was altered after signing (or the IdP used another key with this certificate)"
    else:
        hint = f"it does not verify with the {len(trusted)} configured certificate(s) and names none in KeyInfo"
    return SAMLError(
        SAMLErrorCode.SIGNATURE_INVALID,
        f"{owner} signature is invalid: {hint}",
        expected=expected,
        received=None,
    )
