"""SP key material: a self-signed RSA certificate for SAML signing and encryption.

SAML trust is pinned by metadata exchange, not by a CA, so a self-signed
certificate is the norm; its validity period matters only to IdPs that check
it (a few warn on expiry), hence a long one by default.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from deskgate.saml._time import require_utc_aware

__all__ = ["DEFAULT_VALIDITY", "generate_sp_keypair", "keypair_matches"]

#: About ten years.
DEFAULT_VALIDITY = timedelta(days=3653)


def generate_sp_keypair(
    now: datetime,
    *,
    common_name: str = "deskgate SAML SP",
    validity: timedelta = DEFAULT_VALIDITY,
    key_size: int = 2048,
) -> tuple[str, str]:
    """Generate an RSA key and a self-signed certificate valid from ``now`` for ``validity``.

    Args:
        now: issue instant (timezone-aware); notBefore is ``now`` minus five
            minutes so IdPs with a slightly late clock accept it at once.
        common_name: subject/issuer CN shown in IdP consoles.
        validity: certificate lifetime (default about ten years).
        key_size: RSA modulus size in bits (>= 2048).

    Returns:
        ``(private_key_pem, certificate_pem)``: PKCS#8 unencrypted key and X.509 certificate, PEM text.
    """
    now = require_utc_aware(now)
    if key_size < 2048:
        raise ValueError("key_size must be at least 2048 bits")
    if validity <= timedelta(0):
        raise ValueError("validity must be positive")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before = now - timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    private_key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return private_key_pem, certificate_pem


def keypair_matches(private_key_pem: str, certificate_pem: str) -> bool:
    """``True`` when the certificate carries the public half of the private key.

    Useful before storing an uploaded key/certificate pair.
    """
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
        cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except (ValueError, TypeError):
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) == cert.public_key().public_bytes(serialization.Encoding.DER, public)
