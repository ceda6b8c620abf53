"""GET /api/v1/agents and /api/v1/agents/{id}: every page of a crawl, with each filter and page
size, is exactly a naive listing of the account's agents in (created_at, id) order; bad
parameters are 400s that say what to send."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import select

from deskgate.services.events import AGENT_FIELDS, agent_snapshot
from deskgate.store import agent_pages
from deskgate.store.models import Agent

from api_helpers import bearer, follow

COUNT = 300


def _spec(n: int) -> dict[str, object]:
    deleted = n % 17 == 0
    spec: dict[str, object] = {
        # Three agents per second: the id breaks the tie, and a page may end inside a second.
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n // 3),
        # Inactive: every fifth, and those the IdP deleted (but one of them an admin reactivated).
        "active": not (n % 5 == 0 or deleted) or n % 34 == 0,
        "scim_deleted_at": dt.datetime(2026, 2, 1, tzinfo=dt.UTC) if deleted else None,
    }
    if n % 10 == 3:
        spec["email"] = "Shared@Example.com" if n % 20 == 3 else "shared@example.com"
    return spec


@pytest.fixture
def crowd(db, make_account, make_key, insert_agents):
    """An account with COUNT agents of every kind (and its admin), beside another account with
    agents of the same emails; the naive listing of the first, in creation order."""
    account = make_account()
    insert_agents(account.id, [_spec(n) for n in range(COUNT)])
    other = make_account()
    insert_agents(other.id, [_spec(n) for n in range(40)])
    db.rollback()
    agents = db.scalars(select(Agent).where(Agent.account_id == account.id)).all()
    naive = [agent_snapshot(a) for a in sorted(agents, key=lambda a: (a.created_at, a.id))]
    return make_key(account.id).key, naive


@pytest.mark.parametrize("limit", [1, 7, 100, 1000])
def test_a_crawl_is_the_naive_listing_at_every_page_size(client, crowd, limit):
    key, naive = crowd
    assert len(naive) == COUNT + 1
    assert follow(client.get, "/api/v1/agents", key, limit=limit) == naive


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"active": "true"}, lambda a: a["active"]),
        ({"active": "FALSE"}, lambda a: not a["active"]),
        ({"email": " SHARED@example.COM "}, lambda a: a["email"].lower() == "shared@example.com"),
        (
            {"email": "shared@example.com", "active": "false"},
            lambda a: a["email"].lower() == "shared@example.com" and not a["active"],
        ),
        ({"email": "nobody@example.com"}, lambda a: False),
    ],
)
@pytest.mark.parametrize("limit", [3, 100])
def test_filters_keep_exactly_the_matching_agents_in_order(client, crowd, params, keep, limit):
    key, naive = crowd
    expected = [a for a in naive if keep(a)]
    assert follow(client.get, "/api/v1/agents", key, limit=limit, **params) == expected


def test_agents_deleted_over_scim_are_listed_and_readable(client, db, crowd):
    key, naive = crowd
    deleted = db.scalars(select(Agent).where(Agent.scim_deleted_at.is_not(None))).all()
    mine = {a["id"] for a in naive}
    deleted_ids = {a.id for a in deleted if a.id in mine}
    assert len(deleted_ids) == len(range(0, COUNT, 17))
    for agent_id in sorted(deleted_ids)[:3]:
        response = client.get(f"/api/v1/agents/{agent_id}", headers=bearer(key))
        assert response.status_code == 200
        assert response.json() == next(a for a in naive if a["id"] == agent_id)
    # One was reactivated by an admin while SCIM keeps it hidden: the chat service must see it.
    assert any(a["active"] for a in naive if a["id"] in deleted_ids)


def test_one_agent_and_its_shape(client, crowd):
    key, naive = crowd
    body = client.get(f"/api/v1/agents/{naive[5]['id']}", headers=bearer(key)).json()
    assert body == naive[5]
    assert list(body) == list(AGENT_FIELDS)
    assert body["created_at"].endswith("Z")
    for missing in ("agt_01jd0000000000000000000000", "not-an-id", "x" * 300):
        response = client.get(f"/api/v1/agents/{missing}", headers=bearer(key))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_the_last_page_says_so_without_an_empty_page_after_it(client, crowd):
    key, naive = crowd
    first = client.get("/api/v1/agents", params={"limit": 300}, headers=bearer(key)).json()
    assert first["next_cursor"] is not None
    last = client.get(
        "/api/v1/agents",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=bearer(key),
    ).json()
    assert last == {"data": [naive[-1]], "next_cursor": None}


def test_agents_created_during_a_crawl_come_at_its_end(
    client, make_account, make_key, insert_agents
):
    account = make_account()
    key = make_key(account.id).key
    insert_agents(account.id, [{} for _ in range(5)])
    page = client.get("/api/v1/agents", params={"limit": 4}, headers=bearer(key)).json()
    late = insert_agents(
        account.id, [{"created_at": dt.datetime.now(dt.UTC), "email": "late@x.io"}]
    )
    rest = follow(client.get, "/api/v1/agents", key, limit=4, cursor=page["next_cursor"])
    ids = [a["id"] for a in page["data"] + rest]
    assert len(ids) == len(set(ids)) == 7  # 5, the admin, the late one: each once
    assert ids[-1] == late[0].id


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("limit=1001", "limit must be a whole number from 1 to 1000"),
        ("limit=-1", "limit must be"),
        ("limit=ten", "limit must be"),
        ("limit=", "limit must be"),
        ("active=yes", "active must be true or false"),
        ("email=", "email is empty"),
        ("cursor=abc", "cursor is not a cursor this API gave"),
        ("cursor=", "cursor is not a cursor this API gave"),
        ("cursor=" + base64.urlsafe_b64encode(b"12.agt_bad").decode(), "cursor is not"),
        ("cursor=" + base64.urlsafe_b64encode(b"x.y").decode(), "cursor is not"),
        ("cursor=" + "A" * 300, "cursor is not"),
        ("cursor=%C3%A9", "cursor is not"),
    ],
)
def test_bad_parameters_are_400s_that_say_what_to_send(
    client, make_account, make_key, query, mentions
):
    key = make_key(make_account().id).key
    response = client.get(f"/api/v1/agents?{query}", headers=bearer(key))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"
    assert mentions in response.json()["error"]


def test_pages_are_read_from_the_listing_indexes(db):
    """Each page is an index seek that stops at the page size, whatever the account's size."""
    conn = db.connection()
    names = tuple(dict.fromkeys((*AGENT_FIELDS, "created_at", "id")))
    values = {
        "account_id": "acct_x",
        "limit": 10,
        "active": True,
        "after_at": dt.datetime.now(dt.UTC),
        "after_id": "agt_x",
    }
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # tables this small would scan
    for deleted, index in ((False, "ix_agents_scim_listing"), (True, "ix_agents_deleted_listing")):
        for active in (False, True):
            stmt = agent_pages._statement(
                names, deleted=deleted, email=False, active=active, after=True
            )
            compiled = stmt.compile(dialect=conn.dialect)
            params = compiled.construct_params(values)
            if conn.dialect.name == "sqlite":
                rows = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}",
                    tuple(params[name] for name in compiled.positiontup or ()),
                )
                plan = " ".join(str(row[-1]) for row in rows)
                assert f"USING INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan
            else:
                plan = " ".join(
                    row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params)
                )
                assert f"Index Scan using {index}" in plan and "Sort" not in plan, plan
    db.rollback()
