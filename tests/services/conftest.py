"""Real local HTTP(S) servers for the metadata fetcher, and a throwaway TLS authority."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class LocalServer:
    """A server on 127.0.0.1: `routes` maps a path to (status, body, headers); every
    connection and every request (path, Host header) it receives is recorded."""

    port: int
    routes: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    connections: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _handler(record: LocalServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def handle(self) -> None:
            record.connections += 1
            super().handle()

        def do_GET(self) -> None:  # noqa: N802
            record.requests.append((self.path, self.headers.get("Host")))
            status, body, headers = record.routes.get(self.path, (404, b"nope", {}))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[object]:
    """serve(tls=None) -> LocalServer; `tls` a server-side SSLContext makes it HTTPS."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(tls: ssl.SSLContext | None = None) -> LocalServer:
        record = LocalServer(port=0)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(record))
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        record.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class TLSPair:
    server: ssl.SSLContext
    """Presents a certificate for the names given (and nothing else)."""
    client: ssl.SSLContext
    """Trusts only the throwaway authority that issued it."""


@pytest.fixture(scope="session")
def tls_for(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """tls_for(*names) -> TLSPair: a CA and a leaf certificate for those DNS names."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deskgate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def make(*names: str) -> TLSPair:
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory = Path(tmp_path_factory.mktemp("tls"))
        (directory / "cert.pem").write_bytes(
            leaf.public_bytes(serialization.Encoding.PEM)
            + ca.public_bytes(serialization.Encoding.PEM)
        )
        (directory / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
        client = ssl.create_default_context(
            cadata=ca.public_bytes(serialization.Encoding.PEM).decode()
        )
        return TLSPair(server=server, client=client)

    return make
