"""A bare-bones line client for poking the server with arbitrary bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from algobotd.control.protocol import PROTOCOL_VERSION


class RawConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path, hello: bool = True) -> RawConn:
        r, w = await asyncio.open_unix_connection(str(path), limit=64 * 1024 * 1024)
        conn = cls(r, w)
        if hello:
            reply = await conn.ask({"id": 0, "method": "hello", "params": {"version": PROTOCOL_VERSION}})
            assert "result" in reply, reply
        return conn

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        assert line, "server closed the connection"
        return json.loads(line)

    async def ask(self, obj: dict[str, Any] | bytes, timeout: float = 5.0) -> dict[str, Any]:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        await self.send(data + b"\n")
        return await self.recv(timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
