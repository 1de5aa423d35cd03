"""Portfolio circuit breakers: each one a reading (value, threshold, tripped) and the state it forces.

- ``daily_loss``: 1 − equity / start-of-day equity, equity marked to the latest prices (open P&L
  included) -> HALTED;
- ``drawdown``: 1 − equity / high-water mark, same marking -> HALTED;
- ``position_loss``: the worst single position's loss from entry (the stops' 15% level) -> HALTED;
- ``reject_rate``: broker rejects + submit errors / orders sent in the last window -> HALTED;
- ``stale_data``: seconds without market data while the US market is open, beyond one bar interval
  + grace + ``stale_data_seconds`` -> REDUCING;
- ``broker_disconnected``: 1 while the broker session is down -> REDUCING;
- ``gross_exposure``: shown for the operator; enforced per order by the pre-trade checks.

The breakers only report; the engine moves the latched state (down only) from the readings.
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from algobotd.config import RiskConfig
from algobotd.domain import NS_PER_SECOND, TradingState

NEW_YORK = ZoneInfo("America/New_York")
SESSION_OPEN = dt.time(9, 30)
SESSION_CLOSE = dt.time(16, 0)


def market_open(ts: int) -> bool:
    """Regular US equity session, Monday to Friday 09:30-16:00 New York (exchange holidays ignored)."""
    local = dt.datetime.fromtimestamp(ts / NS_PER_SECOND, NEW_YORK)
    return local.weekday() < 5 and SESSION_OPEN <= local.time() < SESSION_CLOSE


@dataclass(frozen=True, slots=True)
class Reading:
    name: str
    value: float
    threshold: float
    tripped: bool
    action: TradingState | None  # state the breaker forces when tripped (None: display only)


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """What the breakers look at, gathered by the engine after marking."""

    ts: int
    equity: float
    day_start_equity: float
    high_water_mark: float
    gross_exposure: float
    worst_position_loss: float
    broker_connected: bool


class Breakers:
    def __init__(self, cfg: RiskConfig, bar_seconds: float = 0.0, grace_seconds: float = 0.0) -> None:
        self.cfg = cfg
        # bars arrive once per interval (+ the BarClock's grace): data that old is on time, and
        # ``stale_data_seconds`` counts from there (else 5-minute bars would always look stale)
        self.stale_after = cfg.stale_data_seconds + bar_seconds + grace_seconds
        self.last_data_ts: int | None = None
        self._sent: collections.deque[int] = collections.deque()
        self._rejected: collections.deque[int] = collections.deque()
        self._view: PortfolioView | None = None
        self._values: tuple[float, float, float, int, float, float] = (0.0, 0.0, 0.0, 0, 0.0, 0.0)
        self._readings: list[Reading] | None = None

    # --- inputs ------------------------------------------------------------------------------

    def on_data(self, ts: int) -> None:
        if self.last_data_ts is None or ts > self.last_data_ts:
            self.last_data_ts = ts

    def on_sent(self, ts: int, n: int = 1) -> None:
        self._sent.extend([ts] * n)

    def on_reject(self, ts: int) -> None:
        self._rejected.append(ts)

    @property
    def has_rejects(self) -> bool:
        """Rejects still on record (the reject-rate breaker cannot trip without one, unless its limit is 0)."""
        return bool(self._rejected)

    def data_gap(self, now: int) -> float:
        """Seconds since the last market data (0 before any)."""
        return 0.0 if self.last_data_ts is None else max(0.0, (now - self.last_data_ts) / NS_PER_SECOND)

    def reject_rate(self, now: int) -> tuple[float, int]:
        """(rejects / orders sent in the window, orders sent in the window)."""
        start = now - int(self.cfg.reject_window_seconds * NS_PER_SECOND)
        for q in (self._sent, self._rejected):
            while q and q[0] < start:
                q.popleft()
        sent = len(self._sent)
        return (len(self._rejected) / sent if sent else 0.0), sent

    # --- readings ----------------------------------------------------------------------------

    def check(self, v: PortfolioView) -> list[Reading]:
        """Every breaker's reading for this view (also kept as :attr:`last`)."""
        self._measure(v)
        return self.last

    def trip(self, v: PortfolioView) -> tuple[TradingState, list[Reading]] | None:
        """``worst_trip(check(v))`` for the per-batch path: the readings are built only when
        a breaker that forces a state has tripped (almost never), else on demand via :attr:`last`."""
        day_loss, drawdown, rate, sent, stale_gap, _gross = self._measure(v)
        cfg = self.cfg
        if (day_loss >= cfg.daily_loss_pct or drawdown >= cfg.max_drawdown_pct
                or v.worst_position_loss >= cfg.halt_position_loss_pct
                or (sent >= cfg.reject_min_orders and rate >= cfg.max_reject_rate)
                or (stale_gap >= self.stale_after and market_open(v.ts)) or not v.broker_connected):
            return worst_trip(self.last)
        return None

    def _measure(self, v: PortfolioView) -> tuple[float, float, float, int, float, float]:
        """The scalar readings (stale: the data gap, before the market-hours test); invalidates :attr:`last`."""
        day_loss = max(0.0, 1.0 - v.equity / v.day_start_equity) if v.day_start_equity > 0 else 0.0
        drawdown = max(0.0, 1.0 - v.equity / v.high_water_mark) if v.high_water_mark > 0 else 0.0
        rate, sent = self.reject_rate(v.ts)
        stale_gap = self.data_gap(v.ts)
        gross = v.gross_exposure / v.equity if v.equity > 0 else 0.0
        self._view, self._values, self._readings = v, (day_loss, drawdown, rate, sent, stale_gap, gross), None
        return self._values

    @property
    def last(self) -> list[Reading]:
        """The readings of the latest check (empty before the first one)."""
        if self._readings is None:
            self._readings = [] if self._view is None else self._build_readings(self._view, *self._values)
        return self._readings

    def _build_readings(self, v: PortfolioView, day_loss: float, drawdown: float, rate: float, sent: int,
                        stale_gap: float, gross: float) -> list[Reading]:
        cfg = self.cfg
        # the session test converts time zones: only here, and in trip() once the gap is long enough
        stale = stale_gap if stale_gap > 0 and market_open(v.ts) else 0.0
        halted, reducing = TradingState.HALTED, TradingState.REDUCING
        return [
            Reading("daily_loss", day_loss, cfg.daily_loss_pct, day_loss >= cfg.daily_loss_pct, halted),
            Reading("drawdown", drawdown, cfg.max_drawdown_pct, drawdown >= cfg.max_drawdown_pct, halted),
            Reading("position_loss", v.worst_position_loss, cfg.halt_position_loss_pct,
                    v.worst_position_loss >= cfg.halt_position_loss_pct, halted),
            Reading("reject_rate", rate, cfg.max_reject_rate,
                    sent >= cfg.reject_min_orders and rate >= cfg.max_reject_rate, halted),
            Reading("stale_data", stale, self.stale_after, stale >= self.stale_after, reducing),
            Reading("broker_disconnected", 0.0 if v.broker_connected else 1.0, 1.0, not v.broker_connected, reducing),
            Reading("gross_exposure", gross, cfg.max_gross_pct, gross > cfg.max_gross_pct, None),
        ]


def worst_trip(readings: list[Reading]) -> tuple[TradingState, list[Reading]] | None:
    """The most severe state any tripped breaker forces, with the breakers that force it."""
    tripped = [r for r in readings if r.tripped and r.action is not None]
    if not tripped:
        return None
    worst = max((r.action for r in tripped), key=lambda s: s.severity)  # type: ignore[union-attr]
    return worst, [r for r in tripped if r.action is worst]
