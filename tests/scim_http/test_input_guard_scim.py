"""SCIM input no resource can hold (NUL and other control characters, lone surrogates, invalid
UTF-8, deep JSON) and paging integers no database column can hold: a SCIM Error 400, and
nothing stored (not even a request-log row).

Each input of the security review's finding 5 has its own case; on PostgreSQL each was a 500.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import table_rows
from scim_helpers import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    create_group,
    create_user,
    is_scim_error,
    patch_body,
    user_body,
)

HUGE = 2**64
BIGINT_PLUS_ONE = 2**63


@pytest.fixture
def world(scim: Any, db: Any) -> Any:
    """A user in a group; afterwards every table is as it was before the request (but the
    SCIM request log, where a refusal by the SCIM endpoint itself is recorded for the admin)."""
    user = create_user(scim, "stable@example.com")
    group = create_group(scim, "Stable", [user["id"]])
    before = table_rows(db, exclude=("scim_request_log",))
    yield {"user": user["id"], "group": group["id"]}
    assert table_rows(db, exclude=("scim_request_log",)) == before


def _send(scim: Any, method: str, path: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    return scim.request(method, path, headers={"Content-Type": "application/scim+json"}, **kwargs)


# --- finding 5 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "Users", user_body("nul@example.com", displayName="Ada\x00Lovelace")),
        ("POST", "Users", user_body("nul@example.com", externalId="ext\x00")),
        ("POST", "Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops\x00"}),
        ("POST", "Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "externalId": "\x00"}),
        ("PUT", "Users/{user}", user_body("stable@example.com", displayName="\x00")),
        (
            "PATCH",
            "Users/{user}",
            patch_body({"op": "replace", "path": "displayName", "value": "a\x00"}),
        ),
        (
            "PATCH",
            "Users/{user}",
            patch_body({"op": "replace", "path": "externalId", "value": "a\x00"}),
        ),
        (
            "PATCH",
            "Groups/{group}",
            patch_body({"op": "replace", "path": "displayName", "value": "a\x00"}),
        ),
        (
            "PATCH",
            "Groups/{group}",
            patch_body({"op": "replace", "path": "externalId", "value": "a\x00"}),
        ),
        (
            "PATCH",
            "Groups/{group}",
            patch_body({"op": "add", "path": "members", "value": [{"value": "x\x00"}]}),
        ),
        ("POST", "Users/.search", {"filter": 'userName eq "a\x00b"'}),
        ("POST", "Groups/.search", {"filter": 'externalId eq "\x00"'}),
        ("GET", "Users?filter=userName+eq+%22a%00b%22", None),
        ("GET", "Users?filter=externalId+eq+%22%00%22", None),
        ("GET", "Groups?filter=displayName+eq+%22%00%22", None),
        ("GET", "Groups?filter=members.value+eq+%22%00%22", None),
        ("GET", "Users/{user}%00", None),
        ("GET", "Users/%00", None),
        ("PUT", "Users/%00", user_body("stable@example.com")),
        ("PATCH", "Users/%00", patch_body({"op": "replace", "path": "title", "value": "x"})),
        ("DELETE", "Users/%00", None),
        ("GET", "Groups/%00", None),
        ("PUT", "Groups/%00", {"schemas": [GROUP_SCHEMA], "displayName": "x"}),
        ("PATCH", "Groups/%00", patch_body({"op": "replace", "path": "displayName", "value": "x"})),
        ("DELETE", "Groups/%00", None),
    ],
)
def test_nul_anywhere_is_a_scim_invalid_value(
    scim: Any, world: Any, method: str, path: str, body: Any
) -> None:
    response = _send(scim, method, path.format(**world), body)
    assert is_scim_error(response, 400, "invalidValue")
    assert "control character (U+0000)" in response.json()["detail"]


@pytest.mark.parametrize("resource", ["Users", "Groups"])
@pytest.mark.parametrize(
    "value", [HUGE, HUGE - 1, BIGINT_PLUS_ONE, -HUGE, str(HUGE), "9" * 40, 10**18]
)
def test_start_index_beyond_any_page_is_refused_in_a_search(
    scim: Any, world: Any, resource: str, value: Any
) -> None:
    response = _send(scim, "POST", f"{resource}/.search", {"startIndex": value})
    assert is_scim_error(response, 400, "invalidValue")
    assert "startIndex" in response.json()["detail"]


@pytest.mark.parametrize("resource", ["Users", "Groups"])
@pytest.mark.parametrize("parameter", ["startIndex", "count"])
def test_huge_paging_integers_in_a_query_are_refused(
    scim: Any, world: Any, resource: str, parameter: str
) -> None:
    response = scim.get(resource, params={parameter: str(HUGE)})
    assert is_scim_error(response, 400, "invalidValue")
    assert parameter in response.json()["detail"] and str(HUGE) in response.json()["detail"]


@pytest.mark.parametrize(
    ("start_index", "count"), [(1, 10**18 - 1), (-(10**18 - 1), 2**59), (0, -(10**18 - 1))]
)
def test_paging_within_18_digits_is_clamped_per_rfc_7644(
    scim: Any, world: Any, start_index: int, count: int
) -> None:
    """RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count 0, a count over
    maxResults maxResults; none of them reaches the database as given."""
    response = _send(scim, "POST", "Users/.search", {"startIndex": start_index, "count": count})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["startIndex"] == 1
    assert (
        body["itemsPerPage"]
        == len(body.get("Resources", []))
        == (0 if count < 0 else body["totalResults"])
    )


def test_the_largest_start_index_is_an_empty_page(scim: Any, world: Any) -> None:
    from deskgate.scim.query import MAX_START_INDEX

    response = _send(scim, "POST", "Users/.search", {"startIndex": MAX_START_INDEX, "count": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["startIndex"], body["itemsPerPage"], body.get("Resources", [])) == (
        MAX_START_INDEX,
        0,
        [],
    )


# --- the class around it -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "scim_type", "problem"),
    [
        (
            "POST",
            "Users",
            user_body("ctl@example.com", title="a\x07b"),
            "invalidValue",
            "control character (U+0007)",
        ),
        (
            "POST",
            "Users",
            {"schemas": [USER_SCHEMA], "userName": "a@b.com", "bad\x00key": 1},
            "invalidValue",
            "control character (U+0000)",
        ),
        ("POST", "Users", b'{"userName": "a\\ud800@b.com"}', "invalidValue", "lone surrogate"),
        ("GET", "Users/%ED%A0%80", None, "invalidValue", "address is not valid UTF-8"),
        ("GET", "Users/%FF", None, "invalidValue", "address is not valid UTF-8"),
        (
            "GET",
            "Users?filter=userName+eq+%22%FF%22",
            None,
            "invalidValue",
            "'filter' is not valid UTF-8",
        ),
        ("GET", "Users?attributes=%01", None, "invalidValue", "control character (U+0001)"),
        # Not JSON text at all: RFC 8259 JSON is UTF-8, and nesting is bounded.
        ("POST", "Users", b'{"userName": "a\xff@b.com"}', "invalidSyntax", "not valid UTF-8"),
        (
            "POST",
            "Users",
            b'{"userName": "a\xed\xa0\x80@b.com"}',
            "invalidSyntax",
            "not valid UTF-8",
        ),
        (
            "POST",
            "Users",
            b'{"a":' * 40 + b"1" + b"}" * 40,
            "invalidSyntax",
            "nested deeper than 32",
        ),
        (
            "POST",
            "Users/.search",
            b"[" * 5000 + b"]" * 5000,
            "invalidSyntax",
            "nested deeper than 32",
        ),
    ],
)
def test_other_unusable_text_is_a_scim_error(
    scim: Any, world: Any, method: str, path: str, body: Any, scim_type: str, problem: str
) -> None:
    response = _send(scim, method, path, body)
    assert is_scim_error(response, 400, scim_type)
    assert problem in response.json()["detail"], response.json()


def test_json_whitespace_escapes_still_reach_the_core(scim: Any) -> None:
    """Tab and newline are text: the core decides (here it stores them)."""
    created = scim.post("Users", json=user_body("tab@example.com", title="Lead\tOps\nEMEA"))
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "Lead\tOps\nEMEA"


def test_a_refused_body_is_refused_before_authentication(
    scim_for: Any, scim_account: Any, db: Any
) -> None:
    anonymous = scim_for(scim_account, auth="Bearer wrong")
    before = table_rows(db)
    response = anonymous.post("Users", json=user_body("x@example.com", displayName="\x00"))
    assert is_scim_error(response, 400, "invalidValue")
    assert table_rows(db) == before
