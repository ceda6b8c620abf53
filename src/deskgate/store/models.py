"""Tables. Every row that belongs to an account carries `account_id`, and every query filters on it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from deskgate.store.base import Base, str_id, utcnow


class Plan(enum.StrEnum):
    FREE = "free"
    SCALE = "scale"
    SCALE_PLUS = "scale-plus"


class Role(enum.StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class AgentSource(enum.StrEnum):
    PASSWORD = "password"
    JIT = "jit"
    SCIM = "scim"


class SignInMatch(enum.StrEnum):
    """What identifies an agent when an assertion arrives (chosen per SSO connection)."""

    USER_NAME = "user_name"  # NameID == the agent's userName (SCIM's identifier)
    EMAIL = "email"  # NameID or email attribute == the agent's contact email


class IdPKind(enum.StrEnum):
    OKTA = "okta"
    ENTRA = "entra"
    GOOGLE = "google"
    ONELOGIN = "onelogin"
    SAML = "saml"


def _values(enum_cls: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_cls)


class InstanceSecret(Base):
    """Secrets generated on first start and shared by every app node on one database."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(f"plan IN ({_values(Plan)})", name="plan"),)

    id: Mapped[str_id]
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20))
    sso_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    sso_connection: Mapped[SSOConnection | None] = relationship(
        back_populates="account", uselist=False
    )


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        # One live agent per userName per account, whatever the case (RFC 7643 userName):
        # the database settles races. An agent deleted over SCIM frees its userName.
        Index(
            "uq_agents_account_id_user_name_normalized",
            "account_id",
            "user_name_normalized",
            unique=True,
            sqlite_where=text("scim_deleted_at IS NULL"),
            postgresql_where=text("scim_deleted_at IS NULL"),
        ),
        Index("ix_agents_account_id_email_normalized", "account_id", "email_normalized"),
        Index("ix_agents_account_id_external_id", "account_id", "external_id"),
        # SCIM listing: the visible agents of an account in creation order, walked from either
        # end. Partial, so that PostgreSQL sees it serves the ORDER BY (an `IS NULL` key column
        # does not count as fixed, and it sorted the whole account instead).
        Index(
            "ix_agents_scim_listing",
            "account_id",
            "created_at",
            "id",
            sqlite_where=text("scim_deleted_at IS NULL"),
            postgresql_where=text("scim_deleted_at IS NULL"),
        ),
        CheckConstraint(f"role IN ({_values(Role)})", name="role"),
        CheckConstraint(f"source IN ({_values(AgentSource)})", name="source"),
    )

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(400))
    """The IdP's identifier for the agent (SCIM userName): any non-empty string."""
    user_name_normalized: Mapped[str] = mapped_column(String(400))
    emails: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The agent's own emails as the IdP sent them: [{value, type?, primary?, display?}]."""
    email: Mapped[str] = mapped_column(String(320))
    """Contact email: the primary email, else the work email, else a userName that is an
    email; "" when there is none."""
    email_normalized: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    display_name: Mapped[str] = mapped_column(String(400), default="")
    role: Mapped[str] = mapped_column(String(10), default=Role.AGENT.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(10))
    external_id: Mapped[str | None] = mapped_column(String(400))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(40))
    title: Mapped[str | None] = mapped_column(String(200))
    enterprise: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """SCIM enterprise extension attributes (department, manager, …), stored as given."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None]
    scim_deleted_at: Mapped[dt.datetime | None]
    """Set when the IdP DELETEs the user over SCIM: the agent stays (inactive, for history) but
    SCIM answers 404 for it and lists it no more; a later POST of the same userName creates a
    new agent with a new id."""


class AgentCount(Base):
    """How many agents of an account are visible over SCIM (not `scim_deleted_at`): the SCIM
    list's totalResults without counting a million rows.

    Kept exact by triggers on `agents` (migration 0006), in the transaction of every insert,
    delete and change of `scim_deleted_at`, whoever writes. The count is the sum of the
    account's rows: on PostgreSQL each connection adds to its own slot, so concurrent inserts
    do not queue on one row; SQLite (one writer at a time) uses slot 0 only."""

    __tablename__ = "agent_counts"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    agents: Mapped[int] = mapped_column(Integer)


class AgentSession(Base):
    """A signed-in browser. The cookie holds a random value; only its SHA-256 is stored."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_expires_at", "expires_at"),)  # retention

    id: Mapped[str_id]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))


