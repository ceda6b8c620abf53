"""XML-Encryption for EncryptedAssertion / EncryptedID (internal).

Same xmlsec calls as python3-saml's ``OneLogin_Saml2_Utils.decrypt_element``
and ``OneLogin_Saml2_Response._decrypt_assertion`` (including its
RetrievalMethod handling), with two additions:

* an algorithm allow-list checked before any key is touched;
* the ``xmlsec.KeysManager`` holding the SP key is cached per thread.
  python3-saml builds a new one per call, and creating a KeysManager
  initialises an OpenSSL X509 store that loads the system CA bundle:
  ~15 ms, versus ~1.5 ms for the RSA-OAEP decryption itself. Managers are
  kept per thread: xmlsec does not document a KeysManager as safe to share
  between concurrently running contexts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import xmlsec
from lxml import etree

from deskgate.saml._xml import NS_DS, NS_XENC
from deskgate.saml.errors import SAMLError, SAMLErrorCode

_XENC = f"{{{NS_XENC}}}"
_DS = f"{{{NS_DS}}}"
_ENCRYPTED_KEY_TYPE = "http://www.w3.org/2001/04/xmlenc#EncryptedKey"

# Key transport and block ciphers we decrypt. RSA-1_5 (PKCS#1 v1.5) is left
# out on purpose: it is the Bleichenbacher padding-oracle algorithm, and the
# IdPs we target (Okta, Entra, ADFS, Google, Keycloak...) use RSA-OAEP.
# 3DES is left out as deprecated; no mainstream IdP defaults to it.
ENCRYPTION_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes192-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    }
)

_MANAGERS_PER_THREAD = 32
_local = threading.local()


def check_encryption_algorithms(container: etree._Element, what: str) -> None:
    """Every EncryptedData/EncryptedKey under ``container`` must name an allowed algorithm.

    Raises:
        SAMLError: UNSUPPORTED_ENCRYPTION_ALGORITHM.
    """
    for data in container.xpath(
        ".//xenc:EncryptedData | .//xenc:EncryptedKey", namespaces={"xenc": NS_XENC}
    ):
        method = data.find(f"{_XENC}EncryptionMethod")
        algorithm = None if method is None else method.get("Algorithm")
        if algorithm not in ENCRYPTION_ALGORITHMS:
            raise SAMLError(
                SAMLErrorCode.UNSUPPORTED_ENCRYPTION_ALGORITHM,
                f"{what} uses encryption algorithm {algorithm!r}, which we do not accept "
                "(use AES-CBC/GCM with RSA-OAEP key transport)",
                expected=", ".join(sorted(ENCRYPTION_ALGORITHMS)),
                received=algorithm,
            )


def _keys_manager(private_key_pem: str) -> xmlsec.KeysManager:
    managers: OrderedDict[str, xmlsec.KeysManager] | None = getattr(_local, "managers", None)
    if managers is None:
        managers = OrderedDict()
        _local.managers = managers
    manager = managers.get(private_key_pem)
    if manager is None:
        manager = xmlsec.KeysManager()
        manager.add_key(xmlsec.Key.from_memory(private_key_pem, xmlsec.KeyFormat.PEM, None))
        managers[private_key_pem] = manager
        if len(managers) > _MANAGERS_PER_THREAD:
            managers.popitem(last=False)
    else:
        managers.move_to_end(private_key_pem)
    return manager


def _inline_retrieval_method(container: etree._Element, encrypted_data: etree._Element) -> None:
    """Move a same-document EncryptedKey referenced by ds:RetrievalMethod into KeyInfo (as python3-saml does)."""
    key_info = encrypted_data.find(f"{_DS}KeyInfo")
    if key_info is None or len(key_info) == 0:
        raise SAMLError(
            SAMLErrorCode.DECRYPTION_FAILED,
            "EncryptedData has no KeyInfo (no encrypted key to use)",
        )
    for child in list(key_info):
        if child.tag != f"{_DS}RetrievalMethod":
            continue
        if child.get("Type") != _ENCRYPTED_KEY_TYPE:
            raise SAMLError(
                SAMLErrorCode.DECRYPTION_FAILED,
                "unsupported RetrievalMethod in EncryptedData KeyInfo",
            )
        uri = child.get("URI", "")
        if not uri.startswith("#"):
            continue
        for encrypted_key in container.findall(f"{_XENC}EncryptedKey"):
            if encrypted_key.get("Id") == uri[1:]:
                key_info.append(encrypted_key)
                break


def decrypt_in_place(
    container: etree._Element, private_key_pem: str, what: str, expected_tag: str
) -> etree._Element:
    """Decrypt ``container`` (EncryptedAssertion / EncryptedID) and put the plaintext element in its place.

    Comments and processing instructions in the plaintext are dropped (their
    text merged), as the parser does for the rest of the document.

    Returns:
        The decrypted element (of tag ``expected_tag``), now in the tree where ``container`` was.

    Raises:
        SAMLError: UNSUPPORTED_ENCRYPTION_ALGORITHM or DECRYPTION_FAILED.
    """
    check_encryption_algorithms(container, what)
    encrypted_data = container.find(f"{_XENC}EncryptedData")
    if encrypted_data is None:
        raise SAMLError(SAMLErrorCode.DECRYPTION_FAILED, f"{what} has no EncryptedData")
    _inline_retrieval_method(container, encrypted_data)
    try:
        context = xmlsec.EncryptionContext(_keys_manager(private_key_pem))
        decrypted = context.decrypt(encrypted_data)
    except xmlsec.Error as exc:
        raise SAMLError(
            SAMLErrorCode.DECRYPTION_FAILED,
            f"could not decrypt the {what} with our SP key: is the IdP encrypting for the "
            f"certificate in our current SP metadata? ({exc})",
        ) from None
    if not isinstance(decrypted, etree._Element) or decrypted.tag != expected_tag:
        raise SAMLError(
            SAMLErrorCode.DECRYPTION_FAILED,
            f"{what} did not decrypt to a single {expected_tag} element",
            expected=expected_tag,
            received=getattr(decrypted, "tag", type(decrypted).__name__),
        )
    parent = container.getparent()
    if parent is not None:
        parent.replace(container, decrypted)
    # xmlsec parses the plaintext with libxml2 defaults, which keep comments.
    etree.strip_tags(decrypted, etree.Comment, etree.ProcessingInstruction)
    return decrypted
