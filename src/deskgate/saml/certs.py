"""X.509 certificate helpers shared by metadata parsing and response validation.

Certificates arrive as PEM, as bare base64 (metadata ``ds:X509Certificate``
text, possibly wrapped) or with stray whitespace; :func:`normalize_certificate_pem`
turns all of these into one canonical PEM so configs compare and hash equal.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning

_PEM_BODY = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class CertificateInfo:
    """What an admin needs to recognise a certificate.

    Attributes:
        subject: RFC 4514 subject, e.g. ``CN=Microsoft Azure Federated SSO Certificate``.
        sha256_fingerprint: upper-case hex pairs joined by ``:`` (how IdP consoles show it).
        not_after: expiry instant, UTC-aware.
        expired: ``not_after`` is before the ``now`` the info was computed for.
    """

    subject: str
    sha256_fingerprint: str
    not_after: datetime
    expired: bool


def certificate_body_b64(pem_or_b64: str) -> str:
    """The base64 DER of a certificate given as PEM or bare (possibly wrapped) base64.

    Raises:
        ValueError: the text is not a single base64 certificate body.
    """
    text = pem_or_b64.strip()
    match = _PEM_BODY.search(text)
    body = match.group(1) if match else text
    body = _WHITESPACE.sub("", body)
    if not body:
        raise ValueError("empty certificate")
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"certificate is not valid base64: {exc}") from None
    if der.startswith(b"-----BEGIN CERTIFICATE-----"):
        # Seen in the wild: metadata carrying base64 of a whole PEM file.
        return certificate_body_b64(der.decode("ascii", "replace"))
    return body


@functools.lru_cache(maxsize=1024)
def normalize_certificate_pem(pem_or_b64: str) -> str:
    """Canonical PEM (64-column lines, trailing newline) for a PEM or bare-base64 certificate.

    Only the encoding is checked here; :func:`load_certificate` checks the DER. Cached:
    services rebuild their configs per request from the same few stored certificates.
    """
    body = certificate_body_b64(pem_or_b64)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


@functools.lru_cache(maxsize=1024)
def load_certificate(pem_or_b64: str) -> x509.Certificate:
    """Parse a configured certificate (cached: configs repeat the same few certificates).

    Raises:
        ValueError: not an X.509 certificate.
    """
    return parse_certificate(pem_or_b64)


def parse_certificate(pem_or_b64: str) -> x509.Certificate:
    """Parse a certificate, uncached: for certificates a message names (KeyInfo).

    Attacker text must never be a cache key: padded with distinct whitespace, each
    entry would pin up to a whole response (~1 MB) until evicted.

    Raises:
        ValueError: not an X.509 certificate.
    """
    body = certificate_body_b64(pem_or_b64)
    try:
        # Old IdP certificates (ADFS, OneLogin) often have negative serial
        # numbers; cryptography warns about those. Not our concern here. (The
        # filter change is process-wide for its short duration; the function
        # is cached, so this runs once per certificate.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_der_x509_certificate(base64.b64decode(body))
    except ValueError as exc:
        raise ValueError(f"not a valid X.509 certificate: {exc}") from None


def format_fingerprint(digest: bytes) -> str:
    """``AB:CD:...`` upper-case hex pairs."""
    return ":".join(f"{byte:02X}" for byte in digest)


@functools.lru_cache(maxsize=1024)
def sha256_fingerprint(pem_or_b64: str) -> str:
    """SHA-256 fingerprint of a configured certificate's DER, ``AB:CD:...`` (cached)."""
    return certificate_fingerprint(load_certificate(pem_or_b64))


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint of ``certificate``'s DER, ``AB:CD:...``."""
    return format_fingerprint(certificate.fingerprint(hashes.SHA256()))


def der_fingerprint(base64_der: str) -> str | None:
    """SHA-256 of the DER that bare (possibly wrapped) base64 encodes, ``AB:CD:...``; ``None``
    when it is not base64.

    Equal to :func:`sha256_fingerprint` for a certificate in the form ds:X509Certificate
    carries it, without parsing it as X.509: a cheap, uncached look at message text.
    """
    try:
        der = base64.b64decode("".join(base64_der.split()), validate=True)
    except binascii.Error:
        return None
    return format_fingerprint(hashlib.sha256(der).digest())


def certificate_info(pem_or_b64: str, now: datetime) -> CertificateInfo:
    """Describe a certificate; ``expired`` is judged against ``now`` (UTC-aware)."""
    cert = load_certificate(pem_or_b64)
    not_after = cert.not_valid_after_utc
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        sha256_fingerprint=sha256_fingerprint(pem_or_b64),
        not_after=not_after,
        expired=not_after < now.astimezone(UTC),
    )
