"""XML-Encryption for EncryptedAssertion / EncryptedID (internal).

Same xmlsec calls as python3-saml's ``OneLogin_Saml2_Utils.decrypt_element``
and ``OneLogin_Saml2_Response._decrypt_assertion`` (including its
RetrievalMethod handling), with these additions:

* before xmlsec sees anything, the EncryptedAssertion/EncryptedID must be
  made of the XML-Encryption subset IdPs use (:data:`_ALLOWED_CHILDREN`):
  no ``CipherReference`` (xmlsec would read the ciphertext from its URI:
  ``file:///dev/zero`` grew the server without bound), no URI that is not a
  same-document ``#id``, no Transforms, no KeyInfoReference / AgreementMethod
  / DerivedKey; one EncryptedData and at most :data:`MAX_ENCRYPTED_KEYS`
  EncryptedKeys, so at most that many RSA decryptions per container. The
  plaintext is then no larger than the ciphertext, which lies inside the
  size-capped document. (xmlsec cannot open URIs anyway: ``_xmlsec_io``.)
* a same-document RetrievalMethod is replaced by the EncryptedKey it names,
  so xmlsec never dereferences anything;
* processing instructions in the plaintext are refused (the parser refuses
  them in the document itself);
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

from deskgate.saml import _xmlsec_io  # noqa: F401  (xmlsec opens no URI)
from deskgate.saml._xml import NS_DS, NS_XENC, SAME_DOCUMENT_URI, refuse_unlisted_children
from deskgate.saml.errors import SAMLError, SAMLErrorCode

_XENC = f"{{{NS_XENC}}}"
_XENC11 = "{http://www.w3.org/2009/xmlenc11#}"
_DS = f"{{{NS_DS}}}"
_ENCRYPTED_KEY_TYPE = "http://www.w3.org/2001/04/xmlenc#EncryptedKey"

#: EncryptedKeys accepted in one EncryptedAssertion/EncryptedID: one per SP
#: certificate the IdP encrypts to (two during an SP certificate rollover).
MAX_ENCRYPTED_KEYS = 2


_CONTAINER = "container"
# Which element children each element of the container may have; anything
# not listed has none. KeyInfo's allowed children depend on whose KeyInfo it is.
_ALLOWED_CHILDREN: dict[object, frozenset[str]] = {
    _CONTAINER: frozenset({_XENC + "EncryptedData", _XENC + "EncryptedKey"}),
    _XENC + "EncryptedData": frozenset(
        {_XENC + "EncryptionMethod", _DS + "KeyInfo", _XENC + "CipherData"}
    ),
    _XENC + "EncryptedKey": frozenset(
        {
            _XENC + "EncryptionMethod",
            _DS + "KeyInfo",
            _XENC + "CipherData",
            _XENC + "ReferenceList",
            _XENC + "CarriedKeyName",
        }
    ),
    _XENC + "EncryptionMethod": frozenset(
        {_XENC + "KeySize", _XENC + "OAEPparams", _DS + "DigestMethod", _XENC11 + "MGF"}
    ),
    _XENC + "CipherData": frozenset({_XENC + "CipherValue"}),
    _XENC + "ReferenceList": frozenset({_XENC + "DataReference", _XENC + "KeyReference"}),
    (_DS + "KeyInfo", _XENC + "EncryptedData"): frozenset(
        {_XENC + "EncryptedKey", _DS + "RetrievalMethod", _DS + "KeyName"}
    ),
    (_DS + "KeyInfo", _XENC + "EncryptedKey"): frozenset(
        {_DS + "X509Data", _DS + "KeyName", _DS + "KeyValue"}
    ),
    _DS + "X509Data": frozenset(
        {
            _DS + "X509Certificate",
            _DS + "X509IssuerSerial",
            _DS + "X509SKI",
            _DS + "X509SubjectName",
        }
    ),
    _DS + "X509IssuerSerial": frozenset({_DS + "X509IssuerName", _DS + "X509SerialNumber"}),
    _DS + "KeyValue": frozenset({_DS + "RSAKeyValue"}),
    _DS + "RSAKeyValue": frozenset({_DS + "Modulus", _DS + "Exponent"}),
}

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


def _allowed_children(element: etree._Element, container: etree._Element) -> frozenset[str]:
    if element is container:
        return _ALLOWED_CHILDREN[_CONTAINER]
    if element.tag == _DS + "KeyInfo":
        parent = element.getparent()
        return _ALLOWED_CHILDREN.get((element.tag, getattr(parent, "tag", None)), frozenset())
    return _ALLOWED_CHILDREN.get(element.tag, frozenset())


def check_encrypted_structure(container: etree._Element, what: str) -> None:
    """Refuse an EncryptedAssertion/EncryptedID that would make xmlsec fetch or do more than it must.

    Runs before any xmlsec call: nothing here touches a key.

    Raises:
        SAMLError: EXTERNAL_REFERENCE or ENCRYPTION_STRUCTURE_REFUSED.
    """
    elements = [e for e in container.iter() if isinstance(e.tag, str)]  # no comments / PIs
    # References first, so that anything pointing outside is named as such.
    for element in elements:
        if element.tag == _XENC + "CipherReference":
            raise SAMLError(
                SAMLErrorCode.EXTERNAL_REFERENCE,
                f"{what} takes its ciphertext from a CipherReference "
                f"(URI {element.get('URI')!r}); only an inline CipherValue is accepted",
                expected="xenc:CipherValue",
                received=f"xenc:CipherReference URI={element.get('URI')!r}",
            )
        uri = element.get("URI")
        if uri is not None and not SAME_DOCUMENT_URI.fullmatch(uri):
            name = etree.QName(element).localname
            raise SAMLError(
                SAMLErrorCode.EXTERNAL_REFERENCE,
                f"{what} has a {name} pointing outside the message (URI {uri!r}); only "
                "same-document references (#id) are accepted",
                expected="#id",
                received=uri,
            )
    refuse_unlisted_children(
        elements,
        lambda element: _allowed_children(element, container),
        SAMLErrorCode.ENCRYPTION_STRUCTURE_REFUSED,
        what,
    )
    data_count = len(container.findall(f"{_XENC}EncryptedData"))
    key_count = sum(1 for _ in container.iter(f"{_XENC}EncryptedKey"))
    if data_count != 1 or key_count > MAX_ENCRYPTED_KEYS:
        raise SAMLError(
            SAMLErrorCode.ENCRYPTION_STRUCTURE_REFUSED,
            f"{what} holds {data_count} EncryptedData and {key_count} EncryptedKey elements",
            expected=f"1 EncryptedData, at most {MAX_ENCRYPTED_KEYS} EncryptedKey",
            received=f"{data_count} EncryptedData, {key_count} EncryptedKey",
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
    """Replace each ds:RetrievalMethod in the EncryptedData's KeyInfo by the EncryptedKey it names.

    Like python3-saml, but the RetrievalMethod itself is removed, so xmlsec
    never dereferences a URI; it may only name an EncryptedKey that is a
    direct child of ``container`` (check_encrypted_structure already refused
    anything but ``#id``).
    """
    key_info = encrypted_data.find(f"{_DS}KeyInfo")
    if key_info is None or len(key_info) == 0:
        raise SAMLError(
            SAMLErrorCode.DECRYPTION_FAILED,
            "EncryptedData has no KeyInfo (no encrypted key to use)",
        )
    siblings = {key.get("Id"): key for key in container.findall(f"{_XENC}EncryptedKey")}
    for child in list(key_info):
        if child.tag != f"{_DS}RetrievalMethod":
            continue
        if child.get("Type") != _ENCRYPTED_KEY_TYPE:
            raise SAMLError(
                SAMLErrorCode.DECRYPTION_FAILED,
                "unsupported RetrievalMethod in EncryptedData KeyInfo",
                expected=_ENCRYPTED_KEY_TYPE,
                received=child.get("Type"),
            )
        uri = child.get("URI", "")
        target = siblings.pop(uri[1:], None) if uri.startswith("#") else None
        if target is None:
            raise SAMLError(
                SAMLErrorCode.DECRYPTION_FAILED,
                f"EncryptedData KeyInfo RetrievalMethod {uri!r} names no EncryptedKey beside it",
                received=uri,
            )
        key_info.replace(child, target)


def _decrypt_with_any(
    encrypted_data: etree._Element, private_key_pems: tuple[str, ...], what: str
) -> object:
    failure: xmlsec.Error | None = None
    for private_key_pem in private_key_pems:
        try:
            context = xmlsec.EncryptionContext(_keys_manager(private_key_pem))
            return context.decrypt(encrypted_data)
        except xmlsec.Error as exc:  # not encrypted to this key: try the next one
            failure = exc
    keys = "SP key" if len(private_key_pems) == 1 else f"{len(private_key_pems)} SP keys"
    raise SAMLError(
        SAMLErrorCode.DECRYPTION_FAILED,
        f"could not decrypt the {what} with our {keys}: is the IdP encrypting for the "
        f"certificate in our current SP metadata? ({failure})",
    )


def decrypt_in_place(
    container: etree._Element, private_key_pems: tuple[str, ...], what: str, expected_tag: str
) -> etree._Element:
    """Decrypt ``container`` (EncryptedAssertion / EncryptedID) and put the plaintext element in its place.

    ``private_key_pems`` are tried in order (the current SP key, then, during an SP key
    rollover, the other one): at most ``len(private_key_pems)`` x :data:`MAX_ENCRYPTED_KEYS`
    RSA decryptions per container.

    Comments in the plaintext are dropped (their text merged), as the parser
    does for the rest of the document; processing instructions are refused.

    Returns:
        The decrypted element (of tag ``expected_tag``), now in the tree where ``container`` was.

    Raises:
        SAMLError: EXTERNAL_REFERENCE, ENCRYPTION_STRUCTURE_REFUSED,
            UNSUPPORTED_ENCRYPTION_ALGORITHM, DECRYPTION_FAILED or
            PROCESSING_INSTRUCTION_FORBIDDEN.
    """
    check_encrypted_structure(container, what)
    check_encryption_algorithms(container, what)
    encrypted_data = container.find(f"{_XENC}EncryptedData")
    if encrypted_data is None:
        raise SAMLError(SAMLErrorCode.DECRYPTION_FAILED, f"{what} has no EncryptedData")
    _inline_retrieval_method(container, encrypted_data)
    decrypted = _decrypt_with_any(encrypted_data, private_key_pems, what)
    if not isinstance(decrypted, etree._Element) or decrypted.tag != expected_tag:
        raise SAMLError(
            SAMLErrorCode.DECRYPTION_FAILED,
            f"{what} did not decrypt to a single {expected_tag} element",
            expected=expected_tag,
            received=getattr(decrypted, "tag", type(decrypted).__name__),
        )
    # XPath, not iter(): python3-saml's element class hides PIs from iteration.
    if decrypted.xpath("boolean(descendant-or-self::processing-instruction())"):
        raise SAMLError(
            SAMLErrorCode.PROCESSING_INSTRUCTION_FORBIDDEN,
            f"the decrypted {what} contains an XML processing instruction",
        )
    parent = container.getparent()
    if parent is not None:
        parent.replace(container, decrypted)
    # xmlsec parses the plaintext with libxml2 defaults, which keep comments.
    etree.strip_tags(decrypted, etree.Comment)
    return decrypted
