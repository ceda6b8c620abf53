"""Fetch IdP metadata from a URL the admin gave: bounded in time and size, no internal targets.

Every hop (the first request and each redirect) goes through the SSRF guard of
services/url_guard.py: resolved once, every address checked, and the connection made to the
checked address itself (no DNS rebinding).
"""

from __future__ import annotations

import ssl

import httpx

from deskgate.errors import InvalidInput
from deskgate.services import url_guard

MAX_BYTES = 1024 * 1024
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_REDIRECTS = 3
ACCEPT = "application/samlmetadata+xml, application/xml, text/xml"

Resolver = url_guard.Resolver
system_resolver = url_guard.system_resolver

_SUBJECT = url_guard.Subject(
    what="metadata URL",
    field="metadata_url",
    # The metadata carries the certificates sign-ins are checked with: over plain http anyone
    # on the path could swap in their own, hence https unless private URLs are allowed.
    public_only="deskgate only fetches metadata from public addresses. Paste the metadata XML instead.",
    private_setting="private metadata URLs",
)


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field=_SUBJECT.field)


def _parse(url: str | httpx.URL) -> httpx.URL:
    return url_guard.parse(url, _SUBJECT)


def _pin(url: httpx.URL, *, allow_private: bool, resolve: Resolver) -> url_guard.Hop:
    return url_guard.pin(url, _SUBJECT, allow_private=allow_private, resolve=resolve)


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
                f"The metadata URL redirected to {url_guard.shown(redirected_to)}: {problem.message}"
            ) from None
        answer = _get(hop, verify)
        if isinstance(answer, bytes):
            return answer
        redirected_to = answer
        try:
            current = _parse(current.join(answer))
        except httpx.InvalidURL as problem:
            raise _refuse(
                f"The metadata URL redirected to {url_guard.shown(answer)}, not a valid URL ({problem})."
            ) from None
        except InvalidInput as problem:
            raise _refuse(
                f"The metadata URL redirected to {url_guard.shown(answer)}: {problem.message}"
            ) from None
    raise _refuse("The metadata URL redirected too many times.")


def _get(hop: url_guard.Hop, verify: ssl.SSLContext | None) -> bytes | str:
    """The body (200) or the redirect's Location; anything else is an InvalidInput."""
    extensions = hop.extensions
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
