"""Refuse, before any route runs, request text that no route can mean.

Every request's address, query string, headers and (urlencoded or JSON) body is read once here
and refused with a 400 when it holds:

* a C0 control character: NUL (which PostgreSQL cannot store, so it used to be a 500) and the
  others. Tab, CR and LF are text inside form fields and JSON strings (pasted metadata has
  lines) but never in the address, the query string or a header value;
* bytes that are not UTF-8, including encoded surrogates and overlong forms, after
  percent-decoding; and lone surrogates escaped in JSON (``"\\ud800"``);
* JSON nested deeper than :data:`MAX_JSON_DEPTH`.

Forms must be ``application/x-www-form-urlencoded`` (no deskgate page uploads files, so a
``multipart/form-data`` body, which this guard would otherwise have to parse, is a 415) and at
most :data:`MAX_FORM_BYTES` (413).

The refusal has the shape of the route family: a SCIM Error under ``/scim/`` (``invalidValue``;
``invalidSyntax`` when the body is not JSON text at all: not UTF-8, or too deep), JSON under
``/api/``, the error page elsewhere. Nothing has been read from or
written to the database by then. SCIM bodies are checked as JSON whatever their Content-Type
(the SCIM endpoint reads them so); one over the SCIM limit is passed on unread, for the SCIM
endpoint to refuse with its 413.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskgate.scim.errors import (
    InvalidSyntaxException,
    InvalidValueException,
    SCIMException,
    error_body,
)
from deskgate.web import errors
from deskgate.web.scim import MAX_BODY_BYTES as MAX_SCIM_BODY_BYTES
from deskgate.web.scim import SCIM_JSON

MAX_FORM_BYTES = 4 * 1024 * 1024
"""Largest urlencoded (or JSON, outside SCIM) body: a 1 MiB metadata paste, percent-encoded."""

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects in a JSON body (a SCIM PatchOp needs about 6)."""

