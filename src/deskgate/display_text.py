"""Bound and neutralise text that others chose before it is stored and shown to admins.

Sign-in details, emails from assertions, user agents and SCIM request details reach the admin's
pages; much of that text came from whoever sent the request. Jinja escapes HTML; this removes
what escaping does not: control characters (NUL breaks PostgreSQL), bidi overrides and other
invisible format characters that make a line read differently from what it holds, lone
surrogates, and length beyond what a page should show.
"""

from __future__ import annotations

import unicodedata

DISPLAY_LIMIT = 500
"""Most characters kept of any one recorded value (ellipsis included)."""

ELLIPSIS = "…"

# Cc: C0/C1 controls (NUL, ESC, CR…); Cf: format characters (bidi embeddings, overrides and
# isolates U+202A–202E, U+2066–2069, zero-width U+200B–200F, BOM); Cs: lone surrogates;
# Co: private use; Zl/Zp: line and paragraph separators.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_AS_SPACE = frozenset("\t\n\r\v\f\x85\u2028\u2029")


def for_display(value: str | None, limit: int = DISPLAY_LIMIT) -> str | None:
    """`value` fit to record for an admin: one line, visible characters only, at most `limit`
    characters (the last an ellipsis when cut). None and "" stay as they are."""
    if not value:
        return value
    cleaned = "".join(
        " " if char in _AS_SPACE else char
        for char in value[: limit * 4]  # bound the work before filtering
        if char in _AS_SPACE or unicodedata.category(char) not in _DROPPED
    )
    if len(cleaned) > limit or len(value) > limit * 4:
        cleaned = cleaned[: limit - 1] + ELLIPSIS
    return cleaned
