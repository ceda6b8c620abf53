"""The agent's landing page and the JSON identity endpoint."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from deskgate.web.deps import signed_in
from deskgate.web.plain_routes import PlainRoute
from deskgate.web.rendering import render

router = APIRouter()


@router.get("/console")
async def console(request: Request) -> Response:
    # The plain session check (read-only, no request transaction): the page only reads.
    return render(request, "console.html", current=await signed_in(request))


async def me(request: Request) -> Response:
    """Who is signed in: a plain endpoint (called by every page of the product)."""
    current = await signed_in(request)
    agent, account = current.agent, current.account
    return Response(
        orjson.dumps(
            {
                "id": agent.id,
                "email": agent.email,
                "first_name": agent.first_name,
                "last_name": agent.last_name,
                "role": agent.role,
                "account": {"id": account.id, "name": account.name, "plan": account.plan},
            }
        ),
        media_type="application/json",
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.router.routes.append(PlainRoute("/api/v1/me", me, method="GET"))
