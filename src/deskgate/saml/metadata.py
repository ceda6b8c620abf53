"""SAML 2.0 metadata: read an IdP's, write ours.

:func:`parse_idp_metadata` turns uploaded/fetched IdP metadata into an
:class:`~deskgate.saml.config.IdPConfig` plus what an admin should see about
it (certificates, warnings). It parses with python3-saml's defused parser but
not with ``OneLogin_Saml2_IdPMetadataParser``, which answers ``{}`` for
garbage, silently picks one certificate and cannot say *why* metadata is
unusable; every refusal here is a :class:`MetadataError` with a precise code.

:func:`render_sp_metadata` builds our SP metadata with python3-saml's
``OneLogin_Saml2_Metadata`` (values XML-escaped first: its templates do not
escape) without validUntil/cacheDuration, which would need a clock and make
IdPs reject our metadata once it ages.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.metadata import OneLogin_Saml2_Metadata

from deskgate.saml._time import format_instant, parse_xs_datetime, require_utc_aware
from deskgate.saml._xml import NS_DS, NS_MD, XMLRefused, parse_untrusted, text_of
from deskgate.saml.certs import CertificateInfo, certificate_info, normalize_certificate_pem
from deskgate.saml.config import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, IdPConfig, SPConfig
from deskgate.saml.errors import MetadataError, MetadataErrorCode

__all__ = [
    "MAX_METADATA_BYTES",
    "MetadataError",
    "MetadataErrorCode",
    "ParsedMetadata",
    "parse_idp_metadata",
    "render_sp_metadata",
]

#: Single-IdP metadata is a few KB; federation aggregates are not supported.
MAX_METADATA_BYTES = 5 * 1024 * 1024

SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
NAMEID_EMAIL = OneLogin_Saml2_Constants.NAMEID_EMAIL_ADDRESS

_MD = f"{{{NS_MD}}}"
_DS = f"{{{NS_DS}}}"


@dataclass(frozen=True)
class ParsedMetadata:
    """Usable IdP metadata.

    Attributes:
        idp: configuration to store and pass to the login/ACS functions.
        certificates: every signing certificate kept, in document order, for display.
        warnings: human sentences about things that work now but deserve attention
            (expired certificate, expired metadata, POST-only SSO, ...).
    """

    idp: IdPConfig
    certificates: tuple[CertificateInfo, ...]
    warnings: tuple[str, ...]


def parse_idp_metadata(
    xml: bytes | str, now: datetime, entity_id: str | None = None, *, allow_http: bool = False
) -> ParsedMetadata:
    """Parse IdP metadata (an EntityDescriptor, or an EntitiesDescriptor holding one IdP).

    Keeps every certificate of every ``KeyDescriptor`` with ``use="signing"``
    or no ``use`` (IdPs list the next certificate during rollovers). The
    SingleSignOnService is the HTTP-Redirect one, else the HTTP-POST one.

    Every browser-facing endpoint (SingleSignOnService and SingleLogoutService with
    the HTTP-Redirect or HTTP-POST binding) must be an absolute https URL: the
    browser is sent there, or an auto-submitted form posts to it, so a
    ``javascript:`` or plain-http Location would run script or leak the request.
    http is accepted for loopback hosts (localhost, *.localhost, 127.0.0.0/8, ::1)
    and, when ``allow_http``, for any host.

    Args:
        xml: the metadata document.
        now: current instant (UTC-aware), to flag expired certificates/metadata.
        entity_id: pick this entity when the document describes several IdPs.
        allow_http: accept http:// endpoints on any host (deskgate passes its
            ``allow_private_metadata_urls`` setting: intranet and test IdPs).

    Raises:
        MetadataError: not XML, DOCTYPE present, not metadata, no/ambiguous
            IDPSSODescriptor, no usable SingleSignOnService, an endpoint
            Location that is not an allowed absolute URL, no signing
            certificate, or an unparseable certificate.
    """
    now = require_utc_aware(now)
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(
            MetadataErrorCode.NOT_METADATA,
            f"metadata is larger than {MAX_METADATA_BYTES} bytes; upload the metadata of a single IdP",
        )
    try:
        root = parse_untrusted(data)
    except XMLRefused as exc:
        if exc.dtd:
            raise MetadataError(
                MetadataErrorCode.DTD_FORBIDDEN,
                "metadata contains a DOCTYPE declaration, which is never accepted (if it is an HTML "
                "page, the metadata URL is wrong)",
            ) from None
        raise MetadataError(
            MetadataErrorCode.NOT_XML, f"metadata is not XML: {exc.detail}"
        ) from None

    entity = _select_entity(root, entity_id)
    idp_entity_id = (entity.get("entityID") or "").strip()
    if not idp_entity_id:
        raise MetadataError(MetadataErrorCode.MISSING_ENTITY_ID, "EntityDescriptor has no entityID")
    descriptor = _saml2_idp_descriptors(entity)[0]

    warnings: list[str] = []
    _check_browser_endpoints(descriptor, allow_http)
    sso_url, binding = _sso_service(descriptor)
    if binding == BINDING_HTTP_POST:
        warnings.append(
            "the IdP offers single sign-on over HTTP-POST only; sign-in uses an auto-submitted form"
        )

    pems, infos = _signing_certificates(descriptor, now)
    for info in infos:
        if info.expired:
            warnings.append(
                f"signing certificate {info.subject} (SHA-256 {info.sha256_fingerprint}) expired on "
                f"{format_instant(info.not_after)}; signatures made with it are still accepted, but the "
                "IdP has probably rotated to a new one: re-download its metadata if sign-in fails"
            )
    valid_until = _valid_until(entity, root)
    if valid_until is not None and valid_until < now:
        warnings.append(
            f"the metadata itself expired on {format_instant(valid_until)} (validUntil); download a fresh copy"
        )

    return ParsedMetadata(
        idp=IdPConfig(
            entity_id=idp_entity_id,
            sso_url=sso_url,
            signing_certificates=tuple(pems),
            sso_binding=binding,
        ),
        certificates=tuple(infos),
        warnings=tuple(warnings),
    )


def _saml2_idp_descriptors(entity: etree._Element) -> list[etree._Element]:
    return [
        d
        for d in entity.findall(f"{_MD}IDPSSODescriptor")
        if SAML2_PROTOCOL in (d.get("protocolSupportEnumeration") or "").split()
    ]


def _select_entity(root: etree._Element, entity_id: str | None) -> etree._Element:
    if root.tag == f"{_MD}EntityDescriptor":
        entities = [root]
    elif root.tag == f"{_MD}EntitiesDescriptor":
        entities = list(root.iter(f"{_MD}EntityDescriptor"))
    else:
        raise MetadataError(
            MetadataErrorCode.NOT_METADATA,
            f"expected SAML metadata (md:EntityDescriptor), got {root.tag}",
        )
    if entity_id is not None:
        entities = [e for e in entities if e.get("entityID") == entity_id]
        if not entities:
            raise MetadataError(
                MetadataErrorCode.NO_IDP_DESCRIPTOR,
                f"metadata has no entity with entityID {entity_id!r}",
            )
    idps = [e for e in entities if _saml2_idp_descriptors(e)]
    if not idps:
        if any(e.find(f"{_MD}IDPSSODescriptor") is not None for e in entities):
            detail = "its IDPSSODescriptor does not list the SAML 2.0 protocol"
        elif any(e.find(f"{_MD}SPSSODescriptor") is not None for e in entities):
            detail = "it describes a service provider (SPSSODescriptor): is this our own metadata?"
        else:
            detail = "it has no IDPSSODescriptor"
        raise MetadataError(
            MetadataErrorCode.NO_IDP_DESCRIPTOR,
            f"metadata does not describe a SAML 2.0 IdP: {detail}",
        )
    if len(idps) > 1:
        ids = ", ".join(repr(e.get("entityID")) for e in idps[:5])
        raise MetadataError(
            MetadataErrorCode.AMBIGUOUS_ENTITY,
            f"metadata describes {len(idps)} identity providers ({ids}{', ...' if len(idps) > 5 else ''}); "
            "choose one by entity ID",
        )
    return idps[0]


_BROWSER_BINDINGS = (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)


def _check_browser_endpoints(descriptor: etree._Element, allow_http: bool) -> None:
    """Refuse the metadata if any endpoint a browser would be sent to is not a safe URL.

    Back-channel bindings (SOAP, Artifact) are never used by deskgate and are not checked.
    """
    for element in ("SingleSignOnService", "SingleLogoutService"):
        for service in descriptor.findall(f"{_MD}{element}"):
            binding = service.get("Binding")
            if binding not in _BROWSER_BINDINGS:
                continue
            for attribute in ("Location", "ResponseLocation"):
                value = service.get(attribute)
                if value is not None:
                    name = f"{element} ({binding.rsplit(':', 1)[-1]}) {attribute}"
                    _check_endpoint_url(value, name, allow_http)


def _check_endpoint_url(value: str, name: str, allow_http: bool) -> None:
    location = value.strip()
    shown = repr(location[:200])

    def refuse(reason: str) -> MetadataError:
        return MetadataError(MetadataErrorCode.INVALID_ENDPOINT, f"{name} {shown} {reason}")

    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in location):
        raise refuse("contains whitespace or control characters; expected an absolute https URL")
    try:
        parts = urlsplit(location)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
        host.encode("idna")  # raises UnicodeError for an empty or over-long (> 63) label
    except (ValueError, UnicodeError):
        raise refuse("is not a valid absolute URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise refuse("is not an absolute https URL")
    if scheme == "http" and not (allow_http or _is_loopback(host)):
        raise refuse(
            "uses plain http; only https is accepted (http only for loopback hosts, or when "
            "private metadata URLs are allowed)"
        )


def _is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sso_service(descriptor: etree._Element) -> tuple[str, str]:
    services = descriptor.findall(f"{_MD}SingleSignOnService")
    for wanted in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        for service in services:
            location = (service.get("Location") or "").strip()
            if service.get("Binding") == wanted and location.lower().startswith(
                ("https://", "http://")
            ):
                return location, wanted
    offered = (
        ", ".join(sorted({(s.get("Binding") or "?").rsplit(":", 1)[-1] for s in services}))
        or "none"
    )
    raise MetadataError(
        MetadataErrorCode.NO_SSO_SERVICE,
        f"IDPSSODescriptor has no SingleSignOnService with an http(s) Location for the HTTP-Redirect or "
        f"HTTP-POST binding (offered: {offered})",
    )


def _signing_certificates(
    descriptor: etree._Element, now: datetime
) -> tuple[list[str], list[CertificateInfo]]:
    pems: list[str] = []
    infos: list[CertificateInfo] = []
    encryption_only = 0
    for number, key_descriptor in enumerate(descriptor.findall(f"{_MD}KeyDescriptor"), start=1):
        use = key_descriptor.get("use")
        nodes = key_descriptor.findall(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
        if use not in (None, "signing"):
            encryption_only += len(nodes)
            continue
        for node in nodes:
            try:
                pem = normalize_certificate_pem(text_of(node) or "")
                info = certificate_info(pem, now)
            except ValueError as exc:
                raise MetadataError(
                    MetadataErrorCode.INVALID_CERTIFICATE,
                    f"KeyDescriptor #{number} holds an invalid certificate: {exc}",
                ) from None
            if pem not in pems:
                pems.append(pem)
                infos.append(info)
    if not pems:
        extra = f" (only {encryption_only} encryption certificate(s))" if encryption_only else ""
        raise MetadataError(
            MetadataErrorCode.NO_SIGNING_CERTIFICATE,
            f'IDPSSODescriptor has no signing certificate (KeyDescriptor use="signing" or without use '
            f"holding an X509Certificate){extra}",
        )
    return pems, infos


def _valid_until(entity: etree._Element, root: etree._Element) -> datetime | None:
    values = [e.get("validUntil") for e in (entity, root) if e.get("validUntil")]
    moments = []
    for value in values:
        try:
            moments.append(parse_xs_datetime(value or ""))
        except ValueError:
            continue
    return min(moments) if moments else None


def render_sp_metadata(sp: SPConfig) -> str:
    """Our SP metadata for ``sp``, as an XML string.

    One EntityDescriptor (entityID = ``sp.entity_id``) with an SPSSODescriptor:
    WantAssertionsSigned="true", AuthnRequestsSigned per
    ``sp.sign_authn_requests``, NameIDFormat emailAddress, one HTTP-POST
    AssertionConsumerService at ``sp.acs_url``, and the SP certificate twice,
    as KeyDescriptor use="signing" and use="encryption" (so IdPs can encrypt
    assertions to us); during an SP key rollover, ``sp.next_key``'s certificate
    the same way beside it. No validUntil/cacheDuration.
    """
    template = OneLogin_Saml2_Metadata.builder(
        {
            "entityId": escape(sp.entity_id, {'"': "&quot;"}),
            "assertionConsumerService": {
                "url": escape(sp.acs_url, {'"': "&quot;"}),
                "binding": BINDING_HTTP_POST,
            },
            "NameIDFormat": NAMEID_EMAIL,
        },
        authnsign=sp.sign_authn_requests,
        wsign=True,
        valid_until="",  # empty string: python3-saml omits the attribute
        cache_duration="",
    )
    # Each call puts its KeyDescriptors first: the next key's go in first, so the current
    # certificate stays the first one listed (as python3-saml does with x509certNew).
    with_keys = template
    for certificate in (sp.next_key.certificate_pem if sp.next_key else "", sp.certificate_pem):
        with_keys = OneLogin_Saml2_Metadata.add_x509_key_descriptors(
            with_keys, certificate, add_encryption=True
        )
    text = with_keys.decode("utf-8") if isinstance(with_keys, bytes) else with_keys
    return text if text.endswith("\n") else text + "\n"
