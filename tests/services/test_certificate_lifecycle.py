"""Certificate lifecycle (services): a metadata rollover keeps the dropped certificate for the
overlap, admins add the IdP's next certificate, and the expiry watch records each warning once,
even with two nodes passing at the same moment. Real certificates, fixed clocks."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from deskgate.errors import Conflict, InvalidInput
from deskgate.saml.certs import load_certificate, normalize_certificate_pem, sha256_fingerprint
from deskgate.services import certificate_watch, certificates, sp_keys, sso
from deskgate.services.events import actors
from deskgate.store import accounts as account_store
from deskgate.store import certificates as certificate_store
from deskgate.store.base import make_sessionmaker
from deskgate.store.events import page_after
from deskgate.store.models import CertificateNotice, SSOConnection

from saml import samlfactory as f
from web.test_saml_acs import IDP_ENTITY, IDP_SSO

OLD = f.keypair("idp")  # valid 2020-01-01 .. 2029-12-28
NEW = f.keypair("idp-next")
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
ADMIN = actors.admin("agt_x", "admin@example.com")
DAY = dt.timedelta(days=1)
OLD_NOT_AFTER = load_certificate(OLD.certificate_pem).not_valid_after_utc


def metadata(*keys: f.KeyPair) -> str:
    descriptors = "".join(
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        f"<ds:X509Data><ds:X509Certificate>{key.certificate_b64}</ds:X509Certificate>"
        f"</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for key in keys
    )
    return (
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{IDP_ENTITY}">'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{descriptors}"
        f'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        f'Location="{IDP_SSO}"/></md:IDPSSODescriptor></md:EntityDescriptor>'
    )


def save(db, account_id: str, xml: str, now: dt.datetime, overlap: dt.timedelta = 14 * DAY):
    sso.save_settings(
        db,
        account_store.get(db, account_id),
        sso.SSOSettingsForm(enabled=True, idp_kind="okta", metadata_xml=xml),
        now=now,
        base_url="http://testserver",
        actor=ADMIN,
        certificate_overlap=overlap,
    )
    db.commit()


def events_of(db, account_id: str, prefix: str = "certificate."):
    db.rollback()
    return [
        (row["type"], dict(row["data"]), row["actor_label"])
        for row in page_after(db, account_id, 0, 1000)
        if row["type"].startswith(prefix)
    ]


def pem(key: f.KeyPair) -> str:
    return normalize_certificate_pem(key.certificate_pem)


def test_a_rollover_keeps_the_dropped_certificate_for_the_overlap_then_removes_it(
    db, engine, make_account
):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    save(db, account.id, metadata(NEW), T0 + DAY)
    rows = {row.fingerprint: row for row in certificate_store.for_account(db, account.id)}
    kept = rows[sha256_fingerprint(OLD.certificate_pem)]
    assert (kept.source, kept.keep_until) == ("previous_metadata", T0 + 15 * DAY)
    assert rows[sha256_fingerprint(NEW.certificate_pem)].source == "metadata"
    assert certificate_store.pems(db, account.id) == [pem(OLD), pem(NEW)]

    sessions = make_sessionmaker(engine)
    certificate_watch.run(sessions, T0 + 14 * DAY)  # the overlap is not over
    assert certificate_store.pems(db, account.id) == [pem(OLD), pem(NEW)]
    before = db.get(SSOConnection, account.id).updated_at
    report = certificate_watch.run(sessions, T0 + 15 * DAY + dt.timedelta(minutes=1))
    db.rollback()
    assert certificate_store.pems(db, account.id) == [pem(NEW)]
    assert db.get(SSOConnection, account.id).updated_at > before  # every worker re-reads
    assert [r["fingerprint"] for r in report.to_json()["removed"]] == [
        sha256_fingerprint(OLD.certificate_pem)
    ]
    recorded = events_of(db, account.id)
    assert [(kind, data.get("source") or data.get("reason")) for kind, data, _ in recorded] == [
        ("certificate.added", "metadata"),
        ("certificate.added", "metadata"),
        ("certificate.removed", "overlap_ended"),
    ]
    assert recorded[0][2] == "admin@example.com" and recorded[2][2] == "certificate watch"


def test_the_metadata_listing_a_kept_certificate_again_keeps_it_for_good(db, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    save(db, account.id, metadata(NEW), T0 + DAY)
    save(db, account.id, metadata(OLD, NEW), T0 + 2 * DAY)
    assert {row.source for row in certificate_store.for_account(db, account.id)} == {"metadata"}
    assert all(row.keep_until is None for row in certificate_store.for_account(db, account.id))


def test_a_dropped_certificate_that_has_expired_goes_at_once(db, make_account):
    short = f.keypair("idp-short", days=400)  # 2020-01-01 .. 2021-02-04
    account = make_account()
    when = dt.datetime(2021, 1, 10, tzinfo=dt.UTC)
    save(db, account.id, metadata(OLD, short), when)
    save(db, account.id, metadata(OLD), when + 30 * DAY)  # short expired meanwhile
    assert certificate_store.pems(db, account.id) == [pem(OLD)]
    assert events_of(db, account.id)[-1][:2] == (
        "certificate.removed",
        {
            "fingerprint": sha256_fingerprint(short.certificate_pem),
            "subject": "CN=test idp-short",
            "not_after": "2021-02-04T00:00:00.000000Z",
            "reason": "dropped_from_metadata",
        },
    )


def test_an_overlap_of_zero_drops_at_once(db, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    save(db, account.id, metadata(NEW), T0 + DAY, overlap=dt.timedelta(0))
    assert certificate_store.pems(db, account.id) == [pem(NEW)]


# --- admins ------------------------------------------------------------------------------


def _connection(db, account_id: str) -> SSOConnection:
    connection = db.get(SSOConnection, account_id)
    assert connection is not None
    return connection


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "No certificate given"),
        ("hello", "not an X.509 certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "not an X.509"),
        (OLD.private_key_pem, "That is a private key, not a certificate"),
        (f.keypair("idp-short", days=400).certificate_pem, "expired on 2021-02-04"),
    ],
)
def test_a_pasted_certificate_is_refused_with_a_clear_reason(db, make_account, text, message):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    with pytest.raises(InvalidInput, match=message):
        certificates.add_by_admin(db, _connection(db, account.id), text, T0, actor=ADMIN)
    db.rollback()
    assert certificate_store.pems(db, account.id) == [pem(OLD)]


def test_admins_add_the_next_certificate_and_remove_only_their_own(db, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    connection = _connection(db, account.id)
    added = certificates.add_by_admin(db, connection, NEW.certificate_b64, T0 + DAY, actor=ADMIN)
    db.commit()
    assert certificate_store.pems(db, account.id) == [pem(OLD), pem(NEW)]
    assert connection.updated_at == T0 + DAY
    with pytest.raises(Conflict, match="already accepted"):
        certificates.add_by_admin(db, connection, NEW.certificate_pem, T0 + DAY, actor=ADMIN)
    metadata_row = next(
        r for r in certificate_store.for_account(db, account.id) if r.id != added.id
    )
    with pytest.raises(Conflict, match="comes from the IdP metadata"):
        certificates.remove_by_admin(db, connection, metadata_row.id, T0, actor=ADMIN)
    # A metadata refresh leaves an admin's certificate alone.
    save(db, account.id, metadata(OLD), T0 + 2 * DAY)
    assert certificate_store.pems(db, account.id) == [pem(OLD), pem(NEW)]
    certificates.remove_by_admin(db, connection, added.id, T0 + 3 * DAY, actor=ADMIN)
    db.commit()
    assert certificate_store.pems(db, account.id) == [pem(OLD)]
    assert [
        (kind, data.get("source") or data.get("reason"))
        for kind, data, _ in events_of(db, account.id)
    ] == [
        ("certificate.added", "metadata"),
        ("certificate.added", "admin"),
        ("certificate.removed", "removed_by_admin"),
    ]


def test_the_last_valid_certificate_cannot_be_removed(db, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    connection = _connection(db, account.id)
    added = certificates.add_by_admin(db, connection, NEW.certificate_pem, T0, actor=ADMIN)
    db.commit()
    after_old_expired = OLD_NOT_AFTER + DAY
    with pytest.raises(Conflict, match="last valid signing certificate"):
        certificates.remove_by_admin(db, connection, added.id, after_old_expired, actor=ADMIN)
    db.rollback()
    assert len(certificate_store.pems(db, account.id)) == 2


# --- the expiry watch --------------------------------------------------------------------


def expiry_events(db, account_id: str, usage: str = "idp_signing"):
    return [
        (kind, data.get("threshold_days"), data.get("days"))
        for kind, data, _ in events_of(db, account_id)
        if kind in ("certificate.expiring", "certificate.expired") and data["usage"] == usage
    ]


def test_each_warning_is_recorded_once_at_90_30_7_and_1_days_and_at_expiry(
    db, engine, make_account
):
    account = make_account()
    save(db, account.id, metadata(OLD), OLD_NOT_AFTER - 200 * DAY)
    sessions = make_sessionmaker(engine)
    hour = dt.timedelta(hours=1)
    for moment in (
        OLD_NOT_AFTER - 100 * DAY,  # nothing due
        OLD_NOT_AFTER - 90 * DAY + hour,
        OLD_NOT_AFTER - 89 * DAY,  # already told
        OLD_NOT_AFTER - 30 * DAY + hour,
        OLD_NOT_AFTER - 5 * DAY + hour,  # a pass that missed day 7 still warns, once
        OLD_NOT_AFTER - 4 * DAY,
        OLD_NOT_AFTER - hour,
        OLD_NOT_AFTER + hour,
        OLD_NOT_AFTER + 10 * DAY,
    ):
        certificate_watch.run(sessions, moment)
    assert expiry_events(db, account.id) == [
        ("certificate.expiring", 90, 89),
        ("certificate.expiring", 30, 29),
        ("certificate.expiring", 7, 4),
        ("certificate.expiring", 1, 0),
        ("certificate.expired", None, None),
    ]
    assert events_of(db, account.id)[-1][2] == "certificate watch"


def test_a_certificate_first_seen_late_gets_only_the_most_urgent_warning(db, engine, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), OLD_NOT_AFTER - 20 * DAY)
    report = certificate_watch.run(make_sessionmaker(engine), OLD_NOT_AFTER - 6 * DAY)
    assert expiry_events(db, account.id) == [("certificate.expiring", 7, 6)]
    finding = report.to_json()["findings"][0]
    assert (finding["usage"], finding["threshold_days"], finding["recorded"]) == (
        "idp_signing",
        7,
        True,
    )


def test_the_sp_certificate_is_watched_too(db, engine, make_account):
    account = make_account()
    save(db, account.id, metadata(NEW), T0)  # the SP key is made at T0, for ten years
    sp_not_after = load_certificate(
        _connection(db, account.id).sp_certificate_pem
    ).not_valid_after_utc
    db.rollback()
    certificate_watch.run(make_sessionmaker(engine), sp_not_after - 25 * DAY)
    assert expiry_events(db, account.id, usage="sp") == [("certificate.expiring", 30, 25)]


def test_two_nodes_passing_at_once_record_each_warning_once(db, engine, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), OLD_NOT_AFTER - 200 * DAY)
    sessions = make_sessionmaker(engine)
    moment = OLD_NOT_AFTER - 29 * DAY
    first = sessions()
    first_findings, _ = certificate_watch.check_connection(
        first, first.get(SSOConnection, account.id), moment
    )
    # The second node starts its pass while the first one's transaction is still open.
    second_result: list[object] = []

    def second_node() -> None:
        with sessions() as second:
            findings, _ = certificate_watch.check_connection(
                second, second.get(SSOConnection, account.id), moment
            )
            second.commit()
            second_result.extend(findings)

    thread = threading.Thread(target=second_node)
    thread.start()
    thread.join(0.5)  # it waits for the first (row lock / write lock)
    first.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive()
    assert [finding.recorded for finding in first_findings] == [True]
    assert [finding.recorded for finding in second_result] == [False]  # type: ignore[attr-defined]
    assert expiry_events(db, account.id) == [("certificate.expiring", 30, 29)]

    # And two whole passes at once, many times over: still one event per threshold.
    barrier = threading.Barrier(2)

    def node(moment: dt.datetime) -> None:
        barrier.wait()
        certificate_watch.run(sessions, moment)

    for when in (
        OLD_NOT_AFTER - 6 * DAY,
        OLD_NOT_AFTER - dt.timedelta(hours=2),
        OLD_NOT_AFTER + DAY,
    ):
        threads = [threading.Thread(target=node, args=(when,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [kind for kind, _, _ in expiry_events(db, account.id)] == [
        "certificate.expiring",
        "certificate.expiring",
        "certificate.expiring",
        "certificate.expired",
    ]
    db.rollback()
    assert len(db.execute(select(CertificateNotice)).all()) == 4


def test_at_most_two_sp_keys_decrypt_at_any_time(db, make_account):
    account = make_account()
    save(db, account.id, metadata(OLD), T0)
    connection = _connection(db, account.id)
    first = connection.sp_certificate_pem
    sp_keys.start_rollover(db, connection, "Acme", T0 + DAY, actor=ADMIN)
    sp_keys.complete_rollover(db, connection, T0 + 2 * DAY, overlap=14 * DAY, actor=ADMIN)
    assert connection.sp_previous_certificate_pem == first
    # A new rollover within the overlap ends the first key's: current + next, nothing more.
    sp_keys.start_rollover(db, connection, "Acme", T0 + 3 * DAY, actor=ADMIN)
    db.commit()
    assert connection.sp_previous_certificate_pem is None
    assert connection.sp_next_certificate_pem not in (None, first)
    assert connection.updated_at == T0 + 3 * DAY
