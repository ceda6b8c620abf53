"""A real webhook receiver on 127.0.0.1 that verifies every delivery with `standardwebhooks`.

    with WebhookReceiver(secrets=[secret]) as receiver:
        ... receiver.url, receiver.received, receiver.wait_for(lambda r: len(r.received) >= 3)

`respond(webhook_id, nth)` chooses each answer: a status code, or HOLD (keep the request open
until `release()`); nth counts the requests for that webhook-id, from 1.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HOLD = -1


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int
    verified_by: list[str]
    """The secrets (of those the receiver knows) whose signature verified."""
    at: float = field(default_factory=time.monotonic)


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # many senders connect at once
    daemon_threads = True


class WebhookReceiver:
    def __init__(
        self,
        secrets: list[str] | None = None,
        respond: Callable[[str, int], int] | None = None,
    ) -> None:
        self.secrets = list(secrets or [])
        self.respond = respond or (lambda _id, _nth: 204)
        self.received: list[Received] = []
        self.refused: list[str] = []
        """Requests whose signature matched no known secret (their reason)."""
        self.held = threading.Event()
        self.holding = 0
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._tries: dict[str, int] = {}
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        self._release.set()

    def count(self, webhook_id: str) -> int:
        return sum(1 for r in self.received if r.webhook_id == webhook_id)

    def succeeded(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def wait_for(self, condition: Callable[[WebhookReceiver], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"receiver: condition not met in {timeout}s; got {len(self.received)} "
                    f"requests, refused {self.refused[:3]}"
                )
            time.sleep(0.02)

    def _verify(self, body: bytes, headers: dict[str, str]) -> list[str]:
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        return verified

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                webhook_id = headers.get("webhook-id", "")
                verified = receiver._verify(body, headers)
                with receiver._lock:
                    nth = receiver._tries[webhook_id] = receiver._tries.get(webhook_id, 0) + 1
                    status = receiver.respond(webhook_id, nth)
                    if not verified:
                        receiver.refused.append(webhook_id)
                        status = 401
                    if status != HOLD:
                        receiver.received.append(
                            Received(webhook_id, json.loads(body), headers, status, verified)
                        )
                if status == HOLD:
                    receiver.holding += 1
                    receiver.held.set()
                    receiver._release.wait(60)
                    return  # the connection closes without an answer
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler
