"""scim2-server (python-scim's reference server) as an ASGI app for uvicorn:

    SCIM2_BENCH_TOKEN=... uvicorn --factory bench.peers.scim2_server_app:create_app

Its in-memory storage lives in the process, so it runs with one worker (several would each hold
a different set of users). The discovery documents are the RFC 7643 defaults, as the
`scim2-server` command serves them; only requests with the bearer token are accepted.
"""

from __future__ import annotations

import os
import secrets

from scim2_models import ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)


class BearerTokenASGIApplication(ASGIApplication):
    """scim2-server's ASGI application, refusing requests without the bearer token."""

    def __init__(self, token: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.token = token

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, self.token):
            raise UnauthorizedException


def create_app() -> BearerTokenASGIApplication:
    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    service = ScimService(provider, secret=secrets.token_urlsafe(32))
    return BearerTokenASGIApplication(
        os.environ["SCIM2_BENCH_TOKEN"],
        storage=AsyncInMemoryStorage(),
        provider=provider,
        service=service,
    )
