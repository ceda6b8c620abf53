"""initial schema

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import deskgate.store.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=False),
        sa.Column("sso_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "plan IN ('free', 'scale', 'scale-plus')", name=op.f("ck_accounts_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("sso_token", name=op.f("uq_accounts_sso_token")),
    )
    op.create_table(
        "failed_sign_ins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email_normalized", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_sign_ins")),
    )
    with op.batch_alter_table("failed_sign_ins", schema=None) as batch_op:
        batch_op.create_index(
            "ix_failed_sign_ins_email_at", ["email_normalized", "at"], unique=False
        )
        batch_op.create_index("ix_failed_sign_ins_ip_at", ["ip", "at"], unique=False)

    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_normalized", sa.String(length=320), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=False),
        sa.Column("last_name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=400), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("external_id", sa.String(length=400), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("locale", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("enterprise", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scim_deleted_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'agent')", name=op.f("ck_agents_role")),
        sa.CheckConstraint("source IN ('password', 'jit', 'scim')", name=op.f("ck_agents_source")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_agents_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint(
            "account_id", "email_normalized", name=op.f("uq_agents_account_id_email_normalized")
        ),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agents_account_id_external_id", ["account_id", "external_id"], unique=False
        )
        batch_op.create_index(
            "ix_agents_scim_listing",
            ["account_id", "scim_deleted_at", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=400), nullable=False),
        sa.Column("display_name_normalized", sa.String(length=400), nullable=False),
        sa.Column("external_id", sa.String(length=400), nullable=True),
        sa.Column("grants_admin", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_groups_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint(
            "account_id",
            "display_name_normalized",
            name=op.f("uq_groups_account_id_display_name_normalized"),
        ),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_groups_account_id_external_id", ["account_id", "external_id"], unique=False
        )

    op.create_table(
        "login_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("agent_id", sa.String(length=40), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_login_attempts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempts_account_id_at", ["account_id", "at"], unique=False)

    op.create_table(
        "saml_requests",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("relay_state", sa.String(length=2048), nullable=True),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_saml_requests_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saml_requests")),
    )
    with op.batch_alter_table("saml_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saml_requests_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "scim_request_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("client", sa.String(length=400), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_scim_request_log_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_request_log")),
    )
    with op.batch_alter_table("scim_request_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scim_request_log_account_id_at", ["account_id", "at"], unique=False
        )

    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_scim_tokens_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scim_tokens_token_hash")),
    )
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scim_tokens_account_id"), ["account_id"], unique=False)

    op.create_table(
        "seen_assertions",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("assertion_id", sa.String(length=256), nullable=False),
        sa.Column("expires_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_seen_assertions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "assertion_id", name=op.f("pk_seen_assertions")),
    )
    with op.batch_alter_table("seen_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_seen_assertions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "sso_connections",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("idp_kind", sa.String(length=10), nullable=False),
        sa.Column("idp_entity_id", sa.String(length=1024), nullable=True),
        sa.Column("idp_sso_url", sa.String(length=2048), nullable=True),
        sa.Column("idp_sso_binding", sa.String(length=100), nullable=True),
        sa.Column("idp_certificates", sa.JSON(), nullable=False),
        sa.Column("metadata_xml", sa.Text(), nullable=True),
        sa.Column("metadata_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "metadata_fetched_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("metadata_error", sa.Text(), nullable=True),
        sa.Column("allow_idp_initiated", sa.Boolean(), nullable=False),
        sa.Column("jit_enabled", sa.Boolean(), nullable=False),
        sa.Column("jit_role", sa.String(length=10), nullable=False),
        sa.Column("require_sso", sa.Boolean(), nullable=False),
        sa.Column("allow_sha1", sa.Boolean(), nullable=False),
        sa.Column("email_domains", sa.JSON(), nullable=False),
        sa.Column("sp_private_key_pem", sa.Text(), nullable=False),
        sa.Column("sp_certificate_pem", sa.Text(), nullable=False),
        sa.Column("updated_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "idp_kind IN ('okta', 'entra', 'google', 'onelogin', 'saml')",
            name=op.f("ck_sso_connections_idp_kind"),
        ),
        sa.CheckConstraint(
            "jit_role IN ('admin', 'agent')", name=op.f("ck_sso_connections_jit_role")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sso_connections_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_sso_connections")),
    )
    op.create_table(
        "sso_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sso_domains_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_sso_domains")),
    )
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_domains_account_id"), ["account_id"], unique=False)

    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_group_members_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_members_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "agent_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_members_agent_id"), ["agent_id"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("created_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", deskgate.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_sessions_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_agent_id"), ["agent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_agent_id"))

    op.drop_table("sessions")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_agent_id"))

    op.drop_table("group_members")
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_domains_account_id"))

    op.drop_table("sso_domains")
    op.drop_table("sso_connections")
    with op.batch_alter_table("seen_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_assertions_expires_at"))

    op.drop_table("seen_assertions")
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_tokens_account_id"))

    op.drop_table("scim_tokens")
    with op.batch_alter_table("scim_request_log", schema=None) as batch_op:
        batch_op.drop_index("ix_scim_request_log_account_id_at")

    op.drop_table("scim_request_log")
    with op.batch_alter_table("saml_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saml_requests_expires_at"))

    op.drop_table("saml_requests")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_account_id_at")

    op.drop_table("login_attempts")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("ix_groups_account_id_external_id")

    op.drop_table("groups")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index("ix_agents_scim_listing")
        batch_op.drop_index("ix_agents_account_id_external_id")

    op.drop_table("agents")
    op.drop_table("instance_secrets")
    with op.batch_alter_table("failed_sign_ins", schema=None) as batch_op:
        batch_op.drop_index("ix_failed_sign_ins_ip_at")
        batch_op.drop_index("ix_failed_sign_ins_email_at")

    op.drop_table("failed_sign_ins")
    op.drop_table("accounts")
