"""sso_connections.metadata_refresh_failed_at: when the last automatic metadata refresh failed

Revision ID: 0002_metadata
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import deskgate.store.base

revision: str = "0002_metadata"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sso_connections") as batch:
        batch.add_column(
            sa.Column(
                "metadata_refresh_failed_at",
                deskgate.store.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sso_connections") as batch:
        batch.drop_column("metadata_refresh_failed_at")
