"""validate_response against freshly signed responses from a throw-away test IdP.

Each test builds one response with samlfactory (valid by default), changes one
thing, and checks the outcome: the verified values on success, the error code
(and where useful the message / expected / received) on refusal.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
from datetime import timedelta

import pytest
import xmlsec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from deskgate.saml.acs import MAX_RESPONSE_BYTES, VerifiedAssertion, validate_response
from deskgate.saml.certs import sha256_fingerprint
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


@pytest.fixture
def make(factory, spec, idp_key):
    """make(xml-producing kwargs) -> base64 response; defaults to an assertion-signed valid response."""

    def build(response_spec=None, **kwargs):
        kwargs.setdefault("idp_key", idp_key)
        return factory.make_response(response_spec or spec, **kwargs)

    return build


def refuse(
    response: str | bytes, sp: SPConfig, idp: IdPConfig, now, code: SAMLErrorCode
) -> SAMLError:
    with pytest.raises(SAMLError) as caught:
        validate_response(response, sp, idp, now)
    assert caught.value.code == code, caught.value
    return caught.value


def b64(factory, root: etree._Element) -> str:
    return factory.b64(etree.tostring(root))


# ------------------------------------------------------------------ accepted


def test_signed_assertion_is_accepted_with_verified_values(
    make, spec, sp_config, idp_config, idp_key
):
    verified = validate_response(make(), sp_config, idp_config, spec.now)

    assert isinstance(verified, VerifiedAssertion)
    assert verified.assertion_id == spec.assertion_id
    assert verified.issuer == spec.idp_entity_id
    assert verified.name_id == "agent@example.com"
    assert verified.name_id_format == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert verified.session_index == "_session-1"
    assert verified.in_response_to == "_req-123"
    assert verified.issue_instant == spec.now
    assert verified.not_on_or_after == spec.now + timedelta(minutes=5)
    assert verified.replay_cache_until == verified.not_on_or_after + sp_config.clock_skew
    assert verified.attributes == {
        "email": ("agent@example.com",),
        "firstName": ("Ada",),
        "lastName": ("Lovelace",),
    }
    assert (verified.response_signed, verified.assertion_signed, verified.encrypted) == (
        False,
        True,
        False,
    )
    assert verified.signing_certificate_sha256 == sha256_fingerprint(idp_key.certificate_pem)


def test_not_on_or_after_is_the_earliest_of_conditions_and_confirmation(
    factory, make, spec, sp_config, idp_config
):
    early = dataclasses.replace(spec, scd_not_on_or_after=spec.now + timedelta(minutes=1))
    assert validate_response(
        make(early), sp_config, idp_config, spec.now
    ).not_on_or_after == spec.now + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("sign_assertion", "sign_response"),
    [(False, True), (True, True)],
    ids=["response-only", "both"],
)
def test_response_level_signature_covers_the_assertion(
    make, spec, sp_config, idp_config, sign_assertion, sign_response
):
    verified = validate_response(
        make(sign_assertion=sign_assertion, sign_response=sign_response),
        sp_config,
        idp_config,
        spec.now,
    )
    assert (verified.response_signed, verified.assertion_signed) == (sign_response, sign_assertion)
    assert verified.name_id == "agent@example.com"


@pytest.mark.parametrize(
    ("sign_assertion", "sign_response"),
    [(True, False), (False, True), (True, True)],
    ids=["assertion", "response", "both"],
)
def test_encrypted_assertion_is_decrypted_with_the_sp_key(
    make, spec, sp_key, sp_config, idp_config, sign_assertion, sign_response
):
    response = make(
        sign_assertion=sign_assertion,
        sign_response=sign_response,
        encrypt_for=sp_key.certificate_pem,
    )
    verified = validate_response(response, sp_config, idp_config, spec.now)
    assert verified.encrypted
    assert verified.name_id == "agent@example.com"
    assert verified.in_response_to == "_req-123"


def test_aes_gcm_encryption_is_accepted(factory, spec, sp_key, sp_config, idp_config):
    assertion = factory.signed_assertion(spec)
    encrypted = factory.encrypt_assertion(
        assertion, sp_key.certificate_pem, block=xmlsec.Transform.AES128_GCM
    )
    verified = validate_response(
        factory.b64(factory.wrap(encrypted, spec)), sp_config, idp_config, spec.now
    )
    assert verified.encrypted and verified.name_id == "agent@example.com"


def test_encrypted_name_id_is_decrypted(factory, spec, sp_key, sp_config, idp_config):
    assertion = factory.build_assertion(spec)
    factory.encrypt_name_id(assertion, sp_key.certificate_pem)
    signed = factory.sign_element(assertion, factory.keypair("idp"))
    verified = validate_response(
        factory.b64(factory.wrap(signed, spec)), sp_config, idp_config, spec.now
    )
    assert verified.name_id == "agent@example.com"


def test_wrapped_base64_and_bytes_are_accepted(make, spec, sp_config, idp_config):
    response = make()
    wrapped = "\r\n".join(response[i : i + 76] for i in range(0, len(response), 76))
    assert (
        validate_response(wrapped, sp_config, idp_config, spec.now).name_id == "agent@example.com"
    )
    assert (
        validate_response(response.encode(), sp_config, idp_config, spec.now).name_id
        == "agent@example.com"
    )


def test_certificate_rollover_any_configured_certificate_verifies(
    factory, make, spec, sp_config, idp_key
):
    idp = IdPConfig(
        entity_id=spec.idp_entity_id,
        sso_url="https://idp.example.test/sso",
        signing_certificates=(factory.keypair("next-idp").certificate_pem, idp_key.certificate_pem),
    )
    verified = validate_response(make(), sp_config, idp, spec.now)
    assert verified.signing_certificate_sha256 == sha256_fingerprint(idp_key.certificate_pem)


def test_rsa_sha512_is_accepted(make, spec, sp_config, idp_config):
    response = make(sign_algorithm=RSA_SHA512, digest_algorithm=SHA512)
    assert (
        validate_response(response, sp_config, idp_config, spec.now).name_id == "agent@example.com"
    )


def test_idp_initiated_response_has_no_in_response_to(make, spec, sp_config, idp_config):
    unsolicited = dataclasses.replace(spec, in_response_to=None)
    assert (
        validate_response(make(unsolicited), sp_config, idp_config, spec.now).in_response_to is None
    )


def test_idp_initiated_response_refused_when_unsolicited_is_disabled(
    make, spec, sp_config, idp_config
):
    unsolicited = dataclasses.replace(spec, in_response_to=None)
    sp = dataclasses.replace(sp_config, allow_unsolicited=False)
    refuse(make(unsolicited), sp, idp_config, spec.now, SAMLErrorCode.UNSOLICITED_RESPONSE)
    # ...while an SP-initiated one still goes through.
    assert validate_response(make(), sp, idp_config, spec.now).in_response_to == "_req-123"


def test_assertion_without_authn_statement_is_accepted(make, spec, sp_config, idp_config):
    verified = validate_response(
        make(dataclasses.replace(spec, include_authn_statement=False)),
        sp_config,
        idp_config,
        spec.now,
    )
    assert verified.session_index is None and verified.session_not_on_or_after is None


def test_destination_may_be_absent_and_host_case_is_ignored(make, spec, sp_config, idp_config):
    assert validate_response(
        make(dataclasses.replace(spec, destination="")), sp_config, idp_config, spec.now
    )
    shouting = spec.acs_url.replace("https://sp.example.test", "HTTPS://SP.EXAMPLE.TEST")
    assert validate_response(
        make(dataclasses.replace(spec, destination=shouting)), sp_config, idp_config, spec.now
    )


def test_response_issuer_is_optional(make, spec, sp_config, idp_config):
    assert validate_response(
        make(dataclasses.replace(spec, response_issuer="")), sp_config, idp_config, spec.now
    )


def test_several_audiences_including_ours(make, spec, sp_config, idp_config):
    other = dataclasses.replace(spec, audiences=("https://someone.else/", spec.sp_entity_id))
    assert validate_response(make(other), sp_config, idp_config, spec.now)


# ---------------------------------------------------------------------- time


def test_expired_beyond_clock_skew(make, spec, sp_config, idp_config):
    now = spec.now + timedelta(minutes=5 + 7)
    error = refuse(make(), sp_config, idp_config, now, SAMLErrorCode.EXPIRED)
    assert "expired 7 minutes ago" in error.message and "check the IdP's clock" in error.message
    assert error.received == "2025-03-14T09:31:53Z"


def test_clock_skew_tolerates_a_late_post(make, spec, sp_config, idp_config):
    assert validate_response(
        make(), sp_config, idp_config, spec.now + timedelta(minutes=5, seconds=90)
    )


def test_not_on_or_after_is_exclusive(make, spec, sp_config, idp_config):
    sp = dataclasses.replace(sp_config, clock_skew=timedelta(0))
    refuse(make(), sp, idp_config, spec.now + timedelta(minutes=5), SAMLErrorCode.EXPIRED)
    assert validate_response(
        make(), sp, idp_config, spec.now + timedelta(minutes=5) - timedelta(seconds=1)
    )


def test_conditions_not_before_in_the_future(make, spec, sp_config, idp_config):
    future = dataclasses.replace(spec, not_before=spec.now + timedelta(minutes=10))
    error = refuse(make(future), sp_config, idp_config, spec.now, SAMLErrorCode.NOT_YET_VALID)
    assert "Conditions NotBefore" in error.message and "10 minutes" in error.message


def test_issue_instant_in_the_future(make, spec, sp_config, idp_config):
    refuse(
        make(), sp_config, idp_config, spec.now - timedelta(minutes=3), SAMLErrorCode.NOT_YET_VALID
    )


def test_subject_confirmation_expired(make, spec, sp_config, idp_config):
    short = dataclasses.replace(spec, scd_not_on_or_after=spec.now - timedelta(minutes=3))
    error = refuse(make(short), sp_config, idp_config, spec.now, SAMLErrorCode.EXPIRED)
    assert "SubjectConfirmationData" in error.message


def test_subject_confirmation_not_before_in_the_future(make, spec, sp_config, idp_config):
    early = dataclasses.replace(spec, scd_not_before=spec.now + timedelta(minutes=5))
    refuse(make(early), sp_config, idp_config, spec.now, SAMLErrorCode.NOT_YET_VALID)


def test_subject_confirmation_without_not_on_or_after(make, spec, sp_config, idp_config):
    forever = dataclasses.replace(spec, omit_scd_not_on_or_after=True)
    refuse(make(forever), sp_config, idp_config, spec.now, SAMLErrorCode.NO_BEARER_CONFIRMATION)


def test_session_not_on_or_after_passed(make, spec, sp_config, idp_config):
    ended = dataclasses.replace(spec, session_not_on_or_after=spec.now - timedelta(minutes=10))
    refuse(make(ended), sp_config, idp_config, spec.now, SAMLErrorCode.SESSION_EXPIRED)


def test_naive_now_is_a_programming_error(make, spec, sp_config, idp_config):
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_response(make(), sp_config, idp_config, spec.now.replace(tzinfo=None))


# ------------------------------------------------------------ who and where


def test_wrong_audience(make, spec, sp_config, idp_config):
    other = dataclasses.replace(spec, audiences=("https://other.example/metadata",))
    error = refuse(make(other), sp_config, idp_config, spec.now, SAMLErrorCode.WRONG_AUDIENCE)
    assert error.message.startswith(
        "Audience was https://other.example/metadata, expected " + spec.sp_entity_id
    )
    assert (error.expected, error.received) == (spec.sp_entity_id, "https://other.example/metadata")


def test_missing_audience(make, spec, sp_config, idp_config):
    refuse(
        make(dataclasses.replace(spec, audiences=())),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.MISSING_AUDIENCE,
    )


def test_missing_conditions(make, spec, sp_config, idp_config):
    refuse(
        make(dataclasses.replace(spec, include_conditions=False)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.MISSING_CONDITIONS,
    )


@pytest.mark.parametrize("which", ["assertion_issuer", "response_issuer"])
def test_wrong_issuer(make, spec, sp_config, idp_config, which):
    other = dataclasses.replace(spec, **{which: "https://evil.example/idp"})
    error = refuse(make(other), sp_config, idp_config, spec.now, SAMLErrorCode.WRONG_ISSUER)
    assert (error.expected, error.received) == (spec.idp_entity_id, "https://evil.example/idp")


def test_assertion_without_issuer_is_schema_invalid(make, spec, sp_config, idp_config):
    # SAML core makes the Assertion Issuer mandatory; the schema already says so.
    refuse(
        make(dataclasses.replace(spec, assertion_issuer="")),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.SCHEMA_INVALID,
    )


@pytest.mark.parametrize("destination", ["https://sp.example.test/api/v1/sso/tok/acs/OTHER", ""])
def test_wrong_or_empty_destination(factory, make, spec, sp_config, idp_config, destination):
    root = factory.parse(base64.b64decode(make()))
    root.set("Destination", destination)  # outside the signed assertion: still checked
    error = refuse(
        b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.WRONG_DESTINATION
    )
    assert (error.expected, error.received) == (spec.acs_url, destination)


@pytest.mark.parametrize("recipient", ["https://sp.example.test/api/v1/sso/tok/acs/OTHER", ""])
def test_wrong_or_missing_recipient(make, spec, sp_config, idp_config, recipient):
    error = refuse(
        make(dataclasses.replace(spec, recipient=recipient)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.WRONG_RECIPIENT,
    )
    assert error.expected == spec.acs_url


def test_a_valid_bearer_confirmation_among_several_is_enough(factory, spec, sp_config, idp_config):
    assertion = factory.build_assertion(spec)
    subject = assertion.find(f"{SAML}Subject")
    good = subject.find(f"{SAML}SubjectConfirmation")
    bad = copy.deepcopy(good)
    bad.find(f"{SAML}SubjectConfirmationData").set("Recipient", "https://elsewhere.example/acs")
    good.addprevious(bad)
    signed = factory.sign_element(assertion, factory.keypair("idp"))
    assert validate_response(
        factory.b64(factory.wrap(signed, spec)), sp_config, idp_config, spec.now
    )


def test_holder_of_key_confirmation_is_refused(make, spec, sp_config, idp_config):
    hok = dataclasses.replace(spec, method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")
    refuse(make(hok), sp_config, idp_config, spec.now, SAMLErrorCode.NO_BEARER_CONFIRMATION)


def test_sp_name_qualifier_must_be_ours(make, spec, sp_config, idp_config):
    refuse(
        make(dataclasses.replace(spec, sp_name_qualifier="https://other.example/sp")),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.WRONG_SP_NAME_QUALIFIER,
    )
    assert validate_response(
        make(dataclasses.replace(spec, sp_name_qualifier=spec.sp_entity_id)),
        sp_config,
        idp_config,
        spec.now,
    )


def test_missing_name_id(make, spec, sp_config, idp_config):
    refuse(
        make(dataclasses.replace(spec, name_id=None)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.MISSING_NAME_ID,
    )
    refuse(
        make(dataclasses.replace(spec, name_id="  ")),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.MISSING_NAME_ID,
    )


def test_idp_error_status_is_reported(make, spec, sp_config, idp_config):
    failed = dataclasses.replace(
        spec,
        status_code="urn:oasis:names:tc:SAML:2.0:status:Responder",
        status_message="User is not assigned to this application",
    )
    error = refuse(make(failed), sp_config, idp_config, spec.now, SAMLErrorCode.IDP_ERROR_STATUS)
    assert "Responder / AuthnFailed" in error.message
    assert "User is not assigned to this application" in error.message
    assert error.received.startswith("urn:oasis:names:tc:SAML:2.0:status:Responder")


# ------------------------------------------------------------- InResponseTo


def test_in_response_to_disagreement_is_refused(make, spec, sp_config, idp_config):
    mixed = dataclasses.replace(spec, in_response_to="_req-123", scd_in_response_to="_req-999")
    for kwargs in ({}, {"sign_response": True}):
        error = refuse(
            make(mixed, **kwargs),
            sp_config,
            idp_config,
            spec.now,
            SAMLErrorCode.IN_RESPONSE_TO_MISMATCH,
        )
        assert (error.expected, error.received) == ("_req-999", "_req-123")


def test_unsigned_response_in_response_to_is_not_trusted(make, spec, sp_config, idp_config):
    # An attacker can add InResponseTo to the unsigned envelope of an IdP-initiated assertion.
    grafted = dataclasses.replace(spec, in_response_to="_req-123", scd_in_response_to="")
    refuse(make(grafted), sp_config, idp_config, spec.now, SAMLErrorCode.IN_RESPONSE_TO_MISMATCH)


def test_signed_response_in_response_to_is_used(make, spec, sp_config, idp_config):
    only_response = dataclasses.replace(spec, in_response_to="_req-123", scd_in_response_to="")
    verified = validate_response(
        make(only_response, sign_response=True), sp_config, idp_config, spec.now
    )
    assert verified.in_response_to == "_req-123"


# ----------------------------------------------------------- signatures / XSW


def _strip_response_signature(root: etree._Element) -> etree._Element:
    for signature in root.findall(f"{DS}Signature"):
        root.remove(signature)
    return root


def test_unsigned_response_is_refused(make, spec, sp_config, idp_config):
    error = refuse(
        make(sign_assertion=False), sp_config, idp_config, spec.now, SAMLErrorCode.UNSIGNED
    )
    assert "sign the assertion" in error.message


def test_sha1_refused_by_default_allowed_by_option(make, spec, sp_config, idp_config):
    response = make(sign_algorithm=RSA_SHA1, digest_algorithm=SHA1)
    error = refuse(response, sp_config, idp_config, spec.now, SAMLErrorCode.SHA1_REFUSED)
    assert error.received == RSA_SHA1
    sha1_ok = dataclasses.replace(sp_config, allow_sha1=True)
    assert validate_response(response, sha1_ok, idp_config, spec.now)


def test_sha1_digest_alone_is_refused(make, spec, sp_config, idp_config):
    refuse(make(digest_algorithm=SHA1), sp_config, idp_config, spec.now, SAMLErrorCode.SHA1_REFUSED)


def test_signed_with_an_unknown_key(factory, make, spec, sp_config, idp_config):
    attacker = factory.keypair("attacker")
    error = refuse(
        make(idp_key=attacker),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.UNKNOWN_SIGNING_CERTIFICATE,
    )
    fingerprint = sha256_fingerprint(attacker.certificate_pem)
    assert f"signed with a certificate we don't know (SHA-256 {fingerprint}" in error.message
    assert error.received == fingerprint
    assert error.expected == sha256_fingerprint(idp_config.signing_certificates[0])


def test_attacker_signature_with_our_certificate_in_keyinfo(
    factory, spec, sp_config, idp_config, idp_key
):
    """KeyInfo is never a trust source: a trusted certificate there does not make the attacker's key valid."""
    forged_key = factory.KeyPair(
        factory.keypair("attacker").private_key_pem, idp_key.certificate_pem
    )
    root = factory.parse(factory.make_response_xml(spec, idp_key=factory.keypair("attacker")))
    assertion = root.find(f"{SAML}Assertion")
    fresh = factory.sign_element(_strip_signature(assertion), forged_key)
    root.replace(assertion, fresh)
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SIGNATURE_INVALID)


