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
from scim2_models import (
    Context,
    EnterpriseUser,
    GroupMember,
    PatchOp,
    Path,
    User,
)
from scim2_models.path import CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator

from .errors import (
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    SCIMException,
    exception_from_validation_error,
)
from .mapping import (
    from_scim_group,
    from_scim_user,
    member_changes,
    member_refs,
    normalize_member,
)
from .models import (
    ENTERPRISE_SCHEMA,
    PATCH_OP_SCHEMA,
    POLICY,
    GroupResource,
    UserResource,
    casefold_key,
    validate,
)
from .records import (
    ENTERPRISE_MANAGER_KEY,
    AgentFields,
    AgentRecord,
    GroupRecord,
    GroupUpdate,
    MemberRef,
    UserUpdate,
)
from .responses import user_patch_base

__all__ = ["apply_group_patch", "apply_user_patch", "referenced_member_ids"]

_OPS = ("add", "remove", "replace")

# ---------------------------------------------------------------------------
# body -> plain operations


def _operations(body: Any) -> list[dict[str, Any]]:
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


def _resolve(model: Any, path: str) -> tuple[Path[Any] | None, Any]:
    """The bound path and its attribute binding, (None, None) if unparsable."""
    try:
        bound = Path[model](path)
    except InvalidPathException:
        return None, None
    return bound, bound.resolve()


def _unassigning(entry: dict[str, Any]) -> dict[str, Any]:
    """``add``/``replace`` of ``""`` or null on a path is a ``remove``."""
    writes = entry["op"] != "remove" and "path" in entry and "value" in entry
    if writes and entry["value"] in ("", None):
        return {"op": "remove", "path": entry["path"]}
    return entry


def _blank_to_null(value: Any) -> Any:
    if value == "":
        return None
    if isinstance(value, Mapping):
        return {key: _blank_to_null(item) for key, item in value.items()}
    return value


def _clean_root_value(value: Mapping[str, Any], resource_id: str) -> dict[str, Any]:
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


def _validated_patch(model: Any, operations: list[dict[str, Any]]) -> PatchOp[Any]:
    return validate(
        PatchOp[model],
        {"schemas": [PATCH_OP_SCHEMA], "Operations": operations},
        Context.RESOURCE_PATCH_REQUEST,
    )


def _run(patch: PatchOp[Any], resource: Any) -> None:
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
        bound, binding = _resolve(UserResource, path)
        if _is_ignored_user_attribute(binding):
            continue
        if _is_manager(binding):
            cleaned[key] = _manager_value(item)
        elif bound is not None and bound.model is EnterpriseUser and isinstance(item, Mapping):
            cleaned[key] = _clean_user_object(item, ENTERPRISE_SCHEMA)
        else:
            cleaned[key] = _blank_to_null(item)
    return cleaned


def _user_operations(operations: list[dict[str, Any]], resource_id: str) -> list[dict[str, Any]]:
    result = []
    for entry in operations:
        path = entry.get("path")
        if path is None:
            value = entry.get("value")
            if entry["op"] != "remove" and isinstance(value, Mapping):
                value = _clean_user_object(_clean_root_value(value, resource_id), "")
                if not value:
                    continue  # only ignored attributes
                entry = {**entry, "value": value}
            result.append(entry)
            continue
        bound, binding = _resolve(UserResource, path)
        if _is_ignored_user_attribute(binding):
            continue
        if "value" in entry:
            value = entry["value"]
            if _is_manager(binding):
                value = _manager_value(value)
            elif bound is not None and bound.model is EnterpriseUser and isinstance(value, Mapping):
                value = _clean_user_object(value, ENTERPRISE_SCHEMA)
            elif isinstance(value, Mapping):
                value = _blank_to_null(value)
            entry = {**entry, "value": value}
            if entry["op"] == "remove" and binding is not None and not binding.is_multivalued:
                entry = {"op": "remove", "path": path}
        result.append(_unassigning(entry))
    return result


