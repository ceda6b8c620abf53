"""Fixtures for the SCIM core tests: record factories and the client corpus.

The corpus (Okta's SCIM docs and test scripts, Microsoft's Postman collection)
is read from ``$DESKGATE_SAML_CORPUS`` (default ``<repo>/../shared/saml-corpus``);
tests that need it are skipped when it is absent. Nothing is copied from it.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from deskgate.scim.records import AgentRecord, EmailEntry, GroupRecord, MemberRef

REPO_ROOT = Path(__file__).resolve().parents[2]
CREATED = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
UPDATED = datetime(2024, 5, 2, 10, 0, 5, tzinfo=UTC)
BASE_URL = "https://deskgate.example/scim/v2/accounts/acc1"

OKTA_FILES = "okta-scim/packages/@okta/vuepress-site/.vuepress/public/standards/SCIM/SCIMFiles"
OKTA_DOC = "okta-scim/packages/@okta/vuepress-site/docs/reference/scim/scim-20/index.md"
POSTMAN = "ms-scimreferencecode/PostmanCollection.json"

# Values for the variables of Okta's Initial_Script_Spec.txt (random there).
OKTA_SPEC_VARIABLES = {
    "randomGivenName": "Runscope123",
    "randomFamilyName": "Qwertyuio456",
    "randomEmail": "Runscope123Qwertyuio456@atko.com",
    "randomUsername": "Runscope123Qwertyuio456@atko.com",
    "randomUsernameCaps": "RUNSCOPE123QWERTYUIO456@ATKO.COM",
    "InvalidUserEmail": "abcdefgh@atko.com",
    "UserIdThatDoesNotExist": "010101001010101011001010101011",
}


def _make_agent(**overrides: Any) -> AgentRecord:
    """``email=`` is shorthand for that userName with it as the one primary work email."""
    email = overrides.pop("email", "jane.doe@example.com")
    values: dict[str, Any] = {
        "id": "a1",
        "user_name": email,
        "emails": (EmailEntry(email, "work", True),),
        "first_name": "Jane",
        "last_name": "Doe",
        "display_name": "Jane Doe",
        "active": True,
        "external_id": "00ujl29u0le5T6Aj10h7",
        "locale": "en-US",
        "title": "Support lead",
        "enterprise": {
            "department": "Support",
            "employeeNumber": "701984",
            "manager": {"value": "m1", "displayName": "Pat Boss"},
        },
        "created_at": CREATED,
        "updated_at": UPDATED,
        "version": 3,
    }
    values.update(overrides)
    return AgentRecord(**values)


def _make_group(**overrides: Any) -> GroupRecord:
    values: dict[str, Any] = {
        "id": "g1",
        "display_name": "Tier 1",
        "external_id": None,
        "members": (MemberRef("u1", "Uma One"), MemberRef("u2", "Udo Two")),
        "created_at": CREATED,
        "updated_at": UPDATED,
        "version": 7,
    }
    values.update(overrides)
    return GroupRecord(**values)


@pytest.fixture(scope="session")
def make_agent() -> Callable[..., AgentRecord]:
    """``make_agent(**overrides)``: an AgentRecord with every field set."""
    return _make_agent


@pytest.fixture(scope="session")
def make_group() -> Callable[..., GroupRecord]:
    """``make_group(**overrides)``: a GroupRecord with members u1 and u2."""
    return _make_group


@pytest.fixture(scope="session")
def corpus() -> Path:
    root = Path(os.environ.get("DESKGATE_SAML_CORPUS", REPO_ROOT.parent / "shared" / "saml-corpus"))
    if not root.is_dir():
        pytest.skip(f"SCIM client corpus not found at {root} (set DESKGATE_SAML_CORPUS)")
    return root


@dataclass(frozen=True)
class ClientRequest:
    method: str
    path: str
    body: Any  # parsed JSON, or None

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}


_HTTP_BLOCK = re.compile(r"^([ \t]*)```http\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1$")


@pytest.fixture(scope="session")
def okta_doc_requests(corpus: Path) -> list[ClientRequest]:
    """Every request of Okta's SCIM 2.0 reference page (what Okta sends)."""
    text = (corpus / OKTA_DOC).read_text(encoding="utf-8")
    requests = []
    for match in _HTTP_BLOCK.finditer(text):
        block = textwrap.dedent(match.group(2))
        head, _, body = block.partition("\n\n")
        request_line = _REQUEST_LINE.match(head.splitlines()[0].strip())
        if request_line is None:
            continue  # a response
        parsed = json.loads(body) if body.strip() else None
        requests.append(ClientRequest(request_line.group(1), request_line.group(2), parsed))
    assert len(requests) > 10, "the Okta reference page changed shape"
    return requests


def _substitute(text: str, variables: dict[str, str]) -> str:
    text = text.replace("${__UUID}", "5b2b8b8e-5a0c-4b8e-9a57-2f3e1d0c9b7a")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: variables.get(m.group(1), f"var-{m.group(1)}"), text)


@pytest.fixture(scope="session")
def okta_spec_steps(corpus: Path) -> list[ClientRequest]:
    """The requests of Okta's "SCIM 2.0 SPEC Test" (Runscope), variables filled in."""
    data = json.loads((corpus / OKTA_FILES / "Okta-SCIM-20-SPEC-Test.json").read_text())
    steps = []
    for step in data["steps"]:
        if "method" not in step:
            continue
        url = _substitute(step["url"].replace("{{SCIMBaseURL}}", ""), OKTA_SPEC_VARIABLES)
        body = step.get("body")
        parsed = json.loads(_substitute(body, OKTA_SPEC_VARIABLES)) if body else None
        steps.append(ClientRequest(step["method"], url, parsed))
    return steps


@dataclass(frozen=True)
class PostmanRequest:
    name: str
    folder: str
    method: str
    url: str
    raw_body: str

    def json(self) -> Any:
        return json.loads(self.raw_body)

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.url).query).items()}


@pytest.fixture(scope="session")
def postman_requests(corpus: Path) -> list[PostmanRequest]:
    """Microsoft's SCIMReferenceCode Postman collection ("SCIM Tests"), flattened."""
    data = json.loads((corpus / POSTMAN).read_text(encoding="utf-8"))
    variables = {
        "id1": "u1",
        "id2": "u2",
        "id3": "u3",
        "id4": "u4",
        "1stuserid": "u1",
        "groupid": "g1",
        "groupid3": "g1",
        "1stgroupid": "g1",
    }
    found: list[PostmanRequest] = []

    def walk(items: list[dict[str, Any]], folder: str) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"], item["name"])
                continue
            request = item["request"]
            url = request["url"]["raw"] if isinstance(request["url"], dict) else request["url"]
            url = re.sub(r"^\{\{Protocol\}\}://\{\{Server\}\}\{\{Port\}\}/\{\{Api\}\}", "", url)
            body = (request.get("body") or {}).get("raw", "")
            found.append(
                PostmanRequest(
                    item["name"],
                    folder,
                    request["method"],
                    _substitute(url, variables),
                    _substitute(body, variables),
                )
            )

    walk(data["item"], "")
    return found


@pytest.fixture(scope="session")
def postman(postman_requests: list[PostmanRequest]) -> Callable[[str, str], PostmanRequest]:
    """``postman(folder, name)``: one request of the collection (first of that name)."""

    def find(folder: str, name: str) -> PostmanRequest:
        for request in postman_requests:
            if request.folder == folder and request.name == name:
                return request
        raise AssertionError(f"no Postman request {folder!r}/{name!r}")

    return find
