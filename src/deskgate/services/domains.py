"""Verified domains: an account claims an email domain and proves it owns it with DNS.

* **Claim.** An admin (or the CLI) adds a domain; it gets a random token. The claim routes
  nothing and admits nothing yet. Several accounts may hold pending claims on one domain; none
  may claim a domain another account has verified.
* **Prove.** The account publishes a TXT record `deskgate-verification=<token>` at
  `_deskgate-verification.<domain>` and presses "Verify now". The lookup (services/dns_txt.py)
  runs outside any transaction; the result is written after. The first account to verify wins
  (a partial unique index decides races between nodes); the other accounts' pending claims on
  the domain are removed then (each gets a domain.removed event), and they cannot claim it again.
* **Use.** Only verified domains route "Login with SSO" (services/sso_routing.py) and admit
  emails: once an account has claimed any domain, single sign-on (JIT or not) and SCIM accept
  only emails in its verified domains (`DomainGate`). An account that claims no domain accepts
  any email, as before domains existed.

Domain names are normalized by deskgate.domain_names (lower case, punycode).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate.domain_names import email_domain, normalize_domain
from deskgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from deskgate.services import events
from deskgate.services.dns_txt import DEFAULT_TIMEOUT, DNSLookupError, Resolver, txt_records
from deskgate.services.events import Actor
from deskgate.store import domains as store
from deskgate.store.models import Account, DomainClaim, Plan

TXT_LABEL = "_deskgate-verification"
TXT_PREFIX = "deskgate-verification="
MAX_CLAIMS = 100
"""Domains one account may claim (verified or not)."""


def txt_name(domain: str) -> str:
    return f"{TXT_LABEL}.{domain}"


def txt_value(token: str) -> str:
    return f"{TXT_PREFIX}{token}"


def _taken(domain: str) -> Conflict:
    return Conflict(
        f"{domain} is already verified by another deskgate account; a domain belongs to one "
        "account. If it should be yours, ask that account's admin to remove it.",
        attribute="domain",
    )


def _require_scale_plus(account: Account) -> None:
    if account.plan != Plan.SCALE_PLUS:
        raise Forbidden(
            "Verified domains are for single sign-on and SCIM, available on the Scale Plus plan."
        )


# --- claims ----------------------------------------------------------------------------


def add_domain(
    db: Session, account: Account, raw: str, *, actor: Actor, now: dt.datetime
) -> DomainClaim:
    """Claim a domain (idempotent: the account's existing claim comes back unchanged)."""
    _require_scale_plus(account)
    domain = normalize_domain(raw)
    existing = store.get(db, account.id, domain)
    if existing is not None:
        return existing
    if store.verified_owner(db, domain) is not None:
        raise _taken(domain)
    if store.count(db, account.id) >= MAX_CLAIMS:
        raise InvalidInput(
            f"An account may claim at most {MAX_CLAIMS} domains; remove one first.",
            field="domain",
        )
    try:
        with db.begin_nested():
            claim = store.add(db, account.id, domain, secrets.token_urlsafe(24), now)
    except IntegrityError:  # the same account added it a moment ago (a double submit)
        found = store.get(db, account.id, domain)
        assert found is not None
        return found
    events.record(db, account.id, "domain.added", actor, {"domain": domain})
    return claim


def remove_domain(db: Session, account: Account, raw: str, *, actor: Actor) -> str:
    domain = raw.strip().lower()
    if store.get(db, account.id, domain) is None:
        # Claims migrated from before verification may not pass today's rules: removable as stored.
        domain = normalize_domain(raw)
    if not store.remove(db, account.id, domain):
        raise NotFound(f"{domain} is not one of this account's domains.")
    events.record(db, account.id, "domain.removed", actor, {"domain": domain})
    return domain


# --- verification: read, look up (no transaction), write --------------------------------


@dataclass(frozen=True)
class Verification:
    domain: str
    verified: bool
    reason: str | None = None
    """Why it is not verified (None when verified)."""


@dataclass(frozen=True)
class PendingCheck:
    domain: str
    txt_name: str
    expected: str


def start_verification(db: Session, account: Account, raw: str) -> PendingCheck | Verification:
    """What to look up, or the answer already known (verified before)."""
    _require_scale_plus(account)
    domain = normalize_domain(raw)
    claim = store.get(db, account.id, domain)
    if claim is None:
        if store.verified_owner(db, domain) is not None:
            raise _taken(domain)
        raise NotFound(f"{domain} is not one of this account's domains: add it first.")
    if claim.verified_at is not None:
        return Verification(domain, True)
    return PendingCheck(domain, txt_name(domain), txt_value(claim.token))


def look_up(
    check: PendingCheck, resolver: Resolver, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    """None when the TXT record is there, else why not. Network only: hold no transaction."""
    try:
        found = txt_records(check.txt_name, resolver, timeout)
    except DNSLookupError as problem:
        return str(problem)
    if not found:
        return f"No TXT record found at {check.txt_name}."
    if check.expected in (value.strip() for value in found):
        return None
    shown = ", ".join(f"“{value[:80]}”" for value in found[:3])
    return (
        f"Found TXT records at {check.txt_name} ({shown}) but none is {check.expected}. "
        "Copy the value exactly; DNS changes can take a few minutes to appear."
    )


def finish_verification(
    db: Session,
    account: Account,
    check: PendingCheck,
    problem: str | None,
    *,
    actor: Actor,
    now: dt.datetime,
) -> Verification:
    """Store what the lookup found (a fresh transaction: the claim is read again)."""
    claim = store.get(db, account.id, check.domain)
    if claim is None or txt_value(claim.token) != check.expected:
        if store.verified_owner(db, check.domain) not in (None, account.id):
            raise _taken(check.domain)
        raise Conflict(
            f"{check.domain} was removed or re-added while it was being checked: try again.",
            attribute="domain",
        )
    if claim.verified_at is not None:
        return Verification(check.domain, True)
    if problem is not None:
        store.record_failed_check(db, claim, now, problem)
        return Verification(check.domain, False, problem)
    try:
        with db.begin_nested():
            store.mark_verified(db, claim, now)
    except IntegrityError:  # another account verified it between our read and this write
        raise _taken(check.domain) from None
    events.record(db, account.id, "domain.verified", actor, {"domain": check.domain})
    dropped = events.actors.system(f"{check.domain} was verified by another account")
    for other in store.remove_pending_of_others(db, check.domain, account.id):
        events.record(db, other, "domain.removed", dropped, {"domain": check.domain})
    return Verification(check.domain, True)


# --- which emails an account admits ------------------------------------------------------


@dataclass(frozen=True)
class DomainGate:
    """The account's claims as they admit emails (SSO sign-ins, SCIM)."""

    verified: frozenset[str]
    pending: frozenset[str]

    @classmethod
    def of(cls, rows: list[tuple[str, bool]]) -> DomainGate:
        return cls(
            frozenset(d for d, verified in rows if verified),
            frozenset(d for d, verified in rows if not verified),
        )

    @classmethod
    def from_column(cls, listed: str | None) -> DomainGate:
        """From store.domains.claimed_domains ("a.example ?b.example": b is unverified)."""
        names = (listed or "").split()
        return cls(
            frozenset(n for n in names if not n.startswith(store.PENDING_MARK)),
            frozenset(n[1:] for n in names if n.startswith(store.PENDING_MARK)),
        )

    @property
    def open(self) -> bool:
        """No domain claimed: any email is admitted."""
        return not self.verified and not self.pending

    def refusal(self, email: str | None) -> tuple[str, str] | None:
        """(reason code, "expected …, received …" for the admin) when `email` is not admitted,
        else None."""
        if self.open:
            return None
        domain = email_domain(email)
        if domain is not None and domain in self.verified:
            return None
        expected = (
            "expected an email in " + ", ".join(sorted(self.verified))
            if self.verified
            else "expected an email in a verified domain (this account has verified none yet)"
        )
        if domain is None:
            return ("email_domain_not_allowed", f"{expected}, received none")
        if domain in self.pending:
            return (
                "email_domain_not_verified",
                f"{expected}, received one in {domain}, which this account claims but has not "
                "verified: publish its TXT record and press Verify now under Manage › Security "
                "› Domains",
            )
        return (
            "email_domain_not_allowed",
            f"{expected}, received one in {domain}. Add and verify the domain under Manage › "
            "Security › Domains, or fix the IdP's email mapping",
        )


def gate(db: Session, account_id: str) -> DomainGate:
    return DomainGate.of(store.gate_rows(db, account_id))
