"""One client connection: line framing, request dispatch, and its subscription stream.

A connection can never hurt the daemon: every malformed input gets an error reply, replies are
written with back-pressure on *this* connection's reader only, and stream snapshots go through
a per-topic latest-only slot (a slow subscriber loses old snapshots, the engine never waits).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from algobotd.control import protocol as p
from algobotd.control.auth import Peer
from algobotd.control.target import ControlError

if TYPE_CHECKING:
    from algobotd.control.server import ControlServer

log = structlog.get_logger(__name__)

READ_CHUNK = 64 * 1024
GRID_DIVISIONS = 4


class _TopicState:
    __slots__ = ("last_sent", "timer")

    def __init__(self) -> None:
        self.last_sent = -math.inf
        self.timer: asyncio.TimerHandle | None = None


class Session:
    def __init__(
        self,
        server: ControlServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
        may_control: bool,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.may_control = may_control
        self.hello_done = False
        self.closed = False
        self.topics: dict[str, _TopicState] = {}
        # topic -> encoded snapshot not yet written; replacing an entry drops the older snapshot
        self._outbox: dict[str, bytes] = {}
        self._outbox_ready = asyncio.Event()
        self._stream_task: asyncio.Task[None] | None = None
        self._initial: list[str] = []
        self._hang_up = False  # close once the current reply is written
        self.dropped = 0  # snapshots replaced before this client read them
        self._loop = asyncio.get_running_loop()

    # --- reading --------------------------------------------------------------------------

    async def run(self) -> None:
        """Read lines until EOF. Oversized lines are answered once and skipped up to their
        newline, so the connection stays usable."""
        buf = bytearray()
        discarding = False
        limit = p.MAX_LINE_BYTES
        try:
            while not self.closed:
                chunk = await self.reader.read(READ_CHUNK)
                if not chunk:
                    return
                buf += chunk
                start = 0
                while True:
                    nl = buf.find(b"\n", start)
                    if nl < 0:
                        break
                    line = bytes(buf[start:nl])
                    start = nl + 1
                    if discarding:  # the tail of a line already refused
                        discarding = False
                        continue
                    if len(line) > limit:
                        await self._write_reply(self._too_long())
                        continue
                    await self._on_line(line)
                    if self.closed:
                        return
                del buf[:start]
                if len(buf) > limit:
                    if not discarding:
                        await self._write_reply(self._too_long())
                        discarding = True
                    buf.clear()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.close()

    @staticmethod
    def _too_long() -> p.ServerReply:
        return p.error_reply(None, p.ErrorCode.LINE_TOO_LONG, f"request line exceeds {p.MAX_LINE_BYTES} bytes")

    async def _on_line(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return  # blank lines are keep-alives
        reply = await self.handle(line)
        await self._write_reply(reply)
        if self._hang_up:
            self.close()
            return
        if self._initial:  # subscribe: the current snapshots follow its reply
            topics, self._initial = self._initial, []
            for topic in topics:
                self._send_topic(topic, self._loop.time())

    async def _write_reply(self, reply: p.ServerReply) -> None:
        try:
            data = p.encode_line(reply)
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            rid = reply.id if isinstance(reply.id, str) or (reply.id is not None and abs(reply.id) < 2**63) else None
            data = p.encode_line(p.error_reply(rid, p.ErrorCode.INTERNAL_ERROR, f"unencodable reply: {exc}"))
        if self.closed:
            return
        self.writer.write(data)
        await self.writer.drain()

    # --- requests -------------------------------------------------------------------------

    async def handle(self, line: bytes) -> p.ServerReply:
        try:
            obj = msgspec.json.decode(line)
        except Exception as exc:  # DecodeError, RecursionError on absurd nesting ...
            return p.error_reply(None, p.ErrorCode.PARSE_ERROR, f"invalid JSON: {exc}")
        rid = _salvage_id(obj)
        try:
            req = msgspec.convert(obj, p.Request)
        except msgspec.ValidationError as exc:
            return p.error_reply(rid, p.ErrorCode.INVALID_REQUEST, f"not a request object: {exc}")
        spec = p.METHODS.get(req.method)
        if spec is None:
            known = ", ".join(sorted(p.METHODS))
            return p.error_reply(rid, p.ErrorCode.UNKNOWN_METHOD, f"unknown method {req.method!r} (known: {known})")
        if not self.hello_done and req.method != "hello":
            return p.error_reply(rid, p.ErrorCode.HELLO_REQUIRED, "the first request must be hello {version}")
        try:
            params: Any = msgspec.convert(req.params, spec.params)
        except msgspec.ValidationError as exc:
            return p.error_reply(rid, p.ErrorCode.BAD_PARAMS, f"{req.method}: {exc}")
        if spec.control and not self.may_control:
            return p.error_reply(
                rid, p.ErrorCode.PERMISSION_DENIED,
                f"{req.method} is not allowed for uid {self.peer.uid}: state-changing methods need the "
                "daemon's uid, root, or control.allow_uids / control.allow_groups",
            )
        try:
            result = await self._dispatch(req.method, params)
        except ControlError as exc:
            return p.error_reply(rid, exc.code, exc.message)
        except Exception as exc:  # a bug in the target must not take the connection down
            log.exception("control.internal_error", method=req.method)
            return p.error_reply(rid, p.ErrorCode.INTERNAL_ERROR, f"{req.method} failed: {exc!r}")
        return p.ResultReply(id=rid, result=result)

    async def _dispatch(self, method: str, params: Any) -> Any:
        target = self.server.target
        if method == "hello":
            return self._hello(params)
        if method == "subscribe":
            return self._subscribe(params)
        if method in p.READ_METHODS:
            if isinstance(params, p.LimitParams) and params.limit is not None:
                if not 1 <= params.limit <= 100_000:
                    raise ControlError(p.ErrorCode.BAD_PARAMS, f"limit must be 1..100000, got {params.limit}")
                raw = getattr(target, method)(limit=params.limit)
            else:
                raw = getattr(target, method)()
            return self.server.validate(method, raw)
        return await self._control(method, params)

    def _hello(self, params: p.HelloParams) -> p.HelloResult:
        if params.version != p.PROTOCOL_VERSION:
            # refuse and hang up: nothing else this client says can be trusted to mean the same
            self._hang_up = True
            raise ControlError(
                p.ErrorCode.VERSION_MISMATCH,
                f"client speaks control protocol v{params.version}, this daemon speaks "
                f"v{p.PROTOCOL_VERSION}; use the algobotd ctl / algobot-tui that match the daemon",
            )
        self.hello_done = True
        return p.HelloResult(
            protocol=p.PROTOCOL_VERSION, server="algobotd", pid=os.getpid(),
            peer_uid=self.peer.uid, may_control=self.may_control, topics=list(p.TOPIC_TYPES),
        )

    async def _control(self, method: str, params: Any) -> Any:
        target = self.server.target
        actor = self.peer.actor
        if method in p.CONFIRM_WORDS and params.confirm != p.CONFIRM_WORDS[method]:
            word = p.CONFIRM_WORDS[method]
            raise ControlError(p.ErrorCode.CONFIRMATION_REQUIRED, f"{method} needs params {{\"confirm\": \"{word}\"}}")
        log.info("control.action", method=method, actor=actor, pid=self.peer.pid,
                 reason=getattr(params, "reason", None))
        if method == "halt":
            return await target.halt(params.reason or "operator halt", actor)
        if method == "reduce":
            return await target.reduce(params.reason or "operator reduce", actor)
        if method == "ingest":
            return await target.ingest(params.lines, actor)
        fn: Callable[[str], Any] = getattr(target, method)
        return await fn(actor)

    # --- subscriptions --------------------------------------------------------------------

    def _subscribe(self, params: p.SubscribeParams) -> dict[str, Any]:
        topics: list[str] = []
        for name in params.topics:
            topic = p.canonical_topic(name)
            if topic is None:
                raise ControlError(p.ErrorCode.BAD_PARAMS, f"unknown topic {name!r} (topics: {', '.join(p.TOPIC_TYPES)})")
            if topic not in topics:
                topics.append(topic)
        if not topics:
            raise ControlError(p.ErrorCode.BAD_PARAMS, "subscribe needs at least one topic")
        for topic in topics:
            if topic not in self.topics:
                self.topics[topic] = _TopicState()
                self._initial.append(topic)
        if self._stream_task is None:
            self._stream_task = self._loop.create_task(self._stream_writer())
        return {"topics": list(self.topics), "max_rate_hz": self.server.rate_hz}

    def poke(self, topic: str) -> None:
        """The topic changed: send now if this client's throttle allows, else once it does.
        A pending timer sends whatever is latest when it fires, so changes coalesce."""
        st = self.topics.get(topic)
        if st is None or st.timer is not None or self.closed:
            return
        now = self._loop.time()
        interval = self.server.interval
        due = st.last_sent + interval
        if now >= due:
            self._send_topic(topic, now)
            return
        # Round up to a server-wide grid (a quarter of the interval) so throttled clients fire
        # together and share one snapshot build (cached per topic version): at most 4 builds
        # per interval whatever the number of clients, for at most interval/4 extra delay.
        step = interval / GRID_DIVISIONS
        when = math.ceil(due / step - 1e-9) * step
        st.timer = self._loop.call_at(when, self._fire, topic, when)

    def _fire(self, topic: str, when: float) -> None:
        st = self.topics.get(topic)
        if st is None:
            return
        st.timer = None
        self._send_topic(topic, when)

    def _send_topic(self, topic: str, sent_at: float) -> None:
        st = self.topics.get(topic)
        if st is None or self.closed:
            return
        data = self.server.snapshot(topic)
        if data is None:
            return
        st.last_sent = sent_at
        if topic in self._outbox:
            self.dropped += 1
        self._outbox[topic] = data
        self._outbox_ready.set()

    async def _stream_writer(self) -> None:
        try:
            while not self.closed:
                await self._outbox_ready.wait()
                self._outbox_ready.clear()
                while self._outbox:
                    topic = next(iter(self._outbox))
                    data = self._outbox.pop(topic)
                    self.writer.write(data)
                    # waits only while the kernel buffer is full, i.e. for a slow reader;
                    # meanwhile newer snapshots replace older ones in the outbox
                    await self.writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.close()

    # --- teardown -------------------------------------------------------------------------

    def expire_if_silent(self) -> None:
        """Hang up on a client that connected but never said hello."""
        if not self.hello_done and not self.closed:
            log.info("control.hello_timeout", uid=self.peer.uid, pid=self.peer.pid)
            self.close(abort=True)

    def close(self, *, abort: bool = False) -> None:
        """Hang up. A graceful close lets pending output (a refusal) reach the client; ``abort``
        is for shutdown and for clients that stopped reading, whose buffered data would
        otherwise keep the transport open forever."""
        if self.closed:
            return
        self.closed = True
        for st in self.topics.values():
            if st.timer is not None:
                st.timer.cancel()
        self.topics.clear()
        self._outbox.clear()
        if self._stream_task is not None and self._stream_task is not asyncio.current_task():
            self._stream_task.cancel()
        transport = self.writer.transport
        if abort or transport.get_write_buffer_size() > 0:
            transport.abort()
        else:
            self.writer.close()
        self.server.forget(self)


def _salvage_id(obj: Any) -> p.RequestId:
    """The id of a request that failed validation, when it has a usable one."""
    if isinstance(obj, dict):
        rid = obj.get("id")
        if isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool)):
            return rid
    return None
