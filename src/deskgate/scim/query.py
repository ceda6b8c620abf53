"""List queries: the ``filter`` IR the store translates to SQL, and paging/sorting.

Filter IR
---------
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

Hostile filters are refused with ``invalidFilter`` (400): longer than
:data:`MAX_FILTER_LENGTH` bytes, more than :data:`MAX_FILTER_NODES` nodes,
nested deeper than :data:`MAX_FILTER_DEPTH`, or anything the whitelist does
not cover. Nothing is ever silently dropped.

Tolerance: when a filter does not parse, unquoted values after an operator are
quoted and the filter parsed again (Entra's documentation shows
``externalId eq jyoung``; Microsoft's Postman suite sends ``userName sw O``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from scim2_models import Path, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)
from scim2_models.path import Not as AstNot
from scim2_models.path import Present as AstPresent

from .errors import InvalidFilterException, InvalidPathException, InvalidValueException
from .models import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from .records import ResourceKind

DEFAULT_COUNT = 100
"""Page size when a request gives no ``count``."""

MAX_COUNT = 1000
"""Largest page served; a larger ``count`` is clamped. Published as
``filter.maxResults`` in the ServiceProviderConfig."""

MAX_START_INDEX = 10**18 - 1
"""Largest ``startIndex`` (and ``count``, before clamping) accepted; larger is 400
invalidValue, so no paging value can overflow a database integer."""

MAX_FILTER_LENGTH = 4096
"""Longest accepted ``filter``, in UTF-8 bytes."""

MAX_FILTER_NODES = 50
"""Most expressions (comparisons, presence tests, and/or/not, value paths) in a filter."""

MAX_FILTER_DEPTH = 10
"""Deepest nesting of and/or/not/value paths in a filter."""


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


class SortOrder(StrEnum):
    ASCENDING = "ascending"
    DESCENDING = "descending"


@dataclass(frozen=True, slots=True)
class SortKey:
    attr: str
    case_exact: bool


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list/search request.

    ``start_index`` is 1-based; ``offset`` is the 0-based row offset. ``count`` is
    in ``0..MAX_COUNT`` (0: return only totalResults). ``sort_by`` None means the
    store's stable default order (e.g. created, then id). ``attributes`` and
    ``excluded_attributes`` are passed on to the serializers.
    """

    filter: Filter | None = None
    start_index: int = 1
    count: int = DEFAULT_COUNT
    sort_by: SortKey | None = None
    sort_order: SortOrder = SortOrder.ASCENDING
    attributes: tuple[str, ...] = ()
    excluded_attributes: tuple[str, ...] = ()

    @property
    def offset(self) -> int:
        return self.start_index - 1


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

_ALIASES: dict[ResourceKind, dict[str, str]] = {
    ResourceKind.USER: {"emails": "emails.value"},
    ResourceKind.GROUP: {"members": "members.value"},
}

# Attributes whose value is the same for every resource: (type, value, case_exact).
_CONSTANTS: dict[ResourceKind, dict[str, tuple[AttrType, Any, bool]]] = {
    ResourceKind.USER: {
        "emails.type": (_S, "work", False),
        "emails.primary": (AttrType.BOOLEAN, True, False),
        "meta.resourcetype": (_S, "User", True),
    },
    ResourceKind.GROUP: {"meta.resourcetype": (_S, "Group", True)},
}

# Complex attributes that can only be tested for presence.
_COMPLEX_PRESENCE: dict[ResourceKind, dict[str, tuple[str, ...] | bool]] = {
    ResourceKind.USER: {
        "name": ("name.givenname", "name.familyname"),
        "emails": ("emails.value",),
        "meta": True,
    },
    ResourceKind.GROUP: {"meta": True, "members": ("members.value",)},
}

# Value paths: attribute -> whether it holds exactly one entry per resource
# (then any inner filter is exact; otherwise only or-ed tests are).
_VALUE_PATHS: dict[ResourceKind, dict[str, bool]] = {
    ResourceKind.USER: {"emails": True},
    ResourceKind.GROUP: {"members": False},
}

_SCHEMAS: dict[ResourceKind, str] = {
    ResourceKind.USER: USER_SCHEMA,
    ResourceKind.GROUP: GROUP_SCHEMA,
}


def attribute_table(kind: ResourceKind) -> Mapping[str, AttributeSpec]:
    return USER_ATTRIBUTES if kind is ResourceKind.USER else GROUP_ATTRIBUTES


# ---------------------------------------------------------------------------
# parsing


