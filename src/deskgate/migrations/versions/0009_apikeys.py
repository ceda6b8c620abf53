"""api_keys, and the index that lists agents deleted over SCIM in creation order

Revision ID: 0009_apikeys
Revises: 0008_certs
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from deskgate.store.base import UTCDateTime

revision: str = "0009_apikeys"
down_revision: str | None = "0008_certs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_api_keys_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_index(
        "ix_agents_deleted_listing",
        "agents",
        ["account_id", "created_at", "id"],
        sqlite_where=sa.text("scim_deleted_at IS NOT NULL"),
        postgresql_where=sa.text("scim_deleted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_agents_deleted_listing", table_name="agents")
    op.drop_table("api_keys")
