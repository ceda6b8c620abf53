"""Filters translated to SQL (every operator, escaping, case rules, two-valued logic), sorting and
paging, on the real database of the run (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_helpers import ENTERPRISE_SCHEMA, ScimAccount, create_group, create_user, patch_body


@pytest.fixture
def people(scim: Any, scim_account: ScimAccount) -> dict[str, dict[str, Any]]:
    ann = create_user(
        scim, "ann_lee@example.com", given="Ann", family="Lee", externalId="EXT-1", title="Lead"
    )
    annx = create_user(
        scim,
        "annxlee@example.com",
        given="Annx",
        family="Lee",
        displayName="100% Annx",
        externalId="ext-1",
        locale="fr-FR",
    )
    bob = create_user(
        scim,
        "bob@example.org",
        given="Bob",
        family="Stone",
        displayName="",
        title="Agent",
        **{ENTERPRISE_SCHEMA: {"department": "Support"}},
    )
    scim.patch(f"Users/{bob['id']}", json=patch_body({"op": "replace", "value": {"active": False}}))
    admin = scim.get(f"Users/{scim_account.admin_id}").json()
    return {"ann": ann, "annx": annx, "bob": bob, "admin": admin}


def matching(scim: Any, people: dict[str, dict[str, Any]], expression: str) -> set[str]:
    response = scim.get("Users", params={"filter": expression})
    assert response.status_code == 200, (expression, response.text)
    names = {user["id"]: name for name, user in people.items()}
    body = response.json()
    assert body["totalResults"] == len(body["Resources"])
    return {names[user["id"]] for user in body["Resources"]}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('userName eq "ANN_LEE@example.com"', {"ann"}),
        ('userName ne "ann_lee@example.com"', {"annx", "bob", "admin"}),
        ('userName co "n_l"', {"ann"}),  # "_" is literal, not LIKE's any-character
        ('displayName co "%"', {"annx"}),  # "%" too
        ('displayName co "\\\\"', set()),
        ('userName sw "ANN"', {"ann", "annx"}),
        ('userName ew ".ORG"', {"bob"}),
        ('externalId eq "EXT-1"', {"ann"}),  # case-exact
        ('externalId co "xt"', {"annx"}),
        ('externalId sw "E"', {"ann"}),
        ('externalId ew "T-1"', {"ann"}),
        ("externalId pr", {"ann", "annx"}),
        ("not (externalId pr)", {"bob", "admin"}),
        ('externalId ne "EXT-1"', {"annx", "bob", "admin"}),  # absent is "not equal"
        ('not (externalId eq "EXT-1")', {"annx", "bob", "admin"}),
        ("externalId eq null", {"bob", "admin"}),
        ("title pr and active eq true", {"ann"}),
        ('active eq "False"', {"bob"}),
        ('name.familyName eq "LEE" and (name.givenName eq "ann" or title eq "agent")', {"ann"}),
        ('name.familyName eq "lee" and not (name.givenName sw "Annx")', {"ann"}),
        ("displayName pr", {"ann", "annx", "admin"}),  # bob's is empty: absent
        ("name pr", {"ann", "annx", "bob", "admin"}),
        ('emails[type eq "work"].value ew "example.org"', {"bob"}),
        ('emails[type eq "work" and value co "lee"]', {"ann", "annx"}),
        ('emails[type eq "home"]', set()),
        ("emails pr", {"ann", "annx", "bob", "admin"}),
        ('locale sw "EN"', {"ann", "bob"}),
        ('locale sw "fr"', {"annx"}),
        ('title lt "B"', {"bob"}),
        ('title ge "b"', {"ann"}),
        ('meta.resourceType eq "User"', {"ann", "annx", "bob", "admin"}),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.org"', {"bob"}),
    ],
)
def test_filter(
    scim: Any, people: dict[str, dict[str, Any]], expression: str, expected: set[str]
) -> None:
    assert matching(scim, people, expression) == expected


def test_filters_on_ids_and_dates(scim: Any, people: dict[str, dict[str, Any]]) -> None:
    ann, annx = people["ann"], people["annx"]
    assert matching(scim, people, f'id eq "{ann["id"]}"') == {"ann"}
    created = annx["meta"]["created"]
    assert matching(scim, people, f'meta.created ge "{created}"') == {"annx", "bob"}
    assert matching(scim, people, f'meta.created lt "{created}"') == {"ann", "admin"}
    assert matching(scim, people, 'meta.lastModified gt "2999-01-01T00:00:00Z"') == set()
    assert matching(scim, people, 'meta.lastModified gt "2000-01-01T00:00:00+02:00"') == set(people)


def test_sorting(scim: Any, people: dict[str, dict[str, Any]]) -> None:
    def order(**params: str) -> list[str]:
        names = {user["id"]: name for name, user in people.items()}
        return [names[u["id"]] for u in scim.get("Users", params=params).json()["Resources"]]

    assert order(sortBy="userName") == ["admin", "ann", "annx", "bob"]
    assert order(sortBy="userName", sortOrder="descending") == ["bob", "annx", "ann", "admin"]
    assert order(sortBy="title") == ["bob", "ann", "admin", "annx"]  # Agent, Lead, then the absent
    assert order(sortBy="title", sortOrder="descending") == ["annx", "admin", "ann", "bob"]
    assert order(sortBy="meta.created", sortOrder="descending") == ["bob", "annx", "ann", "admin"]
    assert order() == ["admin", "ann", "annx", "bob"]  # by default: creation order
    assert order(sortOrder="descending") == ["bob", "annx", "ann", "admin"]


def test_paging_edges(scim: Any, people: dict[str, dict[str, Any]]) -> None:
    def page(**params: Any) -> tuple[int, int, int, int]:
        body = scim.get("Users", params=params).json()
        return (
            body["totalResults"],
            body["startIndex"],
            body["itemsPerPage"],
            len(body["Resources"]),
        )

    assert page(count=0) == (4, 1, 0, 0)
    assert page(startIndex=3, count=10) == (4, 3, 2, 2)
    assert page(startIndex=10) == (4, 10, 0, 0)
    assert page(startIndex=0, count=1) == (4, 1, 1, 1)
    assert page(startIndex=-5, count=-1) == (4, 1, 0, 0)
    assert page(count=5000) == (4, 1, 4, 4)
    assert page(filter='userName sw "ann"', count=1, startIndex=2) == (2, 2, 1, 1)


def test_search_endpoint(scim: Any, people: dict[str, dict[str, Any]]) -> None:
    response = scim.post(
        "Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "ann"',
            "startIndex": 1,
            "count": 1,
            "attributes": ["userName"],
            "sortBy": "userName",
            "sortOrder": "descending",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalResults"] == 2
    assert body["Resources"] == [
        {
            "schemas": body["Resources"][0]["schemas"],
            "id": people["annx"]["id"],
            "userName": "annxlee@example.com",
        }
    ]


def test_group_filters(scim: Any, people: dict[str, dict[str, Any]]) -> None:
    ann, bob = people["ann"]["id"], people["bob"]["id"]
    team_a = create_group(scim, "Team_A", [ann, bob])
    team_b = create_group(scim, "TeamXB", [bob])
    empty = create_group(scim, "Nobody")
    scim.patch(
        f"Groups/{empty['id']}",
        json=patch_body({"op": "add", "path": "externalId", "value": "okta-1"}),
    )
    names = {team_a["id"]: "a", team_b["id"]: "b", empty["id"]: "empty"}

    def groups(expression: str) -> set[str]:
        response = scim.get(
            "Groups", params={"filter": expression, "excludedAttributes": "members"}
        )
        assert response.status_code == 200, response.text
        return {names[g["id"]] for g in response.json()["Resources"]}

    assert groups('displayName eq "team_a"') == {"a"}
    assert groups('displayName co "m_"') == {"a"}
    assert groups('displayName sw "TEAM"') == {"a", "b"}
    assert groups(f'members.value eq "{bob}"') == {"a", "b"}
    assert groups(f'members[value eq "{ann}" or value eq "nobody"]') == {"a"}
    assert groups("members pr") == {"a", "b"}
    assert groups("not (members pr)") == {"empty"}
    assert groups('externalId eq "okta-1"') == {"empty"}
    assert groups('externalId eq "OKTA-1"') == set()
    listed = scim.get("Groups", params={"sortBy": "displayName", "sortOrder": "descending"}).json()
    assert [names[g["id"]] for g in listed["Resources"]] == ["b", "a", "empty"]
    assert [m["value"] for m in listed["Resources"][1]["members"]] == sorted([ann, bob])
