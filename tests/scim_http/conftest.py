"""Fixtures for the SCIM API tests: an account with a SCIM token, clients bound to its base URL
(in-process through TestClient, or over real HTTP against uvicorn), and the client corpus.

The corpus (Okta's SCIM docs and test scripts, Microsoft's Postman collection) is read from
``$DESKGATE_SAML_CORPUS`` (default ``<repo>/../shared/saml-corpus``); tests that need it are
skipped when it is absent. Nothing is copied from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from deskgate.services import scim_credentials
from deskgate.store.base import utcnow
from deskgate.store.models import Account, ScimRequestLog

from scim_helpers import ScimAccount
from support.server import serve_app

REPO_ROOT = Path(__file__).resolve().parents[2]
OKTA_FILES = "okta-scim/packages/@okta/vuepress-site/.vuepress/public/standards/SCIM/SCIMFiles"
OKTA_DOC = "okta-scim/packages/@okta/vuepress-site/docs/reference/scim/scim-20/index.md"
POSTMAN = "ms-scimreferencecode/PostmanCollection.json"


@pytest.fixture
def web(client: TestClient) -> TestClient:
    """A browser on the web pages (cookies, redirects not followed)."""
    return client


@pytest.fixture
def new_web(new_client: Callable[[], TestClient]) -> Callable[[], TestClient]:
    """More browsers (separate cookie jars)."""
    return new_client


@pytest.fixture
def issue_token(db: Session) -> Callable[[str], str]:
    def issue(account_id: str) -> str:
        account = db.get(Account, account_id)
        assert account is not None
        credentials = scim_credentials.issue(
            db, account, base_url="http://testserver", now=utcnow()
        )
        db.commit()
        return credentials.token

    return issue


@pytest.fixture
def make_scim_account(
    make_account: Any, issue_token: Callable[[str], str]
) -> Callable[..., ScimAccount]:
    def make(**kwargs: Any) -> ScimAccount:
        account = make_account(**kwargs)
        return ScimAccount(
            id=account.id,
            admin_email=account.admin_email,
            admin_id=account.admin_id,
            token=issue_token(account.id),
            base_path=f"/scim/v2/{account.id}",
        )

    return make


@pytest.fixture
def scim_account(make_scim_account: Callable[..., ScimAccount]) -> ScimAccount:
    return make_scim_account()


@pytest.fixture
def scim_for(app: FastAPI) -> Iterator[Callable[..., TestClient]]:
    """``scim_for(account, auth=...)``: an in-process client whose relative URLs start at the
    account's SCIM base URL. ``auth`` is the Authorization header (default ``Bearer <token>``)."""
    with ExitStack() as stack:

        def make(account: ScimAccount, auth: str | None = None, **headers: str) -> TestClient:
            client = TestClient(
                app,
                base_url=f"http://testserver{account.base_path}/",
                headers={
                    "Authorization": auth if auth is not None else f"Bearer {account.token}",
                    **headers,
                },
            )
            # Entered: one event-loop thread for all its requests, not one per request.
            return stack.enter_context(client)

        yield make


@pytest.fixture
def scim(scim_for: Callable[..., TestClient], scim_account: ScimAccount) -> TestClient:
    """An in-process SCIM client of `scim_account` (Bearer token)."""
    return scim_for(scim_account)


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn server; yields its origin (http://127.0.0.1:PORT)."""
    with serve_app(app) as origin:
        yield origin


@pytest.fixture
def scim_log(db: Session) -> Callable[[str], list[ScimRequestLog]]:
    """``scim_log(account_id)``: the account's request log, oldest first (what was committed)."""

    def read(account_id: str) -> list[ScimRequestLog]:
        db.rollback()
        return list(
            db.scalars(
                select(ScimRequestLog)
                .where(ScimRequestLog.account_id == account_id)
                .order_by(ScimRequestLog.at, ScimRequestLog.id)
            )
        )

    return read


# --- corpus -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus() -> Path:
    root = Path(os.environ.get("DESKGATE_SAML_CORPUS", REPO_ROOT.parent / "shared" / "saml-corpus"))
    if not root.is_dir():
        pytest.skip(f"SCIM client corpus not found at {root} (set DESKGATE_SAML_CORPUS)")
    return root


@pytest.fixture(scope="session")
def okta_spec_test(corpus: Path) -> dict[str, Any]:
    """Okta's "SCIM 2.0 SPEC Test" (Runscope export)."""
    return json.loads(
        (corpus / OKTA_FILES / "Okta-SCIM-20-SPEC-Test.json").read_text(encoding="utf-8")
    )


@pytest.fixture(scope="session")
def okta_doc(corpus: Path) -> str:
    """Okta's SCIM 2.0 reference page (what Okta sends)."""
    return (corpus / OKTA_DOC).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def postman(corpus: Path) -> dict[str, Any]:
    """Microsoft's SCIMReferenceCode Postman collection."""
    return json.loads((corpus / POSTMAN).read_text(encoding="utf-8"))
