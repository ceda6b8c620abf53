"""SCIM /Users use cases (the rules are in the package's docstring)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from deskgate import ids
from deskgate.scim import (
    AgentFields,
    AgentRecord,
    ListQuery,
    agent_fields_for_create,
    agent_update_for_replace,
    apply_user_patch,
    check_if_match,
)
from deskgate.scim.errors import InvalidValueException, NotFoundException, UniquenessException
from deskgate.services import events
from deskgate.services.domains import DomainGate
from deskgate.services.event_snapshots import (
    changed,
    group_snapshot,
    record_agent_change,
    scim_agent_snapshot,
)
from deskgate.services.events import Actor
from deskgate.services.provisioning.roles import Notes, demote
from deskgate.store import agents as agent_store
from deskgate.store import domains as domain_store
from deskgate.store import scim as store
from deskgate.store import scim_groups
from deskgate.store import sessions as session_store
from deskgate.store.agents import normalize_user_name
from deskgate.store.models import AgentSource, Role
from deskgate.store.scim import LockedAgent


def _no_user(user_id: str) -> NotFoundException:
    return NotFoundException(detail=f"No user with id {user_id!r} in this account.")


def _taken(user_name: str) -> UniquenessException:
    return UniquenessException(
        attribute="userName",
        value=user_name,
        detail=f"userName {user_name!r} is already taken in this account (compared without "
        f'case). Link to the existing user: GET /Users?filter=userName eq "{user_name}".',
    )


def _admit_email(db: Connection, account_id: str, email: str | None) -> None:
    """Once the account claims domains, a contact email must be in one it verified (a user
    without an email has nothing to route or match by, so it is admitted)."""
    if not email:
        return
    refusal = DomainGate.of(domain_store.gate_rows(db, account_id)).refusal(email)
    if refusal is not None:
        raise InvalidValueException(detail=f"The contact email {email} is refused: {refusal[1]}.")


def list_users(db: Connection, account_id: str, query: ListQuery) -> tuple[int, list[AgentRecord]]:
    return store.list_agents(db, account_id, query)


def get_user(db: Connection, account_id: str, user_id: str) -> AgentRecord:
    record = store.get_agent(db, account_id, user_id)
    if record is None:
        raise _no_user(user_id)
    return record


def create_user(
    db: Connection, account_id: str, payload: Any, *, now: dt.datetime, actor: Actor
) -> AgentRecord:
    """POST /Users. A userName deleted over SCIM earlier gets a new agent (a new id)."""
    fields = agent_fields_for_create(payload)
    _admit_email(db, account_id, fields.email)
    if store.agent_by_user_name(db, account_id, normalize_user_name(fields.user_name)) is not None:
        raise _taken(fields.user_name)
    agent_id = ids.new_id(ids.AGENT)
    try:
        with db.begin_nested():
            store.insert_agent(
                db,
                {
                    **_columns(fields),
                    "id": agent_id,
                    "account_id": account_id,
                    "role": Role.AGENT.value,
                    "source": AgentSource.SCIM.value,
                    "password_hash": None,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "last_sign_in_at": None,
                    "scim_deleted_at": None,
                },
            )
    except IntegrityError:
        # The unique index on (account, lower-cased userName) settles concurrent POSTs.
        raise _taken(fields.user_name) from None
    created = _record(agent_id, fields, created_at=now, updated_at=now, version=1)
    after = scim_agent_snapshot(created, role=Role.AGENT.value, source=AgentSource.SCIM.value)
    record_agent_change(db, account_id, actor, None, after)
    return created


def replace_user(
    db: Connection,
    account_id: str,
    user_id: str,
    payload: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
    actor: Actor,
) -> AgentRecord:
    """PUT /Users/{id}: replace semantics (a missing `active` keeps the stored value). A PUT
    that changes nothing writes nothing and records no event (Okta re-sends them often)."""
    locked = _agent_for_update(db, account_id, user_id, if_match)
    update = agent_update_for_replace(locked.record, payload)
    if not update.changed:
        return locked.record
    return _write_fields(db, account_id, locked, update.fields, now, actor)


def patch_user(
    db: Connection,
    account_id: str,
    user_id: str,
    body: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
    actor: Actor,
) -> AgentRecord:
    """PATCH /Users/{id}; like PUT, a PATCH that changes nothing records nothing."""
    locked = _agent_for_update(db, account_id, user_id, if_match)
    update = apply_user_patch(locked.record, body)
    if not update.changed:
        return locked.record
    return _write_fields(db, account_id, locked, update.fields, now, actor)


def delete_user(
    db: Connection,
    account_id: str,
    user_id: str,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
    actor: Actor,
) -> None:
    """DELETE /Users/{id}: deactivate, sign out, leave every group, unlink from SCIM (404 after).

    One agent.deleted event (its after-state includes a demotion the leaving caused), and a
    group.updated for each group it left."""
    locked = _agent_for_update(db, account_id, user_id, if_match)
    record = locked.record
    groups = scim_groups.groups_of_agent(db, account_id, record.id)
    store.update_agent(
        db,
        account_id,
        record.id,
        {
            "active": False,
            "scim_deleted_at": now,
            "external_id": None,
            "version": record.version + 1,
            "updated_at": now,
        },
    )
    session_store.delete_for_agent(db, account_id, record.id)
    for group in groups:
        scim_groups.remove_members(db, group.id, [record.id])
    scim_groups.bump_groups(db, [group.id for group in groups], now)
    demoted = False
    if any(group.grants_admin for group in groups):
        # Folded into agent.deleted below: one event for the agent's change.
        demoted = bool(
            demote(db, account_id, [record.id], except_group=None, now=now, notes=notes, actor=None)
        )
    before = scim_agent_snapshot(record, role=locked.role, source=locked.source)
    after = changed(
        before,
        active=False,
        external_id=None,
        version=record.version + (2 if demoted else 1),
        updated_at=now,
        **({"role": Role.AGENT.value} if demoted else {}),
    )
    record_agent_change(db, account_id, actor, before, after, deleted=True)
    for group in groups:
        group_before = group_snapshot(group)
        group_after = {**group_before, "version": group.version + 1, "updated_at": now}
        events.record_change(
            db,
            account_id,
            "group.updated",
            actor,
            group_before,
            group_after,
            extra={"members_added": [], "members_removed": [record.id]},
        )


def _agent_for_update(
    db: Connection, account_id: str, user_id: str, if_match: str | None
) -> LockedAgent:
    locked = store.lock_agent(db, account_id, user_id)
    if locked is None:
        raise _no_user(user_id)
    check_if_match(if_match, locked.record.version)
    return locked


def _columns(fields: AgentFields) -> dict[str, Any]:
    """Agent column values for SCIM fields ("" where the columns keep no NULL)."""
    return {
        "user_name": fields.user_name,
        "user_name_normalized": normalize_user_name(fields.user_name),
        "emails": [entry.as_dict() for entry in fields.emails],
        "email": fields.email,
        "email_normalized": agent_store.normalize_email(fields.email),
        "first_name": fields.first_name or "",
        "last_name": fields.last_name or "",
        "display_name": fields.display_name or "",
        "active": fields.active,
        "external_id": fields.external_id,
        "locale": fields.locale,
        "title": fields.title,
        "enterprise": dict(fields.enterprise),
    }


def _record(
    agent_id: str,
    fields: AgentFields,
    *,
    created_at: dt.datetime,
    updated_at: dt.datetime,
    version: int,
) -> AgentRecord:
    return AgentRecord(
        id=agent_id,
        user_name=fields.user_name,
        emails=fields.emails,
        first_name=fields.first_name,
        last_name=fields.last_name,
        display_name=fields.display_name,
        active=fields.active,
        external_id=fields.external_id,
        locale=fields.locale,
        title=fields.title,
        enterprise=dict(fields.enterprise),
        created_at=created_at,
        updated_at=updated_at,
        version=version,
    )


def _write_fields(
    db: Connection,
    account_id: str,
    locked: LockedAgent,
    fields: AgentFields,
    now: dt.datetime,
    actor: Actor,
) -> AgentRecord:
    """Store new fields over the agent (version bumped) and record the change; deactivation
    revokes every session."""
    record = locked.record
    values = {**_columns(fields), "version": record.version + 1, "updated_at": now}
    if agent_store.normalize_email(fields.email) != agent_store.normalize_email(record.email):
        _admit_email(db, account_id, fields.email)  # deactivating never waits on a domain
    if normalize_user_name(fields.user_name) != normalize_user_name(record.user_name):
        try:
            with db.begin_nested():
                store.update_agent_fields(db, account_id, record.id, values)
        except IntegrityError:
            raise _taken(fields.user_name) from None
    else:
        store.update_agent_fields(db, account_id, record.id, values)
    if record.active and not fields.active:
        session_store.delete_for_agent(db, account_id, record.id)
    written = _record(
        record.id, fields, created_at=record.created_at, updated_at=now, version=record.version + 1
    )
    record_agent_change(
        db,
        account_id,
        actor,
        scim_agent_snapshot(record, role=locked.role, source=locked.source),
        scim_agent_snapshot(written, role=locked.role, source=locked.source),
    )
    return written