def _strip_signature(element: etree._Element) -> etree._Element:
    copied = etree.fromstring(etree.tostring(element))
    for signature in copied.findall(f"{DS}Signature"):
        copied.remove(signature)
    return copied


def test_content_altered_after_signing(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    root.find(f"{SAML}Assertion/{SAML}Subject/{SAML}NameID").text = "admin@example.com"
    error = refuse(
        b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SIGNATURE_INVALID
    )
    assert "altered after signing" in error.message


def test_comment_injected_into_name_id_is_read_whole(factory, make, spec, sp_config, idp_config):
    xml = base64.b64decode(make()).replace(
        b">agent@example.com</saml:NameID>", b">agent@<!-- x -->example.com</saml:NameID>"
    )
    assert b"<!-- x -->" in xml
    verified = validate_response(factory.b64(xml), sp_config, idp_config, spec.now)
    assert verified.name_id == "agent@example.com"


def test_text_appended_after_injected_comment_breaks_the_signature(
    factory, make, spec, sp_config, idp_config
):
    xml = base64.b64decode(make()).replace(
        b">agent@example.com</saml:NameID>", b">agent@example.com<!-- x -->.evil.test</saml:NameID>"
    )
    refuse(factory.b64(xml), sp_config, idp_config, spec.now, SAMLErrorCode.SIGNATURE_INVALID)


def test_xsw_evil_assertion_next_to_the_signed_one(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    signed = root.find(f"{SAML}Assertion")
    evil = _strip_signature(signed)
    evil.set("ID", "_evil")
    evil.find(f"{SAML}Subject/{SAML}NameID").text = "admin@example.com"
    signed.addprevious(evil)
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.WRONG_ASSERTION_COUNT)


def test_xsw_signed_assertion_hidden_in_the_evil_one(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    signed = root.find(f"{SAML}Assertion")
    evil = _strip_signature(signed)
    evil.set("ID", "_evil")
    evil.find(f"{SAML}Subject/{SAML}NameID").text = "admin@example.com"
    value = evil.find(f"{SAML}AttributeStatement/{SAML}Attribute/{SAML}AttributeValue")
    del value.attrib[f"{XSI}type"]
    value.append(signed)  # an untyped AttributeValue is xs:anyType: a schema-valid hiding place
    root.append(evil)
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.WRONG_ASSERTION_COUNT)


def test_xsw_xml_id_duplicating_the_signed_id(factory, make, spec, sp_config, idp_config):
    """xml:id lands in libxml2's ID table too: a duplicate could steer xmlsec's #ID lookup."""
    root = factory.parse(base64.b64decode(make()))
    value = root.find(
        f"{SAML}Assertion/{SAML}AttributeStatement/{SAML}Attribute/{SAML}AttributeValue"
    )
    del value.attrib[f"{XSI}type"]  # untyped (xs:anyType) so extra attributes are allowed
    value.set("{http://www.w3.org/XML/1998/namespace}id", spec.assertion_id)
    refuse(
        b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SCHEMA_INVALID
    )  # xs:ID uniqueness


def test_xsw_duplicate_id_where_the_schema_does_not_look(
    factory, make, spec, sp_config, idp_config
):
    """Inside xs:anyType content unknown elements are skipped by the schema; our ID check still sees them."""
    root = factory.parse(base64.b64decode(make()))
    value = root.find(
        f"{SAML}Assertion/{SAML}AttributeStatement/{SAML}Attribute/{SAML}AttributeValue"
    )
    del value.attrib[f"{XSI}type"]
    etree.SubElement(value, "decoy", ID=spec.assertion_id)
    error = refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.DUPLICATE_ID)
    assert error.received == spec.assertion_id


