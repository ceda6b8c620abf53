"""Random secrets handed to people or browsers, and the hashes we keep of them."""

from __future__ import annotations

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """SHA-256: these tokens are long and random, so a slow hash adds nothing."""
    return hashlib.sha256(token.encode()).hexdigest()
