"""Public identifiers: a readable prefix and a time-ordered random part (ULID-style).

`acct_01JD…` in a log says what it names; the time prefix keeps creation order, so
listings sorted by id are stable and index-friendly.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case

ACCOUNT = "acct"
AGENT = "agt"
GROUP = "grp"
SESSION = "ses"
SCIM_TOKEN = "scimtok"
LOGIN_ATTEMPT = "login"
SCIM_REQUEST = "scimreq"
EVENT = "evt"
IDP_CERTIFICATE = "idpcert"
API_KEY = "apikey"
WEBHOOK_ENDPOINT = "whep"
WEBHOOK_DELIVERY = "whdel"
WEBHOOK_ATTEMPT = "whatt"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return `<prefix>_<26 chars>`: 48 bits of milliseconds, then 80 random bits."""
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(randomness, 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
