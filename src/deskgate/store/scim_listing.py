"""SCIM list pages: the agents or groups a ListQuery selects, one page of them, and how many.

SCIM pages by position (`startIndex`). OFFSET n costs n rows skipped, so a page is reached the
cheapest of three ways, each returning exactly what OFFSET would on an unchanged table:

* continuing after the last row of the page this process served just before (a crawl asks for
  the pages in turn): a keyset seek, `WHERE (key) > (last key)`, whatever the depth;
* otherwise from the nearer end: a page past the middle is read in the reverse order, skipping
  only the rows after it, then put back in order (the last page of a million costs the first's);
* totalResults, which the reverse walk needs first, comes from `agent_counts` (kept by triggers)
  for an unfiltered agent list, else from a COUNT; a page that ends the list says it by itself.

RFC 7644 §3.4.2.4 lets pages shift when resources change between requests; a continuation
then starts after the row the client last saw. Another app node, or a page this process did not
serve, falls back to the positional walk. Statements are Core only: `db` may be an ORM Session
or a Connection.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column as SAColumn
from sqlalchemy import ColumnElement, Row, Select, Table, bindparam, func, literal, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression

from deskgate.scim.filter_ir import Compare, CompareOp, Const
from deskgate.scim.query import ListQuery, SortOrder
from deskgate.store.models import AgentCount
from deskgate.store.scim_filters import (
    GROUP_COLUMNS,
    USER_COLUMNS,
    Column,
    FilterSQL,
    agents_table,
    groups_table,
    order_by,
)

_counts = cast(Table, AgentCount.__table__)

_AGENT_ORDER = (agents_table.c.created_at, agents_table.c.id)
"""Creation order: `ix_agents_scim_listing` (partial: visible agents) serves it both ways."""

_GROUP_ORDER = (groups_table.c.display_name_normalized,)
"""By name: unique per account, and the unique index on (account_id, name) serves the order."""

GROUP_FIELDS = (
    groups_table.c.id,
    groups_table.c.display_name,
    groups_table.c.external_id,
    groups_table.c.grants_admin,
    groups_table.c.version,
    groups_table.c.created_at,
    groups_table.c.updated_at,
)
"""The columns of a listed group, in `store.scim_groups.StoredGroup`'s order."""

_VISIBLE_AGENTS_COUNT = select(func.coalesce(func.sum(_counts.c.agents), 0))


@dataclass(frozen=True)
class _Listing:
    """One resource type as the list pages see it."""

    kind: str
    table: Table
    columns: Mapping[str, Column]
    default_order: Sequence[Any]
    id_column: Any
    visible: Callable[[Any], list[ColumnElement[bool]]]
    """The rows of an account a list can show."""
    member_of: Any = None


_AGENTS = _Listing(
    "User",
    agents_table,
    USER_COLUMNS,
    _AGENT_ORDER,
    agents_table.c.id,
    lambda account_id: [
        agents_table.c.account_id == account_id,
        agents_table.c.scim_deleted_at.is_(None),
    ],
)
_GROUPS = _Listing(
    "Group",
    groups_table,
    GROUP_COLUMNS,
    _GROUP_ORDER,
    groups_table.c.id,
    lambda account_id: [groups_table.c.account_id == account_id],
    member_of=groups_table.c.id,
)
_LISTINGS = {listing.kind: listing for listing in (_AGENTS, _GROUPS)}


