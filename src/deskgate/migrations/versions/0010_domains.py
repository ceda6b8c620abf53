"""domain_claims: verified domains replace sso_domains and sso_connections.email_domains

Every domain an account had (its sso_domains rows and its connection's email_domains) becomes
an unverified claim with a fresh token: it routes "Login with SSO" and admits JIT and SCIM
emails again once the account has published the TXT record and verified it.

Revision ID: 0010_domains
Revises: 0009_apikeys
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from deskgate.store.base import UTCDateTime, utcnow

revision: str = "0010_domains"
down_revision: str | None = "0009_apikeys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VERIFIED = sa.text("verified_at IS NOT NULL")


def _old_domains(bind: sa.Connection) -> set[tuple[str, str]]:
    """(account_id, domain) of every domain the account had, lower-cased as 0001-0007 kept them."""
    found = {
        (account_id, domain.strip().lower())
        for domain, account_id in bind.execute(
            sa.text("SELECT domain, account_id FROM sso_domains")
        )
    }
    for account_id, listed in bind.execute(
        sa.text("SELECT account_id, email_domains FROM sso_connections")
    ):
        values = json.loads(listed) if isinstance(listed, str) else listed
        found.update((account_id, str(domain).strip().lower()) for domain in values or ())
    return {(account_id, domain) for account_id, domain in found if domain}


def upgrade() -> None:
    claims = op.create_table(
        "domain_claims",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("check_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_domain_claims_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "domain", name="pk_domain_claims"),
    )
    op.create_index("ix_domain_claims_domain", "domain_claims", ["domain"])
    op.create_index(
        "uq_domain_claims_verified_domain",
        "domain_claims",
        ["domain"],
        unique=True,
        sqlite_where=_VERIFIED,
        postgresql_where=_VERIFIED,
    )
    bind = op.get_bind()
    now = utcnow()
    rows = [
        {
            "account_id": account_id,
            "domain": domain[:253],
            "token": secrets.token_urlsafe(24),
            "created_at": now,
        }
        for account_id, domain in sorted(_old_domains(bind))
    ]
    if rows:
        op.bulk_insert(claims, rows)
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_domains_account_id"))
    op.drop_table("sso_domains")
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.drop_column("email_domains")


def downgrade() -> None:
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_domains", sa.JSON(), nullable=False, server_default="[]")
        )
    domains = op.create_table(
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
    # Only verified domains go back: one account each, as sso_domains requires.
    bind = op.get_bind()
    verified = bind.execute(
        sa.text("SELECT domain, account_id FROM domain_claims WHERE verified_at IS NOT NULL")
    ).all()
    if verified:
        op.bulk_insert(domains, [{"domain": d, "account_id": a} for d, a in verified])
        by_account: dict[str, list[str]] = {}
        for domain, account_id in verified:
            by_account.setdefault(account_id, []).append(domain)
        for account_id, listed in by_account.items():
            bind.execute(
                sa.text("UPDATE sso_connections SET email_domains = :d WHERE account_id = :a"),
                {"d": json.dumps(sorted(listed)), "a": account_id},
            )
    op.drop_index("uq_domain_claims_verified_domain", table_name="domain_claims")
    op.drop_index("ix_domain_claims_domain", table_name="domain_claims")
    op.drop_table("domain_claims")
