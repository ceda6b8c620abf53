"""Ask one DNS server for the TXT records at a name (domain verification's only network call).

dnslib builds and parses the messages. The question goes over UDP; a truncated answer (TC) is
asked again over TCP. The whole lookup has one deadline (3 s by default), so an admin's "Verify
now" never holds a request thread longer than that. The server is the operator's resolver
(`DESKGATE_DNS_RESOLVER=host:port`, else the first nameserver of /etc/resolv.conf, port 53),
which follows CNAMEs itself.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from dnslib import QTYPE, RCODE, DNSError, DNSRecord

DEFAULT_TIMEOUT = 3.0
RESOLV_CONF = Path("/etc/resolv.conf")
_MAX_TCP_MESSAGE = 65535


class DNSLookupError(Exception):
    """The lookup got no usable answer; the message says why, for the admin."""


@dataclass(frozen=True)
class Resolver:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def resolver_from(setting: str | None, resolv_conf: Path = RESOLV_CONF) -> Resolver:
    """The `dns_resolver` setting (host:port), else the system's first nameserver."""
    if setting:
        host, _, port = setting.rpartition(":")
        return Resolver(host.strip("[]"), int(port))
    try:
        lines = resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return Resolver(parts[1].split("%", 1)[0])
    raise DNSLookupError(
        f"No DNS server to ask: {resolv_conf} names no nameserver. Set DESKGATE_DNS_RESOLVER=host:port."
    )


def _family(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET  # a host name: resolved by the socket call


def _udp(query: bytes, resolver: Resolver, timeout: float) -> bytes:
    with socket.socket(_family(resolver.host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((resolver.host, resolver.port))  # only the server's own datagrams come back
        sock.send(query)
        return sock.recv(_MAX_TCP_MESSAGE)


def _tcp(query: bytes, resolver: Resolver, deadline: float) -> bytes:
    # Not DNSRecord.send(tcp=True): it loops forever on a connection closed mid-answer.
    with socket.create_connection(
        (resolver.host, resolver.port), timeout=max(deadline - time.monotonic(), 0.01)
    ) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        received = b""
        length: int | None = None
        while length is None or len(received) < length + 2:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = sock.recv(_MAX_TCP_MESSAGE)
            if not chunk:
                raise DNSLookupError(
                    f"The DNS server at {resolver} closed the connection mid-answer."
                )
            received += chunk
            if length is None and len(received) >= 2:
                length = struct.unpack("!H", received[:2])[0]
        return received[2 : length + 2]


def _answer(raw: bytes, question: DNSRecord, resolver: Resolver) -> DNSRecord:
    try:
        reply = DNSRecord.parse(raw)
    except (DNSError, ValueError, IndexError, struct.error) as problem:
        raise DNSLookupError(
            f"The DNS server at {resolver} sent an answer that is not DNS ({problem})."
        ) from None
    # A truncated answer may leave the question out (dnslib's server does).
    if reply.header.id != question.header.id or (
        reply.questions and reply.q.qname != question.q.qname
    ):
        raise DNSLookupError(f"The DNS server at {resolver} answered another question.")
    return reply


def txt_records(
    name: str, resolver: Resolver, timeout: float = DEFAULT_TIMEOUT
) -> list[str] | None:
    """The TXT records at `name` (each record's character-strings joined), None when the name
    does not exist (NXDOMAIN). DNSLookupError when the server does not answer usably."""
    deadline = time.monotonic() + timeout
    question = DNSRecord.question(name, "TXT")
    query = question.pack()
    try:
        reply = _answer(_udp(query, resolver, timeout), question, resolver)
        if reply.header.tc:  # too large for a datagram: ask again over TCP
            reply = _answer(_tcp(query, resolver, deadline), question, resolver)
    except TimeoutError:
        raise DNSLookupError(
            f"The DNS server at {resolver} did not answer within {timeout:g} seconds."
        ) from None
    except OSError as problem:
        raise DNSLookupError(
            f"The DNS server at {resolver} did not answer ({problem.strerror or problem})."
        ) from None
    rcode = reply.header.rcode
    if rcode == RCODE.NXDOMAIN:
        return None
    if rcode != RCODE.NOERROR:
        raise DNSLookupError(
            f"The DNS server at {resolver} answered {RCODE.get(rcode)} for {name}: try again later."
        )
    return [
        b"".join(record.rdata.data).decode("utf-8", errors="replace")
        for record in reply.rr
        if record.rtype == QTYPE.TXT
    ]
