"""Okta's deactivation PATCH (`replace` of `{"active": b}`, no path) is applied without the
PatchOp engine (`deskgate.scim.patch._only_active`): it must store what the engine stores."""

from __future__ import annotations

from typing import Any

import pytest

from deskgate.scim import patch as patch_module
from deskgate.scim.patch import apply_user_patch
from deskgate.scim.records import EmailEntry

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

RECORDS: list[dict[str, Any]] = [
    {},
    {"active": False},
    {"first_name": None, "last_name": None, "display_name": None, "emails": ()},
    {"first_name": " Jane ", "title": "", "locale": None, "external_id": ""},
    {"emails": (EmailEntry("a@x", "Work", None), EmailEntry("b@x", "home", True, "B"))},
    {"emails": (EmailEntry("a@x", None, True), EmailEntry("b@x", None, True))},
    {"enterprise": {}, "user_name": "Not An Email"},
    {"enterprise": {"manager": {"value": "m1"}, "costCenter": ""}},
]


def _okta(active: bool) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": active}}]}


@pytest.mark.parametrize("overrides", RECORDS)
@pytest.mark.parametrize("active", [False, True])
def test_the_direct_path_stores_what_the_engine_stores(
    make_agent: Any, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], active: bool
) -> None:
    record = make_agent(**overrides)
    direct = apply_user_patch(record, _okta(active))
    monkeypatch.setattr(patch_module, "_only_active", lambda operations: None)
    through_engine = apply_user_patch(record, _okta(active))
    assert direct == through_engine
    assert direct.fields.active is active


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "value": {"active": "false"}},
        {"op": "replace", "value": {"active": False, "title": "x"}},
        {"op": "replace", "path": "active", "value": False},
        {"op": "add", "value": {"active": False}},
    ],
)
def test_other_shapes_go_through_the_engine(make_agent: Any, operation: dict[str, Any]) -> None:
    operations = patch_module._user_operations(
        patch_module.parse_operations({"Operations": [operation]}), "a1"
    )
    assert patch_module._only_active(operations) is None
    assert apply_user_patch(make_agent(), {"Operations": [operation]}).fields.active is False
