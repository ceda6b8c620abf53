"""The automatic refresh of IdP metadata given by URL (every node, hourly; each connection once
a day)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from deskgate.errors import DeskgateError
from deskgate.saml.metadata import ParsedMetadata
from deskgate.services import certificates, events
from deskgate.services.event_snapshots import sso_snapshot
from deskgate.services.sso import apply_metadata, parse_metadata_or_explain
from deskgate.store import sso as sso_store

METADATA_MAX_AGE = dt.timedelta(days=1)
METADATA_RETRY_AFTER = dt.timedelta(hours=6)
"""After a failed refresh, the connection waits this long before the next try."""
_MAX_ERROR_CHARS = 1000
REFRESH_ACTOR = events.actors.system("metadata refresh")
log = logging.getLogger("deskgate.sso")


def refresh_stale_metadata(
    sessions: Callable[[], Session],
    fetch: Callable[[str], bytes],
    now: dt.datetime,
    *,
    allow_http: bool = False,
    certificate_overlap: dt.timedelta = certificates.DEFAULT_OVERLAP,
) -> int:
    """Re-read IdP metadata given by URL when older than a day; return how many were refreshed.

    Each connection is refreshed on its own: its fetch runs outside any transaction (no
    database lock is held while waiting on the network), then its result is written in its own
    transaction. Whatever goes wrong with one connection (a refusal, an unexpected exception, a
    failed write) is recorded on that connection and never stops the others. A failed refresh
    keeps the working configuration, records the reason and the time for the Security page,
    and is retried after METADATA_RETRY_AFTER. `allow_http`: the `allow_private_metadata_urls`
    setting; certificates the metadata dropped stay for `certificate_overlap`.
    """
    with sessions() as db:
        due = [
            (row.account_id, row.metadata_url)
            for row in sso_store.connections_with_metadata_url(
                db, older_than=now - METADATA_MAX_AGE, failed_before=now - METADATA_RETRY_AFTER
            )
        ]
    refreshed = 0
    for account_id, url in due:
        if url is None:
            continue
        parsed, error = _read_metadata(account_id, url, fetch, now, allow_http)
        try:
            refreshed += _record_refresh(
                sessions, account_id, url, parsed, error, now, certificate_overlap
            )
        except Exception:  # noqa: BLE001 - one connection's write must not stop the others
            log.exception("Recording the metadata refresh of account %s failed", account_id)
    return refreshed


def _read_metadata(
    account_id: str, url: str, fetch: Callable[[str], bytes], now: dt.datetime, allow_http: bool
) -> tuple[ParsedMetadata | None, str | None]:
    """(parsed, None), or (None, why not) for the admin."""
    try:
        return parse_metadata_or_explain(fetch(url), now, allow_http=allow_http), None
    except DeskgateError as problem:
        return None, _bounded_reason(problem.message)
    except Exception as problem:  # noqa: BLE001 - any failure stays this connection's
        log.exception("Refreshing the IdP metadata of account %s failed", account_id)
        return (
            None,
            f"unexpected error ({type(problem).__name__}); check the metadata URL and save it again",
        )


def _bounded_reason(text: str) -> str:
    # Shown to the admin and stored in a text column: no control characters (PostgreSQL refuses
    # NUL), bounded length.
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned if len(cleaned) <= _MAX_ERROR_CHARS else cleaned[: _MAX_ERROR_CHARS - 1] + "…"


def _record_refresh(
    sessions: Callable[[], Session],
    account_id: str,
    url: str,
    parsed: ParsedMetadata | None,
    error: str | None,
    now: dt.datetime,
    certificate_overlap: dt.timedelta,
) -> int:
    with sessions() as db:
        connection = sso_store.connection(db, account_id)
        if connection is None or connection.metadata_url != url:
            return 0  # changed meanwhile by an admin
        if parsed is not None:
            before = sso_snapshot(connection)
            apply_metadata(
                db,
                connection,
                parsed,
                now,
                actor=REFRESH_ACTOR,
                certificate_overlap=certificate_overlap,
            )
            after = sso_snapshot(connection)
            if after != before:  # a daily re-read of the same metadata is no event
                events.record_change(
                    db, account_id, "sso.metadata_refreshed", REFRESH_ACTOR, before, after
                )
        else:
            connection.metadata_error = error
            connection.metadata_refresh_failed_at = now
        db.commit()
    return 1 if parsed is not None else 0
