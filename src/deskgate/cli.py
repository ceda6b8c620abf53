"""Command line: `deskgate serve`, `deskgate db upgrade`, accounts, agents and SSO setup.

Bad input exits with status 2 and one line on stderr, and writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from deskgate import logs
from deskgate.cli_apikeys import apikeys
from deskgate.cli_certificates import certificates as certificates_group
from deskgate.cli_domains import domains
from deskgate.cli_events import events_group
from deskgate.cli_support import fail, print_json, transaction
from deskgate.cli_support import load as cli_settings
from deskgate.cli_webhooks import webhooks_group
from deskgate.errors import DeskgateError
from deskgate.services import accounts as account_service
from deskgate.services import demo as demo_service
from deskgate.services import metadata_fetch, retention, scim_credentials
from deskgate.services import sso as sso_service
from deskgate.store import accounts as account_store
from deskgate.store import agents as agent_store
from deskgate.store import migrate
from deskgate.store.base import make_engine, make_sessionmaker, utcnow
from deskgate.store.models import IdPKind


@click.group()
@click.version_option(package_name="deskgate")
def main() -> None:
    """deskgate: agent accounts with SAML single sign-on and SCIM provisioning."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes, each on its own SO_REUSEPORT socket. "
    "[default: DESKGATE_WORKERS, else one per CPU core]",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Create a 'Demo' account on Scale Plus (once) and print its sign-in.",
)
def serve(host: str, port: int, workers: int | None, demo: bool) -> None:
    """Apply migrations, then serve the web app."""
    from deskgate.web import server

    if "DESKGATE_BASE_URL" not in os.environ:
        # Absolute URLs (ACS, entity IDs) must name where we listen; workers inherit this.
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        os.environ["DESKGATE_BASE_URL"] = f"http://{shown_host}:{port}"
    settings = cli_settings()
    if demo:
        with transaction(settings) as db:
            credentials = demo_service.ensure_demo_account(db)
        click.echo(
            f"\n  deskgate demo is at {settings.base_url}/login\n"
            f"  admin: {credentials.email}\n  password: {credentials.password}\n"
            f"  ({'created the Demo account' if credentials.created else 'a fresh password for the existing Demo admin'})\n"
        )
    else:
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        engine.dispose()
    server.serve(
        "deskgate.web.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers or server.default_workers(),
        proxy_headers=True,
        log_level=settings.log_level.lower(),
        log_config=logs.logging_config(settings.log_level),  # JSON lines; no uvicorn access log
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        metrics_bind=settings.metrics_address,
    )


main.add_command(events_group)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = cli_settings()
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    click.echo("database is up to date")


@main.group()
def accounts() -> None:
    """Accounts."""


@accounts.command("create")
@click.option("--name", required=True)
@click.option("--plan", required=True, help="free, scale or scale-plus")
@click.option("--admin-email", required=True)
@click.option("--admin-first-name", required=True, help="the admin's first name")
@click.option("--admin-last-name", required=True, help="the admin's last name")
@click.option("--admin-password", default=None, help="generated and printed when omitted")
def accounts_create(
    name: str,
    plan: str,
    admin_email: str,
    admin_first_name: str,
    admin_last_name: str,
    admin_password: str | None,
) -> None:
    """Create an account with its first admin; prints JSON."""
    with transaction(cli_settings()) as session:
        created = account_service.create_account(
            session,
            name=name,
            plan=plan,
            admin_email=admin_email,
            admin_first_name=admin_first_name,
            admin_last_name=admin_last_name,
            admin_password=admin_password,
        )
        result: dict[str, Any] = {
            "account_id": created.account.id,
            "sso_token": created.account.sso_token,
            "admin_email": created.admin.email,
        }
        if created.generated_password is not None:
            result["admin_password"] = created.generated_password
    print_json(result)


@main.group()
def agents() -> None:
    """Agents."""


@agents.command("list")
@click.argument("account_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON (the default and only format)")
def agents_list(account_id: str, as_json: bool) -> None:
    """List an account's agents."""
    with transaction(cli_settings()) as session:
        if account_store.get(session, account_id) is None:
            fail(f"no account with id {account_id}")
        rows = [
            {
                "id": a.id,
                "email": a.email,
                "first_name": a.first_name,
                "last_name": a.last_name,
                "role": a.role,
                "active": a.active,
                "source": a.source,
            }
            for a in agent_store.list_for_account(session, account_id)
        ]
    print_json(rows)


@main.group("retention")
def retention_group() -> None:
    """Pruning of expired and old rows (every serving node also does this on a timer)."""


@retention_group.command("run")
def retention_run() -> None:
    """Run one retention pass now; prints how many rows of each table were deleted."""
    settings = cli_settings()
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        counts = retention.run(
            make_sessionmaker(engine), retention.RetentionPolicy.from_settings(settings), utcnow()
        )
    finally:
        engine.dispose()
    print_json(counts)


@main.group()
def sso() -> None:
    """Single sign-on."""


@sso.command("configure")
@click.argument("account_id")
@click.option("--idp", "idp_kind", required=True, type=click.Choice([k.value for k in IdPKind]))
@click.option("--metadata-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--metadata-url", default=None)
def sso_configure(
    account_id: str, idp_kind: str, metadata_file: Path | None, metadata_url: str | None
) -> None:
    """Connect an account to its IdP and turn SSO on; prints the values to give the IdP."""
    if (metadata_file is None) == (metadata_url is None):
        fail("give exactly one of --metadata-file or --metadata-url")
    settings = cli_settings()
    metadata_xml = fetched = None
    try:
        if metadata_file is not None:
            metadata_xml = metadata_file.read_text(encoding="utf-8")
        else:
            fetched = metadata_fetch.fetch_metadata(
                metadata_url or "", allow_private=settings.allow_private_metadata_urls
            )
    except (OSError, UnicodeDecodeError) as problem:
        fail(f"cannot read {metadata_file}: {problem}")
    except DeskgateError as problem:
        fail(problem.message)
    with transaction(settings) as session:
        account = account_store.get(session, account_id)
        if account is None:
            fail(f"no account with id {account_id}")
        connection = sso_service.ensure_connection(session, account, utcnow())
        saved = sso_service.save_settings(
            session,
            account,
            sso_service.SSOSettingsForm(
                enabled=True,
                idp_kind=idp_kind,
                metadata_xml=metadata_xml,
                metadata_url=metadata_url,
                allow_idp_initiated=connection.allow_idp_initiated,
                jit_enabled=connection.jit_enabled,
                jit_role=connection.jit_role,
                require_sso=connection.require_sso,
                allow_sha1=connection.allow_sha1,
            ),
            now=utcnow(),
            base_url=settings.base_url,
            fetched_metadata=fetched,
            allow_private_urls=settings.allow_private_metadata_urls,
            certificate_overlap=settings.certificate_overlap,
        )
        result = {
            "acs_url": saved.urls.acs_url,
            "sp_entity_id": saved.urls.sp_entity_id,
            "sp_metadata_url": saved.urls.sp_metadata_url,
            "sso_login_url": saved.urls.login_url,
            "scim_base_url": scim_credentials.scim_base_url(settings.base_url, account),
            "scim_token": saved.scim.token if saved.scim else None,
        }
        if saved.scim is None:
            result["scim_token_note"] = (
                "unchanged: the account already has a SCIM token (rotate it on the Security page)"
            )
    print_json(result)


main.add_command(certificates_group)
main.add_command(apikeys)
main.add_command(domains)
main.add_command(webhooks_group)