def test_signature_referencing_another_element(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make(sign_response=True)))
    reference = root.find(f"{SAML}Assertion/{DS}Signature/{DS}SignedInfo/{DS}Reference")
    reference.set("URI", f"#{spec.response_id}")
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SIGNATURE_MISPLACED)


def test_empty_reference_uri_on_the_assertion_signature(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    root.find(f"{SAML}Assertion/{DS}Signature/{DS}SignedInfo/{DS}Reference").set("URI", "")
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SIGNATURE_MISPLACED)


def test_xpath_transform_is_refused_before_any_crypto(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    transforms = root.find(
        f"{SAML}Assertion/{DS}Signature/{DS}SignedInfo/{DS}Reference/{DS}Transforms"
    )
    extra = etree.SubElement(
        transforms, f"{DS}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"
    )
    etree.SubElement(extra, f"{DS}XPath").text = "1"
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.UNSUPPORTED_ALGORITHM)


def test_second_reference_is_refused(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    signed_info = root.find(f"{SAML}Assertion/{DS}Signature/{DS}SignedInfo")
    signed_info.append(copy.deepcopy(signed_info.find(f"{DS}Reference")))
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SIGNATURE_MISPLACED)


def test_signature_in_an_unexpected_place(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make(sign_response=True)))
    signature = root.find(f"{DS}Signature")
    root.find(f"{SAMLP}Status").append(signature)
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SCHEMA_INVALID)


