"""The SSRF guard for URLs an admin gives deskgate to call (IdP metadata, webhook endpoints).

The host is resolved once per request, every address it resolves to is checked, and the
connection goes to the checked address itself: the URL handed to httpx names that IP, while the
Host header and the TLS server name (SNI, and so certificate verification) stay the admin's host
name. httpx never resolves the name again, so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot reach an internal address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from deskgate.errors import InvalidInput

Resolver = Callable[[str, int], Sequence[str]]
"""(ASCII host name, port) -> the IP addresses it resolves to, as text."""

_DNS_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Subject:
    """What the URL is for, in the words of the refusals."""

    what: str
    """"metadata URL", "webhook URL"."""
    field: str
    public_only: str
    """Said when an address is private: "deskgate only fetches metadata from public addresses…"."""
    private_setting: str
    """What allows private URLs: "private metadata URLs"."""


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), every address of it."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class Hop:
    """One request: `url` names the checked IP; `host_header`/`server_name` the admin's host."""

    url: httpx.URL
    host_header: str
    server_name: str | None

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.server_name} if self.server_name else {}


def shown(url: str | httpx.URL) -> str:
    return repr(str(url)[:200])


def parse(url: str | httpx.URL, subject: Subject) -> httpx.URL:
    """The URL as httpx reads it (the one parse used both to check and to connect)."""

    def refuse(message: str) -> InvalidInput:
        return InvalidInput(message, field=subject.field)

    what = subject.what
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")  # IDNA-encoded by httpx
        port = parsed.port
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as problem:
        raise refuse(f"The {what} {shown(url)} is not a valid URL ({problem}).") from None
    if parsed.scheme not in ("https", "http") or not host:
        raise refuse(f"The {what} must be an http(s) URL, not {shown(url)}.")
    if parsed.userinfo:
        raise refuse(f"The {what} must not contain a user name or password.")
    if port is not None and not 0 < port < 65536:
        raise refuse(
            f"The {what} {shown(url)} has port {port}; a port is a number from 1 to 65535."
        )
    if _ip_literal(host) is None:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
            raise refuse(
                f"The {what}'s host {host[:100]!r} is not a valid host name (labels of 1 to 63 "
                "letters, digits or hyphens, 253 characters in all)."
            )
    return parsed


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def pin(url: httpx.URL, subject: Subject, *, allow_private: bool, resolve: Resolver) -> Hop:
    """Resolve `url`'s host once, check every address, and aim the request at the first one."""
    what = subject.what
    host = url.raw_host.decode("ascii")
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            answers = resolve(host, port)
            addresses = [ipaddress.ip_address(str(answer).split("%", 1)[0]) for answer in answers]
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            raise InvalidInput(f"The {what}'s host {host} could not be found.", field=subject.field)
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise InvalidInput(
                    f"The {what} points at {address}, a private or loopback address; "
                    f"{subject.public_only}",
                    field=subject.field,
                )
    if url.scheme != "https" and not allow_private:
        raise InvalidInput(
            f"The {what} {shown(url)} must use https (http only when "
            f"{subject.private_setting} are allowed).",
            field=subject.field,
        )
    return Hop(
        url=url.copy_with(host=str(addresses[0])),
        host_header=url.netloc.decode("ascii"),
        server_name=host if literal is None and url.scheme == "https" else None,
    )
