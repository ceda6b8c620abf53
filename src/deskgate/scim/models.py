"""The scim2-models classes and the tolerance policy deskgate serves with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from scim2_models import BaseModel as ScimBaseModel
from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    Group,
    PatchOp,
    ScimPolicy,
    User,
)

from .errors import InvalidSyntaxException, exception_from_validation_error


class ClientEmail(Email):
    """An email as provisioning clients send it: ``value`` is any string. scim2-models' EmailStr
    refuses real tenants' addresses (Okta's ``user@okta.local``, Postman's ``emailName357``);
    the agent's emails are stored and returned as sent."""

    value: str | None = Field(None, description="Email addresses for the user.")


class UserResource(User[EnterpriseUser]):
    """A deskgate User: the core User schema with the enterprise extension (optional)."""

    # Narrows the item type of the inherited field (pydantic allows it; mypy sees list as invariant).
    emails: list[ClientEmail] | None = Field(None, description="Email addresses for the user.")  # type: ignore[assignment]


GroupResource = Group

USER_SCHEMA = str(User.__schema__)
GROUP_SCHEMA = str(Group.__schema__)
ENTERPRISE_SCHEMA = str(EnterpriseUser.__schema__)
PATCH_OP_SCHEMA = str(PatchOp.__schema__)

POLICY = ScimPolicy(
    # Okta and Entra send attributes and schema URNs we do not define (Entra's
    # ADSCIM Group schema, custom extensions, Postman's "name" on operations).
    unknown=ScimPolicy.Unknown.ignore,
    # Entra: {"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}.
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    # Entra: replace 'addresses[type eq "work"].formatted' on a user with none.
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)
"""What deskgate tolerates from provisioning clients (all settings documented above)."""

# Column sizes of the store (documented limits; longer values are refused with
# invalidValue instead of failing in the database).
MAX_EMAIL_LENGTH = 320
MAX_USER_NAME_LENGTH = 400
MAX_EMAILS = 20
MAX_NAME_LENGTH = 200
MAX_DISPLAY_NAME_LENGTH = 400
MAX_EXTERNAL_ID_LENGTH = 400
MAX_LOCALE_LENGTH = 40
MAX_TITLE_LENGTH = 200
MAX_ENTERPRISE_VALUE_LENGTH = 400
MAX_ID_LENGTH = 400

_M = TypeVar("_M", bound=ScimBaseModel)


def validate(model: type[_M], payload: Any, context: Context) -> _M:
    """Validate a request payload, reporting failures as SCIMException (400)."""
    if not isinstance(payload, Mapping):
        raise InvalidSyntaxException(detail="the request body must be a JSON object")
    try:
        return model.model_validate(dict(payload), scim_ctx=context, scim_policy=POLICY)
    except ValidationError as exc:
        raise exception_from_validation_error(exc) from None


def casefold_key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case (attribute names are
    case-insensitive, RFC 7643 §2.1), or None."""
    lowered = name.lower()
    for key in mapping:
        if isinstance(key, str) and key.lower() == lowered:
            return key
    return None


ENTERPRISE_FIELDS: dict[str, str] = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization",
    "division": "division",
    "department": "department",
}
"""The enterprise extension's string attributes: SCIM name -> scim2-models field name."""
