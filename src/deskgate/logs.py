"""Structured logs: one JSON object per line, on stderr, for every logger (uvicorn's included).

Fields: `ts` (UTC, ISO 8601), `level`, `logger`, `msg`, `request_id` when the line was written
while serving a request, `exc` for a traceback, plus whatever the caller passed in `extra=`.
What reaches a log line is chosen by the code that writes it; the request log (web/observability.py)
writes route templates, never raw paths, so tokens in URLs never reach it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "deskgate_request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def logging_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping (what uvicorn's `log_config` takes): JSON everywhere.

    uvicorn's access logger is silenced: the request log replaces it. `level` applies to deskgate
    and uvicorn; other libraries log warnings and worse.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        # Other libraries only warn: at info, some log URLs (httpx) or chatter (alembic plugins).
        "root": {"handlers": ["stderr"], "level": max(level, "WARNING", key=logging.getLevelName)},
        "loggers": {
            "deskgate": {"level": level},
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
            "alembic.runtime.migration": {"level": level},  # "Running upgrade ..." at start
        },
    }
