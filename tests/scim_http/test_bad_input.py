"""Bad requests get the right 4xx with a SCIM Error body, never a 5xx, and leave the stored
data as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from deskgate.store.models import Agent, Group, GroupMember
from deskgate.web.scim import MAX_BODY_BYTES

from scim_helpers import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    create_group,
    create_user,
    fresh,
    is_scim_error,
    patch_body,
)


def snapshot(db: Session) -> list[tuple[Any, ...]]:
    """Everything SCIM can change, to compare before and after a refused request."""
    db = fresh(db)
    agents = [
        (
            a.id,
            a.email,
            a.first_name,
            a.last_name,
            a.display_name,
            a.active,
            a.role,
            a.external_id,
            a.locale,
            a.title,
            a.enterprise,
            a.version,
            a.scim_deleted_at,
        )
        for a in db.scalars(select(Agent).order_by(Agent.id))
    ]
    groups = [
        (g.id, g.display_name, g.external_id, g.version)
        for g in db.scalars(select(Group).order_by(Group.id))
    ]
    members = [
        (m.group_id, m.agent_id)
        for m in db.scalars(
            select(GroupMember).order_by(GroupMember.group_id, GroupMember.agent_id)
        )
    ]
    return [tuple(agents), tuple(groups), tuple(members)]


@pytest.fixture
def targets(scim: Any) -> dict[str, str]:
    """The ids of a user and of a group it belongs to."""
    user = create_user(scim, "stable@example.com", title="Lead")
    group = create_group(scim, "Stable", [user["id"]])
    return {"user": user["id"], "group": group["id"]}


@pytest.fixture
def world(targets: dict[str, str], db: Session) -> Iterator[dict[str, str]]:
    """`targets`, checking afterwards that nothing stored has changed."""
    before = snapshot(db)
    yield targets
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type"),
    [
        ("POST", "Users", b"{not json", 400, "invalidSyntax"),
        ("POST", "Users", b"", 400, "invalidSyntax"),
        ("POST", "Users", b"[]", 400, "invalidSyntax"),
        ("POST", "Users", b'"just a string"', 400, "invalidSyntax"),
        ("POST", "Users", b"\xff\xfe garbage", 400, "invalidSyntax"),
        ("POST", "Users", b'{"userName": "a@b.com", "n": NaN}', 400, "invalidSyntax"),
        ("POST", "Users", b"[" * 5000 + b"]" * 5000, 400, "invalidSyntax"),
        ("POST", "Users", {"schemas": [USER_SCHEMA]}, 400, "invalidValue"),  # no userName
        ("POST", "Users", {"schemas": [USER_SCHEMA], "userName": "x" * 401}, 400, "invalidValue"),
        ("POST", "Users", {"schemas": [USER_SCHEMA], "userName": 42}, 400, "invalidValue"),
        (
            "POST",
            "Users",
            {"schemas": [USER_SCHEMA], "userName": "a@b.com", "active": "maybe"},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Users",
            {"schemas": [USER_SCHEMA], "userName": "a@b.com", "name": "Ann"},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Users",
            {"schemas": ["urn:example:unknown"], "userName": "a@b.com"},
            400,
            "invalidSyntax",
        ),
        ("POST", "Users", {"schemas": [GROUP_SCHEMA], "userName": "a@b.com"}, 400, "invalidSyntax"),
        (
            "POST",
            "Users",
            {"schemas": [USER_SCHEMA], "userName": "a@b.com", "title": "x" * 5000},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Users",
            {"schemas": [USER_SCHEMA], "userName": "stable@example.com"},
            409,
            "uniqueness",
        ),
        ("POST", "Groups", {"schemas": [GROUP_SCHEMA]}, 400, "invalidValue"),
        ("POST", "Groups", {"displayName": "stable"}, 409, "uniqueness"),
        ("POST", "Groups", {"displayName": "G", "members": "everyone"}, 400, "invalidValue"),
        (
            "POST",
            "Groups",
            {"displayName": "G", "members": [{"value": "g", "type": "Group"}]},
            400,
            "invalidValue",
        ),
        (
            "PUT",
            "Users/{user}",
            {"schemas": [USER_SCHEMA], "name": {"givenName": "No userName"}},
            400,
            "invalidValue",
        ),
        (
            "PUT",
            "Users/{user}",
            {"schemas": [USER_SCHEMA], "userName": "admin1@example.com"},
            409,
            "uniqueness",
        ),
        ("PATCH", "Users/{user}", {"Operations": []}, 400, "invalidValue"),
        (
            "PATCH",
            "Users/{user}",
            {"Operations": [{"op": "jump", "path": "title"}]},
            400,
            "invalidValue",
        ),
        ("PATCH", "Users/{user}", {"Operations": "replace"}, 400, "invalidValue"),
        (
            "PATCH",
            "Users/{user}",
            patch_body({"op": "replace", "path": "active", "value": "perhaps"}),
            400,
            "invalidValue",
        ),
        (
            "PATCH",
            "Users/{user}",
            patch_body({"op": "replace", "path": "title[[", "value": "x"}),
            400,
            None,
        ),
        (
            "PATCH",
            "Users/{user}",
            patch_body({"op": "replace", "path": "userName", "value": "admin1@example.com"}),
            409,
            "uniqueness",
        ),
        (
            "PATCH",
            "Users/{user}",
            patch_body(
                {"op": "replace", "value": {"active": False}},
                {"op": "replace", "path": "userName", "value": "x" * 401},
            ),
            400,
            "invalidValue",
        ),
        (
            "PATCH",
            "Groups/{group}",
            patch_body({"op": "add", "path": "members", "value": [{"nope": 1}]}),
            400,
            "invalidValue",
        ),
        (
            "PATCH",
            "Groups/{group}",
            patch_body({"op": "replace", "path": "displayName", "value": ""}),
            400,
            "mutability",
        ),
        ("GET", "Users?filter=userName+zz+%22x%22", None, 400, "invalidFilter"),
        ("GET", "Users?filter=password+eq+%22x%22", None, 400, "invalidFilter"),
        ("GET", "Users?filter=meta.created+co+%222020%22", None, 400, "invalidFilter"),
        ("GET", "Users?filter=active+gt+true", None, 400, "invalidFilter"),
        (
            "GET",
            "Users?filter=" + "not+(" * 12 + "userName+pr" + ")" * 12,
            None,
            400,
            "invalidFilter",
        ),
        ("GET", "Users?filter=" + "+or+".join(["userName+pr"] * 60), None, 400, "invalidFilter"),
        (
            "GET",
            "Users?filter=" + "userName+eq+%22" + "x" * 5000 + "%22",
            None,
            400,
            "invalidFilter",
        ),
        ("GET", "Groups?filter=members.value+gt+%22x%22", None, 400, "invalidFilter"),
        ("GET", "Users?startIndex=first", None, 400, "invalidValue"),
        ("GET", "Users?count=ten", None, 400, "invalidValue"),
        ("GET", "Users?sortBy=password", None, 400, "invalidPath"),
        ("GET", "Users?sortOrder=sideways", None, 400, "invalidValue"),
        ("GET", "Users?attributes=userName&excludedAttributes=title", None, 400, "invalidValue"),
        ("POST", "Users/.search", {"filter": 7}, 400, "invalidFilter"),
        ("GET", "Users/{user}?attributes=[[", None, 400, "invalidPath"),
    ],
)
def test_refused_with_a_scim_error_and_nothing_changes(
    scim: Any,
    world: dict[str, str],
    method: str,
    path: str,
    body: Any,
    status: int,
    scim_type: str | None,
) -> None:
    path = path.format(**world)
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = scim.request(
        method, path, **kwargs, headers={"Content-Type": "application/scim+json"}
    )
    assert response.status_code == status, response.text
    if scim_type is None:
        assert response.json()["status"] == str(status) and response.json()["scimType"]
    else:
        assert is_scim_error(response, status, scim_type)


def test_if_match_guards_writes(scim: Any, world: dict[str, str]) -> None:
    user = world["user"]
    stale = {"If-Match": 'W/"999"'}
    body = patch_body({"op": "replace", "path": "title", "value": "Changed"})
    assert is_scim_error(scim.patch(f"Users/{user}", json=body, headers=stale), 412)
    assert is_scim_error(
        scim.put(f"Users/{user}", json={"userName": "stable@example.com"}, headers=stale), 412
    )
    assert is_scim_error(scim.delete(f"Users/{user}", headers=stale), 412)
    assert is_scim_error(scim.patch(f"Groups/{world['group']}", json=body, headers=stale), 412)


def test_if_match_current_or_star_is_accepted(scim: Any) -> None:
    user = create_user(scim, "etag@example.com")
    etag = scim.get(f"Users/{user['id']}").headers["ETag"]
    assert etag == user["meta"]["version"] == 'W/"1"'
    body = patch_body({"op": "replace", "path": "title", "value": "One"})
    first = scim.patch(f"Users/{user['id']}", json=body, headers={"If-Match": etag})
    assert first.status_code == 200 and first.headers["ETag"] == 'W/"2"'
    same = scim.patch(f"Users/{user['id']}", json=body, headers={"If-Match": "*"})
    assert same.headers["ETag"] == 'W/"2"'  # nothing changed: same version
    assert scim.get(f"Users/{user['id']}", headers={"If-None-Match": 'W/"2"'}).status_code == 304


def test_bodies_over_the_limit_are_413(scim: Any, world: dict[str, str]) -> None:
    big = (
        b'{"schemas": ["'
        + USER_SCHEMA.encode()
        + b'"], "userName": "big@example.com", "title": "'
        + b"x" * MAX_BODY_BYTES
        + b'"}'
    )
    assert is_scim_error(scim.post("Users", content=big), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is on the bytes read
        for _ in range(40):
            yield b" " * 32768
        yield big

    assert is_scim_error(scim.post("Users", content=chunks()), 413)
    lying = scim.post("Users", content=b"{}", headers={"Content-Length": str(MAX_BODY_BYTES * 4)})
    assert lying.status_code in (400, 413)


def test_unknown_paths_and_methods(scim: Any) -> None:
    assert is_scim_error(scim.get("Nothing/here"), 404)
    assert is_scim_error(scim.get(""), 404)
    assert is_scim_error(scim.delete("Users"), 405)
    assert scim.delete("Users").headers["allow"] == "GET, POST"
    assert is_scim_error(scim.put("Schemas"), 405)
    assert is_scim_error(scim.get("Me"), 501)
    assert is_scim_error(scim.post("Bulk", json={}), 501)
    assert is_scim_error(scim.get("Schemas/urn:nope"), 404)
    assert is_scim_error(scim.get("ResourceTypes/Robot"), 404)


def test_discovery(scim: Any) -> None:
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["filter"] == {
        "supported": True,
        "maxResults": 1000,
    }
    assert config["etag"]["supported"] and not config["bulk"]["supported"]
    schemas = {s["id"]: s for s in scim.get("Schemas").json()["Resources"]}
    user = {a["name"]: a for a in schemas[USER_SCHEMA]["attributes"]}
    assert user["active"]["required"] is True
    assert [s["name"] for s in user["name"]["subAttributes"]] == ["familyName", "givenName"]
    group = {a["name"]: a for a in schemas[GROUP_SCHEMA]["attributes"]}
    assert "display" not in [s["name"] for s in group["members"]["subAttributes"]]
    assert scim.get(f"Schemas/{USER_SCHEMA}").json() == schemas[USER_SCHEMA]
    types = scim.get("ResourceTypes").json()["Resources"]
    assert [t["endpoint"] for t in types] == ["/Users", "/Groups"]
    assert scim.get("ResourceTypes/user").json()["id"] == "User"


def test_content_types(scim: Any) -> None:
    for content_type in (
        "application/scim+json",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
    ):
        response = scim.post(
            "Users",
            content=b'{"userName": "ct@example.com"}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code in (201, 409), response.text
        assert response.headers["content-type"] == "application/scim+json"


# --- fuzzing --------------------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_user_keys = st.sampled_from(
    [
        "schemas",
        "userName",
        "name",
        "active",
        "emails",
        "externalId",
        "title",
        "locale",
        "displayName",
        "password",
        "groups",
        "id",
        "meta",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ]
)
_user_bodies = st.dictionaries(_user_keys, _json, max_size=6) | st.fixed_dictionaries(
    {"schemas": st.just([USER_SCHEMA]), "userName": st.emails() | st.text(max_size=30)},
    optional={"name": _json, "active": _json, "emails": _json, "enterprise": _json},
)
_operations = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "Replace", "remove", "nope"]) | st.text(max_size=5)},
        optional={
            "path": st.sampled_from(
                [
                    "active",
                    "title",
                    "name.givenName",
                    'emails[type eq "work"].value',
                    "members",
                    'members[value eq "x"]',
                    "userName",
                    "x[",
                    "",
                ]
            )
            | st.text(max_size=15),
            "value": _json,
        },
    ),
    max_size=4,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_user_bodies)
def test_fuzz_post_users_never_fails_with_5xx(scim: Any, body: dict[str, Any]) -> None:
    response = scim.post("Users", json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations, target=st.sampled_from(["Users", "Groups"]))
def test_fuzz_patch_never_fails_with_5xx(
    scim: Any, targets: dict[str, str], operations: Any, target: str
) -> None:
    resource = targets["user"] if target == "Users" else targets["group"]
    response = scim.patch(
        f"{target}/{resource}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        },
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
