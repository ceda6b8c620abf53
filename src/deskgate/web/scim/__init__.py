"""The SCIM 2.0 API of each account, at `{BASE_URL}/scim/v2/{account_id}`.

Served by a lean ASGI app (`.app`), which the composition root sends every `/scim/v2/…`
request to, ahead of FastAPI: SCIM needs none of the HTML stack. Every answer is SCIM: an
unknown path is a 404 Error body, a wrong method a 405, a body over `MAX_BODY_BYTES` a 413, bad
JSON a 400 `invalidSyntax`, and anything unexpected a 500 Error body without a stack trace.

* `.app` - the ASGI app: body, input checks, headers, request id and log line, transaction.
* `.calls` - what a handler gets (`ScimCall`) and returns (`ScimReply`).
* `.routes` - paths and methods to handlers.
* `.users`, `.groups`, `.discovery` - the handlers.
* `.render` - response bodies: the representation deskgate serves.

This module holds only constants, so that `web.input_guard` can import them without the app.
"""

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (413 above), checked on Content-Length and on the bytes read."""

SCIM_JSON = "application/scim+json"
