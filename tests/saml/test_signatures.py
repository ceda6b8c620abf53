"""Defence in depth inside the signature verifier (below validate_response's own checks)."""

from __future__ import annotations

import pytest
import xmlsec
from lxml import etree

from deskgate.saml import _signatures
from deskgate.saml.errors import SAMLError, SAMLErrorCode

DS = "{http://www.w3.org/2000/09/xmldsig#}"


def _signed_with(factory, idp_key, transforms: tuple[object, ...]) -> etree._Element:
    """A document signed over ``#doc`` with exactly ``transforms`` in its Reference."""
    root = etree.fromstring(b'<doc xmlns="urn:test" ID="doc"><v>1</v></doc>')
    signature = xmlsec.template.create(
        root, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256
    )
    root.append(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256, uri="#doc")
    for transform in transforms:
        node = xmlsec.template.add_transform(reference, transform)
        if transform == xmlsec.Transform.XPATH:
            etree.SubElement(node, f"{DS}XPath").text = "true()"
    xmlsec.tree.add_ids(root, ["ID"])
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(idp_key.private_key_pem, xmlsec.KeyFormat.PEM, None)
    context.sign(signature)
    return signature


def test_xmlsec_itself_refuses_transforms_outside_the_allow_list(factory, idp_key):
    plain = _signed_with(factory, idp_key, (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N))
    _signatures._xmlsec_verify(plain, idp_key.certificate_pem)  # the same shape verifies

    xpath = _signed_with(factory, idp_key, (xmlsec.Transform.ENVELOPED, xmlsec.Transform.XPATH))
    with pytest.raises(xmlsec.Error):
        _signatures._xmlsec_verify(xpath, idp_key.certificate_pem)


def test_key_info_is_never_used_to_find_a_key(factory, idp_key):
    """Signed by the attacker, attacker certificate in KeyInfo, our certificate configured: refused."""
    attacker = factory.keypair("attacker")
    signature = _signed_with(
        factory, attacker, (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N)
    )
    key_info = xmlsec.template.ensure_key_info(signature)
    etree.SubElement(
        etree.SubElement(key_info, f"{DS}X509Data"), f"{DS}X509Certificate"
    ).text = "".join(attacker.certificate_pem.strip().splitlines()[1:-1])
    with pytest.raises(xmlsec.Error):
        _signatures._xmlsec_verify(signature, idp_key.certificate_pem)
    _signatures._xmlsec_verify(signature, attacker.certificate_pem)  # (it is a genuine signature)


def test_an_ec_key_value_in_signature_key_info_is_accepted_and_its_curve_urn_never_fetched():
    """dsig11:NamedCurve's URI names a curve (a URN); it is not a reference."""
    from lxml import etree

    from deskgate.saml._signatures import _check_signature_structure

    ds, dsig11 = "{http://www.w3.org/2000/09/xmldsig#}", "{http://www.w3.org/2009/xmldsig11#}"
    signature = etree.Element(ds + "Signature")
    reference = etree.SubElement(
        etree.SubElement(signature, ds + "SignedInfo"), ds + "Reference", URI="#a"
    )
    etree.SubElement(signature, ds + "SignatureValue")
    ec = etree.SubElement(
        etree.SubElement(etree.SubElement(signature, ds + "KeyInfo"), ds + "KeyValue"),
        dsig11 + "ECKeyValue",
    )
    etree.SubElement(ec, dsig11 + "NamedCurve", URI="urn:oid:1.2.840.10045.3.1.7")
    etree.SubElement(ec, dsig11 + "PublicKey")
    _check_signature_structure(signature, reference, "Assertion")  # no error


@pytest.mark.parametrize("rollover", [False, True], ids=["one-certificate", "rollover"])
def test_key_info_certificates_are_never_kept_in_a_cache(factory, idp_key, rollover):
    """KeyInfo is attacker text read before any signature verifies: reading it must not pin memory.

    The certificate caches (1,024 entries each) are keyed by the text given; a KeyInfo
    certificate padded with distinct whitespace per request would keep up to ~1 MB per entry
    (~1 GB per worker) for anyone who can POST to the ACS.
    """
    from deskgate.saml import certs

    attacker = factory.keypair("attacker")
    signature = _signed_with(
        factory, attacker, (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N)
    )
    key_info = xmlsec.template.ensure_key_info(signature)
    etree.SubElement(etree.SubElement(key_info, f"{DS}X509Data"), f"{DS}X509Certificate")
    # Re-parsed, as a posted response is (xmlsec's template nodes are invisible to lxml's finders).
    document = etree.fromstring(etree.tostring(signature.getroottree()))
    xmlsec.tree.add_ids(document, ["ID"])
    signature = document.find(f"{DS}Signature")
    certificate = signature.find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    body = "".join(attacker.certificate_pem.strip().splitlines()[1:-1])
    trusted = (idp_key.certificate_pem, factory.keypair("idp-next").certificate_pem)
    trusted = trusted if rollover else trusted[:1]
    attacker_fingerprint = certs.sha256_fingerprint(attacker.certificate_pem)
    for pem in trusted:  # configured certificates may be cached (and now are)
        certs.sha256_fingerprint(pem)

    def cached() -> tuple[int, int]:
        return (
            certs.load_certificate.cache_info().currsize,
            certs.sha256_fingerprint.cache_info().currsize,
        )

    before = cached()
    for padding in range(3):
        certificate.text = body + " " * (1000 + padding)
        with pytest.raises(SAMLError) as refused:
            _signatures.verify_signature(signature, trusted, owner="Assertion")
        assert refused.value.code is SAMLErrorCode.UNKNOWN_SIGNING_CERTIFICATE
        assert refused.value.received == attacker_fingerprint
        assert cached() == before
