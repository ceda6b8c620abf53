"""Which signatures a response carries, that they verify, and what they cover (internal).

:mod:`deskgate.saml._signatures` judges and verifies one ``ds:Signature``;
this module applies it to a response: the two places SAML allows a
signature, python3-saml's placement rules (``process_signed_elements`` and
``validate_signed_elements``: same checks, same messages, with lxml's
iterators where it compiles an XPath expression per call), verification of every
signature present, and the proof that the assertion read afterwards is the
one a signature covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import xmlsec
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants

from deskgate.saml import _signatures
from deskgate.saml._response_input import ParsedResponse
from deskgate.saml._xml import NS_DS, NS_SAML, NS_SAMLP, child, children
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

_SAML = f"{{{NS_SAML}}}"
_DS = f"{{{NS_DS}}}"
_RESPONSE_TAG = f"{{{NS_SAMLP}}}Response"
_ASSERTION_TAG = f"{_SAML}Assertion"
_DEPRECATED_ALGORITHMS = frozenset(OneLogin_Saml2_Constants.DEPRECATED_ALGORITHMS)


@dataclass(frozen=True)
class VerifiedSignatures:
    response_signed: bool
    assertion_signed: bool
    certificate_pem: str
    assertion_signature: etree._Element | None


def signatures_in_place(
    response: ParsedResponse, sp: SPConfig
) -> tuple[etree._Element | None, etree._Element | None]:
    """Signature elements at the two places SAML allows, with their algorithms checked.

    Our allow-list runs first (it looks at every Reference and gives the
    precise algorithm); python3-saml's placement rules then refuse any
    Signature anywhere else, duplicates, and Reference/ID mismatches (and,
    unless ``sp.allow_sha1``, SHA-1 on its own as a second line).
    """
    root_signatures = children(response.document, f"{_DS}Signature")
    response_signature = root_signatures[0] if root_signatures else None
    assertion_signature = None
    assertion = child(response.assertion_document, f"{_SAML}Assertion")
    if assertion is not None:
        found = children(assertion, f"{_DS}Signature")
        assertion_signature = found[0] if found else None
    if response_signature is not None:
        _signatures.check_signature_policy(
            response_signature, allow_sha1=sp.allow_sha1, is_root=True
        )
    if assertion_signature is not None:
        _signatures.check_signature_policy(
            assertion_signature, allow_sha1=sp.allow_sha1, is_root=False
        )
    _check_signed_elements(response, reject_deprecated=not sp.allow_sha1)
    return response_signature, assertion_signature


def _misplaced(message: str) -> SAMLError:
    return SAMLError(SAMLErrorCode.SIGNATURE_MISPLACED, message)


def _check_signed_elements(response: ParsedResponse, *, reject_deprecated: bool) -> None:
    """python3-saml's ``OneLogin_Saml2_Response.process_signed_elements``, messages included."""
    signed_elements: list[str] = []
    verified_ids: set[str] = set()
    verified_reference_ids: set[str] = set()
    for signature in response.assertion_document.iter(f"{_DS}Signature"):  # //ds:Signature
        parent = signature.getparent()
        signed_element = parent.tag
        if signed_element not in (_RESPONSE_TAG, _ASSERTION_TAG):
            raise _misplaced(f"Invalid Signature Element {signed_element} SAML Response rejected")
        id_value = parent.get("ID")
        if not id_value:
            raise _misplaced("Signed Element must contain an ID. SAML Response rejected")
        if id_value in verified_ids:
            raise _misplaced("Duplicated ID. SAML Response rejected")
        verified_ids.add(id_value)

        reference = _first_descendant(signature, "Reference")
        uri = None if reference is None else reference.get("URI")
        if uri:
            reference_id = uri[1:]
            if reference_id != id_value:
                raise _misplaced("Found an invalid Signed Element. SAML Response rejected")
            if reference_id in verified_reference_ids:
                raise _misplaced("Duplicated Reference URI. SAML Response rejected")
            verified_reference_ids.add(reference_id)

        if reject_deprecated:
            _refuse_deprecated(_first_descendant(signature, "SignatureMethod"), "signature")
            _refuse_deprecated(_first_descendant(signature, "DigestMethod"), "digest")
        signed_elements.append(signed_element)

    if signed_elements:
        _check_signed_element_counts(response, signed_elements)


