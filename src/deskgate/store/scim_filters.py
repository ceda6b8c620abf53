"""SCIM filters and sort orders as SQL: the core's filter IR (`deskgate.scim.filter_ir`)
translated for one resource type and one dialect.

Logic is two-valued: a comparison on an absent attribute is false, so each comparison on a
column that can be absent is guarded by "has a value", and NOT then negates a plain true/false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)

from deskgate.scim.filter_ir import And, Compare, CompareOp, Const, Filter, Not, Or, Present
from deskgate.scim.query import ListQuery, SortOrder
from deskgate.store.models import Agent, Group, GroupMember

agents_table = cast(Table, Agent.__table__)
groups_table = cast(Table, Group.__table__)
group_members_table = cast(Table, GroupMember.__table__)


@dataclass(frozen=True)
class Column:
    """How one canonical SCIM attribute is stored."""

    expr: Any
    nullable: bool = False
    blank_is_unset: bool = False
    """The column keeps "" for "no value" (name parts, display name)."""
    lowered: bool = False
    """The column holds a lower-cased copy: compare it with a lower-cased operand."""
    unique: bool = False
    """No two listed rows share a value (then it orders them alone, as its index does)."""


_a = agents_table.c
USER_COLUMNS: Mapping[str, Column] = {
    "id": Column(_a.id, unique=True),
    # Unique among the visible agents of an account, the only ones a listing reads.
    "userName": Column(_a.user_name_normalized, lowered=True, unique=True),
    "emails.value": Column(_a.email_normalized, lowered=True, blank_is_unset=True),
    "externalId": Column(_a.external_id, nullable=True, blank_is_unset=True),
    "displayName": Column(_a.display_name, blank_is_unset=True),
    "name.givenName": Column(_a.first_name, blank_is_unset=True),
    "name.familyName": Column(_a.last_name, blank_is_unset=True),
    "active": Column(_a.active),
    "title": Column(_a.title, nullable=True, blank_is_unset=True),
    "locale": Column(_a.locale, nullable=True, blank_is_unset=True),
    "meta.created": Column(_a.created_at),
    "meta.lastModified": Column(_a.updated_at),
}

MEMBERS_VALUE = "members.value"

_g = groups_table.c
GROUP_COLUMNS: Mapping[str, Column] = {
    "id": Column(_g.id, unique=True),
    "displayName": Column(_g.display_name_normalized, lowered=True, unique=True),
    "externalId": Column(_g.external_id, nullable=True, blank_is_unset=True),
    MEMBERS_VALUE: Column(group_members_table.c.agent_id),
    "meta.created": Column(_g.created_at),
    "meta.lastModified": Column(_g.updated_at),
}


def has_value(column: Column) -> ColumnElement[bool] | None:
    """SQL for "the attribute has a value" (None: it always has one)."""
    terms = []
    if column.nullable:
        terms.append(column.expr.is_not(None))
    if column.blank_is_unset:
        terms.append(column.expr != "")
    return and_(*terms) if terms else None


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class FilterSQL:
    """Translate the core's filter IR for one resource type and one SQL dialect."""

    def __init__(self, columns: Mapping[str, Column], dialect: str, member_of: Any = None) -> None:
        self.columns = columns
        self.sqlite = dialect == "sqlite"
        self.member_of = member_of
        """The groups' id column, for `members.value` (an EXISTS on the membership table)."""

    def __call__(self, expr: Filter) -> ColumnElement[bool]:
        if isinstance(expr, Const):
            return true() if expr.value else false()
        if isinstance(expr, And):
            return and_(*(self(term) for term in expr.terms))
        if isinstance(expr, Or):
            return or_(*(self(term) for term in expr.terms))
        if isinstance(expr, Not):
            return not_(self(expr.expr))
        if isinstance(expr, Present):
            return self._present(expr.attr)
        if isinstance(expr, Compare):
            return self._compare(expr)
        raise TypeError(f"unknown filter node {expr!r}")  # pragma: no cover - the IR is closed

    def _column(self, attr: str) -> Column:
        return self.columns[attr]  # the core only emits whitelisted attributes

    def _members(self, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(group_members_table.c.group_id == self.member_of, condition)

    def _present(self, attr: str) -> ColumnElement[bool]:
        if attr == MEMBERS_VALUE:
            return self._members(true())
        guard = has_value(self._column(attr))
        return true() if guard is None else guard

    def _compare(self, node: Compare) -> ColumnElement[bool]:
        column = self._column(node.attr)
        condition = self._operator(column, node)
        if node.attr == MEMBERS_VALUE:
            return self._members(condition)
        guard = has_value(column)
        return condition if guard is None else and_(guard, condition)

    def _operator(self, column: Column, node: Compare) -> ColumnElement[bool]:
        value = node.value
        left = column.expr
        if not isinstance(value, str):  # booleans and datetimes: eq and ordering only
            return _ORDERING[node.op](left, value)
        if column.lowered:
            value = value.lower()
        elif not node.case_exact:
            left = func.lower(left)
            value_expr: Any = func.lower(literal(value))
            if node.op in _SUBSTRING:
                return left.like(func.lower(literal(like_pattern(node.op, value))), escape="\\")
            return _ORDERING[node.op](left, value_expr)
        if node.op in _SUBSTRING:
            return self._substring_exact(left, node.op, value)
        return _ORDERING[node.op](left, value)

    def _substring_exact(self, left: Any, op: CompareOp, value: str) -> ColumnElement[bool]:
        """co/sw/ew that respect case: SQLite's LIKE ignores ASCII case, PostgreSQL's does not."""
        if not self.sqlite:
            like: ColumnElement[bool] = left.like(like_pattern(op, value), escape="\\")
            return like
        if not value:
            return true()
        if op is CompareOp.CO:
            return func.instr(left, value) > 0
        if op is CompareOp.SW:
            return func.substr(left, 1, len(value)) == value
        return func.substr(left, -len(value)) == value


_SUBSTRING = {CompareOp.CO, CompareOp.SW, CompareOp.EW}

_ORDERING: Mapping[CompareOp, Callable[[Any, Any], ColumnElement[bool]]] = {
    CompareOp.EQ: lambda left, right: left == right,
    CompareOp.GT: lambda left, right: left > right,
    CompareOp.GE: lambda left, right: left >= right,
    CompareOp.LT: lambda left, right: left < right,
    CompareOp.LE: lambda left, right: left <= right,
}


def like_pattern(op: CompareOp, value: str) -> str:
    escaped = escape_like(value)
    if op is CompareOp.CO:
        return f"%{escaped}%"
    if op is CompareOp.SW:
        return f"{escaped}%"
    return f"%{escaped}"


_INDEXED_EQUALITY = {"id", "userName", "externalId", "displayName"}
"""Attributes whose `eq` an index answers (agents: id, userName, external id; groups: id, name,
external id)."""


def pins_few_rows(expr: Filter | None) -> bool:
    """Whether the filter is, or is and-ed with, an `eq` on an indexed attribute (Okta's
    `userName eq`, Entra's `externalId eq`): its few rows are cheaper to sort than to find by
    walking an index in the default order (which SQLite, without statistics, would choose)."""
    terms = expr.terms if isinstance(expr, And) else (expr,)
    return any(
        isinstance(term, Compare) and term.op is CompareOp.EQ and term.attr in _INDEXED_EQUALITY
        for term in terms
    )


def order_by(
    columns: Mapping[str, Column],
    query: ListQuery,
    default: Sequence[Any],
    id_column: Any,
    *,
    reverse: bool = False,
) -> list[Any]:
    """A total order: the sort key (absent values last when ascending), then the id unless the
    key is unique. Without `sortBy`: `default`, a total order an index of the table serves.

    `reverse` gives the exact reverse order (every term flipped: each database places NULLs at
    one end consistently), to reach a page near the end by walking from the end."""
    descending = (query.sort_order is SortOrder.DESCENDING) != reverse
    if query.sort_by is None:
        if pins_few_rows(query.filter):
            default = (id_column,)
        return [term.desc() if descending else term.asc() for term in default]
    column = columns[query.sort_by.attr]
    key = column.expr
    if not query.sort_by.case_exact and not column.lowered and isinstance(key.type, String):
        key = func.lower(key)
    terms: list[Any] = []
    guard = has_value(column)
    if guard is not None:
        terms.append(case((guard, 0), else_=1))
    terms.append(key)
    if not (column.unique and key is column.expr):
        terms.append(id_column)
    return [term.desc() if descending else term.asc() for term in terms]
