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
python3-saml provides the parser settings and DTD/entity refusal (its
``xmlparser``), the XSDs, the SP settings (key formatting, configuration
checks) and the rules of its signature-placement, assertion-count and status
checks (``process_signed_elements``, ``validate_num_assertions``,
``get_status``), which we make with lxml's iterators and XPath compiled once
(the toolkit compiles an XPath per call, and its element class re-filters every
child iteration in Python).
The cryptography is xmlsec, the library python3-saml drives, called the way
python3-saml calls it (``validate_node_sign``, ``decrypt_element``) with
algorithm allow-lists and cached keys added (see ``_signatures`` and
``_decrypt``). We do **not** call ``OneLogin_Saml2_Response.is_valid``:

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

The checks live by job: ``_response_input`` (base64, size, parse, decrypt),
``_response_shape`` (root, schema, status, IDs, assertion count),
``_response_signatures`` (placement, verification, coverage),
``_assertion_conditions`` (issuers, destination, time windows, audience,
subject confirmation, InResponseTo) and ``_assertion_identity`` (NameID,
attributes); this module runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deskgate.saml import _assertion_conditions as conditions
from deskgate.saml import _assertion_identity as identity
from deskgate.saml import _response_shape as shape
from deskgate.saml import _response_signatures as signatures
from deskgate.saml._response_input import MAX_RESPONSE_BYTES, parse_response
from deskgate.saml._response_shape import MAX_ID_LENGTH
from deskgate.saml._time import require_utc_aware
from deskgate.saml.certs import sha256_fingerprint
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

__all__ = ["MAX_ID_LENGTH", "MAX_RESPONSE_BYTES", "VerifiedAssertion", "validate_response"]


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
    response = parse_response(saml_response_b64, sp)
    # Until verify_signatures succeeds, everything read is unverified and
    # only ever used to refuse.
    unverified_root = response.document
    unverified_doc = response.assertion_document

    # 1. Shape: what kind of document, schema, status, IDs, one assertion.
    shape.check_root(unverified_root)
    shape.check_schema(unverified_root, "")
    shape.check_status(unverified_root)
    shape.check_ids(unverified_root)
    if response.encrypted:
        shape.check_schema(unverified_doc, " (after decrypting the assertion)")
        shape.check_ids(unverified_doc)
    shape.check_assertion_count(unverified_root, unverified_doc if response.encrypted else None)
    unverified_assertion = shape.top_level_assertion(unverified_doc)

    # 2. Signature placement and algorithms (structure only, no crypto yet),
    #    and who sent it: "this came from IdP X" beats "unknown certificate".
    response_signature, assertion_signature = signatures.signatures_in_place(response, sp)
    conditions.check_issuers(unverified_root, unverified_assertion, idp)

    # 3. Crypto: every signature present verifies with a configured
    #    certificate, and the assertion is covered by one of them.
    verified = signatures.verify_signatures(response, response_signature, assertion_signature, idp)
    assertion = signatures.prove_covered(unverified_assertion, verified)
    root = response.document  # covered by a signature only when verified.response_signed

    # 4. Semantics, on verified content.
    conditions.check_destination(root, sp)
    issue_instant = conditions.check_assertion_header(assertion, sp, now)
    conditions_not_on_or_after = conditions.check_conditions(assertion, sp, now)
    confirmation = conditions.check_subject_confirmation(assertion, sp, now)
    session_index, session_not_on_or_after = conditions.check_authn_statement(assertion, now, sp)
    name_id, name_id_format = identity.name_id(assertion, sp)
    attributes = identity.attributes(assertion)

    # 5. Request correlation, from signed content only.
    in_response_to = conditions.verified_in_response_to(
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
        encrypted=response.encrypted,
        signing_certificate_sha256=sha256_fingerprint(verified.certificate_pem),
    )
