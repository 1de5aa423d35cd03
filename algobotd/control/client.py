"""Async client of the control socket, shared by ``algobotd ctl`` and the TUI.

One connection carries both request/reply and the subscription stream: a reader task routes
replies to the waiting ``call`` by id and stream messages to the ``subscribe`` iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import msgspec

from algobotd.control import protocol as p
from algobotd.control.target import ControlError

# Replies can be large (equity_curve with a big limit); the server's own input limit is 64 KiB.
READ_LIMIT = 64 * 1024 * 1024
STREAM_BUFFER = 256  # stream messages held for a consumer that is behind; oldest dropped


class DaemonUnavailable(ControlError):
    """No daemon answers on the socket, or the connection broke (CLI exit status 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(p.ErrorCode.NOT_CONNECTED, message)


_CLOSED = object()


class ControlClient:
    def __init__(self, path: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[p.Reply]]] = {}
        self._stream: asyncio.Queue[p.StreamMessage | object] = asyncio.Queue()
        self._closed = False
        self._close_reason = "connection closed"
        self.hello: p.HelloResult | None = None
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def connect(
        cls, path: Path | str, *, client: str = "algobotd-ctl", timeout: float = 5.0,
        version: int = p.PROTOCOL_VERSION,
    ) -> ControlClient:
        """Connect and say hello. Raises ``DaemonUnavailable`` when nothing answers and
        ``ControlError`` when the daemon refuses (e.g. ``version_mismatch``)."""
        path = Path(path)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(path), limit=READ_LIMIT), timeout
            )
        except FileNotFoundError:
            raise DaemonUnavailable(f"no daemon socket at {path} (is algobotd running?)") from None
        except ConnectionRefusedError:
            raise DaemonUnavailable(f"nothing answers on {path} (stale socket: algobotd is not running)") from None
        except PermissionError:
            raise DaemonUnavailable(f"permission denied opening {path} (need the daemon's user or control group)") from None
        except (TimeoutError, OSError) as exc:
            raise DaemonUnavailable(f"cannot connect to {path}: {exc or 'timeout'}") from None
        self = cls(path, reader, writer)
        try:
            result = await self.call("hello", timeout=timeout, version=version, client=client)
        except BaseException:
            await self.close()
            raise
        self.hello = result
        return self

    @property
    def connected(self) -> bool:
        return not self._closed

    @property
    def may_control(self) -> bool:
        return bool(self.hello and self.hello.may_control)

    async def call(self, method: str, *, timeout: float | None = 30.0, **params: Any) -> Any:
        """Send one request and return its typed result (the struct in ``protocol.METHODS``).
        Error replies raise ``ControlError(code, message)``."""
        reply = await self.request(method, params, timeout=timeout)
        if reply.error is not None:
            raise ControlError(reply.error.code, reply.error.message)
        spec = p.METHODS.get(method)
        if spec is None:
            return reply.result
        try:
            return msgspec.convert(reply.result, spec.result)
        except msgspec.ValidationError as exc:
            raise ControlError(p.ErrorCode.INTERNAL_ERROR, f"unexpected {method} result: {exc}") from None

    async def request(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> p.Reply:
        """Low level: the raw reply (result untyped), error replies included."""
        if self._closed:
            raise DaemonUnavailable(self._close_reason)
        rid = next(self._ids)
        fut: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, fut)
        try:
            self._writer.write(p.request_line(rid, method, params))
            await self._writer.drain()
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise ControlError(p.ErrorCode.TIMEOUT, f"{method}: no reply within {timeout}s") from None
        except ConnectionError as exc:
            raise DaemonUnavailable(f"connection to {self.path} lost: {exc}") from None
        finally:
            self._pending.pop(rid, None)

    async def subscribe(self, topics: list[str] | tuple[str, ...]) -> AsyncGenerator[p.StreamMessage, None]:
        """Subscribe and yield stream messages (``topic``, typed ``data``) until the connection
        ends, which raises ``DaemonUnavailable``."""
        await self.call("subscribe", topics=list(topics))
        while True:
            item = await self._stream.get()
            if item is _CLOSED:
                self._stream.put_nowait(_CLOSED)  # let other iterators see the end too
                raise DaemonUnavailable(self._close_reason)
            assert isinstance(item, p.StreamMessage)
            yield item

    async def close(self) -> None:
        self._shutdown("closed by client")
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals ------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = f"daemon closed the connection ({self.path})"
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    msg = p.decode_incoming(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # a newer daemon's extra message kind: ignore, don't die
                if isinstance(msg, p.StreamMessage):
                    if self._stream.qsize() >= STREAM_BUFFER:
                        self._stream.get_nowait()
                    self._stream.put_nowait(msg)
                    continue
                waiting = self._pending.get(msg.id) if isinstance(msg.id, int) else None
                if waiting is not None and not waiting[1].done():
                    waiting[1].set_result(msg)
                elif msg.error is not None and msg.id is None:
                    # unsolicited refusal (too_many_clients, version_mismatch, line_too_long)
                    reason = f"{msg.error.code}: {msg.error.message}"
                    for _, fut in self._pending.values():
                        if not fut.done():
                            fut.set_result(msg)
        except (ConnectionError, ValueError, asyncio.IncompleteReadError) as exc:
            reason = f"connection to {self.path} lost: {exc}"
        finally:
            self._shutdown(reason)

    def _shutdown(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DaemonUnavailable(reason))
        self._stream.put_nowait(_CLOSED)
