"""Concurrent sign-ins over real HTTP: none fails, and JIT never creates an agent twice."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, select

from deskgate.config import load_settings
from deskgate.store.models import Agent, AgentSession
from deskgate.web.app import create_app

from helpers import post_form, race, sign_in
from support.server import serve_app
from test_saml_acs import SSOAccount, idp_metadata


def test_simultaneous_sign_ins_all_succeed_and_jit_creates_each_agent_once(
    client, make_account, db, engine, database_url
):
    account = make_account()
    sign_in(client, account.admin_email)
    post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "okta",
            "enabled": "on",
            "metadata_xml": idp_metadata(),
            "allow_idp_initiated": "on",
            "jit_enabled": "on",
            "jit_role": "agent",
        },
    )
    # The entity ID and ACS in the responses must name the live server's address.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        load_settings({}, database_url=database_url, base_url=base, secret_key="x" * 32),
        engine=engine,
    )
    sso = SSOAccount(client, account, db)
    sso.acs, sso.entity = (u.replace("http://testserver", base) for u in (sso.acs, sso.entity))
    # 12 sign-ins at once: 4 agents, each signing in from 3 browsers; all new to deskgate (JIT).
    emails = [f"racer{n % 4}@example.com" for n in range(12)]
    responses_xml = [
        sso.response(
            sso.spec(
                name_id=email,
                attributes={"email": (email,), "firstName": ("R",), "lastName": (str(n),)},
            )
        )
        for n, email in enumerate(emails)
    ]
    with serve_app(app, port=port):
        results = race(
            12,
            lambda c, n: c.post(
                f"{base}{urlsplit(sso.acs).path}", data={"SAMLResponse": responses_xml[n]}
            ),
        )
    assert sorted(r.status_code for r in results) == [303] * 12, [
        r.text[:200] for r in results if r.status_code != 303
    ]
    db.rollback()
    for email in set(emails):
        assert (
            db.scalar(
                select(func.count()).select_from(Agent).where(Agent.email_normalized == email)
            )
            == 1
        )
    assert db.scalar(select(func.count()).select_from(AgentSession)) == 12 + 1  # + the admin's
