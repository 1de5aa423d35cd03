"""Fuzz: thousands of malformed, oversized and random lines. Every non-blank line gets exactly
one well-formed reply, the connection stays usable, the server keeps serving, and the
target's state never changes (control methods are denied to the fuzzing peer)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ctl_server_thread import ServerThread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algobotd.control import protocol as p

ERROR_CODES = {
    v for k, v in vars(p.ErrorCode).items() if not k.startswith("_")
} | {"invalid_transition"}


class LineClient:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.connect()

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(self.path))
        self.file = self.sock.makefile("rb")
        assert "result" in self.ask(b'{"id":0,"method":"hello","params":{"version":1}}')

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def ask(self, line: bytes) -> dict[str, Any]:
        self.sock.sendall(line + b"\n")
        while True:
            raw = self.file.readline()
            assert raw.endswith(b"\n"), f"connection dropped after {line[:80]!r}"
            msg = json.loads(raw)
            if "topic" not in msg:  # skip snapshots of a subscribe the fuzzer happened to make
                return msg


@pytest.fixture(scope="module")
def fuzz_env() -> Iterator[tuple[ServerThread, LineClient]]:
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="abf-", dir="/tmp"))
    srv = ServerThread(d / "ctl.sock", authorize=lambda peer: False)
    client = LineClient(srv.path)
    yield srv, client
    client.close()
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans(), st.floats(allow_nan=False)),
        "method": st.one_of(st.sampled_from(sorted(p.METHODS)), st.text(max_size=12), st.integers()),
        "params": st.one_of(json_values, st.dictionaries(
            st.sampled_from(["reason", "confirm", "limit", "topics", "version", "x"]), json_values, max_size=3)),
        "extra": json_values,
    },
).map(lambda d: json.dumps(d).encode())
garbage = st.binary(max_size=2048)
text_lines = st.text(max_size=500).map(lambda s: s.encode("utf-8", "surrogatepass"))
json_lines = json_values.map(lambda v: json.dumps(v).encode())
truncated = request_like.flatmap(lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda n: b[:n]))
oversized = st.tuples(st.integers(p.MAX_LINE_BYTES + 1, 3 * p.MAX_LINE_BYTES), st.sampled_from([b"x", b"[", b'{"a":'])).map(
    lambda t: (t[1] * (t[0] // len(t[1]) + 1))[: t[0]]
)
lines = st.one_of(request_like, request_like, garbage, text_lines, json_lines, truncated)


def _check_reply(reply: dict[str, Any]) -> None:
    assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
    if "error" in reply:
        assert set(reply["error"]) == {"code", "message"}
        assert reply["error"]["code"] in ERROR_CODES, reply
        assert reply["error"]["message"]


def _roundtrip(env: tuple[ServerThread, LineClient], line: bytes) -> None:
    srv, client = env
    line = line.replace(b"\n", b" ")
    if not line.strip():
        return  # blank lines are keep-alives: no reply
    reply = client.ask(line)
    _check_reply(reply)
    if reply.get("error", {}).get("code") == "version_mismatch":
        client.close()  # refused and hung up, by design
        client.connect()
    if "error" in reply and reply["error"]["code"] in ("permission_denied",):
        assert reply["id"] is None or isinstance(reply["id"], (int, str))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(line=lines)
def test_fuzz_lines(fuzz_env: tuple[ServerThread, LineClient], line: bytes) -> None:
    before = fuzz_env[0].target.fingerprint()
    _roundtrip(fuzz_env, line)
    assert fuzz_env[0].target.fingerprint() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(line=oversized)
def test_fuzz_oversized(fuzz_env: tuple[ServerThread, LineClient], line: bytes) -> None:
    before = fuzz_env[0].target.fingerprint()
    reply = fuzz_env[1].ask(line)
    assert reply["error"]["code"] == "line_too_long"
    assert fuzz_env[0].target.fingerprint() == before


def test_still_serving_after_fuzz(fuzz_env: tuple[ServerThread, LineClient]) -> None:
    srv, client = fuzz_env
    reply = client.ask(b'{"id":99,"method":"status"}')
    assert reply["id"] == 99 and reply["result"]["trading_state"] == "ACTIVE"
    fresh = LineClient(srv.path)
    assert fresh.ask(b'{"id":1,"method":"positions"}')["id"] == 1
    fresh.close()
    assert srv.target.control_calls == []
    assert srv.thread.is_alive()
