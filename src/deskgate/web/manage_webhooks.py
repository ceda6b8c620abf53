"""Manage › Webhooks (admins): endpoints, their secrets and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from deskgate.errors import InvalidInput, NotFound
from deskgate.services import webhooks
from deskgate.services.events import CATALOGUE
from deskgate.store import webhooks as webhook_store
from deskgate.store.base import utcnow
from deskgate.store.models import WebhookEndpoint
from deskgate.web.deps import Admin, CsrfChecked, Db, State
from deskgate.web.rendering import redirect_with_notice, render

router = APIRouter(prefix="/manage")

EventTypes = Annotated[list[str], Form()]


def _form(
    url: str, event_types: list[str], enabled: str | None, description: str
) -> webhooks.EndpointForm:
    return webhooks.EndpointForm(
        url=url,
        event_types=event_types,
        enabled=enabled in ("on", "true", "1"),
        description=description,
    )


def _list_page(
    request: Request,
    db: Db,
    admin: Admin,
    *,
    error: str | None = None,
    form: webhooks.EndpointForm | None = None,
    created: tuple[WebhookEndpoint, str] | None = None,
    status_code: int = 200,
) -> Response:
    account_id = admin.account.id
    context: dict[str, Any] = {
        "endpoints": webhook_store.endpoints_of(db, account_id),
        "counts": webhook_store.delivery_counts(db, account_id),
        "catalogue": CATALOGUE,
        "form": form or webhooks.EndpointForm(url="", event_types=[]),
        "error": error,
        "created": created,
    }
    return render(request, "manage_webhooks.html", context, current=admin, status_code=status_code)


def _endpoint_page(
    request: Request,
    db: Db,
    admin: Admin,
    endpoint_id: str,
    *,
    error: str | None = None,
    new_secret: str | None = None,
    status_code: int = 200,
) -> Response:
    log = webhooks.delivery_log(db, admin.account.id, endpoint_id)
    context: dict[str, Any] = {
        "endpoint": log.endpoint,
        "deliveries": log.deliveries,
        "attempts": log.attempts,
        "catalogue": CATALOGUE,
        "error": error,
        "new_secret": new_secret,
        "now": utcnow(),
    }
    return render(request, "manage_webhook.html", context, current=admin, status_code=status_code)


@router.get("/webhooks")
def webhooks_page(request: Request, db: Db, admin: Admin) -> Response:
    return _list_page(request, db, admin)


@router.post("/webhooks", dependencies=[CsrfChecked])
def add_endpoint(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    url: Annotated[str, Form(max_length=4096)] = "",
    event_types: EventTypes = [],  # noqa: B006 - FastAPI copies defaults
    enabled: Annotated[str | None, Form(max_length=5)] = None,
    description: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = _form(url, event_types, enabled, description)
    db.commit()  # the URL check resolves its host: hold no database lock while it does
    try:
        created = webhooks.add_endpoint(
            db,
            admin.account.id,
            form,
            admin.actor,
            utcnow(),
            allow_private=state.settings.allow_private_webhook_urls,
        )
    except InvalidInput as problem:
        return _list_page(request, db, admin, error=problem.message, form=form, status_code=400)
    return _list_page(request, db, admin, created=created)


@router.get("/webhooks/{endpoint_id}")
def endpoint_page(request: Request, db: Db, admin: Admin, endpoint_id: str) -> Response:
    return _endpoint_page(request, db, admin, endpoint_id)


@router.post("/webhooks/{endpoint_id}", dependencies=[CsrfChecked])
def update_endpoint(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    endpoint_id: str,
    url: Annotated[str, Form(max_length=4096)] = "",
    event_types: EventTypes = [],  # noqa: B006
    enabled: Annotated[str | None, Form(max_length=5)] = None,
    description: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    db.commit()  # as above: no lock held while the URL's host resolves
    try:
        webhooks.update_endpoint(
            db,
            admin.account.id,
            endpoint_id,
            _form(url, event_types, enabled, description),
            admin.actor,
            utcnow(),
            allow_private=state.settings.allow_private_webhook_urls,
        )
    except InvalidInput as problem:
        db.rollback()
        return _endpoint_page(
            request, db, admin, endpoint_id, error=problem.message, status_code=400
        )
    return redirect_with_notice(f"/manage/webhooks/{endpoint_id}", "Webhook endpoint saved.")


@router.post("/webhooks/{endpoint_id}/enabled", dependencies=[CsrfChecked])
def set_enabled(
    db: Db, admin: Admin, endpoint_id: str, enabled: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    if enabled not in ("true", "false"):
        raise InvalidInput("Choose enable or disable.")
    endpoint = webhooks.set_enabled(
        db, admin.account.id, endpoint_id, enabled == "true", admin.actor, utcnow()
    )
    what = "enabled" if endpoint.enabled else "disabled: nothing is sent to it until you enable it"
    return redirect_with_notice("/manage/webhooks", f"{endpoint.url} {what}.")


@router.post("/webhooks/{endpoint_id}/delete", dependencies=[CsrfChecked])
def delete_endpoint(db: Db, admin: Admin, endpoint_id: str) -> Response:
    url = webhooks.delete_endpoint(db, admin.account.id, endpoint_id, admin.actor)
    return redirect_with_notice("/manage/webhooks", f"Deleted the webhook endpoint {url}.")


@router.post("/webhooks/{endpoint_id}/rotate", dependencies=[CsrfChecked])
def rotate_secret(request: Request, db: Db, admin: Admin, endpoint_id: str) -> Response:
    _, secret = webhooks.rotate_secret(db, admin.account.id, endpoint_id, admin.actor, utcnow())
    return _endpoint_page(request, db, admin, endpoint_id, new_secret=secret)


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend", dependencies=[CsrfChecked])
def resend(db: Db, admin: Admin, endpoint_id: str, delivery_id: str) -> Response:
    source = webhook_store.delivery(db, admin.account.id, delivery_id)
    if source is None or source["endpoint_id"] != endpoint_id:
        raise NotFound("No such delivery for this webhook endpoint.")
    webhooks.resend(db, admin.account.id, delivery_id, utcnow())
    return redirect_with_notice(
        f"/manage/webhooks/{endpoint_id}",
        f"Event {source['event_id']} queued to be sent again (same webhook-id).",
    )
