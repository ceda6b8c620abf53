"""Who sent an assertion, where to, and when it holds (internal; runs on verified content).

Issuers (checked before the signatures, as they only ever refuse),
Destination, the Assertion's version and IssueInstant, Conditions (window
and Audience), the bearer SubjectConfirmation, the AuthnStatement and the
InResponseTo correlation. Every time comparison is against the caller's
``now`` with ``sp.clock_skew``: nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from deskgate.saml._time import format_instant, humanize, parse_xs_datetime
from deskgate.saml._xml import NS_SAML, NS_XSI, child, children, text_of
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.errors import SAMLError, SAMLErrorCode

_SAML = f"{{{NS_SAML}}}"

CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


def _same_url(a: str, b: str) -> bool:
    """Exact match, except scheme and host compare case-insensitively (python3-saml's normalize_url)."""
    return a == b or OneLogin_Saml2_Utils.normalize_url(a) == OneLogin_Saml2_Utils.normalize_url(b)


def check_issuers(root: etree._Element, assertion: etree._Element, idp: IdPConfig) -> None:
    """Both Issuers must name the IdP (Response Issuer is optional).

    Checked before signatures on purpose (it only ever refuses): "this came
    from IdP X" is a better diagnosis than "unknown certificate".
    """
    response_issuers = children(root, f"{_SAML}Issuer")
    if len(response_issuers) == 1:
        value = (text_of(response_issuers[0]) or "").strip()
        if value != idp.entity_id:
            raise SAMLError(
                SAMLErrorCode.WRONG_ISSUER,
                f"Response Issuer was {value!r}, expected {idp.entity_id!r}: the response comes from "
                "another IdP (or another app in the same IdP)",
                expected=idp.entity_id,
                received=value,
            )
    issuer = child(assertion, f"{_SAML}Issuer")
    if issuer is None:  # the schema already requires it
        raise SAMLError(
            SAMLErrorCode.WRONG_ISSUER, "Assertion has no Issuer", expected=idp.entity_id
        )
    value = (text_of(issuer) or "").strip()
    if value != idp.entity_id:
        raise SAMLError(
            SAMLErrorCode.WRONG_ISSUER,
            f"Assertion Issuer was {value!r}, expected {idp.entity_id!r}: the response comes from "
            "another IdP (or another app in the same IdP)",
            expected=idp.entity_id,
            received=value,
        )


def check_destination(root: etree._Element, sp: SPConfig) -> None:
    destination = root.get("Destination")
    if destination is None:
        return
    if not _same_url(destination, sp.acs_url):
        raise SAMLError(
            SAMLErrorCode.WRONG_DESTINATION,
            f"Response Destination was {destination!r}, expected {sp.acs_url!r}: the IdP's ACS URL "
            "for this app is not ours",
            expected=sp.acs_url,
            received=destination,
        )


# ------------------------------------------------------------------------ time


def _time_attr(element: etree._Element, name: str, owner: str) -> datetime | None:
    value = element.get(name)
    if value is None:
        return None
    try:
        return parse_xs_datetime(value)
    except ValueError:
        raise SAMLError(
            SAMLErrorCode.MALFORMED_TIMESTAMP,
            f"{owner} {name} is not a valid time: {value!r}",
            received=value,
        ) from None


def _check_window(
    owner: str,
    not_before: datetime | None,
    not_on_or_after: datetime | None,
    now: datetime,
    skew: timedelta,
) -> None:
    if not_before is not None and now + skew < not_before:
        raise SAMLError(
            SAMLErrorCode.NOT_YET_VALID,
            f"assertion is not valid for another {humanize(not_before - now)} ({owner} NotBefore "
            f"{format_instant(not_before)}, now {format_instant(now)}): the IdP's clock is ahead of ours",
            expected=f"NotBefore <= {format_instant(now + skew)}",
            received=format_instant(not_before),
        )
    if not_on_or_after is not None and now - skew >= not_on_or_after:
        raise SAMLError(
            SAMLErrorCode.EXPIRED,
            f"assertion expired {humanize(now - not_on_or_after)} ago ({owner} NotOnOrAfter "
            f"{format_instant(not_on_or_after)}, now {format_instant(now)}): check the IdP's clock, "
            "or the response was replayed or held back",
            expected=f"NotOnOrAfter > {format_instant(now - skew)}",
            received=format_instant(not_on_or_after),
        )


_KNOWN_CONDITIONS = frozenset(
    {f"{_SAML}AudienceRestriction", f"{_SAML}OneTimeUse", f"{_SAML}ProxyRestriction"}
)


def check_conditions(assertion: etree._Element, sp: SPConfig, now: datetime) -> datetime | None:
    """Conditions window and audience; returns Conditions NotOnOrAfter."""
    conditions = child(assertion, f"{_SAML}Conditions")
    if conditions is None:
        raise SAMLError(
            SAMLErrorCode.MISSING_CONDITIONS,
            "Assertion has no Conditions, so it names no audience and no validity window",
        )
    not_before = _time_attr(conditions, "NotBefore", "Conditions")
    not_on_or_after = _time_attr(conditions, "NotOnOrAfter", "Conditions")
    _check_window("Conditions", not_before, not_on_or_after, now, sp.clock_skew)

    for condition in conditions:
        if condition.tag not in _KNOWN_CONDITIONS:
            kind = condition.get(f"{{{NS_XSI}}}type") or str(condition.tag)
            raise SAMLError(
                SAMLErrorCode.UNSUPPORTED_CONDITION,
                f"Assertion has a condition we cannot evaluate: {kind}",
                received=kind,
            )
    restrictions = children(conditions, f"{_SAML}AudienceRestriction")
    if not restrictions:
        raise SAMLError(
            SAMLErrorCode.MISSING_AUDIENCE,
            f"Assertion has no AudienceRestriction; expected it to name {sp.entity_id!r}",
            expected=sp.entity_id,
        )
    for restriction in restrictions:  # SAML core: every AudienceRestriction must be satisfied
        audiences = [(text_of(a) or "").strip() for a in children(restriction, f"{_SAML}Audience")]
        if sp.entity_id not in audiences:
            shown = ", ".join(audiences) or "(empty)"
            raise SAMLError(
                SAMLErrorCode.WRONG_AUDIENCE,
                f"Audience was {shown}, expected {sp.entity_id}: set the IdP's Audience / "
                "SP Entity ID for this app to our entity ID",
                expected=sp.entity_id,
                received=shown,
            )
    return not_on_or_after


@dataclass(frozen=True)
class Confirmation:
    in_response_to: str | None
    not_on_or_after: datetime


def check_subject_confirmation(
    assertion: etree._Element, sp: SPConfig, now: datetime
) -> Confirmation:
    """At least one bearer SubjectConfirmation must hold (Web SSO profile 4.1.4.2).

    It needs SubjectConfirmationData with Recipient == our ACS URL and a
    NotOnOrAfter still ahead; NotBefore, when present, must have passed.
    Non-bearer confirmations are ignored. The first failing bearer candidate's
    reason is reported when none holds.
    """
    subject = child(assertion, f"{_SAML}Subject")
    candidates = (
        []
        if subject is None
        else [
            sc
            for sc in children(subject, f"{_SAML}SubjectConfirmation")
            if sc.get("Method") == CM_BEARER
        ]
    )
    if not candidates:
        raise SAMLError(
            SAMLErrorCode.NO_BEARER_CONFIRMATION,
            "Assertion has no bearer SubjectConfirmation (holder-of-key / sender-vouches are not "
            "supported for browser sign-in)",
            expected=CM_BEARER,
        )
    first_error: SAMLError | None = None
    for confirmation in candidates:
        try:
            return _check_one_confirmation(confirmation, sp, now)
        except SAMLError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _check_one_confirmation(
    confirmation: etree._Element, sp: SPConfig, now: datetime
) -> Confirmation:
    data = child(confirmation, f"{_SAML}SubjectConfirmationData")
    if data is None:
        raise SAMLError(
            SAMLErrorCode.NO_BEARER_CONFIRMATION,
            "bearer SubjectConfirmation has no SubjectConfirmationData (Recipient, NotOnOrAfter)",
        )
    recipient = data.get("Recipient")
    if recipient is None or not _same_url(recipient, sp.acs_url):
        raise SAMLError(
            SAMLErrorCode.WRONG_RECIPIENT,
            f"SubjectConfirmationData Recipient was {recipient!r}, expected {sp.acs_url!r}: set the "
            "IdP's ACS / Reply URL for this app to our ACS URL",
            expected=sp.acs_url,
            received=recipient,
        )
    not_before = _time_attr(data, "NotBefore", "SubjectConfirmationData")
    not_on_or_after = _time_attr(data, "NotOnOrAfter", "SubjectConfirmationData")
    _check_window("SubjectConfirmationData", not_before, not_on_or_after, now, sp.clock_skew)
    if not_on_or_after is None:
        raise SAMLError(
            SAMLErrorCode.NO_BEARER_CONFIRMATION,
            "bearer SubjectConfirmationData has no NotOnOrAfter, so the assertion could be replayed "
            "forever (Web SSO profile 4.1.4.2 requires one)",
            expected="a NotOnOrAfter",
        )
    return Confirmation(in_response_to=data.get("InResponseTo"), not_on_or_after=not_on_or_after)


def verified_in_response_to(
    root: etree._Element, confirmation_irt: str | None, response_signed: bool
) -> str | None:
    """InResponseTo from signed content only; the two places must agree.

    The SubjectConfirmationData value is inside the verified assertion. The
    Response attribute is only verified when the Response itself is signed:
    otherwise an attacker could graft one onto an IdP-initiated assertion to
    pass as solicited, so an unsigned one is accepted only when the assertion
    confirms it.
    """
    response_irt = root.get("InResponseTo")
    if (
        response_irt is not None
        and confirmation_irt is not None
        and response_irt != confirmation_irt
    ):
        raise SAMLError(
            SAMLErrorCode.IN_RESPONSE_TO_MISMATCH,
            f"Response InResponseTo {response_irt!r} and SubjectConfirmationData InResponseTo "
            f"{confirmation_irt!r} disagree",
            expected=confirmation_irt,
            received=response_irt,
        )
    if response_irt is not None and confirmation_irt is None and not response_signed:
        raise SAMLError(
            SAMLErrorCode.IN_RESPONSE_TO_MISMATCH,
            f"Response InResponseTo {response_irt!r} is not covered by any signature and the signed "
            "assertion names no request",
            received=response_irt,
        )
    return confirmation_irt if confirmation_irt is not None else response_irt


def check_authn_statement(
    assertion: etree._Element, now: datetime, sp: SPConfig
) -> tuple[str | None, datetime | None]:
    """At most one AuthnStatement; its SessionNotOnOrAfter must not have passed.

    The Web SSO profile asks for one, but Keycloak omits it when its "Include
    AuthnStatement" client option is off, and the bearer confirmation (not the
    AuthnStatement) is what binds the assertion to this sign-in. Several
    statements are refused: which session would SessionIndex name?
    """
    statements = children(assertion, f"{_SAML}AuthnStatement")
    if len(statements) > 1:
        raise SAMLError(
            SAMLErrorCode.WRONG_AUTHN_STATEMENT_COUNT,
            f"Assertion must contain at most one AuthnStatement, found {len(statements)}",
            expected="0 or 1",
            received=str(len(statements)),
        )
    if not statements:
        return None, None
    statement = statements[0]
    session_not_on_or_after = _time_attr(statement, "SessionNotOnOrAfter", "AuthnStatement")
    if session_not_on_or_after is not None and now - sp.clock_skew >= session_not_on_or_after:
        raise SAMLError(
            SAMLErrorCode.SESSION_EXPIRED,
            f"the IdP session ended {humanize(now - session_not_on_or_after)} ago "
            f"(SessionNotOnOrAfter {format_instant(session_not_on_or_after)})",
            expected=f"SessionNotOnOrAfter > {format_instant(now - sp.clock_skew)}",
            received=format_instant(session_not_on_or_after),
        )
    return statement.get("SessionIndex"), session_not_on_or_after


def check_assertion_header(assertion: etree._Element, sp: SPConfig, now: datetime) -> datetime:
    """Assertion Version is 2.0 and IssueInstant is not in the future; returns IssueInstant."""
    if assertion.get("Version") != "2.0":
        raise SAMLError(
            SAMLErrorCode.UNSUPPORTED_VERSION,
            f"Assertion Version is {assertion.get('Version')!r}, only SAML 2.0 is supported",
            expected="2.0",
            received=assertion.get("Version"),
        )
    issue_instant = _time_attr(assertion, "IssueInstant", "Assertion")
    if issue_instant is None:  # schema requires it; belt and braces
        raise SAMLError(SAMLErrorCode.MALFORMED_TIMESTAMP, "Assertion has no IssueInstant")
    if issue_instant > now + sp.clock_skew:
        raise SAMLError(
            SAMLErrorCode.NOT_YET_VALID,
            f"assertion was issued {humanize(issue_instant - now)} in the future "
            f"(IssueInstant {format_instant(issue_instant)}, now {format_instant(now)}): the IdP's "
            "clock is ahead of ours",
            expected=f"IssueInstant <= {format_instant(now + sp.clock_skew)}",
            received=format_instant(issue_instant),
        )
    return issue_instant
