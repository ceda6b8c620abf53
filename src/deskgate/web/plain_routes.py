"""Plain Starlette routes for the hot endpoints: no FastAPI dependency-injection pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send


class PlainRoute(Route):
    """A route for one method whose endpoint takes the request. It names its template in the
    scope, as FastAPI's routes do (the request log reads it), and, as with FastAPI, HEAD is not
    added to GET."""

    def __init__(
        self, path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.methods = {method}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)
