"""SCIM provisioning use cases: the IdP creates, updates, deactivates and deletes the agents and
groups of one account.

The SCIM core (`deskgate.scim`) turns request bodies into fields and updates; this module loads
rows through `store.scim`, calls the core, applies the result and enforces the rules that need
the database. It raises the core's SCIMException classes (the protocol's own errors) and never
commits: the web layer owns the transaction.

Rules kept here:

* **userName** is the IdP's identifier for the agent, unique per account whatever the case
  (agents made by deskgate itself, the admin or JIT sign-ins, have their email as userName). A
  POST of a userName a visible agent has is 409 `uniqueness`; Okta then finds the agent with
  `filter=userName eq` and links to it. The agent's `emails` are its own, stored as sent; its
  contact email is derived from them (`deskgate.scim.records.contact_email`).
* **Deactivation** (`active: false` by PUT or PATCH) applies at once and always, even to an
  admin (the IdP is authoritative): every session of the agent is revoked.
* **DELETE /Users/{id}** deactivates the agent, revokes its sessions, removes it from every group
  and unlinks it from SCIM (`scim_deleted_at`; externalId cleared). The row stays for history and
  the web pages; SCIM answers 404 for its id (RFC 7644 §3.6) and no longer lists it. A later
  POST of the same userName creates a new agent with a new id (the old one keeps its history,
  deactivated); an admin may reactivate the old one, which makes it visible to SCIM again
  unless its userName has been taken meanwhile.
* **Groups that grant admin** (`Group.grants_admin`, set on the Security page): joining one
  promotes the agent to admin; leaving it demotes the agent unless another such group still
  holds them. The account's last active admin is never demoted this way: the demotion is
  skipped and noted in the request log.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.errors import NotFound
from deskgate.scim import (
    AgentFields,
    AgentRecord,
    GroupRecord,
    GroupUpdate,
    ListQuery,
    MemberRef,
    agent_fields_for_create,
    agent_update_for_replace,
    apply_group_patch,
    apply_user_patch,
    check_if_match,
    group_fields_for_create,
    group_update_for_replace,
    referenced_member_ids,
)
from deskgate.scim.errors import (
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    UnauthorizedException,
    UniquenessException,
)
from deskgate.scim.models import GROUP_SCHEMA
from deskgate.services.tokens import hash_token
from deskgate.store import accounts as account_store
from deskgate.store import agents as agent_store
from deskgate.store import scim as store
from deskgate.store import sessions as session_store
from deskgate.store.agents import normalize_user_name
from deskgate.store.models import AgentSource, Group, Plan, Role

TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)
RECENT_REQUESTS = 50
PAGE_GROUPS = 200
"""Most groups listed on the Security page (by name)."""

Notes = list[str]
"""What a use case did that the admin should see in the request log (e.g. a skipped demotion)."""


# --- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScimCaller:
    account_id: str
    token: store.TokenOwner


_BEARER = re.compile(r"bearer\s+(\S+)\s*", re.IGNORECASE)


def token_from_header(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`, or of a bare `Authorization: <token>`
    (Okta's "Header Auth" apps send their API Token field verbatim)."""
    if not authorization:
        return None
    value = authorization.strip()
    match = _BEARER.fullmatch(value)
    if match:
        return match.group(1)
    return value if value and " " not in value and len(value) <= 200 else None


def authenticate(
    db: Session, account_id: str, authorization: str | None, now: dt.datetime
) -> ScimCaller:
    """The caller of a SCIM request to `account_id`'s base URL.

    401 when the token is missing, unknown, expired or belongs to another account (the same
    answer whether or not the account exists); 403 when the account is not on Scale Plus.
    """
    token = token_from_header(authorization)
    owner = store.token_owner(db, hash_token(token), now) if token else None
    if owner is None or owner.account_id != account_id:
        raise UnauthorizedException(
            detail="The bearer token is missing, expired, or not valid for this SCIM base URL. "
            "Copy the SCIM base URL and a current token from Manage › Security in deskgate."
        )
    if owner.plan != Plan.SCALE_PLUS:
        raise ForbiddenException(
            detail="SCIM provisioning is available on the Scale Plus plan; this account is on "
            f"the {owner.plan} plan."
        )
    return ScimCaller(account_id=account_id, token=owner)


def account_exists(db: Session, account_id: str) -> bool:
    return account_store.get(db, account_id) is not None


@dataclass(frozen=True)
class RequestRecord:
    """One SCIM request for the log: never the token, never a password."""

    account_id: str
    method: str
    path: str
    status: int
    duration_ms: float
    client: str | None
    detail: str | None
    ip: str | None = None


UNAUTHENTICATED_LOG_WINDOW = dt.timedelta(minutes=1)