def _invalid(detail: str, expression: str | None = None) -> InvalidFilterException:
    return InvalidFilterException(detail=detail, filter=expression)


_OPERATOR_THEN_BARE = re.compile(
    r"(?<![A-Za-z0-9$_.\-])(eq|ne|co|sw|ew|gt|ge|lt|le)(\s+)([^\s\"()\[\]]+)", re.IGNORECASE
)
_LITERAL = re.compile(
    r"true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.IGNORECASE
)


def _quote_bare_values(expression: str) -> str:
    """Quote the unquoted values that follow a comparison operator.

    Quoted strings are copied untouched, so nothing inside a literal changes.
    """
    out: list[str] = []
    position = 0
    length = len(expression)
    while position < length:
        char = expression[position]
        if char == '"':
            end = position + 1
            while end < length and expression[end] != '"':
                end += 2 if expression[end] == "\\" else 1
            out.append(expression[position : end + 1])
            position = end + 1
            continue
        match = _OPERATOR_THEN_BARE.match(expression, position)
        if match and (position == 0 or expression[position - 1].isspace()):
            operator, space, value = match.groups()
            if _LITERAL.fullmatch(value):
                out.append(match.group(0))
            else:
                escaped = value.replace("\\", "\\\\")
                out.append(f'{operator}{space}"{escaped}"')
            position = match.end()
            continue
        out.append(char)
        position += 1
    return "".join(out)


def _parse_ast(expression: str) -> FilterNode:
    try:
        return ScimFilter(expression).ast
    except InvalidFilterException as first_error:
        repaired = _quote_bare_values(expression)
        if repaired == expression:
            raise _invalid(first_error.detail, expression) from None
        try:
            return ScimFilter(repaired).ast
        except InvalidFilterException:
            raise _invalid(first_error.detail, expression) from None


