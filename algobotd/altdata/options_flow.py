"""Option-chain snapshot -> options-flow summary for one underlying (broker independent).

Inputs are per-contract rows (``Contract``) from Alpaca's ``get_option_chain`` or IB's chain
+ market data; outputs are the ``OptionsSnapshot`` event the feature engine consumes plus
metrics the snapshot has no field for (stored in ``options_flow`` and shown in status):

- put/call ratio by volume and by open interest;
- IV skew: 25-delta put IV minus 25-delta call IV in the nearest expiry at least
  ``MIN_DAYS`` out; without greeks, the nearest OTM strikes ~5% from spot stand in;
- dealer gamma exposure: sum(gamma * OI * 100 * spot^2 * 1%) with calls +, puts - (the usual
  assumption that customers buy calls and sell puts, so dealers are long call / short put
  gamma); dollars of delta change per 1% move;
- unusual activity: a contract trading more than ``VOL_OI_SPIKE`` x its open interest (and at
  least ``MIN_UNUSUAL_VOLUME`` contracts), or the chain's volume since the last poll above
  ``BASELINE_SPIKE`` x its rolling mean over the last ``BASELINE_N`` polls.

Volumes: snapshots carry the day's cumulative volume; the event carries the volume since the
previous poll (a new day or a lower cumulative volume restarts the count).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import deque
from dataclasses import dataclass

from algobotd.domain import OptionsSnapshot

MIN_DAYS = 7
VOL_OI_SPIKE = 2.0
MIN_UNUSUAL_VOLUME = 100.0
BASELINE_N = 20
BASELINE_SPIKE = 3.0
OTM_MONEYNESS = 0.05

_OCC = re.compile(r"^([A-Z.]{1,6})(\d{6})([CP])(\d{8})$")


@dataclass(frozen=True, slots=True)
class Contract:
    symbol: str
    right: str  # "C" | "P"
    strike: float
    expiry: dt.date
    volume: float  # day's cumulative volume
    open_interest: float = math.nan
    iv: float = math.nan
    delta: float = math.nan
    gamma: float = math.nan


def parse_occ(symbol: str) -> tuple[str, dt.date, str, float] | None:
    """``AAPL240119C00190000`` -> ("AAPL", 2024-01-19, "C", 190.0); None if not OCC."""
    m = _OCC.match(symbol.replace(" ", ""))
    if m is None:
        return None
    root, ymd, right, strike = m.groups()
    try:
        expiry = dt.date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        return None
    return root, expiry, right, int(strike) / 1000.0


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


class FlowState:
    """Per-underlying memory across polls: last cumulative volumes and the volume baseline."""

    def __init__(self) -> None:
        self.day: dt.date | None = None
        self.cum_calls = 0.0
        self.cum_puts = 0.0
        self.history: deque[float] = deque(maxlen=BASELINE_N)


def summarize(underlying: str, ts: int, spot: float, chain: list[Contract], state: FlowState
              ) -> tuple[OptionsSnapshot, dict[str, float]] | None:
    """The flow summary of one chain poll, or None when the chain has nothing usable."""
    if not chain or not (_finite(spot) and spot > 0):
        return None
    today = dt.datetime.fromtimestamp(ts / 1e9, tz=dt.UTC).date()
    calls = [c for c in chain if c.right == "C"]
    puts = [c for c in chain if c.right == "P"]
    cv = sum(c.volume for c in calls if _finite(c.volume))
    pv = sum(c.volume for c in puts if _finite(c.volume))
    if state.day != today or cv < state.cum_calls or pv < state.cum_puts:
        state.day, state.cum_calls, state.cum_puts = today, 0.0, 0.0
    d_calls, d_puts = cv - state.cum_calls, pv - state.cum_puts
    state.cum_calls, state.cum_puts = cv, pv
    coi = sum(c.open_interest for c in calls if _finite(c.open_interest))
    poi = sum(c.open_interest for c in puts if _finite(c.open_interest))
    has_oi = any(_finite(c.open_interest) for c in chain)

    atm_iv, put25, call25 = _vols(chain, spot, today)
    gex = dealer_gamma(chain, spot)
    unusual_contracts = unusual_count(chain)
    total = d_calls + d_puts
    base = sum(state.history) / len(state.history) if state.history else math.nan
    spike = len(state.history) >= 5 and base > 0 and total > BASELINE_SPIKE * base
    state.history.append(total)
    metrics = {
        "call_volume": d_calls, "put_volume": d_puts, "call_oi": coi if has_oi else math.nan,
        "put_oi": poi if has_oi else math.nan,
        "pcr_volume": pv / cv if cv > 0 else math.nan,
        "pcr_oi": poi / coi if has_oi and coi > 0 else math.nan,
        "atm_iv": atm_iv, "iv_skew": put25 - call25,
        "gamma_exposure": gex,
        "unusual": float(unusual_contracts > 0 or spike), "unusual_contracts": float(unusual_contracts),
    }
    snap = OptionsSnapshot(underlying, ts, d_calls, d_puts, atm_iv, put25, call25, metrics["call_oi"],
                           metrics["put_oi"], gex, metrics["unusual"])
    return snap, metrics


def dealer_gamma(chain: list[Contract], spot: float) -> float:
    """sum(gamma * OI * 100 * spot^2 * 1%), calls +, puts -; NaN when no contract has both."""
    rows = [c for c in chain if _finite(c.gamma) and _finite(c.open_interest)]
    if not rows:
        return math.nan
    return sum((1.0 if c.right == "C" else -1.0) * c.gamma * c.open_interest * 100.0 * spot * spot * 0.01 for c in rows)


def unusual_count(chain: list[Contract]) -> int:
    """Contracts trading more than VOL_OI_SPIKE x their open interest (and MIN_UNUSUAL_VOLUME at least)."""
    return sum(1 for c in chain if _finite(c.volume) and c.volume >= MIN_UNUSUAL_VOLUME
               and _finite(c.open_interest) and c.volume > VOL_OI_SPIKE * max(c.open_interest, 1.0))


def _vols(chain: list[Contract], spot: float, today: dt.date) -> tuple[float, float, float]:
    """(ATM IV, 25-delta put IV, 25-delta call IV) in the nearest expiry >= MIN_DAYS away."""
    with_iv = [c for c in chain if _finite(c.iv) and c.iv > 0]
    far = sorted({c.expiry for c in with_iv if (c.expiry - today).days >= MIN_DAYS})
    expiries = far or sorted({c.expiry for c in with_iv})
    if not expiries:
        return math.nan, math.nan, math.nan
    rows = [c for c in with_iv if c.expiry == expiries[0]]
    atm_strike = min((c.strike for c in rows), key=lambda k: abs(k - spot))
    atm = [c.iv for c in rows if c.strike == atm_strike]
    atm_iv = sum(atm) / len(atm)
    puts = [c for c in rows if c.right == "P"]
    calls = [c for c in rows if c.right == "C"]
    if any(_finite(c.delta) for c in rows):
        p = min((c for c in puts if _finite(c.delta)), key=lambda c: abs(c.delta + 0.25), default=None)
        k = min((c for c in calls if _finite(c.delta)), key=lambda c: abs(c.delta - 0.25), default=None)
    else:  # no greeks: the OTM strikes nearest to +-5% from spot
        p = min((c for c in puts if c.strike <= spot), key=lambda c: abs(c.strike - spot * (1 - OTM_MONEYNESS)),
                default=None)
        k = min((c for c in calls if c.strike >= spot), key=lambda c: abs(c.strike - spot * (1 + OTM_MONEYNESS)),
                default=None)
    return atm_iv, (p.iv if p else math.nan), (k.iv if k else math.nan)


def summarize_totals(underlying: str, ts: int, call_cum: float, put_cum: float, call_oi: float, put_oi: float,
                     atm_iv: float, put_iv: float, call_iv: float, state: FlowState,
                     strip: list[Contract] | None = None, spot: float = math.nan,
                     ) -> tuple[OptionsSnapshot, dict[str, float]] | None:
    """The same summary from underlying-level totals (IB's option volume / open-interest ticks).
    Dealer gamma and per-contract flags come from ``strip``, the near-the-money contracts polled
    with greeks and open interest (NaN / none without it): gamma concentrates near the money, so
    the strip's sum stands in for the chain's."""
    if not (_finite(call_cum) and _finite(put_cum)):
        return None
    fake = [Contract("C", "C", 0.0, dt.date.max, call_cum, call_oi), Contract("P", "P", 0.0, dt.date.max, put_cum, put_oi)]
    out = summarize(underlying, ts, 1.0, fake, state)
    if out is None:
        return None
    snap, m = out
    gex = dealer_gamma(strip, spot) if strip and _finite(spot) else math.nan
    flagged = unusual_count(strip) if strip else math.nan
    if strip and flagged > 0:
        m["unusual"] = 1.0
    m.update(atm_iv=atm_iv, iv_skew=put_iv - call_iv, gamma_exposure=gex, unusual_contracts=flagged)
    snap = OptionsSnapshot(underlying, ts, snap.call_volume, snap.put_volume, atm_iv, put_iv, call_iv, m["call_oi"],
                           m["put_oi"], gex, m["unusual"])
    return snap, m
