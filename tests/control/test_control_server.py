"""Socket lifecycle, file mode, peer credentials and client limits."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest
from ctl_fake_target import FakeTarget
from ctl_rawconn import RawConn

from algobotd.control import protocol as p
from algobotd.control.auth import Peer, PeerPolicy
from algobotd.control.client import ControlClient, DaemonUnavailable
from algobotd.control.server import ControlServer, serve, socket_path
from algobotd.control.target import ControlError
from algobotd.domain import TradingState


def test_socket_path_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    assert socket_path("", tmp_path) == tmp_path / "algobotd.sock"
    assert socket_path("/run/x/my.sock", tmp_path) == Path("/run/x/my.sock")
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/algobotd")
    assert socket_path("", tmp_path) == Path("/run/algobotd/ctl.sock")
    assert socket_path("/elsewhere.sock", tmp_path) == Path("/elsewhere.sock")  # config wins
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/a:/run/b")
    assert socket_path("", tmp_path) == Path("/run/a/ctl.sock")


async def test_mode_0600_and_removed_on_close(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, heartbeat_s=None)
    st = os.stat(sock_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    await srv.close()
    assert not sock_path.exists()
    await srv.close()  # idempotent


async def test_mode_0660_with_group(target: FakeTarget, sock_path: Path) -> None:
    gid = os.getgid()
    srv = await serve(target, sock_path, group=gid, heartbeat_s=None)
    st = os.stat(sock_path)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == gid
    await srv.close()


async def test_unknown_group_fails_startup(target: FakeTarget, sock_path: Path) -> None:
    with pytest.raises(ControlError) as err:
        await serve(target, sock_path, group="no-such-group-algobot", heartbeat_s=None)
    assert err.value.code == "unknown_group"
    assert not sock_path.exists()


async def test_stale_socket_removed(target: FakeTarget, sock_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays behind, as after a crash
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    srv = await serve(target, sock_path, heartbeat_s=None)
    async with await ControlClient.connect(sock_path) as c:
        assert (await c.call("status")).trading_state == "ACTIVE"
    await srv.close()


async def test_live_socket_refused(server: ControlServer, target: FakeTarget, sock_path: Path) -> None:
    with pytest.raises(ControlError) as err:
        await serve(FakeTarget(), sock_path, heartbeat_s=None)
    assert err.value.code == "socket_in_use"
    assert "already answering" in err.value.message and str(sock_path) in err.value.message
    # the first daemon is unaffected
    async with await ControlClient.connect(sock_path) as c:
        assert (await c.call("status")).equity == pytest.approx(target.equity())


async def test_non_socket_file_not_replaced(target: FakeTarget, sock_path: Path) -> None:
    sock_path.write_text("precious")
    with pytest.raises(ControlError) as err:
        await serve(target, sock_path, heartbeat_s=None)
    assert err.value.code == "socket_path_conflict"
    assert sock_path.read_text() == "precious"


async def test_path_too_long(target: FakeTarget, sock_dir: Path) -> None:
    deep = sock_dir / ("d" * 120) / "ctl.sock"
    with pytest.raises(ControlError) as err:
        await serve(target, deep, heartbeat_s=None)
    assert err.value.code == "socket_bind_failed"


async def test_no_daemon(sock_path: Path) -> None:
    with pytest.raises(DaemonUnavailable):
        await ControlClient.connect(sock_path)


async def test_peer_credentials(client: ControlClient) -> None:
    assert client.hello is not None and client.hello.peer_uid == os.geteuid()


async def test_permission_denied(target: FakeTarget, sock_path: Path) -> None:
    seen: list[Peer] = []

    def deny(peer: Peer) -> bool:
        seen.append(peer)
        return False  # exclude even our own uid (the tests may run as root)

    srv = await serve(target, sock_path, authorize=deny, heartbeat_s=None)
    before = target.fingerprint()
    async with await ControlClient.connect(sock_path) as c:
        assert c.hello is not None and not c.hello.may_control
        assert seen and seen[0].uid == os.geteuid() and seen[0].pid == os.getpid()
        for method, params in [("halt", {"reason": "x"}), ("reduce", {}), ("resume", {"confirm": "RESUME"}),
                               ("flatten", {"confirm": "FLATTEN"}), ("cancel_all", {}), ("retrain", {})]:
            with pytest.raises(ControlError) as err:
                await c.call(method, **params)
            assert err.value.code == "permission_denied", method
            assert f"uid {os.geteuid()}" in err.value.message
        # read-only methods and subscriptions still work
        for method in p.READ_METHODS:
            await c.call(method)
        stream = c.subscribe(["status"])
        msg = await asyncio.wait_for(anext(stream), 2)
        assert msg.topic == "status"
        await stream.aclose()
    assert target.fingerprint() == before
    assert target.state is TradingState.ACTIVE
    await srv.close()


async def test_authorizer_exception_fails_closed(target: FakeTarget, sock_path: Path) -> None:
    def broken(peer: Peer) -> bool:
        raise KeyError("nss down")

    srv = await serve(target, sock_path, authorize=broken, heartbeat_s=None)
    async with await ControlClient.connect(sock_path) as c:
        with pytest.raises(ControlError) as err:
            await c.call("halt", reason="x")
        assert err.value.code == "permission_denied"
    await srv.close()


def test_peer_policy() -> None:
    pol = PeerPolicy(daemon_uid=1000, allow_uids=[1001], allow_groups=[os.getgid()])
    assert pol(Peer(1, 1000, 1000))
    assert pol(Peer(1, 0, 0))  # root
    assert pol(Peer(1, 1001, 5))
    assert pol(Peer(1, 2000, os.getgid()))  # primary group
    assert not pol(Peer(1, 2000, 424242))
    assert not pol(Peer(-1, -1, -1))
    assert not PeerPolicy(daemon_uid=1000)(Peer(1, 2000, 2000))


async def test_max_clients(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, heartbeat_s=None)
    conns = [await RawConn.open(sock_path) for _ in range(p.MAX_CLIENTS)]
    with pytest.raises(ControlError) as err:
        await ControlClient.connect(sock_path)
    assert err.value.code == "too_many_clients"
    # everyone else is still served, and a slot frees up when one leaves
    assert "result" in await conns[0].ask({"id": 1, "method": "status"})
    await conns.pop().close()
    for _ in range(50):
        if len(srv.sessions) < p.MAX_CLIENTS:
            break
        await asyncio.sleep(0.01)
    async with await ControlClient.connect(sock_path) as c:
        await c.call("status")
    for conn in conns:
        await conn.close()
    await srv.close()


async def test_close_with_connected_clients(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, heartbeat_s=None)
    c = await ControlClient.connect(sock_path)
    stream = c.subscribe(["status", "events"])
    await anext(stream)
    await asyncio.wait_for(srv.close(), 5)
    assert target.listeners == []
    with pytest.raises(DaemonUnavailable):
        while True:
            await asyncio.wait_for(anext(stream), 5)
    await c.close()
    # and the path can be served again right away
    srv2 = await serve(target, sock_path, heartbeat_s=None)
    await srv2.close()


async def test_silent_client_is_dropped(server: ControlServer) -> None:
    server.hello_timeout_s = 0.2
    conn = await RawConn.open(server.path, hello=False)
    assert await asyncio.wait_for(conn.reader.read(), 3) == b""  # hung up, no hello
    await conn.close()
    async with await ControlClient.connect(server.path) as c:  # a prompt client is unaffected
        await asyncio.sleep(0.4)
        await c.call("status")


async def test_change_from_another_thread(client: ControlClient, target: FakeTarget) -> None:
    import threading

    stream = client.subscribe(["events"])
    await anext(stream)
    await asyncio.sleep(0.3)
    target._event("reconnect", "broker reconnected")
    t = threading.Thread(target=target.notify, args=("events",))
    t.start()
    t.join()
    msg = await asyncio.wait_for(anext(stream), 2)
    assert msg.data[-1].message == "broker reconnected"
