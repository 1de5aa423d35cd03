"""The O(1) building blocks against brute force, with uneven per-symbol clocks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from algobotd.features.rolling import Ewma, LagRing, RollingExtrema, RollingMoments
from algobotd.features.sequence import SequenceBuffer


def _feed(n_steps: int, n_sym: int, seed: int):  # type: ignore[no-untyped-def]
    """Per step: the symbols that report (about 70%) and their values (coarse, so ties happen)."""
    g = np.random.default_rng(seed)
    for _ in range(n_steps):
        cols = np.flatnonzero(g.random(n_sym) < 0.7)
        yield cols, np.round(g.normal(100, 2, cols.size), 0)


def test_rolling_extrema_matches_brute_force_with_ties_most_recent() -> None:
    w, n = 7, 5
    hi, lo = RollingExtrema(w, n), RollingExtrema(w, n, (-1.0,))
    both = RollingExtrema(w, n, (1.0, -1.0))  # the two in one structure
    hist: list[list[float]] = [[] for _ in range(n)]
    checked = 0
    for cols, x in _feed(300, n, 1):
        hi.push(cols, x)
        lo.push(cols, x)
        both.push(cols, np.stack([x, x], axis=1))
        for i, v in zip(cols, x):
            hist[i].append(v)
        vmax, amax = hi.query(cols)
        vmin, amin = lo.query(cols)
        vboth, aboth = both.query(cols)
        assert np.array_equal(vboth, np.stack([vmax, vmin], axis=1), equal_nan=True)
        assert np.array_equal(aboth, np.stack([amax, amin], axis=1), equal_nan=True)
        for k, i in enumerate(cols):
            h = hist[i]
            if len(h) < w:
                assert np.isnan(vmax[k]) and np.isnan(amax[k])
                continue
            win = np.array(h[-w:])
            assert vmax[k] == win.max() and vmin[k] == win.min()
            assert amax[k] == int(np.argmax(win[::-1])) and amin[k] == int(np.argmin(win[::-1]))
            checked += 1
    assert checked > 500


def test_recent_scan_of_the_ring_matches_brute_force_with_ties_most_recent() -> None:
    w, n = 7, 5
    both = RollingExtrema(w, n, (1.0, -1.0))
    hist: list[list[float]] = [[] for _ in range(n)]
    checked = 0
    for cols, x in _feed(300, n, 9):
        both.push(cols, np.stack([x, x], axis=1))
        for i, v in zip(cols, x):
            hist[i].append(v)
        recent = both.recent(cols, (3, 5), ages=(3, 5))
        assert both.recent(cols, (3,))[3][1] is None  # ages only when asked for
        for length, (val, age) in recent.items():
            assert age is not None
            for k, i in enumerate(cols):
                h = hist[i][-length:][::-1]  # latest first
                if len(hist[i]) < length:
                    assert np.isnan(val[k]).all() and np.isnan(age[k]).all()
                    continue
                assert val[k].tolist() == [max(h), min(h)]
                assert age[k].tolist() == [h.index(max(h)), h.index(min(h))]  # first = most recent
                checked += 1
    assert checked > 500


def test_extrema_in_step_fast_path_equals_the_per_symbol_path() -> None:
    n, g = 4, np.random.default_rng(7)
    fast, slow = (RollingExtrema(5, n, (1.0, -1.0)) for _ in range(2))
    every = np.arange(n)
    for step in range(60):
        slow.in_step = False
        x = np.round(g.normal(100, 2, (n, 2)), 0)  # coarse: ties happen
        hold = np.array([2]) if step == 40 else None
        fast.push(every, x, hold)
        slow.push(every, x, hold)
        assert fast.in_step == (step < 40)
        for got, want in zip(fast.query(every), slow.query(every)):
            assert np.array_equal(got, want, equal_nan=True)
        a, b = fast.recent(every, (2, 4), ages=(4,)), slow.recent(every, (2, 4), ages=(4,))
        assert all(np.array_equal(a[w][0], b[w][0], equal_nan=True) for w in (2, 4))
        assert np.array_equal(a[4][1], b[4][1], equal_nan=True)


def test_rolling_moments_sums_variance_covariance_and_nan_windows() -> None:
    w, n = 6, 4
    m = RollingMoments(w, n, 2, pairs=((0, 1),))
    hist: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    g = np.random.default_rng(3)
    for step, (cols, x) in enumerate(_feed(400, n, 2)):
        y = g.normal(0, 1, cols.size)
        y[g.random(cols.size) < 0.05] = np.nan  # a NaN blanks the windows it is in
        m.push(cols, np.stack([x, y], axis=1))
        if step % 50 == 49:
            m.refresh()
        for i, a, b in zip(cols, x, y):
            hist[i].append((a, b))
        s, var_y, cov = m.sum(cols, 0), m.var(cols, 1), m.cov(cols, 0)
        for k, i in enumerate(cols):
            h = np.array(hist[i][-w:])
            if len(hist[i]) < w:
                assert np.isnan(s[k])
                continue
            assert np.isclose(s[k], h[:, 0].sum(), rtol=1e-12)
            if np.isnan(h[:, 1]).any():
                assert np.isnan(var_y[k]) and np.isnan(cov[k])
            else:
                assert np.isclose(var_y[k], h[:, 1].var(ddof=1), rtol=1e-9)
                assert np.isclose(cov[k], np.cov(h[:, 0], h[:, 1])[0, 1], rtol=1e-9, atol=1e-12)


def test_several_windows_in_one_structure_and_held_rows_equal_separate_structures() -> None:
    """Windows (3, 6) sharing one ring, fed every symbol with the absent ones held (the
    engine's path), give the statistics of two one-window structures fed only the present
    symbols (the plain path), through refreshes and a NaN now and then."""
    n = 5
    both = RollingMoments((3, 6), n, 2, pairs=((0, 1),))
    alone = {3: RollingMoments(3, n, 2, pairs=((0, 1),)), 6: RollingMoments(6, n, 2, pairs=((0, 1),))}
    g = np.random.default_rng(4)
    every = np.arange(n)
    compared = 0
    for step, (cols, x) in enumerate(_feed(300, n, 5)):
        y = g.normal(0, 1, cols.size)
        y[g.random(cols.size) < 0.05] = np.nan
        rows = np.full((n, 2), np.nan)  # absent symbols' rows hold garbage (NaN here): never used
        rows[cols] = np.stack([x, y], axis=1)
        both.push(every, rows, hold=np.setdiff1d(every, cols))
        for m in alone.values():
            m.push(cols, rows[cols])
        if step % 40 == 39:
            both.refresh()
            for m in alone.values():
                m.refresh()
        st = both.stats(every)
        for j, w in enumerate((3, 6)):
            ref = alone[w].stats(every)
            for got, want in ((st.sum[j], ref.sum), (st.var[j], ref.var), (st.cov[j], ref.cov)):
                assert np.array_equal(np.isnan(got), np.isnan(want))
                assert np.allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
                compared += int(np.isfinite(want).sum())
        assert np.array_equal(both.pushes, alone[6].pushes)
    assert compared > 1000


def test_moments_in_step_fast_path_equals_the_per_symbol_path() -> None:
    """Every symbol pushing every time keeps whole ring slots (``in_step``); the result is
    bit-identical to the per-symbol row path, and a held symbol ends the fast path."""
    n, g = 4, np.random.default_rng(6)
    fast, slow = (RollingMoments((3, 5), n, 2, pairs=((0, 1),)) for _ in range(2))
    every = np.arange(n)
    for step in range(40):
        slow.in_step = False
        rows = g.normal(0, 1, (n, 2))
        rows[g.random((n, 2)) < 0.05] = np.nan
        hold = np.array([1]) if step == 30 else None
        fast.push(every, rows, hold)
        slow.push(every, rows, hold)
        assert fast.in_step == (step < 30)
        a, b = fast.stats(every), slow.stats(every)
        for got, want in ((a.sum, b.sum), (a.var, b.var), (a.cov, b.cov)):
            assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(fast.ring, slow.ring, equal_nan=True)


def test_moments_grow_keeps_old_symbols_and_starts_new_ones_empty() -> None:
    m = RollingMoments(3, 2, 1)
    for v in (1.0, 2.0, 3.0):
        m.push(np.array([0, 1]), np.array([[v], [10 * v]]))
    m.grow(3)
    m.push(np.array([2]), np.array([[5.0]]))
    assert m.sum(np.array([0, 1, 2]), 0)[:2].tolist() == [6.0, 60.0]
    assert np.isnan(m.sum(np.array([2]), 0)[0])


def test_lag_ring_and_ewma_match_pandas() -> None:
    ring = LagRing(4, 2)
    ema = Ewma((5.0,), 2, (3,))
    xs = np.arange(1.0, 9.0)
    got = []
    for v in xs:
        ring.push(np.array([0]), np.array([v]))
        got.append(ema.push(np.array([0]), np.array([[v]]))[0, 0])
    assert ring.ago(np.array([0]), 3)[0] == 5.0 and np.isnan(ring.ago(np.array([1]), 0)[0])
    expect = pd.Series(xs).ewm(span=5, adjust=False).mean().to_numpy()
    assert np.isnan(got[:2]).all()
    assert np.allclose(got[2:], expect[2:], rtol=1e-14)


def test_sequence_buffer_is_a_view_in_time_order() -> None:
    seq = SequenceBuffer(4, 2, 3)
    for t in range(10):
        rows = np.full((2, 3), float(t))
        seq.push(rows, np.array([True, t % 2 == 0]))
        win = seq.window()
        assert win.shape == (2, 4, 3)
        assert np.shares_memory(win, seq.buf)  # no copy of the history
        expect = [float(k) for k in range(t - 3, t + 1)]
        assert [float(v) if v == v else -1.0 for v in win[0, :, 0]] == [e if e >= 0 else -1.0 for e in expect]
    assert seq.mask()[1].tolist() == [True, False, True, False]  # t = 6..9: fresh on even t only
    seq.grow(3)
    assert seq.window().shape == (3, 4, 3) and np.isnan(seq.window()[2]).all()
