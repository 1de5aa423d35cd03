"""A fake TWS / IB Gateway speaking the TWS API socket protocol, for the real ib_async client.

Wire format (what ib_async's client.py/decoder.py send and expect): the client opens with
``API\\0`` + a length-prefixed ``v157..178``; we answer with a length-prefixed message of two
null-terminated fields (server version, connection time). Every later message is a 4-byte
big-endian length followed by null-terminated fields, the first being the message id.
We speak server version 176: no field layouts that only newer servers have.

Only what algobot and ib_async's start-up need is implemented: startApi -> nextValidId +
managedAccounts (or error 326 when the client id is taken), positions, open/completed orders,
account updates, executions (+ commission reports), real-time bars, tick-by-tick BidAsk,
historical bars, placeOrder -> openOrder/orderStatus/execDetails/commissionReport, cancelOrder.
Test controls (``push_bar``, ``fill``, ``drop_all``, ``restart`` ...) drive the scenarios.
"""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

SERVER_VERSION = 176
EXCHANGE = "SMART"


def encode(*fields: object) -> bytes:
    body = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def ib_time(ts: float) -> str:
    return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(ts))


def contract_fields(con_id: int, symbol: str) -> list[object]:
    # conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency,
    # localSymbol, tradingClass
    return [con_id, symbol, "STK", "", 0.0, "", "", EXCHANGE, "USD", symbol, "NMS"]


@dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str  # BUY / SELL
    qty: float
    order_type: str
    lmt_price: str
    tif: str
    account: str
    order_ref: str
    status: str = "Submitted"
    filled: float = 0.0
    notional: float = 0.0

    @property
    def remaining(self) -> float:
        return self.qty - self.filled

    @property
    def avg(self) -> float:
        return self.notional / self.filled if self.filled else 0.0


@dataclass
class FakeExec:
    exec_id: str
    order: FakeOrder
    shares: float
    price: float
    ts: float
    cum_qty: float
    avg_price: float
    commission: float


@dataclass
class _Client:
    writer: asyncio.StreamWriter
    client_id: int = -1
    bars: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    ticks: dict[int, str] = field(default_factory=dict)
    news: dict[int, str] = field(default_factory=dict)  # reqMktData with news ticks: reqId -> symbol
    account_updates: bool = False  # subscribed with reqAccountUpdates
    option_stats: dict[int, str] = field(default_factory=dict)  # reqMktData "100,101,106": reqId -> symbol

    def send(self, *fields: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(*fields))


