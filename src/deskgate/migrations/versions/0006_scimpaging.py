"""agent_counts: visible agents per account, kept by triggers; the SCIM listing index made partial

Revision ID: 0006_scimpaging
Revises: 0005_scim_log_ip

The SCIM list's totalResults was a COUNT over the account's visible agents (70-300 ms at 300,000
agents); it is now the sum of a few `agent_counts` rows. Triggers keep them in the transaction of
every write to `agents`, whoever makes it (SCIM, JIT sign-in, the console, the CLI, the demo,
retention, a bulk load), so the count cannot drift. On PostgreSQL a write adds to the slot of its
connection (`pg_backend_pid() % 16`): concurrent inserts do not queue behind one row. Inserts and
deletes are counted per statement (transition tables: one upsert for a bulk COPY); a change of
`scim_deleted_at` (SCIM DELETE, or an admin bringing an agent back) per row, only when it changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_scimpaging"
down_revision: str | None = "0005_scim_log_ip"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("scim_deleted_at IS NULL")

_UPSERT = """
        ON CONFLICT (account_id, slot) DO UPDATE SET agents = agent_counts.agents + excluded.agents
"""
# Each function's statements are planned once per connection (PL/pgSQL caches their plans).
_POSTGRESQL = [
    f"""
    CREATE FUNCTION agent_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO agent_counts (account_id, slot, agents)
        SELECT account_id, pg_backend_pid() % 16, count(*) FROM inserted
        WHERE scim_deleted_at IS NULL GROUP BY account_id {_UPSERT};
        RETURN NULL;
    END $$
    """,
    # Nothing for an account being deleted (its agents go with it, and its counts by cascade).
    f"""
    CREATE FUNCTION agent_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO agent_counts (account_id, slot, agents)
        SELECT deleted.account_id, pg_backend_pid() % 16, -count(*) FROM deleted
        JOIN accounts ON accounts.id = deleted.account_id
        WHERE deleted.scim_deleted_at IS NULL GROUP BY deleted.account_id {_UPSERT};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION agent_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.scim_deleted_at IS NULL THEN
            INSERT INTO agent_counts (account_id, slot, agents)
            VALUES (OLD.account_id, pg_backend_pid() % 16, -1) {_UPSERT};
        END IF;
        IF NEW.scim_deleted_at IS NULL THEN
            INSERT INTO agent_counts (account_id, slot, agents)
            VALUES (NEW.account_id, pg_backend_pid() % 16, 1) {_UPSERT};
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER agent_counts_insert AFTER INSERT ON agents
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
    EXECUTE FUNCTION agent_counts_inserted()
    """,
    """
    CREATE TRIGGER agent_counts_delete AFTER DELETE ON agents
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT
    EXECUTE FUNCTION agent_counts_deleted()
    """,
    """
    CREATE TRIGGER agent_counts_update AFTER UPDATE OF scim_deleted_at, account_id ON agents
    FOR EACH ROW WHEN (
        (OLD.scim_deleted_at IS NULL) IS DISTINCT FROM (NEW.scim_deleted_at IS NULL)
        OR OLD.account_id IS DISTINCT FROM NEW.account_id
    )
    EXECUTE FUNCTION agent_counts_updated()
    """,
]

# SQLite has one writer at a time: one slot. Row 0 exists whenever a visible agent does (every
# insert upserts it), so a delete only updates it (an upsert could recreate the row of an
# account being deleted).
_SQLITE = [
    """
    CREATE TRIGGER agent_counts_insert AFTER INSERT ON agents
    WHEN NEW.scim_deleted_at IS NULL BEGIN
        INSERT INTO agent_counts (account_id, slot, agents) VALUES (NEW.account_id, 0, 1)
        ON CONFLICT (account_id, slot) DO UPDATE SET agents = agents + 1;
    END
    """,
    """
    CREATE TRIGGER agent_counts_delete AFTER DELETE ON agents
    WHEN OLD.scim_deleted_at IS NULL BEGIN
        UPDATE agent_counts SET agents = agents - 1 WHERE account_id = OLD.account_id AND slot = 0;
    END
    """,
    """
    CREATE TRIGGER agent_counts_update AFTER UPDATE OF scim_deleted_at, account_id ON agents
    WHEN (OLD.scim_deleted_at IS NULL) IS NOT (NEW.scim_deleted_at IS NULL)
        OR OLD.account_id IS NOT NEW.account_id BEGIN
        UPDATE agent_counts SET agents = agents - 1
        WHERE OLD.scim_deleted_at IS NULL AND account_id = OLD.account_id AND slot = 0;
        INSERT INTO agent_counts (account_id, slot, agents)
        SELECT NEW.account_id, 0, 1 WHERE NEW.scim_deleted_at IS NULL
        ON CONFLICT (account_id, slot) DO UPDATE SET agents = agents + 1;
    END
    """,
]

_DROP_POSTGRESQL = [
    "DROP TRIGGER agent_counts_update ON agents",
    "DROP TRIGGER agent_counts_delete ON agents",
    "DROP TRIGGER agent_counts_insert ON agents",
    "DROP FUNCTION agent_counts_updated()",
    "DROP FUNCTION agent_counts_deleted()",
    "DROP FUNCTION agent_counts_inserted()",
]
_DROP_SQLITE = [
    "DROP TRIGGER agent_counts_update",
    "DROP TRIGGER agent_counts_delete",
    "DROP TRIGGER agent_counts_insert",
]


def upgrade() -> None:
    op.drop_index("ix_agents_scim_listing", table_name="agents")
    op.create_index(
        "ix_agents_scim_listing",
        "agents",
        ["account_id", "created_at", "id"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "agent_counts",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_agent_counts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "slot", name=op.f("pk_agent_counts")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sa.inspect(bind).has_table("sqlite_stat1"):
        # A database analysed before would otherwise plan with statistics for every index but
        # this one, and pick it over the userName index to sort by userName.
        op.execute("ANALYZE ix_agents_scim_listing")
    # Lock out writers while counting, so that no agent is missed between the count and the
    # triggers (SQLite's writers are already serialised).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE")
    for statement in _POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)
    op.execute(
        "INSERT INTO agent_counts (account_id, slot, agents)"
        " SELECT account_id, 0, count(*) FROM agents WHERE scim_deleted_at IS NULL"
        " GROUP BY account_id"
    )


def downgrade() -> None:
    for statement in (
        _DROP_POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _DROP_SQLITE
    ):
        op.execute(statement)
    op.drop_table("agent_counts")
    op.drop_index("ix_agents_scim_listing", table_name="agents")
    op.create_index(
        "ix_agents_scim_listing", "agents", ["account_id", "scim_deleted_at", "created_at", "id"]
    )
