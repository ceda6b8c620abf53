"""The per-worker cache of parsed SSO configurations (services/sso_config.py): a change written
by any node is used at the next sign-in, and no decision is ever taken from memory."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from deskgate.services.certificates import new_row
from deskgate.store.models import IdPCertificate, SSOConnection

from saml import samlfactory as f
from web.test_saml_acs import (
    last_attempt,
    path_of,
    post_acs,
    sso_account,  # noqa: F401  (the fixture)
)


def test_certificates_saved_by_another_node_are_used_at_the_next_sign_in(sso_account, new_client):
    assert (
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response()).status_code == 303
    )
    # Another node rolls the IdP certificate over (as a save or a metadata refresh does).
    rolled = f.keypair("rolled-over idp")
    sso_account.db.rollback()
    connection = sso_account.db.get(SSOConnection, sso_account.account.id)
    now = dt.datetime.now(dt.UTC)
    sso_account.db.execute(
        delete(IdPCertificate).where(IdPCertificate.account_id == connection.account_id)
    )
    sso_account.db.add(new_row(connection.account_id, rolled.certificate_pem, "metadata", now))
    connection.updated_at = now
    sso_account.db.commit()

    old_key = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert old_key.status_code == 403
    assert "dg_session" not in old_key.headers.get("set-cookie", "")
    assert not last_attempt(sso_account.db).succeeded
    new_key = post_acs(new_client(), path_of(sso_account.acs), sso_account.response(idp_key=rolled))
    assert new_key.status_code == 303, new_key.text


def test_turning_sso_off_refuses_the_next_sign_in_even_with_the_configuration_cached(
    sso_account, new_client
):
    assert (
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response()).status_code == 303
    )
    sso_account.set_option(enabled=False)  # updated_at left as it was: still refused
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert response.status_code == 403
    assert "not turned on" in response.text
