"""The one place that decides what a claimable email domain is, and spells it one way.

A domain is compared and stored lower-case, in ASCII (IDNA 2008 with UTS #46 mapping, so
`Bücher.example` and `xn--bcher-kva.example` are one domain), without a trailing dot. It must be
a host name (labels of letters, digits and inner hyphens, 1-63 characters, 253 in all, at least
two labels), not a wildcard, and not a public suffix on its own (`com`, `co.uk`, `github.io`:
the Public Suffix List, bundled with `publicsuffixlist`), since nobody owns every email there.
"""

from __future__ import annotations

import re
from functools import cache

import idna
from publicsuffixlist import PublicSuffixList

from deskgate.errors import InvalidInput

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
MAX_LENGTH = 253


@cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once per process


def _refuse(raw: str, why: str) -> InvalidInput:
    return InvalidInput(f"'{raw}' is not a domain you can claim: {why}.", field="domain")


def normalize_domain(raw: str) -> str:
    """The domain as deskgate stores it, or InvalidInput saying what is wrong."""
    text = (raw or "").strip()
    shown = text[:100]
    if not text:
        raise InvalidInput("Enter a domain, like example.com.", field="domain")
    if "@" in text or "/" in text or ":" in text or any(c.isspace() for c in text):
        raise _refuse(shown, "give the domain alone, like example.com (no email, URL or port)")
    if "*" in text:
        raise _refuse(shown, "wildcards are not allowed; claim each domain on its own")
    text = text.removesuffix(".")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as problem:
        raise _refuse(shown, f"not a valid internationalized domain name ({problem})") from None
    ascii_name = ascii_name.lower()
    if len(ascii_name) > MAX_LENGTH:
        raise _refuse(shown, f"longer than {MAX_LENGTH} characters")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise _refuse(shown, "a domain has at least two labels, like example.com")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise _refuse(
                shown,
                f"the label '{label[:63]}' must be 1-63 letters, digits or inner hyphens",
            )
    if labels[-1].isdigit():
        raise _refuse(shown, "an IP address is not a domain")
    if _public_suffixes().is_public(ascii_name):
        raise _refuse(
            shown, "it is a public suffix that many owners share; claim your own domain under it"
        )
    return ascii_name


def email_domain(email: str | None) -> str | None:
    """The domain of an email address, normalized like a claim, or None if there is none."""
    _, at, domain = (email or "").rpartition("@")
    if not at or not domain:
        return None
    try:
        return idna.encode(domain.removesuffix("."), uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return domain.lower()
