"""`deskgate domains add|verify`: claim an account's email domain and verify it by DNS.

`add` prints the TXT record to publish; `verify` looks it up (DESKGATE_DNS_RESOLVER, else the
system's resolver) and prints whether the domain is verified. A lookup that does not find the
record is an answer, not bad input: exit 0 with `"verified": false` and the `reason`. Bad input
(unknown account, invalid domain, a domain not claimed by the account, or verified by another
account) exits 2 with one line on stderr and writes nothing.
"""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from deskgate.cli_support import fail, print_json, transaction
from deskgate.cli_support import load as cli_settings
from deskgate.services import domains as domain_service
from deskgate.services.dns_txt import DNSLookupError, resolver_from
from deskgate.services.events import actors
from deskgate.store import accounts as account_store
from deskgate.store.base import utcnow
from deskgate.store.models import Account


@click.group("domains")
def domains() -> None:
    """Verified email domains (Manage › Security › Domains)."""


def _account(db: Session, account_id: str) -> Account:
    account = account_store.get(db, account_id)
    if account is None:
        fail(f"no account with id {account_id}")
    return account


@domains.command("add")
@click.argument("account_id")
@click.argument("domain")
def add(account_id: str, domain: str) -> None:
    """Claim DOMAIN for the account; prints the TXT record that proves it."""
    with transaction(cli_settings()) as db:
        claim = domain_service.add_domain(
            db, _account(db, account_id), domain, actor=actors.operator(), now=utcnow()
        )
        result = {
            "domain": claim.domain,
            "txt_name": domain_service.txt_name(claim.domain),
            "txt_value": domain_service.txt_value(claim.token),
        }
    print_json(result)


@domains.command("verify")
@click.argument("account_id")
@click.argument("domain")
def verify(account_id: str, domain: str) -> None:
    """Look up DOMAIN's TXT record and verify the account's claim if it is there."""
    settings = cli_settings()
    with transaction(settings) as db:
        check = domain_service.start_verification(db, _account(db, account_id), domain)
    if isinstance(check, domain_service.PendingCheck):
        try:  # outside any transaction: the lookup may take seconds
            problem = domain_service.look_up(check, resolver_from(settings.dns_resolver))
        except DNSLookupError as no_resolver:
            problem = str(no_resolver)
        with transaction(settings) as db:
            check = domain_service.finish_verification(
                db, _account(db, account_id), check, problem, actor=actors.operator(), now=utcnow()
            )
    result: dict[str, object] = {"domain": check.domain, "verified": check.verified}
    if not check.verified:
        result["reason"] = check.reason
    print_json(result)
