"""Operations over HTTP: the JSON request log and X-Request-ID, /healthz and /readyz, /metrics
(token and separate listener), background-pass metrics, and that no secret ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import text

from deskgate import metrics
from deskgate.config import load_settings
from deskgate.logs import JsonFormatter
from deskgate.store import migrate
from deskgate.store.base import make_engine
from deskgate.web.app import create_app
from deskgate.web.server import serve_metrics

from helpers import TEST_PASSWORD, post_form, sign_in
from test_saml_acs import post_acs, sso_account  # noqa: F401  (the fixture)

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


class CapturedLogs:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [
            json.loads(line) for line in self.text.splitlines()
        ]  # every line is one JSON object

    def requests(self) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == "deskgate.request"]


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    """Everything logged, at DEBUG, through the production formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    # httpx's own lines here come from the tests' TestClient (the caller), not from the server.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield CapturedLogs(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_client(settings, engine) -> Iterator[TestClient]:
    app = create_app(
        settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}), engine=engine
    )
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


# --- the request log -------------------------------------------------------------------


def test_one_json_line_per_request_with_its_fields(client, logs):
    response = client.get("/login", headers={"X-Request-ID": "lb-4f1c2a:trace.7"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "lb-4f1c2a:trace.7"
    [line] = logs.requests()
    assert line["request_id"] == "lb-4f1c2a:trace.7"
    assert line["method"] == "GET"
    assert line["route"] == "/login"
    assert line["group"] == "pages"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 10_000
    assert line["account_id"] is None
    assert line["level"] == "info" and line["msg"] == "request" and line["ts"].endswith("+00:00")


@pytest.mark.parametrize("given", ["x" * 129, "has space", 'a"b', "<script>", "é".encode()])
def test_an_unsafe_request_id_is_replaced_by_a_generated_one(client, logs, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    returned = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", returned)
    assert logs.requests()[0]["request_id"] == returned


def test_every_response_carries_a_request_id_even_errors_and_static(client, logs):
    ids = {
        client.get(path).headers["x-request-id"]
        for path in ("/healthz", "/nope", "/static/app.css", "/console")
    }
    assert len(ids) == 4
    routes = [line["route"] for line in logs.requests()]
    assert routes == ["/healthz", "unmatched", "/static/{path}", "/console"]


def test_the_log_names_the_route_template_and_account_never_the_token(client, logs, make_account):
    account = make_account()
    sign_in(client, account.admin_email)
    client.get("/console")
    client.get(f"/api/v1/sso/{account.sso_token}/login/okta?RelayState=secret-relay")
    client.get("/no/such/page/with-a-secret-0123")
    by_route = {line["route"]: line for line in logs.requests()}
    assert by_route["/console"]["account_id"] == account.id
    assert by_route["/console"]["group"] == "pages"
    assert by_route["/api/v1/sso/{sso_token}/login/{idp_kind}"]["group"] == "sso"
    assert by_route["unmatched"]["status"] == 404
    for secret in (account.sso_token, "secret-relay", "with-a-secret-0123"):
        assert secret not in logs.text


def test_no_secret_reaches_the_logs(client, logs, sso_account, make_account):
    """Sign in by password and through the ACS, provision over SCIM, rotate both tokens: the
    captured log lines hold none of the secrets that went over the wire."""
    account = sso_account.account
    # Password sign-in (and a wrong password).
    client.post("/logout")
    failed = post_form(
        client,
        "/login",
        "/login",
        {"email": account.admin_email, "password": "wrong-" + TEST_PASSWORD},
    )
    assert failed.status_code == 401
    signed_in = sign_in(client, account.admin_email)
    assert signed_in.status_code == 303
    admin_cookie = client.cookies["dg_session"]
    # SCIM: issue a token on the Security page, provision a user, rotate the token.
    issued = post_form(
        client, "/manage/security", "/manage/security/scim-token", {"grace_hours": "0"}
    )
    scim_token = re.search(r'id="scim-token"[^>]*>([^<]+)<', issued.text).group(1).strip()
    created = client.post(
        f"/scim/v2/{account.id}/Users",
        headers={"Authorization": f"Bearer {scim_token}", "Content-Type": "application/scim+json"},
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "pat@example.com",
            "name": {"givenName": "Pat", "familyName": "Lee"},
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    rotated = post_form(
        client, "/manage/security", "/manage/security/scim-token", {"grace_hours": "0"}
    )
    new_scim_token = re.search(r'id="scim-token"[^>]*>([^<]+)<', rotated.text).group(1).strip()
    # SSO through the ACS, then rotate the SSO token.
    saml_response = sso_account.response()
    sso_client = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    with sso_client:
        acs = post_acs(sso_client, f"/api/v1/sso/{account.sso_token}/acs/okta", saml_response)
        assert acs.status_code == 303, acs.text
        sso_cookie = sso_client.cookies["dg_session"]
    post_form(client, "/manage/security", "/manage/security/sso-token", {})

    requests = logs.requests()
    assert {
        "/login",
        "/scim/v2/{account_id}/{rest:path}",
        "/api/v1/sso/{sso_token}/acs/{idp_kind}",
        "/manage/security/scim-token",
        "/manage/security/sso-token",
    } <= {line["route"] for line in requests}
    scim_line = next(line for line in requests if line["group"] == "scim")
    assert scim_line["account_id"] == account.id and scim_line["status"] == 201
    secrets = {
        "password": TEST_PASSWORD,
        "admin cookie": admin_cookie,
        "SSO cookie": sso_cookie,
        "SCIM token": scim_token,
        "rotated SCIM token": new_scim_token,
        "SSO token": account.sso_token,
        "SAMLResponse": saml_response,
        "SAMLResponse (start)": saml_response[:24],
    }
    leaked = [name for name, secret in secrets.items() if secret in logs.text]
    assert not leaked, leaked


# --- health -----------------------------------------------------------------------------


def test_healthz_answers_while_the_process_is_up(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_when_the_schema_is_at_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_is_503_while_migrations_are_behind(client, engine):
    with engine.begin() as conn:
        [current] = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = client.get("/readyz")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == (
        f"database schema at 0001, this code expects {current}: run `deskgate db upgrade`"
    )
    assert current in migrate.head_revisions()


def test_readyz_is_503_when_the_database_is_unreachable(settings, tmp_path):
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}"
    unreachable = make_engine(missing)
    app = create_app(settings.model_copy(update={"database_url": missing}), engine=unreachable)
    with TestClient(app) as client:
        response = client.get("/readyz")
    unreachable.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": "database unreachable (OperationalError)",
    }


# --- metrics ----------------------------------------------------------------------------


def test_metrics_are_off_by_default(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_token(metrics_client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        response = metrics_client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert "deskgate_" not in response.text
        assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'


def test_a_short_metrics_token_is_refused():
    with pytest.raises(ValueError, match="metrics_token"):
        load_settings({"DESKGATE_METRICS_TOKEN": "short"})
    with pytest.raises(ValueError, match="host:port"):
        load_settings({"DESKGATE_METRICS_BIND": "9100"})
    assert load_settings({"DESKGATE_METRICS_BIND": "[::1]:9100"}).metrics_address == ("::1", 9100)


def test_metrics_count_requests_sign_ins_and_scim(metrics_client, make_account, issue_scim_token):
    account = make_account()
    before = scrape(metrics_client)
    assert metrics_client.get("/login").status_code == 200
    post_form(
        metrics_client, "/login", "/login", {"email": account.admin_email, "password": "nope-nope"}
    )
    sign_in(metrics_client, account.admin_email)
    token = issue_scim_token(account.id)
    scim = metrics_client.get(
        f"/scim/v2/{account.id}/Users", headers={"Authorization": f"Bearer {token}"}
    )
    assert scim.status_code == 200
    unauthorized = metrics_client.get(
        f"/scim/v2/{account.id}/Users", headers={"Authorization": "Bearer x"}
    )
    assert unauthorized.status_code == 401
    metrics_client.get(f"/api/v1/sso/{account.sso_token}/metadata/okta")
    after = scrape(metrics_client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("deskgate_http_requests_total", group="pages", method="GET", status="200") >= 1
    assert grew("deskgate_http_request_duration_seconds_count", group="pages") >= 3
    assert (
        grew(
            "deskgate_sign_ins_total",
            method="password",
            result="refused",
            reason="wrong_credentials",
        )
        == 1
    )
    assert grew("deskgate_sign_ins_total", method="password", result="success", reason="") == 1
    assert grew("deskgate_scim_requests_total", method="GET", status="200") == 1
    assert grew("deskgate_scim_requests_total", method="GET", status="401") == 1
    assert grew("deskgate_http_request_duration_seconds_count", group="sso") == 1
    assert value(after, "deskgate_db_pool_size") >= 1
    assert ("deskgate_db_pool_checked_out", ()) in after
    exposition = metrics_client.get(
        "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ).text
    for raw in (account.sso_token, account.id, token, "/scim/v2", "/login"):
        assert raw not in exposition  # labels are groups and codes, never paths or ids


def test_saml_sign_ins_are_counted_by_result_and_reason(metrics_client, sso_account):
    before = scrape(metrics_client)
    acs = f"/api/v1/sso/{sso_account.token}/acs/okta"
    good = sso_account.response()
    assert post_acs(metrics_client, acs, good).status_code == 303
    assert post_acs(metrics_client, acs, good).status_code >= 400  # replayed
    after = scrape(metrics_client)

    def grew(**labels):
        return value(after, "deskgate_sign_ins_total", **labels) - value(
            before, "deskgate_sign_ins_total", **labels
        )

    assert grew(method="saml", result="success", reason="") == 1
    assert grew(method="saml", result="refused", reason="replayed_assertion") == 1


def test_metrics_on_a_separate_listener(metrics_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve_metrics(("127.0.0.1", port))
    try:
        metrics_client.get("/healthz")
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert 'deskgate_http_requests_total{group="ops",method="GET",status="200"}' in response.text


def test_background_passes_are_counted_and_stop_with_the_app(settings, engine):
    app = create_app(settings.model_copy(update={"retention_interval_seconds": 1}), engine=engine)
    ok_before = metrics.BACKGROUND_RUNS.labels("retention", "ok")._value.get()
    with TestClient(app):
        deadline = time.monotonic() + 15
        while metrics.BACKGROUND_RUNS.labels("retention", "ok")._value.get() == ok_before:
            assert time.monotonic() < deadline, "no retention pass was counted"
            time.sleep(0.1)
    # Leaving the TestClient ran the lifespan shutdown: the loops were cancelled and awaited.
    assert metrics.BACKGROUND_DURATION.labels("retention")._sum.get() > 0


def test_a_failed_background_pass_is_counted_and_re_raised():
    before = metrics.BACKGROUND_RUNS.labels("retention", "failed")._value.get()
    with pytest.raises(RuntimeError), metrics.background_pass("retention"):
        raise RuntimeError("database down")
    assert metrics.BACKGROUND_RUNS.labels("retention", "failed")._value.get() == before + 1


@pytest.fixture
def issue_scim_token(db):
    from deskgate.services import scim_credentials
    from deskgate.store.base import utcnow
    from deskgate.store.models import Account

    def issue(account_id: str) -> str:
        credentials = scim_credentials.issue(
            db, db.get(Account, account_id), base_url="http://testserver", now=utcnow()
        )
        db.commit()
        return credentials.token

    return issue


def test_readyz_is_503_before_the_first_migration(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    empty = make_engine(url)
    app = create_app(settings.model_copy(update={"database_url": url}), engine=empty)
    with TestClient(app) as client:
        response = client.get("/readyz")
    empty.dispose()
    assert response.status_code == 503
    assert response.json()["reason"].startswith(
        "database schema at no revision, this code expects "
    )


def test_an_unexpected_error_is_the_500_page_with_the_request_id_and_headers(app, logs):
    """A bug in a route must still answer the error page, with the balancer's X-Request-ID
    (to find the log line) and the security headers."""
    from fastapi.testclient import TestClient

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom-for-test", boom)
    with TestClient(app, follow_redirects=False) as client:
        response = client.get("/boom-for-test", headers={"X-Request-ID": "lb-req-42"})
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "a bug" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "lb-req-42"
    assert response.headers["x-content-type-options"] == "nosniff"
    line = next(line for line in logs.requests() if line["request_id"] == "lb-req-42")
    assert line["status"] == 500