class FailedSignIn(Base):
    """One failed password sign-in, counted per email and per IP within a window."""

    __tablename__ = "failed_sign_ins"
    __table_args__ = (
        Index("ix_failed_sign_ins_email_at", "email_normalized", "at"),
        Index("ix_failed_sign_ins_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email_normalized: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SSOConnection(Base):
    """An account's SAML identity provider and its sign-in options (one per account)."""

    __tablename__ = "sso_connections"
    __table_args__ = (
        CheckConstraint(f"idp_kind IN ({_values(IdPKind)})", name="idp_kind"),
        CheckConstraint(f"jit_role IN ({_values(Role)})", name="jit_role"),
        CheckConstraint(f"sign_in_match IN ({_values(SignInMatch)})", name="sign_in_match"),
    )

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    idp_kind: Mapped[str] = mapped_column(String(10), default=IdPKind.OKTA.value)
    idp_entity_id: Mapped[str | None] = mapped_column(String(1024))
    idp_sso_url: Mapped[str | None] = mapped_column(String(2048))
    idp_sso_binding: Mapped[str | None] = mapped_column(String(100))
    """HTTP-Redirect, or HTTP-POST for IdPs that only take a posted AuthnRequest."""
    metadata_xml: Mapped[str | None] = mapped_column(Text)
    metadata_url: Mapped[str | None] = mapped_column(String(2048))
    metadata_fetched_at: Mapped[dt.datetime | None]
    """When the metadata in use was last read successfully."""
    metadata_error: Mapped[str | None] = mapped_column(Text)
    """Why the last automatic refresh failed (None once a refresh or a save succeeds)."""
    metadata_refresh_failed_at: Mapped[dt.datetime | None]
    """When that refresh failed; the next try waits a while (a broken URL must not hog every pass)."""
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=True)
    jit_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    jit_role: Mapped[str] = mapped_column(String(10), default=Role.AGENT.value)
    require_sso: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_sha1: Mapped[bool] = mapped_column(Boolean, default=False)
    sign_in_match: Mapped[str] = mapped_column(String(20), default=SignInMatch.EMAIL.value)
    """How an assertion finds its agent: NameID == userName, or NameID/email == email."""
    sp_private_key_pem: Mapped[str] = mapped_column(Text)
    sp_certificate_pem: Mapped[str] = mapped_column(Text)
    """The current SP key: signs AuthnRequests, decrypts, first in SP metadata. The IdP's
    signing certificates are rows of `idp_certificates`."""
    sp_next_private_key_pem: Mapped[str | None] = mapped_column(Text)
    sp_next_certificate_pem: Mapped[str | None] = mapped_column(Text)
    """During an SP key rollover: the new key, in SP metadata beside the current one."""
    sp_previous_private_key_pem: Mapped[str | None] = mapped_column(Text)
    sp_previous_certificate_pem: Mapped[str | None] = mapped_column(Text)
    sp_previous_until: Mapped[dt.datetime | None]
    """After a rollover: the retired key still decrypts until then (not published, never signs)."""
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(back_populates="sso_connection")


class SAMLRequest(Base):
    """An AuthnRequest we issued and have not yet seen answered (InResponseTo check)."""

    __tablename__ = "saml_requests"

    __table_args__ = (
        # Outstanding requests per account and source IP (the anonymous-write cap).
        Index("ix_saml_requests_account_id_ip_expires_at", "account_id", "ip", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    relay_state: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    """Who asked for the sign-in: caps how many one source may leave outstanding."""


class SeenAssertion(Base):
    """Assertion IDs already used, per account, kept until the assertion expires (replay)."""

    __tablename__ = "seen_assertions"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    assertion_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class LoginAttempt(Base):
    """A sign-in attempt (SSO or password) as the admin sees it on the Security page."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_account_id_at", "account_id", "at"),
        Index("ix_login_attempts_account_id_ip_at", "account_id", "ip", "at"),  # per-source cap
        Index("ix_login_attempts_at", "at"),  # retention
    )

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    method: Mapped[str] = mapped_column(String(20))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    email: Mapped[str | None] = mapped_column(String(320))
    agent_id: Mapped[str | None] = mapped_column(String(40))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    """For the admin: what was expected and what arrived."""
    ip: Mapped[str | None] = mapped_column(String(64))
    suppressed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Later refusals from the same IP not recorded as rows of their own (over the cap)."""


class ScimToken(Base):
    """A SCIM bearer token. Only its SHA-256 is stored; `expires_at` ends a rotated token's grace."""

    __tablename__ = "scim_tokens"

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    """The last characters, so the admin can tell tokens apart."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class Group(Base):
    """A team of agents, pushed by the IdP over SCIM."""

    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("account_id", "display_name_normalized"),
        Index("ix_groups_account_id_external_id", "account_id", "external_id"),
    )

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(400))
    display_name_normalized: Mapped[str] = mapped_column(String(400))
    external_id: Mapped[str | None] = mapped_column(String(400))
    grants_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    """Members of this group are admins (set by an admin on the Security page)."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ScimRequestLog(Base):
    """One SCIM request as the admin sees it: never the token, never a password."""

    __tablename__ = "scim_request_log"
    __table_args__ = (
        Index("ix_scim_request_log_account_id_at", "account_id", "at"),
        Index("ix_scim_request_log_at", "at"),  # retention
        # Unauthenticated requests per account and source IP (the anonymous-write cap).
        Index(
            "ix_scim_request_log_unauthenticated",
            "account_id",
            "ip",
            "at",
            sqlite_where=text("status = 401"),
            postgresql_where=text("status = 401"),
        ),
    )

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float]
    client: Mapped[str | None] = mapped_column(String(400))
    detail: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    """Where the request came from: caps what unauthenticated requests can make us write."""


class EventCounter(Base):
    """The last event sequence number of an account. Taken (row-locked) when a transaction
    that recorded events commits, so sequence numbers are given in commit order: a reader never
    sees number n+1 before n (store/events.py)."""

    __tablename__ = "event_counters"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger)


class Event(Base):
    """Something that happened in an account (the event log, the audit log and the webhook
    outbox): written in the transaction of the change it records."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("account_id", "seq"),  # the cursor of GET /api/v1/events
        Index("ix_events_account_id_at", "account_id", "at"),
        Index("ix_events_account_id_agent_id_seq", "account_id", "agent_id", "seq"),
        Index("ix_events_account_id_type_seq", "account_id", "type", "seq"),
        Index("ix_events_at", "at"),  # retention
    )

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    """1, 2, 3, … per account, in commit order, without gaps."""
    type: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_label: Mapped[str | None] = mapped_column(String(400))
    """What the admin reads: an email, "SCIM token …a1b2", the IdP's entity ID."""
    agent_id: Mapped[str | None] = mapped_column(String(40))
    """The agent the event is about, if any (webhook order per agent; audit log filter)."""
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The event's body: `before` and `after` for a change, the details otherwise."""


class CertificateSource(enum.StrEnum):
    METADATA = "metadata"
    """In the IdP metadata as last read."""
    ADMIN = "admin"
    """Added by an admin (the IdP's next certificate, ahead of a rotation)."""
    PREVIOUS_METADATA = "previous_metadata"
    """Dropped from the metadata, kept until `keep_until` (the rollover overlap)."""


class IdPCertificate(Base):
    """A certificate the IdP may sign with: every row of a connection verifies signatures."""

    __tablename__ = "idp_certificates"
    __table_args__ = (
        UniqueConstraint("account_id", "fingerprint"),
        CheckConstraint(f"source IN ({_values(CertificateSource)})", name="source"),
    )

    id: Mapped[str_id]
    # The account, not the connection: SQLite migrations rebuild sso_connections (drop and
    # re-create), which would cascade here.
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    certificate_pem: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(95))
    """SHA-256 of the DER, `AB:CD:…`."""
    subject: Mapped[str] = mapped_column(String(1024))
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(20))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    keep_until: Mapped[dt.datetime | None]
    """Set while kept from a previous metadata: removed after this instant."""


