"""What the composition root builds once and every request reads."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine

from deskgate.config import Settings
from deskgate.services.auth import SessionPolicy, ThrottlePolicy
from deskgate.store.base import Sessions


@dataclass(frozen=True)
class AppState:
    settings: Settings
    engine: Engine
    sessions: Sessions
    """`sessions()` writes; `sessions(write=False)` only reads (never waits for SQLite's write lock)."""
    templates: Jinja2Templates
    csrf_secret: bytes
    session_policy: SessionPolicy
    throttle_policy: ThrottlePolicy
