"""Control protocol v1: the one definition of every message the daemon and its clients exchange.

Newline-delimited JSON over a Unix stream socket. Both the server (``algobotd.control.server``)
and the clients (``algobotd.control.client``, the CLI and the TUI) import these types, so a
field renamed here is renamed everywhere.

Wire format::

    -> {"id":1,"method":"halt","params":{"reason":"..."}}
    <- {"id":1,"result":{...}}
    <- {"id":1,"error":{"code":"permission_denied","message":"..."}}
    <- {"topic":"status","data":{...}}            (after ``subscribe``)

The first request on a connection must be ``hello`` with ``{"version": PROTOCOL_VERSION}``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from algobotd.control.target import TOPICS

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 * 1024  # a request line longer than this (newline excluded) is refused
MAX_CLIENTS = 32
MAX_RATE_HZ = 4.0  # snapshots per second per topic per client
STREAM_EQUITY_POINTS = 600  # equity snapshots on the stream carry this many points (a plot's worth)
STREAM_EVENTS = 100

# Subscribe-able topics. ``equity_curve`` is accepted as an alias of ``equity`` (the method's name).
TOPIC_ALIASES = {"equity_curve": "equity"}


class ErrorCode:
    """Error codes a client may branch on. Target errors (``ControlError``) pass their own code."""

    PARSE_ERROR = "parse_error"  # not valid JSON / not UTF-8
    INVALID_REQUEST = "invalid_request"  # JSON, but not a request object
    LINE_TOO_LONG = "line_too_long"
    UNKNOWN_METHOD = "unknown_method"
    BAD_PARAMS = "bad_params"
    HELLO_REQUIRED = "hello_required"
    VERSION_MISMATCH = "version_mismatch"
    PERMISSION_DENIED = "permission_denied"
    CONFIRMATION_REQUIRED = "confirmation_required"
    TOO_MANY_CLIENTS = "too_many_clients"
    INTERNAL_ERROR = "internal_error"
    SOCKET_IN_USE = "socket_in_use"
    # client-side only: never on the wire
    NOT_CONNECTED = "not_connected"
    TIMEOUT = "timeout"


# --- envelopes ------------------------------------------------------------------------------

RequestId = int | str | None


class Request(msgspec.Struct, forbid_unknown_fields=True):
    method: str
    id: RequestId = None
    params: dict[str, Any] = {}


class ErrorBody(msgspec.Struct):
    code: str
    message: str


class Reply(msgspec.Struct):
    """A decoded reply: either ``result`` or ``error`` is set; ``ok`` tells which.
    (The server encodes ``ResultReply`` / ``ErrorReply`` so only one key is on the wire.)"""

    id: RequestId = None
    result: Any = None
    error: ErrorBody | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ResultReply(msgspec.Struct):
    id: RequestId
    result: Any


class ErrorReply(msgspec.Struct):
    id: RequestId
    error: ErrorBody


ServerReply = ResultReply | ErrorReply


class StreamMessage(msgspec.Struct):
    topic: str
    data: Any


# --- params (one struct per method that takes any; unknown keys are bad_params) -------------


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    pass


class HelloParams(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    client: str = ""


class ReasonParams(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""


class ConfirmParams(msgspec.Struct, forbid_unknown_fields=True):
    confirm: str = ""


class LimitParams(msgspec.Struct, forbid_unknown_fields=True):
    limit: int | None = None


class IngestParams(msgspec.Struct, forbid_unknown_fields=True):
    """Social JSON lines (algobotd/altdata/social.py): each a JSON string or an object."""

    lines: list[Any] = []


class SubscribeParams(msgspec.Struct, forbid_unknown_fields=True):
    topics: list[str]


# --- results --------------------------------------------------------------------------------
# ``omit_defaults`` keeps optional extras off the wire when the engine does not provide them,
# so ``algobotd ctl status --json`` prints the same object the daemon sent.


class HelloResult(msgspec.Struct):
    protocol: int
    server: str
    pid: int
    peer_uid: int
    may_control: bool  # whether this peer may call state-changing methods
    topics: list[str]


class Status(msgspec.Struct, omit_defaults=True):
    mode: str  # "sim" | "paper" | "live"
    trading_state: str  # TradingState value
    trading_state_reason: str
    equity: float
    cash: float
    day_pnl: float
    drawdown: float  # fraction below the high-water mark, >= 0
    positions: int
    open_orders: int
    last_bar_ts: str | None
    feed_connected: bool
    broker_connected: bool
    model_id: str | None
    # optional extras the dashboard shows when the engine provides them
    day_pnl_pct: float | None = None  # fraction of the day's starting equity
    drawdown_limit: float | None = None  # fraction at which the drawdown breaker trips
    gross_exposure: float | None = None
    net_exposure: float | None = None
    feed_lag_s: float | None = None  # engine clock minus the last bar's close (sim-clock aware)
    bar_seconds: int | None = None
    trading_state_since: str | None = None
    trading_state_by: str | None = None
    # operations (algobotd/ops/runtime.py): scheduler jobs (next run, last result), alert
    # outbox backlog, model monitor (IC, drift, retrains), systemd, last SIGHUP reload
    ops: dict[str, Any] | None = None
    # alternative data (algobotd/altdata/hub.py): scorer, per-source freshness, errors, drops
    altdata: dict[str, Any] | None = None
    # the serving model (algobotd/models/ensemble.py status()): weights per base model, recent IC,
    # mean confidence, training / loading state, unavailable models, OOS figures
    model: dict[str, Any] | None = None


class PositionRow(msgspec.Struct, omit_defaults=True):
    symbol: str
    qty: int
    avg_cost: float
    # None while the symbol has no valid price (stale feed): shown as "-", never as NaN
    last: float | None
    market_value: float | None
    unrealized_pnl: float | None
    soft_stop: float | None = None
    hard_stop: float | None = None


class OrderRow(msgspec.Struct, omit_defaults=True):
    client_order_id: str
    symbol: str
    side: str
    qty: int
    filled_qty: int
    type: str
    status: str
    limit_price: float | None = None
    ts: str | None = None


class PredictionRow(msgspec.Struct, omit_defaults=True):
    symbol: str
    prediction: float
    confidence: float
    weights: dict[str, float] = {}


class Breaker(msgspec.Struct, omit_defaults=True):
    name: str
    value: float | None
    threshold: float | None
    tripped: bool


class Risk(msgspec.Struct, omit_defaults=True):
    trading_state: str
    reason: str
    breakers: list[Breaker]
    since: str | None = None
    by: str | None = None


class EquityPoint(msgspec.Struct, omit_defaults=True):
    ts: str
    equity: float
    cash: float
    drawdown: float


class Event(msgspec.Struct, omit_defaults=True):
    ts: str
    kind: str
    message: str


# --- method table ---------------------------------------------------------------------------


class MethodSpec(msgspec.Struct, frozen=True):
    params: type
    result: Any  # type of the result, used to validate what the target returns
    control: bool  # state-changing: needs an authorized peer


READ_METHODS: dict[str, MethodSpec] = {
    "status": MethodSpec(NoParams, Status, False),
    "positions": MethodSpec(NoParams, list[PositionRow], False),
    "orders": MethodSpec(NoParams, list[OrderRow], False),
    "predictions": MethodSpec(NoParams, list[PredictionRow], False),
    "risk": MethodSpec(NoParams, Risk, False),
    "equity_curve": MethodSpec(LimitParams, list[EquityPoint], False),
    "events": MethodSpec(LimitParams, list[Event], False),
}
CONTROL_METHODS: dict[str, MethodSpec] = {
    "halt": MethodSpec(ReasonParams, dict[str, Any], True),
    "reduce": MethodSpec(ReasonParams, dict[str, Any], True),
    "resume": MethodSpec(ConfirmParams, dict[str, Any], True),
    "flatten": MethodSpec(ConfirmParams, dict[str, Any], True),
    "cancel_all": MethodSpec(NoParams, dict[str, Any], True),
    "retrain": MethodSpec(NoParams, dict[str, Any], True),
    "ingest": MethodSpec(IngestParams, dict[str, Any], True),  # social sentiment lines (issue 10)
}
SESSION_METHODS: dict[str, MethodSpec] = {
    "hello": MethodSpec(HelloParams, HelloResult, False),
    "subscribe": MethodSpec(SubscribeParams, dict[str, Any], False),
}
METHODS: dict[str, MethodSpec] = {**SESSION_METHODS, **READ_METHODS, **CONTROL_METHODS}

# What ``resume`` / ``flatten`` must be sent as ``confirm`` (a typo must never resume trading).
CONFIRM_WORDS = {"resume": "RESUME", "flatten": "FLATTEN"}

# Topic -> the type of the ``data`` of its stream messages (same as the matching method's result).
TOPIC_TYPES: dict[str, Any] = {
    "status": Status,
    "positions": list[PositionRow],
    "orders": list[OrderRow],
    "predictions": list[PredictionRow],
    "risk": Risk,
    "equity": list[EquityPoint],
    "events": list[Event],
}
assert set(TOPIC_TYPES) == set(TOPICS), "protocol topics must match algobotd.control.target.TOPICS"


def canonical_topic(name: str) -> str | None:
    name = TOPIC_ALIASES.get(name, name)
    return name if name in TOPIC_TYPES else None


# --- codec ----------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_reply_decoder = msgspec.json.Decoder(Reply)


def encode_line(msg: Any) -> bytes:
    """One message as one wire line (newline included)."""
    buf = bytearray()
    _encoder.encode_into(msg, buf)
    buf += b"\n"
    return bytes(buf)


def request_line(id: RequestId, method: str, params: dict[str, Any] | None = None) -> bytes:
    return encode_line(Request(method=method, id=id, params=params or {}))


def error_reply(id: RequestId, code: str, message: str) -> ErrorReply:
    return ErrorReply(id=id, error=ErrorBody(code, message))


def decode_incoming(line: bytes) -> Reply | StreamMessage:
    """Client side: a line from the server is either a reply or a stream message."""
    obj = msgspec.json.decode(line)
    if isinstance(obj, dict) and "topic" in obj:
        topic = str(obj.get("topic"))
        return StreamMessage(topic, msgspec.convert(obj.get("data"), TOPIC_TYPES.get(topic, Any)))
    return msgspec.convert(obj, Reply)


def to_builtins(obj: Any) -> Any:
    """Typed structs -> plain JSON-able data (for printing)."""
    return msgspec.to_builtins(obj)
