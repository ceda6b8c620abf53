"""retention: indexes for pruning, per-source caps on anonymous writes

Revision ID: 0003_retention
Revises: 0002_metadata
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_retention"
down_revision: str | None = "0002_metadata"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_expires_at", ["expires_at"], unique=False)
    with op.batch_alter_table("saml_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ip", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_saml_requests_account_id_ip_expires_at",
            ["account_id", "ip", "expires_at"],
            unique=False,
        )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("suppressed", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            "ix_login_attempts_account_id_ip_at", ["account_id", "ip", "at"], unique=False
        )
        batch_op.create_index("ix_login_attempts_at", ["at"], unique=False)
    with op.batch_alter_table("scim_request_log", schema=None) as batch_op:
        batch_op.create_index("ix_scim_request_log_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scim_request_log", schema=None) as batch_op:
        batch_op.drop_index("ix_scim_request_log_at")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_at")
        batch_op.drop_index("ix_login_attempts_account_id_ip_at")
        batch_op.drop_column("suppressed")
    with op.batch_alter_table("saml_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_saml_requests_account_id_ip_expires_at")
        batch_op.drop_column("ip")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_expires_at")
