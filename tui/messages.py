"""Messages the daemon link posts to the app (the app never touches the socket directly)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from algobotd.control.protocol import HelloResult


class LinkUp(Message):
    """Connected and subscribed."""

    def __init__(self, hello: HelloResult, path: str) -> None:
        super().__init__()
        self.hello = hello
        self.path = path


class LinkDown(Message):
    """Not connected (never was, lost it, or refused); the link retries after ``retry_in`` s."""

    def __init__(self, reason: str, retry_in: float, was_connected: bool) -> None:
        super().__init__()
        self.reason = reason
        self.retry_in = retry_in
        self.was_connected = was_connected


class TopicUpdate(Message):
    """A snapshot of one topic (typed data from ``algobotd.control.protocol``)."""

    def __init__(self, topic: str, data: Any) -> None:
        super().__init__()
        self.topic = topic
        self.data = data
