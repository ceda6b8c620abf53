"""Map IdP attributes to an agent profile.

IdPs name the same facts differently: Okta and Google use whatever the admin
typed (``firstName``/``lastName``/``email`` by convention), Entra ID and ADFS
use WS-Federation claim URIs, OneLogin uses ``User.FirstName``, Keycloak and
Shibboleth use LDAP OIDs (``urn:oid:2.5.4.42``). :data:`ATTRIBUTE_NAMES` lists,
per profile field and in priority order, every name read; matching ignores
case. The admin page shows these names so an IdP admin knows what to send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from deskgate.saml.acs import VerifiedAssertion

__all__ = ["ATTRIBUTE_NAMES", "ATTRIBUTE_NAMES_READ", "AgentProfile", "profile_from_assertion"]

_WS_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"

#: Profile field -> attribute Names read, highest priority first (compared case-insensitively).
ATTRIBUTE_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "email": (
            "email",  # Okta, Google, Keycloak, JumpCloud conventions
            "mail",  # LDAP / Shibboleth / Ping
            "emailAddress",
            "email_address",
            "User.email",  # OneLogin
            _WS_CLAIMS + "emailaddress",  # Entra ID, ADFS
            "http://schemas.xmlsoap.org/claims/EmailAddress",  # ADFS (older claim type)
            "urn:oid:0.9.2342.19200300.100.1.3",  # mail
            "urn:oid:1.2.840.113549.1.9.1",  # PKCS#9 emailAddress (Keycloak X500 mapper)
            # Fallbacks that are often, not always, an address (used only if they look like one):
            _WS_CLAIMS + "upn",
            _WS_CLAIMS + "name",  # Entra ID: the user principal name
        ),
        "first_name": (
            "firstName",
            "first_name",
            "givenName",
            "given_name",
            "User.FirstName",  # OneLogin
            _WS_CLAIMS + "givenname",  # Entra ID, ADFS
            "urn:oid:2.5.4.42",  # givenName
        ),
        "last_name": (
            "lastName",
            "last_name",
            "surname",
            "sn",
            "familyName",
            "family_name",
            "User.LastName",  # OneLogin
            _WS_CLAIMS + "surname",  # Entra ID, ADFS
            "urn:oid:2.5.4.4",  # sn
        ),
        "display_name": (
            "displayName",
            "display_name",
            "fullName",
            "full_name",
            "name",
            "User.DisplayName",
            "http://schemas.microsoft.com/identity/claims/displayname",  # Entra ID
            "urn:oid:2.16.840.1.113730.3.1.241",  # displayName
            "cn",
            "urn:oid:2.5.4.3",  # cn
        ),
    }
)

#: Every attribute Name read, in priority order within each field (for the admin page).
ATTRIBUTE_NAMES_READ: tuple[str, ...] = tuple(
    name for names in ATTRIBUTE_NAMES.values() for name in names
)

_NAMES_LOWER = {field: tuple(n.lower() for n in names) for field, names in ATTRIBUTE_NAMES.items()}
_EMAIL_SHAPED = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMAIL_FALLBACKS = frozenset({(_WS_CLAIMS + "upn").lower(), (_WS_CLAIMS + "name").lower()})


@dataclass(frozen=True)
class AgentProfile:
    """What we learned about the person signing in (``None``: the IdP did not say).

    Attributes:
        email: from an email attribute, else the NameID when it looks like an address.
        first_name, last_name: given and family name.
        display_name: the IdP's display name, else "first last".
        sources: field -> where the value came from (an attribute Name, ``"NameID"``,
            or ``"first_name+last_name"``), for diagnostics.
    """

    email: str | None
    first_name: str | None
    last_name: str | None
    display_name: str | None
    sources: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


def looks_like_email(value: str) -> bool:
    """A cheap shape test (``x@y.z``, no spaces); not deliverability."""
    return bool(_EMAIL_SHAPED.match(value))


def _first_value(
    by_lower: Mapping[str, tuple[str, tuple[str, ...]]],
    names_lower: tuple[str, ...],
    *,
    email: bool = False,
) -> tuple[str, str] | None:
    for wanted in names_lower:
        hit = by_lower.get(wanted)
        if hit is None:
            continue
        actual_name, values = hit
        for value in values:
            value = value.strip()
            if not value:
                continue
            if email and wanted in _EMAIL_FALLBACKS and not looks_like_email(value):
                continue
            return value, actual_name
    return None


def profile_from_assertion(assertion: VerifiedAssertion) -> AgentProfile:
    """Build an :class:`AgentProfile` from a verified assertion's attributes and NameID."""
    # Lower-cased attribute Name -> (Name as sent, values); the first spelling sent wins.
    by_lower: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, values in assertion.attributes.items():
        by_lower.setdefault(name.lower(), (name, values))
    sources: dict[str, str] = {}
    found: dict[str, str | None] = {}
    for field_name, names_lower in _NAMES_LOWER.items():
        hit = _first_value(by_lower, names_lower, email=field_name == "email")
        found[field_name] = hit[0] if hit else None
        if hit:
            sources[field_name] = hit[1]
    if found["email"] is None and looks_like_email(assertion.name_id):
        found["email"] = assertion.name_id
        sources["email"] = "NameID"
    if found["display_name"] is None and (found["first_name"] or found["last_name"]):
        found["display_name"] = " ".join(v for v in (found["first_name"], found["last_name"]) if v)
        sources["display_name"] = "first_name+last_name"
    return AgentProfile(
        email=found["email"],
        first_name=found["first_name"],
        last_name=found["last_name"],
        display_name=found["display_name"],
        sources=MappingProxyType(sources),
    )
