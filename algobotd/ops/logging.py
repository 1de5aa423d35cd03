"""structlog set-up: JSON lines under systemd or when piped, a console renderer on a TTY.

Stdlib loggers (ib_async, apscheduler, asyncio ...) go through the same processors, and
values whose key looks like a secret are redacted before rendering.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

SECRET_MARKERS = ("secret", "password", "token", "api_key", "apikey", "key_id", "credential")
REDACTED = "***"


def redact_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(m in key.lower() for m in SECRET_MARKERS):
            event[key] = REDACTED
    return event


def use_json(fmt: str = "auto") -> bool:
    if fmt != "auto":
        return fmt == "json"
    return bool(os.environ.get("JOURNAL_STREAM")) or not sys.stdout.isatty()


def setup(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json(fmt) else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
