"""Parsing a SCIM ``filter`` into the IR of :mod:`.filter_ir` (see there for its semantics).

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
from typing import Any

from scim2_models import ScimFilter
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

from .errors import InvalidFilterException
from .filter_ir import (
    And,
    AttrType,
    Compare,
    CompareOp,
    Const,
    Filter,
    FilterExpr,
    Not,
    Or,
    Present,
    attribute_table,
    check_operator,
    compare_constant,
    typed_value,
)
from .models import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from .records import ResourceKind

MAX_FILTER_LENGTH = 4096
"""Longest accepted ``filter``, in UTF-8 bytes."""

MAX_FILTER_NODES = 50
"""Most expressions (comparisons, presence tests, and/or/not, value paths) in a filter."""

MAX_FILTER_DEPTH = 10
"""Deepest nesting of and/or/not/value paths in a filter."""

_ALIASES: dict[ResourceKind, dict[str, str]] = {
    ResourceKind.USER: {"emails": "emails.value"},
    ResourceKind.GROUP: {"members": "members.value"},
}

# Attributes whose value is the same for every resource: (type, value, case_exact).
_CONSTANTS: dict[ResourceKind, dict[str, tuple[AttrType, Any, bool]]] = {
    ResourceKind.USER: {
        "emails.type": (AttrType.STRING, "work", False),
        "emails.primary": (AttrType.BOOLEAN, True, False),
        "meta.resourcetype": (AttrType.STRING, "User", True),
    },
    ResourceKind.GROUP: {"meta.resourcetype": (AttrType.STRING, "Group", True)},
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
                check_operator(attr_type, op, str(node.attr_path), False)
                value = typed_value(attr_type, node.value, str(node.attr_path))
            except InvalidFilterException as exc:
                raise _invalid(exc.detail, self.expression) from None
            matched = compare_constant(attr_type, constant, case_exact, op, value)
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
            check_operator(spec.type, op, spec.name, spec.multi_valued)
            value = typed_value(spec.type, node.value, spec.name)
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


def attribute_key(kind: ResourceKind, attr_path: AttrPath) -> str:
    """The whitelist key (lower-cased, aliases resolved) an attribute path names; raises
    InvalidFilterException for a schema other than the resource's."""
    return _Translator(kind, str(attr_path))._key(attr_path, None)