class _Continuations:
    """{(account, query shape, next offset): the sort key of the row before it}, for the last
    pages served (bounded, least recently used first out; shared by the threads of a process)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, at: Hashable) -> tuple[Any, ...] | None:
        with self._lock:
            key = self._keys.get(at)
            if key is not None:
                self._keys.move_to_end(at)
            return key

    def put(self, at: Hashable, key: tuple[Any, ...]) -> None:
        with self._lock:
            self._keys[at] = key
            self._keys.move_to_end(at)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


continuations = _Continuations(4096)


def agent_page(
    db: Session | Connection, account_id: str, query: ListQuery, fields: Sequence[Any]
) -> tuple[int, list[Row[Any]]]:
    """(visible agents matching the query, the `fields` of the requested page's agents)."""
    unfiltered = query.filter is None or query.filter == Const(True)
    count = _VISIBLE_AGENTS_COUNT.where(_counts.c.account_id == account_id) if unfiltered else None
    return _page(_connection(db), _AGENTS, account_id, query, fields, count)


def group_page(
    db: Session | Connection, account_id: str, query: ListQuery
) -> tuple[int, list[Row[Any]]]:
    """(groups matching the query, the `GROUP_FIELDS` of the requested page's groups)."""
    return _page(_connection(db), _GROUPS, account_id, query, GROUP_FIELDS, None)


def _connection(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _page(
    conn: Connection,
    listing: _Listing,
    account_id: str,
    query: ListQuery,
    fields: Sequence[Any],
    count_stmt: Any,
) -> tuple[int, list[Row[Any]]]:
    unique = _unique_match(listing, query)
    if unique is not None:  # Okta's `userName eq`: one prebuilt statement, at most one row
        attr, value = unique
        stmt = _unique_lookup(listing.kind, attr, tuple(fields))
        found = list(conn.execute(stmt, {"account_id": account_id, "value": value}))
        return len(found), found if query.offset == 0 and query.count > 0 else []
    where = listing.visible(account_id)
    if query.filter is not None:
        translate = FilterSQL(listing.columns, conn.dialect.name, member_of=listing.member_of)
        where.append(translate(query.filter))
    if count_stmt is None:
        count_stmt = select(func.count()).select_from(listing.table).where(*where)

    def total() -> int:
        return int(conn.scalar(count_stmt) or 0)

    if query.count == 0:
        return total(), []
    forward = order_by(listing.columns, query, listing.default_order, listing.id_column)
    keys = _plain_columns(forward)
    shape = (listing.kind, account_id, query.filter, query.sort_by, query.sort_order)
    after = continuations.get((*shape, query.offset)) if keys else None
    extra = [key for key in keys if not any(key is field for field in fields)]
    base = select(*fields, *extra).where(*where)
    if after is not None or query.offset == 0:
        stmt = base.order_by(*forward).limit(query.count)
        if after is not None:
            position = tuple_(*keys)
            last = tuple_(
                *(literal(value, key.type) for key, value in zip(keys, after, strict=True))
            )
            descending = query.sort_order is SortOrder.DESCENDING
            stmt = stmt.where(position < last if descending else position > last)
        rows = list(conn.execute(stmt))
        if len(rows) < query.count and (rows or query.offset == 0):
            matches = query.offset + len(rows)  # the last page: nothing after it
        else:
            matches = total()
    else:
        matches = total()
        if query.offset >= matches:
            return matches, []
        size = min(query.count, matches - query.offset)
        after_page = matches - query.offset - size
        if after_page < query.offset:
            backward = order_by(
                listing.columns, query, listing.default_order, listing.id_column, reverse=True
            )
            stmt = base.order_by(*backward).offset(after_page).limit(size)
            rows = list(conn.execute(stmt))[::-1]
        else:
            rows = list(conn.execute(base.order_by(*forward).offset(query.offset).limit(size)))
    if keys and rows:
        last_row = rows[-1]._mapping
        continuations.put((*shape, query.offset + len(rows)), tuple(last_row[k] for k in keys))
    return matches, rows


def _plain_columns(order: Sequence[Any]) -> list[Any]:
    """The columns of an order made of table columns only (`order_by` gives every term the same
    way): a keyset can continue it with a row value comparison an index serves. Empty for an
    order on expressions (lower-cased keys, "has a value" flags)."""
    columns = []
    for term in order:
        if not (isinstance(term, UnaryExpression) and isinstance(term.element, SAColumn)):
            return []
        columns.append(term.element)
    return columns


def _unique_match(listing: _Listing, query: ListQuery) -> tuple[str, str] | None:
    """(attribute, stored value) when the filter is `eq` on an attribute no two listed rows
    share (id, userName; a group's id, displayName): its one row or none is every page."""
    node = query.filter
    if not (isinstance(node, Compare) and node.op is CompareOp.EQ and isinstance(node.value, str)):
        return None
    column = listing.columns[node.attr]
    if not column.unique or not (column.lowered or node.case_exact):
        return None
    return node.attr, node.value.lower() if column.lowered else node.value


@functools.cache
def _unique_lookup(kind: str, attr: str, fields: tuple[Any, ...]) -> Select[Any]:
    listing = _LISTINGS[kind]
    return select(*fields).where(
        *listing.visible(bindparam("account_id")),
        listing.columns[attr].expr == bindparam("value"),
    )
