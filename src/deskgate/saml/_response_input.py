"""A posted ``SAMLResponse`` turned into element trees (internal; first step of the ACS).

Base64 and size are checked, DOCTYPEs and processing instructions refused on
the bytes, the XML parsed once with the hardened parser
(:func:`deskgate.saml._xml.parse_hardened`), and an EncryptedAssertion
decrypted into a copy of the tree, the way python3-saml's
``OneLogin_Saml2_Response`` constructor does (same parser settings, same
copy-then-decrypt), without its second base64 decode and per-call XPath
compilation. Nothing read here is verified yet.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass

from lxml import etree
from onelogin.saml2.xmlparser import DTDForbidden, EntitiesForbidden

from deskgate.saml._decrypt import decrypt_in_place
from deskgate.saml._response_shape import assertion_count_error
from deskgate.saml._toolkit import toolkit_settings
from deskgate.saml._xml import NS_SAML, NS_SAMLP, child, has_processing_instruction, parse_hardened
from deskgate.saml.config import SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

#: Largest decoded SAMLResponse accepted. Real responses are 5-60 KB (Entra
#: with many group claims ~100 KB); the cap bounds parse/verify work.
MAX_RESPONSE_BYTES = 1024 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_RESPONSE = f"{{{NS_SAMLP}}}Response"
_ENCRYPTED_ASSERTION = f"{{{NS_SAML}}}EncryptedAssertion"
_ASSERTION = f"{{{NS_SAML}}}Assertion"


@dataclass(frozen=True)
class ParsedResponse:
    """The response as received, and the tree its assertion is read from.

    Attributes:
        document: the root element as received (ciphertext included).
        assertion_document: a decrypted copy of ``document`` when the assertion
            arrived encrypted, else ``document`` itself.
        encrypted: the assertion arrived as an EncryptedAssertion.
    """

    document: etree._Element
    assertion_document: etree._Element
    encrypted: bool


def parse_response(saml_response_b64: str | bytes, sp: SPConfig) -> ParsedResponse:
    """Decode, parse and (when encrypted) decrypt a ``SAMLResponse`` form field.

    Raises:
        SAMLError: MALFORMED_BASE64, RESPONSE_TOO_LARGE, MALFORMED_XML, DTD_FORBIDDEN,
            PROCESSING_INSTRUCTION_FORBIDDEN, WRONG_ASSERTION_COUNT, or a decryption refusal.
        ValueError: python3-saml refuses ``sp``.
    """
    raw = _checked_bytes(saml_response_b64)
    settings = toolkit_settings(sp)
    try:
        document = parse_hardened(raw)
    except (DTDForbidden, EntitiesForbidden):
        raise SAMLError(
            SAMLErrorCode.DTD_FORBIDDEN, "SAMLResponse contains a DTD or entity declaration"
        ) from None
    except etree.XMLSyntaxError as exc:
        raise SAMLError(
            SAMLErrorCode.MALFORMED_XML, f"SAMLResponse is not well-formed XML: {exc}"
        ) from None
    except ValueError as exc:  # e.g. an unsupported encoding declaration
        raise SAMLError(
            SAMLErrorCode.MALFORMED_XML, f"SAMLResponse is not parseable XML: {exc}"
        ) from None
    # python3-saml decrypts only an EncryptedAssertion that is a direct child of a samlp:Response.
    if document.tag != _RESPONSE or child(document, _ENCRYPTED_ASSERTION) is None:
        return ParsedResponse(document=document, assertion_document=document, encrypted=False)
    decrypted = copy.deepcopy(document)
    # Exactly one assertion before any RSA work: python3-saml would only
    # decrypt the first, but refusing here bounds the work to one decryption.
    error = assertion_count_error(decrypted)
    if error is not None:
        raise error
    encrypted = child(decrypted, _ENCRYPTED_ASSERTION)
    assert encrypted is not None  # found in the original just above
    decrypt_in_place(
        encrypted,
        (settings.get_sp_key(), *sp.rollover_decryption_keys),
        "EncryptedAssertion",
        _ASSERTION,
    )
    return ParsedResponse(document=document, assertion_document=decrypted, encrypted=True)


def _checked_bytes(value: str | bytes) -> bytes:
    """The decoded response: at most :data:`MAX_RESPONSE_BYTES`, no DOCTYPE, no processing instruction."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise SAMLError(
                SAMLErrorCode.MALFORMED_BASE64, "SAMLResponse is not base64 (non-ASCII bytes)"
            ) from None
    if not isinstance(value, str):
        raise TypeError("saml_response_b64 must be str or bytes")
    compact = "".join(value.split())  # browsers and some IdPs wrap base64 lines
    # Refuse oversized input before decoding it (base64 is 4 characters per 3 bytes).
    if len(compact) > ((MAX_RESPONSE_BYTES + 2) // 3) * 4:
        raise _too_large(len(compact) * 3 // 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SAMLError(
            SAMLErrorCode.MALFORMED_BASE64,
            "SAMLResponse is not valid base64 (was it URL-decoded twice, or posted by the HTTP-Redirect binding?)",
        ) from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise _too_large(len(raw))
    if not raw.strip():
        raise SAMLError(SAMLErrorCode.MALFORMED_XML, "SAMLResponse is empty")
    # Refuse DTDs before libxml2 ever sees them (see deskgate.saml._xml).
    if _DOCTYPE.search(raw):
        raise SAMLError(
            SAMLErrorCode.DTD_FORBIDDEN,
            "SAMLResponse contains a DOCTYPE declaration; DTDs and entities are never accepted",
        )
    if has_processing_instruction(raw):
        raise SAMLError(
            SAMLErrorCode.PROCESSING_INSTRUCTION_FORBIDDEN,
            "SAMLResponse contains an XML processing instruction (<?...?>); no IdP sends one, and "
            "they split text (a NameID, an attribute) differently for different parsers",
        )
    return raw


def _too_large(size: int) -> SAMLError:
    return SAMLError(
        SAMLErrorCode.RESPONSE_TOO_LARGE,
        f"SAMLResponse is larger than {MAX_RESPONSE_BYTES} bytes",
        expected=f"<= {MAX_RESPONSE_BYTES} bytes",
        received=f"{size} bytes",
    )
