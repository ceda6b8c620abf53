"""XML-signature policy and verification for SAML Responses (internal).

Verification itself is python3-saml's ``OneLogin_Saml2_Utils.validate_node_sign``
(xmlsec, with the key taken from the configured certificate and
``set_enabled_key_data([X509])``, so KeyInfo is never a trust source). What
python3-saml leaves out, and this module adds *before* any crypto runs:

* an allow-list for canonicalization, transform, signature and digest
  algorithms on **every** Reference (python3-saml only looks at the first
  SignatureMethod/DigestMethod, and xmlsec would happily run XPath/XSLT
  transforms an attacker put in a Reference);
* exactly one Reference per Signature, pointing at the Signature's parent by
  ID (an empty URI, meaning "the whole document", only for the root Response);
* SHA-1 refused unless ``SPConfig.allow_sha1``;
* helpful diagnostics when nothing verifies (which certificate the IdP
  actually used, by SHA-256 fingerprint).
"""

from __future__ import annotations

from dataclasses import dataclass

import xmlsec
from lxml import etree
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from deskgate.saml._xml import NS_DS, text_of
from deskgate.saml.certs import load_certificate, sha256_fingerprint
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


def _algorithm(parent: etree._Element, tag: str) -> str | None:
    node = parent.find(_DS + tag)
    return None if node is None else node.get("Algorithm")


def check_signature_policy(signature: etree._Element, *, allow_sha1: bool, is_root: bool) -> None:
    """Refuse a ``ds:Signature`` whose shape or algorithms we do not accept.

    ``signature`` must already be known (python3-saml's
    ``process_signed_elements``) to be a direct child of the Response or the
    Assertion; ``is_root`` says it is the Response's.

    Raises:
        SAMLError: SIGNATURE_MISPLACED, UNSUPPORTED_ALGORITHM or SHA1_REFUSED.
    """
    owner = "Response" if is_root else "Assertion"
    signed_info = signature.find(_DS + "SignedInfo")
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

    references = signed_info.findall(_DS + "Reference")
    if len(references) != 1:
        raise SAMLError(
            SAMLErrorCode.SIGNATURE_MISPLACED,
            f"{owner} Signature has {len(references)} References; exactly one, to the {owner}, is accepted",
            expected="1",
            received=str(len(references)),
        )
    reference = references[0]
    uri = reference.get("URI")
    parent_id = signature.getparent().get("ID")  # type: ignore[union-attr]
    if uri is None or (uri == "" and not is_root) or (uri != "" and uri != f"#{parent_id}"):
        raise SAMLError(
            SAMLErrorCode.SIGNATURE_MISPLACED,
            f"{owner} Signature does not reference its own {owner} (Reference URI {uri!r})",
            expected=f"#{parent_id}",
            received=uri,
        )

    transforms_node = reference.find(_DS + "Transforms")
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


def _keyinfo_certificates(signature: etree._Element) -> list[str]:
    """Certificates named in the signature's KeyInfo: used only to order attempts and explain failures."""
    found = []
    for node in signature.iterfind(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate"):
        value = text_of(node)
        if value and value.strip():
            found.append(value)
    return found


def _fingerprint_or_none(cert: str) -> str | None:
    try:
        return sha256_fingerprint(cert)
    except ValueError:
        return None


def verify_signature(
    signature: etree._Element,
    document: etree._Element,
    trusted_certificates: tuple[str, ...],
    *,
    owner: str,
) -> VerifiedSignature:
    """Verify ``signature`` (inside ``document``) against the configured certificates only.

    ``document`` must already have its ``ID`` attributes registered with
    ``xmlsec.tree.add_ids``. The certificate named in KeyInfo (if it is one of
    ours) is tried first, purely to save a failed RSA operation during
    certificate rollover; it never adds trust.

    Raises:
        SAMLError: UNKNOWN_SIGNING_CERTIFICATE or SIGNATURE_INVALID.
    """
    hinted = {fp for fp in map(_fingerprint_or_none, _keyinfo_certificates(signature)) if fp}
    ordered = sorted(trusted_certificates, key=lambda pem: sha256_fingerprint(pem) not in hinted)
    last_error = ""
    for pem in ordered:
        try:
            OneLogin_Saml2_Utils.validate_node_sign(signature, document, pem, raise_exceptions=True)
        except (OneLogin_Saml2_ValidationError, OneLogin_Saml2_Error, xmlsec.Error) as exc:
            last_error = str(exc)
            continue
        return VerifiedSignature(signature=signature, certificate_pem=pem)
    raise _explain_failure(signature, trusted_certificates, owner, last_error)


def _explain_failure(
    signature: etree._Element, trusted: tuple[str, ...], owner: str, detail: str
) -> SAMLError:
    expected = ", ".join(sha256_fingerprint(pem) for pem in trusted)
    trusted_fps = {sha256_fingerprint(pem) for pem in trusted}
    for cert in _keyinfo_certificates(signature):
        fingerprint = _fingerprint_or_none(cert)
        if fingerprint is None or fingerprint in trusted_fps:
            continue
        try:
            subject = load_certificate(cert).subject.rfc4514_string()
        except ValueError:
            subject = "unparseable certificate"
        return SAMLError(
            SAMLErrorCode.UNKNOWN_SIGNING_CERTIFICATE,
            f"{owner} is signed with a certificate we don't know (SHA-256 {fingerprint}, {subject}); "
            "the IdP may have rotated its signing certificate: re-import its metadata",
            expected=expected,
            received=fingerprint,
        )
    hint = (
        "the signed content was altered after signing, or the IdP signed with another key"
        if _keyinfo_certificates(signature)
        else "no configured certificate verifies it"
    )
    return SAMLError(
        SAMLErrorCode.SIGNATURE_INVALID,
        f"{owner} signature is invalid: {hint} ({detail.strip() or 'verification failed'})",
        expected=expected,
        received=None,
    )
