"""SCIM identity model: userName apart from the agent's emails; sign-in matching per connection

Existing agents keep their email as userName and get it as their one primary work email.
SSO connections keep matching by email, which is what they did before.

Revision ID: 0004_scimid
Revises: 0003_retention
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_scimid"
down_revision: str | None = "0003_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("scim_deleted_at IS NULL")


def _one_work_email() -> str:
    """SQL for [{"value": email, "type": "work", "primary": true}] on this dialect."""
    if op.get_bind().dialect.name == "postgresql":
        return (
            "json_build_array(json_build_object('value', email, 'type', 'work', 'primary', true))"
        )
    return "json_array(json_object('value', email, 'type', 'work', 'primary', json('true')))"


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_name", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("user_name_normalized", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("emails", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE agents SET user_name = email, user_name_normalized = email_normalized, "
        f"emails = {_one_work_email()}"
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.alter_column("user_name", existing_type=sa.String(length=400), nullable=False)
        batch_op.alter_column(
            "user_name_normalized", existing_type=sa.String(length=400), nullable=False
        )
        batch_op.alter_column("emails", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_constraint("uq_agents_account_id_email_normalized", type_="unique")
        batch_op.create_index(
            "ix_agents_account_id_email_normalized",
            ["account_id", "email_normalized"],
            unique=False,
        )
        batch_op.create_index(
            "uq_agents_account_id_user_name_normalized",
            ["account_id", "user_name_normalized"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )

    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sign_in_match", sa.String(length=20), nullable=False, server_default="email")
        )
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.alter_column(
            "sign_in_match", existing_type=sa.String(length=20), server_default=None
        )
        batch_op.create_check_constraint("sign_in_match", "sign_in_match IN ('user_name', 'email')")


def downgrade() -> None:
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.drop_constraint("ck_sso_connections_sign_in_match", type_="check")
        batch_op.drop_column("sign_in_match")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index("uq_agents_account_id_user_name_normalized")
        batch_op.drop_index("ix_agents_account_id_email_normalized")
        batch_op.create_unique_constraint(
            "uq_agents_account_id_email_normalized", ["account_id", "email_normalized"]
        )
        batch_op.drop_column("emails")
        batch_op.drop_column("user_name_normalized")
        batch_op.drop_column("user_name")
