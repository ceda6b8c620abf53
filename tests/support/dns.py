"""A real DNS server on 127.0.0.1 whose TXT records a test sets (dnslib's DNSServer).

UDP and TCP listen on the same ephemeral port, as a resolver does; a UDP answer over 512 bytes
is truncated (TC), so a large TXT record proves the client's TCP fallback.

    def test_x(dns_server):
        dns_server.txt["_deskgate-verification.acme.test"] = ["deskgate-verification=..."]
        settings = load_settings(dns_resolver=dns_server.address)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import DNSHandler, DNSServer


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class _TruncatingHandler(DNSHandler):
    udplen = 512  # what a resolver does without EDNS: larger answers need TCP


class TxtZone:
    """The resolver: `txt[name]` is that name's TXT records, each a string or a list of
    character-strings (one record split into several strings). Other names are NXDOMAIN."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str | list[str]]] = {}
        self.questions: list[tuple[str, str]] = []
        """(name, "udp"|"tcp") of every question asked."""

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        self.questions.append((name, handler.protocol))
        reply = request.reply()
        if name not in self.txt:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.TXT:
            for value in self.txt[name]:
                strings = [value] if isinstance(value, str) else value
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT([s.encode() for s in strings])))
        return reply


class RunningDNS:
    def __init__(self, zone: TxtZone, udp: DNSServer, tcp: DNSServer, port: int) -> None:
        self.zone, self._servers, self.port = zone, (udp, tcp), port
        self.txt = zone.txt
        self.address = f"127.0.0.1:{port}"

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()


def start_dns_server() -> RunningDNS:
    zone = TxtZone()
    for _ in range(20):  # the UDP port is ephemeral; TCP must get the same number
        udp = DNSServer(
            zone, address="127.0.0.1", port=0, logger=_Quiet(), handler=_TruncatingHandler
        )
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(zone, address="127.0.0.1", port=port, tcp=True, logger=_Quiet())
        except OSError:
            udp.server.server_close()
            continue
        udp.start_thread()
        tcp.start_thread()
        return RunningDNS(zone, udp, tcp, port)
    raise RuntimeError("no port free for both UDP and TCP")


@pytest.fixture
def dns_server() -> Iterator[RunningDNS]:
    running = start_dns_server()
    yield running
    running.stop()


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """host:port of a UDP socket that reads questions and never answers (a DNS timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"
