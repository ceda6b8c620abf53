"""Validation never opens a file or a socket (issue 8, finding 1).

An EncryptedAssertion whose ``xenc:CipherReference`` said ``file:///dev/zero`` (AES key
wrapped to the SP certificate from SP metadata) made xmlsec read without bound; other URIs
opened /etc/hostname and named pipes. Every :data:`samlattacks.ATTACKS` shape must be
refused with its reason, fast, with nothing opened at the Python level (audit hook), by
xmlsec (its IO recorder) or at all (a named pipe that notices readers); and validating the
whole public corpus must open nothing either.
"""

from __future__ import annotations

import time

import pytest

from deskgate.saml import _xmlsec_io
from deskgate.saml.acs import validate_response
from deskgate.saml.errors import SAMLError

import samlattacks
import samlfactory as f
from test_corpus import CASES, prepare_case, validate_prepared


@pytest.fixture
def fifo(tmp_path):  # type: ignore[no-untyped-def]
    trap = samlattacks.FifoTrap(tmp_path)
    yield trap
    trap.close()


@pytest.mark.parametrize("attack", samlattacks.ATTACKS, ids=[a.name for a in samlattacks.ATTACKS])
def test_attack_is_refused_before_anything_is_opened(
    attack, spec, sp_key, sp_config, idp_config, fifo
):  # type: ignore[no-untyped-def]
    saml_response = f.b64(attack.build(spec, sp_key.certificate_pem, fifo.path))
    with samlattacks.address_space_cap(), samlattacks.watch_io() as watch:
        started = time.perf_counter()
        with pytest.raises(SAMLError) as refused:
            validate_response(saml_response, sp_config, idp_config, f.NOW)
        elapsed = time.perf_counter() - started
    assert str(refused.value.code) == attack.reason, refused.value
    watch.assert_nothing_opened()
    assert not fifo.opened.is_set(), "the named pipe was opened"
    assert elapsed < 1.0


def test_the_valid_encrypted_shapes_still_decrypt(spec, sp_key, sp_config, idp_config):  # type: ignore[no-untyped-def]
    """The RetrievalMethod layout Okta and others send (#id to a sibling EncryptedKey) is kept."""
    for rewrite in (None, f.with_detached_key):
        xml = f.encrypted_response_xml(spec, sp_key.certificate_pem, rewrite=rewrite)
        with samlattacks.watch_io() as watch:
            verified = validate_response(f.b64(xml), sp_config, idp_config, f.NOW)
        assert verified.encrypted and verified.name_id == "agent@example.com"
        watch.assert_nothing_opened()


def test_xmlsec_itself_can_open_nothing(sp_key, fifo):  # type: ignore[no-untyped-def]
    """The structural layer alone: xmlsec, handed a CipherReference directly (no pre-check),
    refuses to open it, and the attempt is recorded."""
    import xmlsec

    holder = f.with_cipher_reference(
        f.parse(
            f.to_bytes(
                f.encrypt_assertion(f.build_assertion(f.ResponseSpec()), sp_key.certificate_pem)
            )
        ),
        f"file://{fifo.path}",
    )
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_key.private_key_pem, xmlsec.KeyFormat.PEM, None))
    with samlattacks.watch_io() as watch, pytest.raises(xmlsec.Error):
        xmlsec.EncryptionContext(manager).decrypt(holder.find(f"{f.XENC}EncryptedData"))
    assert watch.xmlsec_uris and set(watch.xmlsec_uris) == {f"file://{fifo.path}"}
    assert not fifo.opened.is_set()


def test_reinstalling_the_guard_is_idempotent():
    _xmlsec_io.install()
    with samlattacks.watch_io() as watch:
        pass
    watch.assert_nothing_opened()


def test_validating_the_whole_corpus_opens_no_file_or_socket(corpus):  # type: ignore[no-untyped-def]
    prepared = [prepare_case(corpus, case) for case in CASES]  # reads the files, before watching
    validate_prepared(prepared[0])  # lazy imports on first use, before watching
    with samlattacks.watch_io() as watch:
        outcomes = [validate_prepared(p) for p in prepared]
    watch.assert_nothing_opened()
    assert len(outcomes) == len(CASES) > 250


def _key_with_x509_and_a_second_key(holder):  # type: ignore[no-untyped-def]
    """What ADFS/Shibboleth send during an SP certificate rollover: the session key wrapped twice
    (here to a certificate we don't hold, then to ours), each EncryptedKey naming its certificate."""
    from lxml import etree

    key_info = holder.find(f"{f.XENC}EncryptedData/{f.DS}KeyInfo")
    ours = key_info.find(f"{f.XENC}EncryptedKey")
    other = f.parse(f.to_bytes(ours))
    other.find(f"{f.XENC}CipherData/{f.XENC}CipherValue").text = "AAAA"
    for key, cert in ((other, f.keypair("other-sp")), (ours, f.keypair("sp"))):
        inner = etree.SubElement(key, f"{f.DS}KeyInfo")
        key.insert(1, inner)
        etree.SubElement(
            etree.SubElement(inner, f"{f.DS}X509Data"), f"{f.DS}X509Certificate"
        ).text = cert.certificate_b64
    key_info.insert(0, other)
    return holder


def test_two_encrypted_keys_with_certificates_still_decrypt(spec, sp_key, sp_config, idp_config):  # type: ignore[no-untyped-def]
    xml = f.encrypted_response_xml(
        spec, sp_key.certificate_pem, rewrite=_key_with_x509_and_a_second_key
    )
    with samlattacks.watch_io() as watch:
        verified = validate_response(f.b64(xml), sp_config, idp_config, f.NOW)
    assert verified.encrypted
    watch.assert_nothing_opened()
