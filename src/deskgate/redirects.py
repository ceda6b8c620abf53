"""Where to send a browser after sign-in: only ever a local path."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT = "/console"


def local_path(candidate: str | None, default: str = DEFAULT) -> str:
    """Return `candidate` if it is a path on this site, else `default` (no open redirect).

    Refuses absolute URLs, scheme-relative `//host`, backslash tricks browsers read as `//`,
    and control characters.
    """
    if not candidate or len(candidate) > 2000:
        return default
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if any(ch in candidate for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in candidate):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate
