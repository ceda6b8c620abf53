"""The metadata fetcher connects to exactly the address it checked (DNS rebinding), keeps the
Host header and TLS name right, and turns every malformed URL into an InvalidInput."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskgate.errors import InvalidInput
from deskgate.services import metadata_fetch

from web.test_saml_acs import idp_metadata

PUBLIC = "93.184.215.14"  # globally routable; the connect edge below routes it to a local server


class RebindingDNS:
    """The system resolver for some names: the first answer public, every later one 127.0.0.1
    (what an attacker's DNS server with a zero TTL does). Other names resolve normally."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
        self.names = set(names)
        self.asked: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
            if host not in self.names:
                return real(host, port, *args, **kwargs)
            answer = PUBLIC if host not in self.asked else "127.0.0.1"
            self.asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class ConnectEdge:
    """socket.create_connection (what httpcore connects with), recording every target; the
    PUBLIC address is served by a local server, so no test leaves the machine."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, public_port: int) -> None:
        self.targets: list[tuple[str, int]] = []
        real = socket.create_connection

        def create_connection(address, *args, **kwargs):  # type: ignore[no-untyped-def]
            host, port = address[0], address[1]
            self.targets.append((host, port))
            if host == PUBLIC:
                return real(("127.0.0.1", public_port), *args, **kwargs)
            return real(address, *args, **kwargs)

        monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.mark.parametrize("path", ["/md", "/moved"])
def test_dns_rebinding_never_reaches_an_internal_server(monkeypatch, serve, tls_for, path):
    names = ("idp.rebind.test", "next.rebind.test")
    tls = tls_for(*names)
    public = serve(tls.server)
    internal = serve()  # plain HTTP on 127.0.0.1, e.g. an admin API: must never see a byte
    public.routes["/md"] = (200, idp_metadata().encode(), {})
    public.routes["/moved"] = (
        302,
        b"",
        {"Location": f"https://next.rebind.test:{internal.port}/md"},
    )
    dns = RebindingDNS(monkeypatch, *names)
    edge = ConnectEdge(monkeypatch, public.port)

    body = metadata_fetch.fetch_metadata(
        f"https://idp.rebind.test:{internal.port}{path}", allow_private=False, verify=tls.client
    )

    assert b"IDPSSODescriptor" in body
    assert internal.connections == 0
    assert edge.targets == [(PUBLIC, internal.port)] * len(public.requests)
    # One resolution per hop, and each hop's Host header is the name the admin (or redirect) gave.
    assert dns.asked == ["idp.rebind.test", "next.rebind.test"][: len(public.requests)]
    assert public.requests[-1] == ("/md", f"{dns.asked[-1]}:{internal.port}")


def test_a_redirect_to_an_internal_address_is_refused(monkeypatch, serve, tls_for):
    tls = tls_for("idp.example.test")
    public = serve(tls.server)
    internal = serve()
    public.routes["/moved"] = (302, b"", {"Location": f"http://127.0.0.1:{internal.port}/admin"})
    ConnectEdge(monkeypatch, public.port)
    with pytest.raises(InvalidInput, match=r"redirected to .*private or loopback"):
        metadata_fetch.fetch_metadata(
            "https://idp.example.test/moved",
            allow_private=False,
            resolve=lambda host, port: [PUBLIC],
            verify=tls.client,
        )
    assert internal.connections == 0


def test_allow_private_still_pins_and_sends_the_host_name(serve, tls_for):
    plain = serve()
    plain.routes["/md"] = (200, idp_metadata().encode(), {})
    asked: list[tuple[str, int]] = []

    def loopback(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.1"]

    url = f"http://idp.intranet.test:{plain.port}/md"
    assert b"IDPSSODescriptor" in metadata_fetch.fetch_metadata(
        url, allow_private=True, resolve=loopback
    )
    assert asked == [("idp.intranet.test", plain.port)]
    assert plain.requests == [("/md", f"idp.intranet.test:{plain.port}")]

    # Over TLS the certificate is checked against the host name, not the pinned address.
    tls = tls_for("idp.intranet.test")
    secure = serve(tls.server)
    secure.routes["/md"] = (200, idp_metadata().encode(), {})
    url = f"https://idp.intranet.test:{secure.port}/md"
    assert b"IDPSSODescriptor" in metadata_fetch.fetch_metadata(
        url, allow_private=True, resolve=loopback, verify=tls.client
    )
    assert secure.requests == [("/md", f"idp.intranet.test:{secure.port}")]
    with pytest.raises(InvalidInput, match=r"could not be fetched.*certificate"):
        metadata_fetch.fetch_metadata(
            f"https://other.intranet.test:{secure.port}/md",
            allow_private=True,
            resolve=loopback,
            verify=tls.client,
        )
    assert len(secure.requests) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "not a valid URL"),
        ("https://idp.example.test:99999/md", "port 99999"),
        (f"https://{'a' * 64}.example.test/md", "not a valid host name"),
        ("https://exa mple.test/md", "not a valid host name"),
        ("https://idp.example.test\x00.evil/md", "not a valid URL"),
        ("https://user:secret@idp.example.test/md", "user name or password"),
        ("https://\udcff.test/md", "not a valid"),
        ("javascript:alert(1)", r"http\(s\) URL"),
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_malformed_urls_are_invalid_input(url, message, allow_private):
    with pytest.raises(InvalidInput, match=message) as caught:
        metadata_fetch.fetch_metadata(
            url, allow_private=allow_private, resolve=lambda host, port: [PUBLIC]
        )
    assert caught.value.field == "metadata_url"


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:99999/md", "http://[::1/md", f"http://{'b' * 64}.test/md", "http://a b/"],
)
def test_a_redirect_to_a_malformed_url_is_invalid_input(serve, location):
    server = serve()
    server.routes["/bad"] = (302, b"", {"Location": location})
    with pytest.raises(InvalidInput, match=r"redirected to|Invalid URL in location header"):
        metadata_fetch.fetch_metadata(f"http://127.0.0.1:{server.port}/bad", allow_private=True)


def test_plain_http_needs_the_private_url_setting():
    with pytest.raises(InvalidInput, match="must use https"):
        metadata_fetch.fetch_metadata(
            "http://idp.example.test/md", allow_private=False, resolve=lambda host, port: [PUBLIC]
        )


def test_unresolvable_host_is_invalid_input():
    def nothing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(InvalidInput, match="could not be found"):
        metadata_fetch.fetch_metadata(
            "https://nowhere.example.test/md", allow_private=False, resolve=nothing
        )


_URL_PARTS = st.sampled_from(
    [
        "https://",
        "http://",
        "//",
        "[",
        "]",
        "::1",
        ":",
        "@",
        "%",
        "%00",
        "\x00",
        " ",
        "\t",
        "\udcff",
        "é",
        "xn--",
        "a" * 64,
        ".",
        "..",
        "idp",
        "example.test",
        "65536",
        "99999",
        "0",
        "-",
        "/",
        "?",
        "#",
        "\\",
        "127.0.0.1",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), st.lists(_URL_PARTS, max_size=10).map("".join)))
def test_any_url_text_is_fetched_or_refused_as_invalid_input(url):
    # Every name resolves to loopback, so nothing is ever connected to: only parsing is exercised.
    try:
        metadata_fetch.fetch_metadata(
            url, allow_private=False, resolve=lambda host, port: ["127.0.0.1"]
        )
    except InvalidInput as refused:
        assert refused.field == "metadata_url"
    else:  # pragma: no cover
        pytest.fail(f"{url!r} was fetched")
