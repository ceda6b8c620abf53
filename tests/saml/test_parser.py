"""The hardened parser behind the ACS and metadata: comments and PIs never reach a reader."""

from __future__ import annotations

import threading

import pytest
from lxml import etree
from onelogin.saml2.xmlparser import DTDForbidden

from deskgate.saml._xml import parse_hardened, text_of


def test_comments_and_processing_instructions_never_enter_the_tree() -> None:
    root = parse_hardened(b"<a><b>user@<!-- -->evil.com</b><?pi x?><c>1<!--x-->2</c></a>")
    assert not list(root.iter(etree.Comment))
    assert not list(root.iter(etree.ProcessingInstruction))
    assert [text_of(child) for child in root] == ["user@evil.com", "12"]
    assert len(root[0]) == 0  # merged into one text node: nothing for a reader to stop at


def test_a_doctype_the_byte_scan_cannot_see_is_still_refused() -> None:
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>'
    with pytest.raises(DTDForbidden):
        parse_hardened(utf16.encode("utf-16"))


def test_threads_parse_at_once() -> None:
    results: list[str | None] = []

    def parse_many() -> None:
        for index in range(200):
            results.append(text_of(parse_hardened(f"<a>{index}<!--c-->!</a>".encode())))

    threads = [threading.Thread(target=parse_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"{index}!" for index in range(200) for _ in range(4))
