"""PATCH (RFC 7644 §3.5.2) as Okta and Microsoft Entra ID send it.

A request body is first normalised, then validated as a scim2-models
``PatchOp[User[EnterpriseUser]]`` / ``PatchOp[Group]`` and applied with
``PatchOp.patch`` (under :data:`deskgate.scim.models.POLICY`). Normalisation:

* ``Operations`` and ``op``/``path``/``value`` keys in any case; ``op`` in any
  case (Entra's ``Replace``/``Add``/``Remove``); other keys (Postman's
  ``"name": "addMember"``) ignored. An empty ``path`` is no path.
* ``"True"``/``"False"`` strings for booleans: read as booleans (pydantic).
* ``""`` as a value (Entra's "null update") unassigns: ``add``/``replace`` of
  ``""`` or ``null`` on a path becomes ``remove``; inside a value object
  ``""`` becomes ``null``.
* ``remove`` carrying a ``value`` on a single-valued attribute: value ignored.
* Users: ``emails`` are patched like any multi-valued attribute
  (``emails[type eq "work"].value`` with no work email yet creates one, as
  Entra expects); ``password`` is accepted and ignored. The enterprise
  ``manager`` may be a bare id string (Entra); its read-only
  ``displayName``/``$ref`` are ignored.
* ``id`` in a no-path value equal to the resource's id is ignored (Okta's
  group rename sends it); ``meta``/``schemas`` there are ignored.
* Groups: members may be bare id strings, ``$ref`` (Entra's ``null``) is
  ignored, only Users can be members.

Users are patched as a whole resource. Groups are split: ``displayName`` and
``externalId`` operations go through ``PatchOp[Group].patch`` on the group
without its members; member operations are applied to the id set directly
(``add``/``replace``/``remove`` of ``members``, ``remove members[value eq "x"
or ...]``, Entra's ``remove`` with a value list) so a PATCH on a large group
stays cheap. Any other member operation (e.g. a filter on ``display``) is
handed to ``PatchOp.patch`` on the group with its full membership.

Change detection compares the resulting fields with the stored ones, so an
operation that writes the current value, or only touches ignored attributes,
reports ``changed=False``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, EnterpriseUser, PatchOp, Path, User

from .errors import (
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    exception_from_validation_error,
)
from .mapping import (
    from_scim_user,
)
from .models import (
    ENTERPRISE_SCHEMA,
    PATCH_OP_SCHEMA,
    POLICY,
    UserResource,
    casefold_key,
    validate,
)
from .records import (
    ENTERPRISE_MANAGER_KEY,
    AgentFields,
    AgentRecord,
    UserUpdate,
)
from .responses import user_patch_base

__all__ = ["apply_user_patch"]

_OPS = ("add", "remove", "replace")

# ---------------------------------------------------------------------------
# body -> plain operations


def parse_operations(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, Mapping):
        raise InvalidSyntaxException(detail="the PATCH body must be a JSON object")
    key = casefold_key(body, "Operations")
    raw_operations = body.get(key) if key is not None else None
    if not isinstance(raw_operations, list) or not raw_operations:
        raise InvalidValueException(
            detail="'Operations' must be an array of one or more operations"
        )
    operations = []
    for raw in raw_operations:
        if not isinstance(raw, Mapping):
            raise InvalidSyntaxException(detail="each operation must be a JSON object")
        op_key = casefold_key(raw, "op")
        op = raw.get(op_key) if op_key is not None else None
        if not isinstance(op, str) or op.strip().lower() not in _OPS:
            shown = repr(op)[:40]
            raise InvalidValueException(
                detail=f"{shown} is not a PATCH operation: add, remove or replace"
            )
        entry: dict[str, Any] = {"op": op.strip().lower()}
        path_key = casefold_key(raw, "path")
        path = raw.get(path_key) if path_key is not None else None
        if path is not None:
            if not isinstance(path, str):
                raise InvalidPathException(detail="'path' must be a string")
            if path.strip():
                entry["path"] = path.strip()
        value_key = casefold_key(raw, "value")
        if value_key is not None:
            entry["value"] = raw[value_key]
        operations.append(entry)
    return operations


def resolve_path(model: Any, path: str) -> tuple[Path[Any] | None, Any]:
    """The bound path and its attribute binding, (None, None) if unparsable."""
    try:
        bound = Path[model](path)
    except InvalidPathException:
        return None, None
    return bound, bound.resolve()


def unassigning(entry: dict[str, Any]) -> dict[str, Any]:
    """``add``/``replace`` of ``""`` or null on a path is a ``remove``."""
    writes = entry["op"] != "remove" and "path" in entry and "value" in entry
    if writes and entry["value"] in ("", None):
        return {"op": "remove", "path": entry["path"]}
    return entry


def blank_to_null(value: Any) -> Any:
    if value == "":
        return None
    if isinstance(value, Mapping):
        return {key: blank_to_null(item) for key, item in value.items()}
    return value


def clean_root_value(value: Mapping[str, Any], resource_id: str) -> dict[str, Any]:
    """A no-path value object, minus what clients send but cannot write."""
    cleaned = {}
    for key, item in value.items():
        lowered = str(key).lower()
        if lowered in ("schemas", "meta"):
            continue
        if lowered == "id" and item == resource_id:
            continue
        cleaned[key] = item
    return cleaned


def validated_patch(model: Any, operations: list[dict[str, Any]]) -> PatchOp[Any]:
    return validate(
        PatchOp[model],
        {"schemas": [PATCH_OP_SCHEMA], "Operations": operations},
        Context.RESOURCE_PATCH_REQUEST,
    )


def run_patch(patch: PatchOp[Any], resource: Any) -> None:
    try:
        patch.patch(resource, scim_policy=POLICY)
    except ValidationError as exc:
        raise exception_from_validation_error(exc) from None


# ---------------------------------------------------------------------------
# users


def _is_ignored_user_attribute(binding: Any) -> bool:
    return (
        binding is not None
        and isinstance(binding.model, type)
        and issubclass(binding.model, User)
        and binding.field_name == "password"
    )


def _is_manager(binding: Any) -> bool:
    return (
        binding is not None
        and binding.model is EnterpriseUser
        and binding.field_name == "manager"
        and binding.sub_field_name is None
    )


def _manager_value(value: Any) -> Any:
    """Entra sends the manager as a bare id; displayName/$ref are read-only/ours."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, Mapping):
        value_key = casefold_key(value, "value")
        manager_id = value.get(value_key) if value_key is not None else None
        return None if manager_id in (None, "") else {"value": manager_id}
    return value  # let validation report it


