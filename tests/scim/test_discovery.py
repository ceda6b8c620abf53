"""ServiceProviderConfig, ResourceTypes and Schemas."""

from __future__ import annotations

import pytest
from scim2_models import (
    Context,
    EnterpriseUser,
    ListResponse,
    ResourceType,
    Schema,
    ScimProvider,
    ServiceProviderConfig,
    User,
)

from deskgate.scim import discovery, errors, responses
from deskgate.scim.filter_ir import USER_ATTRIBUTES
from deskgate.scim.query import MAX_COUNT

BASE_URL = "https://deskgate.example/scim/v2/accounts/acc1"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
RESPONSE = Context.RESOURCE_QUERY_RESPONSE


def test_service_provider_config():
    body = discovery.service_provider_config_body(BASE_URL + "/")
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert body["patch"] == {"supported": True}
    assert body["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
    assert body["filter"] == {"supported": True, "maxResults": MAX_COUNT}
    assert body["changePassword"] == {"supported": False}
    assert body["sort"] == {"supported": True}
    assert body["etag"] == {"supported": True}
    [scheme] = body["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken"
    assert scheme["name"] and scheme["description"]
    assert body["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE_URL}/ServiceProviderConfig",
    }
    parsed = ServiceProviderConfig.model_validate(body, scim_ctx=RESPONSE)
    assert parsed.filter.max_results == MAX_COUNT


def test_resource_types():
    body = discovery.resource_types_body(BASE_URL)
    assert (body["totalResults"], body["itemsPerPage"], body["startIndex"]) == (2, 2, 1)
    user, group = body["Resources"]
    assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]
    assert (user["id"], user["name"], user["endpoint"], user["schema"]) == (
        "User",
        "User",
        "/Users",
        USER,
    )
    assert user["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert user["meta"]["location"] == f"{BASE_URL}/ResourceTypes/User"
    assert (group["id"], group["endpoint"], group["schema"]) == ("Group", "/Groups", GROUP)
    assert "schemaExtensions" not in group or group["schemaExtensions"] == []
    ListResponse[ResourceType].model_validate(body, scim_ctx=RESPONSE)


@pytest.mark.parametrize("name", ["User", "user", "Group"])
def test_one_resource_type(name):
    assert discovery.resource_type_body(BASE_URL, name)["id"].lower() == name.lower()


@pytest.mark.parametrize(
    "call",
    [
        lambda: discovery.resource_type_body(BASE_URL, "Pet"),
        lambda: discovery.schema_body(BASE_URL, "urn:ietf:params:scim:schemas:core:2.0:Pet"),
        lambda: discovery.schema_body(BASE_URL, "User"),
    ],
)
def test_unknown_discovery_resources_are_404(call):
    with pytest.raises(errors.NotFoundException) as excinfo:
        call()
    body = errors.error_body(excinfo.value)
    assert body["status"] == "404" and body["detail"]


def _attributes(schema: dict) -> dict[str, dict]:
    return {attribute["name"]: attribute for attribute in schema["attributes"]}


def test_schemas_publish_what_deskgate_stores():
    body = discovery.schemas_body(BASE_URL)
    assert [schema["id"] for schema in body["Resources"]] == [USER, ENTERPRISE, GROUP]
    user, enterprise, group = (_attributes(schema) for schema in body["Resources"])

    assert set(user) == {"userName", "name", "displayName", "title", "locale", "active", "emails"}
    assert user["userName"]["required"] is True
    assert user["userName"]["caseExact"] is False
    assert user["userName"]["uniqueness"] == "server"
    # emails are the agent's own (stored as sent); name.formatted is derived, hence read-only
    assert user["emails"]["mutability"] == "readWrite"
    assert {sub["name"]: sub["mutability"] for sub in user["emails"]["subAttributes"]} == {
        "value": "readWrite",
        "display": "readWrite",
        "type": "readWrite",
        "primary": "readWrite",
    }
    assert {sub["name"]: sub["mutability"] for sub in user["name"]["subAttributes"]} == {
        "formatted": "readOnly",
        "familyName": "readWrite",
        "givenName": "readWrite",
    }
    assert set(enterprise) == {
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    }
    assert set(group) == {"displayName", "members"}
    for schema in body["Resources"]:
        assert schema["meta"] == {
            "resourceType": "Schema",
            "location": f"{BASE_URL}/Schemas/{schema['id']}",
        }
    ListResponse[Schema].model_validate(body, scim_ctx=RESPONSE)


def test_schema_lookup_is_case_insensitive():
    assert discovery.schema_body(BASE_URL, ENTERPRISE.upper())["id"] == ENTERPRISE


def test_every_filterable_user_attribute_is_published():
    user = _attributes(discovery.schema_body(BASE_URL, USER))
    published = set(user) | {
        f"{name}.{sub['name']}"
        for name, attribute in user.items()
        for sub in attribute.get("subAttributes") or []
    }
    common = {"id", "externalId", "meta.created", "meta.lastModified"}
    assert {spec.name for spec in USER_ATTRIBUTES.values()} - common <= published


def test_a_scim_client_can_build_models_from_the_discovery_documents(make_agent):
    """What scim2-tester and scim2-cli do first: read the three endpoints."""
    schemas = ListResponse[Schema].model_validate(
        discovery.schemas_body(BASE_URL), scim_ctx=RESPONSE
    )
    types = ListResponse[ResourceType].model_validate(
        discovery.resource_types_body(BASE_URL), scim_ctx=RESPONSE
    )
    config = ServiceProviderConfig.model_validate(
        discovery.service_provider_config_body(BASE_URL), scim_ctx=RESPONSE
    )
    provider = ScimProvider.from_discovery(schemas.resources, types.resources, config)

    user_model = provider.model_for_endpoint("/Users")
    assert user_model is not None
    served = user_model.model_validate(
        responses.serialize_user(make_agent(), BASE_URL), scim_ctx=RESPONSE
    )
    assert served.user_name == "jane.doe@example.com"
    assert provider.model_for_endpoint("/Groups") is not None


def test_trimmed_attributes_exist_in_scim2_models():
    # Guards the trimming against a scim2-models upgrade renaming attributes.
    published = {attribute.name for attribute in User.to_schema().attributes}
    kept = {attribute["name"] for attribute in discovery.schema_body(BASE_URL, USER)["attributes"]}
    assert kept <= published
    assert len(kept) == 7
    assert EnterpriseUser.to_schema().id == ENTERPRISE


PROTOCOL = [
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
    "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
    "urn:ietf:params:scim:schemas:core:2.0:Schema",
]


def test_protocol_schemas_on_request():
    body = discovery.schemas_body(BASE_URL, include_protocol=True)
    assert [schema["id"] for schema in body["Resources"]] == [USER, ENTERPRISE, GROUP, *PROTOCOL]
    assert body["totalResults"] == body["itemsPerPage"] == 6
    ListResponse[Schema].model_validate(body, scim_ctx=RESPONSE)


@pytest.mark.parametrize("schema_id", PROTOCOL)
def test_protocol_schemas_can_be_fetched_one_by_one(schema_id):
    body = discovery.schema_body(BASE_URL, schema_id)
    assert body["id"] == schema_id
    assert body["meta"]["location"] == f"{BASE_URL}/Schemas/{schema_id}"
    assert body["attributes"]
