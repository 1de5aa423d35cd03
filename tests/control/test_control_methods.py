"""Every protocol method against a real server on a temp socket."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from ctl_fake_target import FakeTarget
from ctl_rawconn import RawConn

from algobotd.control import protocol as p
from algobotd.control.client import ControlClient
from algobotd.control.server import ControlServer
from algobotd.control.target import ControlError
from algobotd.domain import TradingState

STATUS_KEYS = {
    "mode", "trading_state", "trading_state_reason", "equity", "cash", "day_pnl", "drawdown",
    "positions", "open_orders", "last_bar_ts", "feed_connected", "broker_connected", "model_id",
}


async def test_hello(client: ControlClient) -> None:
    assert client.hello is not None
    assert client.hello.protocol == p.PROTOCOL_VERSION
    assert client.hello.may_control  # the test runs as the daemon's own uid
    assert set(client.hello.topics) == set(p.TOPIC_TYPES)


async def test_status(client: ControlClient, target: FakeTarget) -> None:
    status = await client.call("status")
    assert isinstance(status, p.Status)
    assert set(msgspec.to_builtins(status)) >= STATUS_KEYS
    assert status.trading_state == "ACTIVE"
    assert status.positions == len(target.book)
    assert status.open_orders == len(target.open_orders)
    assert status.equity == pytest.approx(target.equity())


async def test_status_wire_object(server: ControlServer) -> None:
    conn = await RawConn.open(server.path)
    reply = await conn.ask({"id": 7, "method": "status"})
    assert reply["id"] == 7
    assert set(reply["result"]) >= STATUS_KEYS
    await conn.close()


async def test_reads(client: ControlClient, target: FakeTarget) -> None:
    positions = await client.call("positions")
    assert [r.symbol for r in positions] == sorted(target.book)
    assert all(r.soft_stop is not None and r.hard_stop is not None for r in positions)
    orders = await client.call("orders")
    assert len(orders) == 3 and orders[0].client_order_id == "c-0000"
    preds = await client.call("predictions")
    assert len(preds) == 8 and preds[0].weights
    risk = await client.call("risk")
    assert isinstance(risk, p.Risk) and {b.name for b in risk.breakers} >= {"drawdown", "daily_loss"}
    curve = await client.call("equity_curve", limit=10)
    assert len(curve) == 10 and curve[-1].ts == target.curve[-1]["ts"]
    full = await client.call("equity_curve")
    assert len(full) == len(target.curve)
    events = await client.call("events", limit=5)
    assert events and events[-1].kind == "state"


async def test_halt_reduce_resume(client: ControlClient, target: FakeTarget) -> None:
    res = await client.call("halt", reason="news spike")
    assert res["trading_state"] == "HALTED" and res["cancelled_orders"] == 3
    assert target.state is TradingState.HALTED and target.reason == "news spike"
    assert target.control_calls[-1][1].startswith("operator:uid=")
    status = await client.call("status")
    assert (status.trading_state, status.trading_state_reason) == ("HALTED", "news spike")
    # only resume moves the state up
    with pytest.raises(ControlError) as err:
        await client.call("reduce", reason="x")
    assert err.value.code == "invalid_transition"
    with pytest.raises(ControlError) as err:
        await client.call("resume")
    assert err.value.code == "confirmation_required"
    with pytest.raises(ControlError) as err:
        await client.call("resume", confirm="resume")  # must be exact
    assert target.state is TradingState.HALTED
    await client.call("resume", confirm="RESUME")
    assert target.state is TradingState.ACTIVE
    await client.call("reduce", reason="vol")
    assert target.state is TradingState.REDUCING


async def test_flatten_cancel_retrain(client: ControlClient, target: FakeTarget) -> None:
    with pytest.raises(ControlError) as err:
        await client.call("flatten")
    assert err.value.code == "confirmation_required" and target.book
    assert (await client.call("flatten", confirm="FLATTEN")) == {"closed_positions": 5}
    assert not target.book and (await client.call("positions")) == []
    assert (await client.call("cancel_all")) == {"cancelled_orders": 3}
    assert (await client.call("orders")) == []
    assert (await client.call("retrain")) == {"model_id": "ens-0002"}
    assert (await client.call("status")).model_id == "ens-0002"


async def test_halt_default_reason(client: ControlClient, target: FakeTarget) -> None:
    await client.call("halt")
    assert target.reason == "operator halt"


async def test_version_mismatch_refused(server: ControlServer) -> None:
    with pytest.raises(ControlError) as err:
        await ControlClient.connect(server.path, version=99)
    assert err.value.code == "version_mismatch"
    assert "v99" in err.value.message and f"v{p.PROTOCOL_VERSION}" in err.value.message
    conn = await RawConn.open(server.path, hello=False)
    reply = await conn.ask({"id": 1, "method": "hello", "params": {"version": 2}})
    assert reply["error"]["code"] == "version_mismatch"
    assert await conn.reader.readline() == b""  # and hung up
    await conn.close()


async def test_hello_required(server: ControlServer, target: FakeTarget) -> None:
    conn = await RawConn.open(server.path, hello=False)
    reply = await conn.ask({"id": 1, "method": "halt", "params": {"reason": "x"}})
    assert reply == {"id": 1, "error": {"code": "hello_required", "message": reply["error"]["message"]}}
    assert target.state is TradingState.ACTIVE
    reply = await conn.ask({"id": 2, "method": "hello", "params": {"version": p.PROTOCOL_VERSION}})
    assert reply["result"]["protocol"] == p.PROTOCOL_VERSION
    await conn.close()


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", "parse_error"),
        (b"\xff\xfe\x00", "parse_error"),
        (b"[1,2,3]", "invalid_request"),
        (b'{"id":3}', "invalid_request"),
        (b'{"id":3,"method":"status","extra":1}', "invalid_request"),
        (b'{"id":3,"method":"launch_missiles"}', "unknown_method"),
        (b'{"id":3,"method":"halt","params":{"reason":5}}', "bad_params"),
        (b'{"id":3,"method":"halt","params":{"why":"x"}}', "bad_params"),
        (b'{"id":3,"method":"status","params":{"x":1}}', "bad_params"),
        (b'{"id":3,"method":"equity_curve","params":{"limit":0}}', "bad_params"),
        (b'{"id":3,"method":"subscribe","params":{"topics":["nope"]}}', "bad_params"),
        (b'{"id":3,"method":"subscribe","params":{"topics":[]}}', "bad_params"),
    ],
)
async def test_bad_requests_keep_connection(server: ControlServer, target: FakeTarget, line: bytes, code: str) -> None:
    conn = await RawConn.open(server.path)
    before = target.fingerprint()
    reply = await conn.ask(line)
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    if code not in ("parse_error",) and line.startswith(b'{"id":3'):
        assert reply["id"] == 3
    # still usable
    ok = await conn.ask({"id": 4, "method": "status"})
    assert ok["id"] == 4 and "result" in ok
    assert target.fingerprint() == before
    await conn.close()


async def test_string_ids_echoed(server: ControlServer) -> None:
    conn = await RawConn.open(server.path)
    reply = await conn.ask({"id": "abc", "method": "orders"})
    assert reply["id"] == "abc" and len(reply["result"]) == 3
    await conn.close()


async def test_oversized_line(server: ControlServer, target: FakeTarget) -> None:
    conn = await RawConn.open(server.path)
    big = b'{"id":1,"method":"halt","params":{"reason":"' + b"x" * (p.MAX_LINE_BYTES + 10) + b'"}}\n'
    await conn.send(big)
    reply = await conn.recv()
    assert reply["error"]["code"] == "line_too_long"
    ok = await conn.ask({"id": 2, "method": "status"})
    assert ok["id"] == 2 and ok["result"]["trading_state"] == "ACTIVE"
    # a huge line without any newline yet, then the rest
    await conn.send(b"y" * (3 * p.MAX_LINE_BYTES))
    assert (await conn.recv())["error"]["code"] == "line_too_long"
    await conn.send(b"tail\n")
    ok = await conn.ask({"id": 3, "method": "status"})
    assert ok["id"] == 3
    assert target.state is TradingState.ACTIVE
    await conn.close()


async def test_line_of_exactly_max_is_accepted(server: ControlServer) -> None:
    conn = await RawConn.open(server.path)
    head = b'{"id":1,"method":"status"}'
    line = head + b" " * (p.MAX_LINE_BYTES - len(head))
    assert len(line) == p.MAX_LINE_BYTES
    reply = await conn.ask(line)
    assert "result" in reply
    await conn.close()


async def test_pipelined_requests_answered_in_order(server: ControlServer) -> None:
    conn = await RawConn.open(server.path)
    await conn.send(b"".join(f'{{"id":{i},"method":"status"}}\n'.encode() for i in range(50)) + b"\n\n")
    ids = [(await conn.recv())["id"] for _ in range(50)]
    assert ids == list(range(50))
    await conn.close()


async def test_invalid_target_output_is_internal_error(
    server: ControlServer, target: FakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(target, "status", lambda: {"mode": "paper"})  # engine bug: fields missing
    conn = await RawConn.open(server.path)
    reply = await conn.ask({"id": 1, "method": "status"})
    assert reply["error"]["code"] == "internal_error" and "status" in reply["error"]["message"]
    assert "result" in await conn.ask({"id": 2, "method": "orders"})
    await conn.close()


async def test_target_exception_is_internal_error(
    server: ControlServer, target: FakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(actor: str) -> dict[str, object]:
        raise RuntimeError("broker on fire")

    monkeypatch.setattr(target, "cancel_all", boom)
    conn = await RawConn.open(server.path)
    reply = await conn.ask({"id": 1, "method": "cancel_all"})
    assert reply["error"]["code"] == "internal_error" and "broker on fire" in reply["error"]["message"]
    assert "result" in await conn.ask({"id": 2, "method": "status"})
    await conn.close()


async def test_client_sees_daemon_gone(server: ControlServer, sock_path: Path) -> None:
    c = await ControlClient.connect(sock_path)
    await server.close()
    with pytest.raises(ControlError) as err:
        await c.call("status")
    assert err.value.code == "not_connected"
    await c.close()
