"""The filter IR: what a parsed SCIM ``filter`` is, the attributes it may name, and
the values and operators each attribute type allows.

A filter is parsed by scim2-models (RFC 7644 §3.4.2.2 grammar, Entra's
``emails[type eq "work"].value eq "x"`` included) and turned into a small tree:

* ``Compare(attr, op, value, case_exact)`` - ``op`` is one of eq, co, sw, ew,
  gt, ge, lt, le. ``ne`` never appears: ``a ne v`` becomes ``Not(Compare(a, eq, v))``.
  ``value`` is never None (``a eq null`` becomes ``Not(Present(a))``).
* ``Present(attr)`` - the attribute has a value (SQL: ``IS NOT NULL`` and not ``''``).
* ``And(terms)``, ``Or(terms)`` (two terms or more), ``Not(expr)``.
* ``Const(value)`` - only ever the *whole* filter, after constant folding
  (``meta.resourceType eq "User"`` is always true).

Logic is two-valued: a ``Compare`` on an absent attribute is false, and ``Not``
is plain negation (SQL: translate ``Compare`` as ``COALESCE(col <op> :v, FALSE)``).
For the multi-valued ``members.value``, ``Compare``/``Present`` mean "some member
satisfies it" (an ``EXISTS`` on the membership table).

When ``case_exact`` is False (strings only), compare case-insensitively
(``lower(col)`` against ``lower(:v)``), for every operator, ordering included.
Datetimes are aware UTC values. :func:`deskgate.scim.evaluate.matches` is the
reference implementation of these semantics (tested against scim2-models).

Canonical attributes (the whitelist; anything else is ``invalidFilter``):

======================  ==========  ==========  ===========================
attribute               type        case_exact  notes
======================  ==========  ==========  ===========================
Users
``id``                  string      yes
``userName``            string      no          the IdP's identifier
``emails.value``        string      no          the contact email (primary,
                                                else work); ``emails`` too
``externalId``          string      yes
``displayName``         string      no
``name.givenName``      string      no
``name.familyName``     string      no
``active``              boolean     n/a         eq only (and ne, pr)
``title``               string      no
``locale``              string      no
``meta.created``        datetime    n/a         no co/sw/ew
``meta.lastModified``   datetime    n/a         no co/sw/ew
Groups
``id``                  string      yes
``displayName``         string      no
``externalId``          string      yes
``members.value``       string      yes         multi-valued; no ordering ops
``meta.created``        datetime    n/a
``meta.lastModified``   datetime    n/a
======================  ==========  ==========  ===========================

``emails.type`` (read as "work"), ``emails.primary`` (read as true) and
``meta.resourceType`` are folded into constants and never reach the store:
filters on emails test the contact email, which is the primary or work one
(``emails[type eq "work"].value eq "x"``, Entra's form, is exact for the one
work email Entra and Okta send).
Attribute names are case-insensitive and may carry their schema URN prefix.
Values are typed: ``bool`` for ``active`` (Entra's ``"True"``/``"False"``
strings accepted), timezone-aware ``datetime`` (naive means UTC) for dates,
``str`` otherwise (an integer literal is read as its decimal string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from .errors import InvalidFilterException
from .records import ResourceKind


class AttrType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"


class CompareOp(StrEnum):
    EQ = "eq"
    CO = "co"
    SW = "sw"
    EW = "ew"
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """How the store must treat one canonical attribute."""

    name: str
    type: AttrType
    case_exact: bool = False
    multi_valued: bool = False
    always_present: bool = False
    sortable: bool = True


@dataclass(frozen=True, slots=True)
class Compare:
    attr: str
    op: CompareOp
    value: str | bool | datetime
    case_exact: bool


@dataclass(frozen=True, slots=True)
class Present:
    attr: str


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[FilterExpr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[FilterExpr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    expr: FilterExpr


@dataclass(frozen=True, slots=True)
class Const:
    """A filter that matches every resource (True) or none (False)."""

    value: bool


FilterExpr: TypeAlias = Compare | Present | And | Or | Not
"""A filter node the store translates."""

Filter: TypeAlias = FilterExpr | Const
"""A parsed filter: a node, or a constant standing for the whole filter."""


_S = AttrType.STRING
_META = {
    "meta.created": AttributeSpec(
        "meta.created", AttrType.DATETIME, case_exact=True, always_present=True
    ),
    "meta.lastmodified": AttributeSpec(
        "meta.lastModified", AttrType.DATETIME, case_exact=True, always_present=True
    ),
}

USER_ATTRIBUTES: Mapping[str, AttributeSpec] = {
    "id": AttributeSpec("id", _S, case_exact=True, always_present=True),
    "username": AttributeSpec("userName", _S, always_present=True),
    "emails.value": AttributeSpec("emails.value", _S),
    "externalid": AttributeSpec("externalId", _S, case_exact=True),
    "displayname": AttributeSpec("displayName", _S),
    "name.givenname": AttributeSpec("name.givenName", _S),
    "name.familyname": AttributeSpec("name.familyName", _S),
    "active": AttributeSpec("active", AttrType.BOOLEAN, case_exact=True, always_present=True),
    "title": AttributeSpec("title", _S),
    "locale": AttributeSpec("locale", _S),
    **_META,
}
"""Filterable/sortable User attributes, keyed by lower-cased name."""

GROUP_ATTRIBUTES: Mapping[str, AttributeSpec] = {
    "id": AttributeSpec("id", _S, case_exact=True, always_present=True),
    "displayname": AttributeSpec("displayName", _S, always_present=True),
    "externalid": AttributeSpec("externalId", _S, case_exact=True),
    "members.value": AttributeSpec(
        "members.value", _S, case_exact=True, multi_valued=True, sortable=False
    ),
    **_META,
}
"""Filterable/sortable Group attributes, keyed by lower-cased name."""


def attribute_table(kind: ResourceKind) -> Mapping[str, AttributeSpec]:
    return USER_ATTRIBUTES if kind is ResourceKind.USER else GROUP_ATTRIBUTES


# --- typed values and the operators each type allows (raise InvalidFilterException) ---


def _invalid_value(detail: str) -> InvalidFilterException:
    return InvalidFilterException(detail=detail)


def _parse_datetime(value: Any, attr: str) -> datetime:
    if not isinstance(value, str):
        raise _invalid_value(f"'{attr}' compares with a dateTime string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 reads at most 6 fractional digits; .NET clients send 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid_value(f"{value!r} is not a dateTime for '{attr}'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_boolean(value: Any, attr: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid_value(f"'{attr}' compares with true or false")


def typed_value(attr_type: AttrType, value: Any, attr: str) -> str | bool | datetime:
    if attr_type is AttrType.BOOLEAN:
        return _parse_boolean(value, attr)
    if attr_type is AttrType.DATETIME:
        return _parse_datetime(value, attr)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid_value(f"'{attr}' compares with a string")
    return str(value)


_ORDERING = {CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE}
_SUBSTRING = {CompareOp.CO, CompareOp.SW, CompareOp.EW}


def check_operator(spec_type: AttrType, op: CompareOp, attr: str, multi_valued: bool) -> None:
    if spec_type is AttrType.BOOLEAN and op is not CompareOp.EQ:
        raise _invalid_value(f"operator '{op.value}' cannot be applied to the boolean '{attr}'")
    if spec_type is AttrType.DATETIME and op in _SUBSTRING:
        raise _invalid_value(f"operator '{op.value}' cannot be applied to the dateTime '{attr}'")
    if multi_valued and op in _ORDERING:
        raise _invalid_value(f"operator '{op.value}' is not supported on the multi-valued '{attr}'")


def compare_constant(
    attr_type: AttrType, constant: Any, case_exact: bool, op: CompareOp, value: Any
) -> bool:
    if attr_type is AttrType.BOOLEAN:
        same: bool = constant == value
        return same
    left, right = (constant, value) if case_exact else (constant.lower(), value.lower())
    outcomes: dict[CompareOp, bool] = {
        CompareOp.EQ: left == right,
        CompareOp.CO: right in left,
        CompareOp.SW: left.startswith(right),
        CompareOp.EW: left.endswith(right),
        CompareOp.GT: left > right,
        CompareOp.GE: left >= right,
        CompareOp.LT: left < right,
        CompareOp.LE: left <= right,
    }
    return outcomes[op]
