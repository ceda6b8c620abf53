"""certificate lifecycle: idp_certificates rows (from sso_connections.idp_certificates),
certificate_notices, and the SP key rollover columns

Revision ID: 0008_certs
Revises: 0007_events
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from deskgate import ids
from deskgate.store.base import UTCDateTime

revision: str = "0008_certs"
down_revision: str | None = "0007_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SP_COLUMNS = (
    ("sp_next_private_key_pem", sa.Text()),
    ("sp_next_certificate_pem", sa.Text()),
    ("sp_previous_private_key_pem", sa.Text()),
    ("sp_previous_certificate_pem", sa.Text()),
    ("sp_previous_until", UTCDateTime()),
)


def upgrade() -> None:
    op.create_table(
        "idp_certificates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=95), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("not_after", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("keep_until", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "source IN ('metadata', 'admin', 'previous_metadata')",
            name="ck_idp_certificates_source",
        ),
        # To the account, not the connection: SQLite rebuilds sso_connections in batch
        # migrations (drop and re-create), which would cascade to these rows.
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_idp_certificates_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_idp_certificates"),
        sa.UniqueConstraint(
            "account_id", "fingerprint", name="uq_idp_certificates_account_id_fingerprint"
        ),
    )
    op.create_table(
        "certificate_notices",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("usage", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=95), nullable=False),
        sa.Column("threshold_days", sa.Integer(), nullable=False),
        sa.Column("notified_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_certificate_notices_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "usage", "fingerprint", "threshold_days", name="pk_certificate_notices"
        ),
    )
    _copy_certificates()
    with op.batch_alter_table("sso_connections") as batch:
        for name, type_ in _SP_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.drop_column("idp_certificates")


def _copy_certificates() -> None:
    """Each PEM of each connection's JSON list becomes a row (source metadata). A PEM that is
    not a certificate could not have verified anything; it is left out."""
    from deskgate.saml.certs import load_certificate, normalize_certificate_pem, sha256_fingerprint

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT account_id, idp_certificates FROM sso_connections"))
    now = dt.datetime.now(dt.UTC)
    table = sa.table(
        "idp_certificates",
        *(sa.column(name) for name in ("id", "account_id", "certificate_pem", "fingerprint")),
        *(sa.column(name) for name in ("subject", "source")),
        *(sa.column(name, UTCDateTime()) for name in ("not_before", "not_after", "added_at")),
    )
    new_rows: list[dict[str, Any]] = []
    for account_id, stored in rows:
        pems = stored if isinstance(stored, list) else json.loads(stored or "[]")
        seen: set[str] = set()
        for pem in pems:
            try:
                normalized = normalize_certificate_pem(pem)
                certificate = load_certificate(normalized)
                fingerprint = sha256_fingerprint(normalized)
            except (TypeError, ValueError):
                continue
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            new_rows.append(
                {
                    "id": ids.new_id(ids.IDP_CERTIFICATE),
                    "account_id": account_id,
                    "certificate_pem": normalized,
                    "fingerprint": fingerprint,
                    "subject": certificate.subject.rfc4514_string()[:1024],
                    "not_before": certificate.not_valid_before_utc,
                    "not_after": certificate.not_valid_after_utc,
                    "source": "metadata",
                    "added_at": now,
                }
            )
    if new_rows:
        conn.execute(sa.insert(table), new_rows)


def downgrade() -> None:
    with op.batch_alter_table("sso_connections") as batch:
        batch.add_column(
            sa.Column("idp_certificates", sa.JSON(), nullable=False, server_default="[]")
        )
        for name, _ in _SP_COLUMNS:
            batch.drop_column(name)
    op.drop_table("certificate_notices")
    op.drop_table("idp_certificates")