def _measure(node: FilterNode) -> tuple[int, int]:
    """(nodes, depth) of a filter tree, iteratively."""
    nodes = 0
    max_depth = 0
    stack: list[tuple[FilterNode, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        nodes += 1
        max_depth = max(max_depth, depth)
        if isinstance(current, LogicalExpr):
            stack.extend((term, depth + 1) for term in current.terms)
        elif isinstance(current, AstNot):
            stack.append((current.expr, depth + 1))
        elif isinstance(current, ValuePath):
            stack.append((current.val_filter, depth + 1))
    return nodes, max_depth


def _fold_and(terms: list[FilterExpr | Const]) -> FilterExpr | Const:
    kept: list[FilterExpr] = []
    for term in terms:
        if isinstance(term, Const):
            if not term.value:
                return Const(False)
            continue
        if isinstance(term, And):
            kept.extend(term.terms)
        else:
            kept.append(term)
    if not kept:
        return Const(True)
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _fold_or(terms: list[FilterExpr | Const]) -> FilterExpr | Const:
    kept: list[FilterExpr] = []
    for term in terms:
        if isinstance(term, Const):
            if term.value:
                return Const(True)
            continue
        if isinstance(term, Or):
            kept.extend(term.terms)
        else:
            kept.append(term)
    if not kept:
        return Const(False)
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


def _fold_not(expr: FilterExpr | Const) -> FilterExpr | Const:
    if isinstance(expr, Const):
        return Const(not expr.value)
    if isinstance(expr, Not):
        return expr.expr
    return Not(expr)


def _parse_datetime(value: Any, attr: str) -> datetime:
    if not isinstance(value, str):
        raise _invalid(f"'{attr}' compares with a dateTime string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 reads at most 6 fractional digits; .NET clients send 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"{value!r} is not a dateTime for '{attr}'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_boolean(value: Any, attr: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(f"'{attr}' compares with true or false")


def _typed_value(attr_type: AttrType, value: Any, attr: str) -> str | bool | datetime:
    if attr_type is AttrType.BOOLEAN:
        return _parse_boolean(value, attr)
    if attr_type is AttrType.DATETIME:
        return _parse_datetime(value, attr)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(f"'{attr}' compares with a string")
    return str(value)


_ORDERING = {CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE}
_SUBSTRING = {CompareOp.CO, CompareOp.SW, CompareOp.EW}


def _check_operator(spec_type: AttrType, op: CompareOp, attr: str, multi_valued: bool) -> None:
    if spec_type is AttrType.BOOLEAN and op is not CompareOp.EQ:
        raise _invalid(f"operator '{op.value}' cannot be applied to the boolean '{attr}'")
    if spec_type is AttrType.DATETIME and op in _SUBSTRING:
        raise _invalid(f"operator '{op.value}' cannot be applied to the dateTime '{attr}'")
    if multi_valued and op in _ORDERING:
        raise _invalid(f"operator '{op.value}' is not supported on the multi-valued '{attr}'")


def _compare_constant(
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


class _Translator:
    def __init__(self, kind: ResourceKind, expression: str) -> None:
        self.kind = kind
        self.expression = expression
        self.table = attribute_table(kind)

    # -- attribute names ------------------------------------------------------

    def _key(self, attr_path: AttrPath, prefix: str | None) -> str:
        if attr_path.uri is not None:
            if prefix is not None:
                raise _invalid(
                    f"'{attr_path}' inside a value filter cannot carry a schema", self.expression
                )
            uri = attr_path.uri.lower()
            if uri != _SCHEMAS[self.kind].lower():
                if uri == ENTERPRISE_SCHEMA.lower() and self.kind is ResourceKind.USER:
                    raise _invalid(f"filtering on '{attr_path}' is not supported", self.expression)
                raise _invalid(f"unknown schema in '{attr_path}'", self.expression)
        name = (
            attr_path.attr
            if attr_path.sub_attr is None
            else (f"{attr_path.attr}.{attr_path.sub_attr}")
        )
        if prefix is not None:
            if attr_path.sub_attr is not None:
                raise _invalid(f"'{attr_path}' is not a sub-attribute of {prefix}", self.expression)
            name = f"{prefix}.{name}"
        key = name.lower()
        return _ALIASES[self.kind].get(key, key)

    def _unknown(self, attr_path: AttrPath, prefix: str | None) -> InvalidFilterException:
        shown = f"{prefix}.{attr_path}" if prefix else str(attr_path)
        return _invalid(f"filtering on '{shown}' is not supported", self.expression)

    # -- nodes ----------------------------------------------------------------

    def visit(self, node: FilterNode, prefix: str | None = None) -> FilterExpr | Const:
        if isinstance(node, LogicalExpr):
            terms = [self.visit(term, prefix) for term in node.terms]
            return _fold_and(terms) if node.op is LogicalOperator.and_ else _fold_or(terms)
        if isinstance(node, AstNot):
            return _fold_not(self.visit(node.expr, prefix))
        if isinstance(node, AstPresent):
            return self._present(node.attr_path, prefix)
        if isinstance(node, Comparison):
            return self._compare(node, prefix)
        if isinstance(node, ValuePath):
            return self._value_path(node, prefix)
        raise _invalid("unsupported filter expression", self.expression)  # pragma: no cover

    def _present(self, attr_path: AttrPath, prefix: str | None) -> FilterExpr | Const:
        key = self._key(attr_path, prefix)
        if key in _CONSTANTS[self.kind]:
            return Const(True)
        complex_attr = _COMPLEX_PRESENCE[self.kind].get(key)
        if complex_attr is True:
            return Const(True)
        if isinstance(complex_attr, tuple):
            return _fold_or([self._present_key(sub) for sub in complex_attr])
        if key not in self.table:
            raise self._unknown(attr_path, prefix)
        return self._present_key(key)

    def _present_key(self, key: str) -> FilterExpr | Const:
        spec = self.table[key]
        return Const(True) if spec.always_present else Present(spec.name)

    def _compare(self, node: Comparison, prefix: str | None) -> FilterExpr | Const:
        key = self._key(node.attr_path, prefix)
        negate = node.op is CompareOperator.ne
        op = CompareOp.EQ if negate else CompareOp(node.op.value)
        if key in _CONSTANTS[self.kind]:
            attr_type, constant, case_exact = _CONSTANTS[self.kind][key]
            if node.value is None:
                if op is not CompareOp.EQ:
                    raise _invalid("only eq and ne compare with null", self.expression)
                return Const(negate)  # a constant is never null
            try:
                _check_operator(attr_type, op, str(node.attr_path), False)
                value = _typed_value(attr_type, node.value, str(node.attr_path))
            except InvalidFilterException as exc:
                raise _invalid(exc.detail, self.expression) from None
            matched = _compare_constant(attr_type, constant, case_exact, op, value)
            return Const(matched != negate)
        spec = self.table.get(key)
        if spec is None:
            raise self._unknown(node.attr_path, prefix)
        if node.value is None:
            if op is not CompareOp.EQ:
                raise _invalid("only eq and ne compare with null", self.expression)
            present = self._present_key(key)
            return present if negate else _fold_not(present)
        try:
            _check_operator(spec.type, op, spec.name, spec.multi_valued)
            value = _typed_value(spec.type, node.value, spec.name)
        except InvalidFilterException as exc:
            raise _invalid(exc.detail, self.expression) from None
        compare = Compare(spec.name, op, value, spec.case_exact)
        return Not(compare) if negate else compare

    def _value_path(self, node: ValuePath, prefix: str | None) -> FilterExpr | Const:
        if prefix is not None:  # pragma: no cover - the grammar forbids nesting
            raise _invalid("value filters cannot be nested", self.expression)
        if (
            node.attr_path.uri is not None
            and node.attr_path.uri.lower() != _SCHEMAS[self.kind].lower()
        ):
            raise self._unknown(node.attr_path, None)
        attr = node.attr_path.attr.lower()
        single_entry = _VALUE_PATHS[self.kind].get(attr)
        if single_entry is None:
            raise _invalid(
                f"'{node.attr_path}' is not a multi-valued attribute that can be filtered",
                self.expression,
            )
        if not single_entry and not _is_disjunction_of_tests(node.val_filter):
            # "some member satisfies A and B" is not "some satisfies A and some
            # satisfies B": only or-ed tests distribute over "some member".
            raise _invalid(
                f"only or-ed tests on 'value' are supported inside '{node.attr_path}[...]'",
                self.expression,
            )
        result = self.visit(node.val_filter, prefix=attr)
        if result == Const(True) and self.kind is ResourceKind.USER:
            # "some email is the work/primary one": the user has a (contact) email at all.
            return Present("emails.value")
        return result


def _is_disjunction_of_tests(node: FilterNode) -> bool:
    if isinstance(node, Comparison | AstPresent):
        return (
            node.attr_path.sub_attr is None
            and node.attr_path.uri is None
            and not (isinstance(node, Comparison) and node.op is CompareOperator.ne)
        )
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.or_:
        return all(_is_disjunction_of_tests(term) for term in node.terms)
    return False


def parse_filter(kind: ResourceKind, expression: str) -> Filter:
    """Parse a SCIM ``filter`` for Users or Groups into the IR (see module doc).

    Raises InvalidFilterException (400 ``invalidFilter``) for anything not supported.
    """
    if not isinstance(expression, str):
        raise _invalid("the filter must be a string")
    if len(expression.encode("utf-8", "surrogatepass")) > MAX_FILTER_LENGTH:
        raise _invalid(f"the filter is longer than {MAX_FILTER_LENGTH} bytes")
    if not expression.strip():
        raise _invalid("the filter is empty", expression)
    ast = _parse_ast(expression)
    nodes, depth = _measure(ast)
    if nodes > MAX_FILTER_NODES:
        raise _invalid(f"the filter has more than {MAX_FILTER_NODES} expressions", expression)
    if depth > MAX_FILTER_DEPTH:
        raise _invalid(f"the filter nests deeper than {MAX_FILTER_DEPTH} levels", expression)
    return _Translator(kind, expression).visit(ast)


# ---------------------------------------------------------------------------
# list queries


def _integer(value: Any, name: str) -> int | None:
    """An integer of at most 18 digits: any such value fits every database's BIGINT."""
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        number = int(value)
    if number is None or abs(number) > MAX_START_INDEX:
        huge = isinstance(value, int) and value.bit_length() > 256
        received = "a number of more than 70 digits" if huge else repr(value)
        received = received if len(received) <= 60 else received[:60] + "..."
        raise InvalidValueException(
            detail=f"'{name}' must be an integer between -{MAX_START_INDEX} and {MAX_START_INDEX}; "
            f"received {received}"
        )
    return number


def _attribute_list(value: Any, name: str) -> tuple[str, ...]:
    """``attributes``/``excludedAttributes``: comma-separated or a list.

    A value filter, which RFC 7644 §3.9 does not allow there (Microsoft's
    Postman suite sends ``attributes=emails[type eq "work"]``), selects its
    whole attribute. Unknown attribute names are kept (and have no effect).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise InvalidValueException(detail=f"'{name}' must be a comma-separated string")
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidValueException(detail=f"'{name}' must hold attribute names")
        for raw in _split_outside_brackets(item):
            raw = raw.strip()
            if not raw:
                continue
            try:
                ast = Path(raw).ast
            except InvalidPathException:
                raise InvalidPathException(
                    path=raw, detail=f"{raw!r} in '{name}' is not an attribute path"
                ) from None
            if isinstance(ast, ValuePath):
                raw = str(ast.attr_path) + (f".{ast.sub_attr}" if ast.sub_attr else "")
            elif not isinstance(ast, AttrPath):
                raise InvalidPathException(
                    path=raw, detail=f"{raw!r} in '{name}' is not an attribute path"
                )
            if raw not in result:
                result.append(raw)
    return tuple(result)


def _split_outside_brackets(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    in_string = False
    current: list[str] = []
    escaped = False
    for char in text:
        if in_string:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_sort_by(kind: ResourceKind, sort_by: str) -> SortKey:
    """A ``sortBy`` attribute, canonicalised against the whitelist (400 invalidPath)."""
    try:
        ast = Path(sort_by.strip()).ast
    except InvalidPathException:
        ast = None
    if not isinstance(ast, AttrPath):
        raise InvalidPathException(path=sort_by, detail=f"cannot sort on {sort_by!r}")
    try:
        key = _Translator(kind, sort_by)._key(ast, None)
    except InvalidFilterException:
        raise InvalidPathException(path=sort_by, detail=f"cannot sort on {sort_by!r}") from None
    spec = attribute_table(kind).get(key)
    if spec is None or not spec.sortable:
        raise InvalidPathException(path=sort_by, detail=f"cannot sort on {sort_by!r}")
    return SortKey(spec.name, spec.case_exact)


def parse_list_query(
    kind: ResourceKind,
    *,
    filter: str | None = None,
    start_index: str | int | None = None,
    count: str | int | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
    attributes: str | Sequence[str] | None = None,
    excluded_attributes: str | Sequence[str] | None = None,
) -> ListQuery:
    """Validate the query parameters of ``GET /Users`` or ``GET /Groups``.

    ``startIndex`` < 1 is read as 1; ``count`` < 0 as 0 and > MAX_COUNT as
    MAX_COUNT; missing ``count`` is DEFAULT_COUNT. A non-integer is 400
    invalidValue, a bad ``sortOrder`` 400 invalidValue, a bad ``sortBy`` or
    attribute list 400 invalidPath, a bad filter 400 invalidFilter. Giving both
    ``attributes`` and ``excludedAttributes`` is 400 invalidValue.
    """
    parsed_filter = None
    if filter is not None and filter.strip():
        parsed_filter = parse_filter(kind, filter)

    start = _integer(start_index, "startIndex")
    size = _integer(count, "count")
    start = 1 if start is None or start < 1 else start
    size = DEFAULT_COUNT if size is None else min(max(size, 0), MAX_COUNT)

    sort_key = parse_sort_by(kind, sort_by) if sort_by is not None and sort_by.strip() else None
    order = SortOrder.ASCENDING
    if sort_order is not None and sort_order.strip():
        try:
            order = SortOrder(sort_order.strip().lower())
        except ValueError:
            raise InvalidValueException(
                detail="'sortOrder' must be 'ascending' or 'descending'"
            ) from None

    included = _attribute_list(attributes, "attributes")
    excluded = _attribute_list(excluded_attributes, "excludedAttributes")
    if included and excluded:
        raise InvalidValueException(
            detail="'attributes' and 'excludedAttributes' cannot be used together"
        )
    return ListQuery(
        filter=parsed_filter,
        start_index=start,
        count=size,
        sort_by=sort_key,
        sort_order=order,
        attributes=included,
        excluded_attributes=excluded,
    )


_SEARCH_KEYS = {
    "filter": "filter",
    "startindex": "start_index",
    "count": "count",
    "sortby": "sort_by",
    "sortorder": "sort_order",
    "attributes": "attributes",
    "excludedattributes": "excluded_attributes",
}


def parse_search_request(kind: ResourceKind, body: Any) -> ListQuery:
    """Validate a ``POST /Users/.search`` (or ``/Groups/.search``) SearchRequest body."""
    if not isinstance(body, Mapping):
        raise InvalidValueException(detail="the SearchRequest must be a JSON object")
    arguments: dict[str, Any] = {}
    for key, value in body.items():
        name = _SEARCH_KEYS.get(str(key).lower())
        if name is not None:
            arguments[name] = value
    text = arguments.get("filter")
    if text is not None and not isinstance(text, str):
        raise InvalidFilterException(detail="the filter must be a string")
    for name in ("sort_by", "sort_order"):
        if arguments.get(name) is not None and not isinstance(arguments[name], str):
            raise InvalidValueException(detail=f"'{name}' must be a string")
    return parse_list_query(kind, **arguments)