def record_unauthenticated_request(
    db: Session, request: RequestRecord, *, now: dt.datetime, per_ip_per_minute: int
) -> bool:
    """Log a 401 when the path's account exists and its source is under its cap (anonymous
    requests must not fill the log); True when a row was written."""
    if not account_exists(db, request.account_id):
        return False
    recent = store.unauthenticated_requests_since(
        db, request.account_id, request.ip, now - UNAUTHENTICATED_LOG_WINDOW
    )
    if recent >= per_ip_per_minute:
        return False
    record_request(db, request, now=now)
    return True


def record_request(
    db: Session, request: RequestRecord, *, now: dt.datetime, token: store.TokenOwner | None = None
) -> None:
    """Add the request to the account's log; note the token's use at most once a minute."""
    store.add_request_log(
        db,
        {
            "id": ids.new_id(ids.SCIM_REQUEST),
            "account_id": request.account_id,
            "at": now,
            "method": request.method[:10],
            "path": for_display(request.path) or "",
            "status": request.status,
            "duration_ms": round(request.duration_ms, 2),
            "client": for_display(request.client, 400) or None,
            "detail": for_display(request.detail) or None,
            "ip": request.ip,
        },
    )
    if token is not None and (
        token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL
    ):
        store.touch_token(db, token.token_id, now)


# --- users ----------------------------------------------------------------------------------


def _no_user(user_id: str) -> NotFoundException:
    return NotFoundException(detail=f"No user with id {user_id!r} in this account.")


def _taken(user_name: str) -> UniquenessException:
    return UniquenessException(
        attribute="userName",
        value=user_name,
        detail=f"userName {user_name!r} is already taken in this account (compared without "
        f'case). Link to the existing user: GET /Users?filter=userName eq "{user_name}".',
    )


def list_users(db: Session, account_id: str, query: ListQuery) -> tuple[int, list[AgentRecord]]:
    return store.list_agents(db, account_id, query)


def get_user(db: Session, account_id: str, user_id: str) -> AgentRecord:
    record = store.get_agent(db, account_id, user_id)
    if record is None:
        raise _no_user(user_id)
    return record


def create_user(db: Session, account_id: str, payload: Any, *, now: dt.datetime) -> AgentRecord:
    """POST /Users. A userName deleted over SCIM earlier gets a new agent (a new id)."""
    fields = agent_fields_for_create(payload)
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
    return _record(agent_id, fields, created_at=now, updated_at=now, version=1)


def replace_user(
    db: Session,
    account_id: str,
    user_id: str,
    payload: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
) -> AgentRecord:
    """PUT /Users/{id}: replace semantics (a missing `active` keeps the stored value)."""
    record = _agent_for_update(db, account_id, user_id, if_match)
    update = agent_update_for_replace(record, payload)
    return _write_fields(db, account_id, record, update.fields, now) if update.changed else record


def patch_user(
    db: Session, account_id: str, user_id: str, body: Any, *, if_match: str | None, now: dt.datetime
) -> AgentRecord:
    record = _agent_for_update(db, account_id, user_id, if_match)
    update = apply_user_patch(record, body)
    return _write_fields(db, account_id, record, update.fields, now) if update.changed else record


def delete_user(
    db: Session,
    account_id: str,
    user_id: str,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
) -> None:
    """DELETE /Users/{id}: deactivate, sign out, leave every group, unlink from SCIM (404 after)."""
    record = _agent_for_update(db, account_id, user_id, if_match)
    groups = store.groups_of_agent(db, account_id, record.id)
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
        store.remove_members(db, group.id, [record.id])
    store.bump_groups(db, [group.id for group in groups], now)
    if any(group.grants_admin for group in groups):
        _demote(db, account_id, [record.id], except_group=None, now=now, notes=notes)


def _agent_for_update(
    db: Session, account_id: str, user_id: str, if_match: str | None
) -> AgentRecord:
    record = store.get_agent(db, account_id, user_id, for_update=True)
    if record is None:
        raise _no_user(user_id)
    check_if_match(if_match, record.version)
    return record


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
    db: Session, account_id: str, record: AgentRecord, fields: AgentFields, now: dt.datetime
) -> AgentRecord:
    """Store new fields over `record` (version bumped); deactivation revokes every session."""
    values = {**_columns(fields), "version": record.version + 1, "updated_at": now}
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
    return _record(
        record.id, fields, created_at=record.created_at, updated_at=now, version=record.version + 1
    )


def _bump(group: Group, now: dt.datetime) -> None:
    group.version += 1
    group.updated_at = now


# --- groups ---------------------------------------------------------------------------------


