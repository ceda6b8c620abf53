"""Throwaway RSA key pairs and self-signed certificates for SAML tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    """A PEM private key (PKCS#8, unencrypted) and its self-signed certificate."""

    key_pem: str
    cert_pem: str

    @property
    def cert_base64(self) -> str:
        """The certificate as one base64 line, as it appears in <ds:X509Certificate>."""
        body = self.cert_pem.strip().splitlines()[1:-1]
        return "".join(body)


def make_key_pair(common_name: str, *, days: int = 3650) -> KeyPair:
    """Generate a fresh RSA-2048 key and a self-signed SHA-256 certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyPair(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode())


@cache
def shared_key_pair(common_name: str) -> KeyPair:
    """Like make_key_pair, but generated once per process for each name (saves ~50 ms a call)."""
    return make_key_pair(common_name)
