"""Entry point for ASGI servers: `uvicorn --factory deskgate.web.asgi:app_from_environment`."""

from __future__ import annotations

from fastapi import FastAPI

from deskgate.config import load_settings
from deskgate.web.app import create_app


def app_from_environment() -> FastAPI:
    return create_app(load_settings())