# ------------------------------------------------------------- encryption


def test_rsa_1_5_key_transport_is_refused(factory, spec, sp_key, sp_config, idp_config):
    encrypted = factory.encrypt_assertion(
        factory.signed_assertion(spec),
        sp_key.certificate_pem,
        key_transport=xmlsec.Transform.RSA_PKCS1,
    )
    error = refuse(
        factory.b64(factory.wrap(encrypted, spec)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.UNSUPPORTED_ENCRYPTION_ALGORITHM,
    )
    assert error.received == "http://www.w3.org/2001/04/xmlenc#rsa-1_5"


def test_encrypted_for_another_sp(factory, spec, sp_config, idp_config):
    encrypted = factory.encrypt_assertion(
        factory.signed_assertion(spec), factory.keypair("other-sp").certificate_pem
    )
    refuse(
        factory.b64(factory.wrap(encrypted, spec)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.DECRYPTION_FAILED,
    )


def test_encrypted_attribute_is_refused(factory, spec, sp_key, sp_config, idp_config):
    assertion = factory.build_assertion(spec)
    attribute = assertion.find(f"{SAML}AttributeStatement/{SAML}Attribute")
    holder = factory.encrypt_assertion(attribute, sp_key.certificate_pem)
    holder.tag = f"{SAML}EncryptedAttribute"
    attribute.getparent().replace(attribute, holder)
    signed = factory.sign_element(assertion, factory.keypair("idp"))
    refuse(
        factory.b64(factory.wrap(signed, spec)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.ENCRYPTED_ATTRIBUTE_UNSUPPORTED,
    )


# ---------------------------------------------------------------- structure


def _resigned_assertion(factory, spec, edit) -> str:
    assertion = factory.build_assertion(spec)
    edit(assertion)
    return factory.b64(factory.wrap(factory.sign_element(assertion, factory.keypair("idp")), spec))


def test_more_than_one_authn_statement(factory, spec, sp_config, idp_config):
    def twice(assertion):
        statement = assertion.find(f"{SAML}AuthnStatement")
        statement.addnext(copy.deepcopy(statement))

    refuse(
        _resigned_assertion(factory, spec, twice),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.WRONG_AUTHN_STATEMENT_COUNT,
    )


def test_condition_we_cannot_evaluate(factory, spec, sp_config, idp_config):
    def odd_condition(assertion):
        conditions = assertion.find(f"{SAML}Conditions")
        condition = etree.SubElement(conditions, f"{SAML}Condition")
        condition.set(f"{XSI}type", "saml:AudienceRestrictionType")
        etree.SubElement(condition, f"{SAML}Audience").text = spec.sp_entity_id

    refuse(
        _resigned_assertion(factory, spec, odd_condition),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.UNSUPPORTED_CONDITION,
    )


def test_repeated_attributes_are_merged_and_nil_values_skipped(
    factory, spec, sp_config, idp_config
):
    def roles(assertion):
        statement = assertion.find(f"{SAML}AttributeStatement")
        for role in ("admin", "agent"):
            attribute = etree.SubElement(statement, f"{SAML}Attribute", Name="Role")
            etree.SubElement(attribute, f"{SAML}AttributeValue").text = role
        nil = etree.SubElement(
            etree.SubElement(statement, f"{SAML}Attribute", Name="manager"), f"{SAML}AttributeValue"
        )
        nil.set(f"{XSI}nil", "true")

    verified = validate_response(
        _resigned_assertion(factory, spec, roles), sp_config, idp_config, spec.now
    )
    assert verified.attributes["Role"] == ("admin", "agent")
    assert verified.attributes["manager"] == ()


def test_name_id_inside_an_attribute_value_is_not_the_subject(factory, spec, sp_config, idp_config):
    def targeted_id(assertion):
        statement = assertion.find(f"{SAML}AttributeStatement")
        value = etree.SubElement(
            etree.SubElement(statement, f"{SAML}Attribute", Name="eduPersonTargetedID"),
            f"{SAML}AttributeValue",
        )
        etree.SubElement(value, f"{SAML}NameID").text = "admin@example.com"

    verified = validate_response(
        _resigned_assertion(factory, spec, targeted_id), sp_config, idp_config, spec.now
    )
    assert verified.name_id == "agent@example.com"
    assert verified.attributes["eduPersonTargetedID"] == ("admin@example.com",)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not base64 at all!", SAMLErrorCode.MALFORMED_BASE64),
        ("", SAMLErrorCode.MALFORMED_XML),
        (base64.b64encode(b"<samlp:Response"), SAMLErrorCode.MALFORMED_XML),
        (base64.b64encode(b"\x00\n"), SAMLErrorCode.MALFORMED_XML),
        (base64.b64encode(b"<a/>"), SAMLErrorCode.NOT_A_RESPONSE),
        (
            base64.b64encode(b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>'),
            SAMLErrorCode.DTD_FORBIDDEN,
        ),
        (
            base64.b64encode(
                '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>'.encode(
                    "utf-16"
                )
            ),
            SAMLErrorCode.DTD_FORBIDDEN,
        ),
        (base64.b64encode(b"<" * (MAX_RESPONSE_BYTES + 1)), SAMLErrorCode.RESPONSE_TOO_LARGE),
    ],
    ids=[
        "not-base64",
        "empty",
        "truncated",
        "nul",
        "other-root",
        "billion-laughs",
        "utf16-xxe",
        "too-large",
    ],
)
def test_garbage_input(payload, code, sp_config, idp_config, spec):
    refuse(payload, sp_config, idp_config, spec.now, code)


def test_logout_response_is_not_a_response(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    root.tag = f"{SAMLP}LogoutResponse"
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.NOT_A_RESPONSE)


def test_saml_1_version_is_refused(factory, make, spec, sp_config, idp_config):
    root = factory.parse(base64.b64decode(make()))
    root.set("Version", "1.1")
    refuse(b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.UNSUPPORTED_VERSION)


def test_schema_violation_is_reported_with_the_schema_message(
    factory, make, spec, sp_config, idp_config
):
    root = factory.parse(base64.b64decode(make()))
    root.remove(root.find(f"{SAMLP}Status"))
    error = refuse(
        b64(factory, root), sp_config, idp_config, spec.now, SAMLErrorCode.SCHEMA_INVALID
    )
    assert "line" in (error.received or "")


# ------------------------------------------------------------------- properties


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_byte_change_is_refused_or_changes_nothing(
    data, factory, spec, sp_config, idp_config, idp_key
):
    """Flip one byte anywhere in a signed response: refused, or (whitespace the signature
    does not cover) accepted with exactly the same verified values. Never anything else."""
    xml = bytearray(factory.make_response_xml(spec, idp_key=idp_key))
    original = validate_response(factory.b64(bytes(xml)), sp_config, idp_config, spec.now)
    position = data.draw(st.integers(0, len(xml) - 1))
    xml[position] = data.draw(st.integers(0, 255).filter(lambda b: b != xml[position]))
    try:
        verified = validate_response(factory.b64(bytes(xml)), sp_config, idp_config, spec.now)
    except SAMLError:
        return
    assert verified == original


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_input_only_ever_raises_samlerror(payload, sp_config, idp_config, spec):
    encoded = base64.b64encode(payload if isinstance(payload, bytes) else payload.encode()).decode()
    for candidate in (encoded, payload if isinstance(payload, str) else encoded):
        with pytest.raises(SAMLError):
            validate_response(candidate, sp_config, idp_config, spec.now)


def test_saml_error_text_carries_code_and_fields():
    error = SAMLError(
        SAMLErrorCode.WRONG_AUDIENCE, "Audience was a, expected b", expected="b", received="a"
    )
    assert str(error) == "[wrong_audience] Audience was a, expected b"
    assert "expected='b'" in repr(error) and "received='a'" in repr(error)


def test_time_we_cannot_represent_is_malformed(factory, spec, sp_config, idp_config):
    def far_future(assertion):
        # A valid xs:dateTime (five-digit year) that no datetime can hold.
        assertion.find(f"{SAML}Conditions").set("NotOnOrAfter", "10000-01-01T00:00:00Z")

    error = refuse(
        _resigned_assertion(factory, spec, far_future),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.MALFORMED_TIMESTAMP,
    )
    assert error.received == "10000-01-01T00:00:00Z"


# ------------------------------------------------------- IDs, PIs (issue 8)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"assertion_id": "_" + "a" * 256}, "Assertion ID"),
        ({"response_id": "_" + "r" * 256}, "Response ID"),
        ({"in_response_to": "_" + "q" * 256}, "Response InResponseTo"),
        (
            {"scd_in_response_to": "_" + "q" * 256, "in_response_to": None},
            "SubjectConfirmationData InResponseTo",
        ),
    ],
)
def test_over_long_ids_are_refused_with_the_limit(
    factory, make, spec, sp_config, idp_config, changes, where
):
    from deskgate.saml.acs import MAX_ID_LENGTH

    error = refuse(
        make(dataclasses.replace(spec, **changes)),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.ID_TOO_LONG,
    )
    assert error.message.startswith(where)
    assert error.expected == f"<= {MAX_ID_LENGTH} characters"
    assert error.received.startswith("257 characters")


