"""PATCH on Groups (see `.patch` for the normalisation shared with Users).

``displayName`` and ``externalId`` operations go through ``PatchOp[Group].patch`` on the group
without its members; member operations are applied to the id set directly, so a PATCH on a
large group stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scim2_models import GroupMember, PatchOp, Path
from scim2_models.path import CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator

from .errors import SCIMException
from .mapping import from_scim_group, member_changes, member_refs, normalize_member
from .models import GroupResource, casefold_key
from .patch import (
    blank_to_null,
    clean_root_value,
    parse_operations,
    resolve_path,
    run_patch,
    unassigning,
    validated_patch,
)
from .records import GroupRecord, GroupUpdate, MemberRef

__all__ = ["apply_group_patch", "referenced_member_ids"]


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
                value = blank_to_null(clean_root_value(value, resource_id))
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
        bound, binding = resolve_path(GroupResource, path)
        if bound is not None and _is_members(binding):
            members.append(_member_operation(entry, bound))
            continue
        single_valued = binding is not None and not binding.is_multivalued
        if entry["op"] == "remove" and "value" in entry and single_valued:
            entry = {"op": "remove", "path": path}
        attributes.append(unassigning(entry))
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
    run_patch(PatchOp[GroupResource].model_construct(operations=[operation]), group)
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
        _, member_ops = _group_operations(parse_operations(body), resource_id="")
    except SCIMException:
        return frozenset()
    referenced: set[str] = set()
    for entry in member_ops:
        bound, _ = resolve_path(GroupResource, entry["path"])
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
    attribute_ops, member_ops = _group_operations(parse_operations(body), record.id)
    current = record.fields()

    display_name, external_id = current.display_name, current.external_id
    if attribute_ops:
        patch = validated_patch(GroupResource, attribute_ops)
        group = GroupResource(
            id=record.id, display_name=record.display_name, external_id=record.external_id
        )
        run_patch(patch, group)
        checked = from_scim_group(
            GroupResource.model_construct(
                display_name=group.display_name, external_id=group.external_id, members=None
            )
        )
        display_name, external_id = checked.display_name, checked.external_id

    members = current.members
    if member_ops:
        patch = validated_patch(GroupResource, member_ops)
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
