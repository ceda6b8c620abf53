"""PATCH as Okta and Entra ID send it, on users and groups."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskgate.scim import errors
from deskgate.scim import patch_groups as patch_module
from deskgate.scim.errors import SCIMException
from deskgate.scim.patch import apply_user_patch
from deskgate.scim.patch_groups import apply_group_patch
from deskgate.scim.records import EmailEntry, MemberRef

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


MANAGER = {"value": "m1", "displayName": "Pat Boss"}

# (id, operations, expected changes to the stored fields; {} = unchanged)
USER_PATCHES: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = [
    (
        "okta deactivate, no path",
        [{"op": "replace", "value": {"active": False}}],
        {"active": False},
    ),
    (
        "entra disable, capitalised op",
        [{"op": "Replace", "path": "active", "value": False}],
        {"active": False},
    ),
    (
        "entra disable, string False",
        [{"op": "Replace", "path": "active", "value": "False"}],
        {"active": False},
    ),
    ("string false, no path", [{"op": "replace", "value": {"active": "false"}}], {"active": False}),
    (
        "reactivate with string True, record already active",
        [{"op": "Replace", "path": "active", "value": "True"}],
        {},
    ),
    (
        "entra work email",
        [{"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"}],
        {"emails": (EmailEntry("new@example.com", "work", True),)},
    ),
    (
        "entra work email, lower-case op, other type added",
        [{"op": "add", "path": 'emails[type eq "home"].value', "value": "me@home.example"}],
        {
            "emails": (
                EmailEntry("jane.doe@example.com", "work", True),
                EmailEntry("me@home.example", "home"),
            )
        },
    ),
    (
        "emails replaced wholesale",
        [
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": "x@okta.local", "primary": True}],
            }
        ],
        {"emails": (EmailEntry("x@okta.local", None, True),)},
    ),
    (
        "emails in a no-path value",
        [{"op": "replace", "value": {"emails": [{"value": "x@y.z"}], "title": "Lead"}}],
        {"emails": (EmailEntry("x@y.z"),), "title": "Lead"},
    ),
    (
        "a new primary email demotes the old one (RFC 7644 3.5.2)",
        [
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "b@x.y", "type": "home", "primary": True}],
            }
        ],
        {
            "emails": (
                EmailEntry("jane.doe@example.com", "work", False),
                EmailEntry("b@x.y", "home", True),
            )
        },
    ),
    (
        "emails removed",
        [{"op": "remove", "path": "emails"}],
        {"emails": ()},
    ),
    (
        "entra family name",
        [{"op": "Replace", "path": "name.familyName", "value": "Smith"}],
        {"last_name": "Smith"},
    ),
    (
        "given name, add",
        [{"op": "Add", "path": "name.givenName", "value": "Janet"}],
        {"first_name": "Janet"},
    ),
    (
        "name object",
        [{"op": "replace", "path": "name", "value": {"givenName": "J", "familyName": "D"}}],
        {"first_name": "J", "last_name": "D"},
    ),
    (
        "userName",
        [{"op": "Replace", "path": "userName", "value": "jane@new.example"}],
        {"user_name": "jane@new.example"},
    ),
    (
        "userName with an .local domain",
        [{"op": "replace", "path": "userName", "value": "test.user@okta.local"}],
        {"user_name": "test.user@okta.local"},
    ),
    (
        "userName that is not an email (Entra UPN style or a plain id)",
        [{"op": "replace", "path": "userName", "value": "ryan3"}],
        {"user_name": "ryan3"},
    ),
    (
        "externalId, displayName, title, locale",
        [
            {"op": "replace", "path": "externalId", "value": "e-2"},
            {"op": "replace", "path": "displayName", "value": "JD"},
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "replace", "path": "locale", "value": "fr-FR"},
        ],
        {"external_id": "e-2", "display_name": "JD", "title": "Lead", "locale": "fr-FR"},
    ),
    (
        "enterprise department by URN path",
        [{"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Sales"}],
        {"enterprise": {"department": "Sales", "employeeNumber": "701984", "manager": MANAGER}},
    ),
    (
        "enterprise costCenter, add",
        [{"op": "Add", "path": f"{ENTERPRISE}:costCenter", "value": "CC-9"}],
        {
            "enterprise": {
                "department": "Support",
                "employeeNumber": "701984",
                "costCenter": "CC-9",
                "manager": MANAGER,
            }
        },
    ),
    (
        "enterprise extension object",
        [{"op": "replace", "path": ENTERPRISE, "value": {"division": "EMEA"}}],
        {
            "enterprise": {
                "department": "Support",
                "employeeNumber": "701984",
                "division": "EMEA",
                "manager": MANAGER,
            }
        },
    ),
    (
        "entra manager as a bare id",
        [{"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "m2"}],
        {
            "enterprise": {
                "department": "Support",
                "employeeNumber": "701984",
                "manager": {"value": "m2"},
            }
        },
    ),
    (
        "manager object with read-only displayName and $ref",
        [
            {
                "op": "replace",
                "path": f"{ENTERPRISE}:manager",
                "value": {"value": "m2", "displayName": "Someone", "$ref": "https://x/Users/m2"},
            }
        ],
        {
            "enterprise": {
                "department": "Support",
                "employeeNumber": "701984",
                "manager": {"value": "m2"},
            }
        },
    ),
    (
        "same manager again keeps its displayName",
        [{"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "m1"}}],
        {},
    ),
    (
        "remove manager",
        [{"op": "Remove", "path": f"{ENTERPRISE}:manager"}],
        {"enterprise": {"department": "Support", "employeeNumber": "701984"}},
    ),
    (
        "entra clears the manager with an empty string",
        [{"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""}],
        {"enterprise": {"department": "Support", "employeeNumber": "701984"}},
    ),
    (
        "entra remove manager carrying a value",
        [{"op": "Remove", "path": f"{ENTERPRISE}:manager", "value": "m1"}],
        {"enterprise": {"department": "Support", "employeeNumber": "701984"}},
    ),
    (
        "entra multi-attribute replace with dotted keys",
        [
            {
                "op": "replace",
                "value": {
                    "displayName": "Jay",
                    "name.givenName": "Jay",
                    f"{ENTERPRISE}:employeeNumber": "42",
                    f"{ENTERPRISE}:manager": "m3",
                },
            }
        ],
        {
            "display_name": "Jay",
            "first_name": "Jay",
            "enterprise": {
                "department": "Support",
                "employeeNumber": "42",
                "manager": {"value": "m3"},
            },
        },
    ),
    (
        "entra null update with empty strings",
        [
            {"op": "Replace", "path": "title", "value": ""},
            {"op": "Replace", "path": "name.givenName", "value": ""},
            {"op": "replace", "value": {"locale": "", "displayName": None}},
        ],
        {"title": None, "first_name": None, "locale": None, "display_name": None},
    ),
    (
        "remove attributes",
        [{"op": "remove", "path": "title"}, {"op": "remove", "path": "externalId"}],
        {"title": None, "external_id": None},
    ),
    ("password sync (ignored)", [{"op": "replace", "path": "password", "value": "n3wPa55"}], {}),
    (
        "password in a no-path value (ignored)",
        [{"op": "replace", "value": {"password": "n3wPa55"}}],
        {},
    ),
    (
        "unknown attributes and extensions (ignored)",
        [
            {"op": "replace", "path": "urn:example:custom:2.0:User:shoeSize", "value": "44"},
            {"op": "add", "path": "nickName", "value": "JJ"},
            {"op": "replace", "path": 'addresses[type eq "work"].formatted', "value": "1 Main St"},
            {"op": "replace", "path": 'phoneNumbers[type eq "work"].value', "value": "555"},
        ],
        {},
    ),
    (
        "writing the current value",
        [
            {"op": "replace", "path": "title", "value": "Support lead"},
            {"op": "replace", "value": {"active": True, "locale": "en-US"}},
        ],
        {},
    ),
    (
        "meta, schemas and the resource's own id in a value are ignored",
        [
            {
                "op": "replace",
                "value": {
                    "id": "a1",
                    "meta": {"resourceType": "User"},
                    "schemas": ["x"],
                    "title": "Lead",
                },
            }
        ],
        {"title": "Lead"},
    ),
    (
        "lower-case keys and extra members of an operation",
        [{"OP": "replace", "PATH": "title", "VALUE": "Lead", "name": "renameTitle"}],
        {"title": "Lead"},
    ),
    (
        "operations apply in order",
        [
            {"op": "replace", "path": "title", "value": "A"},
            {"op": "replace", "path": "title", "value": "B"},
        ],
        {"title": "B"},
    ),
]


@pytest.mark.parametrize(
    ("operations", "changes"), [p[1:] for p in USER_PATCHES], ids=[p[0] for p in USER_PATCHES]
)
def test_user_patches(make_agent, operations, changes):
    record = make_agent()
    update = apply_user_patch(record, body(*operations))
    assert update.fields == dataclasses.replace(record.fields(), **changes)
    assert update.changed is bool(changes)


def test_a_body_without_schemas_and_lowercase_operations_key(make_agent):
    update = apply_user_patch(
        make_agent(), {"operations": [{"op": "replace", "value": {"active": False}}]}
    )
    assert update.fields.active is False


USER_PATCH_ERRORS = [
    ("not an object", ["replace"], "invalidSyntax"),
    ("no operations", {"schemas": [PATCH_OP]}, "invalidValue"),
    ("empty operations", body(), "invalidValue"),
    ("operation not an object", body("replace"), "invalidSyntax"),  # type: ignore[arg-type]
    ("unknown op", body({"op": "frobnicate", "path": "title", "value": "x"}), "invalidValue"),
    ("missing op", body({"path": "title", "value": "x"}), "invalidValue"),
    ("add without a value", body({"op": "add", "path": "title"}), "invalidValue"),
    ("remove without a path", body({"op": "remove"}), "noTarget"),
    ("malformed path", body({"op": "replace", "path": "title[[", "value": "x"}), "invalidPath"),
    ("path not a string", body({"op": "replace", "path": 7, "value": "x"}), "invalidPath"),
    ("read-only id", body({"op": "replace", "path": "id", "value": "other"}), "mutability"),
    ("another id in a value", body({"op": "replace", "value": {"id": "other"}}), "mutability"),
    (
        "read-only meta",
        body({"op": "replace", "path": "meta.created", "value": "2020-01-01"}),
        "mutability",
    ),
    ("removing userName", body({"op": "remove", "path": "userName"}), "mutability"),
    ("emptying userName", body({"op": "Replace", "path": "userName", "value": ""}), "mutability"),
    (
        "active not a boolean",
        body({"op": "replace", "path": "active", "value": "maybe"}),
        "invalidValue",
    ),
    (
        "title too long",
        body({"op": "replace", "path": "title", "value": "t" * 201}),
        "invalidValue",
    ),
    ("no-path value not an object", body({"op": "replace", "value": "x"}), "invalidValue"),
    (
        "manager not an id",
        body({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": 7}),
        "invalidValue",
    ),
]


@pytest.mark.parametrize(
    ("payload", "scim_type"),
    [e[1:] for e in USER_PATCH_ERRORS],
    ids=[e[0] for e in USER_PATCH_ERRORS],
)
def test_invalid_user_patches_are_400(make_agent, payload, scim_type):
    with pytest.raises(SCIMException) as excinfo:
        apply_user_patch(make_agent(), payload)
    error = errors.error_body(excinfo.value)
    assert (error["status"], error.get("scimType")) == ("400", scim_type)


def test_a_failing_operation_leaves_nothing_half_applied(make_agent):
    record = make_agent()
    with pytest.raises(SCIMException):
        apply_user_patch(
            record,
            body(
                {"op": "replace", "path": "title", "value": "Changed"},
                {"op": "remove", "path": "userName"},
            ),
        )
    assert record.title == "Support lead"


def test_manager_display_name_is_dropped_when_the_manager_changes(make_agent):
    update = apply_user_patch(
        make_agent(), body({"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "m9"})
    )
    assert update.fields.enterprise["manager"] == {"value": "m9"}


def test_user_without_enterprise_data_gets_a_manager(make_agent):
    update = apply_user_patch(
        make_agent(enterprise={}),
        body({"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": "m2"}}),
    )
    assert update.fields.enterprise == {"manager": {"value": "m2"}}
    assert update.changed


# ---------------------------------------------------------------------------
# the clients' own PATCH bodies


def test_okta_user_deactivation_from_its_reference(okta_doc_requests, make_agent):
    patches = [r for r in okta_doc_requests if r.method == "PATCH" and "/Users/" in r.path]
    assert len(patches) == 1
    update = apply_user_patch(make_agent(), patches[0].body)
    assert update.changed and update.fields.active is False


def test_okta_group_patches_from_its_reference(okta_doc_requests, make_group):
    patches = [r for r in okta_doc_requests if r.method == "PATCH" and "/Groups/" in r.path]
    assert len(patches) == 3
    rename, membership, replace_all = patches
    okta_user = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
    leaver = "89bb1940-b905-4575-9e7f-6f887cfb368e"
    record = make_group(
        id="abf4dd94-a4c0-4f67-89c9-76b03340cb9b", members=(MemberRef(leaver), MemberRef("u2"))
    )

    renamed = apply_group_patch(record, rename.body)
    assert renamed.fields.display_name == "Test SCIMv2"
    assert (renamed.changed, renamed.added, renamed.removed) == (True, (), ())
    unchanged = apply_group_patch(
        dataclasses.replace(record, display_name="Test SCIMv2"), rename.body
    )
    assert unchanged.changed is False  # Okta re-sends the name with every membership update

    moved = apply_group_patch(record, membership.body)
    assert moved.removed == (leaver,)
    assert moved.added == (MemberRef(okta_user, "test.user@okta.local"),)
    assert [m.agent_id for m in moved.fields.members] == ["u2", okta_user]

    replaced = apply_group_patch(record, replace_all.body)
    assert replaced.added == (MemberRef(okta_user, "test.user@okta.local"),)
    assert replaced.removed == ("u2",)
    assert {m.agent_id for m in replaced.fields.members} == {okta_user, leaver}


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("patch user omalley active with boolean", {"active": False}),
        ("Patch user omalley new username", {"user_name": "newusername"}),
        ("patch user1", {"user_name": "ryan3"}),
    ],
)
def test_postman_user_patches(postman_requests, make_agent, name, outcome):
    request = next(r for r in postman_requests if r.name == name)
    record = make_agent(id="u1")
    if isinstance(outcome, str):
        with pytest.raises(SCIMException) as excinfo:
            apply_user_patch(record, request.json())
        assert excinfo.value.scim_type == outcome
    else:
        update = apply_user_patch(record, request.json())
        assert update.fields == dataclasses.replace(record.fields(), **outcome)


def test_postman_group_patches(postman_requests, make_group):
    by_name = {(r.folder, r.name): r for r in postman_requests if r.method == "PATCH"}
    record = make_group(members=(MemberRef("u1"), MemberRef("u2")))

    added = apply_group_patch(record, by_name[("Group tests", "Patch add user4 to group1")].json())
    assert added.added == (MemberRef("u4", "new User"),)

    with_u4 = dataclasses.replace(record, members=(*record.members, MemberRef("u4")))
    removed = apply_group_patch(
        with_u4, by_name[("Group tests", "Patch remove user4 to group1")].json()
    )
    assert removed.removed == ("u4",)

    emptied = apply_group_patch(record, by_name[("Group tests", "Patch remove all users")].json())
    assert (emptied.removed, emptied.fields.members) == (("u1", "u2"), ())

    plain = apply_group_patch(
        record, by_name[("Group tests with garbage", "Group patch add member")].json()
    )
    assert plain.added == (MemberRef("string id 1"),)


# ---------------------------------------------------------------------------
# groups

# (id, operations, expected (display_name, member ids, added ids, removed ids))
GROUP_PATCHES: list[
    tuple[str, list[dict[str, Any]], tuple[str, list[str], list[str], list[str]]]
] = [
    (
        "okta rename: no path, id + displayName",
        [{"op": "replace", "value": {"id": "g1", "displayName": "Renamed"}}],
        ("Renamed", ["u1", "u2"], [], []),
    ),
    (
        "entra rename",
        [{"op": "Replace", "path": "displayName", "value": "Renamed"}],
        ("Renamed", ["u1", "u2"], [], []),
    ),
    (
        "okta remove by filter + add",
        [
            {"op": "remove", "path": 'members[value eq "u1"]'},
            {"op": "add", "path": "members", "value": [{"value": "u3", "display": "u3@x"}]},
        ],
        ("Tier 1", ["u2", "u3"], ["u3"], ["u1"]),
    ),
    (
        "entra add with $ref null",
        [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": "u3"}]}],
        ("Tier 1", ["u1", "u2", "u3"], ["u3"], []),
    ),
    (
        "entra add a single member object",
        [{"op": "add", "path": "members", "value": {"value": "u3"}}],
        ("Tier 1", ["u1", "u2", "u3"], ["u3"], []),
    ),
    (
        "entra remove with a value list",
        [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "u2"}]}],
        ("Tier 1", ["u1"], [], ["u2"]),
    ),
    (
        "remove with several values",
        [{"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}],
        ("Tier 1", [], [], ["u1", "u2"]),
    ),
    (
        "remove with an or filter",
        [{"op": "remove", "path": 'members[value eq "u1" or value eq "u9"]'}],
        ("Tier 1", ["u2"], [], ["u1"]),
    ),
    (
        "remove with an empty value list does nothing",
        [{"op": "remove", "path": "members", "value": []}],
        ("Tier 1", ["u1", "u2"], [], []),
    ),
    (
        "replace members",
        [{"op": "replace", "path": "members", "value": [{"value": "u2"}, {"value": "u5"}]}],
        ("Tier 1", ["u2", "u5"], ["u5"], ["u1"]),
    ),
    (
        "replace members with the same set",
        [{"op": "replace", "path": "members", "value": [{"value": "u2"}, {"value": "u1"}]}],
        ("Tier 1", ["u2", "u1"], [], []),
    ),
    (
        "replace members with null empties the group",
        [{"op": "replace", "path": "members", "value": None}],
        ("Tier 1", [], [], ["u1", "u2"]),
    ),
    (
        "no-path replace carrying members",
        [{"op": "replace", "value": {"displayName": "X", "members": [{"value": "u7"}]}}],
        ("X", ["u7"], ["u7"], ["u1", "u2"]),
    ),
    ("remove all members", [{"op": "remove", "path": "members"}], ("Tier 1", [], [], ["u1", "u2"])),
    (
        "add an existing member is no change",
        [{"op": "add", "path": "members", "value": [{"value": "u1", "display": "Other"}]}],
        ("Tier 1", ["u1", "u2"], [], []),
    ),
    (
        "remove a non-member is no change",
        [{"op": "remove", "path": 'members[value eq "u9"]'}],
        ("Tier 1", ["u1", "u2"], [], []),
    ),
    (
        "add then remove the same member",
        [
            {"op": "add", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": 'members[value eq "u3"]'},
        ],
        ("Tier 1", ["u1", "u2"], [], []),
    ),
    (
        "remove then re-add a member",
        [
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        ],
        ("Tier 1", ["u1"], [], ["u2"]),
    ),
    (
        "a filter on display goes through scim2-models",
        [{"op": "remove", "path": 'members[display eq "Udo Two"]'}],
        ("Tier 1", ["u1"], [], ["u2"]),
    ),
    (
        "members with a type of User",
        [{"op": "add", "path": "members", "value": [{"value": "u3", "type": "User"}]}],
        ("Tier 1", ["u1", "u2", "u3"], ["u3"], []),
    ),
    (
        "externalId",
        [{"op": "add", "path": "externalId", "value": "okta-g1"}],
        ("Tier 1", ["u1", "u2"], [], []),
    ),
    (
        "renaming to the current name",
        [{"op": "replace", "path": "displayName", "value": "Tier 1"}],
        ("Tier 1", ["u1", "u2"], [], []),
    ),
]


@pytest.mark.parametrize(
    ("operations", "expected"), [p[1:] for p in GROUP_PATCHES], ids=[p[0] for p in GROUP_PATCHES]
)
def test_group_patches(make_group, operations, expected):
    record = make_group()
    update = apply_group_patch(record, body(*operations))
    display_name, members, added, removed = expected
    assert update.fields.display_name == display_name
    assert [m.agent_id for m in update.fields.members] == members
    assert [m.agent_id for m in update.added] == added
    assert list(update.removed) == removed
    external_changed = update.fields.external_id != record.external_id
    assert update.changed is bool(added or removed or display_name != "Tier 1" or external_changed)


def test_group_external_id_patch(make_group):
    update = apply_group_patch(
        make_group(), body({"op": "add", "path": "externalId", "value": "e"})
    )
    assert update.fields.external_id == "e" and update.changed


def test_kept_members_keep_their_display(make_group):
    update = apply_group_patch(
        make_group(),
        body({"op": "add", "path": "members", "value": [{"value": "u3", "display": "New"}]}),
    )
    assert update.fields.members == (
        MemberRef("u1", "Uma One"),
        MemberRef("u2", "Udo Two"),
        MemberRef("u3", "New"),
    )


GROUP_PATCH_ERRORS = [
    (
        "nested group member",
        body({"op": "add", "path": "members", "value": [{"value": "g2", "type": "Group"}]}),
        "invalidValue",
    ),
    (
        "member without a value",
        body({"op": "add", "path": "members", "value": [{"display": "x"}]}),
        "invalidValue",
    ),
    (
        "member value not a string",
        body({"op": "add", "path": "members", "value": [{"value": 7}]}),
        "invalidValue",
    ),
    (
        "empty display name",
        body({"op": "replace", "path": "displayName", "value": ""}),
        "mutability",
    ),
    ("display name removed", body({"op": "remove", "path": "displayName"}), "mutability"),
    (
        "display name too long",
        body({"op": "replace", "path": "displayName", "value": "x" * 401}),
        "invalidValue",
    ),
    (
        "read-only id",
        body({"op": "replace", "value": {"id": "g2", "displayName": "x"}}),
        "mutability",
    ),
    (
        "malformed member filter",
        body({"op": "remove", "path": 'members[value eq "u1"'}),
        "invalidPath",
    ),
    (
        "unknown member sub-attribute filter",
        body({"op": "remove", "path": 'members[nope eq "x"]'}),
        "invalidFilter",
    ),
    (
        "remove value entries must be objects",
        body({"op": "remove", "path": "members", "value": [7]}),
        "invalidValue",
    ),
]


@pytest.mark.parametrize(
    ("payload", "scim_type"),
    [e[1:] for e in GROUP_PATCH_ERRORS],
    ids=[e[0] for e in GROUP_PATCH_ERRORS],
)
def test_invalid_group_patches_are_400(make_group, payload, scim_type):
    with pytest.raises(SCIMException) as excinfo:
        apply_group_patch(make_group(), payload)
    error = errors.error_body(excinfo.value)
    assert (error["status"], error.get("scimType")) == ("400", scim_type)


def test_member_changes_on_a_large_group_are_cheap_and_exact(make_group, monkeypatch):
    def no_full_group(*args, **kwargs):
        raise AssertionError("common member operations must not build the full member list")

    # The slow path builds one scim2-models GroupMember per member.
    monkeypatch.setattr(patch_module, "GroupMember", no_full_group)
    members = tuple(MemberRef(f"agent-{i}") for i in range(50_000))
    record = make_group(members=members)
    started = time.perf_counter()
    update = apply_group_patch(
        record,
        body(
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "agent-new"}]},
            {"op": "remove", "path": 'members[value eq "agent-77"]'},
            {"op": "Remove", "path": "members", "value": [{"value": "agent-78"}]},
            {"op": "replace", "value": {"id": "g1", "displayName": "Renamed"}},
        ),
    )
    elapsed = time.perf_counter() - started
    assert update.added == (MemberRef("agent-new"),)
    assert update.removed == ("agent-77", "agent-78")
    assert len(update.fields.members) == 50_000 - 1
    assert update.fields.display_name == "Renamed"
    assert elapsed < 5.0, f"PATCH on a 50k-member group took {elapsed:.2f}s"


# ---------------------------------------------------------------------------
# whatever a client sends: an update, or a SCIM error (never another exception)

_PATHS = st.sampled_from(
    [
        None,
        "",
        "active",
        "userName",
        "name",
        "name.givenName",
        "emails",
        'emails[type eq "work"].value',
        "title",
        "externalId",
        "displayName",
        f"{ENTERPRISE}:manager",
        f"{ENTERPRISE}:manager.value",
        ENTERPRISE,
        "members",
        'members[value eq "u1"]',
        'members[display eq "x"].display',
        "members.value",
        "id",
        "meta",
        "groups",
        "password",
        "roles",
        'addresses[type eq "work"].formatted',
        "schemas",
        "x[",
        "urn:x:y:z",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["", "x", "True", "False", "a@b.c", "u1", "u3", "User", "Group"]),
)
_KEYS = st.sampled_from(
    [
        "value",
        "display",
        "type",
        "$ref",
        "displayName",
        "givenName",
        "active",
        "members",
        "id",
        "userName",
        "manager",
        "department",
        ENTERPRISE,
        f"{ENTERPRISE}:manager",
        "emails",
        "name.givenName",
        "primary",
    ]
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=8,
)
_OPERATION = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "Add", "Replace", "bogus", None])},
    optional={"path": _PATHS, "value": _VALUES},
)
_BODIES = st.one_of(
    st.fixed_dictionaries({"Operations": st.lists(_OPERATION, max_size=4)}), _VALUES
)


@settings(max_examples=100, deadline=None)
@given(payload=_BODIES)
def test_any_user_patch_body_updates_or_is_a_scim_error(make_agent, payload):
    try:
        update = apply_user_patch(make_agent(), payload)
    except SCIMException as exc:
        assert 400 <= exc.status < 500
    else:
        assert update.changed is (update.fields != make_agent().fields())


@settings(max_examples=100, deadline=None)
@given(payload=_BODIES)
def test_any_group_patch_body_updates_or_is_a_scim_error(make_group, payload):
    record = make_group()
    try:
        update = apply_group_patch(record, payload)
    except SCIMException as exc:
        assert 400 <= exc.status < 500
    else:
        ids = {m.agent_id for m in update.fields.members}
        assert ids == ({"u1", "u2"} | {m.agent_id for m in update.added}) - set(update.removed)


# ---------------------------------------------------------------------------
# loading only the memberships a PATCH names

REFERENCED = [
    (
        "okta remove + add",
        [
            {"op": "remove", "path": 'members[value eq "u1"]'},
            {"op": "add", "path": "members", "value": [{"value": "u3"}]},
        ],
        {"u1", "u3"},
    ),
    (
        "entra add/remove with values",
        [
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "u4"}]},
            {"op": "Remove", "path": "Members", "value": [{"value": "u5"}, "u6"]},
        ],
        {"u4", "u5", "u6"},
    ),
    ("or filter", [{"op": "remove", "path": 'members[value eq "a" or value eq "b"]'}], {"a", "b"}),
    ("rename only", [{"op": "replace", "value": {"id": "g1", "displayName": "X"}}], set()),
    ("no-path add of members", [{"op": "add", "value": {"members": ["u7"]}}], {"u7"}),
    ("replace members", [{"op": "replace", "path": "members", "value": []}], None),
    ("remove all", [{"op": "remove", "path": "members"}], None),
    ("no-path replace of members", [{"op": "replace", "value": {"members": []}}], None),
    ("filter on display", [{"op": "remove", "path": 'members[display eq "x"]'}], None),
    (
        "sub-attribute",
        [{"op": "replace", "path": 'members[value eq "u1"].display', "value": "x"}],
        None,
    ),
    ("invalid body", [{"op": "bogus"}], set()),
]


@pytest.mark.parametrize(
    ("operations", "expected"), [r[1:] for r in REFERENCED], ids=[r[0] for r in REFERENCED]
)
def test_referenced_member_ids(operations, expected):
    result = patch_module.referenced_member_ids(body(*operations))
    assert result == (None if expected is None else frozenset(expected))


def _same_outcome_with_only_referenced_members(record, payload):
    referenced = patch_module.referenced_member_ids(payload)
    if referenced is None:
        return
    try:
        full = apply_group_patch(record, payload)
    except SCIMException as exc:
        with pytest.raises(type(exc)):
            apply_group_patch(record, payload)
        return
    subset = tuple(m for m in record.members if m.agent_id in referenced)
    partial = apply_group_patch(dataclasses.replace(record, members=subset), payload)
    assert (partial.added, partial.removed) == (full.added, full.removed)
    assert partial.changed == full.changed
    assert partial.fields.display_name == full.fields.display_name


@pytest.mark.parametrize(
    "operations", [p[1] for p in GROUP_PATCHES], ids=[p[0] for p in GROUP_PATCHES]
)
def test_a_partial_membership_gives_the_same_changes(make_group, operations):
    _same_outcome_with_only_referenced_members(make_group(), body(*operations))


@settings(max_examples=100, deadline=None)
@given(payload=_BODIES)
def test_a_partial_membership_gives_the_same_changes_for_any_body(make_group, payload):
    _same_outcome_with_only_referenced_members(make_group(), payload)
