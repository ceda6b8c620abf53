"""Hardened XML parsing and cached schema validation (internal).

Parsing uses python3-saml's defused parser settings (no network, no entity
resolution, comments and processing instructions dropped while parsing, no
huge trees) and its ``check_docinfo`` (DTD/entity declarations refused), but
plain lxml elements: python3-saml's ``RestrictedElement`` class re-filters
every child iteration in Python (~10% of a validation), and with comments
and PIs never in the tree there is nothing left for it to hide. On top of it
we refuse any ``<!DOCTYPE`` *before* handing bytes to libxml2, so
billion-laughs / XXE / parser-differential payloads (CVE-2025-23369,
CVE-2025-25291/25292 shapes) never reach the parser at all.

Schema validation uses the XSDs shipped with python3-saml, but compiles each
schema once per thread: ``OneLogin_Saml2_XML.validate_xml`` re-reads and
re-compiles the XSD on every call (~2 ms, about half of a stock
``is_valid``), while validating against a compiled schema costs ~40 us.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable

import onelogin.saml2.xml_utils
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.xmlparser import DTDForbidden, EntitiesForbidden, check_docinfo

from deskgate.saml.errors import SAMLError, SAMLErrorCode

NSMAP: dict[str, str] = dict(OneLogin_Saml2_Constants.NSMAP)
NS_SAML = OneLogin_Saml2_Constants.NS_SAML
NS_SAMLP = OneLogin_Saml2_Constants.NS_SAMLP
NS_MD = OneLogin_Saml2_Constants.NS_MD
NS_DS = OneLogin_Saml2_Constants.NS_DS
NS_XENC = OneLogin_Saml2_Constants.NS_XENC
NS_XSI = OneLogin_Saml2_Constants.NS_XSI
XML_NS = "http://www.w3.org/XML/1998/namespace"

# ASCII-compatible encodings cover real SAML traffic; anything else (UTF-16...)
# still hits python3-saml's docinfo check after parsing.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
# "<?" that does not open the XML declaration: maybe a processing instruction.
_MAYBE_PI = re.compile(rb"<\?(?!xml[\s?])")

SCHEMA_DIR = os.path.join(os.path.dirname(onelogin.saml2.xml_utils.__file__), "schemas")
PROTOCOL_XSD = "saml-schema-protocol-2.0.xsd"
METADATA_XSD = "saml-schema-metadata-2.0.xsd"


class _Parsers(threading.local):
    """One hardened parser per thread (lxml serialises concurrent use of a parser with a lock)."""

    def __init__(self) -> None:
        # python3-saml's GlobalParserTLS.parser_config, without its element class.
        self.untrusted = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
            huge_tree=False,
        )


_parsers = _Parsers()


def parse_hardened(data: bytes) -> etree._Element:
    """Parse DOCTYPE-free bytes with comments and PIs dropped; refuse any DTD/entity declaration.

    The caller has already refused ``<!DOCTYPE`` in ``data``; ``check_docinfo``
    still catches one in an encoding the byte scan cannot read (UTF-16...).

    Raises:
        DTDForbidden, EntitiesForbidden: a DTD or entity declaration.
        etree.XMLSyntaxError: not well-formed.
        ValueError: not parseable (e.g. an unsupported encoding declaration).
    """
    root = etree.fromstring(data, _parsers.untrusted)
    check_docinfo(root.getroottree(), forbid_dtd=True, forbid_entities=True)
    return root


class XMLRefused(Exception):
    """Input refused before or during parsing; ``dtd`` tells DOCTYPE apart from malformed."""

    def __init__(self, detail: str, *, dtd: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.dtd = dtd


def parse_untrusted(data: bytes) -> etree._Element:
    """Parse attacker-controlled XML bytes into an element tree, refusing DTDs.

    Raises:
        XMLRefused: empty, not well-formed, or carrying a DOCTYPE / entity declaration.
    """
    if not data or not data.strip():
        raise XMLRefused("document is empty")
    if _DOCTYPE.search(data):
        raise XMLRefused("document contains a DOCTYPE declaration", dtd=True)
    try:
        return parse_hardened(data)
    except (DTDForbidden, EntitiesForbidden):
        raise XMLRefused("document contains a DOCTYPE or entity declaration", dtd=True) from None
    except etree.XMLSyntaxError as exc:
        raise XMLRefused(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. unsupported encoding declarations
        raise XMLRefused(f"not parseable XML: {exc}") from None


def has_processing_instruction(data: bytes) -> bool:
    """Whether ``data`` (a DTD-free document) holds an XML processing instruction.

    python3-saml's parser drops PIs silently, merging the text around them,
    while canonicalization keeps them: a parser differential with no use in
    SAML, so the ACS refuses them instead. A byte scan decides for
    ASCII-compatible input; only when it finds ``<?`` past the XML
    declaration (or the input is UTF-16/32) is the document parsed with PIs
    kept, to tell a PI from ``<?`` inside a comment or CDATA section.
    Not well-formed input answers ``False`` (the real parser reports it).
    """
    if not _MAYBE_PI.search(data) and b"\x00" not in data:
        return False
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_pis=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return False
    return any(True for _ in root.iter(etree.ProcessingInstruction)) or any(
        isinstance(node, etree._ProcessingInstruction)
        for node in (*root.itersiblings(preceding=True), *root.itersiblings())
    )


_schemas = threading.local()
# libxml2's schema compiler is not safe when several threads compile at once (seen in the bench:
# "xmlSchemaPValAttrNodeValue, the given type is not a built-in type" under concurrent sign-ins),
# so compiling is serialised; validating with a compiled schema stays per thread and lock-free.
_compile_lock = threading.Lock()


def compiled_schema(name: str) -> etree.XMLSchema:
    """The python3-saml XSD ``name``, compiled once per thread.

    Per thread because lxml validators keep per-object error logs; compiling is
    a one-off ~3 ms, done under a process-wide lock.
    """
    cache: dict[str, etree.XMLSchema] | None = getattr(_schemas, "cache", None)
    if cache is None:
        cache = {}
        _schemas.cache = cache
    schema = cache.get(name)
    if schema is None:
        with _compile_lock, open(os.path.join(SCHEMA_DIR, name), "rb") as handle:
            schema = etree.XMLSchema(etree.parse(handle))
        cache[name] = schema
    return schema


def schema_errors(document: etree._Element, name: str = PROTOCOL_XSD) -> str | None:
    """``None`` when ``document`` is valid against XSD ``name``, else the first error."""
    schema = compiled_schema(name)
    if schema.validate(document):
        return None
    error = schema.error_log.last_error
    return (
        f"line {error.line}: {error.message}" if error is not None else "schema validation failed"
    )


def text_of(element: etree._Element | None) -> str | None:
    """Full text content of ``element`` (all text nodes joined), or ``None``.

    The parser already drops comments (so ``user@<!-- -->evil.com`` reads as
    ``user@evil.com``, never as a truncated ``user@``) and merges CDATA;
    joining ``itertext`` also covers any child elements.
    """
    if element is None:
        return None
    if len(element) == 0:  # no child node of any kind: its text is all of it
        return element.text or ""
    return "".join(element.itertext())


def child(parent: etree._Element, tag: str) -> etree._Element | None:
    """The first child element of ``parent`` with ``tag`` (Clark notation), or ``None``.

    ``parent.find(tag)`` without ElementPath's path handling in Python (half the cost).
    """
    return next(parent.iterchildren(tag), None)


def children(parent: etree._Element, tag: str) -> list[etree._Element]:
    """Every child element of ``parent`` with ``tag`` (Clark notation): ``parent.findall(tag)``, faster."""
    return list(parent.iterchildren(tag))


#: A same-document reference: "#" and an XML name (no XPointer expressions), the only URI
#: xmlsec is ever handed.
SAME_DOCUMENT_URI = re.compile(r"#[A-Za-z_][\w.\-]*", re.UNICODE)


def refuse_unlisted_children(
    elements: Iterable[etree._Element],
    allowed_for: Callable[[etree._Element], frozenset[str]],
    code: SAMLErrorCode,
    what: str,
) -> None:
    """Structure by allow-list: raise ``SAMLError(code)`` at the first element child of any of
    ``elements`` whose tag is not in ``allowed_for(parent)``."""
    for element in elements:
        allowed = allowed_for(element)
        for node in element:
            tag = node.tag  # lxml builds this string on every access
            if isinstance(tag, str) and tag not in allowed:
                raise SAMLError(
                    code,
                    f"{what} has a {etree.QName(node).localname} inside "
                    f"{etree.QName(element).localname}, which we do not accept",
                    expected=", ".join(sorted(etree.QName(t).localname for t in allowed))
                    or "no child elements",
                    received=tag,
                )