class CertificateNotice(Base):
    """An expiry warning recorded (event certificate.expiring/expired): inserted once per
    certificate and threshold, in the transaction of its event, so no two nodes both send it."""

    __tablename__ = "certificate_notices"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    usage: Mapped[str] = mapped_column(String(20), primary_key=True)
    """`idp_signing` or `sp`."""
    fingerprint: Mapped[str] = mapped_column(String(95), primary_key=True)
    threshold_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    """90, 30, 7, 1, or 0 for the expiry itself."""
    notified_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A key for the /api/v1 data endpoints (agents, events). Only its SHA-256 is stored; the
    key itself is shown once, when it is created."""

    __tablename__ = "api_keys"

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    """A subset of `agents:read`, `events:read` (services/api_keys.SCOPES)."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    """The last characters, so the admin can tell keys apart."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    """The admin's agent id, or "operator" (the CLI)."""
    last_used_at: Mapped[dt.datetime | None]
    """Noted at most every few minutes (services/api_keys.TOUCH_INTERVAL)."""
    revoked_at: Mapped[dt.datetime | None]


# GET /api/v1/agents lists every agent, those deleted over SCIM too: they are read in creation
# order from `ix_agents_scim_listing` (the others) and this one, merged. Partial, so it holds only
# the few deleted agents and costs an insert nothing.
Index(
    "ix_agents_deleted_listing",
    Agent.account_id,
    Agent.created_at,
    Agent.id,
    sqlite_where=text("scim_deleted_at IS NOT NULL"),
    postgresql_where=text("scim_deleted_at IS NOT NULL"),
)


