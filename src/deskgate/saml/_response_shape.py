"""What kind of document a response is, before any signature is checked (internal).

Root element and version, the SAML protocol schema, Status, unique and
bounded IDs, and exactly one assertion, as a direct child. Everything here
only ever refuses. ``get_status`` and ``validate_num_assertions`` are
python3-saml's checks, made with XPath compiled once or child lookups
(python3-saml's ``OneLogin_Saml2_XML.query`` compiles one per call).
"""

from __future__ import annotations

from lxml import etree

from deskgate.saml._xml import NS_SAML, NS_SAMLP, XML_NS, child, children, schema_errors, text_of
from deskgate.saml.errors import SAMLError, SAMLErrorCode

#: Longest ID / InResponseTo accepted (characters). IdPs use 20-50; the
#: replay store keeps assertion IDs in a column of this size.
MAX_ID_LENGTH = 256

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

_SAML = f"{{{NS_SAML}}}"
_SAMLP = f"{{{NS_SAMLP}}}"
_NAMESPACES = {"saml": NS_SAML, "samlp": NS_SAMLP, "xml": XML_NS}

# One walk for both ID checks: the ID-like attributes, then InResponseTo.
_ID_LIKE = ("ID", "Id", f"{{{XML_NS}}}id")
_IDS_AND_IN_RESPONSE_TO = etree.XPath(
    "//@ID | //@Id | //@xml:id | //@InResponseTo", namespaces=_NAMESPACES
)
_COUNT_ALL_ASSERTIONS = etree.XPath(
    "count(//saml:Assertion | //saml:EncryptedAssertion)", namespaces=_NAMESPACES
)
_COUNT_ASSERTIONS = etree.XPath("count(//saml:Assertion)", namespaces=_NAMESPACES)
_COUNT_ENCRYPTED_ASSERTIONS = etree.XPath(
    "count(//saml:EncryptedAssertion)", namespaces=_NAMESPACES
)


def check_root(root: etree._Element) -> None:
    if root.tag != f"{_SAMLP}Response":
        raise SAMLError(
            SAMLErrorCode.NOT_A_RESPONSE,
            f"expected a SAML 2.0 samlp:Response, got {root.tag}",
            expected=f"{_SAMLP}Response",
            received=str(root.tag),
        )
    if root.get("Version") != "2.0":
        raise SAMLError(
            SAMLErrorCode.UNSUPPORTED_VERSION,
            f"Response Version is {root.get('Version')!r}, only SAML 2.0 is supported",
            expected="2.0",
            received=root.get("Version"),
        )


def check_schema(document: etree._Element, where: str) -> None:
    error = schema_errors(document)
    if error is not None:
        raise SAMLError(
            SAMLErrorCode.SCHEMA_INVALID,
            f"Response does not match the SAML 2.0 schema{where}: {error}",
            received=error,
        )


def _status_code(root: etree._Element) -> str | None:
    """python3-saml's ``OneLogin_Saml2_Utils.get_status`` code: one Status, one StatusCode."""
    statuses = children(root, f"{_SAMLP}Status") if root.tag == f"{_SAMLP}Response" else []
    if len(statuses) != 1:  # the schema already requires both; belt and braces
        raise SAMLError(
            SAMLErrorCode.SCHEMA_INVALID, "Response status is malformed: Missing Status on response"
        )
    codes = children(statuses[0], f"{_SAMLP}StatusCode")
    if len(codes) != 1:
        raise SAMLError(
            SAMLErrorCode.SCHEMA_INVALID,
            "Response status is malformed: Missing Status Code on response",
        )
    values = codes[0].values()  # python3-saml reads the first attribute, the schema's only one
    return str(values[0]) if values else None


def check_status(root: etree._Element) -> None:
    code = _status_code(root)
    if code == STATUS_SUCCESS:
        return
    codes = [code or "(none)"]
    codes += [
        c.get("Value", "")
        for c in root.iterfind(f"{_SAMLP}Status/{_SAMLP}StatusCode//{_SAMLP}StatusCode")
    ]
    message = text_of(root.find(f"{_SAMLP}Status/{_SAMLP}StatusMessage"))
    printable = " / ".join(c.rsplit(":", 1)[-1] for c in codes if c)
    raise SAMLError(
        SAMLErrorCode.IDP_ERROR_STATUS,
        f"the IdP refused the sign-in: {printable}"
        + (f": {message.strip()}" if message and message.strip() else ""),
        expected=STATUS_SUCCESS,
        received=" ".join(c for c in codes if c)
        + (f" ({message.strip()})" if message and message.strip() else ""),
    )


def check_ids(document: etree._Element) -> None:
    """IDs are unique, and every ID and InResponseTo is at most :data:`MAX_ID_LENGTH` characters.

    xmlsec resolves ``#id`` References through the document's ID table, which
    also holds ``xml:id``; duplicates are the precondition of signature
    wrapping (the verifier and the reader picking different elements).
    """
    values = _IDS_AND_IN_RESPONSE_TO(document)
    seen: set[str] = set()
    for value in values:
        if value.attrname not in _ID_LIKE:
            continue
        if value in seen:
            raise SAMLError(
                SAMLErrorCode.DUPLICATE_ID,
                f"two elements share the ID {value!r} (signature-wrapping attempt?)",
                received=str(value),
            )
        seen.add(str(value))
    for value in values:
        if value.attrname in ("ID", "InResponseTo") and len(value) > MAX_ID_LENGTH:
            owner = etree.QName(value.getparent()).localname
            raise SAMLError(
                SAMLErrorCode.ID_TOO_LONG,
                f"{owner} {value.attrname} is {len(value)} characters long; at most "
                f"{MAX_ID_LENGTH} are accepted",
                expected=f"<= {MAX_ID_LENGTH} characters",
                received=f"{len(value)} characters: {value[:40]}...",
            )


def _count(xpath: etree.XPath, document: etree._Element) -> int:
    return int(xpath(document))


def assertion_count_error(document: etree._Element) -> SAMLError | None:
    """``None`` when ``document`` holds exactly one Assertion or EncryptedAssertion, anywhere."""
    if _count(_COUNT_ALL_ASSERTIONS, document) == 1:
        return None
    plain = _count(_COUNT_ASSERTIONS, document)
    encrypted = _count(_COUNT_ENCRYPTED_ASSERTIONS, document)
    if plain + encrypted == 1:
        return None
    return SAMLError(
        SAMLErrorCode.WRONG_ASSERTION_COUNT,
        f"Response must contain exactly one assertion anywhere in the document, found {plain} "
        f"Assertion and {encrypted} EncryptedAssertion element(s)",
        expected="1",
        received=str(plain + encrypted),
    )


def check_assertion_count(document: etree._Element, decrypted: etree._Element | None) -> None:
    """python3-saml's ``validate_num_assertions``: one assertion, and one after decryption."""
    error = assertion_count_error(document)
    if error is not None:
        raise error
    if decrypted is not None and _count(_COUNT_ASSERTIONS, decrypted) != 1:
        raise SAMLError(
            SAMLErrorCode.WRONG_ASSERTION_COUNT,
            "Response must contain exactly one assertion anywhere in the document",
            expected="1",
        )


def top_level_assertion(document: etree._Element) -> etree._Element:
    assertion = child(document, f"{_SAML}Assertion")
    if assertion is None:  # the only assertion sits somewhere else (Status, Extensions...)
        raise SAMLError(
            SAMLErrorCode.WRONG_ASSERTION_COUNT,
            "Response has no Assertion as a direct child (an assertion elsewhere in the document is never read)",
            expected="1",
            received="0",
        )
    return assertion
