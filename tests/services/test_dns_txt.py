"""The TXT lookup against a real DNS server on 127.0.0.1 (dnslib's), over UDP and TCP."""

from __future__ import annotations

import socket
import time

import pytest

from deskgate.services.dns_txt import DNSLookupError, Resolver, resolver_from, txt_records

from support.dns import dns_server, silent_dns  # noqa: F401  (fixtures)

NAME = "_deskgate-verification.acme.test"


def resolver(address: str) -> Resolver:
    return resolver_from(address)


def test_reads_the_records_at_the_name(dns_server):
    dns_server.txt[NAME] = ["deskgate-verification=abc", "v=spf1 -all"]
    assert txt_records(NAME, resolver(dns_server.address)) == [
        "deskgate-verification=abc",
        "v=spf1 -all",
    ]
    assert dns_server.zone.questions == [(NAME, "udp")]


def test_a_record_split_into_character_strings_is_joined(dns_server):
    dns_server.txt[NAME] = [["deskgate-verif", "ication=", "abc"]]
    assert txt_records(NAME, resolver(dns_server.address)) == ["deskgate-verification=abc"]


def test_a_name_that_does_not_exist_is_none_and_one_without_txt_is_empty(dns_server):
    assert txt_records(NAME, resolver(dns_server.address)) is None
    dns_server.txt[NAME] = []
    assert txt_records(NAME, resolver(dns_server.address)) == []


def test_an_answer_too_large_for_udp_is_asked_again_over_tcp(dns_server):
    big = ["x" * 250, "y" * 250, "z" * 250]  # ~750 bytes: over UDP's 512
    dns_server.txt[NAME] = [big, "deskgate-verification=abc"]
    found = txt_records(NAME, resolver(dns_server.address))
    assert found == ["".join(big), "deskgate-verification=abc"]
    assert dns_server.zone.questions == [(NAME, "udp"), (NAME, "tcp")]


def test_a_server_that_never_answers_times_out_with_the_reason(silent_dns):
    started = time.monotonic()
    with pytest.raises(DNSLookupError, match=r"did not answer within 0.5 seconds"):
        txt_records(NAME, resolver(silent_dns), timeout=0.5)
    assert time.monotonic() - started < 2


def test_a_port_with_no_server_is_reported():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens now: the kernel answers "port unreachable" (or, at worst, silence).
    with pytest.raises(DNSLookupError, match=r"did not answer"):
        txt_records(NAME, Resolver("127.0.0.1", port), timeout=1)


def test_the_resolver_comes_from_the_setting_or_resolv_conf(tmp_path):
    assert resolver_from("127.0.0.1:5353") == Resolver("127.0.0.1", 5353)
    assert resolver_from("[::1]:53") == Resolver("::1", 53)
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n")
    assert resolver_from(None, conf) == Resolver("10.0.0.2", 53)
    conf.write_text("search example\n")
    with pytest.raises(DNSLookupError, match="DESKGATE_DNS_RESOLVER"):
        resolver_from(None, conf)