def _no_group(group_id: str) -> NotFoundException:
    return NotFoundException(detail=f"No group with id {group_id!r} in this account.")


def _name_taken(display_name: str) -> UniquenessException:
    return UniquenessException(
        attribute="displayName",
        value=display_name,
        detail=f"A group named {display_name!r} already exists in this account (names are "
        f'compared without case). Link to it: GET /Groups?filter=displayName eq "{display_name}".',
    )


def wants_members(attributes: Collection[str], excluded_attributes: Collection[str]) -> bool:
    """Whether a Group representation with these `attributes`/`excludedAttributes` shows members
    (Entra reads groups with `excludedAttributes=members`: then they are not loaded at all)."""
    prefix = GROUP_SCHEMA.lower() + ":"

    def names(values: Collection[str]) -> list[str]:
        return [value.lower().removeprefix(prefix) for value in values]

    if attributes:
        return any(name == "members" or name.startswith("members.") for name in names(attributes))
    return "members" not in names(excluded_attributes)


def list_groups(db: Session, account_id: str, query: ListQuery) -> tuple[int, list[GroupRecord]]:
    total, groups = store.list_groups(db, account_id, query)
    members: Mapping[str, list[MemberRef]] = {}
    if groups and wants_members(query.attributes, query.excluded_attributes):
        members = store.members_of(db, [group.id for group in groups])
    return total, [store.group_record(group, members.get(group.id, ())) for group in groups]


def get_group(
    db: Session, account_id: str, group_id: str, *, with_members: bool = True
) -> GroupRecord:
    group = store.get_group(db, account_id, group_id)
    if group is None:
        raise _no_group(group_id)
    return _group_record(db, group, with_members=with_members)


def create_group(db: Session, account_id: str, payload: Any, *, now: dt.datetime) -> GroupRecord:
    fields = group_fields_for_create(payload)
    member_ids = [member.agent_id for member in fields.members]
    names = _require_agents(db, account_id, member_ids)
    group = Group(
        id=ids.new_id(ids.GROUP),
        account_id=account_id,
        display_name=fields.display_name,
        display_name_normalized=store.normalize_group_name(fields.display_name),
        external_id=fields.external_id,
        grants_admin=False,
        version=1,
        created_at=now,
        updated_at=now,
    )
    try:
        with db.begin_nested():
            db.add(group)
    except IntegrityError:
        raise _name_taken(fields.display_name) from None
    store.add_members(db, group.id, member_ids)
    return store.group_record(
        group, [MemberRef(agent_id, names[agent_id]) for agent_id in sorted(member_ids)]
    )


def replace_group(
    db: Session,
    account_id: str,
    group_id: str,
    payload: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
    with_members: bool = True,
) -> GroupRecord:
    """PUT /Groups/{id}: the members sent become the whole membership."""
    group = _group_for_update(db, account_id, group_id, if_match)
    current = [MemberRef(agent_id) for agent_id in store.all_member_ids(db, group.id)]
    update = group_update_for_replace(store.group_record(group, current), payload)
    _apply_group_update(db, account_id, group, update, now=now, notes=notes)
    return _group_record(db, group, with_members=with_members)


def patch_group(
    db: Session,
    account_id: str,
    group_id: str,
    body: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
) -> Group:
    """PATCH /Groups/{id}. Adding or removing named members reads only those members' rows,
    never the whole group; other member operations (replace, remove all) read the membership."""
    group = _group_for_update(db, account_id, group_id, if_match)
    # The core says which members the operations name, from the same parse it applies them with.
    named = referenced_member_ids(body)
    if named is None:
        member_ids: Collection[str] = store.all_member_ids(db, group.id)
    else:
        member_ids = sorted(store.member_ids_among(db, group.id, named))
    # The record holds the members the operations can touch: added/removed come out exact.
    record = store.group_record(group, [MemberRef(agent_id) for agent_id in member_ids])
    update = apply_group_patch(record, body)
    _apply_group_update(db, account_id, group, update, now=now, notes=notes)
    return group


def delete_group(
    db: Session,
    account_id: str,
    group_id: str,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
) -> None:
    group = _group_for_update(db, account_id, group_id, if_match)
    if group.grants_admin:
        members = store.all_member_ids(db, group.id)
        _demote(db, account_id, members, except_group=group.id, now=now, notes=notes)
    store.delete_group(db, group)


def _group_for_update(db: Session, account_id: str, group_id: str, if_match: str | None) -> Group:
    group = store.get_group(db, account_id, group_id, for_update=True)
    if group is None:
        raise _no_group(group_id)
    check_if_match(if_match, group.version)
    return group


def _group_record(db: Session, group: Group, *, with_members: bool) -> GroupRecord:
    members = store.members_of(db, [group.id])[group.id] if with_members else []
    return store.group_record(group, members)


