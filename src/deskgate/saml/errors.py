"""Errors raised by the SAML core.

Every refusal is a :class:`SAMLError` carrying a stable machine ``code`` (a
:class:`SAMLErrorCode`, safe to log, count and branch on), a human ``message``
that says what to fix, and, where it makes sense, the ``expected`` and
``received`` values so an admin page can show them side by side.

Messages may quote values taken from the (possibly hostile) document; callers
rendering them in HTML must escape them like any other user input.
"""

from __future__ import annotations

from enum import StrEnum


class SAMLErrorCode(StrEnum):
    """Stable reasons for refusing a SAML message. Values never change meaning."""

    # --- transport / XML ------------------------------------------------------
    MALFORMED_BASE64 = "malformed_base64"
    """SAMLResponse is not valid base64."""
    RESPONSE_TOO_LARGE = "response_too_large"
    """Decoded document exceeds the size limit (denial-of-service guard)."""
    MALFORMED_XML = "malformed_xml"
    """Not well-formed XML (or empty)."""
    DTD_FORBIDDEN = "dtd_forbidden"
    """Document contains a DOCTYPE / entity declarations (XXE, billion laughs, parser differentials)."""
    NOT_A_RESPONSE = "not_a_response"
    """Root element is not ``samlp:Response`` (e.g. a LogoutResponse, SOAP envelope, SAML 1.1)."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """Response or Assertion Version is not 2.0."""
    SCHEMA_INVALID = "schema_invalid"
    """Does not match the SAML 2.0 protocol XML schema (checked on the decrypted document too)."""
    DUPLICATE_ID = "duplicate_id"
    """Two elements share an ID (signature-wrapping precondition, CVE-2022-41912 style)."""
    ID_TOO_LONG = "id_too_long"
    """A Response/Assertion ID or an InResponseTo is longer than the limit (256 characters)."""
    PROCESSING_INSTRUCTION_FORBIDDEN = "processing_instruction_forbidden"
    """Document (or decrypted assertion) contains an XML processing instruction; no IdP sends
    one, and parsers disagree about them (text split around ``<?pi?>``)."""
    EXTERNAL_REFERENCE = "external_reference"
    """A CipherReference, or a URI / RetrievalMethod that is not a same-document ``#id``: it would
    make the SP open a file or a URL while checking the message."""

    # --- status ---------------------------------------------------------------
    IDP_ERROR_STATUS = "idp_error_status"
    """The IdP answered with a non-Success status; ``received`` has its code and message."""

    # --- assertion shape ------------------------------------------------------
    WRONG_ASSERTION_COUNT = "wrong_assertion_count"
    """Not exactly one Assertion/EncryptedAssertion anywhere in the document."""
    UNSUPPORTED_ENCRYPTION_ALGORITHM = "unsupported_encryption_algorithm"
    """EncryptedAssertion/EncryptedID uses an algorithm outside the allow-list (e.g. RSA-1_5)."""
    ENCRYPTION_STRUCTURE_REFUSED = "encryption_structure_refused"
    """EncryptedAssertion/EncryptedID holds an element outside the XML-Encryption subset IdPs use,
    or more EncryptedData/EncryptedKey elements than the limits (bounds the RSA work)."""
    DECRYPTION_FAILED = "decryption_failed"
    """EncryptedAssertion/EncryptedID could not be decrypted with the SP key."""
    ENCRYPTED_ATTRIBUTE_UNSUPPORTED = "encrypted_attribute_unsupported"
    """EncryptedAttribute present; not supported."""
    MISSING_CONDITIONS = "missing_conditions"
    """Assertion has no Conditions element."""
    UNSUPPORTED_CONDITION = "unsupported_condition"
    """Conditions contains a condition we cannot evaluate (SAML core: must refuse)."""
    WRONG_AUTHN_STATEMENT_COUNT = "wrong_authn_statement_count"
    """Assertion contains more than one AuthnStatement (zero is accepted: Keycloak can omit it)."""

    # --- signatures -----------------------------------------------------------
    UNSIGNED = "unsigned"
    """Neither the Response nor the Assertion carries a signature."""
    SIGNATURE_MISPLACED = "signature_misplaced"
    """A Signature is not where SAML puts it, references something other than its parent, or is duplicated."""
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    """Signature, digest, canonicalization or transform algorithm outside the allow-list."""
    SHA1_REFUSED = "sha1_refused"
    """Signed with RSA-SHA1 / SHA-1 digest while ``SPConfig.allow_sha1`` is False."""
    UNKNOWN_SIGNING_CERTIFICATE = "unknown_signing_certificate"
    """Signature does not verify with any configured IdP certificate and the KeyInfo names a certificate we don't know."""
    SIGNATURE_INVALID = "signature_invalid"
    """Signature does not verify with the configured IdP certificate(s) (content altered, or key mismatch)."""

    # --- who / where ----------------------------------------------------------
    WRONG_ISSUER = "wrong_issuer"
    """Response or Assertion Issuer differs from the IdP entity ID (or the Assertion has none)."""
    MISSING_AUDIENCE = "missing_audience"
    """No AudienceRestriction: the assertion is not addressed to anyone."""
    WRONG_AUDIENCE = "wrong_audience"
    """An AudienceRestriction does not include our SP entity ID."""
    WRONG_DESTINATION = "wrong_destination"
    """Response Destination is present but is not our ACS URL (an empty Destination counts)."""
    WRONG_RECIPIENT = "wrong_recipient"
    """SubjectConfirmationData Recipient is missing or is not our ACS URL."""

    # --- time -------------------------------------------------------------------
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    """A time attribute is not an xs:dateTime."""
    NOT_YET_VALID = "not_yet_valid"
    """NotBefore (Conditions or SubjectConfirmationData) or IssueInstant is in the future beyond the clock skew."""
    EXPIRED = "expired"
    """NotOnOrAfter (Conditions or SubjectConfirmationData) has passed, beyond the clock skew."""
    SESSION_EXPIRED = "session_expired"
    """AuthnStatement SessionNotOnOrAfter has passed."""

    # --- subject ------------------------------------------------------------------
    NO_BEARER_CONFIRMATION = "no_bearer_confirmation"
    """No usable bearer SubjectConfirmation (none, no SubjectConfirmationData, or no NotOnOrAfter in it)."""
    MISSING_NAME_ID = "missing_name_id"
    """Subject has no (or an empty) NameID."""
    WRONG_SP_NAME_QUALIFIER = "wrong_sp_name_qualifier"
    """NameID SPNameQualifier present and not our SP entity ID."""
    IN_RESPONSE_TO_MISMATCH = "in_response_to_mismatch"
    """Response and SubjectConfirmationData InResponseTo disagree, or the only InResponseTo is not covered by a signature."""
    UNSOLICITED_RESPONSE = "unsolicited_response"
    """No InResponseTo (IdP-initiated) while ``SPConfig.allow_unsolicited`` is False."""


