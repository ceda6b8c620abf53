"""Resource versions as weak ETags (RFC 7644 §3.14).

The ETag of a resource is ``W/"<version>"``: weak, because a representation
varies with ``attributes``/``excludedAttributes`` while the version does not.
It is both ``meta.version`` and the ``ETag`` header. Preconditions compare
opaque tags with the weak comparison (RFC 7232 §2.3.2), as SCIM clients send
the weak tags they were given back in ``If-Match``.
"""

from __future__ import annotations

import re

from .errors import PreconditionFailedException

_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def format_etag(version: int) -> str:
    """``W/"<version>"``, e.g. ``W/"3"``."""
    return f'W/"{version}"'


def parse_etag_list(header: str) -> list[str] | None:
    """The opaque tags of an ``If-Match``/``If-None-Match`` value.

    Returns ``None`` for ``*``, raises ``ValueError`` for a malformed value.
    """
    stripped = header.strip()
    if stripped == "*":
        return None
    tags: list[str] = []
    position = 0
    while position < len(stripped):
        match = _ENTITY_TAG.match(stripped, position)
        if match is None:
            raise ValueError(f"malformed entity-tag list: {header!r}")
        tags.append(match.group(1))
        position = match.end()
    if not tags:
        raise ValueError(f"malformed entity-tag list: {header!r}")
    return tags


def if_match_satisfied(header: str | None, version: int) -> bool:
    """Whether an ``If-Match`` header (absent = satisfied) allows a write on ``version``.

    A malformed header is not satisfied.
    """
    if header is None:
        return True
    try:
        tags = parse_etag_list(header)
    except ValueError:
        return False
    return tags is None or str(version) in tags


def check_if_match(header: str | None, version: int) -> None:
    """Raise 412 PreconditionFailed unless :func:`if_match_satisfied`."""
    if not if_match_satisfied(header, version):
        raise PreconditionFailedException(
            detail=f"If-Match does not match the current version {format_etag(version)}"
        )


def if_none_match_hit(header: str | None, version: int) -> bool:
    """Whether a GET with ``If-None-Match`` should be answered 304 Not Modified."""
    if header is None:
        return False
    try:
        tags = parse_etag_list(header)
    except ValueError:
        return False
    return tags is None or str(version) in tags