class FakeTWS:
    def __init__(self, account: str = "DU1234567", next_valid_id: int = 1, auto_fill: bool = True,
                 fill_price: float = 100.0) -> None:
        self.account = account
        self.next_valid_id = next_valid_id
        self.auto_fill = auto_fill  # market orders fill at once at fill_price
        self.fill_price = fill_price
        self.commission = 1.0
        self.send_commissions = True  # False: executions come without their commission report
        # True: commission reports wait until release_commissions() (TWS computes them a moment
        # after the execution; a reqExecutions answered meanwhile has the execution alone)
        self.hold_commissions = False
        self._held_commissions: list[tuple[_Client, FakeExec]] = []
        self.exec_requests = 0  # reqExecutions answered
        self.reject_next = ""
        self.ghost_client_ids: set[int] = set()  # ids a "dead" session still holds: 326 on connect  # set: the next placeOrder is rejected with this reason
        self.orders: dict[int, FakeOrder] = {}  # by perm id
        self.executions: list[FakeExec] = []
        self.positions: dict[str, tuple[float, float]] = {}  # symbol -> (qty, avg cost)
        self.cash = 1_000_000.0  # TotalCashValue: moves with every execution and its commission
        self.prices: dict[str, float] = {}  # market prices for the portfolio updates (default: avg cost)
        self.clients: list[_Client] = []
        self.history: Callable[[str, str, str, str], list[tuple[int, float, float, float, float, float]] | None] = (
            lambda symbol, end, duration, bar_size: [])
        self.history_requests: list[tuple[float, str, str, str, str]] = []
        self.unknown_symbols: set[str] = set()  # contract details come back empty for these
        self.placed: list[FakeOrder] = []  # every placeOrder, in order (resubmission shows here)
        self.connects = 0
        # news (issue 10): conId -> [(time "YYYY-MM-DD HH:MM:SS.0", provider, article id, headline)]
        self.news_history: dict[int, list[tuple[str, str, str, str]]] = {}
        self.news_requests: list[tuple[int, str, str, str]] = []
        self.news_error = 0  # an IB error code answered to reqHistoricalNews (e.g. 10276: no subscription)
        # options (issue 10): symbol -> (expirations "YYYYMMDD", strikes); implied vol per (symbol, right, strike)
        self.option_chain: dict[str, tuple[list[str], list[float]]] = {}
        self.option_iv: Callable[[str, str, float], float] = lambda symbol, right, strike: 0.25
        # per option (symbol, right, strike) -> (model gamma, open interest, day volume)
        self.option_gamma_oi: Callable[[str, str, float], tuple[float, float, float]] = \
            lambda symbol, right, strike: (0.02, 0.0, 0.0)
        self._perm = 1000
        self._exec_seq = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    # --- server -------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> FakeTWS:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.drop_all()
            for w in self._writers:
                w.close()
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)
            await self._server.wait_closed()
            self._server = None

    def drop_all(self) -> None:
        """Close every client socket (a gateway crash or a network cut, from the client's view)."""
        for c in list(self.clients):
            c.writer.close()
        self.clients.clear()

    def restart(self, next_valid_id: int = 1) -> None:
        """Gateway restart: connections drop and the order id sequence starts over."""
        self.drop_all()
        self.next_valid_id = next_valid_id

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = _Client(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if await reader.readexactly(4) != b"API\0":
                return
            n = struct.unpack(">I", await reader.readexactly(4))[0]
            await reader.readexactly(n)  # "v157..178": we pick our version inside the range
            writer.write(encode(SERVER_VERSION, ib_time(time.time())))
            self.clients.append(c)
            while True:
                n = struct.unpack(">I", await reader.readexactly(4))[0]
                fields = (await reader.readexactly(n)).decode().split("\0")[:-1]
                self._handle(c, fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # a closed socket (or the loop shutting down) ends this client quietly
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            if c in self.clients:
                self.clients.remove(c)
            writer.close()

    # --- requests -----------------------------------------------------------------------------

    def _handle(self, c: _Client, f: list[str]) -> None:
        mid = int(f[0])
        if mid == 71:  # startApi: version, clientId, optCapab
            cid = int(f[2])
            if cid in self.ghost_client_ids or any(o.client_id == cid for o in self.clients if o is not c):
                c.send(4, 2, -1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.", "")
                c.writer.close()
                return
            c.client_id = cid
            self.connects += 1
            c.send(9, 1, self.next_valid_id)
            c.send(15, 1, self.account)
        elif mid == 61:  # reqPositions
            for sym, (qty, avg) in self.positions.items():
                c.send(61, 3, self.account, *contract_fields(self._con_id(sym), sym), qty, avg)
            c.send(62, 1)
        elif mid == 5:  # reqOpenOrders: this client's working orders
            for o in self.orders.values():
                if o.client_id == c.client_id and o.status in ("Submitted", "PreSubmitted"):
                    self._send_open_order(c, o)
                    self._send_status(c, o)
            c.send(53, 1)
        elif mid == 16:  # reqAllOpenOrders: every client's working orders (and TWS's own)
            for o in self.orders.values():
                if o.status in ("Submitted", "PreSubmitted"):
                    self._send_open_order(c, o)
                    self._send_status(c, o)
            c.send(53, 1)
        elif mid == 99:  # reqCompletedOrders
            c.send(102)
        elif mid == 6:  # reqAccountUpdates(subscribe, account)
            c.account_updates = True
            self._send_account(c)
            c.send(54, 1, self.account)
        elif mid == 76:  # reqAccountUpdatesMulti: version, reqId, ...
            c.send(74, 1, int(f[2]))
        elif mid == 7:  # reqExecutions: version, reqId, filter clientId, ...
            req_id, want = int(f[2]), int(f[3] or 0)
            for e in self.executions:
                if want in (0, e.order.client_id):
                    self._send_exec(c, req_id, e)
            c.send(55, 1, req_id)
            self.exec_requests += 1
        elif mid == 3:
            self._place(c, f)
        elif mid == 4:  # cancelOrder: version, orderId
            o = self._by_order_id(c.client_id, int(f[2]))
            if o is not None and o.status in ("Submitted", "PreSubmitted"):
                o.status = "Cancelled"
                self._broadcast_status(o)
        elif mid == 50:  # reqRealTimeBars: version, reqId, contract(12) ...
            c.bars[int(f[2])] = f[4]
        elif mid == 51:
            c.bars.pop(int(f[2]), None)
        elif mid == 97:  # reqTickByTickData: reqId, contract(12), tickType ...
            c.ticks[int(f[1])] = f[3]
        elif mid == 98:
            c.ticks.pop(int(f[1]), None)
        elif mid == 20:
            self._historical(c, f)
        elif mid == 9:  # reqContractDetails: version, reqId, contract(12) ...
            req_id, sym = int(f[2]), f[4]
            if f[5] == "OPT":  # an option contract (alternative data, issue 10): its own conId
                exp, strike, right = f[6], float(f[7]), f[8]
                local = f"{sym:<6}{exp[2:]}{right}{int(strike * 1000):08d}"
                c.send(10, req_id, sym, "OPT", exp, strike, right, "SMART", "USD", local, sym, sym,
                       # conId from a hash: a sum of characters collides across strikes and rights
                       10_000_000 + zlib.crc32(local.encode()) % 10_000_000, 0.01, "100", "MKT,LMT", "SMART,CBOE",
                       1, 0, f"{sym} OPT", "", "", "", "",
                       "", "US/Eastern", "", "", "", "", 0, 1, "", "", "", "", "", 1, 1, 1)
            elif sym not in self.unknown_symbols:
                c.send(10, req_id, sym, "STK", "", 0.0, "", EXCHANGE, "USD", sym, "NMS", "NMS", self._con_id(sym), 0.01,
                       "", "MKT,LMT", "SMART,ISLAND", 1, 0, f"{sym} INC", "NASDAQ", "", "", "", "", "US/Eastern",
                       "", "", "", "", 0, 1, "", "", "26", "", "COMMON", 1, 1, 1)
            c.send(52, 1, req_id)
        elif mid == 49:
            c.send(49, 1, int(time.time()))
        elif mid == 1:  # reqMktData: version, reqId, contract(12), deltaNeutral flag, genericTickList ...
            if "292" in f[16]:  # news ticks (alternative data, issue 10)
                c.news[int(f[2])] = f[4]
            elif f[5] == "OPT":  # an option: IB's model greeks at once (tick 13), iv from option_iv
                iv = self.option_iv(f[4], f[8], float(f[7]))
                gamma, oi, volume = self.option_gamma_oi(f[4], f[8], float(f[7]))
                c.send(21, int(f[2]), 13, 0, iv, 0.25 if f[8] == "C" else -0.25, 1.0, 0.0, gamma, 0.1, -0.05, 100.0)
                if "101" in f[16]:  # the contract's open interest: tick 27 (call) / 28 (put)
                    c.send(2, 6, int(f[2]), 27 if f[8] == "C" else 28, oi)
                c.send(2, 6, int(f[2]), 8, volume)  # the contract's day volume
            elif "100" in f[16]:  # option volume / open interest / implied vol of an underlying
                c.option_stats[int(f[2])] = f[4]
        elif mid == 78:  # reqSecDefOptParams: reqId, underlyingSymbol, futFopExchange, secType, conId
            req_id, sym = int(f[1]), f[2]
            exps, strikes = self.option_chain.get(sym, ([], []))
            c.send(75, req_id, "SMART", f[5], sym, "100", len(exps), *exps, len(strikes), *strikes)
            c.send(76, req_id)
        elif mid == 2:  # cancelMktData: version, reqId
            c.news.pop(int(f[2]), None)
        elif mid == 86:  # reqHistoricalNews: reqId, conId, providerCodes, start, end, totalResults, options
            req_id, con_id = int(f[1]), int(f[2])
            self.news_requests.append((con_id, f[3], f[4], f[5]))
            if self.news_error:
                c.send(4, 2, req_id, self.news_error, "news: not subscribed to the provider", "")
                return
            for t, provider, article, headline in self.news_history.get(con_id, [])[: int(f[6])]:
                c.send(86, req_id, t, provider, article, headline)
            c.send(87, req_id, 0)
        # anything else (cancelHistoricalData, reqAutoOpenOrders ...) needs no answer

    def _historical(self, c: _Client, f: list[str]) -> None:
        # 20, reqId, contract(12), includeExpired, end, barSize, duration, useRTH, whatToShow, formatDate
        req_id, symbol, end, bar_size, duration = int(f[1]), f[3], f[15], f[16], f[17]
        self.history_requests.append((time.monotonic(), symbol, end, duration, bar_size))
        bars = self.history(symbol, end, duration, bar_size)
        if bars is None:
            return  # silence: the client's timeout fires and ib_async returns an empty list
        if isinstance(bars, int):  # an error code, e.g. 162 (pacing violation)
            c.send(4, 2, req_id, bars, "Historical Market Data Service error message:pacing violation", "")
            return
        out: list[object] = [17, req_id, "", "", len(bars)]
        for ts, o, h, lo, cl, v in bars:
            out += [ts, o, h, lo, cl, v, cl, 1]  # formatDate=2: epoch seconds (UTC)
        c.send(*out)

    def _place(self, c: _Client, f: list[str]) -> None:
        # 3, orderId, contract(12), secIdType, secId, action, qty, type, lmt, aux, tif, oca,
        # account, openClose, origin, orderRef, ...
        order_id = int(f[1])
        if self._by_order_id(c.client_id, order_id) is not None:
            c.send(4, 2, order_id, 103, "Duplicate order id", "")
            return
        self._perm += 1
        o = FakeOrder(order_id, c.client_id, self._perm, f[3], f[16], float(f[17]), f[18], f[19], f[21],
                      f[23] or self.account, f[26])
        self.orders[o.perm_id] = o
        self.placed.append(o)
        if self.reject_next:  # e.g. margin: IB answers with error 201 and the order is dead
            o.status = "Inactive"
            c.send(4, 2, order_id, 201, f"Order rejected - reason:{self.reject_next}", "")
            self.reject_next = ""
            return
        self._send_open_order(c, o)
        self._send_status(c, o)
        if self.auto_fill and o.order_type == "MKT":
            self.fill(o, o.qty, self.fill_price)

    # --- test controls ------------------------------------------------------------------------

    def external_order(self, symbol: str, action: str, qty: float, lmt: float, client_id: int = 5) -> FakeOrder:
        """A working order placed by another API client (or by hand in TWS)."""
        self._perm += 1
        o = FakeOrder(self._perm, client_id, self._perm, symbol, action, qty, "LMT", str(lmt), "DAY",
                      self.account, "")
        self.orders[o.perm_id] = o
        return o

    def order_by_ref(self, ref: str) -> FakeOrder:
        return next(o for o in self.orders.values() if o.order_ref == ref)

    def fill(self, o: FakeOrder, qty: float, price: float) -> FakeExec:
        """Execute part of an order; connected clients hear about it live, others via reqExecutions."""
        self._exec_seq += 1
        o.filled += qty
        o.notional += qty * price
        if o.remaining <= 0:
            o.status = "Filled"
        self._book(o, qty, price, self.commission)
        # IB's exec ids: a unique id per execution, the last segment counts its corrections
        e = FakeExec(f"0000e0d5.{0x6542f700 + self._exec_seq:08x}.01.01", o, qty, price, time.time(),
                     o.filled, o.avg, self.commission)
        self._publish(e)
        return e

    def correct(self, e: FakeExec, qty: float | None = None, price: float | None = None,
                commission: float | None = None) -> FakeExec:
        """An execution correction: same exec id but a higher last segment (``.01.01`` -> ``.01.02``);
        the order, position and cash move by the difference. The original stays in the day's
        executions (reqExecutions returns both)."""
        o = e.order
        base, version = e.exec_id.rsplit(".", 1)
        qty = e.shares if qty is None else qty
        price = e.price if price is None else price
        commission = e.commission if commission is None else commission
        o.filled += qty - e.shares
        o.notional += qty * price - e.shares * e.price
        self._book(o, -e.shares, e.price, -e.commission)
        self._book(o, qty, price, commission)
        c = FakeExec(f"{base}.{int(version) + 1:02d}", o, qty, price, time.time(), o.filled, o.avg, commission)
        self._publish(c)
        return c

    def _book(self, o: FakeOrder, qty: float, price: float, commission: float) -> None:
        """Position, average cost and cash of ``qty`` shares of ``o`` (negative: take them back)."""
        pos, avg = self.positions.get(o.symbol, (0.0, 0.0))
        signed = qty if o.action == "BUY" else -qty
        new = pos + signed
        avg = (avg * pos + price * signed) / new if new and (pos >= 0) == (signed >= 0) else (avg if new else 0.0)
        self.positions[o.symbol] = (new, avg)
        self.cash -= signed * price + commission

    def _publish(self, e: FakeExec) -> None:
        o = e.order
        self.executions.append(e)
        self._broadcast_status(o)
        for c in self.clients:
            if c.client_id == o.client_id:
                self._send_exec(c, -1, e)
            if c.account_updates:  # TWS refreshes account values every few minutes; the fake at once
                self._send_account(c)

    def _send_account(self, c: _Client) -> None:
        value = sum(q * self.prices.get(s, a) for s, (q, a) in self.positions.items())
        for key, val in (("NetLiquidation", self.cash + value), ("TotalCashValue", self.cash),
                         ("BuyingPower", 4 * self.cash)):
            c.send(6, 2, key, val, "USD", self.account)
        for sym, (q, avg) in self.positions.items():
            px = self.prices.get(sym, avg)
            c.send(7, 8, *contract_fields(self._con_id(sym), sym), q, px, q * px, avg, q * (px - avg), 0.0,
                   self.account)

    def deposit(self, amount: float) -> None:
        """Cash moves without a trade (a deposit, a withdrawal when negative, a fee)."""
        self.cash += amount
        for c in self.clients:
            if c.account_updates:
                self._send_account(c)

    def push_bar(self, symbol: str, ts: int, o: float, h: float, lo: float, cl: float, v: float) -> int:
        """One 5-second real-time bar (``ts`` = start, epoch seconds) to every subscriber."""
        sent = 0
        for c in self.clients:
            for req_id, sym in c.bars.items():
                if sym == symbol:
                    c.send(50, 3, req_id, ts, o, h, lo, cl, v, cl, 1)
                    sent += 1
        return sent

    def push_quote(self, symbol: str, bid: float, ask: float, bid_size: float = 100, ask_size: float = 100) -> None:
        for c in self.clients:
            for req_id, sym in c.ticks.items():
                if sym == symbol:
                    c.send(99, req_id, 3, int(time.time()), bid, ask, bid_size, ask_size, 0)

    def push_news_tick(self, symbol: str, ts_ms: int, provider: str, article_id: str, headline: str) -> int:
        """A news tick (msg 84) to every news subscriber of ``symbol``."""
        sent = 0
        for cl in self.clients:
            for req_id, sym in cl.news.items():
                if sym == symbol:
                    cl.send(84, req_id, ts_ms, provider, article_id, headline, "")
                    sent += 1
        return sent

    def push_option_stats(self, symbol: str, call_vol: float, put_vol: float, call_oi: float, put_oi: float,
                          iv: float) -> int:
        """Underlying-level option ticks: volume 29/30, open interest 27/28 (tickSize), IV 24 (tickGeneric)."""
        sent = 0
        for cl in self.clients:
            for req_id, sym in cl.option_stats.items():
                if sym == symbol:
                    for tick, v in ((29, call_vol), (30, put_vol), (27, call_oi), (28, put_oi)):
                        cl.send(2, 6, req_id, tick, v)
                    cl.send(45, 6, req_id, 24, iv)
                    sent += 1
        return sent

    def send_error(self, code: int, msg: str, req_id: int = -1) -> None:
        for c in self.clients:
            c.send(4, 2, req_id, code, msg, "")

    def subscribed(self) -> set[str]:
        return {s for c in self.clients for s in c.bars.values()}

    # --- encoding -----------------------------------------------------------------------------

    def _con_id(self, symbol: str) -> int:
        return 1000 + sum(map(ord, symbol))

    def _by_order_id(self, client_id: int, order_id: int) -> FakeOrder | None:
        return next((o for o in self.orders.values()
                     if o.client_id == client_id and o.order_id == order_id and o.status != "Inactive"), None)

    def _broadcast_status(self, o: FakeOrder) -> None:
        for c in self.clients:
            if c.client_id == o.client_id:
                self._send_status(c, o)

    def _send_status(self, c: _Client, o: FakeOrder) -> None:
        c.send(3, o.order_id, o.status, o.filled, o.remaining, o.avg, o.perm_id, 0, o.avg, o.client_id, "", 0.0)

    def _send_exec(self, c: _Client, req_id: int, e: FakeExec) -> None:
        o = e.order
        c.send(11, req_id, o.order_id, *contract_fields(self._con_id(o.symbol), o.symbol), e.exec_id, ib_time(e.ts),
               o.account, "ISLAND", "BOT" if o.action == "BUY" else "SLD", e.shares, e.price, o.perm_id,
               o.client_id, 0, e.cum_qty, e.avg_price, o.order_ref, "", "", "", 1)
        if self.hold_commissions:
            self._held_commissions.append((c, e))
        elif self.send_commissions:
            self._send_commission(c, e)

    def _send_commission(self, c: _Client, e: FakeExec) -> None:
        c.send(59, 1, e.exec_id, e.commission, "USD", 0.0, "", "")

    def release_commissions(self) -> None:
        """Send the commission reports held back (see ``hold_commissions``) and stop holding."""
        self.hold_commissions = False
        held, self._held_commissions = self._held_commissions, []
        for c, e in held:
            if c in self.clients:
                self._send_commission(c, e)

    def _send_open_order(self, c: _Client, o: FakeOrder) -> None:
        """openOrder for server version 176 (decoder.openOrder field order, no optional blocks)."""
        f: list[object] = [5, o.order_id, *contract_fields(self._con_id(o.symbol), o.symbol)]
        f += [o.action, o.qty, o.order_type, o.lmt_price, "", o.tif, "", o.account, "", 0, o.order_ref,
              o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", "", ""]  # ... faPercentage, faProfile
        f += [""] * 29  # modelCode ... deltaNeutralAuxPrice (deltaNeutralOrderType empty)
        f += ["", "", "", "", "", "", ""]  # continuousUpdate ... comboLegsDescrip
        f += [0, 0, 0]  # combo legs, order combo legs, smart combo routing params
        f += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        f += [""]  # hedgeType
        f += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc
        f += [""]  # algoStrategy
        f += [0, 0, o.status] + [""] * 14 + [0, 0]  # solicited, whatIf, state ..., randomize*
        f += [0]  # conditions
        f += [""] * 16  # adjustedOrderType ... usePriceMgmtAlgo
        f += ["", "", ""]  # duration, postToAts, autoCancelParent
        f += ["", "", "", "", ""]  # minTradeQty ... midOffsetAtHalf
        c.send(*f)
