"""Malformed metadata URLs and unusable pasted metadata are a clear 4xx (web form) or exit 2
(CLI), never a 500 or a traceback, and nothing is stored."""

from __future__ import annotations

import html

import pytest
from click.testing import CliRunner

from deskgate.cli import main
from deskgate.store import certificates as certificate_store
from deskgate.store.models import SSOConnection

from helpers import post_form, sign_in
from saml import samlfactory as f
from web.test_saml_acs import IDP_ENTITY, idp_metadata

BAD_URLS = [
    ("http://[::1", "is not a valid URL"),
    ("https://idp.example.test:99999/md", "has port 99999"),
    (f"https://{'a' * 64}.example.test/md", "is not a valid host name"),
]
SPACE_IN_LOCATION = f.idp_metadata_xml(
    entity_id=IDP_ENTITY, sso_url="https://idp.example.test/s so"
)
JAVASCRIPT_LOCATION = f.idp_metadata_xml(
    entity_id=IDP_ENTITY,
    sso_url="javascript:alert(document.cookie)",
    binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
)
BAD_METADATA = [
    (SPACE_IN_LOCATION, "'https://idp.example.test/s so' contains whitespace"),
    (JAVASCRIPT_LOCATION, "'javascript:alert(document.cookie)' is not an absolute https URL"),
]


def _stored(db, account_id: str):  # type: ignore[no-untyped-def]
    db.rollback()
    connection = db.get(SSOConnection, account_id)
    if connection is None:
        return None
    return (
        connection.enabled,
        connection.idp_sso_url,
        connection.metadata_url,
        certificate_store.pems(db, account_id),
    )


@pytest.fixture
def admin(client, make_account, db):  # type: ignore[no-untyped-def]
    account = make_account()
    sign_in(client, account.admin_email)
    saved = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {"idp_kind": "okta", "enabled": "on", "metadata_xml": idp_metadata()},
    )
    assert saved.status_code == 200, saved.text
    return account


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        *[("metadata_url", url, message) for url, message in BAD_URLS],
        *[("metadata_xml", xml, message) for xml, message in BAD_METADATA],
    ],
)
def test_security_form_refuses_with_a_clear_400(client, db, admin, field, value, message):
    before = _stored(db, admin.id)
    response = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {"idp_kind": "okta", "enabled": "on", field: value},
    )
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    assert _stored(db, admin.id) == before


@pytest.fixture
def configure(engine, database_url, make_account):  # type: ignore[no-untyped-def]
    account = make_account()
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(
            main,
            ["sso", "configure", account.id, "--idp", "okta", *args],
            env={"DESKGATE_DATABASE_URL": database_url},
            catch_exceptions=False,
        )

    invoke.account = account  # type: ignore[attr-defined]
    return invoke


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_cli_refuses_a_malformed_url_with_exit_2(configure, db, url, message):
    result = configure("--metadata-url", url)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert _stored(db, configure.account.id) is None


@pytest.mark.parametrize(("xml", "message"), BAD_METADATA)
def test_cli_refuses_unusable_metadata_with_exit_2(configure, db, tmp_path, xml, message):
    path = tmp_path / "metadata.xml"
    path.write_text(xml)
    result = configure("--metadata-file", str(path))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert _stored(db, configure.account.id) is None
