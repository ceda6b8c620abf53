"""deskgate as the bench runs it: a migrated database, an account set up through the services
(SCIM token, SSO connection), and the app under uvicorn.

Everything here goes through deskgate's own services and store (`create_account`,
`scim_credentials.issue`, `sso.save_settings`, `migrate.upgrade`), as an admin would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from deskgate.services import accounts, scim_credentials, sso
from deskgate.store import migrate
from deskgate.store.base import make_engine, make_sessionmaker, utcnow

from bench import procs

ADMIN_PASSWORD = "bench-admin-password-not-secret"


@dataclass(frozen=True)
class BenchAccount:
    id: str
    sso_token: str
    scim_token: str

    def scim_base(self, origin: str) -> str:
        return f"{origin}/scim/v2/{self.id}"

    def acs_url(self, origin: str) -> str:
        return f"{origin}/api/v1/sso/{self.sso_token}/acs/okta"

    def sp_entity_id(self, origin: str) -> str:
        return f"{origin}/api/v1/sso/{self.sso_token}/metadata/okta"


def migrated_engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    return engine


def create_account(
    engine: Engine, origin: str, *, name: str = "Bench", idp_metadata: str | None = None
) -> BenchAccount:
    """A Scale Plus account with a SCIM token, and (given IdP metadata) SSO on with Okta,
    IdP-initiated sign-in and JIT allowed."""
    sessions = make_sessionmaker(engine)
    now = utcnow()
    with sessions() as db:
        created = accounts.create_account(
            db,
            name=name,
            plan="scale-plus",
            admin_email=f"admin-{secrets.token_hex(4)}@bench.example",
            admin_password=ADMIN_PASSWORD,
            admin_first_name="Bench",
            admin_last_name="Admin",
        )
        account = created.account
        credentials = scim_credentials.issue(db, account, base_url=origin, now=now)
        if idp_metadata is not None:
            sso.save_settings(
                db,
                account,
                sso.SSOSettingsForm(
                    enabled=True,
                    idp_kind="okta",
                    metadata_xml=idp_metadata,
                    allow_idp_initiated=True,
                    jit_enabled=True,
                ),
                now=now,
                base_url=origin,
            )
        db.commit()
        return BenchAccount(
            id=account.id, sso_token=account.sso_token, scim_token=credentials.token
        )


def serve(
    database_url: str,
    *,
    port: int,
    workers: int,
    log_dir: Path,
    label: str,
    reuse_port: bool = True,
) -> procs.Server:
    """deskgate under uvicorn (uvloop, httptools, no access log) on 127.0.0.1:`port`, each worker
    on its own SO_REUSEPORT socket (deskgate.web.server, as `deskgate serve` does) unless `reuse_port` is False."""
    env = {
        "DESKGATE_DATABASE_URL": database_url,
        "DESKGATE_BASE_URL": f"http://{procs.HOST}:{port}",
        "DESKGATE_SECRET_KEY": "bench-secret-key-not-for-production",
        "DESKGATE_LOG_LEVEL": "warning",
    }
    if reuse_port:
        env["PYTHONPATH"] = procs.repo_pythonpath()
    server = procs.start(
        f"deskgate ({label}, {workers} workers)",
        procs.uvicorn_argv(
            "deskgate.web.asgi:app_from_environment",
            port=port,
            workers=workers,
            reuse_port=reuse_port,
        ),
        log_path=log_dir / f"deskgate-{label}.log",
        env=env,
        port=port,
        ready_url="{origin}/healthz",
    )
    try:
        procs.wait_listeners(server, workers if reuse_port else 1)
    except BaseException:
        server.stop()
        raise
    return server
