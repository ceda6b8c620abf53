"""`deskgate certificates …`: the certificate watch, for cron (every serving node also runs it)."""

from __future__ import annotations

import click

from deskgate.cli_support import load, print_json
from deskgate.services import certificate_watch
from deskgate.store import migrate
from deskgate.store.base import make_engine, make_sessionmaker, utcnow


@click.group("certificates")
def certificates() -> None:
    """IdP and SP certificates: expiry warnings, rollover overlaps."""


@certificates.command("check")
def check() -> None:
    """Check every connection's certificates now; prints what is due and what this run recorded.

    Warnings (events certificate.expiring at 90/30/7/1 days, certificate.expired) are recorded
    once per certificate and threshold, whichever node or cron run gets there first; certificates
    kept past their rollover overlap are removed.
    """
    settings = load()
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        report = certificate_watch.run(make_sessionmaker(engine), utcnow())
    finally:
        engine.dispose()
    print_json(report.to_json())
