"""The control server: a Unix socket in front of a ``ControlTarget`` (the engine).

Usage (from the daemon)::

    server = await serve(engine, socket_path(cfg.control.socket, cfg.state_dir),
                         group=cfg.control.group or None,
                         allow_uids=cfg.control.allow_uids, allow_groups=cfg.control.allow_groups)
    ...
    await server.close()

The engine is only ever called on the event loop, with cheap synchronous reads; change
notifications merely mark topics dirty, so a client can never slow the engine down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import msgspec
import structlog

from algobotd.control import protocol as p
from algobotd.control.auth import Authorizer, Peer, PeerPolicy, peer_credentials, resolve_gid
from algobotd.control.paths import socket_path
from algobotd.control.session import Session
from algobotd.control.target import ControlError, ControlTarget

__all__ = ["ControlServer", "Peer", "PeerPolicy", "serve", "socket_path"]

log = structlog.get_logger(__name__)

# A cached snapshot is reused only this long, so a missed change notification self-heals.
SNAPSHOT_MAX_AGE_S = 0.2


class ControlServer:
    def __init__(
        self,
        target: ControlTarget,
        path: Path,
        *,
        authorize: Authorizer,
        mode: int = 0o600,
        group: str | int | None = None,
        max_clients: int = p.MAX_CLIENTS,
        rate_hz: float = p.MAX_RATE_HZ,
        heartbeat_s: float | None = 5.0,
    ) -> None:
        self.target = target
        self.path = Path(path)
        self.authorize = authorize
        self.mode = mode
        self.group = group
        self.max_clients = max_clients
        self.rate_hz = rate_hz
        self.interval = 1.0 / rate_hz
        self.heartbeat_s = heartbeat_s
        self.sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._inode: tuple[int, int] | None = None
        self._versions: dict[str, int] = dict.fromkeys(p.TOPIC_TYPES, 0)
        self._cache: dict[str, tuple[int, float, bytes]] = {}
        self._pending: set[str] = set()
        self._dispatch_scheduled = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.hello_timeout_s = 10.0  # a silent client must not hold one of the few slots forever
        self.snapshot_builds = 0  # for the benchmark and tests

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await _clear_stale(self.path)
        sock = self._bind()
        self._server = await asyncio.start_unix_server(self._on_connect, sock=sock)
        self.target.add_change_listener(self._on_change)
        if self.heartbeat_s:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        log.info("control.listening", path=str(self.path), mode=f"{self.mode:04o}")

    def _bind(self) -> socket.socket:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.bind(str(self.path))
            except OSError as exc:
                raise ControlError("socket_bind_failed", f"cannot bind control socket {self.path}: {exc}") from None
            # Mode and group are fixed before listen(): until then nobody can connect, so the
            # umask-dependent mode bind() created is never observable.
            os.chmod(self.path, self.mode)
            if self.group is not None:
                os.chown(self.path, -1, resolve_gid(self.group))
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise
        return sock

    async def close(self) -> None:
        """Stop listening, drop every client, remove the socket file (if it is still ours)."""
        if self._closed:
            return
        self._closed = True
        self.target.remove_change_listener(self._on_change)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close(abort=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._remove_socket()
        log.info("control.closed", path=str(self.path))

    def _remove_socket(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        # another daemon may have taken the path over (after a stale check); leave its socket alone
        if self._inode == (st.st_dev, st.st_ino):
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def __aenter__(self) -> ControlServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connections ----------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._closed or len(self.sessions) >= self.max_clients:
                msg = f"too many control clients (max {self.max_clients}); close another dashboard first"
                with contextlib.suppress(ConnectionError):
                    writer.write(p.encode_line(p.error_reply(None, p.ErrorCode.TOO_MANY_CLIENTS, msg)))
                    await asyncio.wait_for(writer.drain(), 1.0)
                writer.close()
                return
            peer = peer_credentials(writer.get_extra_info("socket"))
            try:
                may_control = bool(self.authorize(peer))
            except Exception:
                log.exception("control.authorize_failed", uid=peer.uid)
                may_control = False  # fail closed
            session = Session(self, reader, writer, peer, may_control)
            self.sessions.add(session)
            timer = asyncio.get_running_loop().call_later(self.hello_timeout_s, session.expire_if_silent)
            try:
                await session.run()
            finally:
                timer.cancel()
        except Exception:
            log.exception("control.session_crashed")
            writer.close()
        finally:
            self._tasks.discard(task)

    def forget(self, session: Session) -> None:
        self.sessions.discard(session)

    # --- change notifications and snapshots -----------------------------------------------

    def _on_change(self, topic: str) -> None:
        """Called by the engine, synchronously. Only marks the topic dirty; the snapshot is built
        on a later loop iteration so the engine returns at once, and several changes made in one
        engine step coalesce into one dispatch."""
        if threading.get_ident() != self._loop_thread:
            # tolerated for an engine part that runs in a thread (a broker SDK callback)
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._on_change, topic)
            return
        topic = p.canonical_topic(topic) or ""
        if topic not in self._versions or self._closed:
            return
        self._versions[topic] += 1
        self._pending.add(topic)
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        topics, self._pending = self._pending, set()
        for session in list(self.sessions):
            for topic in topics:
                session.poke(topic)

    async def _beat(self) -> None:
        """Re-send status every heartbeat_s even when nothing changed: clients see the daemon is
        alive, and time-derived fields (feed lag) stay fresh."""
        assert self.heartbeat_s
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self._on_change("status")

    def snapshot(self, topic: str) -> bytes | None:
        """The encoded stream message for the topic's current state, built at most once per
        change however many subscribers want it."""
        now = asyncio.get_running_loop().time()
        version = self._versions[topic]
        cached = self._cache.get(topic)
        if cached is not None and cached[0] == version and now - cached[1] <= SNAPSHOT_MAX_AGE_S:
            return cached[2]
        try:
            data = p.encode_line(p.StreamMessage(topic, self._read_topic(topic)))
        except Exception:
            log.exception("control.snapshot_failed", topic=topic)
            return None
        self.snapshot_builds += 1
        self._cache[topic] = (version, now, data)
        return data

    def _read_topic(self, topic: str) -> Any:
        t = self.target
        if topic == "equity":
            return self.validate("equity_curve", t.equity_curve(limit=p.STREAM_EQUITY_POINTS))
        if topic == "events":
            return self.validate("events", t.events(limit=p.STREAM_EVENTS))
        return self.validate(topic, getattr(t, topic)())

    @staticmethod
    def validate(method: str, raw: Any) -> Any:
        """Hold the engine to the protocol: a missing or mistyped field is a bug reported as
        ``internal_error``, not something a client trips over later."""
        try:
            return msgspec.convert(raw, p.METHODS[method].result)
        except msgspec.ValidationError as exc:
            raise ControlError(p.ErrorCode.INTERNAL_ERROR, f"daemon returned an invalid {method}: {exc}") from None


async def _clear_stale(path: Path) -> None:
    """Remove a socket file nobody answers on; refuse to start if a daemon answers."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError("socket_path_conflict", f"{path} exists and is not a socket; refusing to replace it")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2.0)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        log.info("control.stale_socket_removed", path=str(path))
        return
    except (TimeoutError, OSError) as exc:
        raise ControlError(p.ErrorCode.SOCKET_IN_USE, f"cannot tell whether {path} is in use ({exc}); not replacing it") from None
    writer.close()
    raise ControlError(
        p.ErrorCode.SOCKET_IN_USE,
        f"another algobotd is already answering on {path}; stop it first or set control.socket elsewhere",
    )


