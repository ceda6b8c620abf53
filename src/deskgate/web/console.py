"""The agent's landing page and the JSON identity endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from deskgate.web.deps import SignedIn
from deskgate.web.rendering import render

router = APIRouter()


@router.get("/console")
def console(request: Request, current: SignedIn) -> Response:
    return render(request, "console.html", current=current)


@router.get("/api/v1/me")
def me(current: SignedIn) -> dict[str, Any]:
    agent, account = current.agent, current.account
    return {
        "id": agent.id,
        "email": agent.email,
        "first_name": agent.first_name,
        "last_name": agent.last_name,
        "role": agent.role,
        "account": {"id": account.id, "name": account.name, "plan": account.plan},
    }
