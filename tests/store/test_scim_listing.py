"""SCIM list pages: every way a page is reached (from the start, walked back from the end,
continued by keyset after the previous page) returns what a plain OFFSET listing does, and
totalResults (from `agent_counts`, kept by triggers) stays exact whoever writes agents."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.scim.query import ListQuery, parse_list_query
from deskgate.scim.records import ResourceKind
from deskgate.store import scim as store
from deskgate.store import scim_groups, scim_listing
from deskgate.store.models import Account, Agent, AgentCount, Group
from deskgate.store.scim_filters import (
    GROUP_COLUMNS,
    USER_COLUMNS,
    FilterSQL,
    agents_table,
    groups_table,
    order_by,
)

USER = ResourceKind.USER
GROUP = ResourceKind.GROUP
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def agent_row(account_id: str, n: int, **values: Any) -> dict[str, Any]:
    name = f"user{n:03d}@example.com"
    row = {
        "id": ids.new_id(ids.AGENT),
        "account_id": account_id,
        "user_name": name.upper() if n % 5 == 0 else name,
        "user_name_normalized": name,
        "emails": [{"value": name}],
        "email": name,
        "email_normalized": name,
        "first_name": "",
        "last_name": "",
        "display_name": ["", "Zed", "ann", "Bob"][n % 4],
        "active": n % 3 != 0,
        "source": "scim",
        "title": [None, "", "Lead", "agent"][n % 4 if n % 7 else 0],
        "enterprise": {},
        # Runs of equal creation times: the id must settle their order.
        "created_at": BASE + dt.timedelta(seconds=n // 4),
        "updated_at": BASE,
        "version": 1,
    }
    return {**row, **values}


@pytest.fixture
def listed(db: Session, make_account: Any) -> str:
    """An account with agents (a few deleted over SCIM) and groups, and another account's."""
    account = make_account()
    other = make_account()
    rows = [agent_row(account.id, n) for n in range(57)]
    for n in (4, 11, 30):
        rows[n]["scim_deleted_at"] = BASE
    db.execute(insert(agents_table), rows)
    db.execute(insert(agents_table), [agent_row(other.id, n) for n in range(5)])
    db.execute(
        insert(groups_table),
        [
            {
                "id": ids.new_id("grp"),
                "account_id": account.id,
                "display_name": f"Team {n:02d}",
                "display_name_normalized": f"team {n:02d}",
                "external_id": None if n % 3 else f"g{n}",
                "created_at": BASE + dt.timedelta(seconds=n // 3),
                "updated_at": BASE,
            }
            for n in range(17)
        ],
    )
    db.commit()
    return account.id


def naive_page(conn: Connection, kind: ResourceKind, account_id: str, query: ListQuery) -> Any:
    """(total, ids): the plain OFFSET listing the pages must equal."""
    if kind is USER:
        table, columns, default = agents_table, USER_COLUMNS, scim_listing._AGENT_ORDER
        where = [table.c.account_id == account_id, table.c.scim_deleted_at.is_(None)]
    else:
        table, columns, default = groups_table, GROUP_COLUMNS, scim_listing._GROUP_ORDER
        where = [table.c.account_id == account_id]
    if query.filter is not None:
        where.append(FilterSQL(columns, conn.dialect.name, member_of=table.c.id)(query.filter))
    order = order_by(columns, query, default, table.c.id)
    total = conn.scalar(select(func.count()).select_from(table).where(*where))
    stmt = select(table.c.id).where(*where).order_by(*order, table.c.id)
    page = conn.scalars(stmt.offset(query.offset).limit(query.count)).all()
    return total, list(page)


def served_page(db: Session, kind: ResourceKind, account_id: str, query: ListQuery) -> Any:
    lister = store.list_agents if kind is USER else scim_groups.list_groups
    total, records = lister(db, account_id, query)
    return total, [record.id for record in records]


USER_SHAPES = [
    {},
    {"filter": "active eq true"},
    {"filter": "title pr"},
    {"filter": 'meta.resourceType eq "User"'},  # always true: the unfiltered count
    {"sort_by": "userName"},
    {"sort_by": "title", "filter": 'userName sw "user0"'},
    {"sort_by": "meta.created"},
    {"sort_by": "displayName"},
    {"sort_by": "active"},
    {"filter": 'userName eq "USER012@example.com"'},  # one row, by the unique lookup
    {"filter": 'userName eq "user004@example.com"'},  # deleted over SCIM: none
    {"filter": 'userName eq "user012@example.com" and active eq true'},
]
GROUP_SHAPES = [
    {},
    {"filter": "externalId pr"},
    {"sort_by": "externalId"},
    {"sort_by": "id"},
    {"filter": 'displayName eq "TEAM 03"'},
]


def shapes() -> list[tuple[ResourceKind, dict[str, str]]]:
    cases = []
    for order in ("ascending", "descending"):
        cases += [(USER, {**shape, "sort_order": order}) for shape in USER_SHAPES]
        cases += [(GROUP, {**shape, "sort_order": order}) for shape in GROUP_SHAPES]
    return cases


@pytest.mark.parametrize(("kind", "shape"), shapes())
def test_every_page_equals_the_offset_listing(
    db: Session, listed: str, kind: ResourceKind, shape: dict[str, str]
) -> None:
    conn = db.connection()
    total, _ = naive_page(conn, kind, listed, parse_list_query(kind, count="0", **shape))
    for count in (1, 3, 10):
        for start in range(1, total + 3):
            query = parse_list_query(kind, start_index=start, count=count, **shape)
            scim_listing.continuations.clear()  # reached by position: from the start or the end
            assert served_page(db, kind, listed, query) == naive_page(conn, kind, listed, query)
    for count in (0, 1000):
        query = parse_list_query(kind, count=count, **shape)
        assert served_page(db, kind, listed, query) == naive_page(conn, kind, listed, query)


@pytest.mark.parametrize(("kind", "shape"), shapes())
def test_a_crawl_continues_each_page_after_the_last(
    db: Session, listed: str, kind: ResourceKind, shape: dict[str, str]
) -> None:
    conn = db.connection()
    scim_listing.continuations.clear()
    for count in (1, 4, 7):
        seen: list[str] = []
        start = 1
        while True:
            query = parse_list_query(kind, start_index=start, count=count, **shape)
            total, page = served_page(db, kind, listed, query)
            assert (total, page) == naive_page(conn, kind, listed, query)
            if not page:
                break
            seen += page
            start += len(page)
        assert len(seen) == len(set(seen)) == total


def test_a_continuation_after_changes_starts_after_the_last_row_seen(
    db: Session, listed: str
) -> None:
    first = parse_list_query(USER, start_index=1, count=5)
    _, page = served_page(db, USER, listed, first)
    db.execute(delete(agents_table).where(agents_table.c.id.in_(page[:2])))
    _, following = served_page(db, USER, listed, parse_list_query(USER, start_index=6, count=5))
    _, everyone = served_page(db, USER, listed, parse_list_query(USER, count=1000))
    assert following == everyone[3:8]  # not [5:10], which would skip two agents never listed
    db.rollback()


def test_an_id_lookup_finds_its_one_row(db: Session, listed: str) -> None:
    agent_id = db.scalar(
        select(agents_table.c.id).where(agents_table.c.user_name == "user013@example.com")
    )
    for start, expected in ((1, [agent_id]), (2, [])):
        query = parse_list_query(USER, filter=f'id eq "{agent_id}"', start_index=start)
        assert served_page(db, USER, listed, query) == (1, expected)
    query = parse_list_query(USER, filter=f'id eq "{agent_id.upper()}"')
    assert served_page(db, USER, listed, query) == (0, [])  # ids are case-exact


def test_pages_work_on_a_connection_too(engine: Engine, listed: str) -> None:
    query = parse_list_query(USER, start_index=50, count=10)
    with engine.connect() as conn:
        total, records = store.list_agents(conn, listed, query)
        assert (total, [r.id for r in records]) == naive_page(conn, USER, listed, query)
        total, groups = scim_groups.list_groups(conn, listed, parse_list_query(GROUP, count=2))
        assert total == 17 and [g.display_name for g in groups] == ["Team 00", "Team 01"]


# --- agent_counts ------------------------------------------------------------------------


def counted(db: Session | Connection, account_id: str) -> tuple[int, int]:
    """(the counter's sum, a COUNT of the visible agents): they must be equal."""
    total = db.scalar(
        select(func.coalesce(func.sum(AgentCount.agents), 0)).where(
            AgentCount.account_id == account_id
        )
    )
    visible = db.scalar(
        select(func.count()).where(Agent.account_id == account_id, Agent.scim_deleted_at.is_(None))
    )
    return int(total or 0), int(visible or 0)


def test_the_count_follows_every_write(db: Session, make_account: Any) -> None:
    account = make_account()
    other = make_account()
    assert counted(db, account.id) == (1, 1)  # the admin
    db.execute(insert(agents_table), [agent_row(account.id, n) for n in range(10)])
    db.add(Agent(**agent_row(account.id, 10, scim_deleted_at=BASE)))  # hidden from the start
    db.flush()
    assert counted(db, account.id) == (11, 11)
    some = db.scalars(select(Agent.id).where(Agent.account_id == account.id).limit(4)).all()
    db.execute(update(Agent).where(Agent.id.in_(some)).values(scim_deleted_at=BASE))
    db.execute(update(Agent).where(Agent.id.in_(some)).values(scim_deleted_at=BASE, title="x"))
    assert counted(db, account.id) == (7, 7)
    db.execute(update(Agent).where(Agent.id == some[0]).values(scim_deleted_at=None))
    assert counted(db, account.id) == (8, 8)
    db.execute(delete(Agent).where(Agent.id.in_(some[:2])))  # one visible, one hidden
    assert counted(db, account.id) == (7, 7)
    db.rollback()
    assert counted(db, account.id) == (1, 1)  # in the transaction of the writes
    db.execute(insert(agents_table), [agent_row(account.id, n) for n in range(3)])
    db.commit()
    assert counted(db, account.id) == (4, 4)
    if db.get_bind().dialect.name == "postgresql":  # the bench's bulk load: COPY
        columns = [name for name in agent_row(account.id, 0, role="agent") if name != "title"]
        cursor = db.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY agents ({', '.join(columns)}, scim_deleted_at) FROM STDIN") as copy:
            for n in range(20, 26):
                row = agent_row(account.id, n, emails="[]", enterprise="{}", role="agent")
                hidden = BASE if n % 3 == 0 else None  # two of six
                copy.write_row((*(row[name] for name in columns), hidden))
        db.commit()
        assert counted(db, account.id) == (8, 8)
    assert counted(db, other.id) == (1, 1)
    db.execute(delete(Account).where(Account.id == account.id))  # agents go by cascade
    db.commit()
    assert counted(db, account.id) == (0, 0)
    assert db.scalar(select(func.count()).where(AgentCount.account_id == account.id)) == 0
    assert counted(db, other.id) == (1, 1)


def test_the_count_stays_exact_under_concurrent_writers(
    engine: Engine, db: Session, make_account: Any
) -> None:
    account = make_account()
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(worker: int) -> None:
        try:
            start.wait()
            for n in range(15):
                with engine.connect() as conn:
                    conn.execute(insert(agents_table), agent_row(account.id, worker * 100 + n))
                    if n % 4 == 1:
                        conn.execute(
                            update(agents_table)
                            .where(agents_table.c.account_id == account.id)
                            .where(agents_table.c.user_name_normalized.like(f"user{worker}%"))
                            .values(scim_deleted_at=BASE)
                        )
                    if n % 5 == 2:
                        conn.rollback()
                    else:
                        conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(worker + 1,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total, visible = counted(db, account.id)
    assert total == visible and visible > 6
    query = parse_list_query(USER, start_index=2, count=3)
    assert store.list_agents(db, account.id, query)[0] == visible
    if engine.dialect.name == "postgresql":  # the writers added to slots of their own
        slots = db.scalar(select(func.count()).where(AgentCount.account_id == account.id))
        assert slots is not None and slots > 1


def test_the_group_page_is_plain_rows(db: Session, listed: str) -> None:
    query = parse_list_query(GROUP, filter='displayName eq "TEAM 03"')
    total, groups = scim_groups.list_groups(db, listed, query)
    assert total == 1 and groups[0].display_name == "Team 03"
    assert not isinstance(groups[0], Group)
