"""Records <-> SCIM resources, POST/PUT bodies, response bodies, errors and ETags."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from scim2_models import Context, EnterpriseUser, Group, User

from deskgate.scim import errors, etag, mapping, responses
from deskgate.scim.errors import SCIMException
from deskgate.scim.query import parse_list_query
from deskgate.scim.records import AgentFields, EmailEntry, GroupFields, MemberRef, ResourceKind

BASE_URL = "https://deskgate.example/scim/v2/accounts/acc1"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def scim_error(excinfo: pytest.ExceptionInfo[SCIMException]) -> dict[str, Any]:
    return errors.error_body(excinfo.value)


# ---------------------------------------------------------------------------
# records -> resources


def test_user_resource_carries_every_stored_field(make_agent):
    body = responses.serialize_user(make_agent(), BASE_URL + "/")

    assert body == {
        "schemas": [USER, ENTERPRISE],
        "id": "a1",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "meta": {
            "resourceType": "User",
            "created": "2024-05-01T09:30:00Z",
            "lastModified": "2024-05-02T10:00:05Z",
            "location": f"{BASE_URL}/Users/a1",
            "version": 'W/"3"',
        },
        "userName": "jane.doe@example.com",
        "name": {"formatted": "Jane Doe", "familyName": "Doe", "givenName": "Jane"},
        "displayName": "Jane Doe",
        "title": "Support lead",
        "locale": "en-US",
        "active": True,
        "emails": [{"value": "jane.doe@example.com", "type": "work", "primary": True}],
        ENTERPRISE: {
            "employeeNumber": "701984",
            "department": "Support",
            "manager": {"value": "m1", "$ref": f"{BASE_URL}/Users/m1", "displayName": "Pat Boss"},
        },
    }


def test_user_without_optional_fields_has_only_the_core_schema(make_agent):
    record = make_agent(
        first_name="",
        last_name=None,
        display_name="",
        external_id=None,
        locale=None,
        title=None,
        enterprise={},
        active=False,
    )
    body = responses.serialize_user(record, BASE_URL)

    assert body["schemas"] == [USER]
    assert set(body) == {"schemas", "id", "meta", "userName", "active", "emails"}
    assert body["active"] is False


def test_naive_timestamps_from_the_store_are_utc(make_agent):
    # Naive on purpose: the store hands back naive UTC timestamps on SQLite.
    record = make_agent(
        created_at=datetime(2024, 5, 1, 9, 30),  # noqa: DTZ001
        updated_at=datetime(2024, 5, 2, 10, 0, 5),  # noqa: DTZ001
    )
    meta = responses.serialize_user(record, BASE_URL)["meta"]
    assert (meta["created"], meta["lastModified"]) == (
        "2024-05-01T09:30:00Z",
        "2024-05-02T10:00:05Z",
    )


def test_a_login_email_strict_validators_refuse_is_still_shown(make_agent):
    # Okta's documentation provisions test.user@okta.local; EmailStr refuses .local.
    body = responses.serialize_user(make_agent(email="test.user@okta.local"), BASE_URL)
    assert body["emails"] == [{"value": "test.user@okta.local", "type": "work", "primary": True}]


def test_serialized_user_validates_as_a_scim_response(make_agent):
    body = responses.serialize_user(make_agent(), BASE_URL)
    parsed = User[EnterpriseUser].model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert parsed.id == "a1"
    assert parsed[EnterpriseUser].manager.value == "m1"


@pytest.mark.parametrize(
    ("attributes", "excluded", "keys"),
    [
        (["userName"], [], {"schemas", "id", "userName"}),
        (["userName", "emails"], [], {"schemas", "id", "userName", "emails"}),
        (["name.givenName"], [], {"schemas", "id", "name"}),
        ([f"{ENTERPRISE}:department"], [], {"schemas", "id", ENTERPRISE}),
        (
            [],
            ["emails", "meta", ENTERPRISE],
            {
                "schemas",
                "id",
                "externalId",
                "userName",
                "name",
                "displayName",
                "title",
                "locale",
                "active",
            },
        ),
    ],
)
def test_attributes_and_excluded_attributes_select_what_is_returned(
    make_agent, attributes, excluded, keys
):
    body = responses.serialize_user(
        make_agent(), BASE_URL, attributes=attributes, excluded_attributes=excluded
    )
    assert set(body) == keys


def test_requesting_a_sub_attribute_returns_only_it(make_agent):
    body = responses.serialize_user(make_agent(), BASE_URL, attributes=["name.givenName"])
    assert body["name"] == {"givenName": "Jane"}


def test_group_resource_lists_members_as_user_references(make_group):
    body = responses.serialize_group(make_group(external_id="okta-7"), BASE_URL)
    assert body == {
        "schemas": [GROUP],
        "id": "g1",
        "externalId": "okta-7",
        "meta": {
            "resourceType": "Group",
            "created": "2024-05-01T09:30:00Z",
            "lastModified": "2024-05-02T10:00:05Z",
            "location": f"{BASE_URL}/Groups/g1",
            "version": 'W/"7"',
        },
        "displayName": "Tier 1",
        "members": [
            {"value": "u1", "$ref": f"{BASE_URL}/Users/u1", "type": "User", "display": "Uma One"},
            {"value": "u2", "$ref": f"{BASE_URL}/Users/u2", "type": "User", "display": "Udo Two"},
        ],
    }


def test_entra_excluded_attributes_members_drops_the_member_list(make_group):
    # GET /Groups/{id}?excludedAttributes=members, as Entra ID sends it.
    query = parse_list_query(ResourceKind.GROUP, excluded_attributes="members")
    body = responses.serialize_group(
        make_group(), BASE_URL, excluded_attributes=query.excluded_attributes
    )
    assert "members" not in body
    assert body["displayName"] == "Tier 1"


@pytest.mark.parametrize(
    "context",
    [
        Context.RESOURCE_CREATION_RESPONSE,
        Context.RESOURCE_REPLACEMENT_RESPONSE,
        Context.RESOURCE_PATCH_RESPONSE,
        Context.RESOURCE_QUERY_RESPONSE,
    ],
)
def test_password_is_never_returned(make_agent, context):
    fields = mapping.agent_fields_for_create(
        {"schemas": [USER], "userName": "a@example.com", "password": "1mz050nq"}
    )
    assert "1mz050nq" not in repr(fields)
    body = responses.serialize_user(make_agent(), BASE_URL, context=context)
    assert "password" not in json.dumps(body)


# ---------------------------------------------------------------------------
# list responses


def test_user_list_response_pages_and_honours_attributes(make_agent):
    query = parse_list_query(ResourceKind.USER, start_index="3", count="2", attributes="userName")
    body = responses.user_list_response(
        [make_agent(id="a3"), make_agent(id="a4")],
        total_results=9,
        query=query,
        base_url=BASE_URL,
    )
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (9, 3, 2)
    assert body["Resources"] == [
        {"schemas": [USER], "id": "a3", "userName": "jane.doe@example.com"},
        {"schemas": [USER], "id": "a4", "userName": "jane.doe@example.com"},
    ]


@pytest.mark.parametrize("kind", [ResourceKind.USER, ResourceKind.GROUP])
def test_empty_list_response_has_an_empty_resources_array(kind):
    # Entra: "zero results -> 200 with totalResults 0, Resources []".
    query = parse_list_query(kind, filter='externalId eq "nobody"')
    build = (
        responses.user_list_response if kind is ResourceKind.USER else responses.group_list_response
    )
    body = build([], total_results=0, query=query, base_url=BASE_URL)
    assert body == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


def test_group_list_response_with_excluded_members(make_group):
    query = parse_list_query(
        ResourceKind.GROUP, filter='displayName eq "Tier 1"', excluded_attributes="members"
    )
    body = responses.group_list_response(
        [make_group()], total_results=1, query=query, base_url=BASE_URL
    )
    assert [set(resource) for resource in body["Resources"]] == [
        {"schemas", "id", "meta", "displayName"}
    ]


# ---------------------------------------------------------------------------
# POST /Users


def test_okta_create_user_requests_from_its_reference(okta_doc_requests):
    creates = [r for r in okta_doc_requests if r.method == "POST" and r.path.endswith("/Users")]
    assert len(creates) == 2  # with externalId, and with password + groups
    for request in creates:
        assert mapping.agent_fields_for_create(request.body) == AgentFields(
            user_name="test.user@okta.local",
            emails=(EmailEntry("test.user@okta.local", "work", True),),
            first_name="Test",
            last_name="User",
            display_name="Test User",
            active=True,
            locale="en-US",
            external_id=request.body.get("externalId"),
        )


def test_okta_spec_test_create_user(okta_spec_steps):
    posts = [step for step in okta_spec_steps if step.method == "POST"]
    assert posts, "the Okta SPEC test creates users"
    for step in posts:
        fields = mapping.agent_fields_for_create(step.body)
        assert fields.user_name == "Runscope123Qwertyuio456@atko.com"
        assert fields.email == "Runscope123Qwertyuio456@atko.com"
        assert (fields.first_name, fields.last_name) == ("Runscope123", "Qwertyuio456")
        assert fields.display_name == "Runscope123 Qwertyuio456"
        assert fields.active is True


ENTRA_CREATE_USER = {
    "schemas": [USER, ENTERPRISE],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
    "active": True,
    "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
    "meta": {"resourceType": "User"},
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName",
    },
    "roles": [],
    ENTERPRISE: {"employeeNumber": "1234", "department": "Finance", "manager": {"value": "mgr-1"}},
}


def test_entra_create_user_with_enterprise_extension():
    fields = mapping.agent_fields_for_create(ENTRA_CREATE_USER)
    assert fields == AgentFields(
        user_name="Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
        emails=(EmailEntry("Test_User_fd0ea19b@testuser.com", "work", True),),
        first_name="givenName",
        last_name="familyName",
        active=True,
        external_id="0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        enterprise={
            "employeeNumber": "1234",
            "department": "Finance",
            "manager": {"value": "mgr-1"},
        },
    )


@pytest.mark.parametrize(
    ("patch", "expected_active"),
    [
        ({"active": "True"}, True),
        ({"active": "False"}, False),
        ({"active": False}, False),
        ({}, True),
    ],
)
def test_active_accepts_entra_strings_and_defaults_to_true(patch, expected_active):
    payload = {"schemas": [USER], "userName": "a@example.com", **patch}
    assert mapping.agent_fields_for_create(payload).active is expected_active


@pytest.mark.parametrize(
    ("user_name", "emails", "stored", "contact"),
    [
        # Entra: userName <- UPN, emails[type eq "work"].value <- mail (they differ).
        (
            "a.b@contoso.onmicrosoft.com",
            [{"value": "a.b@contoso.com", "type": "work", "primary": "True"}],
            (EmailEntry("a.b@contoso.com", "work", True),),
            "a.b@contoso.com",
        ),
        # Okta with a non-email username format; the primary email is the contact.
        (
            "ryan3",
            [
                {"value": "r@home.example", "type": "home"},
                {"value": "x@okta.local", "primary": True},
            ],
            (EmailEntry("r@home.example", "home"), EmailEntry("x@okta.local", None, True)),
            "x@okta.local",
        ),
        # No primary: the work email (scim2-models reads canonical types without case).
        (
            "u1",
            [{"value": "h@x.example", "type": "home"}, {"value": "w@x.example", "type": "Work"}],
            (EmailEntry("h@x.example", "home"), EmailEntry("w@x.example", "work")),
            "w@x.example",
        ),
        # Postman's non-address value is stored as sent.
        (
            "login@example.com",
            [{"value": "emailName357", "type": "work"}],
            (EmailEntry("emailName357", "work"),),
            "emailName357",
        ),
        # No emails: a userName that is an email.
        ("login@example.com", [], (), "login@example.com"),
        ("just-an-id", None, (), ""),
    ],
)
def test_username_and_emails_are_stored_as_sent(user_name, emails, stored, contact):
    payload = {"schemas": [USER], "userName": user_name}
    if emails is not None:
        payload["emails"] = emails
    fields = mapping.agent_fields_for_create(payload)
    assert (fields.user_name, fields.emails, fields.email) == (user_name, stored, contact)


def test_two_primary_emails_on_create_are_400():
    with pytest.raises(SCIMException) as raised:
        mapping.agent_fields_for_create(
            {
                "schemas": [USER],
                "userName": "u",
                "emails": [
                    {"value": "a@x.example", "primary": True},
                    {"value": "b@x.example", "primary": True},
                ],
            }
        )
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("payload", "scim_type", "fragment"),
    [
        ({"schemas": [USER], "active": True}, "invalidValue", "userName"),
        ({"schemas": [USER], "userName": None}, "invalidValue", "userName"),
        ({"schemas": [USER], "userName": "   "}, "invalidValue", "userName"),
        ({"schemas": [USER], "userName": "x" * 401}, "invalidValue", "400"),
        ({"schemas": [USER], "userName": "u", "emails": "garbage"}, "invalidValue", "emails"),
        (
            {"schemas": [USER], "userName": "a@example.com", "active": "maybe"},
            "invalidValue",
            "active",
        ),
        ({"schemas": [USER], "userName": "a@example.com", "name": "Jane"}, "invalidValue", "name"),
        (
            {"schemas": [USER], "userName": "a@example.com", "title": "t" * 201},
            "invalidValue",
            "title",
        ),
        (
            {"schemas": [USER], "userName": "a@example.com", ENTERPRISE: {"manager": 12}},
            "invalidValue",
            "manager",
        ),
        (["not", "an", "object"], "invalidSyntax", "object"),
    ],
)
def test_invalid_create_user_bodies_are_400(payload, scim_type, fragment):
    with pytest.raises(SCIMException) as excinfo:
        mapping.agent_fields_for_create(payload)
    body = scim_error(excinfo)
    assert body["status"] == "400"
    assert body["scimType"] == scim_type
    assert fragment in body["detail"]


def test_read_only_and_unknown_attributes_are_ignored_on_create():
    fields = mapping.agent_fields_for_create(
        {
            "schemas": [USER, "urn:example:custom:2.0:User"],
            "id": "client-chosen",
            "meta": {"resourceType": "User", "created": "2019-09-18T18:15:26Z"},
            "groups": [{"value": "g1"}],
            "userName": "a@example.com",
            "nickName": "Al",
            "urn:example:custom:2.0:User": {"shoeSize": 44},
            "favouriteColour": "teal",
        }
    )
    assert fields == AgentFields(user_name="a@example.com")


@pytest.mark.parametrize(
    ("name", "expected_enterprise"),
    [
        ("Post EnterpriseUser", {"department": "bob", "manager": {"value": "SuzzyQ"}}),
        ('Post emp1 with string "True"', {}),
        ("Post enterprise user", {"department": "some department"}),
        ("Post emp2", {}),
    ],
)
def test_postman_user_bodies_are_accepted_as_sent(postman_requests, name, expected_enterprise):
    request = next(r for r in postman_requests if r.name == name and r.method == "POST")
    payload = request.json()
    fields = mapping.agent_fields_for_create(payload)  # userName "UserName222", "emp1", ...
    assert fields.user_name == payload["userName"]
    assert [entry.value for entry in fields.emails] == [
        email["value"] for email in payload.get("emails", [])
    ]
    assert fields.active is True  # "True" string included
    assert fields.enterprise == expected_enterprise


def test_postman_post_without_username_is_400(postman):
    with pytest.raises(SCIMException) as excinfo:
        mapping.agent_fields_for_create(
            postman("User tests with garbage", "Post no username").json()
        )
    assert scim_error(excinfo)["status"] == "400"


# ---------------------------------------------------------------------------
# PUT /Users/{id}


def test_okta_put_of_the_unchanged_resource_reports_no_change(make_agent):
    record = make_agent()
    body = responses.serialize_user(record, BASE_URL)
    update = mapping.agent_update_for_replace(record, body)
    assert update.changed is False
    assert update.fields == record.fields()


def test_okta_put_from_its_reference_replaces_the_profile(okta_doc_requests, make_agent):
    put = next(r for r in okta_doc_requests if r.method == "PUT" and "/Users/" in r.path)
    record = make_agent(email="test.user@okta.local", external_id=None, enterprise={})
    update = mapping.agent_update_for_replace(record, put.body)
    assert update.changed is True
    assert update.fields == AgentFields(
        user_name="test.user@okta.local",
        emails=(EmailEntry("test.user@okta.local", "work", True, display="test.user@okta.local"),),
        first_name="Another",
        last_name="User",
        active=True,
    )


def test_put_without_active_keeps_the_stored_status(make_agent):
    record = make_agent(active=False, enterprise={}, external_id=None, locale=None, title=None)
    update = mapping.agent_update_for_replace(
        record,
        {
            "schemas": [USER],
            "userName": record.email,
            "emails": [{"value": record.email, "type": "work", "primary": True}],
            "displayName": "Jane Doe",
            "name": {"givenName": "Jane", "familyName": "Doe"},
        },
    )
    assert update.fields.active is False
    assert update.changed is False


def test_put_keeps_the_manager_display_name_while_the_manager_is_the_same(make_agent):
    record = make_agent()
    payload = responses.serialize_user(record, BASE_URL)
    payload[ENTERPRISE]["manager"] = {"value": "m1"}
    assert mapping.agent_update_for_replace(record, payload).changed is False

    payload[ENTERPRISE]["manager"] = {"value": "m2"}
    update = mapping.agent_update_for_replace(record, payload)
    assert update.changed is True
    assert update.fields.enterprise["manager"] == {"value": "m2"}


def test_put_replaces_attributes_it_leaves_out(make_agent):
    update = mapping.agent_update_for_replace(
        make_agent(), {"schemas": [USER], "userName": "jane.doe@example.com"}
    )
    assert update.changed is True
    assert update.fields == AgentFields(user_name="jane.doe@example.com", active=True)


def test_postman_put_with_misspelled_attribute_is_accepted(postman, make_agent):
    payload = postman("User tests with garbage", "Put a user misspelled attribute").json()
    update = mapping.agent_update_for_replace(make_agent(id="u1"), payload)
    assert update.fields.user_name == "OMalley"
    assert update.fields.email == "anna33@example.com"  # the primary one
    assert update.fields.emails == (
        EmailEntry("anna33@example.com", "work", True),
        EmailEntry("anna33@gmail.com", "other", False),
    )
    assert update.fields.active is False


def test_postman_put_without_username_is_400(postman, make_agent):
    payload = postman("User tests with garbage", "Put a user no username").json()
    with pytest.raises(SCIMException) as excinfo:
        mapping.agent_update_for_replace(make_agent(id="u1"), payload)
    assert scim_error(excinfo)["scimType"] == "invalidValue"


# ---------------------------------------------------------------------------
# Groups


def test_okta_create_group_from_its_reference(okta_doc_requests):
    create = next(r for r in okta_doc_requests if r.method == "POST" and r.path.endswith("/Groups"))
    assert mapping.group_fields_for_create(create.body) == GroupFields(display_name="Test SCIMv2")


def test_entra_create_group_with_its_adscim_schema():
    fields = mapping.group_fields_for_create(
        {
            "schemas": [
                GROUP,
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
        }
    )
    assert fields == GroupFields(
        display_name="displayName", external_id="8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    )


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([{"value": "u3", "display": "VP"}], (MemberRef("u3", "VP"),)),
        (["u3", "u4"], (MemberRef("u3"), MemberRef("u4"))),
        ([{"value": "u3", "$ref": None, "type": "user"}], (MemberRef("u3"),)),
        ([{"value": "u3"}, {"value": "u3", "display": "dup"}], (MemberRef("u3"),)),
        ([{"Value": "u3", "displayName": "new User"}], (MemberRef("u3", "new User"),)),
        (None, ()),
    ],
)
def test_group_member_entries_are_normalised(members, expected):
    fields = mapping.group_fields_for_create({"displayName": "G", "members": members})
    assert fields.members == expected


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"schemas": [GROUP]}, "displayName"),
        ({"displayName": "  "}, "displayName"),
        ({"displayName": "G", "members": [{"value": "g2", "type": "Group"}]}, "nested"),
        ({"displayName": "G", "members": [{"display": "no value"}]}, "value"),
        ({"displayName": "G", "members": [{"value": ""}]}, "value"),
        ({"displayName": "G", "members": "u1"}, "array"),
        ({"displayName": "G" * 401}, "400 characters"),
    ],
)
def test_invalid_group_bodies_are_400(payload, fragment):
    with pytest.raises(SCIMException) as excinfo:
        mapping.group_fields_for_create(payload)
    body = scim_error(excinfo)
    assert (body["status"], body["scimType"]) == ("400", "invalidValue")
    assert fragment in body["detail"]


def test_postman_group_bodies(postman_requests):
    filled = next(r for r in postman_requests if r.name == "Create filled group 2")
    assert mapping.group_fields_for_create(filled.json()).members == (MemberRef("u3", "VP"),)
    garbage = next(r for r in postman_requests if r.name == "Post group")
    assert mapping.group_fields_for_create(garbage.json()) == GroupFields(
        display_name="Group 1", external_id="015489ea-9410-4306-b583-9f002b2446f7"
    )


def test_okta_aiw_put_group_reports_the_exact_member_difference(okta_doc_requests, make_group):
    put = next(r for r in okta_doc_requests if r.method == "PUT" and "/Groups/" in r.path)
    record = make_group(
        display_name="Test SCIMv2",
        members=(
            MemberRef("89bb1940-b905-4575-9e7f-6f887cfb368e"),
            MemberRef("23a35c27-23d3-4c03-b4c5-6443c09e7173"),
        ),
    )
    update = mapping.group_update_for_replace(record, put.body)
    assert update.added == ()
    assert update.removed == ("89bb1940-b905-4575-9e7f-6f887cfb368e",)
    assert update.changed is True
    assert [m.agent_id for m in update.fields.members] == ["23a35c27-23d3-4c03-b4c5-6443c09e7173"]


def test_put_group_unchanged_and_renamed(make_group):
    record = make_group()
    same = mapping.group_update_for_replace(record, responses.serialize_group(record, BASE_URL))
    assert (same.changed, same.added, same.removed) == (False, (), ())

    renamed = mapping.group_update_for_replace(
        record, {"displayName": "Tier 2", "members": [{"value": "u2"}, {"value": "u5"}]}
    )
    assert renamed.changed is True
    assert renamed.fields.display_name == "Tier 2"
    assert renamed.added == (MemberRef("u5"),)
    assert renamed.removed == ("u1",)


def test_put_group_without_members_empties_it(make_group):
    update = mapping.group_update_for_replace(make_group(), {"displayName": "Tier 1"})
    assert update.removed == ("u1", "u2")
    assert update.fields.members == ()


def test_serialized_group_validates_as_a_scim_response(make_group):
    body = responses.serialize_group(make_group(), BASE_URL)
    parsed = Group.model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert [member.value for member in parsed.members] == ["u1", "u2"]


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, errors.InvalidValueException),
        (401, errors.UnauthorizedException),
        (403, errors.ForbiddenException),
        (404, errors.NotFoundException),
        (405, errors.MethodNotAllowedException),
        (409, errors.ConflictException),
        (412, errors.PreconditionFailedException),
        (413, errors.PayloadTooLargeException),
        (501, errors.NotImplementedException),
    ],
)
def test_error_bodies_per_status(status, exception):
    exc = errors.exception_for_status(status, "went wrong")
    assert isinstance(exc, exception)
    assert exc.status == status
    body = errors.error_body(exc)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)  # a string, as Okta's SPEC test asserts
    assert body["detail"] == "went wrong"
    assert errors.error_body_for_status(status, "went wrong") == body


def test_error_body_carries_the_scim_type():
    assert errors.error_body(errors.UniquenessException(detail="taken")) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "taken",
    }
    assert errors.error_body_for_status(404)["detail"]  # a default detail (Okta: non-empty)


def test_unknown_status_keeps_its_code():
    exc = errors.exception_for_status(429, "slow down")
    assert errors.error_body(exc)["status"] == "429"


# ---------------------------------------------------------------------------
# ETags


def test_etag_is_the_weak_version():
    assert etag.format_etag(12) == 'W/"12"'


@pytest.mark.parametrize(
    ("header", "version", "satisfied"),
    [
        (None, 3, True),
        ('W/"3"', 3, True),
        ('"3"', 3, True),
        ("*", 3, True),
        ('W/"2", W/"3"', 3, True),
        ('W/"2"', 3, False),
        ('W/"30"', 3, False),
        ("3", 3, False),  # not an entity-tag
        ('W/"3', 3, False),
        ("", 3, False),
    ],
)
def test_if_match(header, version, satisfied):
    assert etag.if_match_satisfied(header, version) is satisfied
    if satisfied:
        etag.check_if_match(header, version)
    else:
        with pytest.raises(errors.PreconditionFailedException) as excinfo:
            etag.check_if_match(header, version)
        assert errors.error_body(excinfo.value)["status"] == "412"


@pytest.mark.parametrize(
    ("header", "hit"), [(None, False), ('W/"3"', True), ("*", True), ('W/"4"', False), ("x", False)]
)
def test_if_none_match(header, hit):
    assert etag.if_none_match_hit(header, 3) is hit
