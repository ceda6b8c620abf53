"""Throwaway RSA key pairs and self-signed certificates for SAML tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from deskgate.saml.keys import generate_sp_keypair


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
    """A fresh RSA-2048 key and self-signed SHA-256 certificate (deskgate's own SP key maker)."""
    key_pem, cert_pem = generate_sp_keypair(
        dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        common_name=common_name,
        validity=dt.timedelta(days=days),
    )
    return KeyPair(key_pem=key_pem, cert_pem=cert_pem)


@cache
def shared_key_pair(common_name: str) -> KeyPair:
    """Like make_key_pair, but generated once per process for each name (saves ~50 ms a call)."""
    return make_key_pair(common_name)
