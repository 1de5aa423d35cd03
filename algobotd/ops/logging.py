"""structlog set-up: JSON lines under systemd or when piped, a console renderer on a TTY.

Stdlib loggers (ib_async, apscheduler, asyncio, httpx ...) go through the same processors,
so the journal gets one JSON object per line whoever logged it. Secrets never reach the
output, two ways:

- by key: any key that looks like a secret (``api_key``, ``password``, ``token`` ...) at any
  depth of the event (a logged config dict included) is replaced by ``***``;
- by value: secret values known to the process (environment variables whose names look like
  secrets, plus anything passed to :func:`register_secret`) are scrubbed from every string,
  which covers free-text messages from third-party loggers.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import structlog

SECRET_MARKERS = ("secret", "password", "passwd", "token", "api_key", "apikey", "key_id", "credential",
                  "authorization", "private_key")
REDACTED = "***"
MIN_SECRET_LEN = 6  # shorter values would scrub ordinary words out of messages
# Chatty at INFO (a line per job run); their warnings and errors still come through.
QUIET_LOGGERS = ("apscheduler", "httpx", "httpcore", "aiosmtplib", "mail.log")

_secret_values: set[str] = set()


def looks_secret(key: str) -> bool:
    k = key.lower()
    return any(m in k for m in SECRET_MARKERS)


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from every log line from now on (webhook URLs, SMTP passwords ...)."""
    if value and len(value) >= MIN_SECRET_LEN:
        _secret_values.add(value)


def register_env_secrets(env: Mapping[str, str] | None = None) -> None:
    for name, value in (os.environ if env is None else env).items():
        if looks_secret(name) or name.endswith("_KEY"):
            register_secret(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for s in _secret_values:
            if s in value:
                value = value.replace(s, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and looks_secret(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if looks_secret(key):
            event[key] = REDACTED
        elif key != "_record":  # the stdlib LogRecord itself is not rendered
            event[key] = _scrub(event[key])
    return event


def use_json(fmt: str = "auto") -> bool:
    if fmt != "auto":
        return fmt == "json"
    return bool(os.environ.get("JOURNAL_STREAM")) or not sys.stdout.isatty()


def setup(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    register_env_secrets()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
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
            redact_secrets,  # last before rendering: also sees tracebacks and foreign messages
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn(...) from libraries: same pipeline, same format
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
