"""Group reads and member changes stay cheap on large groups: a PATCH that adds or removes named
members reads only those members, and `excludedAttributes=members` reads none."""

from __future__ import annotations

from typing import Any

import pytest

from deskgate.scim import referenced_member_ids
from deskgate.store import scim_groups

from scim_helpers import create_group, create_user, is_scim_error, patch_body

ADD = {"op": "add", "path": "members", "value": [{"value": "a1", "display": "x"}]}


@pytest.mark.parametrize(
    ("operations", "named"),
    [
        ([ADD], {"a1"}),
        (
            [
                {
                    "op": "Add",
                    "path": "members",
                    "value": [{"$ref": None, "value": "a1"}, {"value": "a2"}],
                }
            ],
            {"a1", "a2"},
        ),
        ([{"op": "remove", "path": 'members[value eq "a1"]'}, ADD], {"a1"}),
        ([{"op": "remove", "path": 'members[value eq "a1" or value eq "a2"]'}], {"a1", "a2"}),
        ([{"op": "Remove", "path": "members", "value": [{"value": "a3"}]}], {"a3"}),
        ([{"op": "add", "path": "members", "value": "a4"}], {"a4"}),  # a bare id (Postman)
        ([{"op": "replace", "value": {"id": "g", "displayName": "x"}}], set()),  # Okta's rename
        ([{"op": "add", "value": {"members": [{"value": "a5"}]}}], {"a5"}),
        ([{"op": "replace", "path": "members", "value": [{"value": "a1"}]}], None),
        ([{"op": "replace", "value": {"members": [{"value": "a1"}]}}], None),
        ([{"op": "remove", "path": "members"}], None),
        ([{"op": "remove", "path": 'members[display eq "x"]'}], None),
        ([{"op": "remove", "path": 'members[value eq "a1"].display'}], None),
        (
            [
                {
                    "op": "add",
                    "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members",
                    "value": [],
                }
            ],
            set(),
        ),  # adds nobody
        (
            [{"op": "add", "path": "members", "value": [{"value": 7}]}],
            set(),
        ),  # refused by the patch itself: 400
    ],
)
def test_referenced_member_ids_name_only_what_a_lean_patch_touches(
    operations: list[dict[str, Any]], named: set[str] | None
) -> None:
    referenced = referenced_member_ids(patch_body(*operations))
    assert (None if referenced is None else set(referenced)) == named


def test_member_patches_never_read_the_whole_group(
    scim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [create_user(scim, f"m{n}@example.com")["id"] for n in range(4)]
    group = create_group(scim, "Large", users[:2])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read the whole membership")

    monkeypatch.setattr(scim_groups, "all_member_ids", refuse)
    monkeypatch.setattr(scim_groups, "members_of", refuse)
    for body in (
        patch_body(
            {"op": "add", "path": "members", "value": [{"value": users[2]}, {"value": users[0]}]}
        ),
        patch_body(
            {"op": "remove", "path": f'members[value eq "{users[1]}"]'},
            {"op": "add", "path": "members", "value": [{"value": users[3]}]},
        ),
        patch_body(
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": users[0]}]}
        ),
        patch_body({"op": "replace", "value": {"id": group["id"], "displayName": "Large group"}}),
    ):
        response = scim.patch(f"Groups/{group['id']}", json=body)
        assert response.status_code == 204, response.text
    lean = scim.get(f"Groups/{group['id']}", params={"excludedAttributes": "members"})
    assert lean.status_code == 200 and "members" not in lean.json()
    listed = scim.get(
        "Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "large group"'}
    )
    assert listed.json()["totalResults"] == 1
    assert (
        scim.get(f"Groups/{group['id']}", params={"attributes": "displayName"}).json()[
            "displayName"
        ]
        == "Large group"
    )

    monkeypatch.undo()
    members = scim.get(f"Groups/{group['id']}").json()["members"]
    assert sorted(m["value"] for m in members) == sorted([users[2], users[3]])


def test_replacing_members_and_renaming_clashes(scim: Any) -> None:
    users = [create_user(scim, f"r{n}@example.com")["id"] for n in range(3)]
    group = create_group(scim, "Team", users[:2])
    create_group(scim, "Other team")
    replace = patch_body({"op": "replace", "path": "members", "value": [{"value": users[2]}]})
    assert scim.patch(f"Groups/{group['id']}", json=replace).status_code == 204
    assert [m["value"] for m in scim.get(f"Groups/{group['id']}").json()["members"]] == [users[2]]
    clash = scim.patch(
        f"Groups/{group['id']}",
        json=patch_body({"op": "replace", "path": "displayName", "value": "OTHER TEAM"}),
    )
    assert is_scim_error(clash, 409, "uniqueness")
    put = scim.put(
        f"Groups/{group['id']}", json={"displayName": "Team", "externalId": "ext", "members": []}
    )
    assert (
        put.status_code == 200 and "members" not in put.json() and put.json()["externalId"] == "ext"
    )
