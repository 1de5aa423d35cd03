"""Self-contained HTML reports with inline SVG charts (no plotting dependency, opens offline)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

W, H, PAD = 520, 220, 38
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


def _scale(lo: float, hi: float, a: float, b: float):  # type: ignore[no-untyped-def]
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _frame(title: str, ylo: float, yhi: float, fmt: str) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" class="chart">',
             f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<rect x="{PAD}" y="20" width="{W - PAD - 8}" height="{H - 20 - PAD}" fill="none" stroke="#ccc"/>']
    for v in (ylo, (ylo + yhi) / 2, yhi):
        y = _scale(ylo, yhi, H - PAD, 20)(v)
        parts.append(f'<text x="{PAD - 3}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{fmt.format(v)}</text>')
    return parts


def line_chart(title: str, series: list[tuple[str, np.ndarray]], fmt: str = "{:.2f}",
               band: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Lines (and an optional shaded lo..hi band) against the bar index."""
    arrays = [np.asarray(s, dtype=float) for _, s in series] + ([np.asarray(b, dtype=float) for b in band] if band else [])
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return f"<p>{html.escape(title)}: no data</p>"
    ylo = float(min(np.nanmin(a) for a in arrays))
    yhi = float(max(np.nanmax(a) for a in arrays))
    n = max(a.size for a in arrays)
    sx, sy = _scale(0, max(n - 1, 1), PAD, W - 8), _scale(ylo, yhi, H - PAD, 20)
    parts = _frame(title, ylo, yhi, fmt)

    def pts(a: np.ndarray) -> str:
        step = max(1, a.size // 400)  # a few hundred points per line keep the file small
        idx = np.arange(0, a.size, step)
        return " ".join(f"{sx(i):.1f},{sy(a[i]):.1f}" for i in idx)

    if band is not None:
        lo, hi = (np.asarray(b, dtype=float) for b in band)
        poly = pts(hi) + " " + " ".join(reversed(pts(lo).split(" ")))
        parts.append(f'<polygon points="{poly}" fill="#1f77b4" fill-opacity="0.15" stroke="none"/>')
    for k, (name, s) in enumerate(series):
        a = np.asarray(s, dtype=float)
        if a.size:
            parts.append(f'<polyline points="{pts(a)}" fill="none" stroke="{COLORS[k % len(COLORS)]}" '
                         f'stroke-width="1.2"><title>{html.escape(name)}</title></polyline>')
    legend = " ".join(f'<tspan fill="{COLORS[k % len(COLORS)]}">&#9632; {html.escape(nm)}</tspan>'
                      for k, (nm, _) in enumerate(series[:6]))
    parts.append(f'<text x="{PAD}" y="{H - 8}" font-size="10">{legend}</text></svg>')
    return "".join(parts)


def histogram(title: str, values: np.ndarray, bins: int = 30, fmt: str = "{:.0%}") -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return f"<p>{html.escape(title)}: no data</p>"
    lo, hi = float(v.min()), float(v.max())
    if not hi - lo > 1e-9 * max(1.0, abs(lo)):  # one value (or nearly): give it a visible bin
        lo, hi = lo - 0.5 * max(abs(lo), 1e-6), hi + 0.5 * max(abs(hi), 1e-6)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    parts = _frame(title, 0.0, float(counts.max()), "{:.0f}")
    sx, sy = _scale(edges[0], edges[-1], PAD, W - 8), _scale(0, float(counts.max()) or 1.0, H - PAD, 20)
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        parts.append(f'<rect x="{sx(a):.1f}" y="{sy(c):.1f}" width="{max(sx(b) - sx(a) - 1, 0.5):.1f}" '
                     f'height="{H - PAD - sy(c):.1f}" fill="#1f77b4"/>')
    for x in (edges[0], (edges[0] + edges[-1]) / 2, edges[-1]):
        parts.append(f'<text x="{sx(x):.1f}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">{fmt.format(x)}</text>')
    if edges[0] < 0 < edges[-1]:
        parts.append(f'<line x1="{sx(0):.1f}" x2="{sx(0):.1f}" y1="20" y2="{H - PAD}" stroke="#d62728" stroke-dasharray="3"/>')
    parts.append("</svg>")
    return "".join(parts)


def write_html(path: Path, title: str, intro: str, sections: list[tuple[str, str]]) -> Path:
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in sections)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:20px}}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}.chart{margin:4px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{intro}{body}</body></html>"
    )
    return path


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
