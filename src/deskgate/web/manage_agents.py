"""Manage › Agents (admins): list, add, change role, deactivate and reactivate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from deskgate.errors import Conflict, InvalidInput, NotFound
from deskgate.services import agents as agent_service
from deskgate.store.models import AgentSource, Role
from deskgate.web.deps import Admin, CsrfChecked, Db
from deskgate.web.rendering import redirect_with_notice, render

router = APIRouter(prefix="/manage")


def _page(
    request: Request,
    db: Db,
    admin: Admin,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "manage_agents.html",
        {
            "agents": agent_service.list_agents(db, admin.account.id),
            "roles": [r.value for r in Role],
            "error": error,
            "form": form or {"email": "", "first_name": "", "last_name": "", "role": "agent"},
        },
        current=admin,
        status_code=status_code,
    )


@router.get("/agents")
def agents_page(request: Request, db: Db, admin: Admin) -> Response:
    return _page(request, db, admin)


@router.post("/agents", dependencies=[CsrfChecked])
def add_agent(
    request: Request,
    db: Db,
    admin: Admin,
    email: Annotated[str, Form(max_length=320)] = "",
    first_name: Annotated[str, Form(max_length=400)] = "",
    last_name: Annotated[str, Form(max_length=400)] = "",
    role: Annotated[str, Form(max_length=20)] = "agent",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    form = {"email": email, "first_name": first_name, "last_name": last_name, "role": role}
    try:
        agent = agent_service.add_agent(
            db,
            admin.account.id,
            email=email,
            first_name=first_name,
            last_name=last_name,
            role=role,
            password=password or None,
            source=AgentSource.PASSWORD,
            actor=admin.actor,
        )
    except (InvalidInput, Conflict) as problem:
        return _page(
            request, db, admin, error=problem.message, form=form, status_code=problem.status_code
        )
    return redirect_with_notice("/manage/agents", f"Added {agent.email}.")


@router.post("/agents/{agent_id}/role", dependencies=[CsrfChecked])
def change_role(
    request: Request,
    db: Db,
    admin: Admin,
    agent_id: str,
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        agent = agent_service.change_role(db, admin.account.id, agent_id, role, actor=admin.actor)
    except (InvalidInput, NotFound) as problem:
        return _page(request, db, admin, error=problem.message, status_code=problem.status_code)
    return redirect_with_notice("/manage/agents", f"{agent.email} is now {agent.role}.")


@router.post("/agents/{agent_id}/active", dependencies=[CsrfChecked])
def set_active(
    request: Request,
    db: Db,
    admin: Admin,
    agent_id: str,
    active: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if active not in ("true", "false"):
        return _page(request, db, admin, error="Choose activate or deactivate.", status_code=400)
    try:
        agent = agent_service.set_active(
            db, admin.account.id, agent_id, active == "true", actor=admin.actor
        )
    except (InvalidInput, NotFound) as problem:
        return _page(request, db, admin, error=problem.message, status_code=problem.status_code)
    what = "reactivated" if agent.active else "deactivated and signed out everywhere"
    notice = f"{agent.email or agent.user_name} {what}."
    if agent.active:
        hidden = agent_service.scim_hidden_reason(db, agent)
        notice += f" {hidden}" if hidden else ""
    return redirect_with_notice("/manage/agents", notice)