_CONTROLS = re.compile("[\x00-\x1f]")
_CONTROLS_BUT_WHITESPACE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class Refusal(Exception):
    def __init__(self, status: int, message: str, *, syntax: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.syntax = syntax
        """The body is not JSON text at all (SCIM's `invalidSyntax`, not `invalidValue`)."""


# --- what is checked ---------------------------------------------------------------------------


def check_text(text: str, where: str, *, whitespace: bool) -> None:
    """Refuse a control character (tab, CR and LF allowed when `whitespace`) or a lone
    surrogate in `text`. `where` names it for the message ("The form field 'email'")."""
    pattern = _CONTROLS_BUT_WHITESPACE if whitespace else _CONTROLS
    bad = pattern.search(text)
    if bad is not None:
        raise Refusal(
            400,
            f"{where} contains a control character (U+{ord(bad.group()):04X}) at position "
            f"{bad.start()}; remove it and send printable text.",
        )
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        raise Refusal(
            400,
            f"{where} contains a lone surrogate (U+{ord(surrogate.group()):04X}) at position "
            f"{surrogate.start()}; send valid Unicode text.",
        )


def check_bytes(data: bytes, where: str, *, whitespace: bool) -> str:
    """`data` as text, refused unless it is UTF-8 without control characters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise Refusal(
            400,
            f"{where} is not valid UTF-8 (byte 0x{data[problem.start]:02X} at position "
            f"{problem.start}); send UTF-8 text.",
        ) from None
    check_text(text, where, whitespace=whitespace)
    return text


def _percent_decoded(raw: bytes, *, plus_is_space: bool) -> bytes:
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    return unquote_to_bytes(raw)


def _urlencoded_fields(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(name, value) pairs, percent-decoded. Splits on `;` as well as `&`: more, smaller
    pieces than any parser sees, and each is checked alike."""
    for piece in re.split(rb"[&;]", raw):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        yield (
            _percent_decoded(name, plus_is_space=True),
            _percent_decoded(value, plus_is_space=True),
        )


def check_urlencoded(raw: bytes, kind: str, *, whitespace: bool) -> None:
    """A query string (`kind` "query parameter") or form body ("form field")."""
    for raw_name, raw_value in _urlencoded_fields(raw):
        name = check_bytes(raw_name, f"The name of a {kind}", whitespace=False)
        label = f"The {kind} '{name[:40]}'"
        check_bytes(raw_value, label, whitespace=whitespace)


def check_json(data: bytes) -> None:
    """Walk the parsed JSON once: every key and string, and the nesting depth. A body that is
    not JSON is left for the route to refuse in its own words."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as problem:
        reason = str(problem)
        if "not valid UTF-8" in reason:
            try:
                check_bytes(data, "The JSON body", whitespace=True)
            except Refusal as refusal:
                raise Refusal(400, refusal.message, syntax=True) from None
        elif "surrogate" in reason:
            raise Refusal(
                400, f"The JSON body contains a lone surrogate ({reason}); send valid Unicode text."
            ) from None
        elif "depth limit" in reason:
            raise Refusal(
                400, f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.", syntax=True
            ) from None
        return
    _check_depth(document)
    # orjson refuses raw control characters and lone surrogates in strings, so a string can
    # only hold a forbidden character through an escape: without one, there is nothing to find.
    if _CONTROL_ESCAPE.search(data) is not None:
        _check_strings(document)


_CONTROL_ESCAPE = re.compile(rb"\\(?:u00[01][0-9a-fA-F]|[bf])")


def _check_depth(document: object) -> None:
    level: list[object] = [document]
    for _ in range(MAX_JSON_DEPTH):
        below: list[object] = []
        for value in level:
            if isinstance(value, dict):
                below.extend(value.values())
            elif isinstance(value, list):
                below.extend(value)
        level = [value for value in below if isinstance(value, dict | list)]
        if not level:
            return
    raise Refusal(400, f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.", syntax=True)


def _check_strings(document: object) -> None:
    """Every key and string, named by its path for the message."""
    stack: list[tuple[object, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            check_text(value, f"The JSON value at '{path or '$'}'", whitespace=True)
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(key, f"A JSON key in '{path or '$'}'", whitespace=False)
                stack.append((item, f"{path}.{key[:40]}" if path else key[:40]))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))


def check_target(scope: Scope) -> None:
    """The address, the query string and the header values."""
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        check_bytes(
            _percent_decoded(raw_path, plus_is_space=False), "The address", whitespace=False
        )
    else:
        check_text(scope["path"], "The address", whitespace=False)
    check_urlencoded(scope.get("query_string", b""), "query parameter", whitespace=False)
    for name, value in scope.get("headers", ()):
        # Tab is allowed inside a header value (RFC 9110 §5.5); nothing else below 0x20 is.
        text = value.decode("latin-1").replace("\t", " ")
        check_text(text, f"The header '{name.decode('latin-1')[:40]}'", whitespace=False)


# --- the middleware ------------------------------------------------------------------------------


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media_type: str = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return media_type
    return ""


def _is_scim(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.startswith("/scim/")


def scim_exception(refusal: Refusal) -> SCIMException:
    """The refusal as SCIM states it (the SCIM app answers with it too)."""
    kind = InvalidSyntaxException if refusal.syntax else InvalidValueException
    exc = kind(detail=refusal.message)
    exc.status = refusal.status
    return exc


def _refusal_response(scope: Scope, refusal: Refusal) -> Response:
    if _is_scim(scope):
        exc = scim_exception(refusal)
        return Response(orjson.dumps(error_body(exc)), refusal.status, media_type=SCIM_JSON)
    request = Request(scope)
    title = errors.TITLES.get(refusal.status, "That didn't work")
    return errors.error_response(request, refusal.status, refusal.message, title)


class InputGuard:
    """The ASGI middleware: pure (no BaseHTTPMiddleware), reads a body only when it checks it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            check_target(scope)
            media_type = _media_type(scope)
            scim = _is_scim(scope)
            if media_type == _MULTIPART and not scim:
                raise Refusal(
                    415,
                    "deskgate's forms are sent as application/x-www-form-urlencoded, not multipart/form-data.",
                )
            if scim or media_type == _FORM or media_type.endswith("json"):
                limit = MAX_SCIM_BODY_BYTES if scim else MAX_FORM_BYTES
                body, messages, complete = await _read_body(receive, limit)
                disconnected = messages[-1]["type"] == "http.disconnect"
                if not complete and not scim and not disconnected:
                    raise Refusal(413, f"The request body is larger than {limit} bytes.")
                if complete and body:
                    if media_type == _FORM and not scim:
                        check_urlencoded(body, "form field", whitespace=True)
                    else:
                        check_json(body)
        except Refusal as refusal:
            await _refusal_response(scope, refusal)(scope, receive, send)
            return
        await self.app(scope, _replaying(messages, receive), send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, list[Message], bool]:
    """(body, the messages read, whether the body is complete and within `limit`)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"", messages, False
        size += len(message.get("body", b""))
        if size > limit:
            return b"", messages, False
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages), messages, True


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
