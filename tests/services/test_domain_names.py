"""What a claimable domain is, and how it is spelled."""

from __future__ import annotations

import pytest

from deskgate.domain_names import email_domain, normalize_domain
from deskgate.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Example.COM", "example.com"),
        ("  acme.test. ", "acme.test"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("mail.acme.co.uk", "mail.acme.co.uk"),
        ("me.github.io", "me.github.io"),
    ],
)
def test_domains_are_lower_case_ascii(raw, stored):
    assert normalize_domain(raw) == stored


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "Enter a domain"),
        ("com", "at least two labels"),
        ("co.uk", "public suffix"),
        ("github.io", "public suffix"),
        ("*.acme.com", "wildcards"),
        ("ada@acme.com", "domain alone"),
        ("https://acme.com/", "domain alone"),
        ("acme.com:443", "domain alone"),
        ("acme .com", "domain alone"),
        ("-acme.com", "not a valid internationalized domain name"),
        ("acme..com", "not a valid internationalized domain name"),
        ("under_score.com", "not a valid internationalized domain name"),
        ("127.0.0.1", "IP address"),
        ("a" * 64 + ".com", "not a valid"),
        (".".join(["abcdefghi"] * 26) + ".com", "too long"),
    ],
)
def test_what_is_not_a_claimable_domain_is_refused_with_the_reason(raw, why):
    with pytest.raises(InvalidInput, match=why) as refused:
        normalize_domain(raw)
    assert refused.value.field == "domain"


def test_the_domain_of_an_email_is_spelled_like_a_claim():
    assert email_domain("Ada@Bücher.Example") == "xn--bcher-kva.example"
    assert email_domain("ada@ACME.test") == "acme.test"
    assert email_domain("no-at-sign") is None
    assert email_domain(None) is None
