"""Alert delivery channels: webhook (generic, Slack, Discord), email over SMTP, SMS via a templated webhook.

A channel's ``send`` either returns (delivered) or raises :class:`DeliveryError`;
``permanent=True`` means retrying cannot help (a 4xx from the endpoint, a bad template),
so the outbox marks the alert failed instead of retrying it until it expires.
Secrets (webhook URLs, SMTP passwords, provider tokens) come from the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import string
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from algobotd.config import AlertChannelConfig

DISCORD_LIMIT = 2000  # characters in a Discord message
SMTPS_PORT = 465


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Alert:
    alert_id: str
    ts: dt.datetime  # when it was raised (UTC, naive as DuckDB returns it)
    kind: str
    level: str
    channel: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return str(self.payload.get("message", ""))

    @property
    def text(self) -> str:
        return f"[{self.level.upper()}] {self.kind}: {self.message}"


class Channel(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...

    async def close(self) -> None: ...


def _secret(env: Mapping[str, str], var: str, what: str) -> str:
    value = env.get(var, "")
    if not value:
        # permanent until the operator fixes the environment; retrying would only spam the log
        raise DeliveryError(f"{what}: environment variable {var} is empty or unset", permanent=True)
    return value


class _HttpChannel:
    def __init__(self, cfg: AlertChannelConfig, env: Mapping[str, str], timeout: float) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.env = env
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def _url(self) -> str:
        return self.cfg.url or _secret(self.env, self.cfg.url_env, f"channel {self.name} url")

    async def _post(self, alert: Alert, content: bytes) -> None:
        headers = {"Content-Type": self.cfg.content_type, "Idempotency-Key": alert.alert_id,
                   "User-Agent": "algobotd"}
        if self.cfg.auth_env:
            headers["Authorization"] = _secret(self.env, self.cfg.auth_env, f"channel {self.name} auth")
        try:
            resp = await self.client.post(self._url(), content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if 200 <= resp.status_code < 300:
            return
        # 408/429/5xx are the endpoint's trouble: retry; other 4xx are ours: stop
        transient = resp.status_code in (408, 429) or resp.status_code >= 500
        raise DeliveryError(f"HTTP {resp.status_code}: {resp.text[:200]}", permanent=not transient)

    async def close(self) -> None:
        await self.client.aclose()


class WebhookChannel(_HttpChannel):
    def body(self, alert: Alert) -> dict[str, Any]:
        if self.cfg.format == "slack":
            return {"text": alert.text}
        if self.cfg.format == "discord":
            return {"content": alert.text[:DISCORD_LIMIT]}
        return {"alert_id": alert.alert_id, "ts": alert.ts.replace(tzinfo=dt.UTC).isoformat(),
                "kind": alert.kind, "level": alert.level, "message": alert.message, "payload": alert.payload}

    async def send(self, alert: Alert) -> None:
        await self._post(alert, json.dumps(self.body(alert)).encode())


class SmsChannel(_HttpChannel):
    """A provider's HTTP API as a template, e.g. ``{"to": "$to", "body": "$text"}``.

    Values are escaped for the content type (JSON string contents or form-encoding), so the
    template stays valid whatever the message says.
    """

    def body(self, alert: Alert) -> str:
        values = {"text": alert.text, "kind": alert.kind, "level": alert.level, "alert_id": alert.alert_id,
                  "to": ",".join(self.cfg.to), "message": alert.message}
        if self.cfg.content_type == "application/json":
            escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()}
        else:
            escaped = {k: urllib.parse.quote_plus(v) for k, v in values.items()}
        try:
            return string.Template(self.cfg.body_template).substitute(escaped)
        except (KeyError, ValueError) as exc:
            raise DeliveryError(f"channel {self.name} body_template: {exc}", permanent=True) from None

    async def send(self, alert: Alert) -> None:
        await self._post(alert, self.body(alert).encode())


class EmailChannel:
    def __init__(self, cfg: AlertChannelConfig, env: Mapping[str, str], timeout: float) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.env = env
        self.timeout = timeout

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.to)
        msg["Subject"] = f"[algobot {alert.level}] {alert.kind}: {alert.message[:80]}"
        # a stable Message-ID lets a mail system drop the copy of a retried delivery
        msg["Message-ID"] = f"<{alert.alert_id}@algobotd>"
        fields = "\n".join(f"{k}: {v}" for k, v in alert.payload.items() if k != "message")
        msg.set_content(f"{alert.text}\n\n{fields}\n\nalert {alert.alert_id} raised {alert.ts.isoformat()}Z\n")
        return msg

    async def send(self, alert: Alert) -> None:
        cfg = self.cfg
        password = _secret(self.env, cfg.password_env, f"channel {self.name} password") if cfg.password_env else None
        implicit_tls = cfg.smtp_port == SMTPS_PORT  # port 465 speaks TLS from the first byte
        tls = ssl.create_default_context(cafile=cfg.smtp_ca_file or None) if cfg.starttls or implicit_tls else None
        try:
            await aiosmtplib.send(self.message(alert), hostname=cfg.smtp_host, port=cfg.smtp_port,
                                  use_tls=implicit_tls, start_tls=cfg.starttls and not implicit_tls,
                                  tls_context=tls, username=cfg.username or None, password=password,
                                  timeout=self.timeout)
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is a definitive refusal (bad recipient, auth); 4xx is "try later"
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        return None


def make_channel(cfg: AlertChannelConfig, env: Mapping[str, str], timeout: float) -> Channel:
    if cfg.kind == "email":
        return EmailChannel(cfg, env, timeout)
    if cfg.kind == "sms":
        return SmsChannel(cfg, env, timeout)
    return WebhookChannel(cfg, env, timeout)