def _first_descendant(signature: etree._Element, name: str) -> etree._Element | None:
    """``(.//ds:{name})[1]``: the signature itself is never one of these."""
    return next(signature.iter(f"{_DS}{name}"), None)


def _refuse_deprecated(method: etree._Element | None, kind: str) -> None:
    algorithm = None if method is None else method.get("Algorithm")
    if algorithm in _DEPRECATED_ALGORITHMS:
        raise SAMLError(
            SAMLErrorCode.SHA1_REFUSED,
            f"Deprecated {kind} algorithm found: {algorithm}; configure the IdP to sign with "
            "RSA-SHA256, or allow SHA-1 for this connection",
        )


def _check_signed_element_counts(response: ParsedResponse, signed_elements: list[str]) -> None:
    """python3-saml's ``validate_signed_elements``: at most one signature per place."""
    responses = signed_elements.count(_RESPONSE_TAG)
    assertions = signed_elements.count(_ASSERTION_TAG)
    if len(signed_elements) > 2 or responses > 1 or assertions > 1:
        raise _misplaced("Found an unexpected Signature Element. SAML Response rejected")
    if responses and len(_response_children(response.document, f"{_DS}Signature")) != 1:
        raise _misplaced("Unexpected number of Response signatures found. SAML Response rejected.")
    if assertions and len(_assertion_signatures(response.assertion_document)) != 1:
        raise _misplaced("Unexpected number of Assertion signatures found. SAML Response rejected.")


def _response_children(root: etree._Element, tag: str) -> list[etree._Element]:
    """``/samlp:Response/{tag}``."""
    return children(root, tag) if root.tag == _RESPONSE_TAG else []


def _assertion_signatures(root: etree._Element) -> list[etree._Element]:
    """``/samlp:Response/saml:Assertion/ds:Signature``."""
    return [
        signature
        for assertion in _response_children(root, _ASSERTION_TAG)
        for signature in children(assertion, f"{_DS}Signature")
    ]


def verify_signatures(
    response: ParsedResponse,
    response_signature: etree._Element | None,
    assertion_signature: etree._Element | None,
    idp: IdPConfig,
) -> VerifiedSignatures:
    """Every signature present must verify, and there must be at least one."""
    if response_signature is None and assertion_signature is None:
        raise SAMLError(
            SAMLErrorCode.UNSIGNED,
            "neither the Response nor the Assertion is signed; configure the IdP to sign the "
            "assertion (or the whole response)",
        )
    certificate = ""
    if response_signature is not None:
        # The Response signature covers the document as received (ciphertext included).
        xmlsec.tree.add_ids(response.document, ["ID"])
        certificate = _signatures.verify_signature(
            response_signature, idp.signing_certificates, owner="Response"
        ).certificate_pem
    if assertion_signature is not None:
        # The Assertion signature is checked where the assertion lives: in the
        # decrypted copy when it arrived encrypted.
        xmlsec.tree.add_ids(response.assertion_document, ["ID"])
        certificate = _signatures.verify_signature(
            assertion_signature, idp.signing_certificates, owner="Assertion"
        ).certificate_pem
    return VerifiedSignatures(
        response_signed=response_signature is not None,
        assertion_signed=assertion_signature is not None,
        certificate_pem=certificate,
        assertion_signature=assertion_signature,
    )


def prove_covered(assertion: etree._Element, verified: VerifiedSignatures) -> etree._Element:
    """Return ``assertion`` once it is proven to lie inside verified content.

    IDs are unique and each signature references its own parent, so a
    verified Assertion signature covers exactly its parent, and a verified
    Response signature covers the whole Response (including the ciphertext the
    assertion was decrypted from).
    """
    if verified.assertion_signature is not None:
        if verified.assertion_signature.getparent() is not assertion:
            raise SAMLError(
                SAMLErrorCode.SIGNATURE_MISPLACED,
                "the verified signature is not the Assertion's own",
            )
    elif not verified.response_signed:
        raise SAMLError(SAMLErrorCode.UNSIGNED, "the Assertion is not covered by any signature")
    return assertion
