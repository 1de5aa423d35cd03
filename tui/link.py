"""The dashboard's connection to the daemon: connect, subscribe, stream, reconnect with backoff.

Runs as an app worker; everything it learns reaches the UI as messages, so widgets update in
place from message handlers and never wait on the socket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.message_pump import MessagePump

from algobotd.control import protocol as p
from algobotd.control.client import ControlClient, DaemonUnavailable
from algobotd.control.target import ControlError
from tui.messages import LinkDown, LinkUp, TopicUpdate


class DaemonLink:
    def __init__(self, sink: MessagePump, path: Path, *, backoff: tuple[float, float] = (0.5, 5.0)) -> None:
        self.sink = sink
        self.path = path
        self.backoff_min, self.backoff_max = backoff
        self.client: ControlClient | None = None

    async def run(self) -> None:
        """Forever: connect, stream snapshots, and on any failure wait and try again.
        Quitting the app cancels this; the daemon is never told to stop."""
        delay = self.backoff_min
        was_connected = False
        while True:
            try:
                client = await ControlClient.connect(self.path, client="algobot-tui")
            except ControlError as exc:
                self.sink.post_message(LinkDown(exc.message, delay, was_connected))
                await asyncio.sleep(delay)
                # a refusal (version mismatch, too many clients) will not fix itself quickly
                delay = min(delay * 2, self.backoff_max) if isinstance(exc, DaemonUnavailable) else self.backoff_max
                continue
            self.client = client
            delay = self.backoff_min
            was_connected = True
            assert client.hello is not None
            self.sink.post_message(LinkUp(client.hello, str(self.path)))
            reason = "connection closed"
            try:
                async for msg in client.subscribe(list(p.TOPIC_TYPES)):
                    self.sink.post_message(TopicUpdate(msg.topic, msg.data))
            except ControlError as exc:
                reason = exc.message
            finally:
                self.client = None
                await client.close()
            self.sink.post_message(LinkDown(reason, delay, was_connected))
            await asyncio.sleep(delay)

    async def call(self, method: str, **params: Any) -> Any:
        client = self.client
        if client is None or not client.connected:
            raise DaemonUnavailable(f"not connected to {self.path}")
        return await client.call(method, **params)
