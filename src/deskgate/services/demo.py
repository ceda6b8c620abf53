"""The demo account `deskgate serve --demo` creates once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from deskgate.services import accounts as account_service
from deskgate.services.event_snapshots import record_agent_change
from deskgate.services.events import actors, agent_snapshot
from deskgate.services.passwords import generate_password, hash_password
from deskgate.store import accounts as account_store
from deskgate.store import agents as agent_store
from deskgate.store import secrets as secret_store
from deskgate.store.base import utcnow
from deskgate.store.models import Plan

DEMO_ADMIN_EMAIL = "admin@demo.example"
DEMO = actors.system("deskgate serve --demo")


@dataclass(frozen=True)
class DemoCredentials:
    email: str
    password: str
    created: bool


def ensure_demo_account(db: Session) -> DemoCredentials:
    """Create the Demo account (Scale Plus) and its admin once; later calls issue the admin a
    fresh password, since only a hash of the first one was kept."""
    account_id = secret_store.get_or_create(db, "demo_account_id", lambda: "")
    account = account_store.get(db, account_id) if account_id else None
    if account is None:
        created = account_service.create_account(
            db,
            name="Demo",
            plan=Plan.SCALE_PLUS.value,
            admin_email=DEMO_ADMIN_EMAIL,
            admin_first_name="Dana",
            admin_last_name="Admin",
            actor=DEMO,
        )
        secret_store.put(db, "demo_account_id", created.account.id)
        assert created.generated_password is not None
        return DemoCredentials(DEMO_ADMIN_EMAIL, created.generated_password, created=True)
    admin = agent_store.by_user_name(db, account.id, DEMO_ADMIN_EMAIL)
    password = generate_password()
    if admin is None:
        from deskgate.services.agents import add_agent

        add_agent(
            db,
            account.id,
            email=DEMO_ADMIN_EMAIL,
            first_name="Dana",
            last_name="Admin",
            role="admin",
            password=password,
            actor=DEMO,
        )
    else:
        admin.password_hash = hash_password(password)
        if not admin.active:
            before = agent_snapshot(admin)
            admin.active = True
            admin.version += 1
            admin.updated_at = utcnow()
            record_agent_change(db, account.id, DEMO, before, agent_snapshot(admin))
    return DemoCredentials(DEMO_ADMIN_EMAIL, password, created=False)