def apply_user_patch(record: AgentRecord, body: Any) -> UserUpdate:
    """Apply a PATCH body to an agent. Raises SCIMException (400) when the body
    is invalid or an operation cannot apply (invalidPath, invalidValue,
    mutability, noTarget, ...); the record is never modified."""
    operations = _user_operations(_operations(body), record.id)
    current = record.fields()
    if not operations:
        return UserUpdate(fields=current, changed=False)
    patch = _validated_patch(UserResource, operations)
    user = user_patch_base(record)
    _run(patch, user)
    _one_primary_email(user, record)
    fields = from_scim_user(user, default_active=record.active)
    fields = _without_stale_manager_display(fields, current)
    return UserUpdate(fields=fields, changed=fields != current)


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


# ---------------------------------------------------------------------------
# groups


def _is_members(binding: Any) -> bool:
    return (
        binding is not None and binding.model is GroupResource and binding.field_name == "members"
    )


def _member_list(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        value = [value]
    return [normalize_member(item) for item in value]


def _member_operation(entry: dict[str, Any], bound: Path[Any]) -> dict[str, Any]:
    """Normalise an operation on ``members``."""
    whole = bound.value_filter is None and len(bound.parts) == 1
    if not whole:
        return entry
    op = entry["op"]
    if op == "remove":
        if entry.get("value") in (None, ""):
            return {"op": "remove", "path": entry["path"]}  # remove every member
        return {
            "op": "remove",
            "path": entry["path"],
            "value": [{"value": item["value"]} for item in _member_list(entry["value"])],
        }
    return {**entry, "value": _member_list(entry.get("value"))}


def _group_operations(
    operations: list[dict[str, Any]], resource_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(attribute operations, member operations), each in request order."""
    attributes: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    for entry in operations:
        path = entry.get("path")
        if path is None:
            value = entry.get("value")
            if entry["op"] != "remove" and isinstance(value, Mapping):
                value = _blank_to_null(_clean_root_value(value, resource_id))
                members_key = casefold_key(value, "members")
                if members_key is not None:
                    members.append(
                        {
                            "op": entry["op"],
                            "path": "members",
                            "value": _member_list(value.pop(members_key)),
                        }
                    )
                if value:
                    attributes.append({**entry, "value": value})
                continue
            attributes.append(entry)
            continue
        bound, binding = _resolve(GroupResource, path)
        if bound is not None and _is_members(binding):
            members.append(_member_operation(entry, bound))
            continue
        single_valued = binding is not None and not binding.is_multivalued
        if entry["op"] == "remove" and "value" in entry and single_valued:
            entry = {"op": "remove", "path": path}
        attributes.append(_unassigning(entry))
    return attributes, members


def _eq_value_ids(node: FilterNode | None) -> list[str] | None:
    """The ids of ``value eq "a" [or value eq "b" ...]``, None for any other filter."""
    if isinstance(node, Comparison):
        attr = node.attr_path
        if (
            attr.attr.lower() == "value"
            and attr.sub_attr is None
            and attr.uri is None
            and node.op is CompareOperator.eq
            and isinstance(node.value, str)
        ):
            return [node.value]
        return None
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.or_:
        ids: list[str] = []
        for term in node.terms:
            found = _eq_value_ids(term)
            if found is None:
                return None
            ids.extend(found)
        return ids
    return None


def _member_operation_kind(op: str, path: Path[Any], value: Any) -> tuple[str, list[str]]:
    """What a (normalised) operation on ``members`` does, for the fast path.

    ``("add"|"replace", ids)`` with the entries in ``value``, ``("remove", ids)``
    for named members, ``("clear", [])``, or ``("other", [])`` for anything that
    has to go through scim2-models with the whole membership.
    """
    whole = path.value_filter is None and len(path.parts) == 1
    if whole and op in ("add", "replace"):
        return op, [item["value"] for item in value]
    if whole and op == "remove":
        if value is None:
            return "clear", []
        return "remove", [item["value"] for item in value]
    if op == "remove" and len(path.parts) == 1:
        ids = _eq_value_ids(path.value_filter)
        if ids is not None:
            return "remove", ids
    return "other", []


def _apply_member_operation(
    state: dict[str, MemberRef], operation: Any, record: GroupRecord
) -> dict[str, MemberRef]:
    op = operation.op.value
    kind, ids = _member_operation_kind(op, operation.path, operation.value)
    if kind in ("add", "replace"):
        refs = [MemberRef(item["value"], item.get("display")) for item in operation.value]
        if kind == "replace":
            return {ref.agent_id: ref for ref in refs}
        for ref in refs:
            state.setdefault(ref.agent_id, ref)
        return state
    if kind == "clear":
        return {}
    if kind == "remove":
        for agent_id in ids:
            state.pop(agent_id, None)
        return state
    # Anything else: scim2-models on the group with its full membership.
    group = GroupResource(
        id=record.id,
        display_name=record.display_name,
        members=[GroupMember(value=ref.agent_id, display=ref.display) for ref in state.values()],
    )
    _run(PatchOp[GroupResource].model_construct(operations=[operation]), group)
    return {ref.agent_id: ref for ref in member_refs(group.members or ())}


def referenced_member_ids(body: Any) -> frozenset[str] | None:
    """The agents a group PATCH can add or remove, when that is all its member
    operations do (Okta's ``remove members[value eq "x"]`` + ``add members``,
    Entra's ``Add``/``Remove`` with a value list, renames); ``None`` when some
    operation needs the whole membership (replace members, remove all members,
    any other member path or filter).

    With a set, the store may load only the memberships of those agents into
    ``GroupRecord.members``: :func:`apply_group_patch` then still reports exact
    ``added``/``removed`` (``fields.members`` is then only that subset's result).
    A body :func:`apply_group_patch` will refuse gives an empty set.
    """
    try:
        _, member_ops = _group_operations(_operations(body), resource_id="")
    except SCIMException:
        return frozenset()
    referenced: set[str] = set()
    for entry in member_ops:
        bound, _ = _resolve(GroupResource, entry["path"])
        if bound is None:
            return frozenset()
        kind, ids = _member_operation_kind(entry["op"], bound, entry.get("value"))
        if kind not in ("add", "remove"):
            return None
        referenced.update(ids)
    return frozenset(referenced)


def apply_group_patch(record: GroupRecord, body: Any) -> GroupUpdate:
    """Apply a PATCH body to a group.

    ``record.members`` is the full membership, or, when
    :func:`referenced_member_ids` returns a set, at least the memberships of
    those agents. Returns the new fields and the exact member difference
    (``added`` agents that were not members, ``removed`` agents that were). The
    store checks that added agents belong to the account. Raises SCIMException
    (400) like :func:`apply_user_patch`.
    """
    attribute_ops, member_ops = _group_operations(_operations(body), record.id)
    current = record.fields()

    display_name, external_id = current.display_name, current.external_id
    if attribute_ops:
        patch = _validated_patch(GroupResource, attribute_ops)
        group = GroupResource(
            id=record.id, display_name=record.display_name, external_id=record.external_id
        )
        _run(patch, group)
        checked = from_scim_group(
            GroupResource.model_construct(
                display_name=group.display_name, external_id=group.external_id, members=None
            )
        )
        display_name, external_id = checked.display_name, checked.external_id

    members = current.members
    if member_ops:
        patch = _validated_patch(GroupResource, member_ops)
        state = {ref.agent_id: ref for ref in current.members}
        for operation in patch.operations or ():
            state = _apply_member_operation(state, operation, record)
        members = tuple(state.values())

    added, removed = member_changes(current.members, members)
    fields = type(current)(display_name=display_name, external_id=external_id, members=members)
    changed = bool(
        added
        or removed
        or display_name != current.display_name
        or external_id != current.external_id
    )
    return GroupUpdate(fields=fields, added=added, removed=removed, changed=changed)
