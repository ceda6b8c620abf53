"""Helpers for the /api/v1 data endpoint tests (imported as `api_helpers`)."""

from __future__ import annotations

from typing import Any

ALL_SCOPES = ("agents:read", "events:read")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def follow(get: Any, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a cursor listing, followed to its end (agents: next_cursor null; events:
    has_more false). `get` is a client's get."""
    seen: list[dict[str, Any]] = []
    params = dict(params)
    for _ in range(10_000):
        response = get(path, params=params, headers=bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(body["data"])
        if path.endswith("/events"):
            params["after"] = body["next_cursor"]
            if not body["has_more"]:
                return seen
        else:
            if body["next_cursor"] is None:
                return seen
            params["cursor"] = body["next_cursor"]
    raise AssertionError("the listing did not end")
