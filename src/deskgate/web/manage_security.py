"""Manage › Security (admins): single sign-on and provisioning settings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from deskgate.store.models import Plan
from deskgate.web.deps import Admin
from deskgate.web.rendering import render

router = APIRouter(prefix="/manage")


@router.get("/security")
def security_page(request: Request, admin: Admin) -> Response:
    return render(
        request,
        "manage_security.html",
        {"sso_available": admin.account.plan == Plan.SCALE_PLUS},
        current=admin,
    )
