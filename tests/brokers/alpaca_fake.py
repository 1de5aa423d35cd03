"""A protocol-level fake Alpaca on 127.0.0.1 that the real alpaca-py clients talk to.

* REST (``ThreadingHTTPServer``): trading ``/v2/orders``, ``/v2/positions``, ``/v2/account``,
  ``/v2/account/activities/FILL``, ``/v2/assets/{symbol}``; market data ``/v2/stocks/bars``
  and ``/v2/stocks/bars/latest`` (403 for ``feed=sip`` unless ``sip_allowed``).
* Websockets (one ``websockets`` server on its own loop and thread, routed by path):
  ``/stream`` is the trading stream (JSON: authenticate, listen, trade_updates) and
  ``/v2/iex`` / ``/v2/sip`` the market-data stream (msgpack; timestamps are msgpack
  ``Timestamp`` ext objects, as alpaca-py expects).

The fake runs on its own threads like a remote venue; tests drive it with thread-safe
methods: ``fill``, ``external_trade``, ``push_bars``, ``drop_streams`` / ``refuse_streams``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import msgpack
import pytest
from websockets.asyncio.server import ServerConnection, serve


def iso(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(s: str) -> int:
    return int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1e9)


class FakeAlpaca:
    def __init__(self, key: str = "PKFAKE", secret: str = "fake-secret", cash: float = 100_000.0) -> None:
        self.key, self.secret = key, secret
        self.lock = threading.RLock()
        self.orders: dict[str, dict[str, Any]] = {}  # id -> order json
        self.by_cid: dict[str, str] = {}
        self.positions: dict[str, list[float]] = {}  # symbol -> [qty, avg]
        self.activities: list[dict[str, Any]] = []
        self.cash = cash
        self.prices: dict[str, float] = {}
        self.auto_fill = True  # market orders fill right after acceptance
        self.announce_new = True  # send the "new" trade update for every accepted order
        self.sip_allowed = False
        # the next market-data connection is refused at authentication with this message; alpaca-py
        # 0.44 gives up for good on "insufficient subscription" (its loop returns), at any reconnect
        self.data_auth_error: str | None = None
        self.news_auth_error: str | None = None  # the same for the next news-stream connection
        self.history: dict[str, list[dict[str, Any]]] = {}  # symbol -> REST bars (t as iso)
        self.refusing = False
        self.subscriptions: list[dict[str, Any]] = []  # every data subscribe message received
        # alternative data (issue 10): /v1beta1/news (REST + stream), /v1beta1/options/snapshots
        self.news: list[dict[str, Any]] = []  # REST news articles (created_at as iso)
        self.option_snapshots: dict[str, dict[str, dict[str, Any]]] = {}  # underlying -> contract -> snapshot
        self.fail_paths: set[str] = set()  # REST path prefixes that answer 500 (a failing source)
        self.rest_calls: list[str] = []  # REST paths requested, in order
        self._news_ws: set[ServerConnection] = set()
        self.trading_auths = 0
        self.posted = 0
        self._trading: set[ServerConnection] = set()
        self._data: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._ws_ready = threading.Event()
        self._stop_ws: asyncio.Event | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeAlpaca:
        handler = type("H", (_Handler,), {"fake": self})
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="fake-alpaca-rest", daemon=True).start()
        threading.Thread(target=self._loop.run_forever, name="fake-alpaca-ws", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._serve_ws(), self._loop)
        if not self._ws_ready.wait(5):
            raise RuntimeError("fake websocket server did not start")
        return self

    async def _serve_ws(self) -> None:
        self._stop_ws = asyncio.Event()
        async with serve(self._ws_handler, "127.0.0.1", 0, max_size=2**22) as server:
            self.ws_port = server.sockets[0].getsockname()[1]
            self._ws_ready.set()
            await self._stop_ws.wait()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        if self._stop_ws is not None:
            self._loop.call_soon_threadsafe(self._stop_ws.set)
        time.sleep(0.05)
        self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def trading_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/stream"

    def data_stream_url(self, feed: str = "iex") -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v2/{feed}"

    def config_overrides(self) -> list[str]:
        return [f'alpaca.rest_url="{self.rest_url}"', f'alpaca.data_url="{self.rest_url}"',
                f'alpaca.trading_stream_url="{self.trading_stream_url}"',
                f'alpaca.data_stream_url="{self.data_stream_url()}"']

    def _run(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    # --- websockets ---------------------------------------------------------------------------

    async def _ws_handler(self, ws: ServerConnection) -> None:
        if self.refusing:
            await ws.close(1013, "try again later")
            return
        path = ws.request.path if ws.request else ""
        if path == "/stream":
            await self._trading_session(ws)
        elif path in ("/v2/iex", "/v2/sip"):
            await self._data_session(ws, path.rsplit("/", 1)[1])
        elif path == "/v1beta1/news":
            await self._news_session(ws)
        else:
            await ws.close(1008, "unknown path")

    async def _trading_session(self, ws: ServerConnection) -> None:
        msg = json.loads(await ws.recv())
        data = msg.get("data", {})
        ok = msg.get("action") == "authenticate" and data.get("key_id") == self.key and data.get("secret_key") == self.secret
        status = "authorized" if ok else "unauthorized"
        await ws.send(json.dumps({"stream": "authorization", "data": {"action": "authenticate", "status": status}}))
        if not ok:
            await ws.close()
            return
        self.trading_auths += 1
        async for raw in ws:
            m = json.loads(raw)
            if m.get("action") == "listen":
                await ws.send(json.dumps({"stream": "listening", "data": {"streams": m["data"]["streams"]}}))
                self._trading.add(ws)
        self._trading.discard(ws)

    async def _msgpack_auth(self, ws: ServerConnection, refuse: str | None) -> bool:
        """The market-data handshake (bars and news): connected, keys, then ``refuse`` (an error
        such as "insufficient subscription") or authenticated."""
        await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        msg = msgpack.unpackb(await ws.recv())
        if msg.get("key") != self.key or msg.get("secret") != self.secret:
            refuse = "auth failed"
        if refuse is not None:
            await ws.send(msgpack.packb([{"T": "error", "code": 402 if refuse == "auth failed" else 409,
                                          "msg": refuse}]))
            await ws.close()
            return False
        await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
        return True

    async def _data_session(self, ws: ServerConnection, feed: str) -> None:
        refuse, self.data_auth_error = self.data_auth_error, None
        if feed == "sip" and not self.sip_allowed:
            refuse = "insufficient subscription"
        if not await self._msgpack_auth(ws, refuse):
            return
        try:
            async for raw in ws:
                m = msgpack.unpackb(raw)
                if m.get("action") == "subscribe":
                    self.subscriptions.append(m)
                    ack = {"T": "subscription", **{k: m.get(k, []) for k in ("trades", "quotes", "bars")}}
                    await ws.send(msgpack.packb([ack]))
                    self._data.add(ws)
        finally:
            self._data.discard(ws)

    async def _news_session(self, ws: ServerConnection) -> None:
        """The news stream: msgpack like the data stream, ``T: "n"`` messages."""
        refuse, self.news_auth_error = self.news_auth_error, None
        if not await self._msgpack_auth(ws, refuse):
            return
        try:
            async for raw in ws:
                m = msgpack.unpackb(raw)
                if m.get("action") == "subscribe":
                    self.subscriptions.append(m)
                    await ws.send(msgpack.packb([{"T": "subscription", "news": m.get("news", [])}]))
                    self._news_ws.add(ws)
        finally:
            self._news_ws.discard(ws)

    def push_news(self, items: list[dict[str, Any]]) -> None:
        """``items``: dicts with id, headline, summary, symbols, source, created_at (ns)."""
        frame = msgpack.packb([{"T": "n", "id": n["id"], "headline": n["headline"], "summary": n.get("summary", ""),
                                "author": "fake", "content": "", "url": "", "symbols": n["symbols"],
                                "source": n.get("source", "benzinga"),
                                "created_at": msgpack.Timestamp.from_unix_nano(n["created_at"]),
                                "updated_at": msgpack.Timestamp.from_unix_nano(n["created_at"])} for n in items],
                              datetime=False)

        async def go() -> None:
            for ws in list(self._news_ws):
                await ws.send(frame)

        self._run(go())

    def news_clients(self) -> int:
        return len(self._news_ws)

    async def _broadcast_trading(self, msg: dict[str, Any]) -> None:
        text = json.dumps(msg)
        for ws in list(self._trading):
            try:
                await ws.send(text)
            except Exception:
                self._trading.discard(ws)

    async def _broadcast_data(self, payload: bytes) -> None:
        for ws in list(self._data):
            try:
                await ws.send(payload)
            except Exception:
                self._data.discard(ws)

    def push_bars(self, bars: list[dict[str, Any]]) -> None:
        """``bars``: dicts with S, t (ns), o, h, l, c, v; sent as one msgpack frame."""
        self._run(self._broadcast_data(self.encode_bars(bars)))

    @staticmethod
    def encode_bars(bars: list[dict[str, Any]]) -> bytes:
        """One market-data frame of bars (pre-encode frames to time only the client side)."""
        return msgpack.packb([{"T": "b", "S": b["S"], "o": b["o"], "h": b["h"], "l": b["l"], "c": b["c"],
                               "v": b["v"], "t": msgpack.Timestamp.from_unix_nano(b["t"]), "n": 1, "vw": b["c"]}
                              for b in bars])

    def push_frames(self, frames: list[bytes]) -> concurrent.futures.Future[None]:
        """Send frames from the fake's thread; returns at once (the caller times the receiving side)."""
        async def go() -> None:
            for f in frames:
                await self._broadcast_data(f)
        return asyncio.run_coroutine_threadsafe(go(), self._loop)

    @staticmethod
    def encode_quotes(quotes: list[tuple[str, int, float, float]]) -> bytes:
        return msgpack.packb([{"T": "q", "S": s, "bx": "V", "bp": b, "bs": 1, "ax": "V", "ap": a, "as": 1,
                               "t": msgpack.Timestamp.from_unix_nano(t), "c": ["R"], "z": "A"} for s, t, b, a in quotes])

    def push_quote(self, symbol: str, ts: int, bid: float, ask: float) -> None:
        self._run(self._broadcast_data(self.encode_quotes([(symbol, ts, bid, ask)])))

    @property
    def stream_clients(self) -> tuple[int, int]:
        return len(self._trading), len(self._data)

    def drop_streams(self, refuse: bool = True) -> None:
        """Close every websocket (as a network failure would); optionally refuse new ones."""
        self.refusing = refuse

        async def close_all() -> None:
            # abort, not close: a network failure has no closing handshake (and the client's
            # loop may be the caller's, blocked until this returns)
            for ws in list(self._trading) + list(self._data) + list(self._news_ws):
                ws.transport.abort()
            self._trading.clear()
            self._data.clear()
            self._news_ws.clear()
        self._run(close_all())

    # --- orders -------------------------------------------------------------------------------

    def _order_json(self, symbol: str, side: str, qty: int, typ: str, tif: str, cid: str,
                    limit: float | None) -> dict[str, Any]:
        now = iso()
        return {"id": str(uuid.uuid4()), "client_order_id": cid, "created_at": now, "updated_at": now,
                "submitted_at": now, "asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)), "symbol": symbol,
                "asset_class": "us_equity", "qty": str(qty), "filled_qty": "0", "filled_avg_price": None,
                "order_class": "", "order_type": typ, "type": typ, "side": side, "time_in_force": tif,
                "limit_price": None if limit is None else str(limit), "stop_price": None, "status": "accepted",
                "extended_hours": False}

    def place(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.posted += 1
            cid = body.get("client_order_id") or str(uuid.uuid4())
            if cid in self.by_cid:
                return 422, {"code": 40010001, "message": "client_order_id must be unique"}
            o = self._order_json(body["symbol"], body["side"], int(float(body["qty"])), body["type"],
                                 body["time_in_force"], cid, body.get("limit_price"))
            self.orders[o["id"]] = o
            self.by_cid[cid] = o["id"]
        self._loop.call_soon_threadsafe(asyncio.ensure_future, self._after_place(o["id"]))
        return 200, dict(o)

    async def _after_place(self, oid: str) -> None:
        o = self.orders[oid]
        if self.announce_new:
            await self._broadcast_trading(self._update("new", o))
        if self.auto_fill and o["type"] == "market":
            self._fill_locked(oid, int(o["qty"]), self.prices.get(o["symbol"], 100.0))

    def _update(self, event: str, o: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"stream": "trade_updates", "data": {"event": event, "order": dict(o), "timestamp": iso(), **extra}}

    def fill(self, client_order_id: str, qty: int | None = None, price: float | None = None) -> None:
        """Execute (part of) an order now, as the venue would; thread-safe."""
        oid = self.by_cid[client_order_id]
        o = self.orders[oid]
        left = int(o["qty"]) - int(o["filled_qty"])

        async def go() -> None:
            self._fill_locked(oid, qty or left, price or self.prices.get(o["symbol"], 100.0))
        self._run(go())

    def _fill_locked(self, oid: str, qty: int, price: float) -> None:
        with self.lock:
            o = self.orders[oid]
            if o["status"] not in ("accepted", "new", "partially_filled"):
                return
            done = int(o["filled_qty"]) + qty
            prev = float(o["filled_avg_price"] or 0.0) * int(o["filled_qty"])
            o["filled_qty"] = str(done)
            o["filled_avg_price"] = str((prev + qty * price) / done)
            full = done >= int(o["qty"])
            o["status"] = "filled" if full else "partially_filled"
            o["updated_at"] = iso()
            sign = 1 if o["side"] == "buy" else -1
            pos = self.positions.setdefault(o["symbol"], [0.0, 0.0])
            q0, q1 = pos[0], pos[0] + sign * qty
            pos[1] = price if q0 == 0 or (q0 > 0) != (q1 > 0) else (pos[1] if abs(q1) < abs(q0) else (q0 * pos[1] + sign * qty * price) / q1)
            pos[0] = q1
            if q1 == 0:
                del self.positions[o["symbol"]]
            self.cash -= sign * qty * price
            exec_id = str(uuid.uuid4())
            now = time.time_ns()
            self.activities.append({
                "id": f"{iso(now)}::{exec_id}", "activity_type": "FILL", "transaction_time": iso(now),
                "type": "fill" if full else "partial_fill", "price": str(price), "qty": str(qty), "side": o["side"],
                "symbol": o["symbol"], "leaves_qty": str(int(o["qty"]) - done), "order_id": o["id"],
                "cum_qty": str(done), "order_status": o["status"]})
            msg = self._update("fill" if full else "partial_fill", o, execution_id=exec_id, price=str(price),
                               qty=str(qty), position_qty=str(q1))
        asyncio.ensure_future(self._broadcast_trading(msg))

    def cancel(self, oid: str) -> int:
        with self.lock:
            o = self.orders.get(oid)
            if o is None:
                return 404
            if o["status"] not in ("accepted", "new", "partially_filled"):
                return 422
            o["status"] = "canceled"
            o["canceled_at"] = o["updated_at"] = iso()
        self._loop.call_soon_threadsafe(asyncio.ensure_future, self._broadcast_trading(self._update("canceled", o)))
        return 204

    def external_trade(self, symbol: str, side: str, qty: int, price: float, fill: bool = True) -> str:
        """An order placed outside the daemon (web UI, another program) on the same account."""
        _, o = self.place({"symbol": symbol, "side": side, "qty": qty, "type": "limit" if not fill else "market",
                           "time_in_force": "day", "limit_price": None if fill else price,
                           "client_order_id": f"web-{uuid.uuid4().hex[:8]}"})
        if fill and not self.auto_fill:
            self.fill(o["client_order_id"], qty, price)
        return o["client_order_id"]

    # --- REST views ---------------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        with self.lock:
            mv = sum(q * self.prices.get(s, a) for s, (q, a) in self.positions.items())
            return {"id": "5f2b3c4d-0000-4000-8000-000000000001", "account_number": "PA0000FAKE", "status": "ACTIVE",
                    "currency": "USD", "cash": str(self.cash), "buying_power": str(2 * self.cash),
                    "equity": str(self.cash + mv), "portfolio_value": str(self.cash + mv),
                    "pattern_day_trader": False, "trading_blocked": False, "account_blocked": False}

    def position_list(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for s, (q, a) in self.positions.items():
                px = self.prices.get(s, a)
                out.append({"asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, s)), "symbol": s, "exchange": "NASDAQ",
                            "asset_class": "us_equity", "avg_entry_price": str(a), "qty": str(int(q)),
                            "side": "long" if q > 0 else "short", "market_value": str(q * px),
                            "cost_basis": str(q * a), "current_price": str(px), "qty_available": str(int(q))})
            return out


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAlpaca
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        f = self.fake
        if self.headers.get("APCA-API-KEY-ID") == f.key and self.headers.get("APCA-API-SECRET-KEY") == f.secret:
            return True
        self._send(401, {"code": 40110000, "message": "request is not authorized"})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        f, u = self.fake, urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        p = u.path
        if p == "/v2/account":
            return self._send(200, f.account())
        if p == "/v2/positions":
            return self._send(200, f.position_list())
        if p == "/v2/orders":
            with f.lock:
                rows = list(f.orders.values())
            status = q.get("status", "open")
            if status == "open":
                rows = [o for o in rows if o["status"] in ("accepted", "new", "partially_filled")]
            elif status == "closed":
                rows = [o for o in rows if o["status"] not in ("accepted", "new", "partially_filled")]
            if "after" in q:
                rows = [o for o in rows if parse_iso(o["submitted_at"]) > parse_iso(q["after"])]
            return self._send(200, rows[: int(q.get("limit", 500))])
        if p == "/v2/orders:by_client_order_id":
            oid = f.by_cid.get(q.get("client_order_id", ""))
            return self._send(200, f.orders[oid]) if oid else self._send(404, {"code": 40410000, "message": "order not found"})
        if p == "/v2/account/activities/FILL":
            with f.lock:
                rows = list(f.activities)
            if "after" in q:
                rows = [a for a in rows if parse_iso(a["transaction_time"]) > parse_iso(q["after"])]
            return self._send(200, rows)
        if p.startswith("/v2/assets/"):
            sym = p.rsplit("/", 1)[1]
            if sym not in f.prices:
                return self._send(404, {"code": 40410000, "message": "asset not found"})
            return self._send(200, {"id": str(uuid.uuid5(uuid.NAMESPACE_OID, sym)), "class": "us_equity",
                                    "exchange": "NASDAQ", "symbol": sym, "status": "active", "tradable": True,
                                    "marginable": True, "shortable": True, "easy_to_borrow": True, "fractionable": True})
        if p in ("/v2/stocks/bars", "/v2/stocks/bars/latest"):
            if q.get("feed") == "sip" and not f.sip_allowed:
                return self._send(403, {"message": "subscription does not permit querying recent SIP data"})
            syms = q.get("symbols", "").split(",")
            if p.endswith("latest"):
                return self._send(200, {"bars": {s: f.history[s][-1] for s in syms if f.history.get(s)}})
            start = parse_iso(q["start"]) if "start" in q else 0
            end = parse_iso(q["end"]) if "end" in q else 1 << 62
            bars = {s: [b for b in f.history.get(s, []) if start <= parse_iso(b["t"]) <= end] for s in syms}
            return self._send(200, {"bars": {s: v for s, v in bars.items() if v}, "next_page_token": None})
        f.rest_calls.append(p)
        if any(p.startswith(prefix) for prefix in f.fail_paths):
            return self._send(500, {"code": 50010000, "message": "internal server error"})
        if p == "/v1beta1/news":
            # pages of ``limit`` articles; the page token is the next offset (the client pages by itself)
            syms = set(filter(None, q.get("symbols", "").split(",")))
            start = parse_iso(q["start"]) if "start" in q else 0
            end = parse_iso(q["end"]) if "end" in q else 1 << 62
            rows = [n for n in f.news if start <= parse_iso(n["created_at"]) <= end
                    and (not syms or syms & set(n["symbols"]))]
            off, limit = int(q.get("page_token", 0) or 0), int(q.get("limit", 50))
            nxt = str(off + limit) if off + limit < len(rows) else None
            return self._send(200, {"news": rows[off:off + limit], "next_page_token": nxt})
        if p.startswith("/v1beta1/options/snapshots/"):
            chain = f.option_snapshots.get(p.rsplit("/", 1)[1], {})
            return self._send(200, {"snapshots": chain, "next_page_token": None})
        if p == "/v2/options/contracts":
            unders = set(q.get("underlying_symbols", "").split(","))
            rows = [{"symbol": sym, "underlying_symbol": u, "open_interest": str(s.get("openInterest", 0))}
                    for u, chain in f.option_snapshots.items() if u in unders for sym, s in chain.items()]
            return self._send(200, {"option_contracts": rows, "next_page_token": None})
        self._send(404, {"code": 40410000, "message": f"no route {p}"})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if urlparse(self.path).path == "/v2/orders":
            code, out = self.fake.place(body)
            return self._send(code, out)
        self._send(404, {"code": 40410000, "message": "no route"})

    def do_DELETE(self) -> None:
        if not self._authorized():
            return
        p = urlparse(self.path).path
        f = self.fake
        if p == "/v2/orders":
            with f.lock:
                ids = [i for i, o in f.orders.items() if o["status"] in ("accepted", "new", "partially_filled")]
            return self._send(207, [{"id": i, "status": f.cancel(i), "body": {}} for i in ids])
        if p.startswith("/v2/orders/"):
            code = f.cancel(p.rsplit("/", 1)[1])
            return self._send(code, None if code == 204 else {"code": 40410000, "message": "cannot cancel"})
        self._send(404, {"code": 40410000, "message": "no route"})


@contextlib.contextmanager
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpaca]:
    """A started fake whose keys the environment carries (where alpaca-py's callers read them); stopped after."""
    f = FakeAlpaca().start()
    monkeypatch.setenv("APCA_API_KEY_ID", f.key)
    monkeypatch.setenv("APCA_API_SECRET_KEY", f.secret)
    try:
        yield f
    finally:
        f.stop()
