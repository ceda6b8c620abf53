"""Who the verified assertion is about: NameID and attributes (internal).

Runs on verified content only. An EncryptedID is decrypted from a detached
copy (the signed tree stays as it was signed).
"""

from __future__ import annotations

import copy

from lxml import etree

from deskgate.saml._decrypt import decrypt_in_place
from deskgate.saml._toolkit import toolkit_settings
from deskgate.saml._xml import NS_SAML, NS_XSI, child, children, text_of
from deskgate.saml.config import SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

_SAML = f"{{{NS_SAML}}}"


def name_id(assertion: etree._Element, sp: SPConfig) -> tuple[str, str | None]:
    subject = child(assertion, f"{_SAML}Subject")
    name_id = None if subject is None else child(subject, f"{_SAML}NameID")
    if name_id is None and subject is not None:
        encrypted = child(subject, f"{_SAML}EncryptedID")
        if encrypted is not None:
            name_id = _decrypt_name_id(encrypted, sp)
    if name_id is None:
        raise SAMLError(SAMLErrorCode.MISSING_NAME_ID, "Assertion Subject has no NameID")
    value = (text_of(name_id) or "").strip()
    if not value:
        raise SAMLError(SAMLErrorCode.MISSING_NAME_ID, "Assertion NameID is empty")
    qualifier = name_id.get("SPNameQualifier")
    if qualifier is not None and qualifier != sp.entity_id:
        raise SAMLError(
            SAMLErrorCode.WRONG_SP_NAME_QUALIFIER,
            f"NameID SPNameQualifier was {qualifier!r}, expected {sp.entity_id!r}",
            expected=sp.entity_id,
            received=qualifier,
        )
    return value, name_id.get("Format")


def _decrypt_name_id(encrypted_id: etree._Element, sp: SPConfig) -> etree._Element:
    # Decrypt a detached copy: the signed tree must stay as it was signed.
    return decrypt_in_place(
        copy.deepcopy(encrypted_id),
        (toolkit_settings(sp).get_sp_key(), *sp.rollover_decryption_keys),
        "EncryptedID",
        f"{_SAML}NameID",
    )


def attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    """Attribute Name -> values, in document order.

    An attribute Name repeated (Keycloak sends multi-valued attributes as one
    Attribute element per value) has its values merged. ``xsi:nil`` values are
    skipped; an AttributeValue holding a NameID (eduPersonTargetedID) yields
    that NameID's text, and never replaces the Subject NameID.
    """
    statements = children(assertion, f"{_SAML}AttributeStatement")
    if any(child(statement, f"{_SAML}EncryptedAttribute") is not None for statement in statements):
        raise SAMLError(
            SAMLErrorCode.ENCRYPTED_ATTRIBUTE_UNSUPPORTED,
            "Assertion carries EncryptedAttribute elements, which are not supported: encrypt the "
            "whole assertion instead",
        )
    attributes: dict[str, list[str]] = {}
    for statement in statements:
        for attribute in statement.iterchildren(f"{_SAML}Attribute"):
            values = attributes.setdefault(attribute.get("Name", ""), [])
            for value in attribute.iterchildren(f"{_SAML}AttributeValue"):
                if value.get(f"{{{NS_XSI}}}nil") in ("true", "1"):
                    continue
                nested = child(value, f"{_SAML}NameID") if len(value) else None
                values.append((text_of(nested if nested is not None else value) or "").strip())
    return {name: tuple(values) for name, values in attributes.items()}
