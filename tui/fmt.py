"""Number and time formatting shared by the widgets (one look across the dashboard)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

UP, DOWN = "green", "red"


def money(v: float | None, *, signed: bool = False, compact: bool = False) -> str:
    if v is None:
        return "-"
    sign = "+" if signed and v > 0 else ""
    if compact and abs(v) >= 1e6:
        return f"{sign}{v / 1e6:,.2f}M"
    if compact and abs(v) >= 1e4:
        return f"{sign}{v / 1e3:,.1f}k"
    return f"{sign}{v:,.2f}"


def pct(v: float | None, *, signed: bool = False, digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v * 100:+.{digits}f}%" if signed else f"{v * 100:.{digits}f}%"


def price(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def sign_style(v: float | None) -> str:
    return "" if not v else (UP if v > 0 else DOWN)


def pnl_text(v: float | None, text: str | None = None) -> Text:
    """Green when positive, red when negative, right-aligned."""
    return Text(text if text is not None else money(v, signed=True), style=sign_style(v), justify="right")


def right(s: str, style: str = "") -> Text:
    return Text(s, style=style, justify="right")


def parse_ts(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def hms(ts: str | None) -> str:
    """Time of day in UTC, which is what the daemon and the exchange logs use."""
    dt = parse_ts(ts)
    return dt.astimezone(UTC).strftime("%H:%M:%S") if dt else "-"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    if s < 10:
        return f"{seconds:.1f}s"
    if s < 120:
        return f"{seconds:.0f}s"
    if s < 7200:
        return f"{seconds / 60:.0f}m"
    if s < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
