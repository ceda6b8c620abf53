"""Fetch IdP metadata from a URL the admin gave: bounded in time and size, no internal targets."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx

from deskgate.errors import InvalidInput

MAX_BYTES = 1024 * 1024
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_REDIRECTS = 3


def _check_target(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"The metadata URL must be an http(s) URL, not '{url[:200]}'.", field="metadata_url")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror:
        raise InvalidInput(f"The metadata URL's host {parts.hostname} could not be found.", field="metadata_url") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InvalidInput(
                f"The metadata URL points at {address}, a private or loopback address; deskgate only "
                "fetches metadata from public addresses. Paste the metadata XML instead.",
                field="metadata_url",
            )


def fetch_metadata(url: str, *, allow_private: bool, transport: httpx.BaseTransport | None = None) -> bytes:
    """GET `url` (following at most 3 redirects, each checked) and return at most 1 MiB."""
    url = url.strip()
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=transport) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_target(url, allow_private)
            try:
                with client.stream("GET", url, headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise InvalidInput(
                            f"Fetching the metadata URL returned HTTP {response.status_code} (expected 200).",
                            field="metadata_url",
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > MAX_BYTES:
                            raise InvalidInput("The metadata at that URL is larger than 1 MiB.", field="metadata_url")
                    return bytes(body)
            except httpx.TimeoutException:
                raise InvalidInput("The metadata URL did not answer within 10 seconds.", field="metadata_url") from None
            except httpx.HTTPError as problem:
                raise InvalidInput(f"The metadata URL could not be fetched: {problem}.", field="metadata_url") from None
    raise InvalidInput("The metadata URL redirected too many times.", field="metadata_url")
