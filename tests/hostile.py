"""Hypothesis strategies for hostile request input (imported as `hostile`: the tests folder is
on sys.path): NUL and other control characters, lone surrogates, invalid UTF-8, huge integers,
very long strings and deep JSON. Everything is produced as the bytes put on the wire, so that
what no HTTP client would send (a lone surrogate, a byte that is not UTF-8) is sent too.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

NASTY_TEXTS = [
    "\x00",
    "a\x00b",
    "\x01",
    "\x1b[31m",
    "\x7f",
    "\r\nSet-Cookie: x=1",
    "\t",
    "\ud800",
    "\udfff",
    "a\udc80b",
    "\ufeff",
    "\u202e",
    "\ufffe",
    "\U0010ffff",
    "%00",
    "%ff",
    "%ED%A0%80",
    "'",
    '"',
    "\\",
    "' OR 1=1 --",
    "<script>",
    "${jndi:x}",
    "../../etc/passwd",
    "o'brien@example.com",
    "ada@example.com\x00",
    "a" * 321 + "@example.com",
    "é@example.com",
]

HUGE_INTEGERS = [2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, -(2**64), 10**30, 10**400]


def _long(sizes: tuple[int, ...]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda n, c: c * n,
        st.sampled_from(sizes),
        st.sampled_from(["x", "é", "\x00", "\U0001f600"]),
    )


def _texts(longest: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY_TEXTS),
        st.text(max_size=30),
        st.text(
            st.characters(codec=None, categories=["Cc", "Cs", "Co", "Cn", "Zl", "Zp"]), max_size=8
        ),
        st.builds(
            lambda a, b, c: a + b + c,
            st.text(max_size=8),
            st.sampled_from(NASTY_TEXTS),
            st.text(max_size=8),
        ),
        _long(tuple(n for n in (256, 257, 401, 1025, 4097, 16_385) if n <= longest)),
    )


text = _texts(16_385)
"""Hostile text; may hold lone surrogates (encode with `wire`)."""

long_text = _long((199, 200, 201, 255, 256, 257, 320, 400, 401, 1025, 5000))
"""Strings around the lengths columns and validators draw lines at."""

url_text = _texts(1025)
"""Hostile text short enough for a URL (httpx refuses URLs over 64 KiB, once percent-encoded)."""


def wire(value: str | bytes) -> bytes:
    """The bytes sent for `value`: UTF-8, a lone surrogate as its (invalid) 3-byte form."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


raw = st.one_of(text.map(wire), st.binary(max_size=40))
"""Hostile bytes: hostile text, or bytes that need not be UTF-8."""

url_raw = st.one_of(url_text.map(wire), st.binary(max_size=40))

integers = st.one_of(st.sampled_from(HUGE_INTEGERS), st.integers(), st.integers(-3, 3))


def percent(value: str | bytes) -> str:
    """`value` percent-encoded for a path segment, a query value or a form field."""
    return quote_from_bytes(wire(value), safe="")


def urlencoded(fields: list[tuple[str | bytes, str | bytes]]) -> bytes:
    return "&".join(f"{percent(name)}={percent(value)}" for name, value in fields).encode("ascii")


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), integers, st.floats(allow_nan=False, allow_infinity=False), text
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


def deep(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


deep_json = st.builds(deep, st.integers(20, 200), st.sampled_from(["x", "\x00", 2**64]))


def json_bytes(document: Any, *, ascii_only: bool = True) -> bytes:
    """The JSON text of `document`: lone surrogates as `\\ud800` escapes (ascii_only) or as
    invalid UTF-8 bytes."""
    return wire(json.dumps(document, ensure_ascii=ascii_only))


raw_json = st.one_of(
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(30, 5000)),
    st.builds(lambda n: b'{"a":' * n + b"1" + b"}" * n, st.integers(30, 2000)),
    st.binary(max_size=60),
    st.sampled_from(
        [b"", b"{", b'{"a": NaN}', b"1e400", b'"\\u0000"', b'"\\ud800"', b'{"\\u0000": 1}']
    ),
)
"""JSON-ish bodies that are not JSON, or that JSON libraries disagree on."""
