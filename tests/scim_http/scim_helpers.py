"""Helpers for the SCIM API tests (imported as `scim_helpers`: this folder is on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from scim2_client import BaseSyncSCIMClient
from sqlalchemy.orm import Session

SCIM_JSON = "application/scim+json"


@dataclass
class ScimAccount:
    id: str
    admin_email: str
    admin_id: str
    token: str
    base_path: str
    """``/scim/v2/<account id>``"""


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's sync engine over an `httpx.Client` (a TestClient for in-process calls, or a
    plain client for real HTTP). scim2-client 0.13 ships its httpx engine for `httpx2` only."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        url = self.client.build_request("GET", endpoint).url
        same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
        return same_origin and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


def fresh(db: Session) -> Session:
    """The inspection session, showing what the app has committed since (a new snapshot, and no
    stale objects in the identity map)."""
    db.rollback()
    db.expire_all()
    return db


def is_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> bool:
    """The response is a SCIM Error with this status (as a string) and scimType."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(SCIM_JSON), response.headers
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
    assert body["status"] == str(status), body
    assert body.get("detail"), body
    assert body.get("scimType") == scim_type, body
    return True


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def user_body(
    email: str, given: str = "Given", family: str = "Family", **extra: Any
) -> dict[str, Any]:
    """A POST /Users body as Okta sends it (password and an empty groups list included)."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
        **extra,
    }


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def create_user(client: httpx.Client, email: str, **kwargs: Any) -> dict[str, Any]:
    response = client.post("Users", json=user_body(email, **kwargs))
    assert response.status_code == 201, response.text
    return response.json()


def create_group(client: httpx.Client, name: str, member_ids: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": i} for i in member_ids],
    }
    response = client.post("Groups", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def filter_users(client: httpx.Client, expression: str, **params: Any) -> dict[str, Any]:
    response = client.get("Users", params={"filter": expression, **params})
    assert response.status_code == 200, response.text
    return response.json()
