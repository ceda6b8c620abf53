"""scim_request_log.ip: caps what unauthenticated SCIM requests from one source can write

Revision ID: 0005_scim_log_ip
Revises: 0004_scimid
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_scim_log_ip"
down_revision: str | None = "0004_scimid"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scim_request_log") as batch:
        batch.add_column(sa.Column("ip", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_scim_request_log_unauthenticated",
        "scim_request_log",
        ["account_id", "ip", "at"],
        sqlite_where=sa.text("status = 401"),
        postgresql_where=sa.text("status = 401"),
    )


def downgrade() -> None:
    op.drop_index("ix_scim_request_log_unauthenticated", table_name="scim_request_log")
    with op.batch_alter_table("scim_request_log") as batch:
        batch.drop_column("ip")
