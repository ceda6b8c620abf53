"""List queries: the paging, sorting and attribute parameters of ``GET /Users``/``/Groups``
and of a SearchRequest, validated into a :class:`ListQuery` (its filter parsed by
:mod:`.filters` into the IR of :mod:`.filter_ir`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scim2_models import Path
from scim2_models.path import AttrPath, ValuePath

from .errors import InvalidFilterException, InvalidPathException, InvalidValueException
from .filter_ir import Filter, attribute_table
from .filters import attribute_key, parse_filter
from .records import ResourceKind

DEFAULT_COUNT = 100
"""Page size when a request gives no ``count``."""

MAX_COUNT = 1000
"""Largest page served; a larger ``count`` is clamped. Published as
``filter.maxResults`` in the ServiceProviderConfig."""

MAX_START_INDEX = 10**18 - 1
"""Largest ``startIndex`` (and ``count``, before clamping) accepted; larger is 400
invalidValue, so no paging value can overflow a database integer."""


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
        key = attribute_key(kind, ast)
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
