"""Responses that try to make the SP open something, and watches that prove it never does.

Shared by the core tests (tests/saml) and the ACS-over-HTTP tests (tests/web): each
:class:`Attack` builds, for a given spec and SP certificate, the bytes an anonymous attacker
posts (AES keys really wrapped to the SP certificate published in SP metadata, so a
vulnerable SP gets past the RSA step), and names the reason code that must refuse it.

Watching has two layers, because ``sys.addaudithook`` only sees Python-level ``open`` and
``socket.*``, never libxml2's or xmlsec's C-level ``fopen``:

* :func:`watch_io` records Python audit events (open, socket connect/bind/getaddrinfo, ...)
  raised anywhere in the process while it is active, *and* every URI xmlsec tried to open
  (``deskgate.saml._xmlsec_io`` routes all of xmlsec's IO through a recorder that refuses);
* :class:`FifoTrap` is a named pipe that notices, from the outside, whether anything opened it
  for reading (whatever the library, C or Python).
"""

from __future__ import annotations

import copy
import os
import resource
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

try:  # tests/saml puts itself on sys.path; tests/web imports this as saml.samlattacks
    import samlfactory as f
except ModuleNotFoundError:
    from saml import samlfactory as f

from deskgate.saml import _xmlsec_io
from deskgate.saml._xml import PROTOCOL_XSD, compiled_schema

DSIG11 = "{http://www.w3.org/2009/xmldsig11#}"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"

# ------------------------------------------------------------------ the attacks


@dataclass(frozen=True)
class Attack:
    """``build(spec, sp_cert_pem, fifo_path)`` -> the Response XML; ``reason`` must refuse it."""

    name: str
    build: Callable[[f.ResponseSpec, str, str], bytes]
    reason: str
    over_http: bool = True  # False: needs a signature only the test IdP can make (core only)


def _encrypted(rewrite: Callable[[etree._Element], etree._Element]) -> Callable[..., bytes]:
    def build(spec: f.ResponseSpec, sp_cert: str, fifo: str) -> bytes:
        return f.encrypted_response_xml(spec, sp_cert, rewrite=rewrite)

    return build


def _cipher_reference(uri: str | Callable[[str], str]) -> Callable[..., bytes]:
    def build(spec: f.ResponseSpec, sp_cert: str, fifo: str) -> bytes:
        target = uri(fifo) if callable(uri) else uri
        return f.encrypted_response_xml(
            spec, sp_cert, rewrite=lambda h: f.with_cipher_reference(h, target)
        )

    return build


def _retrieval_method(uri: str | Callable[[str], str]) -> Callable[..., bytes]:
    def build(spec: f.ResponseSpec, sp_cert: str, fifo: str) -> bytes:
        target = uri(fifo) if callable(uri) else uri
        return f.encrypted_response_xml(
            spec, sp_cert, rewrite=lambda h: f.with_detached_key(h, target)
        )

    return build


def _key_info_child(make: Callable[[], etree._Element]) -> Callable[..., bytes]:
    def rewrite(holder: etree._Element) -> etree._Element:
        holder.find(f"{f.XENC}EncryptedData/{f.DS}KeyInfo").insert(0, make())
        return holder

    return _encrypted(rewrite)


def _retrieval_with_transform(algorithm: str) -> Callable[[etree._Element], etree._Element]:
    def rewrite(holder: etree._Element) -> etree._Element:
        f.with_detached_key(holder)
        method = holder.find(f"{f.XENC}EncryptedData/{f.DS}KeyInfo/{f.DS}RetrievalMethod")
        transforms = etree.SubElement(method, f"{f.DS}Transforms")
        etree.SubElement(transforms, f"{f.DS}Transform", Algorithm=algorithm)
        return holder

    return rewrite


def _many_keys(count: int) -> Callable[[etree._Element], etree._Element]:
    def rewrite(holder: etree._Element) -> etree._Element:
        key_info = holder.find(f"{f.XENC}EncryptedData/{f.DS}KeyInfo")
        key = key_info.find(f"{f.XENC}EncryptedKey")
        for _ in range(count - 1):
            key_info.append(copy.deepcopy(key))
        return holder

    return rewrite


def _two_encrypted_assertions(spec: f.ResponseSpec, sp_cert: str, fifo: str) -> bytes:
    holder = f.parse(f.to_bytes(f.encrypt_assertion(f.signed_assertion(spec), sp_cert)))
    response = f.build_response(spec, holder)
    response.append(copy.deepcopy(holder))
    return f.to_bytes(response)


