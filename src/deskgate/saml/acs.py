"""Assertion Consumer Service: turn a posted ``SAMLResponse`` into verified facts.

:func:`validate_response` is the only entry point. It either returns a
:class:`VerifiedAssertion` (every value in it comes from an element covered
by a signature that verified against ``IdPConfig.signing_certificates``) or
raises :class:`~deskgate.saml.errors.SAMLError`.

What the caller (a service with a database) must still do
----------------------------------------------------------
* **Replay**: store ``assertion_id`` until ``replay_cache_until`` and refuse
  a second use (insert-if-absent in one transaction). The core is pure and
  keeps no cache.
* **InResponseTo**: when ``in_response_to`` is set, it must name an AuthnRequest
  this SP issued (``LoginRedirect.request_id``), for this IdP connection, that
  is still outstanding; consume it (one use). When it is ``None`` the response
  is IdP-initiated: the core has already refused it unless
  ``SPConfig.allow_unsolicited``.

How python3-saml is used, and why not ``is_valid``
---------------------------------------------------
python3-saml does the decoding and parsing (``OneLogin_Saml2_Response``:
defused parser, no DTD/entities/network), the signature-placement sanity checks
(``process_signed_elements``, ``validate_num_assertions``), status parsing
(``get_status``) and provides the XSDs. The cryptography is xmlsec, the
library python3-saml drives, called the way python3-saml calls it
(``validate_node_sign``, ``decrypt_element``) with algorithm allow-lists and
cached keys added (see ``_signatures`` and ``_decrypt``). We do **not** call
``OneLogin_Saml2_Response.is_valid``:

* Clock: ``is_valid`` and ``validate_timestamps`` read the wall clock through
  ``OneLogin_Saml2_Utils.now()`` (response.py: SessionNotOnOrAfter, the
  SubjectConfirmationData NotBefore/NotOnOrAfter loop, and Conditions with a
  fixed ``ALLOWED_CLOCK_DRIFT`` of 300 s). Patching that static method would
  be process-global and racy across threads/tenants. Instead every time
  comparison lives here, against the caller's ``now`` and ``sp.clock_skew``;
  none of the toolkit methods we call reads the clock.
* Semantics it gets wrong for us: Recipient is a substring test, Destination
  a prefix test, InResponseTo is ignored unless a request id is passed,
  missing Audience/Recipient/NotOnOrAfter are accepted, only the first
  Reference's algorithms are looked at, and KeyInfo-supplied transforms are
  run unchecked.
* Speed: it re-compiles the protocol XSD on every call (~2 ms, half of its
  cost) and re-parses the IdP certificate and builds an X509 key store per
  signature / decryption; we compile once per thread and cache keys.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import xmlsec
from lxml import etree
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xmlparser import DTDForbidden, EntitiesForbidden

from deskgate.saml import _signatures
from deskgate.saml._decrypt import decrypt_in_place
from deskgate.saml._time import format_instant, humanize, parse_xs_datetime, require_utc_aware
from deskgate.saml._toolkit import toolkit_settings
from deskgate.saml._xml import (
    NS_DS,
    NS_SAML,
    NS_SAMLP,
    NS_XSI,
    XML_NS,
    has_processing_instruction,
    schema_errors,
    text_of,
)
from deskgate.saml.certs import sha256_fingerprint
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

__all__ = ["MAX_ID_LENGTH", "MAX_RESPONSE_BYTES", "VerifiedAssertion", "validate_response"]

#: Largest decoded SAMLResponse accepted. Real responses are 5-60 KB (Entra
#: with many group claims ~100 KB); the cap bounds parse/verify work.
MAX_RESPONSE_BYTES = 1024 * 1024

#: Longest ID / InResponseTo accepted (characters). IdPs use 20-50; the
#: replay store keeps assertion IDs in a column of this size.
MAX_ID_LENGTH = 256

_SAML = f"{{{NS_SAML}}}"
_SAMLP = f"{{{NS_SAMLP}}}"
_DS = f"{{{NS_DS}}}"

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

# python3-saml validation codes that mean "a Signature is somewhere it must not be".
_MISPLACED_CODES = frozenset(
    {
        OneLogin_Saml2_ValidationError.WRONG_SIGNED_ELEMENT,
        OneLogin_Saml2_ValidationError.ID_NOT_FOUND_IN_SIGNED_ELEMENT,
        OneLogin_Saml2_ValidationError.DUPLICATED_ID_IN_SIGNED_ELEMENTS,
        OneLogin_Saml2_ValidationError.INVALID_SIGNED_ELEMENT,
        OneLogin_Saml2_ValidationError.DUPLICATED_REFERENCE_IN_SIGNED_ELEMENTS,
        OneLogin_Saml2_ValidationError.UNEXPECTED_SIGNED_ELEMENTS,
        OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_SIGNATURES_IN_RESPONSE,
        OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_SIGNATURES_IN_ASSERTION,
    }
)
_DEPRECATED_CODES = frozenset(
    {
        OneLogin_Saml2_ValidationError.DEPRECATED_SIGNATURE_METHOD,
        OneLogin_Saml2_ValidationError.DEPRECATED_DIGEST_METHOD,
    }
)


@dataclass(frozen=True)
class VerifiedAssertion:
    """Facts from a SAML assertion whose signature verified and whose conditions hold at ``now``.

    Attributes:
        assertion_id: Assertion ID; the replay-detection key.
        issuer: IdP entity ID (equal to ``IdPConfig.entity_id``).
        name_id: Subject NameID value (decrypted if it was an EncryptedID), whitespace-trimmed.
        name_id_format: NameID Format URI, ``None`` when absent.
        session_index: AuthnStatement SessionIndex, ``None`` when absent.
        in_response_to: the AuthnRequest ID this answers, taken only from signed
            content (``None``: IdP-initiated). The caller must match it to an
            outstanding request and consume that request.
        issue_instant: Assertion IssueInstant.
        not_on_or_after: earliest NotOnOrAfter the IdP stated (Conditions and
            the bearer SubjectConfirmationData).
        replay_cache_until: ``not_on_or_after + clock_skew``: the last instant
            this assertion could be accepted again; keep ``assertion_id`` at
            least until then.
        session_not_on_or_after: AuthnStatement SessionNotOnOrAfter, if any (an
            upper bound the IdP puts on the local session).
        attributes: attribute Name -> values, in document order.
        response_signed: the Response carried a signature that verified.
        assertion_signed: the Assertion carried a signature that verified.
        encrypted: the assertion arrived as an EncryptedAssertion.
        signing_certificate_sha256: fingerprint of the configured certificate
            that verified (shows which one is live during a rollover).
    """

    assertion_id: str
    issuer: str
    name_id: str
    name_id_format: str | None
    session_index: str | None
    in_response_to: str | None
    issue_instant: datetime
    not_on_or_after: datetime
    replay_cache_until: datetime
    session_not_on_or_after: datetime | None
    attributes: dict[str, tuple[str, ...]]
    response_signed: bool
    assertion_signed: bool
    encrypted: bool
    signing_certificate_sha256: str


def validate_response(
    saml_response_b64: str | bytes, sp: SPConfig, idp: IdPConfig, now: datetime
) -> VerifiedAssertion:
    """Validate an HTTP-POST ``SAMLResponse`` for ``sp`` from ``idp`` at instant ``now``.

    Checks, in order (the first failure is raised):

    1. shape: base64 and size; well-formed XML without DOCTYPE or processing
       instruction; exactly one assertion before any decryption; the
       EncryptedAssertion's structure (no CipherReference, no URI but a
       same-document ``#id``, at most two EncryptedKeys), its algorithms,
       then decryption; root is a SAML 2.0 ``samlp:Response``; SAML protocol
       schema (also after decryption); Status is Success; unique IDs; IDs and
       InResponseTo at most :data:`MAX_ID_LENGTH` characters; exactly one
       assertion anywhere, as a direct child;
    2. signature placement, structure (no ds:Object, no URI but the one
       Reference's) and algorithms; Response/Assertion Issuer;
    3. every signature present verifies against ``idp.signing_certificates``
       (never KeyInfo), and the Response or the Assertion is signed;
    4. Destination; Assertion version and IssueInstant; Conditions (window
       with ``sp.clock_skew``, Audience, no unknown condition); a bearer
       SubjectConfirmation (Recipient, NotBefore/NotOnOrAfter); at most one
       AuthnStatement (SessionNotOnOrAfter); NameID (decrypted if needed,
       SPNameQualifier); no EncryptedAttribute;
    5. InResponseTo from signed content, consistent in both places; the
       unsolicited policy.

    Args:
        saml_response_b64: the ``SAMLResponse`` form field as posted.
        sp: our side of the connection.
        idp: the IdP we expect the response from.
        now: the current instant, timezone-aware (the core never reads the clock).

    Raises:
        SAMLError: with a :class:`~deskgate.saml.errors.SAMLErrorCode`.
        ValueError: ``now`` is naive, or python3-saml refuses ``sp``.
    """
    now = require_utc_aware(now)
    compact_b64 = _checked_base64(saml_response_b64)
    response = _parse_and_decrypt(compact_b64, sp)
    # Until _verify_signatures succeeds, everything read is unverified and
    # only ever used to refuse.
    unverified_root = response.document
    unverified_doc = response.decrypted_document if response.encrypted else response.document

    # 1. Shape: what kind of document, schema, status, IDs, one assertion.
    _check_root(unverified_root)
    _check_schema(unverified_root, "")
    _check_status(unverified_root)
    _check_unique_ids(unverified_root)
    _check_id_lengths(unverified_root)
    if response.encrypted:
        _check_schema(unverified_doc, " (after decrypting the assertion)")
        _check_unique_ids(unverified_doc)
        _check_id_lengths(unverified_doc)
    _check_assertion_count(response)
    unverified_assertion = _top_level_assertion(unverified_doc)

    # 2. Signature placement and algorithms (structure only, no crypto yet),
    #    and who sent it: "this came from IdP X" beats "unknown certificate".
    response_signature, assertion_signature = _signatures_in_place(response, unverified_doc, sp)
    _check_issuers(unverified_root, unverified_assertion, idp)

    # 3. Crypto: every signature present verifies with a configured
    #    certificate, and the assertion is covered by one of them.
    verified = _verify_signatures(
        response, unverified_doc, response_signature, assertion_signature, idp
    )
    assertion = _prove_covered(unverified_assertion, verified)
    root = response.document  # covered by a signature only when verified.response_signed

    # 4. Semantics, on verified content.
    _check_destination(root, sp)
    issue_instant = _check_assertion_header(assertion, sp, now)
    conditions_not_on_or_after = _check_conditions(assertion, sp, now)
    confirmation = _check_subject_confirmation(assertion, sp, now)
    session_index, session_not_on_or_after = _check_authn_statement(assertion, now, sp)
    name_id, name_id_format = _name_id(assertion, sp)
    attributes = _attributes(assertion)

    # 5. Request correlation, from signed content only.
    in_response_to = _verified_in_response_to(
        root, confirmation.in_response_to, verified.response_signed
    )
    if in_response_to is None and not sp.allow_unsolicited:
        raise SAMLError(
            SAMLErrorCode.UNSOLICITED_RESPONSE,
            "IdP-initiated (unsolicited) sign-in is disabled for this connection: start the sign-in "
            "from deskgate instead of the IdP dashboard",
            expected="an InResponseTo naming our AuthnRequest",
            received=None,
        )

    not_on_or_after = min(
        t for t in (conditions_not_on_or_after, confirmation.not_on_or_after) if t is not None
    )
    return VerifiedAssertion(
        assertion_id=assertion.get("ID", ""),
        issuer=idp.entity_id,
        name_id=name_id,
        name_id_format=name_id_format,
        session_index=session_index,
        in_response_to=in_response_to,
        issue_instant=issue_instant,
        not_on_or_after=not_on_or_after,
        replay_cache_until=not_on_or_after + sp.clock_skew,
        session_not_on_or_after=session_not_on_or_after,
        attributes=attributes,
        response_signed=verified.response_signed,
        assertion_signed=verified.assertion_signed,
        encrypted=bool(response.encrypted),
        signing_certificate_sha256=sha256_fingerprint(verified.certificate_pem),
    )


# --------------------------------------------------------------------------- input


def _checked_base64(value: str | bytes) -> str:
    """Whitespace-free base64 of at most :data:`MAX_RESPONSE_BYTES` decoded bytes, DOCTYPE-free."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise SAMLError(
                SAMLErrorCode.MALFORMED_BASE64, "SAMLResponse is not base64 (non-ASCII bytes)"
            ) from None
    if not isinstance(value, str):
        raise TypeError("saml_response_b64 must be str or bytes")
    compact = "".join(value.split())  # browsers and some IdPs wrap base64 lines
    # Refuse oversized input before decoding it (base64 is 4 characters per 3 bytes).
    if len(compact) > ((MAX_RESPONSE_BYTES + 2) // 3) * 4:
        raise _too_large(len(compact) * 3 // 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SAMLError(
            SAMLErrorCode.MALFORMED_BASE64,
            "SAMLResponse is not valid base64 (was it URL-decoded twice, or posted by the HTTP-Redirect binding?)",
        ) from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise _too_large(len(raw))
    if not raw.strip():
        raise SAMLError(SAMLErrorCode.MALFORMED_XML, "SAMLResponse is empty")
    # Refuse DTDs before libxml2 ever sees them (see deskgate.saml._xml).
    if re.search(rb"<!DOCTYPE", raw, re.IGNORECASE):
        raise SAMLError(
            SAMLErrorCode.DTD_FORBIDDEN,
            "SAMLResponse contains a DOCTYPE declaration; DTDs and entities are never accepted",
        )
    if has_processing_instruction(raw):
        raise SAMLError(
            SAMLErrorCode.PROCESSING_INSTRUCTION_FORBIDDEN,
            "SAMLResponse contains an XML processing instruction (<?...?>); no IdP sends one, and "
            "they split text (a NameID, an attribute) differently for different parsers",
        )
    return compact


def _too_large(size: int) -> SAMLError:
    return SAMLError(
        SAMLErrorCode.RESPONSE_TOO_LARGE,
        f"SAMLResponse is larger than {MAX_RESPONSE_BYTES} bytes",
        expected=f"<= {MAX_RESPONSE_BYTES} bytes",
        received=f"{size} bytes",
    )


class _ToolkitResponse(OneLogin_Saml2_Response):  # type: ignore[misc]  # python3-saml is untyped
    """python3-saml's Response, decrypting through :mod:`deskgate.saml._decrypt`.

    The constructor (base64 decode, defused parse, decryption of a copy into
    ``decrypted_document``) and every other method are python3-saml's; only
    the decryption hook is replaced, to check algorithms first and reuse a
    cached key manager.
    """

    def _decrypt_assertion(self, xml: etree._Element) -> etree._Element:
        # Exactly one assertion before any RSA work: python3-saml would only
        # decrypt the first, but refusing here bounds the work to one decryption.
        error = _assertion_count_error(xml)
        if error is not None:
            raise error
        encrypted = xml.find(f"{_SAML}EncryptedAssertion")
        if encrypted is not None:
            decrypt_in_place(
                encrypted, self._settings.get_sp_key(), "EncryptedAssertion", f"{_SAML}Assertion"
            )
        return xml


def _parse_and_decrypt(compact_b64: str, sp: SPConfig) -> _ToolkitResponse:
    try:
        return _ToolkitResponse(toolkit_settings(sp), compact_b64)
    except (DTDForbidden, EntitiesForbidden):
        raise SAMLError(
            SAMLErrorCode.DTD_FORBIDDEN, "SAMLResponse contains a DTD or entity declaration"
        ) from None
    except etree.XMLSyntaxError as exc:
        raise SAMLError(
            SAMLErrorCode.MALFORMED_XML, f"SAMLResponse is not well-formed XML: {exc}"
        ) from None


# --------------------------------------------------------------- document shape


def _check_root(root: etree._Element) -> None:
    if root.tag != f"{_SAMLP}Response":
        raise SAMLError(
            SAMLErrorCode.NOT_A_RESPONSE,
            f"expected a SAML 2.0 samlp:Response, got {root.tag}",
            expected=f"{_SAMLP}Response",
            received=str(root.tag),
        )
    if root.get("Version") != "2.0":
        raise SAMLError(
            SAMLErrorCode.UNSUPPORTED_VERSION,
            f"Response Version is {root.get('Version')!r}, only SAML 2.0 is supported",
            expected="2.0",
            received=root.get("Version"),
        )


def _check_schema(document: etree._Element, where: str) -> None:
    error = schema_errors(document)
    if error is not None:
        raise SAMLError(
            SAMLErrorCode.SCHEMA_INVALID,
            f"Response does not match the SAML 2.0 schema{where}: {error}",
            received=error,
        )


def _check_status(root: etree._Element) -> None:
    try:
        status = OneLogin_Saml2_Utils.get_status(root)
    except OneLogin_Saml2_ValidationError as exc:  # schema already requires both; belt and braces
        raise SAMLError(
            SAMLErrorCode.SCHEMA_INVALID, f"Response status is malformed: {exc}"
        ) from None
    code = status.get("code")
    if code == STATUS_SUCCESS:
        return
    codes = [code or "(none)"]
    codes += [
        c.get("Value", "")
        for c in root.iterfind(f"{_SAMLP}Status/{_SAMLP}StatusCode//{_SAMLP}StatusCode")
    ]
    message = text_of(root.find(f"{_SAMLP}Status/{_SAMLP}StatusMessage"))
    printable = " / ".join(c.rsplit(":", 1)[-1] for c in codes if c)
    raise SAMLError(
        SAMLErrorCode.IDP_ERROR_STATUS,
        f"the IdP refused the sign-in: {printable}"
        + (f": {message.strip()}" if message and message.strip() else ""),
        expected=STATUS_SUCCESS,
        received=" ".join(c for c in codes if c)
        + (f" ({message.strip()})" if message and message.strip() else ""),
    )


def _check_unique_ids(document: etree._Element) -> None:
    """Refuse documents where two elements share an ID-like attribute.

    xmlsec resolves ``#id`` References through the document's ID table, which
    also holds ``xml:id``; duplicates are the precondition of signature
    wrapping (the verifier and the reader picking different elements).
    """
    seen: set[str] = set()
    for value in document.xpath("//@ID | //@Id | //@xml:id", namespaces={"xml": XML_NS}):
        if value in seen:
            raise SAMLError(
                SAMLErrorCode.DUPLICATE_ID,
                f"two elements share the ID {value!r} (signature-wrapping attempt?)",
                received=str(value),
            )
        seen.add(str(value))


def _check_id_lengths(document: etree._Element) -> None:
    """Every ID and InResponseTo is at most :data:`MAX_ID_LENGTH` characters."""
    for value in document.xpath("//@ID | //@InResponseTo"):
        if len(value) > MAX_ID_LENGTH:
            name = value.attrname
            owner = etree.QName(value.getparent()).localname
            raise SAMLError(
                SAMLErrorCode.ID_TOO_LONG,
                f"{owner} {name} is {len(value)} characters long; at most {MAX_ID_LENGTH} are accepted",
                expected=f"<= {MAX_ID_LENGTH} characters",
                received=f"{len(value)} characters: {value[:40]}...",
            )


def _assertion_count_error(document: etree._Element) -> SAMLError | None:
    plain = len(document.xpath("//saml:Assertion", namespaces={"saml": NS_SAML}))
    encrypted = len(document.xpath("//saml:EncryptedAssertion", namespaces={"saml": NS_SAML}))
    if plain + encrypted == 1:
        return None
    return SAMLError(
        SAMLErrorCode.WRONG_ASSERTION_COUNT,
        f"Response must contain exactly one assertion anywhere in the document, found {plain} "
        f"Assertion and {encrypted} EncryptedAssertion element(s)",
        expected="1",
        received=str(plain + encrypted),
    )


def _check_assertion_count(response: _ToolkitResponse) -> None:
    if not response.validate_num_assertions():
        error = _assertion_count_error(response.document)
        raise error or SAMLError(
            SAMLErrorCode.WRONG_ASSERTION_COUNT,
            "Response must contain exactly one assertion anywhere in the document",
            expected="1",
        )


def _top_level_assertion(document: etree._Element) -> etree._Element:
    assertion = document.find(f"{_SAML}Assertion")
    if assertion is None:  # the only assertion sits somewhere else (Status, Extensions...)
        raise SAMLError(
            SAMLErrorCode.WRONG_ASSERTION_COUNT,
            "Response has no Assertion as a direct child (an assertion elsewhere in the document is never read)",
            expected="1",
            received="0",
        )
    return assertion


def _check_assertion_header(assertion: etree._Element, sp: SPConfig, now: datetime) -> datetime:
    """Assertion Version is 2.0 and IssueInstant is not in the future; returns IssueInstant."""
    if assertion.get("Version") != "2.0":
        raise SAMLError(
            SAMLErrorCode.UNSUPPORTED_VERSION,
            f"Assertion Version is {assertion.get('Version')!r}, only SAML 2.0 is supported",
            expected="2.0",
            received=assertion.get("Version"),
        )
    issue_instant = _time_attr(assertion, "IssueInstant", "Assertion")
    if issue_instant is None:  # schema requires it; belt and braces
        raise SAMLError(SAMLErrorCode.MALFORMED_TIMESTAMP, "Assertion has no IssueInstant")
    if issue_instant > now + sp.clock_skew:
        raise SAMLError(
            SAMLErrorCode.NOT_YET_VALID,
            f"assertion was issued {humanize(issue_instant - now)} in the future "
            f"(IssueInstant {format_instant(issue_instant)}, now {format_instant(now)}): the IdP's "
            "clock is ahead of ours",
            expected=f"IssueInstant <= {format_instant(now + sp.clock_skew)}",
            received=format_instant(issue_instant),
        )
    return issue_instant


# ------------------------------------------------------------------ signatures


@dataclass(frozen=True)
class _Verified:
    response_signed: bool
    assertion_signed: bool
    certificate_pem: str
    assertion_signature: etree._Element | None


def _signatures_in_place(
    response: _ToolkitResponse, document: etree._Element, sp: SPConfig
) -> tuple[etree._Element | None, etree._Element | None]:
    """Signature elements at the two places SAML allows, with their algorithms checked.

    Our allow-list runs first (it looks at every Reference and gives the
    precise algorithm); python3-saml's ``process_signed_elements`` then
    refuses any Signature anywhere else, duplicates, and Reference/ID
    mismatches (and, configured with ``rejectDeprecatedAlgorithm``, SHA-1 on
    its own as a second line).
    """
    root_signatures = response.document.findall(f"{_DS}Signature")
    response_signature = root_signatures[0] if root_signatures else None
    assertion_signature = None
    assertion = document.find(f"{_SAML}Assertion")
    if assertion is not None:
        found = assertion.findall(f"{_DS}Signature")
        assertion_signature = found[0] if found else None
    if response_signature is not None:
        _signatures.check_signature_policy(
            response_signature, allow_sha1=sp.allow_sha1, is_root=True
        )
    if assertion_signature is not None:
        _signatures.check_signature_policy(
            assertion_signature, allow_sha1=sp.allow_sha1, is_root=False
        )

    try:
        response.process_signed_elements()
    except OneLogin_Saml2_ValidationError as exc:
        if exc.code in _DEPRECATED_CODES:
            raise SAMLError(
                SAMLErrorCode.SHA1_REFUSED,
                f"{exc}; configure the IdP to sign with RSA-SHA256, or allow SHA-1 for this connection",
            ) from None
        if exc.code in _MISPLACED_CODES:
            raise SAMLError(SAMLErrorCode.SIGNATURE_MISPLACED, f"{exc}") from None
        raise SAMLError(
            SAMLErrorCode.SIGNATURE_MISPLACED, f"signature structure refused: {exc}"
        ) from None
    return response_signature, assertion_signature


def _verify_signatures(
    response: _ToolkitResponse,
    document: etree._Element,
    response_signature: etree._Element | None,
    assertion_signature: etree._Element | None,
    idp: IdPConfig,
) -> _Verified:
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
        xmlsec.tree.add_ids(document, ["ID"])
        certificate = _signatures.verify_signature(
            assertion_signature, idp.signing_certificates, owner="Assertion"
        ).certificate_pem
    return _Verified(
        response_signed=response_signature is not None,
        assertion_signed=assertion_signature is not None,
        certificate_pem=certificate,
        assertion_signature=assertion_signature,
    )


def _prove_covered(assertion: etree._Element, verified: _Verified) -> etree._Element:
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


# ------------------------------------------------------------- who and where


def _same_url(a: str, b: str) -> bool:
    """Exact match, except scheme and host compare case-insensitively (python3-saml's normalize_url)."""
    return a == b or OneLogin_Saml2_Utils.normalize_url(a) == OneLogin_Saml2_Utils.normalize_url(b)


def _check_issuers(root: etree._Element, assertion: etree._Element, idp: IdPConfig) -> None:
    """Both Issuers must name the IdP (Response Issuer is optional).

    Checked before signatures on purpose (it only ever refuses): "this came
    from IdP X" is a better diagnosis than "unknown certificate".
    """
    response_issuers = root.findall(f"{_SAML}Issuer")
    if len(response_issuers) == 1:
        value = (text_of(response_issuers[0]) or "").strip()
        if value != idp.entity_id:
            raise SAMLError(
                SAMLErrorCode.WRONG_ISSUER,
                f"Response Issuer was {value!r}, expected {idp.entity_id!r}: the response comes from "
                "another IdP (or another app in the same IdP)",
                expected=idp.entity_id,
                received=value,
            )
    issuer = assertion.find(f"{_SAML}Issuer")
    if issuer is None:  # the schema already requires it
        raise SAMLError(
            SAMLErrorCode.WRONG_ISSUER, "Assertion has no Issuer", expected=idp.entity_id
        )
    value = (text_of(issuer) or "").strip()
    if value != idp.entity_id:
        raise SAMLError(
            SAMLErrorCode.WRONG_ISSUER,
            f"Assertion Issuer was {value!r}, expected {idp.entity_id!r}: the response comes from "
            "another IdP (or another app in the same IdP)",
            expected=idp.entity_id,
            received=value,
        )


def _check_destination(root: etree._Element, sp: SPConfig) -> None:
    destination = root.get("Destination")
    if destination is None:
        return
    if not _same_url(destination, sp.acs_url):
        raise SAMLError(
            SAMLErrorCode.WRONG_DESTINATION,
            f"Response Destination was {destination!r}, expected {sp.acs_url!r}: the IdP's ACS URL "
            "for this app is not ours",
            expected=sp.acs_url,
            received=destination,
        )


# ------------------------------------------------------------------------ time


def _time_attr(element: etree._Element, name: str, owner: str) -> datetime | None:
    value = element.get(name)
    if value is None:
        return None
    try:
        return parse_xs_datetime(value)
    except ValueError:
        raise SAMLError(
            SAMLErrorCode.MALFORMED_TIMESTAMP,
            f"{owner} {name} is not a valid time: {value!r}",
            received=value,
        ) from None


def _check_window(
    owner: str,
    not_before: datetime | None,
    not_on_or_after: datetime | None,
    now: datetime,
    skew: timedelta,
) -> None:
    if not_before is not None and now + skew < not_before:
        raise SAMLError(
            SAMLErrorCode.NOT_YET_VALID,
            f"assertion is not valid for another {humanize(not_before - now)} ({owner} NotBefore "
            f"{format_instant(not_before)}, now {format_instant(now)}): the IdP's clock is ahead of ours",
            expected=f"NotBefore <= {format_instant(now + skew)}",
            received=format_instant(not_before),
        )
    if not_on_or_after is not None and now - skew >= not_on_or_after:
        raise SAMLError(
            SAMLErrorCode.EXPIRED,
            f"assertion expired {humanize(now - not_on_or_after)} ago ({owner} NotOnOrAfter "
            f"{format_instant(not_on_or_after)}, now {format_instant(now)}): check the IdP's clock, "
            "or the response was replayed or held back",
            expected=f"NotOnOrAfter > {format_instant(now - skew)}",
            received=format_instant(not_on_or_after),
        )


_KNOWN_CONDITIONS = frozenset(
    {f"{_SAML}AudienceRestriction", f"{_SAML}OneTimeUse", f"{_SAML}ProxyRestriction"}
)


def _check_conditions(assertion: etree._Element, sp: SPConfig, now: datetime) -> datetime | None:
    """Conditions window and audience; returns Conditions NotOnOrAfter."""
    conditions = assertion.find(f"{_SAML}Conditions")
    if conditions is None:
        raise SAMLError(
            SAMLErrorCode.MISSING_CONDITIONS,
            "Assertion has no Conditions, so it names no audience and no validity window",
        )
    not_before = _time_attr(conditions, "NotBefore", "Conditions")
    not_on_or_after = _time_attr(conditions, "NotOnOrAfter", "Conditions")
    _check_window("Conditions", not_before, not_on_or_after, now, sp.clock_skew)

    for child in conditions:
        if child.tag not in _KNOWN_CONDITIONS:
            kind = child.get(f"{{{NS_XSI}}}type") or str(child.tag)
            raise SAMLError(
                SAMLErrorCode.UNSUPPORTED_CONDITION,
                f"Assertion has a condition we cannot evaluate: {kind}",
                received=kind,
            )
    restrictions = conditions.findall(f"{_SAML}AudienceRestriction")
    if not restrictions:
        raise SAMLError(
            SAMLErrorCode.MISSING_AUDIENCE,
            f"Assertion has no AudienceRestriction; expected it to name {sp.entity_id!r}",
            expected=sp.entity_id,
        )
    for restriction in restrictions:  # SAML core: every AudienceRestriction must be satisfied
        audiences = [(text_of(a) or "").strip() for a in restriction.findall(f"{_SAML}Audience")]
        if sp.entity_id not in audiences:
            shown = ", ".join(audiences) or "(empty)"
            raise SAMLError(
                SAMLErrorCode.WRONG_AUDIENCE,
                f"Audience was {shown}, expected {sp.entity_id}: set the IdP's Audience / "
                "SP Entity ID for this app to our entity ID",
                expected=sp.entity_id,
                received=shown,
            )
    return not_on_or_after


@dataclass(frozen=True)
class _Confirmation:
    in_response_to: str | None
    not_on_or_after: datetime


def _check_subject_confirmation(
    assertion: etree._Element, sp: SPConfig, now: datetime
) -> _Confirmation:
    """At least one bearer SubjectConfirmation must hold (Web SSO profile 4.1.4.2).

    It needs SubjectConfirmationData with Recipient == our ACS URL and a
    NotOnOrAfter still ahead; NotBefore, when present, must have passed.
    Non-bearer confirmations are ignored. The first failing bearer candidate's
    reason is reported when none holds.
    """
    subject = assertion.find(f"{_SAML}Subject")
    candidates = (
        []
        if subject is None
        else [
            sc
            for sc in subject.findall(f"{_SAML}SubjectConfirmation")
            if sc.get("Method") == CM_BEARER
        ]
    )
    if not candidates:
        raise SAMLError(
            SAMLErrorCode.NO_BEARER_CONFIRMATION,
            "Assertion has no bearer SubjectConfirmation (holder-of-key / sender-vouches are not "
            "supported for browser sign-in)",
            expected=CM_BEARER,
        )
    first_error: SAMLError | None = None
    for confirmation in candidates:
        try:
            return _check_one_confirmation(confirmation, sp, now)
        except SAMLError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _check_one_confirmation(
    confirmation: etree._Element, sp: SPConfig, now: datetime
) -> _Confirmation:
    data = confirmation.find(f"{_SAML}SubjectConfirmationData")
    if data is None:
        raise SAMLError(
            SAMLErrorCode.NO_BEARER_CONFIRMATION,
            "bearer SubjectConfirmation has no SubjectConfirmationData (Recipient, NotOnOrAfter)",
        )
    recipient = data.get("Recipient")
    if recipient is None or not _same_url(recipient, sp.acs_url):
        raise SAMLError(
            SAMLErrorCode.WRONG_RECIPIENT,
            f"SubjectConfirmationData Recipient was {recipient!r}, expected {sp.acs_url!r}: set the "
            "IdP's ACS / Reply URL for this app to our ACS URL",
            expected=sp.acs_url,
            received=recipient,
        )
    not_before = _time_attr(data, "NotBefore", "SubjectConfirmationData")
    not_on_or_after = _time_attr(data, "NotOnOrAfter", "SubjectConfirmationData")
    _check_window("SubjectConfirmationData", not_before, not_on_or_after, now, sp.clock_skew)
    if not_on_or_after is None:
        raise SAMLError(
            SAMLErrorCode.NO_BEARER_CONFIRMATION,
            "bearer SubjectConfirmationData has no NotOnOrAfter, so the assertion could be replayed "
            "forever (Web SSO profile 4.1.4.2 requires one)",
            expected="a NotOnOrAfter",
        )
    return _Confirmation(in_response_to=data.get("InResponseTo"), not_on_or_after=not_on_or_after)


def _verified_in_response_to(
    root: etree._Element, confirmation_irt: str | None, response_signed: bool
) -> str | None:
    """InResponseTo from signed content only; the two places must agree.

    The SubjectConfirmationData value is inside the verified assertion. The
    Response attribute is only verified when the Response itself is signed:
    otherwise an attacker could graft one onto an IdP-initiated assertion to
    pass as solicited, so an unsigned one is accepted only when the assertion
    confirms it.
    """
    response_irt = root.get("InResponseTo")
    if (
        response_irt is not None
        and confirmation_irt is not None
        and response_irt != confirmation_irt
    ):
        raise SAMLError(
            SAMLErrorCode.IN_RESPONSE_TO_MISMATCH,
            f"Response InResponseTo {response_irt!r} and SubjectConfirmationData InResponseTo "
            f"{confirmation_irt!r} disagree",
            expected=confirmation_irt,
            received=response_irt,
        )
    if response_irt is not None and confirmation_irt is None and not response_signed:
        raise SAMLError(
            SAMLErrorCode.IN_RESPONSE_TO_MISMATCH,
            f"Response InResponseTo {response_irt!r} is not covered by any signature and the signed "
            "assertion names no request",
            received=response_irt,
        )
    return confirmation_irt if confirmation_irt is not None else response_irt


def _check_authn_statement(
    assertion: etree._Element, now: datetime, sp: SPConfig
) -> tuple[str | None, datetime | None]:
    """At most one AuthnStatement; its SessionNotOnOrAfter must not have passed.

    The Web SSO profile asks for one, but Keycloak omits it when its "Include
    AuthnStatement" client option is off, and the bearer confirmation (not the
    AuthnStatement) is what binds the assertion to this sign-in. Several
    statements are refused: which session would SessionIndex name?
    """
    statements = assertion.findall(f"{_SAML}AuthnStatement")
    if len(statements) > 1:
        raise SAMLError(
            SAMLErrorCode.WRONG_AUTHN_STATEMENT_COUNT,
            f"Assertion must contain at most one AuthnStatement, found {len(statements)}",
            expected="0 or 1",
            received=str(len(statements)),
        )
    if not statements:
        return None, None
    statement = statements[0]
    session_not_on_or_after = _time_attr(statement, "SessionNotOnOrAfter", "AuthnStatement")
    if session_not_on_or_after is not None and now - sp.clock_skew >= session_not_on_or_after:
        raise SAMLError(
            SAMLErrorCode.SESSION_EXPIRED,
            f"the IdP session ended {humanize(now - session_not_on_or_after)} ago "
            f"(SessionNotOnOrAfter {format_instant(session_not_on_or_after)})",
            expected=f"SessionNotOnOrAfter > {format_instant(now - sp.clock_skew)}",
            received=format_instant(session_not_on_or_after),
        )
    return statement.get("SessionIndex"), session_not_on_or_after


# --------------------------------------------------------------------- subject


def _name_id(assertion: etree._Element, sp: SPConfig) -> tuple[str, str | None]:
    subject = assertion.find(f"{_SAML}Subject")
    name_id = None if subject is None else subject.find(f"{_SAML}NameID")
    if name_id is None and subject is not None:
        encrypted = subject.find(f"{_SAML}EncryptedID")
        if encrypted is not None:
            name_id = _decrypt_name_id(encrypted, sp)
    if name_id is None:
        raise SAMLError(SAMLErrorCode.MISSING_NAME_ID, "Assertion Subject has no NameID")
    value = (text_of(name_id) or "").strip()
    if not value:
        raise SAMLError(SAMLErrorCode.MISSING_NAME_ID, "Assertion NameID is empty")
    qualifier = name_id.get("SPNameQualifier")
    if qualifier is not None and qualifier != sp.entity_id:
        raise SAMLError(
            SAMLErrorCode.WRONG_SP_NAME_QUALIFIER,
            f"NameID SPNameQualifier was {qualifier!r}, expected {sp.entity_id!r}",
            expected=sp.entity_id,
            received=qualifier,
        )
    return value, name_id.get("Format")


def _decrypt_name_id(encrypted_id: etree._Element, sp: SPConfig) -> etree._Element:
    # Decrypt a detached copy: the signed tree must stay as it was signed.
    return decrypt_in_place(
        copy.deepcopy(encrypted_id),
        toolkit_settings(sp).get_sp_key(),
        "EncryptedID",
        f"{_SAML}NameID",
    )


def _attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    """Attribute Name -> values, in document order.

    An attribute Name repeated (Keycloak sends multi-valued attributes as one
    Attribute element per value) has its values merged. ``xsi:nil`` values are
    skipped; an AttributeValue holding a NameID (eduPersonTargetedID) yields
    that NameID's text, and never replaces the Subject NameID.
    """
    if assertion.find(f"{_SAML}AttributeStatement/{_SAML}EncryptedAttribute") is not None:
        raise SAMLError(
            SAMLErrorCode.ENCRYPTED_ATTRIBUTE_UNSUPPORTED,
            "Assertion carries EncryptedAttribute elements, which are not supported: encrypt the "
            "whole assertion instead",
        )
    attributes: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{_SAML}AttributeStatement/{_SAML}Attribute"):
        values = attributes.setdefault(attribute.get("Name", ""), [])
        for value in attribute.findall(f"{_SAML}AttributeValue"):
            if value.get(f"{{{NS_XSI}}}nil") in ("true", "1"):
                continue
            nested = value.find(f"{_SAML}NameID")
            values.append((text_of(nested if nested is not None else value) or "").strip())
    return {name: tuple(values) for name, values in attributes.items()}
