"""The pure SCIM 2.0 protocol core: no HTTP, no database, no clock.

A service layer calls it with request data and storage records, and stores
what it returns:

* :mod:`.records` - the shapes exchanged with storage (AgentRecord, GroupRecord,
  AgentFields, GroupFields, UserUpdate, GroupUpdate, MemberRef).
* :mod:`.mapping` - POST/PUT bodies -> fields.
* :mod:`.responses` - records -> resources and response bodies.
* :mod:`.query` - paging/sorting/attributes -> ListQuery (re-exports the filter names).
* :mod:`.filters` - a ``filter`` string -> the typed filter IR of :mod:`.filter_ir`.
* :mod:`.evaluate` - the IR's reference semantics on records (for tests and fallbacks).
* :mod:`.patch`, :mod:`.patch_groups` - PATCH bodies -> UserUpdate / GroupUpdate.
* :mod:`.discovery` - ServiceProviderConfig, ResourceTypes, Schemas.
* :mod:`.etag` - ``W/"<version>"`` ETags and If-Match.
* :mod:`.errors` - SCIMException classes and the Error body.
"""

from .discovery import (
    resource_type_body,
    resource_types_body,
    schema_body,
    schemas_body,
    service_provider_config_body,
)
from .errors import SCIMException, error_body, error_body_for_status, exception_for_status
from .etag import check_if_match, format_etag, if_none_match_hit
from .evaluate import matches, sort_value
from .mapping import (
    agent_fields_for_create,
    agent_update_for_replace,
    group_fields_for_create,
    group_update_for_replace,
)
from .patch import apply_user_patch
from .patch_groups import apply_group_patch, referenced_member_ids
from .query import DEFAULT_COUNT, MAX_COUNT, ListQuery, parse_list_query, parse_search_request
from .records import (
    AgentFields,
    AgentRecord,
    GroupFields,
    GroupRecord,
    GroupUpdate,
    MemberRef,
    ResourceKind,
    UserUpdate,
)
from .responses import group_list_response, serialize_group, serialize_user, user_list_response

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "AgentFields",
    "AgentRecord",
    "GroupFields",
    "GroupRecord",
    "GroupUpdate",
    "ListQuery",
    "MemberRef",
    "ResourceKind",
    "SCIMException",
    "UserUpdate",
    "agent_fields_for_create",
    "agent_update_for_replace",
    "apply_group_patch",
    "apply_user_patch",
    "check_if_match",
    "error_body",
    "error_body_for_status",
    "exception_for_status",
    "format_etag",
    "group_fields_for_create",
    "group_list_response",
    "group_update_for_replace",
    "if_none_match_hit",
    "matches",
    "parse_list_query",
    "parse_search_request",
    "referenced_member_ids",
    "resource_type_body",
    "resource_types_body",
    "schema_body",
    "schemas_body",
    "serialize_group",
    "serialize_user",
    "service_provider_config_body",
    "sort_value",
    "user_list_response",
]
