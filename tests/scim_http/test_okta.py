"""Okta as it talks to deskgate: its SCIM 2.0 SPEC test (replayed from the Runscope export), the
requests of its SCIM reference page in order (user lifecycle, Group Push), and JIT linking."""

from __future__ import annotations

import json
import re
import textwrap
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from deskgate.services import agents as agent_service
from deskgate.services import scim_credentials
from deskgate.store.models import Account, Agent, AgentSource, Group, GroupMember

from scim_helpers import (
    LIST_SCHEMA,
    ScimAccount,
    create_user,
    filter_users,
    fresh,
    is_scim_error,
    patch_body,
    user_body,
)

# Values for the variables Okta's Initial_Script_Spec.txt draws at random.
SPEC_VARIABLES = {
    "randomGivenName": "Runscope123",
    "randomFamilyName": "Qwertyuio456",
    "randomEmail": "Runscope123Qwertyuio456@atko.com",
    "randomUsername": "Runscope123Qwertyuio456@atko.com",
    "randomUsernameCaps": "RUNSCOPE123QWERTYUIO456@ATKO.COM",
    "InvalidUserEmail": "abcdefgh@atko.com",
    "UserIdThatDoesNotExist": "010101001010101011001010101011",
}


def _at(body: Any, path: str) -> Any:
    """`Resources[0].name.familyName` in a JSON body (None when absent)."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            body = body[index] if isinstance(body, list) and len(body) > index else None
        else:
            body = body.get(part) if isinstance(body, dict) else None
    return body


def _assertion_holds(
    assertion: dict[str, Any], response: httpx.Response, elapsed_ms: float
) -> bool:
    """One Runscope assertion, evaluated as Runscope does."""
    comparison, value = assertion["comparison"], assertion.get("value")
    if assertion["source"] == "response_status":
        return response.status_code == int(value)
    if assertion["source"] == "response_time":
        return elapsed_ms < float(value)
    actual = _at(response.json(), assertion["property"])
    if comparison == "not_empty":
        return actual not in (None, "", [], {})
    if comparison in ("has_value", "contains"):
        return actual is not None and value in actual
    if comparison == "equal":
        return actual == value or json.dumps(actual) == value or str(actual) == value
    if comparison == "equal_number":
        return isinstance(actual, int | float) and float(actual) == float(value)
    if comparison == "is_a_number":
        return isinstance(actual, int | float) and not isinstance(actual, bool)
    raise AssertionError(f"unknown Runscope comparison {comparison!r}")


def _fill(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: variables[m.group(1)], text)


@pytest.fixture
def cli_scim_account(database_url: str, issue_token: Any) -> ScimAccount:
    """An account made exactly as an operator makes one: `deskgate accounts create`."""
    from click.testing import CliRunner

    from deskgate.cli import main

    result = CliRunner().invoke(
        main,
        [
            "accounts",
            "create",
            "--name",
            "Acme",
            "--plan",
            "scale-plus",
            "--admin-email",
            "ops@acme.test",
            "--admin-first-name",
            "Olga",
            "--admin-last-name",
            "Ops",
        ],
        env={"DESKGATE_DATABASE_URL": database_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    account_id = json.loads(result.stdout)["account_id"]
    return ScimAccount(
        id=account_id,
        admin_email="ops@acme.test",
        admin_id="",
        token=issue_token(account_id),
        base_path=f"/scim/v2/{account_id}",
    )


def test_okta_spec_test_passes_against_an_account_made_by_the_cli(
    okta_spec_test: dict[str, Any], live_server: str, cli_scim_account: ScimAccount
) -> None:
    """Its first step reads the first listed user (the admin) and wants its name parts."""
    test_okta_spec_test_passes_over_real_http(
        okta_spec_test, live_server, cli_scim_account, "Bearer"
    )


@pytest.mark.parametrize("auth_style", ["header-auth (bare token)", "Bearer"])
def test_okta_spec_test_passes_over_real_http(
    okta_spec_test: dict[str, Any], live_server: str, scim_account: ScimAccount, auth_style: str
) -> None:
    """Okta's "SCIM 2.0 SPEC Test", every step and every assertion, as its runner sends them."""
    token = (
        scim_account.token if auth_style.startswith("header") else f"Bearer {scim_account.token}"
    )
    variables = {
        **SPEC_VARIABLES,
        "auth": token,
        "SCIMBaseURL": f"{live_server}{scim_account.base_path}",
    }
    failures = []
    with httpx.Client(timeout=10) as client:
        for number, step in enumerate(okta_spec_test["steps"], 1):
            if step.get("step_type") != "request":
                continue
            headers = {
                name: _fill(values[0], variables) for name, values in step["headers"].items()
            }
            body = _fill(step["body"], variables).encode() if step.get("body") else None
            started = time.perf_counter()
            response = client.request(
                step["method"], _fill(step["url"], variables), headers=headers, content=body
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            for assertion in step["assertions"]:
                if assertion.get("value") is not None:
                    assertion = {**assertion, "value": _fill(assertion["value"], variables)}
                if not _assertion_holds(assertion, response, elapsed_ms):
                    failures.append(
                        (number, step["method"], step["url"], assertion, response.text[:300])
                    )
            for variable in step.get("variables") or []:
                variables[variable["name"]] = str(_at(response.json(), variable["property"]))
    assert not failures, failures


# --- the requests of Okta's SCIM 2.0 reference page ------------------------------------------

DOC_USER = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
DOC_OTHER_USER = "89bb1940-b905-4575-9e7f-6f887cfb368e"
DOC_GROUP = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"
_HTTP_BLOCK = re.compile(r"^([ \t]*)```http\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) /scim/v2/(\S+) HTTP/1\.1$")


def okta_doc_requests(doc: str, ids: dict[str, str]) -> list[tuple[str, str, Any]]:
    """(method, path under the base URL, JSON body) of every request on the page, in order,
    with the page's example ids replaced by ours."""
    requests = []
    for match in _HTTP_BLOCK.finditer(doc):
        block = textwrap.dedent(match.group(2))
        for example, ours in ids.items():
            block = block.replace(example, ours)
        head, _, body = block.partition("\n\n")
        line = _REQUEST_LINE.match(head.splitlines()[0].strip())
        if line:
            requests.append(
                (line.group(1), line.group(2), json.loads(body) if body.strip() else None)
            )
    return requests


def test_okta_reference_requests_in_order(
    okta_doc: str, scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    """Okta's user lifecycle and Group Push, request by request as its reference page shows."""
    other = create_user(scim, "other.user@okta.local", given="Other", family="User")
    ids = {DOC_OTHER_USER: other["id"]}
    requests = iter(okta_doc_requests(okta_doc, ids))

    def send(expect_method: str, expect_path: str, status: int) -> httpx.Response:
        method, path, body = next(requests)
        assert (method, path.split("?")[0]) == (expect_method, expect_path), (method, path)
        response = scim.request(method, path, json=body)
        assert response.status_code == status, (method, path, response.text)
        return response

    # Existence check, then create (password and groups: [] accepted; the password is ignored).
    assert send("GET", "Users", 200).json()["totalResults"] == 0
    created = send("POST", "Users", 201).json()
    user_id = created["id"]
    assert created["userName"] == "test.user@okta.local" and created["active"] is True
    assert "password" not in created
    agent = db.get(Agent, user_id)
    assert (agent.source, agent.role, agent.password_hash) == ("scim", "agent", None)
    base_url = scim_credentials.scim_base_url("http://testserver", db.get(Account, scim_account.id))
    assert created["meta"]["location"] == f"{base_url}/Users/{user_id}"  # the URL the admin copied
    assert agent.locale == "en-US"

    # The page's second create (same userName, with an externalId): a clash, which Okta links by filter.
    assert is_scim_error(send("POST", "Users", 409), 409, "uniqueness")
    ids[DOC_USER] = user_id
    rest = okta_doc_requests(okta_doc, ids)[3:]
    requests = iter(rest)

    listed = send("GET", "Users", 200).json()
    assert {r["id"] for r in listed["Resources"]} >= {user_id, other["id"], scim_account.admin_id}
    send("GET", f"Users/{user_id}", 200)
    send("GET", f"Users/{user_id}", 200)
    replaced = send("PUT", f"Users/{user_id}", 200).json()
    assert replaced["name"] == {"givenName": "Another", "familyName": "User"}
    assert replaced["meta"]["version"] == 'W/"2"'
    deactivated = send("PATCH", f"Users/{user_id}", 200).json()
    assert deactivated["active"] is False

    group = send("POST", "Groups", 201).json()
    group_id = group["id"]
    assert group["displayName"] == "Test SCIMv2"
    ids[DOC_GROUP] = group_id
    requests = iter(okta_doc_requests(okta_doc, ids)[9:])
    assert send("GET", "Groups", 200).json()["totalResults"] == 1
    found = send("GET", "Groups", 200).json()
    assert [g["id"] for g in found["Resources"]] == [group_id]
    send("GET", f"Groups/{group_id}", 200)
    send("PATCH", f"Groups/{group_id}", 204)  # rename, carrying the group's id in the value
    send("PATCH", f"Groups/{group_id}", 204)  # remove members[value eq "…"], add members
    assert _member_ids(scim, group_id) == [user_id]
    put = send("PUT", f"Groups/{group_id}", 200).json()
    assert [m["value"] for m in put["members"]] == [user_id]
    send("PATCH", f"Groups/{group_id}", 204)  # replace members with two users
    assert _member_ids(scim, group_id) == sorted([user_id, other["id"]])
    send("DELETE", f"Groups/{group_id}", 204)
    assert is_scim_error(scim.get(f"Groups/{group_id}"), 404)
    assert fresh(db).get(Group, group_id) is None
    assert db.scalars(select(GroupMember).where(GroupMember.group_id == group_id)).all() == []


def _member_ids(scim: Any, group_id: str) -> list[str]:
    response = scim.get(f"Groups/{group_id}")
    assert response.status_code == 200, response.text
    return sorted(member["value"] for member in response.json().get("members", []))


def test_okta_crud_test_checks_after_each_lifecycle_step(scim: Any) -> None:
    """What Okta's "SCIM 2.0 CRUD Test" reads back after each change it makes in Okta."""
    email = "crud.user@atko.com"
    user = create_user(scim, email, given="Crud", family="User")

    def by_filter() -> dict[str, Any]:
        body = filter_users(scim, f'userName eq "{email}"')
        assert body["totalResults"] == 1
        return body["Resources"][0]

    found = by_filter()
    assert (found["userName"], found["emails"][0]["value"]) == (email, email)
    assert (found["name"]["givenName"], found["name"]["familyName"]) == ("Crud", "User")

    put = {**user_body(email, given="Renamed", family="User"), "id": user["id"]}
    assert scim.put(f"Users/{user['id']}", json=put).status_code == 200
    assert scim.get(f"Users/{user['id']}").json()["name"]["givenName"] == "Renamed"

    for active in (False, True, False):  # deactivate, reactivate, unassign
        patched = scim.patch(
            f"Users/{user['id']}", json=patch_body({"op": "replace", "value": {"active": active}})
        )
        assert patched.status_code == 200 and patched.json()["active"] is active
        assert scim.get(f"Users/{user['id']}").json()["active"] is active
        assert by_filter()["active"] is active  # deactivated users are still found


def test_okta_errors_are_scim_errors(scim: Any, scim_for: Any, scim_account: ScimAccount) -> None:
    assert is_scim_error(scim.get("Users/00919288221112222"), 404)
    bad = scim_for(scim_account, auth="non-token")
    assert is_scim_error(bad.get("Users", params={"filter": 'userName eq "x@y.com"'}), 401)
    empty = scim.get(
        "Users", params={"filter": 'userName eq "nobody@atko.com"', "startIndex": 1, "count": 100}
    )
    assert empty.json() == {
        "schemas": [LIST_SCHEMA],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


def test_a_user_created_at_first_sso_sign_in_is_linked_not_duplicated(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    """JIT and SCIM share one agent per email: Okta's POST gets 409, Okta links by filter, and
    its PUT then updates that same agent."""
    jit = agent_service.add_agent(
        db, scim_account.id, email="Jit.User@Example.com", first_name="Jit", source=AgentSource.JIT
    )
    db.commit()
    clash = scim.post("Users", json=user_body("jit.user@example.com", given="Jit", family="User"))
    assert is_scim_error(clash, 409, "uniqueness")
    found = filter_users(scim, 'userName eq "JIT.USER@example.com"')["Resources"]
    assert [user["id"] for user in found] == [jit.id]
    put = scim.put(
        f"Users/{jit.id}",
        json={
            **user_body("jit.user@example.com", given="Jit", family="User"),
            "externalId": "00u1okta",
        },
    )
    assert put.status_code == 200, put.text
    agent = fresh(db).get(Agent, jit.id)
    assert (agent.external_id, agent.last_name, agent.source) == ("00u1okta", "User", "jit")
    assert db.scalars(
        select(Agent).where(Agent.email_normalized == "jit.user@example.com")
    ).all() == [agent]
