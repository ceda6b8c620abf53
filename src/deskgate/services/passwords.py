"""Password hashing (argon2id) and generation."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~40 ms here, where argon2-cffi's
# default (64 MiB, 3 passes, 4 lanes) costs ~250 ms a sign-in on a 2-core node.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

# Verified against when the email is unknown, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a None hash costs the same time and is always False."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(15)
