"""SimpleSAMLphp (Debian's package) as a real SAML 2.0 identity provider for tests.

The IdP runs under PHP's built-in web server (``php -S``) on 127.0.0.1 with a private
configuration written into a work directory: its own key and certificate, an
``exampleauth:UserPass`` login form with the given users, and the remote SPs converted from
their metadata XML. Every request re-reads the configuration files, so SPs and users can be
replaced while the IdP runs.

    idp = start_simplesamlphp(tmp_path / "idp", sp_metadata_xml=[], users=[alice])
    try:
        ...  # configure the SP with idp.metadata_xml, learn its metadata, then:
        idp.set_sp_metadata(sp_metadata_xml)
        page.goto(sp_login_url)
        submit_login_form(page, "alice", "alice-password")
    finally:
        idp.stop()

``RunningIdP`` is also a context manager. Written for SimpleSAMLphp 1.19 (Debian 12).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from lxml import etree

from .certs import KeyPair, make_key_pair

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = [
    "ENTRA_CLAIMS",
    "IdPUser",
    "RunningIdP",
    "SimpleSAMLphpError",
    "idp_error",
    "parse_sp_metadata",
    "start_simplesamlphp",
    "submit_login_form",
]

SIMPLESAMLPHP_WWW = Path(
    os.environ.get("DESKGATE_SIMPLESAMLPHP_WWW", "/usr/share/simplesamlphp/www")
)
PHP = os.environ.get("DESKGATE_PHP", "php")

NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"

_NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
_AUTH_SOURCE = "users"

# Claim names Microsoft Entra ID sends by default, so SP code can be tested against both styles.
ENTRA_CLAIMS = {
    "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "given_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "surname": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "display_name": "http://schemas.microsoft.com/identity/claims/displayname",
    "object_id": "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
}


class SimpleSAMLphpError(RuntimeError):
    """The IdP could not be started or configured; the message ends with its log."""


@dataclass(frozen=True)
class IdPUser:
    """A user of the IdP's username/password form and the attributes it releases."""

    username: str
    password: str
    email: str
    first_name: str = ""
    last_name: str = ""
    groups: Sequence[str] = ()
    extra_attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    entra_claims: bool = True

    @property
    def object_id(self) -> str:
        """A stable Entra-style object id derived from the username."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"deskgate-test-idp:{self.username}"))

    def attributes(self) -> dict[str, list[str]]:
        attrs: dict[str, list[str]] = {"uid": [self.username], "email": [self.email]}
        if self.first_name:
            attrs["firstName"] = [self.first_name]
        if self.last_name:
            attrs["lastName"] = [self.last_name]
        if self.groups:
            attrs["groups"] = list(self.groups)
        if self.entra_claims:
            display_name = " ".join(p for p in (self.first_name, self.last_name) if p)
            entra = {
                "email": [self.email],
                "name": [self.email],
                "given_name": [self.first_name] if self.first_name else [],
                "surname": [self.last_name] if self.last_name else [],
                "display_name": [display_name] if display_name else [],
                "object_id": [self.object_id],
                "groups": list(self.groups),
            }
            attrs.update({ENTRA_CLAIMS[k]: v for k, v in entra.items() if v})
        attrs.update({k: list(v) for k, v in self.extra_attributes.items()})
        return attrs


# --------------------------------------------------------------------------- PHP config files


class _PhpExpr(str):
    """Raw PHP source, written as is (for constants such as SimpleSAML\\Logger::INFO)."""


def php_literal(value: Any) -> str:
    """Render a Python value as a PHP literal (arrays use the short [] syntax)."""
    if isinstance(value, _PhpExpr):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"
    if isinstance(value, Mapping):
        items = ", ".join(f"{php_literal(k)} => {php_literal(v)}" for k, v in value.items())
        return f"[{items}]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(php_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as PHP: {value!r}")


def _write_php(path: Path, variable: str, entries: Mapping[str, Any]) -> None:
    """Write `$variable[key] = value;` lines atomically: a request never sees half a file."""
    lines = ["<?php", "// Written by tests/support/simplesamlphp.py; rewritten while the IdP runs."]
    lines.append(f"${variable} = [];")
    lines += [f"${variable}[{php_literal(k)}] = {php_literal(v)};" for k, v in entries.items()]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- SP metadata


def _parse_xml(xml: str | bytes) -> etree._Element:
    data = xml.encode() if isinstance(xml, str) else xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    return etree.fromstring(data, parser=parser)


def _key_descriptors(sp: etree._Element) -> list[dict[str, Any]]:
    keys = []
    for kd in sp.findall("md:KeyDescriptor", _NS):
        use = kd.get("use")
        for cert in kd.findall(".//ds:X509Certificate", _NS):
            keys.append(
                {
                    "type": "X509Certificate",
                    "signing": use in (None, "signing"),
                    "encryption": use in (None, "encryption"),
                    "X509Certificate": "".join((cert.text or "").split()),
                }
            )
    return keys


def parse_sp_metadata(xml: str | bytes) -> list[dict[str, Any]]:
    """Read each SP in SAML metadata (an EntityDescriptor or EntitiesDescriptor).

    Returns SimpleSAMLphp ``saml20-sp-remote`` arrays holding what the XML says: entityid,
    the HTTP-POST AssertionConsumerService endpoints, SingleLogoutService, keys, and
    ``AuthnRequestsSigned``/``WantAssertionsSigned`` as booleans (removed again before writing).
    """
    root = _parse_xml(xml)
    entities = [root] if root.tag == f"{{{_NS['md']}}}EntityDescriptor" else []
    entities += root.findall(".//md:EntityDescriptor", _NS)
    result = []
    for entity in entities:
        sp = entity.find("md:SPSSODescriptor", _NS)
        if sp is None:
            continue
        entity_id = entity.get("entityID")
        acs = []
        for ep in sp.findall("md:AssertionConsumerService", _NS):
            if ep.get("Binding") != BINDING_POST:
                continue
            item: dict[str, Any] = {"Binding": BINDING_POST, "Location": ep.get("Location")}
            if ep.get("index") is not None:
                item["index"] = int(ep.get("index"))
            if ep.get("isDefault") is not None:
                item["isDefault"] = ep.get("isDefault") in ("true", "1")
            acs.append(item)
        if not acs:
            raise ValueError(f"SP {entity_id!r} has no HTTP-POST AssertionConsumerService")
        slo = [
            {"Binding": ep.get("Binding"), "Location": ep.get("Location")}
            for ep in sp.findall("md:SingleLogoutService", _NS)
            if ep.get("Binding") in (BINDING_POST, BINDING_REDIRECT)
        ]
        entry: dict[str, Any] = {"entityid": entity_id, "AssertionConsumerService": acs}
        if slo:
            entry["SingleLogoutService"] = slo
        keys = _key_descriptors(sp)
        if keys:
            entry["keys"] = keys
        entry["AuthnRequestsSigned"] = sp.get("AuthnRequestsSigned") in ("true", "1")
        entry["WantAssertionsSigned"] = sp.get("WantAssertionsSigned") in ("true", "1")
        result.append(entry)
    if not result:
        raise ValueError("no SPSSODescriptor found in the SP metadata")
    return result


def _sp_remote_entry(
    parsed: dict[str, Any],
    *,
    encrypt_assertions: bool,
    sign_response: bool,
    sign_assertion: bool,
    name_id_format: str,
    name_id_attribute: str,
    validate_authn_requests: bool | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    entry = {
        k: v for k, v in parsed.items() if k not in ("AuthnRequestsSigned", "WantAssertionsSigned")
    }
    keys = entry.get("keys", [])
    entity_id = entry["entityid"]
    if encrypt_assertions and not any(k["encryption"] for k in keys):
        raise ValueError(
            f"encrypt_assertions=True but SP {entity_id!r} has no encryption certificate"
        )
    if validate_authn_requests is None:
        validate_authn_requests = parsed["AuthnRequestsSigned"] and any(k["signing"] for k in keys)
    if validate_authn_requests and not any(k["signing"] for k in keys):
        raise ValueError(f"SP {entity_id!r} has no signing certificate to check AuthnRequests with")
    entry.update(
        {
            "NameIDFormat": name_id_format,
            "simplesaml.nameidattribute": name_id_attribute,
            "saml20.sign.response": sign_response,
            "saml20.sign.assertion": sign_assertion,
            "assertion.encryption": encrypt_assertions,
            "validate.authnrequest": validate_authn_requests,
        }
    )
    entry.update(extra or {})
    return entry


# --------------------------------------------------------------------------- the running IdP


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_RUNNING: set[RunningIdP] = set()


@atexit.register
def _stop_leftovers() -> None:
    for idp in list(_RUNNING):
        idp.stop()


class RunningIdP:
    """A SimpleSAMLphp IdP started by start_simplesamlphp(); stop() it (or use `with`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        hostname: str,
        entity_id: str | None,
        key_pair: KeyPair,
        workers: int,
        debug: bool,
    ) -> None:
        self.workdir = workdir
        self.hostname = hostname
        self.key_pair = key_pair
        self._entity_id_option = entity_id
        self._workers = workers
        self._debug = debug
        self.config_dir = workdir / "config"
        self.metadata_dir = workdir / "metadata"
        self.log_path = workdir / "simplesamlphp.log"
        self.port = 0
        self.base_url = ""
        self.entity_id = ""
        self.metadata_xml = ""
        self._sp_entries: dict[str, dict[str, Any]] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # ---- URLs

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/saml2/idp/metadata.php"

    @property
    def sso_url(self) -> str:
        """The SingleSignOnService endpoint (HTTP-Redirect and HTTP-POST bindings)."""
        return f"{self.base_url}/saml2/idp/SSOService.php"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/saml2/idp/SingleLogoutService.php"

    @property
    def cert_pem(self) -> str:
        """The IdP's signing certificate (PEM)."""
        return self.key_pair.cert_pem

    def idp_initiated_url(self, sp_entity_id: str, relay_state: str | None = None) -> str:
        """URL that starts an unsolicited (IdP-initiated) login to the given SP."""
        params = {"spentityid": sp_entity_id}
        if relay_state is not None:
            params["RelayState"] = relay_state
        return f"{self.sso_url}?{urllib.parse.urlencode(params)}"

    # ---- configuration while running

    def set_sp_metadata(
        self,
        sp_metadata_xml: str | bytes | Iterable[str | bytes],
        *,
        encrypt_assertions: bool = False,
        sign_response: bool = True,
        sign_assertion: bool = True,
        name_id_format: str = NAMEID_EMAIL,
        name_id_attribute: str = "email",
        validate_authn_requests: bool | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Replace all remote SPs with those in the metadata; returns their entity IDs.

        The options apply to every SP given here; add_sp_metadata explains them.
        """
        previous, self._sp_entries = self._sp_entries, {}
        try:
            return self.add_sp_metadata(
                sp_metadata_xml,
                encrypt_assertions=encrypt_assertions,
                sign_response=sign_response,
                sign_assertion=sign_assertion,
                name_id_format=name_id_format,
                name_id_attribute=name_id_attribute,
                validate_authn_requests=validate_authn_requests,
                extra=extra,
            )
        except BaseException:
            self._sp_entries = previous
            raise

    def add_sp_metadata(
        self,
        sp_metadata_xml: str | bytes | Iterable[str | bytes],
        *,
        encrypt_assertions: bool = False,
        sign_response: bool = True,
        sign_assertion: bool = True,
        name_id_format: str = NAMEID_EMAIL,
        name_id_attribute: str = "email",
        validate_authn_requests: bool | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Add the SPs in the metadata, replacing any with the same entity ID.

        encrypt_assertions: encrypt assertions with the SP's encryption certificate.
        sign_response / sign_assertion: sign the <samlp:Response> / the <saml:Assertion>
            (RSA-SHA256); turn one off to test an SP's signature requirements.
        name_id_format / name_id_attribute: the NameID sent (default: the user's email as
            emailAddress).
        validate_authn_requests: reject unsigned or badly signed AuthnRequests; by default
            on when the metadata says AuthnRequestsSigned="true" and has a signing cert.
        extra: more saml20-sp-remote options, written last (e.g. {"assertion.lifetime": 60}).
        The file is rewritten only if all the metadata is valid.
        """
        documents = (
            [sp_metadata_xml] if isinstance(sp_metadata_xml, str | bytes) else list(sp_metadata_xml)
        )
        entries = [
            _sp_remote_entry(
                parsed,
                encrypt_assertions=encrypt_assertions,
                sign_response=sign_response,
                sign_assertion=sign_assertion,
                name_id_format=name_id_format,
                name_id_attribute=name_id_attribute,
                validate_authn_requests=validate_authn_requests,
                extra=extra,
            )
            for document in documents
            for parsed in parse_sp_metadata(document)
        ]
        self._sp_entries = {**self._sp_entries, **{e["entityid"]: e for e in entries}}
        self._write_sp_remote()
        return [e["entityid"] for e in entries]

    def remove_sp(self, sp_entity_id: str) -> None:
        self._sp_entries.pop(sp_entity_id, None)
        self._write_sp_remote()

    def set_users(self, users: Iterable[IdPUser]) -> None:
        """Replace the users of the login form (takes effect on the next request)."""
        source: dict[str | int, Any] = {0: "exampleauth:UserPass"}
        for user in users:
            if ":" in user.username:
                raise ValueError(f"IdP usernames cannot contain ':': {user.username!r}")
            key = f"{user.username}:{user.password}"
            if any(k.split(":", 1)[0] == user.username for k in source if isinstance(k, str)):
                raise ValueError(f"duplicate IdP user {user.username!r}")
            source[key] = user.attributes()
        _write_php(
            self.config_dir / "authsources.php",
            "config",
            {"admin": ["core:AdminPassword"], _AUTH_SOURCE: source},
        )

    # ---- logs and lifecycle

    def log_text(self) -> str:
        """Everything PHP and SimpleSAMLphp wrote so far (access log, errors, SSP log)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop PHP and its workers. Safe to call more than once."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningIdP {self.base_url or '(not started)'} workdir={self.workdir}>"

    # ---- internals

    def _fail(self, message: str) -> SimpleSAMLphpError:
        return SimpleSAMLphpError(
            f"{message}\n--- {self.log_path} (last lines) ---\n{self.log_tail()}"
        )

    def _write_sp_remote(self) -> None:
        _write_php(self.metadata_dir / "saml20-sp-remote.php", "metadata", self._sp_entries)

    def _write_config(self, users: Iterable[IdPUser]) -> None:
        for sub in ("config", "metadata", "cert", "tmp", "sessions", "data", "log"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / "cert" / "idp.key").write_text(self.key_pair.key_pem)
        (self.workdir / "cert" / "idp.crt").write_text(self.key_pair.cert_pem)
        (self.workdir / "cert" / "idp.key").chmod(0o600)
        port = self.port
        config = {
            "baseurlpath": f"{self.base_url}/",
            "certdir": f"{self.workdir}/cert/",
            "loggingdir": f"{self.workdir}/log/",
            "datadir": f"{self.workdir}/data/",
            "tempdir": f"{self.workdir}/tmp",
            "metadatadir": f"{self.workdir}/metadata/",
            "secretsalt": secrets.token_hex(16),
            "auth.adminpassword": secrets.token_urlsafe(16),
            "admin.protectindexpage": False,
            "admin.protectmetadata": False,
            "admin.checkforupdates": False,
            "technicalcontact_name": "deskgate tests",
            "technicalcontact_email": "idp-admin@example.com",
            "timezone": "UTC",
            "enable.saml20-idp": True,
            "enable.shib13-idp": False,
            "enable.adfs-idp": False,
            "module.enable": {"exampleauth": True, "core": True, "saml": True, "admin": True},
            # Only loopback URLs may be used as ReturnTo targets.
            "trusted.url.domains": [r"127\.0\.0\.1(:\d+)?", r"([a-z0-9.-]+\.)?localhost(:\d+)?"],
            "trusted.url.regex": True,
            "store.type": "phpsession",
            "session.phpsession.savepath": f"{self.workdir}/sessions",
            # Cookies ignore the port: give each IdP on 127.0.0.1 cookie names of its own.
            "session.phpsession.cookiename": f"SimpleSAML_{port}",
            "session.cookie.name": f"SimpleSAMLSessionID_{port}",
            "session.authtoken.cookiename": f"SimpleSAMLAuthToken_{port}",
            "language.cookie.name": f"simplesaml_language_{port}",
            # Plain http: the Debian defaults (Secure; SameSite=None) would never come back.
            "session.cookie.secure": False,
            "session.cookie.samesite": "Lax",
            "language.cookie.secure": False,
            "language.cookie.samesite": "Lax",
            "language.available": ["en"],
            "language.default": "en",
            "logging.handler": "stderr",
            "logging.level": _PhpExpr(
                "SimpleSAML\\Logger::DEBUG" if self._debug else "SimpleSAML\\Logger::INFO"
            ),
            "debug": {"saml": self._debug, "backtraces": True, "validatexml": False},
            "showerrors": True,
            "errorreporting": False,
            "production": True,
            "statistics.out": [],
        }
        lines = ["<?php", f"$config = {php_literal(config)};"]
        (self.config_dir / "config.php").write_text("\n".join(lines) + "\n")
        self.set_users(users)
        idp_hosted = {
            "host": "__DEFAULT__",
            "privatekey": "idp.key",
            "certificate": "idp.crt",
            "auth": _AUTH_SOURCE,
            "signature.algorithm": RSA_SHA256,
            "saml20.sign.response": True,
            "saml20.sign.assertion": True,
            "NameIDFormat": [NAMEID_EMAIL],
            "attributes.NameFormat": ATTRNAME_BASIC,
            "SingleSignOnServiceBinding": [BINDING_REDIRECT, BINDING_POST],
            "SingleLogoutServiceBinding": [BINDING_REDIRECT, BINDING_POST],
        }
        _write_php(
            self.metadata_dir / "saml20-idp-hosted.php", "metadata", {self.entity_id: idp_hosted}
        )
        self._write_sp_remote()

    def _spawn(self) -> None:
        env = {
            **os.environ,
            "SIMPLESAMLPHP_CONFIG_DIR": str(self.config_dir),
            "PHP_CLI_SERVER_WORKERS": str(self._workers),
        }
        command = [
            PHP,
            "-d", "opcache.enable_cli=0",  # config files are rewritten while running
            "-d", "display_errors=stderr",
            "-d", "error_reporting=E_ALL & ~E_DEPRECATED",
            "-d", f"session.save_path={self.workdir}/sessions",
            "-S", f"127.0.0.1:{self.port}",
            "-t", str(SIMPLESAMLPHP_WWW),
        ]  # fmt: skip
        self._log_file = open(self.log_path, "ab", buffering=0)  # noqa: SIM115
        self._log_file.write(f"--- {' '.join(command)}\n".encode())
        self._process = subprocess.Popen(
            command,
            env=env,
            cwd=SIMPLESAMLPHP_WWW,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() kills the whole group, workers included
        )
        _RUNNING.add(self)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        local_url = f"http://127.0.0.1:{self.port}/saml2/idp/metadata.php"
        request = urllib.request.Request(
            local_url, headers={"Host": f"{self.hostname}:{self.port}"}
        )
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise self._fail(
                    f"php -S exited early (code {self._process and self._process.returncode})"
                )
            try:
                with _NO_PROXY.open(request, timeout=2) as response:
                    body = response.read().decode()
                if "EntityDescriptor" in body:
                    self.metadata_xml = body
                    return
                last_error = f"unexpected answer: {body[:300]!r}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        raise self._fail(f"SimpleSAMLphp not ready after {timeout}s at {local_url}: {last_error}")

    def _start(self, users: Iterable[IdPUser], startup_timeout: float) -> None:
        users = list(users)
        for attempt in range(3):
            self.port = _free_port()
            self.base_url = f"http://{self.hostname}:{self.port}"
            self.entity_id = self._entity_id_option or self.metadata_url
            self._write_config(users)
            self._spawn()
            try:
                self._wait_ready(startup_timeout)
            except SimpleSAMLphpError:
                address_taken = "Address already in use" in self.log_tail(5)
                self.stop()
                if address_taken and attempt < 2:
                    continue
                raise
            break
        root = _parse_xml(self.metadata_xml)
        if root.get("entityID") != self.entity_id:
            self.stop()
            raise self._fail(
                f"IdP metadata has entityID {root.get('entityID')!r}, expected {self.entity_id!r}"
            )


def start_simplesamlphp(
    workdir: Path,
    sp_metadata_xml: str | bytes | Iterable[str | bytes] = (),
    users: Iterable[IdPUser] = (),
    *,
    encrypt_assertions: bool = False,
    entity_id: str | None = None,
    hostname: str = "127.0.0.1",
    key_pair: KeyPair | None = None,
    workers: int = 4,
    startup_timeout: float = 20.0,
    debug: bool = False,
) -> RunningIdP:
    """Start SimpleSAMLphp as an IdP on 127.0.0.1 and return once its metadata is served.

    workdir: a fresh directory (created if needed, emptied first) for config, keys, sessions
        and the log file `simplesamlphp.log`.
    sp_metadata_xml: metadata of the SPs to trust (more can be set later with
        set_sp_metadata/add_sp_metadata). encrypt_assertions applies to these.
    entity_id: default `<base_url>/saml2/idp/metadata.php`.
    hostname: the host name in the IdP's URLs. The server always listens on 127.0.0.1;
        use e.g. "idp.localhost" (Chromium resolves *.localhost to loopback) to make the IdP
        cross-site to an SP on 127.0.0.1, as in production.
    key_pair: the signing key/certificate (default: a fresh RSA-2048 pair).
    debug: log at DEBUG level including every SAML message.
    """
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if not (SIMPLESAMLPHP_WWW / "saml2" / "idp" / "SSOService.php").is_file():
        raise SimpleSAMLphpError(
            f"SimpleSAMLphp not found at {SIMPLESAMLPHP_WWW} (apt-get install simplesamlphp php-cli php-xml php-mbstring)"
        )
    if shutil.which(PHP) is None:
        raise SimpleSAMLphpError(f"{PHP!r} not found (apt-get install php-cli)")
    idp = RunningIdP(
        workdir,
        hostname=hostname,
        entity_id=entity_id,
        key_pair=key_pair or make_key_pair("deskgate test IdP"),
        workers=workers,
        debug=debug,
    )
    idp._start(users, startup_timeout)
    try:
        documents = (
            [sp_metadata_xml] if isinstance(sp_metadata_xml, str | bytes) else list(sp_metadata_xml)
        )
        if documents:
            idp.set_sp_metadata(documents, encrypt_assertions=encrypt_assertions)
    except BaseException:
        idp.stop()
        raise
    return idp


def idp_error(page: Page) -> str | None:
    """The text of SimpleSAMLphp's error page if `page` shows one, else None.

    SimpleSAMLphp answers errors (bad signature, unknown SP, ...) with HTTP 200 and an
    "Unhandled exception" page, so check the page, not the status code.
    """
    if page.locator("pre#trackid").count() == 0:
        return None
    return page.locator("body").inner_text()[:3000]


def submit_login_form(page: Page, username: str, password: str) -> None:
    """Fill and submit SimpleSAMLphp's username/password form on `page`.

    Waits for the form; raises SimpleSAMLphpError with the IdP's message if the IdP showed
    an error page instead (e.g. it refused the AuthnRequest).
    """
    page.locator("input#username, pre#trackid").first.wait_for()
    error = idp_error(page)
    if error is not None:
        raise SimpleSAMLphpError(
            f"the IdP showed an error page instead of its login form:\n{error}"
        )
    page.locator("input#username").fill(username)
    page.locator("input#password").fill(password)
    page.locator("#submit_button").click()