class DomainClaim(Base):
    """An email domain an account claims. Only once verified (a DNS TXT record holding the
    token) does it route "Login with SSO" to the account and admit JIT and SCIM emails. Several
    accounts may claim a domain; one may verify it (the partial unique index), and that removes
    the others' claims."""

    __tablename__ = "domain_claims"
    __table_args__ = (
        Index("ix_domain_claims_domain", "domain"),
        Index(
            "uq_domain_claims_verified_domain",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    """Lower-case ASCII (IDNA: punycode), without a trailing dot."""
    token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[dt.datetime | None]
    checked_at: Mapped[dt.datetime | None]
    """When the TXT record was last looked up."""
    check_error: Mapped[str | None] = mapped_column(Text)
    """Why that lookup did not verify the domain (None once verified)."""


class WebhookEndpoint(Base):
    """Where an account's events are POSTed (services/webhooks.py, services/webhook_dispatch.py).

    The signing secrets are stored as they are (they must be usable to sign): whoever reads this
    table can forge deliveries to the account's receivers, as with any HMAC scheme."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account_id", "account_id"),)

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The event types delivered; empty: every type."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(400), default="")
    secret: Mapped[str] = mapped_column(String(100))
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks)."""
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[dt.datetime | None]
    """Until then deliveries carry a signature by the previous secret too (rotation overlap)."""
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    """The fan-out cursor: the account's events up to this number have their deliveries."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to send to one endpoint (a resend adds another row for the same event)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivering', 'succeeded', 'failed')", name="state"),
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        Index(
            "ix_webhook_deliveries_endpoint_id_agent_id_event_seq",
            "endpoint_id",
            "agent_id",
            "event_seq",
        ),
        Index("ix_webhook_deliveries_event_id", "event_id"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_updated_at", "updated_at"),  # retention
    )

    id: Mapped[str_id]
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(40))
    """Deliveries about one agent go out one at a time, in event order."""
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    """Pending: when it is due. Delivering: when the lease runs out and another node may retry."""
    locked_until: Mapped[dt.datetime | None]
    """The lease of the node sending it (state delivering)."""
    first_attempt_at: Mapped[dt.datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_latency_ms: Mapped[float | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """One try of a delivery (the delivery log page)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id"),)

    id: Mapped[str_id]
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float]
    error: Mapped[str | None] = mapped_column(String(500))
