"""What the composition root builds once and every request reads."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from deskgate.config import Settings
from deskgate.services.auth import SessionPolicy, ThrottlePolicy


@dataclass(frozen=True)
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    templates: Jinja2Templates
    csrf_secret: bytes
    session_policy: SessionPolicy
    throttle_policy: ThrottlePolicy
