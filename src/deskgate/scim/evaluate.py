"""Reference semantics of the filter IR, evaluated on records in memory.

This is the meaning a SQL translation must reproduce (and what its tests can
compare against): two-valued logic, absent values never match a comparison,
case-insensitive strings unless ``case_exact``, ``members.value`` matches when
some member matches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .filter_ir import And, Compare, CompareOp, Const, Filter, Not, Or, Present
from .query import SortKey
from .records import AgentRecord, GroupRecord, as_utc

_AGENT_VALUES: dict[str, Callable[[AgentRecord], Any]] = {
    "id": lambda r: r.id,
    "userName": lambda r: r.user_name,
    "emails.value": lambda r: r.email or None,
    "externalId": lambda r: r.external_id or None,
    "displayName": lambda r: r.display_name or None,
    "name.givenName": lambda r: r.first_name or None,
    "name.familyName": lambda r: r.last_name or None,
    "active": lambda r: r.active,
    "title": lambda r: r.title or None,
    "locale": lambda r: r.locale or None,
    "meta.created": lambda r: as_utc(r.created_at),
    "meta.lastModified": lambda r: as_utc(r.updated_at),
}

_GROUP_VALUES: dict[str, Callable[[GroupRecord], Any]] = {
    "id": lambda r: r.id,
    "displayName": lambda r: r.display_name,
    "externalId": lambda r: r.external_id or None,
    "members.value": lambda r: [member.agent_id for member in r.members],
    "meta.created": lambda r: as_utc(r.created_at),
    "meta.lastModified": lambda r: as_utc(r.updated_at),
}


def _values(record: AgentRecord | GroupRecord, attr: str) -> list[Any]:
    if isinstance(record, AgentRecord):
        value = _AGENT_VALUES[attr](record)
    else:
        value = _GROUP_VALUES[attr](record)
    values = value if isinstance(value, list) else [value]
    return [item for item in values if item is not None and item != ""]


def _compare_one(actual: Any, node: Compare) -> bool:
    expected = node.value
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return False
        if not node.case_exact:
            actual, expected = actual.lower(), expected.lower()
    elif isinstance(expected, bool) or isinstance(actual, bool):
        return node.op is CompareOp.EQ and actual is expected
    elif isinstance(expected, datetime) and not isinstance(actual, datetime):
        return False
    op = node.op
    if op is CompareOp.EQ:
        return bool(actual == expected)
    if op is CompareOp.CO:
        return expected in actual
    if op is CompareOp.SW:
        return bool(actual.startswith(expected))
    if op is CompareOp.EW:
        return bool(actual.endswith(expected))
    if op is CompareOp.GT:
        return bool(actual > expected)
    if op is CompareOp.GE:
        return bool(actual >= expected)
    if op is CompareOp.LT:
        return bool(actual < expected)
    return bool(actual <= expected)


def matches(filter_: Filter | None, record: AgentRecord | GroupRecord) -> bool:
    """Whether a record satisfies a parsed filter (None matches everything)."""
    if filter_ is None:
        return True
    if isinstance(filter_, Const):
        return filter_.value
    if isinstance(filter_, And):
        return all(matches(term, record) for term in filter_.terms)
    if isinstance(filter_, Or):
        return any(matches(term, record) for term in filter_.terms)
    if isinstance(filter_, Not):
        return not matches(filter_.expr, record)
    if isinstance(filter_, Present):
        return bool(_values(record, filter_.attr))
    return any(_compare_one(value, filter_) for value in _values(record, filter_.attr))


def sort_value(record: AgentRecord | GroupRecord, key: SortKey) -> tuple[bool, Any]:
    """A sort key for ``sorted``: records without a value sort last when ascending."""
    values = _values(record, key.attr)
    if not values:
        return (True, "")
    value = values[0]
    if isinstance(value, str) and not key.case_exact:
        value = value.lower()
    return (False, value)
