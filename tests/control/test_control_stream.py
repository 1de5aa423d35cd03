"""subscribe: immediate snapshots, change-driven updates, throttling, slow subscribers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from ctl_fake_target import FakeTarget
from ctl_rawconn import RawConn

from algobotd.control import protocol as p
from algobotd.control.client import ControlClient
from algobotd.control.server import ControlServer, serve


async def test_subscribe_sends_current_snapshots(server: ControlServer) -> None:
    conn = await RawConn.open(server.path)
    reply = await conn.ask({"id": 5, "method": "subscribe", "params": {"topics": list(p.TOPIC_TYPES)}})
    assert reply["id"] == 5 and reply["result"]["topics"] == list(p.TOPIC_TYPES)
    got = {}
    for _ in p.TOPIC_TYPES:
        msg = await conn.recv()
        assert set(msg) == {"topic", "data"}
        got[msg["topic"]] = msg["data"]
    assert set(got) == set(p.TOPIC_TYPES)
    assert got["status"]["trading_state"] == "ACTIVE"
    assert len(got["equity"]) == 60 and len(got["positions"]) == 5
    await conn.close()


async def test_equity_curve_alias(client: ControlClient) -> None:
    stream = client.subscribe(["equity_curve"])
    msg = await asyncio.wait_for(anext(stream), 2)
    assert msg.topic == "equity" and isinstance(msg.data[0], p.EquityPoint)
    await stream.aclose()


async def test_change_is_pushed_quickly(client: ControlClient, target: FakeTarget) -> None:
    stream = client.subscribe(["status", "risk"])
    seen = {(await anext(stream)).topic, (await anext(stream)).topic}
    assert seen == {"status", "risk"}
    await asyncio.sleep(0.3)  # past the throttle window of the initial snapshot
    t0 = time.perf_counter()
    await client.call("halt", reason="test")
    while True:
        msg = await asyncio.wait_for(anext(stream), 2)
        if msg.topic == "status" and msg.data.trading_state == "HALTED":
            break
    assert time.perf_counter() - t0 < 0.5
    assert msg.data.trading_state_reason == "test"
    await stream.aclose()


async def test_throttled_and_latest_delivered(client: ControlClient, target: FakeTarget) -> None:
    stream = client.subscribe(["status", "equity"])
    await anext(stream)
    await anext(stream)
    received: list[p.StreamMessage] = []

    async def collect() -> None:
        async for msg in stream:
            received.append(msg)

    task = asyncio.create_task(collect())
    duration = 2.0
    t_end = time.monotonic() + duration
    while time.monotonic() < t_end:  # the engine changes at ~100 Hz
        target.step()
        await asyncio.sleep(0.01)
    final_bar_ts = target.status()["last_bar_ts"]
    await asyncio.sleep(0.6)  # the pending (throttled) send fires
    task.cancel()
    by_topic: dict[str, list[p.StreamMessage]] = {}
    for m in received:
        by_topic.setdefault(m.topic, []).append(m)
    for topic in ("status", "equity"):
        n = len(by_topic[topic])
        assert 4 <= n <= p.MAX_RATE_HZ * (duration + 0.6) + 1, (topic, n)
    # the last message carries the final state, not a stale one
    assert by_topic["status"][-1].data.last_bar_ts == final_bar_ts
    assert by_topic["equity"][-1].data[-1].ts == final_bar_ts


async def test_unsubscribed_topics_not_sent(client: ControlClient, target: FakeTarget) -> None:
    stream = client.subscribe(["orders"])
    assert (await anext(stream)).topic == "orders"
    target.step()  # changes status/positions/... but not orders
    await client.call("cancel_all")
    msg = await asyncio.wait_for(anext(stream), 2)
    assert msg.topic == "orders" and msg.data == []


async def test_heartbeat(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, heartbeat_s=0.1)
    async with await ControlClient.connect(sock_path) as c:
        stream = c.subscribe(["status"])
        for _ in range(3):  # initial + beats, with no change in the target
            assert (await asyncio.wait_for(anext(stream), 2)).topic == "status"
    await srv.close()


async def test_builds_shared_between_subscribers(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, heartbeat_s=None)
    clients = [await ControlClient.connect(sock_path) for _ in range(10)]
    streams = [c.subscribe(["status"]) for c in clients]
    for s in streams:
        await anext(s)
    await asyncio.sleep(0.3)
    builds0 = srv.snapshot_builds
    for _ in range(20):
        target.step()
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.6)
    builds = srv.snapshot_builds - builds0
    # ~1 s of 20 Hz changes at <= 4 Hz: a handful of builds, not one per client per send
    assert builds <= 10, builds
    for c in clients:
        await c.close()
    await srv.close()


async def test_slow_subscriber_never_blocks_engine(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, heartbeat_s=None, rate_hz=1000)
    for _ in range(1500):
        target.step(notify=False)  # a big equity curve: each equity snapshot ~60 KB
    # a raw socket nobody reads from: asyncio's own reader would drain the kernel buffer for us
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(str(sock_path))
    slow.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(slow, b'{"id":0,"method":"hello","params":{"version":1}}\n'
                            b'{"id":1,"method":"subscribe","params":{"topics":["equity","status","events"]}}\n')
    # ... and never reads. A well-behaved client subscribes alongside.
    async with await ControlClient.connect(sock_path) as good:
        stream = good.subscribe(["status"])
        await anext(stream)
        worst = 0.0
        for _ in range(300):
            t0 = time.perf_counter()
            target.step()  # calls the server's listener synchronously
            worst = max(worst, time.perf_counter() - t0)
            await asyncio.sleep(0.002)
        msg = await asyncio.wait_for(anext(stream), 2)
        assert msg.topic == "status"
        assert worst < 0.05, worst  # listener only marks dirty
        session = next(s for s in srv.sessions if s.topics.keys() >= {"equity"})
        assert session.dropped > 0
        assert len(session._outbox) <= 3  # bounded: one pending snapshot per topic
        # the slow client finally reads: it gets the latest state, and the connection still works
        final_ts = target.status()["last_bar_ts"]
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        transport, _ = await loop.connect_accepted_socket(
            lambda: asyncio.StreamReaderProtocol(reader), sock=slow)
        latest = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(reader.readline(), 5))
            if msg.get("topic") == "status":
                latest = msg["data"]["last_bar_ts"]
                if latest == final_ts:
                    break
        assert latest == final_ts
        transport.close()
    await srv.close()


@pytest.mark.parametrize("n_topics", [1, 7])
async def test_resubscribe_is_idempotent(client: ControlClient, n_topics: int) -> None:
    topics = list(p.TOPIC_TYPES)[:n_topics]
    reply = await client.call("subscribe", topics=topics)
    reply2 = await client.call("subscribe", topics=topics + topics)
    assert reply["topics"] == reply2["topics"] == topics
