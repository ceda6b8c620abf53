"""The lean SCIM app in front of FastAPI: an unexpected error is a SCIM 500 without a trace,
with the headers every answer has, and the request is still logged."""

from __future__ import annotations

from typing import Any

import pytest

from deskgate.web.scim import users as user_handlers

from scim_helpers import ScimAccount, is_scim_error


def test_an_unexpected_error_is_a_scim_500_without_a_trace(
    scim: Any, scim_account: ScimAccount, scim_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(user_handlers.provisioning, "get_user", broken)
    response = scim.get("Users/agt_x")
    assert is_scim_error(response, 500)
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"]
    assert response.headers["x-frame-options"] == "DENY"
    assert [(row.method, row.status) for row in scim_log(scim_account.id)] == [("GET", 500)]


def test_other_methods_are_scim_errors_too(scim: Any) -> None:
    assert is_scim_error(scim.request("TRACE", "Users"), 405)


def test_paths_outside_an_account_stay_with_the_web_app(web: Any) -> None:
    response = web.get("/scim/v2/")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