def _require_agents(db: Session, account_id: str, agent_ids: Collection[str]) -> dict[str, str]:
    """{id: display name} of these agents; 400 invalidValue if any is not a user of the account."""
    if not agent_ids:
        return {}
    names = store.agent_names(db, account_id, agent_ids)
    unknown = [agent_id for agent_id in agent_ids if agent_id not in names]
    if unknown:
        shown = ", ".join(repr(agent_id) for agent_id in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InvalidValueException(
            attribute="members.value",
            detail=f"Group members must be users of this account; no user has the id {shown}{more}.",
        )
    return names


def _apply_group_update(
    db: Session,
    account_id: str,
    group: Group,
    update: GroupUpdate,
    *,
    now: dt.datetime,
    notes: Notes,
) -> None:
    if not update.changed:
        return
    fields = update.fields
    added = [member.agent_id for member in update.added]
    _require_agents(db, account_id, added)
    if fields.display_name != group.display_name or fields.external_id != group.external_id:
        group.display_name = fields.display_name
        group.display_name_normalized = store.normalize_group_name(fields.display_name)
        group.external_id = fields.external_id
        try:
            with db.begin_nested():
                db.flush()
        except IntegrityError:
            raise _name_taken(fields.display_name) from None
    store.add_members(db, group.id, added)
    store.remove_members(db, group.id, update.removed)
    _bump(group, now)
    if group.grants_admin:
        _promote(db, account_id, added, now=now, notes=notes)
        _demote(db, account_id, update.removed, except_group=group.id, now=now, notes=notes)


# --- admin roles from groups ------------------------------------------------------------------


def _promote(
    db: Session, account_id: str, agent_ids: Collection[str], *, now: dt.datetime, notes: Notes
) -> None:
    promoted = store.set_roles(db, account_id, agent_ids, Role.ADMIN, now)
    if promoted:
        notes.append(
            f"{len(promoted)} agent(s) made admin (joined a group whose members are admins)"
        )


def _demote(
    db: Session,
    account_id: str,
    agent_ids: Collection[str],
    *,
    except_group: str | None,
    now: dt.datetime,
    notes: Notes,
) -> None:
    """Demote admins who left an admin group, unless another admin group still holds them.
    The account's last active admin keeps the role (noted)."""
    admins = store.admins_among(db, account_id, agent_ids)
    if not admins:
        return
    still_admin = store.in_admin_groups(
        db, account_id, [a[0] for a in admins], except_group=except_group
    )
    candidates = [admin for admin in admins if admin[0] not in still_admin]
    if not candidates:
        return
    agent_store.lock_account_admins(db, account_id)
    active_admins = agent_store.count_active_admins(db, account_id)
    demoted: list[str] = []
    for agent_id, email, active in candidates:
        if active and active_admins <= 1:
            notes.append(f"{email} stays admin: the account's last active admin is never demoted")
            continue
        demoted.append(agent_id)
        active_admins -= 1 if active else 0
    store.set_roles(db, account_id, demoted, Role.AGENT, now)
    if demoted:
        notes.append(f"{len(demoted)} agent(s) made agent (left a group whose members are admins)")


@dataclass(frozen=True)
class AdminGroupChange:
    display_name: str
    grants_admin: bool
    notes: Notes


def set_group_grants_admin(
    db: Session, account_id: str, group_id: str, grants_admin: bool, *, now: dt.datetime
) -> AdminGroupChange:
    """Security page: mark a group "members are admins" (promote its members) or unmark it
    (demote those no other admin group holds, never the last active admin)."""
    group = store.get_group(db, account_id, group_id, for_update=True)
    if group is None:
        raise NotFound("No such group in this account. It may have been deleted by your IdP.")
    notes: Notes = []
    if group.grants_admin != grants_admin:
        group.grants_admin = grants_admin
        db.flush()  # the flag must hold before the admin-group lookups below
        members = store.all_member_ids(db, group.id)
        if grants_admin:
            _promote(db, account_id, members, now=now, notes=notes)
        else:
            _demote(db, account_id, members, except_group=group.id, now=now, notes=notes)
    return AdminGroupChange(display_name=group.display_name, grants_admin=grants_admin, notes=notes)


# --- Security page --------------------------------------------------------------------------


def scim_page_context(db: Session, account_id: str) -> dict[str, Any]:
    """What `_scim_extra.html` shows: the latest requests and the groups (with their admin flag)."""
    return {
        "scim_log": store.recent_requests(db, account_id, RECENT_REQUESTS),
        "scim_groups": store.group_summaries(db, account_id, PAGE_GROUPS),
    }