class SAMLError(Exception):
    """A SAML message (or metadata) was refused.

    Attributes:
        code: stable reason, see :class:`SAMLErrorCode`.
        message: one human sentence saying what is wrong and, when known, what to fix.
        expected: what we were configured to accept (``None`` when not applicable).
        received: what the document said (``None`` when absent or not applicable).
    """

    def __init__(
        self,
        code: SAMLErrorCode | str,
        message: str,
        *,
        expected: str | None = None,
        received: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.expected = expected
        self.received = received

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={str(self.code)!r}, message={self.message!r}, "
            f"expected={self.expected!r}, received={self.received!r})"
        )


class MetadataErrorCode(StrEnum):
    """Stable reasons for refusing IdP metadata."""

    NOT_XML = "not_xml"
    DTD_FORBIDDEN = "dtd_forbidden"
    NOT_METADATA = "not_metadata"
    AMBIGUOUS_ENTITY = "ambiguous_entity"
    MISSING_ENTITY_ID = "missing_entity_id"
    NO_IDP_DESCRIPTOR = "no_idp_descriptor"
    NO_SSO_SERVICE = "no_sso_service"
    NO_SIGNING_CERTIFICATE = "no_signing_certificate"
    INVALID_CERTIFICATE = "invalid_certificate"
    INVALID_ENDPOINT = "invalid_endpoint"
    """A browser-facing SSO/SLO Location is not a usable https URL (http only for loopback, or when allowed)."""


class MetadataError(SAMLError):
    """IdP metadata could not be used; ``code`` is a :class:`MetadataErrorCode`."""