async def serve(
    target: ControlTarget,
    path: Path | str,
    *,
    mode: int = 0o600,
    group: str | int | None = None,
    allow_uids: tuple[int, ...] | list[int] = (),
    allow_groups: tuple[str | int, ...] | list[str | int] = (),
    authorize: Authorizer | None = None,
    max_clients: int = p.MAX_CLIENTS,
    rate_hz: float = p.MAX_RATE_HZ,
    heartbeat_s: float | None = 5.0,
) -> ControlServer:
    """Start serving ``target`` on ``path``; returns once the socket accepts connections.

    ``mode`` is the socket's file mode; with a ``group`` it gains group read/write (0600 ->
    0660) and the file is chowned to that group. ``authorize`` replaces the default
    ``PeerPolicy(daemon uid, root, allow_uids, allow_groups)`` (tests use it to deny themselves).
    Raises ``ControlError("socket_in_use")`` when another daemon answers on ``path``.
    """
    if group is not None:
        mode |= 0o060
    policy = authorize or PeerPolicy(allow_uids=allow_uids, allow_groups=allow_groups)
    server = ControlServer(
        target, Path(path), authorize=policy, mode=mode, group=group,
        max_clients=max_clients, rate_hz=rate_hz, heartbeat_s=heartbeat_s,
    )
    await server.start()
    return server
