"""Certificate lifecycle over HTTP: the admin adds the IdP's next certificate (a response it
signed is refused before, accepted after), expiry banners on the Security page, and the SP key
rollover (both keys in the SP metadata, decryption with either, signing switched at the end)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from urllib.parse import unquote, urlsplit

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from deskgate.cli import main
from deskgate.saml.certs import sha256_fingerprint
from deskgate.saml.keys import generate_sp_keypair
from deskgate.services import certificate_watch, certificates
from deskgate.store import certificates as certificate_store
from deskgate.store.base import make_sessionmaker
from deskgate.store.events import page_after
from deskgate.store.models import SSOConnection

from helpers import post_form, sign_in
from saml import samlfactory as f
from web.test_saml_acs import (
    last_attempt,
    path_of,
    post_acs,
    sso_account,  # noqa: F401  (the fixture)
)

NEXT = f.keypair("idp-next")
SECURITY = "/manage/security"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def event_types(sso_account, prefix: str) -> list[tuple[str, dict, str]]:  # type: ignore[type-arg]
    sso_account.db.rollback()
    return [
        (row["type"], dict(row["data"]), row["actor_label"])
        for row in page_after(sso_account.db, sso_account.account.id, 0, 1000)
        if row["type"].startswith(prefix)
    ]


def as_admin(sso_account):  # type: ignore[no-untyped-def]
    sign_in(sso_account.client, sso_account.account.admin_email)
    return sso_account.client


def test_a_response_signed_with_the_next_certificate_is_accepted_once_the_admin_added_it(
    sso_account, new_client
):
    before = post_acs(new_client(), path_of(sso_account.acs), sso_account.response(idp_key=NEXT))
    assert before.status_code == 403
    assert last_attempt(sso_account.db).reason_code == "unknown_signing_certificate", last_attempt(
        sso_account.db
    ).detail

    admin = as_admin(sso_account)
    added = post_form(
        admin, SECURITY, f"{SECURITY}/certificates", {"certificate_pem": NEXT.certificate_pem}
    )
    assert added.status_code == 303
    page = admin.get(SECURITY).text
    assert sha256_fingerprint(NEXT.certificate_pem) in page and "added by an admin" in page

    after = post_acs(new_client(), path_of(sso_account.acs), sso_account.response(idp_key=NEXT))
    assert after.status_code == 303, after.text
    # The current certificate keeps working beside it.
    still = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert still.status_code == 303
    [(kind, data, actor)] = [
        e for e in event_types(sso_account, "certificate.") if e[1]["source"] == "admin"
    ]
    assert (kind, data["fingerprint"], actor) == (
        "certificate.added",
        sha256_fingerprint(NEXT.certificate_pem),
        sso_account.account.admin_email,
    )

    # Removing it refuses its signatures again.
    row = next(
        r
        for r in certificate_store.for_account(sso_account.db, sso_account.account.id)
        if r.source == "admin"
    )
    removed = post_form(admin, SECURITY, f"{SECURITY}/certificates/{row.id}/remove", {})
    assert removed.status_code == 303
    again = post_acs(new_client(), path_of(sso_account.acs), sso_account.response(idp_key=NEXT))
    assert again.status_code == 403


def test_a_bad_certificate_is_refused_with_a_clear_4xx_and_nothing_changes(sso_account):
    admin = as_admin(sso_account)
    stored = certificate_store.pems(sso_account.db, sso_account.account.id)
    for text, status, message in (
        ("not a certificate", 400, "That is not an X.509 certificate"),
        (NEXT.private_key_pem, 400, "That is a private key, not a certificate"),
        (f.keypair("idp").certificate_pem, 409, "is already accepted for this connection"),
    ):
        response = post_form(admin, SECURITY, f"{SECURITY}/certificates", {"certificate_pem": text})
        assert response.status_code == status
        assert message in html.unescape(response.text)
    metadata_row = certificate_store.for_account(sso_account.db, sso_account.account.id)[0]
    refused = post_form(admin, SECURITY, f"{SECURITY}/certificates/{metadata_row.id}/remove", {})
    assert refused.status_code == 409
    assert "comes from the IdP metadata" in html.unescape(refused.text)
    missing = post_form(admin, SECURITY, f"{SECURITY}/certificates/idpcert_nope/remove", {})
    assert missing.status_code == 404
    sso_account.db.rollback()
    assert certificate_store.pems(sso_account.db, sso_account.account.id) == stored
    assert event_types(sso_account, "certificate.removed") == []


def test_the_security_page_warns_about_certificates_close_to_expiry(sso_account):
    now = dt.datetime.now(dt.UTC)
    _, soon = generate_sp_keypair(now - dt.timedelta(days=300), validity=dt.timedelta(days=320))
    _, gone = generate_sp_keypair(now - dt.timedelta(days=30), validity=dt.timedelta(days=10))
    admin = as_admin(sso_account)
    assert (
        post_form(
            admin, SECURITY, f"{SECURITY}/certificates", {"certificate_pem": soon}
        ).status_code
        == 303
    )
    sso_account.db.rollback()  # an expired one can only come from metadata: store it directly
    sso_account.db.add(certificates.new_row(sso_account.account.id, gone, "metadata", now))
    sso_account.db.commit()

    page = html.unescape(admin.get(SECURITY).text)
    expiry = x509.load_pem_x509_certificate(soon.encode()).not_valid_after_utc
    days = (expiry - dt.datetime.now(dt.UTC)).days
    assert (
        f"expires in {days} days on {expiry:%Y-%m-%d %H:%M} UTC — get the IdP's next certificate "
        "and add it below." in page
    )
    assert f"SHA-256 {sha256_fingerprint(soon)}" in page
    assert f"SHA-256 {sha256_fingerprint(gone)}) expired on" in page
    assert page.count('role="alert"') == 2  # the current certificates are years away


def _sp_metadata(client, sso_account) -> etree._Element:  # type: ignore[no-untyped-def]
    response = client.get(path_of(sso_account.entity))
    assert response.status_code == 200
    return etree.fromstring(response.content)


def _published(root: etree._Element) -> list[tuple[str, str]]:
    return [
        (
            descriptor.get("use"),
            sha256_fingerprint(
                descriptor.findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
            ),
        )
        for descriptor in root.iter(f"{{{MD}}}KeyDescriptor")
    ]


def _authn_request_signer(client, sso_account) -> x509.Certificate | None:  # type: ignore[no-untyped-def]
    """Which SP certificate verifies the Signature of an SP-initiated AuthnRequest redirect."""
    location = client.get(f"/api/v1/sso/{sso_account.token}/login/okta").headers["location"]
    raw = dict(part.split("=", 1) for part in urlsplit(location).query.split("&"))
    signed = "&".join(f"{k}={raw[k]}" for k in ("SAMLRequest", "RelayState", "SigAlg") if k in raw)
    signature = base64.b64decode(unquote(raw["Signature"]))
    sso_account.db.rollback()
    connection = sso_account.db.get(SSOConnection, sso_account.account.id)
    for pem in (
        connection.sp_certificate_pem,
        connection.sp_next_certificate_pem,
        connection.sp_previous_certificate_pem,
    ):
        if not pem:
            continue
        certificate = x509.load_pem_x509_certificate(pem.encode())
        key = certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(signature, signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001 - not this one
            continue
        return certificate
    return None


def test_sp_key_rollover_publishes_both_keys_decrypts_with_either_and_switches_signing(
    sso_account, new_client, engine
):
    sso_account.db.rollback()
    old_cert = sso_account.db.get(SSOConnection, sso_account.account.id).sp_certificate_pem
    admin = as_admin(sso_account)
    assert [use for use, _ in _published(_sp_metadata(admin, sso_account))] == [
        "signing",
        "encryption",
    ]

    started = post_form(admin, SECURITY, f"{SECURITY}/sp-key/rollover", {})
    assert started.status_code == 303
    sso_account.db.rollback()
    new_cert = sso_account.db.get(SSOConnection, sso_account.account.id).sp_next_certificate_pem
    assert new_cert
    old_fp, new_fp = sha256_fingerprint(old_cert), sha256_fingerprint(new_cert)
    # Both certificates, each as signing and encryption; the current one first.
    assert _published(_sp_metadata(new_client(), sso_account)) == [
        ("signing", old_fp),
        ("encryption", old_fp),
        ("signing", new_fp),
        ("encryption", new_fp),
    ]
    page = html.unescape(admin.get(SECURITY).text)
    assert "SP key rollover under way" in page and "Encryption Certificate" in page
    assert new_fp in page
    # Assertions encrypted to either key are decrypted; requests are still signed with the old.
    for cert in (new_cert, old_cert):
        response = post_acs(
            new_client(),
            path_of(sso_account.acs),
            sso_account.response(encrypt_for=cert, sign_response=True),
        )
        assert response.status_code == 303, response.text
    assert sha256_fingerprint(_pem(_authn_request_signer(new_client(), sso_account))) == old_fp
    second = post_form(admin, SECURITY, f"{SECURITY}/sp-key/rollover", {})
    assert second.status_code == 409 and "already under way" in second.text

    completed = post_form(admin, SECURITY, f"{SECURITY}/sp-key/rollover/complete", {})
    assert completed.status_code == 303
    assert _published(_sp_metadata(new_client(), sso_account)) == [
        ("signing", new_fp),
        ("encryption", new_fp),
    ]
    assert sha256_fingerprint(_pem(_authn_request_signer(new_client(), sso_account))) == new_fp
    # The old key still decrypts during the overlap (an IdP not yet updated keeps working) ...
    to_old = sso_account.response(encrypt_for=old_cert, sign_response=True)
    assert post_acs(new_client(), path_of(sso_account.acs), to_old).status_code == 303
    # ... and not after it.
    certificate_watch.run(
        make_sessionmaker(engine), dt.datetime.now(dt.UTC) + dt.timedelta(days=15)
    )
    refused = post_acs(
        new_client(),
        path_of(sso_account.acs),
        sso_account.response(encrypt_for=old_cert, sign_response=True),
    )
    assert refused.status_code == 403
    assert last_attempt(sso_account.db).reason_code == "decryption_failed"
    again = post_form(admin, SECURITY, f"{SECURITY}/sp-key/rollover/complete", {})
    assert again.status_code == 409 and "No SP key rollover is under way" in again.text

    assert [(kind, data) for kind, data, _ in event_types(sso_account, "sp_key.")] == [
        (
            "sp_key.rollover_started",
            {
                "fingerprint": new_fp,
                "not_after": (
                    x509.load_pem_x509_certificate(new_cert.encode()).not_valid_after_utc.strftime(
                        "%Y-%m-%dT%H:%M:%S.000000Z"
                    )
                ),
            },
        ),
        ("sp_key.rollover_completed", {"fingerprint": new_fp, "previous_fingerprint": old_fp}),
    ]


def _pem(certificate: x509.Certificate | None) -> str:
    assert certificate is not None, "no SP certificate verifies the AuthnRequest signature"
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_the_cli_check_prints_what_it_found_and_records_it_once(sso_account, database_url):
    now = dt.datetime.now(dt.UTC)
    _, soon = generate_sp_keypair(now - dt.timedelta(days=300), validity=dt.timedelta(days=310))
    sso_account.db.rollback()
    sso_account.db.add(certificates.new_row(sso_account.account.id, soon, "admin", now))
    sso_account.db.commit()

    def check() -> dict:  # type: ignore[type-arg]
        result = CliRunner().invoke(
            main,
            ["certificates", "check"],
            env={"DESKGATE_DATABASE_URL": database_url},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)  # type: ignore[no-any-return]

    first, second = check(), check()
    [finding] = first["findings"]
    assert (finding["usage"], finding["threshold_days"], finding["event"], finding["recorded"]) == (
        "idp_signing",
        30,
        "certificate.expiring",
        True,
    )
    assert finding["fingerprint"] == sha256_fingerprint(soon)
    assert (first["recorded"], second["recorded"]) == (1, 0)
    assert [f["recorded"] for f in second["findings"]] == [False]
    [(_, data, actor)] = event_types(sso_account, "certificate.expiring")
    assert (data["days"], data["threshold_days"], actor) == (
        finding["days_left"],
        30,
        "certificate watch",
    )