def _encrypted_name_id_with_cipher_reference(
    spec: f.ResponseSpec, sp_cert: str, fifo: str
) -> bytes:
    """An IdP-signed assertion whose EncryptedID reads its ciphertext from /dev/zero."""
    assertion = f.encrypt_name_id(f.build_assertion(spec), sp_cert)
    encrypted_id = assertion.find(f".//{{{f.NS_SAML}}}EncryptedID")
    reparsed = f.parse(f.to_bytes(encrypted_id))
    f.with_cipher_reference(reparsed, "file:///dev/zero")
    encrypted_id.getparent().replace(encrypted_id, reparsed)
    return f.wrap(f.sign_element(f.parse(f.to_bytes(assertion)), f.keypair("idp")), spec)


def _signed_then(edit: Callable[[etree._Element], None]) -> Callable[..., bytes]:
    """A signed (plain) response whose assertion Signature is edited by ``edit``."""

    def build(spec: f.ResponseSpec, sp_cert: str, fifo: str) -> bytes:
        response = f.parse(f.make_response_xml(spec))
        edit(response.find(f"{{{f.NS_SAML}}}Assertion/{f.DS}Signature"))
        return f.to_bytes(response)

    return build


def _reference_uri(uri: str) -> Callable[[etree._Element], None]:
    return lambda signature: signature.find(f"{f.DS}SignedInfo/{f.DS}Reference").set("URI", uri)


def _add_transform(algorithm: str, child: Callable[[], etree._Element] | None = None):  # type: ignore[no-untyped-def]
    def edit(signature: etree._Element) -> None:
        transforms = signature.find(f"{f.DS}SignedInfo/{f.DS}Reference/{f.DS}Transforms")
        transform = etree.SubElement(transforms, f"{f.DS}Transform", Algorithm=algorithm)
        if child is not None:
            transform.append(child())

    return edit


def _xslt_stylesheet() -> etree._Element:
    return etree.fromstring(
        b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
        b'<xsl:template match="/"><xsl:copy-of select="document(\'file:///etc/hostname\')"/>'
        b"</xsl:template></xsl:stylesheet>"
    )


def _signature_key_info(make: Callable[[], etree._Element]) -> Callable[[etree._Element], None]:
    return lambda signature: signature.find(f"{f.DS}KeyInfo").insert(0, make())


def _element(tag: str, **attrs: str) -> Callable[[], etree._Element]:
    return lambda: etree.Element(tag, **attrs)


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "cipher-reference-dev-zero", _cipher_reference("file:///dev/zero"), "external_reference"
    ),
    Attack(
        "cipher-reference-fifo",
        _cipher_reference(lambda fifo: f"file://{fifo}"),
        "external_reference",
    ),
    Attack(
        "cipher-reference-etc-hostname",
        _cipher_reference("file:///etc/hostname"),
        "external_reference",
    ),
    Attack("cipher-reference-plain-path", _cipher_reference("/etc/hostname"), "external_reference"),
    Attack(
        "cipher-reference-http",
        _cipher_reference("http://127.0.0.1:9/ciphertext"),
        "external_reference",
    ),
    Attack("cipher-reference-same-document", _cipher_reference("#_x"), "external_reference"),
    Attack(
        "retrieval-method-etc-hostname",
        _retrieval_method("file:///etc/hostname"),
        "external_reference",
    ),
    Attack(
        "retrieval-method-fifo",
        _retrieval_method(lambda fifo: f"file://{fifo}"),
        "external_reference",
    ),
    Attack("retrieval-method-relative-path", _retrieval_method("key.xml"), "external_reference"),
    Attack(
        "retrieval-method-http", _retrieval_method("http://127.0.0.1:9/key"), "external_reference"
    ),
    Attack("retrieval-method-xpointer", _retrieval_method("#xpointer(/)"), "external_reference"),
    Attack(
        "retrieval-method-xslt-transform",
        _encrypted(_retrieval_with_transform(XSLT)),
        "encryption_structure_refused",
    ),
    Attack(
        "key-info-reference-etc-hostname",
        _key_info_child(_element(f"{DSIG11}KeyInfoReference", URI="file:///etc/hostname")),
        "external_reference",
    ),
    Attack(
        "key-info-agreement-method",
        _key_info_child(
            _element(
                f"{f.XENC}AgreementMethod", Algorithm="http://www.w3.org/2009/xmlenc11#ECDH-ES"
            )
        ),
        "encryption_structure_refused",
    ),
    Attack("three-encrypted-keys", _encrypted(_many_keys(3)), "encryption_structure_refused"),
    Attack("two-encrypted-assertions", _two_encrypted_assertions, "wrong_assertion_count"),
    Attack(
        "encrypted-id-cipher-reference-dev-zero",
        _encrypted_name_id_with_cipher_reference,
        "external_reference",
        over_http=False,
    ),
    Attack(
        "signature-reference-etc-hostname",
        _signed_then(_reference_uri("file:///etc/hostname")),
        "external_reference",
    ),
    Attack(
        "signature-reference-http",
        _signed_then(_reference_uri("http://127.0.0.1:9/signed")),
        "external_reference",
    ),
    Attack(
        "signature-key-info-retrieval-method",
        _signed_then(
            _signature_key_info(_element(f"{f.DS}RetrievalMethod", URI="file:///etc/hostname"))
        ),
        "external_reference",
    ),
    Attack(
        "signature-xslt-transform",
        _signed_then(_add_transform(XSLT, _xslt_stylesheet)),
        "unsupported_algorithm",
    ),
    Attack(
        "signature-xpath-transform",
        _signed_then(_add_transform(XPATH, _element(f"{f.DS}XPath"))),
        "unsupported_algorithm",
    ),
    Attack(
        "signature-xpath-filter2-transform",
        _signed_then(_add_transform(XPATH_FILTER2)),
        "unsupported_algorithm",
    ),
)


