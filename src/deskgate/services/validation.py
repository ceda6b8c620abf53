"""Checks on values typed by people (forms, CLI)."""

from __future__ import annotations

import re

from deskgate.errors import InvalidInput
from deskgate.store.models import Plan, Role

# Deliberately simple: one @, a dot in the domain, no spaces. The IdP owns real verification.
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]+$")


def email(value: str, *, field: str = "email") -> str:
    value = (value or "").strip()
    if len(value) > 320 or not _EMAIL.match(value):
        raise InvalidInput(f"'{value}' is not a valid email address.", field=field)
    return value


def plan(value: str) -> Plan:
    try:
        return Plan(value)
    except ValueError:
        choices = ", ".join(p.value for p in Plan)
        raise InvalidInput(f"Unknown plan '{value}': choose one of {choices}.", field="plan") from None


def role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(f"Unknown role '{value}': choose one of {choices}.", field="role") from None


def name(value: str, *, field: str, required: bool = False, max_length: int = 200) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"The {field.replace('_', ' ')} is required.", field=field)
    if len(value) > max_length:
        raise InvalidInput(
            f"The {field.replace('_', ' ')} is too long ({len(value)} characters; at most {max_length}).",
            field=field,
        )
    return value


def password(value: str) -> str:
    if len(value) < 10:
        raise InvalidInput("Passwords need at least 10 characters.", field="password")
    if len(value) > 1024:
        raise InvalidInput("Passwords may have at most 1024 characters.", field="password")
    return value
