"""SimFeed: determinism, resume, OHLC sanity, sessions, regimes, refs, history, news, pacing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from algobotd.config import FeedConfig, SimConfig
from algobotd.domain import BarBatch
from algobotd.feeds.base import ResumePoint
from algobotd.feeds.pacing import Pacer
from algobotd.feeds.sim import REGIMES, SimFeed

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def make(symbols: int = 8, seed: int = 7, start: str = "2024-01-02", bar_seconds: int = 60,
         speed: float | str = "max", news_rate: float = 0.002, names: list[str] | None = None,
         max_bars: int | None = None) -> SimFeed:
    cfg = FeedConfig(symbols=names or [], bar_seconds=bar_seconds,
                     sim=SimConfig(symbols=symbols, seed=seed, speed=speed, start=start, news_rate=news_rate))
    return SimFeed(cfg, max_bars=max_bars)


async def take(feed: SimFeed, n: int, resume: ResumePoint | None = None) -> list[BarBatch]:
    out = []
    async for b in feed.batches(resume):
        out.append(b)
        if len(out) == n:
            break
    return out


def stack(batches: list[BarBatch], field: str) -> np.ndarray:
    return np.array([getattr(b, field) for b in batches])


def utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts / 1e9, UTC)


async def test_universe_names_and_protocol_attributes() -> None:
    f = make(symbols=20)
    assert f.symbols == tuple(f"SIM{i:02d}" for i in range(20))
    assert all(s.isalnum() and s.isupper() for s in f.symbols)
    assert "SPY" not in f.symbols and "VIX" not in f.symbols
    assert f.bar_seconds == 60 and f.bars_per_day == 390
    g = make(names=["AAPL", "MSFT", "XOM"])
    assert g.symbols == ("AAPL", "MSFT", "XOM")
    assert f.connected
    await f.close()
    assert not f.connected


async def test_same_seed_identical_different_seed_differs() -> None:
    a = await take(make(seed=11, news_rate=0.01), 800)
    b = await take(make(seed=11, news_rate=0.01), 800)
    c = await take(make(seed=12, news_rate=0.01), 800)
    for field in ("open", "high", "low", "close", "volume", "bid", "ask"):
        assert np.array_equal(stack(a, field), stack(b, field)), field
    assert [x.ts for x in a] == [x.ts for x in b]
    assert [x.refs for x in a] == [x.refs for x in b]
    assert [[n.id for n in x.news] for x in a] == [[n.id for n in x.news] for x in b]
    assert not np.allclose(stack(a, "close"), stack(c, "close"))


async def test_resume_continues_the_same_path() -> None:
    n = 500  # crosses a session boundary (390 bars a day) on both sides of the resume
    full = await take(make(), 2 * n)
    first = await take(make(), n)
    last = first[-1]
    resume = ResumePoint(last.ts, last.symbols, last.close.copy())
    second = await take(make(), n, resume)  # a fresh instance, as after a daemon restart
    assert [b.ts for b in second] == [b.ts for b in full[n:]]
    for field in ("open", "high", "low", "close", "volume", "bid", "ask"):
        np.testing.assert_allclose(stack(second, field), stack(full[n:], field), rtol=1e-9, err_msg=field)
    for x, y in zip(second, full[n:]):
        assert x.refs["SPY"] == pytest.approx(y.refs["SPY"], rel=1e-9)
        assert x.refs["VIX"] == pytest.approx(y.refs["VIX"], rel=1e-9)


async def test_resume_uses_stored_closes_as_level() -> None:
    f = make(symbols=3)
    first = (await take(f, 10))[-1]
    doubled = ResumePoint(first.ts, first.symbols, first.close * 2.0)
    plain = await take(make(symbols=3), 1, ResumePoint(first.ts, first.symbols, first.close.copy()))
    scaled = await take(make(symbols=3), 1, doubled)
    np.testing.assert_allclose(scaled[0].close, 2.0 * plain[0].close, rtol=1e-12)
    # A symbol without a stored close starts from its own deterministic level.
    partial = ResumePoint(first.ts, first.symbols[:2], first.close[:2].copy())
    got = await take(make(symbols=3), 1, partial)
    assert np.all(np.isfinite(got[0].close)) and got[0].close[2] > 0


async def test_ohlc_volume_spread_consistency() -> None:
    bs = await take(make(symbols=30, news_rate=0.0), 1200)
    o, h, l, c = (stack(bs, f) for f in ("open", "high", "low", "close"))
    v, bid, ask = stack(bs, "volume"), stack(bs, "bid"), stack(bs, "ask")
    assert np.all(o > 0) and np.all(l > 0)
    assert np.all(h >= np.maximum(o, c)) and np.all(l <= np.minimum(o, c))
    assert np.any(h > np.maximum(o, c))  # sub-steps give real wicks
    assert np.all(v >= 1) and np.array_equal(v, np.rint(v))
    assert np.all(bid < c) and np.all(c < ask)
    assert np.all(stack(bs, "valid"))
    bps = (ask - bid) / c * 1e4
    assert 0.5 < np.median(bps) < 50
    # Intraday U-shape: the first and last half hours trade more than midday.
    day = v[:390].sum(axis=1)
    assert day[:30].mean() > day[150:240].mean() and day[-30:].mean() > day[150:240].mean()


async def test_correlated_returns() -> None:
    bs = await take(make(symbols=20), 780)
    r = np.diff(np.log(stack(bs, "close")), axis=0)
    corr = np.corrcoef(r.T)
    mean_off_diag = (corr.sum() - 20) / (20 * 19)
    assert mean_off_diag > 0.1
    spy = np.diff(np.log([b.refs["SPY"] for b in bs]))
    assert np.corrcoef(spy, r.mean(axis=1))[0, 1] > 0.5


@pytest.mark.parametrize(("start", "hour_utc"), [("2024-01-02", 14), ("2024-07-01", 13)])
async def test_session_timestamps(start: str, hour_utc: int) -> None:
    bs = await take(make(symbols=2, start=start), 390 * 6)
    first = utc(bs[0].ts)
    assert first.date() == dt.date.fromisoformat(start)
    assert (first.hour, first.minute) == (hour_utc, 30)
    ts = np.array([b.ts for b in bs])
    assert np.all(np.diff(ts) > 0)
    assert all(isinstance(b.ts, int) for b in bs[:5])
    days: dict[dt.date, int] = {}
    for t in ts.tolist():
        local = dt.datetime.fromtimestamp(t / 1e9, NY)
        assert local.weekday() < 5
        assert dt.time(9, 30) <= local.time() <= dt.time(15, 59)
        days[local.date()] = days.get(local.date(), 0) + 1
    assert set(days.values()) == {390}


async def test_weekend_start_rolls_forward_and_dst_switch() -> None:
    bs = await take(make(symbols=1, start="2024-03-09"), 1)  # a Saturday
    assert utc(bs[0].ts) == dt.datetime(2024, 3, 11, 13, 30, tzinfo=UTC)  # Monday, already EDT
    bs = await take(make(symbols=1, start="2024-03-08"), 391)  # Friday EST -> Monday EDT
    assert utc(bs[0].ts) == dt.datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
    assert utc(bs[390].ts) == dt.datetime(2024, 3, 11, 13, 30, tzinfo=UTC)


def _find_day(feed: SimFeed, name: str) -> int:
    return next(d for d in range(1, 20_000) if feed.regime(d) == name)


async def _day_batches(feed: SimFeed, day: int) -> list[BarBatch]:
    k = day * feed.bars_per_day
    prev = ResumePoint(feed.bar_ts(k - 1), feed.symbols, feed.start_levels.copy())
    return await take(feed, feed.bars_per_day, prev)


async def test_regimes_differ_in_realised_vol_and_vix() -> None:
    f = make(symbols=10)
    assert {f.regime(d) for d in range(-3000, 3000)} == set(REGIMES)
    crash, calm = _find_day(f, "crash"), _find_day(f, "sideways")
    vols, vix = {}, {}
    for name, day in (("crash", crash), ("sideways", calm)):
        bs = await _day_batches(make(symbols=10), day)
        assert utc(bs[0].ts) == utc(f.bar_ts(day * f.bars_per_day))
        assert f.regime_at(bs[0].ts) == name
        r = np.diff(np.log(stack(bs, "close")), axis=0)
        vols[name] = float(r.std(axis=0).mean())
        vix[name] = float(np.mean([b.refs["VIX"] for b in bs]))
    assert vols["crash"] > 2.0 * vols["sideways"]
    assert vix["crash"] > 40 > 20 > vix["sideways"]


async def test_regime_chain_is_sticky_and_crash_leads_to_recovery() -> None:
    f = make()
    seq = [f.regime(d) for d in range(20_000)]
    switches = sum(a != b for a, b in zip(seq, seq[1:]))
    assert switches < 0.1 * len(seq)
    after_crash = [b for a, b in zip(seq, seq[1:]) if a == "crash" and b != "crash"]
    assert after_crash and after_crash.count("recovery") > len(after_crash) / 2
    # The regime of a day never depends on how far we already iterated.
    assert make().regime(4321) == seq[4321]


async def test_reference_series_present() -> None:
    bs = await take(make(symbols=4), 50)
    for b in bs:
        assert set(b.refs) == {"SPY", "VIX"}
        assert b.refs["SPY"] > 0 and b.refs["VIX"] > 0
        assert len(b.close) == 4


async def test_history_joins_live() -> None:
    f = make(symbols=5)
    hist = await f.history(500, None)
    live = await take(f, 3)
    assert len(hist) == 500
    ts = [b.ts for b in hist]
    assert ts == sorted(ts) and ts[-1] < live[0].ts
    np.testing.assert_allclose(hist[-1].close, f.start_levels, rtol=1e-12)
    spy = [b.refs["SPY"] for b in hist + live]
    assert np.all(np.abs(np.diff(np.log(spy))) < 0.05)  # the index joins smoothly as well
    gap = np.log(live[0].open / hist[-1].close)
    assert np.all(np.abs(gap) < 0.05)
    assert utc(ts[-1]).weekday() < 5 and utc(ts[-1]) < utc(live[0].ts) - dt.timedelta(hours=17)
    # History is generated the same way: continuing from the history's last bar reproduces live.
    resumed = await take(make(symbols=5), 3, ResumePoint(ts[-1], f.symbols, hist[-1].close.copy()))
    np.testing.assert_allclose(stack(resumed, "close"), stack(live, "close"), rtol=1e-9)
    assert await f.history(0, None) == []


async def test_history_with_resume_ends_at_resume_point() -> None:
    live = await take(make(symbols=3), 450)
    rp = ResumePoint(live[-1].ts, live[-1].symbols, live[-1].close.copy())
    hist = await make(symbols=3).history(450, rp)
    assert [b.ts for b in hist] == [b.ts for b in live]
    np.testing.assert_allclose(stack(hist, "close"), stack(live, "close"), rtol=1e-9)


async def test_news_items() -> None:
    bs = await take(make(symbols=20, news_rate=0.05), 390)
    items = [(b, n) for b in bs for n in b.news]
    assert 200 < len(items) < 600  # ~ 0.05 x 20 x 390 = 390
    assert len({n.id for _, n in items}) == len(items)
    sent, ret = [], []
    for b, n in items:
        assert b.ts <= n.ts < b.ts + 60 * 10**9
        assert n.symbols[0] in b.symbols and n.headline
        assert n.sentiment is not None and -1 <= n.sentiment <= 1
        i = b.symbols.index(n.symbols[0])
        sent.append(n.sentiment)
        ret.append(np.log(b.close[i] / b.open[i]))
    assert np.corrcoef(sent, ret)[0, 1] > 0.3  # same-bar reaction, no look-ahead
    quiet = await take(make(symbols=20, news_rate=0.0), 390)
    assert not any(b.news for b in quiet)


async def test_max_bars_ends_iterator() -> None:
    f = make(symbols=2, max_bars=25)
    assert len([b async for b in f.batches(None)]) == 25


async def test_pacer_spacing_lower_bound() -> None:
    pacer = Pacer(1, 1000.0)
    t0 = time.perf_counter()
    for _ in range(21):  # the first release is immediate; 20 intervals follow
        assert await pacer.wait()
    assert time.perf_counter() - t0 >= 0.015


async def test_sim_feed_paced_at_speed_1000() -> None:
    f = make(symbols=2, bar_seconds=1, speed=1000.0)
    t0 = time.perf_counter()
    bs = await take(f, 21)
    assert len(bs) == 21 and bs[1].ts - bs[0].ts == 10**9
    assert time.perf_counter() - t0 >= 0.015


async def test_close_interrupts_realtime_wait() -> None:
    f = make(symbols=2, speed="realtime")
    got: list[BarBatch] = []

    async def consume() -> None:
        async for b in f.batches(None):
            got.append(b)

    task = asyncio.create_task(consume())
    while not got:
        await asyncio.sleep(0.001)
    await f.close()  # the next bar is 60 s away; close must not wait for it
    await asyncio.wait_for(task, timeout=10)  # hang guard only
    assert len(got) == 1 and not f.connected


async def test_throughput_figure(capsys: pytest.CaptureFixture[str]) -> None:
    f = make(symbols=100, seed=42, max_bars=5000)
    t0 = time.perf_counter()
    n = 0
    async for _ in f.batches(None):
        n += 1
    elapsed = time.perf_counter() - t0
    assert n == 5000
    with capsys.disabled():
        print(f"\nSimFeed 100 symbols x 5000 bars (speed=max): {elapsed:.3f} s "
              f"= {100 * 5000 / elapsed:,.0f} symbol-bars/s")
