"""SP key pair generation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from deskgate.saml.config import SPConfig
from deskgate.saml.keys import generate_sp_keypair, keypair_matches

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated() -> tuple[str, str]:
    return generate_sp_keypair(NOW, common_name="deskgate test tenant")


def test_self_signed_rsa_2048_valid_about_ten_years(generated):
    private_key_pem, certificate_pem = generated
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=deskgate test tenant"
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_before_utc + timedelta(minutes=10)
    assert timedelta(days=3650) <= cert.not_valid_after_utc - NOW <= timedelta(days=3654)
    assert private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_pair_matches_and_is_usable_as_sp_config(generated, factory):
    private_key_pem, certificate_pem = generated
    assert keypair_matches(private_key_pem, certificate_pem)
    assert not keypair_matches(private_key_pem, factory.keypair("other").certificate_pem)
    assert not keypair_matches("garbage", certificate_pem)
    SPConfig(
        "https://sp.example.test/m", "https://sp.example.test/acs", private_key_pem, certificate_pem
    )


def test_each_call_makes_a_new_key(generated):
    assert generate_sp_keypair(NOW)[0] != generated[0]


@pytest.mark.parametrize(
    "kwargs", [{"key_size": 1024}, {"validity": timedelta(0)}], ids=["weak-key", "no-validity"]
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        generate_sp_keypair(NOW, **kwargs)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        generate_sp_keypair(NOW.replace(tzinfo=None))
