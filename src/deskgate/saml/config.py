"""Configuration of one SP <-> IdP pairing, as frozen (hashable) dataclasses.

The core never reads the environment: services build these from their
database rows (``SPConfig`` per tenant connection, ``IdPConfig`` from the
parsed IdP metadata) and pass them in. Being frozen and hashable lets the core
cache per-config work (toolkit settings, parsed keys) safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from deskgate.saml.certs import load_certificate, normalize_certificate_pem

BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

# Clock skew is a tolerance for unsynchronised clocks, not a validity extension.
_MAX_CLOCK_SKEW = timedelta(minutes=10)


def _require_text(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}.{name} must be a non-empty string")
    if value != value.strip():
        raise ValueError(f"{owner}.{name} has leading/trailing whitespace: {value!r}")


def _require_http_url(owner: str, name: str, value: object) -> None:
    _require_text(owner, name, value)
    assert isinstance(value, str)
    has_space = value.split() != [value]  # str.split() splits on exactly what str.isspace() matches
    if not value.lower().startswith(("https://", "http://")) or has_space:
        raise ValueError(f"{owner}.{name} must be an http(s) URL without spaces: {value!r}")


@dataclass(frozen=True)
class SPKeyPair:
    """An SP private key and its certificate (PEM), besides the current one during a rollover."""

    private_key_pem: str = field(repr=False)
    certificate_pem: str

    def __post_init__(self) -> None:
        if (
            not isinstance(self.private_key_pem, str)
            or "PRIVATE KEY-----" not in self.private_key_pem
        ):
            raise ValueError("SPKeyPair.private_key_pem must be a PEM private key")
        if not isinstance(self.certificate_pem, str):
            raise TypeError("SPKeyPair.certificate_pem must be a PEM certificate string")
        object.__setattr__(self, "certificate_pem", normalize_certificate_pem(self.certificate_pem))


@dataclass(frozen=True)
class SPConfig:
    """Our Service Provider side of one connection.

    Attributes:
        entity_id: SP entity ID; must appear in every assertion's Audience.
            deskgate uses ``{BASE}/api/v1/sso/{token}/metadata/{idp}``.
        acs_url: Assertion Consumer Service URL; must equal the Response
            Destination (when present) and the SubjectConfirmationData Recipient.
            deskgate uses ``{BASE}/api/v1/sso/{token}/acs/{idp}``.
        private_key_pem: SP private key (decrypts EncryptedAssertion/EncryptedID,
            signs AuthnRequests).
        certificate_pem: SP certificate published in SP metadata.
        allow_sha1: accept RSA-SHA1 signatures / SHA-1 digests (off: SHA-1 is
            collision-broken; enable only for an IdP that cannot do better).
        clock_skew: tolerance applied to every NotBefore/NotOnOrAfter/IssueInstant
            comparison (0 .. 10 minutes).
        allow_unsolicited: accept IdP-initiated responses (no InResponseTo).
        sign_authn_requests: sign HTTP-Redirect AuthnRequests (SigAlg/Signature
            query parameters, RSA-SHA256) and advertise AuthnRequestsSigned.
        next_key: during an SP key rollover, the new key: published in SP metadata
            beside the current one and tried for decryption; never signs.
        previous_key: after a rollover, the retired key for a short overlap: tried
            for decryption only (neither published nor signing).
    """

    entity_id: str
    acs_url: str
    private_key_pem: str = field(repr=False)
    certificate_pem: str
    allow_sha1: bool = False
    clock_skew: timedelta = timedelta(minutes=2)
    allow_unsolicited: bool = True
    sign_authn_requests: bool = True
    next_key: SPKeyPair | None = None
    previous_key: SPKeyPair | None = None

    @property
    def rollover_decryption_keys(self) -> tuple[str, ...]:
        """Private keys tried after the current one when decrypting (next, then previous)."""
        return tuple(k.private_key_pem for k in (self.next_key, self.previous_key) if k)

    def __post_init__(self) -> None:
        _require_text("SPConfig", "entity_id", self.entity_id)
        _require_http_url("SPConfig", "acs_url", self.acs_url)
        if (
            not isinstance(self.private_key_pem, str)
            or "PRIVATE KEY-----" not in self.private_key_pem
        ):
            raise ValueError("SPConfig.private_key_pem must be a PEM private key")
        if not isinstance(self.certificate_pem, str):
            raise TypeError("SPConfig.certificate_pem must be a PEM certificate string")
        object.__setattr__(self, "certificate_pem", normalize_certificate_pem(self.certificate_pem))
        if not isinstance(self.clock_skew, timedelta) or not (
            timedelta(0) <= self.clock_skew <= _MAX_CLOCK_SKEW
        ):
            raise ValueError(
                f"SPConfig.clock_skew must be a timedelta between 0 and {_MAX_CLOCK_SKEW}"
            )


@dataclass(frozen=True)
class IdPConfig:
    """The Identity Provider side of one connection (usually from :func:`parse_idp_metadata`).

    Attributes:
        entity_id: IdP entity ID; Response/Assertion Issuer must equal it.
        sso_url: SingleSignOnService location the AuthnRequest is sent to.
        signing_certificates: every certificate the IdP may sign with (several
            during a rollover). Given as PEM or bare base64; stored as canonical
            PEM. Signatures are verified only against these, never against a
            certificate carried in the message.
        sso_binding: binding of ``sso_url`` (HTTP-Redirect or HTTP-POST).
    """

    entity_id: str
    sso_url: str
    signing_certificates: tuple[str, ...]
    sso_binding: str = BINDING_HTTP_REDIRECT

    def __post_init__(self) -> None:
        _require_text("IdPConfig", "entity_id", self.entity_id)
        _require_http_url("IdPConfig", "sso_url", self.sso_url)
        if not isinstance(self.signing_certificates, tuple) or not self.signing_certificates:
            raise ValueError(
                "IdPConfig.signing_certificates must be a non-empty tuple of certificates"
            )
        normalized: list[str] = []
        for index, cert in enumerate(self.signing_certificates):
            try:
                pem = normalize_certificate_pem(cert)
                load_certificate(pem)
            except (TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"IdPConfig.signing_certificates[{index}]: {exc}") from None
            if pem not in normalized:
                normalized.append(pem)
        object.__setattr__(self, "signing_certificates", tuple(normalized))
        if self.sso_binding not in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
            raise ValueError(
                f"IdPConfig.sso_binding must be HTTP-Redirect or HTTP-POST, not {self.sso_binding!r}"
            )
