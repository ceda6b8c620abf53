"""SP key rollover in the pure core: the next key is published beside the current one and
decrypts; the previous key decrypts but is not published; only the current key signs."""

from __future__ import annotations

import dataclasses

import pytest
from lxml import etree

from deskgate.saml.acs import validate_response
from deskgate.saml.certs import sha256_fingerprint
from deskgate.saml.config import SPConfig, SPKeyPair
from deskgate.saml.errors import SAMLError, SAMLErrorCode
from deskgate.saml.metadata import render_sp_metadata

# Keys come from the `factory` fixture: the module the SAML tests' fixtures sign with.
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


def _pair(key) -> SPKeyPair:  # type: ignore[no-untyped-def]
    return SPKeyPair(private_key_pem=key.private_key_pem, certificate_pem=key.certificate_pem)


@pytest.fixture
def rolling(sp_config: SPConfig, factory) -> SPConfig:  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        sp_config,
        next_key=_pair(factory.keypair("sp-next")),
        previous_key=_pair(factory.keypair("sp-previous")),
    )


def test_metadata_lists_the_current_then_the_next_certificate_for_both_uses(
    rolling, sp_key, factory
):
    root = etree.fromstring(render_sp_metadata(rolling).encode())
    published = [
        (d.get("use"), sha256_fingerprint(d.findtext(f".//{{{DS}}}X509Certificate")))
        for d in root.iter(f"{{{MD}}}KeyDescriptor")
    ]
    current, new = (
        sha256_fingerprint(sp_key.certificate_pem),
        sha256_fingerprint(factory.keypair("sp-next").certificate_pem),
    )
    assert published == [
        ("signing", current),
        ("encryption", current),
        ("signing", new),
        ("encryption", new),
    ]


@pytest.mark.parametrize("label", ["sp-next", "sp-previous"])
def test_assertions_encrypted_to_the_other_keys_are_decrypted(
    rolling, idp_config, spec, sp_key, factory, label
):
    for recipient in (factory.keypair(label), sp_key):
        response = factory.make_response(spec, encrypt_for=recipient.certificate_pem)
        verified = validate_response(response, rolling, idp_config, spec.now)
        assert verified.encrypted and verified.name_id == "agent@example.com"


def test_an_encrypted_name_id_is_decrypted_with_the_next_key(rolling, idp_config, spec, factory):
    assertion = factory.build_assertion(spec)
    factory.encrypt_name_id(assertion, factory.keypair("sp-next").certificate_pem)
    signed = factory.sign_element(assertion, factory.keypair("idp"))
    verified = validate_response(
        factory.b64(factory.wrap(signed, spec)), rolling, idp_config, spec.now
    )
    assert verified.name_id == "agent@example.com"


def test_a_key_we_do_not_hold_is_refused_after_trying_each_of_ours(
    rolling, idp_config, spec, factory
):
    response = factory.make_response(
        spec, encrypt_for=factory.keypair("sp-stranger").certificate_pem
    )
    with pytest.raises(SAMLError) as refused:
        validate_response(response, rolling, idp_config, spec.now)
    assert refused.value.code == SAMLErrorCode.DECRYPTION_FAILED
    assert "with our 3 SP keys" in refused.value.message