# ----------------------------------------------------------------- the watches

_WATCHED_EVENTS = frozenset(
    {
        "open",
        "os.listdir",
        "os.scandir",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.sendto",
        "urllib.Request",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
    }
)


@dataclass
class IOWatch:
    """What happened while :func:`watch_io` was active."""

    thread: int  # Python events are recorded for this thread only (the one validating)
    python_events: list[tuple[str, str]] = field(default_factory=list)
    xmlsec_uris: list[str] = field(default_factory=list)

    def assert_nothing_opened(self) -> None:
        assert not self.python_events, f"validation opened something: {self.python_events[:5]}"
        assert not self.xmlsec_uris, f"xmlsec tried to open: {self.xmlsec_uris[:5]}"


_active: list[IOWatch] = []
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _active or event not in _WATCHED_EVENTS:
        return
    thread = threading.get_ident()
    for watch in list(_active):
        if watch.thread == thread:
            watch.python_events.append((event, repr(args)[:200]))


@contextmanager
def watch_io() -> Iterator[IOWatch]:
    """Record file/socket/process audit events raised by the calling thread (where the core
    validates: it starts no threads), and every URI xmlsec tried to open (any thread).

    Other threads (a test server, pytest-xdist's channel, the metadata refresher) are not
    watched. Audit hooks cannot be removed, so one is installed per process and does nothing
    while no watch is active.
    """
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
    compiled_schema(PROTOCOL_XSD)  # our own XSD, compiled on a thread's first use: not a finding
    watch = IOWatch(thread=threading.get_ident())
    with _xmlsec_io.recording() as uris:
        _active.append(watch)
        try:
            yield watch
        finally:
            _active.remove(watch)
            watch.xmlsec_uris.extend(uris)


class FifoTrap:
    """A named pipe that records whether anything opened it for reading.

    A watcher thread keeps trying a non-blocking open for writing, which succeeds only
    while a reader has the pipe open; it then closes at once (the reader sees EOF and is
    not left hanging). Detects C-level opens that no audit hook sees.
    """

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "trap.fifo")
        os.mkfifo(self.path)
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader
                time.sleep(0.005)
                continue
            self.opened.set()
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if stat.S_ISFIFO(os.stat(self.path).st_mode):
            os.unlink(self.path)


@contextmanager
def address_space_cap(extra_bytes: int = 1536 * 1024 * 1024) -> Iterator[None]:
    """Cap this process's address space at its current size plus ``extra_bytes``.

    Used around requests that would read /dev/zero if the fix regressed: the test then
    fails (xmlsec runs out of memory and errors) instead of exhausting the machine.
    """
    with open("/proc/self/status") as status:  # read before any watch starts
        vm_size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm_size + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
