"""Turn domain errors and stray exceptions into pages or JSON: never a stack trace."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskgate.errors import DeskgateError, NotAuthenticated
from deskgate.web.rendering import render

log = logging.getLogger("deskgate.web")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, message: str, title: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)


TITLES = {
    400: "That didn't work",
    401: "Sign in required",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Already exists",
    413: "Too large",
    422: "That didn't work",
    429: "Too many attempts",
    500: "Something went wrong",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def _not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": exc.message}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    @app.exception_handler(DeskgateError)
    async def _domain_error(request: Request, exc: DeskgateError) -> Response:
        return error_response(
            request, exc.status_code, exc.message, TITLES.get(exc.status_code, "Error")
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: "There is nothing at this address.",
            405: "This address does not accept that method.",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        response = error_response(
            request, exc.status_code, message, TITLES.get(exc.status_code, "Error")
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:]) or 'request'}: {err.get('msg')}"
            for err in exc.errors()[:5]
        )
        return error_response(
            request, 400, f"Some of what was sent is not valid ({problems}).", TITLES[400]
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Last resort, outside every middleware (an error in a middleware itself).
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _unexpected_error_response(request)


def _unexpected_error_response(request: Request) -> Response:
    return error_response(
        request, 500, "Something went wrong on our side. Try again in a moment.", TITLES[500]
    )


class UnexpectedErrors:
    """Answer an exception a route let through with the 500 page *inside* the middleware stack.

    Starlette's own handler for `Exception` sits outside every middleware, so its answer would
    miss the security headers and the X-Request-ID the operator needs to find the log line.
    Added first, this runs innermost; an error after the answer started is re-raised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            request = Request(scope)
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            await _unexpected_error_response(request)(scope, receive, send)
