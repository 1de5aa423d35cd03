"""The alert outbox against real local receivers (HTTP server, aiosmtpd with STARTTLS)."""

from __future__ import annotations

import asyncio
import ssl
from email import message_from_bytes
from pathlib import Path

import pytest
from ops_sinks import HttpSink, free_port, self_signed_cert

from algobotd.config import AlertChannelConfig, AlertRouteConfig, AlertsConfig, ConfigError, load
from algobotd.ops.alerts import Outbox, alert_row, event_alert
from algobotd.store.writer import StoreWriter

NS = 1_000_000_000


class WallClock:
    """Injected wall time: backoff is tested by moving time, not by sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000 * NS

    def __call__(self) -> int:
        return self.now


def statuses(store: StoreWriter) -> dict[str, tuple[str, int]]:
    rows = store.con.execute("SELECT alert_id, status, attempts FROM alerts").fetchall()
    return {a: (s, n) for a, s, n in rows}


def webhook_cfg(url: str, **kw) -> AlertsConfig:
    return AlertsConfig(
        channels=[AlertChannelConfig(name="hook", kind="webhook", url=url),
                  AlertChannelConfig(name="slack", kind="webhook", format="slack", url=url + "/slack"),
                  AlertChannelConfig(name="discord", kind="webhook", format="discord", url=url + "/discord")],
        routes=[AlertRouteConfig(kinds=["fill"], channels=["hook"]),
                AlertRouteConfig(min_level="critical", channels=["hook", "slack", "discord"])],
        retry_base_seconds=10.0, **kw)


async def test_routed_by_kind_and_level_delivered_once(tmp_path: Path, http_sink: HttpSink) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    box = Outbox(store, webhook_cfg(http_sink.url), wall_ns=WallClock())
    store.add("alerts", alert_row("fill", "info", "BUY 10 AAPL @ 1.0", dedup_key="f1", confidence=0.4))
    store.add("alerts", alert_row("state", "critical", "HALTED by breaker", dedup_key="s1"))
    store.add("alerts", alert_row("denial", "info", "nobody routes this", dedup_key="d1"))
    store.add("alerts", alert_row("fill", "info", "BUY 10 AAPL @ 1.0", dedup_key="f1"))  # duplicate id
    await store.flush()
    assert await box.pump() == 4  # fill -> hook; state -> hook, slack, discord
    by_path = {r.path: r for r in http_sink.received}
    assert sorted(by_path) == ["/", "/discord", "/slack"]
    assert sorted(http_sink.keys()) == ["f1#hook", "s1#discord", "s1#hook", "s1#slack"]
    assert by_path["/slack"].json() == {"text": "[CRITICAL] state: HALTED by breaker"}
    assert by_path["/discord"].json() == {"content": "[CRITICAL] state: HALTED by breaker"}
    generic = [r.json() for r in http_sink.received if r.path == "/" and r.json()["kind"] == "fill"][0]
    assert generic["message"] == "BUY 10 AAPL @ 1.0" and generic["payload"]["confidence"] == 0.4
    st = statuses(store)
    assert st["d1"][0] == "unrouted" and st["f1"][0] == "routed" and st["f1#hook"] == ("sent", 1)
    assert await box.pump() == 0 and len(http_sink.received) == 4  # nothing is sent twice
    # the same condition reported again a minute later (new id, same text): not sent again
    store.add("alerts", alert_row("state", "critical", "HALTED by breaker", dedup_key="s2"))
    await store.flush()
    assert await box.pump() == 0 and statuses(store)["s2"][0] == "duplicate"
    # ... but two fills that read alike are two trades: both go out
    store.add("alerts", alert_row("fill", "info", "BUY 10 AAPL @ 1.0", dedup_key="f9"))
    await store.flush()
    assert await box.pump() == 1 and statuses(store)["f9#hook"][0] == "sent"
    await store.close()


async def test_server_down_retried_with_backoff_then_delivered(tmp_path: Path, http_sink: HttpSink) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    clock = WallClock()
    box = Outbox(store, webhook_cfg(http_sink.url), wall_ns=clock)
    http_sink.stop()  # connection refused
    store.add("alerts", alert_row("fill", "info", "SELL 5 MSFT", dedup_key="f2"))
    await store.flush()
    assert await box.pump() == 0
    assert statuses(store)["f2#hook"] == ("pending", 1)
    http_sink.start()
    clock.now += 5 * NS  # before the 10 s backoff: not retried yet
    assert await box.pump() == 0 and http_sink.received == []
    clock.now += 6 * NS
    assert await box.pump() == 1
    assert http_sink.keys() == ["f2#hook"] and statuses(store)["f2#hook"] == ("sent", 2)
    http_sink.status = 503  # transient: retried; 404: permanent, marked failed
    store.add("alerts", alert_row("fill", "info", "x", dedup_key="f3"))
    await store.flush()
    await box.pump()
    assert statuses(store)["f3#hook"] == ("pending", 1)
    http_sink.status = 404
    clock.now += 60 * NS
    await box.pump()
    assert statuses(store)["f3#hook"] == ("failed", 2)
    assert box.status()["last_error"].startswith("hook: HTTP 404")
    await store.close()


async def test_undelivered_alert_expires(tmp_path: Path, http_sink: HttpSink) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    clock = WallClock()
    box = Outbox(store, webhook_cfg(http_sink.url, expire_seconds=60.0), wall_ns=clock)
    http_sink.stop()
    store.add("alerts", alert_row("fill", "info", "late", dedup_key="f4"))
    await store.flush()
    await box.pump()
    clock.now += 61 * NS
    http_sink.start()
    assert await box.pump() == 0
    assert statuses(store)["f4#hook"][0] == "expired" and http_sink.received == []
    await store.close()


async def test_sms_template_escapes_the_message(tmp_path: Path, http_sink: HttpSink) -> None:
    cfg = AlertsConfig(channels=[AlertChannelConfig(
        name="sms", kind="sms", url_env="SMS_URL", auth_env="SMS_TOKEN", to=["+15550100"],
        body_template='{"to": "$to", "body": "$text"}')],
        routes=[AlertRouteConfig(kinds=["fill"], min_confidence=0.8, channels=["sms"])])
    store = StoreWriter(tmp_path / "s.duckdb")
    box = Outbox(store, cfg, env={"SMS_URL": http_sink.url + "/sms", "SMS_TOKEN": "Bearer t0k"}, wall_ns=WallClock())
    store.add("alerts", alert_row("fill", "info", 'BUY "quoted"\nline', dedup_key="hi", confidence=0.9))
    store.add("alerts", alert_row("fill", "info", "low confidence", dedup_key="lo", confidence=0.5))
    await store.flush()
    assert await box.pump() == 1
    (r,) = http_sink.received
    assert r.path == "/sms" and r.headers["Authorization"] == "Bearer t0k"
    assert r.json() == {"to": "+15550100", "body": '[INFO] fill: BUY "quoted"\nline'}
    await store.close()


def test_engine_events_become_deterministic_alerts() -> None:
    ev = {"ts": 123, "kind": "reject", "message": "ab-00000001-AAPL rejected: no buying power"}
    a, b = event_alert(ev), event_alert(dict(ev))
    assert a is not None and b is not None and a[0] == b[0] and a[3] == "warning"
    assert event_alert({**ev, "ts": 124})[0] != a[0]
    # the risk layer enqueues its own state/denial alerts: no second copy from the event stream
    assert event_alert({"ts": 1, "kind": "state", "message": "HALTED by x"}) is None


def test_bad_alert_config_is_rejected_with_the_key_path() -> None:
    with pytest.raises(ConfigError, match=r"alerts.routes\[0\].channels: no channel named 'nope'"):
        load(overrides=['alerts.routes=[{channels=["nope"]}]'])
    with pytest.raises(ConfigError, match=r"alerts.channels\[0\].to"):
        load(overrides=['alerts.channels=[{name="m", kind="email", smtp_host="h", sender="a@b"}]'])


async def test_email_over_starttls_to_local_smtp(tmp_path: Path) -> None:
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    pair = self_signed_cert(tmp_path)
    if pair is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    cert, key = pair
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    got: list[bytes] = []
    tls_seen: list[bool] = []

    class Handler(Sink):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd name)
            got.append(envelope.content)
            tls_seen.append(session.ssl is not None)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True)
    cfg = AlertsConfig(channels=[AlertChannelConfig(
        name="mail", kind="email", smtp_host="127.0.0.1", smtp_port=port, smtp_ca_file=str(cert),
        sender="algobot@example.test", to=["trader@example.test"])],
        routes=[AlertRouteConfig(kinds=["fill"], channels=["mail"])])
    store = StoreWriter(tmp_path / "s.duckdb")
    clock = WallClock()
    box = Outbox(store, cfg, wall_ns=clock)
    store.add("alerts", alert_row("fill", "info", "BUY 3 IBM @ 100.0", dedup_key="m1"))
    await store.flush()
    assert await asyncio.wait_for(box.pump(), 30) == 0  # mail server not up yet: retried later
    assert statuses(store)["m1#mail"] == ("pending", 1)
    controller.start()
    try:
        clock.now += 60 * NS
        assert await asyncio.wait_for(box.pump(), 30) == 1
        msg = message_from_bytes(got[0])
        assert tls_seen == [True]
        assert msg["Subject"] == "[algobot info] fill: BUY 3 IBM @ 100.0"
        assert msg["To"] == "trader@example.test" and msg["Message-ID"] == "<m1#mail@algobotd>"
        await store.close()
    finally:
        controller.stop()


def test_documented_alert_example_in_config_toml_is_valid(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    text = (ROOT / "config.toml").read_text()
    start, end = text.index("# [[alerts.channels]]"), text.index("\n[monitor]")
    example = "\n".join(line[2:] for line in text[start:end].splitlines())  # uncomment the example
    body = text[:start] + text[end:]
    body = body.replace("\nchannels = []", "\n").replace("\nroutes = []", "\n")
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(body.replace("\n[monitor]", "\n" + example + "\n\n[monitor]", 1))
    cfg = load(cfg_file)
    assert [(c.name, c.kind) for c in cfg.alerts.channels] == [("mail", "email"), ("slack", "webhook"), ("sms", "sms")]
    assert [r.channels for r in cfg.alerts.routes] == [["mail"], ["sms"], ["mail", "slack", "sms"]]
