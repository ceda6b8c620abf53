"""Fetch IdP metadata from a URL the admin gave: bounded in time and size, no internal targets.

The host is resolved once per hop (first request and every redirect), every address it resolves
to is checked, and the connection goes to the checked address itself: the URL handed to httpx
names that IP, while the Host header and the TLS server name (SNI, and so certificate
verification) stay the admin's host name. httpx never resolves the name again, so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot reach an internal
address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from deskgate.errors import InvalidInput

MAX_BYTES = 1024 * 1024
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_REDIRECTS = 3
ACCEPT = "application/samlmetadata+xml, application/xml, text/xml"

Resolver = Callable[[str, int], Sequence[str]]
"""(ASCII host name, port) -> the IP addresses it resolves to, as text."""

_DNS_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_FIELD = "metadata_url"


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), every address of it."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class _Hop:
    """One request: `url` names the checked IP; `host_header`/`server_name` the admin's host."""

    url: httpx.URL
    host_header: str
    server_name: str | None


def _shown(url: str | httpx.URL) -> str:
    return repr(str(url)[:200])


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field=_FIELD)


def _parse(url: str | httpx.URL) -> httpx.URL:
    """The URL as httpx reads it (the one parse used both to check and to connect)."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")  # IDNA-encoded by httpx
        port = parsed.port
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as problem:
        raise _refuse(f"The metadata URL {_shown(url)} is not a valid URL ({problem}).") from None
    if parsed.scheme not in ("https", "http") or not host:
        raise _refuse(f"The metadata URL must be an http(s) URL, not {_shown(url)}.")
    if parsed.userinfo:
        raise _refuse("The metadata URL must not contain a user name or password.")
    if port is not None and not 0 < port < 65536:
        raise _refuse(
            f"The metadata URL {_shown(url)} has port {port}; a port is a number from 1 to 65535."
        )
    if _ip_literal(host) is None:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
            raise _refuse(
                f"The metadata URL's host {host[:100]!r} is not a valid host name (labels of 1 to 63 "
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


def _pin(url: httpx.URL, *, allow_private: bool, resolve: Resolver) -> _Hop:
    """Resolve `url`'s host once, check every address, and aim the request at the first one."""
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
            raise _refuse(f"The metadata URL's host {host} could not be found.")
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise _refuse(
                    f"The metadata URL points at {address}, a private or loopback address; deskgate only "
                    "fetches metadata from public addresses. Paste the metadata XML instead."
                )
    if url.scheme != "https" and not allow_private:
        # The metadata carries the certificates sign-ins are checked with: over plain http anyone
        # on the path could swap in their own.
        raise _refuse(
            f"The metadata URL {_shown(url)} must use https (http only when private metadata URLs are allowed)."
        )
    return _Hop(
        url=url.copy_with(host=str(addresses[0])),
        host_header=url.netloc.decode("ascii"),
        server_name=host if literal is None and url.scheme == "https" else None,
    )


def fetch_metadata(
    url: str,
    *,
    allow_private: bool,
    resolve: Resolver = system_resolver,
    verify: ssl.SSLContext | None = None,
) -> bytes:
    """GET `url` (following at most 3 redirects, each checked) and return at most 1 MiB.

    Args:
        allow_private: also fetch from loopback/private addresses (the
            `allow_private_metadata_urls` setting); the address is still pinned.
        resolve: host name -> addresses (the system resolver; tests pass their own).
        verify: the TLS trust store (default: certifi's, or SSL_CERT_FILE / SSL_CERT_DIR).

    Raises:
        InvalidInput: any reason the URL cannot be fetched, in words for the admin.
    """
    current = _parse(url.strip())
    redirected_to: str | None = None
    for _ in range(MAX_REDIRECTS + 1):
        try:
            hop = _pin(current, allow_private=allow_private, resolve=resolve)
        except InvalidInput as problem:
            if redirected_to is None:
                raise
            raise _refuse(
                f"The metadata URL redirected to {_shown(redirected_to)}: {problem.message}"
            ) from None
        answer = _get(hop, verify)
        if isinstance(answer, bytes):
            return answer
        redirected_to = answer
        try:
            current = _parse(current.join(answer))
        except httpx.InvalidURL as problem:
            raise _refuse(
                f"The metadata URL redirected to {_shown(answer)}, not a valid URL ({problem})."
            ) from None
        except InvalidInput as problem:
            raise _refuse(
                f"The metadata URL redirected to {_shown(answer)}: {problem.message}"
            ) from None
    raise _refuse("The metadata URL redirected too many times.")


def _get(hop: _Hop, verify: ssl.SSLContext | None) -> bytes | str:
    """The body (200) or the redirect's Location; anything else is an InvalidInput."""
    extensions = {"sni_hostname": hop.server_name} if hop.server_name else {}
    headers = {"Host": hop.host_header, "Accept": ACCEPT}
    # A fresh client per hop: no connection is reused for another host name. trust_env=False:
    # a proxy from the environment would resolve the name itself, defeating the pinning (the
    # trust store still honours SSL_CERT_FILE / SSL_CERT_DIR).
    try:
        tls = verify if verify is not None else httpx.create_ssl_context(trust_env=True)
        with (
            httpx.Client(
                timeout=TIMEOUT, follow_redirects=False, trust_env=False, verify=tls
            ) as client,
            client.stream("GET", hop.url, headers=headers, extensions=extensions) as response,
        ):
            if response.is_redirect and "location" in response.headers:
                return response.headers["location"]
            if response.status_code != 200:
                raise _refuse(
                    f"Fetching the metadata URL returned HTTP {response.status_code} (expected 200)."
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_BYTES:
                    raise _refuse("The metadata at that URL is larger than 1 MiB.")
            return bytes(body)
    except httpx.TimeoutException:
        raise _refuse("The metadata URL did not answer within 10 seconds.") from None
    except (
        httpx.HTTPError,
        httpx.InvalidURL,
        httpx.StreamError,
        ValueError,
        UnicodeError,
        OSError,
    ) as problem:
        raise _refuse(
            f"The metadata URL could not be fetched: {str(problem)[:300].rstrip('.')}."
        ) from None
