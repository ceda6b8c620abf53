"""Attribute names of real IdPs mapped to an agent profile."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from deskgate.saml.acs import VerifiedAssertion, validate_response
from deskgate.saml.attributes import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_NAMES_READ,
    AgentProfile,
    profile_from_assertion,
)
from deskgate.saml.config import SPConfig
from deskgate.saml.metadata import parse_idp_metadata

WS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
NOW = datetime(2025, 3, 14, tzinfo=UTC)


def assertion(
    attributes: dict[str, tuple[str, ...]], name_id: str = "00u1abcd"
) -> VerifiedAssertion:
    return VerifiedAssertion(
        assertion_id="_a",
        issuer="https://idp.example.test",
        name_id=name_id,
        name_id_format=None,
        session_index=None,
        in_response_to=None,
        issue_instant=NOW,
        not_on_or_after=NOW,
        replay_cache_until=NOW,
        session_not_on_or_after=None,
        attributes=attributes,
        response_signed=False,
        assertion_signed=True,
        encrypted=False,
        signing_certificate_sha256="AA",
    )


def profile(attributes: dict[str, tuple[str, ...]], name_id: str = "00u1abcd") -> AgentProfile:
    return profile_from_assertion(assertion(attributes, name_id))


@pytest.mark.parametrize(
    ("idp", "attributes", "expected"),
    [
        (
            "okta",
            {"firstName": ("Ada",), "lastName": ("Lovelace",), "email": ("ada@example.com",)},
            ("ada@example.com", "Ada", "Lovelace", "Ada Lovelace"),
        ),
        (
            "entra",
            {
                WS + "givenname": ("Ada",),
                WS + "surname": ("Lovelace",),
                WS + "emailaddress": ("ada@example.com",),
                WS + "name": ("ada@tenant.onmicrosoft.com",),
                "http://schemas.microsoft.com/identity/claims/displayname": ("Ada L.",),
            },
            ("ada@example.com", "Ada", "Lovelace", "Ada L."),
        ),
        (
            "entra-upn-only",
            {WS + "name": ("ada@tenant.onmicrosoft.com",)},
            ("ada@tenant.onmicrosoft.com", None, None, None),
        ),
        (
            "onelogin",
            {
                "User.FirstName": ("Ada",),
                "User.LastName": ("Lovelace",),
                "User.email": ("ada@example.com",),
            },
            ("ada@example.com", "Ada", "Lovelace", "Ada Lovelace"),
        ),
        (
            "ldap-oids",
            {
                "urn:oid:2.5.4.42": ("Ada",),
                "urn:oid:2.5.4.4": ("Lovelace",),
                "urn:oid:0.9.2342.19200300.100.1.3": ("ada@example.com",),
                "urn:oid:2.16.840.1.113730.3.1.241": ("Countess Lovelace",),
            },
            ("ada@example.com", "Ada", "Lovelace", "Countess Lovelace"),
        ),
        (
            "lower-case",
            {"firstname": ("Ada",), "lastname": ("Lovelace",), "EMAIL": ("ada@example.com",)},
            ("ada@example.com", "Ada", "Lovelace", "Ada Lovelace"),
        ),
        (
            "snake-case",
            {"first_name": ("Ada",), "family_name": ("Lovelace",), "mail": ("ada@example.com",)},
            ("ada@example.com", "Ada", "Lovelace", "Ada Lovelace"),
        ),
    ],
)
def test_known_idp_attribute_names(idp, attributes, expected):
    got = profile(attributes)
    assert (got.email, got.first_name, got.last_name, got.display_name) == expected


def test_email_falls_back_to_an_email_shaped_name_id():
    got = profile({"firstName": ("Ada",)}, name_id="ada@example.com")
    assert got.email == "ada@example.com"
    assert got.sources["email"] == "NameID"


def test_no_email_when_nothing_looks_like_one():
    got = profile({WS + "name": ("ADA\\lovelace",)}, name_id="9e34fa21-4e8f-4dee-b565-648dbcf25eff")
    assert got == AgentProfile(email=None, first_name=None, last_name=None, display_name=None)


def test_priority_and_empty_values():
    got = profile(
        {"mail": ("second@example.com",), "email": ("", "first@example.com"), "givenName": ("  ",)}
    )
    assert got.email == "first@example.com"  # "email" outranks "mail"; empty values are skipped
    assert got.first_name is None
    assert got.sources["email"] == "email"


def test_only_a_first_name_makes_the_display_name():
    assert profile({"givenName": ("Ada",)}).display_name == "Ada"


def test_attribute_names_read_are_published_once_each():
    lowered = [name.lower() for name in ATTRIBUTE_NAMES_READ]
    assert len(lowered) == len(set(lowered))
    assert set(ATTRIBUTE_NAMES) == {"email", "first_name", "last_name", "display_name"}
    for expected in (
        "firstName",
        "User.email",
        WS + "emailaddress",
        "urn:oid:2.5.4.42",
        "http://schemas.microsoft.com/identity/claims/displayname",
    ):
        assert expected in ATTRIBUTE_NAMES_READ


def test_entra_capture_end_to_end(corpus: Path, sp_key):
    """Real Entra ID metadata + response, through parse_idp_metadata and validate_response, to a profile."""
    base = corpus / "ssoready/internal/saml/testdata/assertions/adfs"
    idp = parse_idp_metadata((base / "metadata.xml").read_bytes(), NOW).idp
    sp = SPConfig(
        entity_id="http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml",
        acs_url="http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs",
        private_key_pem=sp_key.private_key_pem,
        certificate_pem=sp_key.certificate_pem,
    )
    import base64

    verified = validate_response(
        base64.b64encode((base / "assertion.xml").read_bytes()).decode(),
        sp,
        idp,
        datetime(2023, 11, 17, 18, 39, 30, tzinfo=UTC),
    )
    got = profile_from_assertion(verified)
    assert got.email == "ulysse.carion@codomaindata.com"
    assert got.sources["email"] == WS + "emailaddress"  # not the #EXT# guest NameID
    assert (got.first_name, got.last_name) == ("Ulysse", "Carion")
    assert got.display_name == "Ulysse Carion"