def test_an_id_of_exactly_the_limit_is_accepted(make, spec, sp_config, idp_config):
    verified = validate_response(
        make(dataclasses.replace(spec, assertion_id="_" + "a" * 255)),
        sp_config,
        idp_config,
        spec.now,
    )
    assert len(verified.assertion_id) == 256


def test_over_long_id_inside_an_encrypted_assertion_is_refused(
    factory, spec, sp_key, sp_config, idp_config
):
    long_spec = dataclasses.replace(spec, assertion_id="_" + "a" * 300)
    xml = factory.encrypted_response_xml(long_spec, sp_key.certificate_pem)
    refuse(factory.b64(xml), sp_config, idp_config, spec.now, SAMLErrorCode.ID_TOO_LONG)


@pytest.mark.parametrize(
    "place",
    ["prolog", "epilog", "name_id", "utf16"],
)
def test_processing_instructions_are_refused(factory, make, spec, sp_config, idp_config, place):
    xml = base64.b64decode(make())
    if place == "prolog":
        xml = b'<?xml-stylesheet href="file:///etc/hostname"?>' + xml
    elif place == "epilog":
        xml = xml + b"<?x y?>"
    elif place == "name_id":
        xml = xml.replace(
            b"agent@example.com</saml:NameID>", b"agent@example.com<?x y?>.evil</saml:NameID>"
        )
    else:
        xml = (
            b'<?xml version="1.0" encoding="UTF-16"?><?x y?>'.decode().encode("utf-16")
            + xml.decode().encode("utf-16")[2:]
        )
    refuse(
        factory.b64(xml),
        sp_config,
        idp_config,
        spec.now,
        SAMLErrorCode.PROCESSING_INSTRUCTION_FORBIDDEN,
    )


def test_pi_lookalike_inside_a_comment_is_not_a_processing_instruction(
    factory, make, spec, sp_config, idp_config
):
    xml = base64.b64decode(make()).replace(
        b"<saml:Issuer>", b"<!-- <?not a pi?> --><saml:Issuer>", 1
    )
    assert (
        validate_response(factory.b64(xml), sp_config, idp_config, spec.now).name_id
        == "agent@example.com"
    )


def test_xml_declaration_is_not_a_processing_instruction(
    factory, make, spec, sp_config, idp_config
):
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + base64.b64decode(make())
    assert (
        validate_response(factory.b64(xml), sp_config, idp_config, spec.now).name_id
        == "agent@example.com"
    )
