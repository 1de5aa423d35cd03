"""A real data set shipped inside an installed package: the ``arch`` package's daily bars.

``arch.data`` ships S&P 500 and NASDAQ Composite daily OHLCV (1999-2018) and the VIX. They
become bar batches of two symbols (``SPX``, ``NDX``) with ``SPY``/``VIX`` reference series, so
the training path is exactly the one used for stored bars. Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from algobotd.domain import BarBatch

SYMBOLS = ("SPX", "NDX")


def arch_batches(start: str | None = None, end: str | None = None) -> list[BarBatch]:
    try:
        from arch.data import nasdaq, sp500, vix
    except ImportError as exc:  # the dev extra installs it
        raise RuntimeError("the real data set needs the 'arch' package (pip install 'algobot[dev]')") from exc
    spx, ndx, vx = sp500.load(), nasdaq.load(), vix.load()
    idx = spx.index.intersection(ndx.index)
    if start:
        idx = idx[idx >= start]
    if end:
        idx = idx[idx <= end]
    frames = [spx.loc[idx], ndx.loc[idx]]
    vclose = vx.iloc[:, 0].reindex(idx).to_numpy(float)  # one column: the VIX close
    cols = {k: np.stack([f[k].to_numpy(float) for f in frames], axis=1) for k in ("Open", "High", "Low", "Close", "Volume")}
    ts = (idx.tz_localize("UTC").as_unit("ns").asi8 + 21 * 3600 * 10**9)  # the close, 16:00 New York ~ 21:00 UTC
    out: list[BarBatch] = []
    for t in range(len(idx)):
        c = cols["Close"][t]
        valid = np.isfinite(c) & (c > 0)
        refs = {"SPY": float(cols["Close"][t, 0])}
        if np.isfinite(vclose[t]):
            refs["VIX"] = float(vclose[t])
        out.append(BarBatch(int(ts[t]), SYMBOLS, cols["Open"][t], cols["High"][t], cols["Low"][t], c,
                            cols["Volume"][t], valid, np.full(2, np.nan), np.full(2, np.nan), refs))
    return out