def _clean_user_object(value: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Clean a value object written at ``prefix`` ("" = the resource, or the
    enterprise schema URN): drop the password, normalise the manager."""
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            cleaned[key] = item
            continue
        path = f"{prefix}:{key}" if prefix else key
        bound, binding = resolve_path(UserResource, path)
        if _is_ignored_user_attribute(binding):
            continue
        if _is_manager(binding):
            cleaned[key] = _manager_value(item)
        elif bound is not None and bound.model is EnterpriseUser and isinstance(item, Mapping):
            cleaned[key] = _clean_user_object(item, ENTERPRISE_SCHEMA)
        else:
            cleaned[key] = blank_to_null(item)
    return cleaned


def _user_operations(operations: list[dict[str, Any]], resource_id: str) -> list[dict[str, Any]]:
    result = []
    for entry in operations:
        path = entry.get("path")
        if path is None:
            value = entry.get("value")
            if entry["op"] != "remove" and isinstance(value, Mapping):
                value = _clean_user_object(clean_root_value(value, resource_id), "")
                if not value:
                    continue  # only ignored attributes
                entry = {**entry, "value": value}
            result.append(entry)
            continue
        bound, binding = resolve_path(UserResource, path)
        if _is_ignored_user_attribute(binding):
            continue
        if "value" in entry:
            value = entry["value"]
            if _is_manager(binding):
                value = _manager_value(value)
            elif bound is not None and bound.model is EnterpriseUser and isinstance(value, Mapping):
                value = _clean_user_object(value, ENTERPRISE_SCHEMA)
            elif isinstance(value, Mapping):
                value = blank_to_null(value)
            entry = {**entry, "value": value}
            if entry["op"] == "remove" and binding is not None and not binding.is_multivalued:
                entry = {"op": "remove", "path": path}
        result.append(unassigning(entry))
    return result


def apply_user_patch(record: AgentRecord, body: Any) -> UserUpdate:
    """Apply a PATCH body to an agent. Raises SCIMException (400) when the body
    is invalid or an operation cannot apply (invalidPath, invalidValue,
    mutability, noTarget, ...); the record is never modified."""
    operations = _user_operations(parse_operations(body), record.id)
    current = record.fields()
    if not operations:
        return UserUpdate(fields=current, changed=False)
    user = user_patch_base(record)
    active = _only_active(operations)
    if active is None:
        run_patch(validated_patch(UserResource, operations), user)
    else:
        user.active = active  # what PatchOp.patch does for this one operation
    _one_primary_email(user, record)
    fields = from_scim_user(user, default_active=record.active)
    fields = _without_stale_manager_display(fields, current)
    return UserUpdate(fields=fields, changed=fields != current)


def _only_active(operations: list[dict[str, Any]]) -> bool | None:
    """The value of Okta's deactivation/reactivation PATCH (one `replace` of `{"active": b}`,
    no path), whose validation as a PatchOp can refuse nothing: it is applied directly."""
    if len(operations) != 1:
        return None
    (entry,) = operations
    value = entry.get("value")
    if entry.keys() != {"op", "value"} or entry["op"] != "replace" or not isinstance(value, dict):
        return None
    active = value.get("active") if value.keys() == {"active"} else None
    return active if isinstance(active, bool) else None


def _one_primary_email(user: Any, record: AgentRecord) -> None:
    """RFC 7644 §3.5.2: making a value primary makes the others non-primary."""
    primaries = [email for email in user.emails or () if email.primary]
    if len(primaries) < 2:
        return
    was_primary = {entry.value for entry in record.emails if entry.primary}
    winner = next((e for e in reversed(primaries) if e.value not in was_primary), primaries[-1])
    for email in primaries:
        if email is not winner:
            email.primary = False


def _without_stale_manager_display(fields: AgentFields, current: AgentFields) -> AgentFields:
    new_manager = fields.enterprise.get(ENTERPRISE_MANAGER_KEY)
    old_manager = current.enterprise.get(ENTERPRISE_MANAGER_KEY)
    if not new_manager or "displayName" not in new_manager:
        return fields
    if old_manager and old_manager["value"] == new_manager["value"]:
        return fields
    enterprise = {**fields.enterprise, ENTERPRISE_MANAGER_KEY: {"value": new_manager["value"]}}
    return dataclasses.replace(fields, enterprise=enterprise)
