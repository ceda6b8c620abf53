"""Checks on values typed by people (forms, CLI)."""

from __future__ import annotations

import re

from deskgate.errors import InvalidInput
from deskgate.store.models import Plan, Role

# The one check of an email address deskgate is asked to create an agent with (forms, CLI, JIT).
# Local part: RFC 5322's dot-atom, as IdPs send it: runs of letters, digits and
# ! # $ % & ' * + / = ? ^ _ ` { | } ~ - (and non-ASCII letters, RFC 6532) joined by single dots.
# Quoted local parts ("john doe"@x) are refused: no IdP issues them, and they can hide spaces,
# "@" and backslash escapes, and name the same mailbox as an unquoted address.
# Domain: dot-separated labels of letters, digits, "-" and "_"; no IP literals. Deliverability
# is not checked: the IdP owns real verification.
_ATEXT = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f])"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")
MAX_EMAIL_LENGTH = 320  # the agents.email column
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321


def _email_problem(value: str) -> str | None:
    """Why `value` is not an address deskgate accepts, or None."""
    if value.startswith('"'):
        return 'quoted local parts ("...") are not accepted'
    if not value.isprintable() or any(c.isspace() for c in value):
        return "it contains a space or an invisible character"
    if len(value) > MAX_EMAIL_LENGTH:
        return f"it is {len(value)} characters long; at most {MAX_EMAIL_LENGTH}"
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return "expected name@domain"
    if "@" in local:
        return "it has more than one @"
    if len(local) > MAX_LOCAL_PART_LENGTH:
        return f"the part before @ is {len(local)} characters long; at most {MAX_LOCAL_PART_LENGTH}"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before @ may not start or end with a dot, nor have two dots in a row"
    if not _DOT_ATOM.fullmatch(local):
        bad = next((c for c in local if c != "." and not re.fullmatch(_ATEXT, c)), "?")
        return (
            f"'{bad}' is not allowed before @ (letters, digits, dots and !#$%&'*+/=?^_`{{|}}~- are)"
        )
    if not _DOMAIN.fullmatch(domain):
        return f"'{domain}' is not a domain name (expected something like example.com)"
    return None


def email(value: str, *, field: str = "email") -> str:
    value = (value or "").strip()
    problem = _email_problem(value)
    if problem is not None:
        shown = value if len(value) <= 100 else value[:100] + "…"
        raise InvalidInput(f"'{shown}' is not a valid email address: {problem}.", field=field)
    return value


def plan(value: str) -> Plan:
    try:
        return Plan(value)
    except ValueError:
        choices = ", ".join(p.value for p in Plan)
        raise InvalidInput(
            f"Unknown plan '{value}': choose one of {choices}.", field="plan"
        ) from None


def role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(
            f"Unknown role '{value}': choose one of {choices}.", field="role"
        ) from None


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
