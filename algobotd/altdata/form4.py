"""SEC Form 4 (EDGAR ``ownershipDocument`` XML) -> insider transactions -> net insider buying.

Only open-market purchases (code ``P``) and sales (``S``) of non-derivative securities count as
signal: grants (A), option exercises (M), tax withholding (F) and gifts (G) are compensation
mechanics, not a view on the stock. A filing's ``4/A`` amendment replaces the original's rows
(same accession number root is not reliable, so rows are keyed by owner, date, code, shares,
price: a re-filed identical row counts once).

Parsing uses the standard library's ElementTree, which does not resolve external entities;
EDGAR's ``.txt`` submissions wrap the XML in SGML, so the ``<XML>`` section is cut out first.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass

from algobotd.domain import InsiderFiling

OPEN_MARKET = {"P": 1.0, "S": -1.0}
_XML_BLOCK = re.compile(r"<XML>\s*(.*?)\s*</XML>", re.DOTALL | re.IGNORECASE)


class Form4Error(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class InsiderTrade:
    symbol: str
    issuer_cik: str
    owner: str
    owner_cik: str
    role: str  # "director", "officer:<title>", "10% owner", "other"
    date: dt.date
    code: str  # SEC transaction code (P, S, A, M, F, G ...)
    shares: float
    price: float  # NaN when the filing gives none (grants, gifts)
    acquired: bool  # A/D code: True = acquired
    owned_after: float
    direct: bool
    plan_10b5_1: bool
    amendment: bool

    @property
    def signed_value(self) -> float:
        """Dollar value, + for open-market buys, - for sales, 0 for everything else."""
        sign = OPEN_MARKET.get(self.code, 0.0)
        if sign == 0.0 or not math.isfinite(self.price):
            return 0.0
        return sign * self.shares * self.price


def _text(el: ET.Element | None, path: str) -> str:
    if el is None:
        return ""
    node = el.find(path)
    if node is None:
        return ""
    value = node.find("value")
    return ((value.text if value is not None else node.text) or "").strip()


def _num(el: ET.Element | None, path: str) -> float:
    s = _text(el, path).replace(",", "")
    try:
        return float(s)
    except ValueError:
        return math.nan


def _flag(el: ET.Element | None, path: str) -> bool:
    return _text(el, path).lower() in ("1", "true")


def parse_form4(document: str | bytes) -> list[InsiderTrade]:
    """Every non-derivative transaction of one filing; raises Form4Error if it is not a Form 4."""
    text = document.decode("utf-8", errors="replace") if isinstance(document, bytes) else document
    block = _XML_BLOCK.search(text)
    if block is not None:
        text = block.group(1)
    try:
        root = ET.fromstring(text.strip().encode())
    except ET.ParseError as exc:
        raise Form4Error(f"not XML: {exc}") from None
    if root.tag != "ownershipDocument":
        raise Form4Error(f"not an ownershipDocument: <{root.tag}>")
    doc_type = _text(root, "documentType")
    if doc_type not in ("4", "4/A"):
        raise Form4Error(f"document type {doc_type!r} is not a Form 4")
    issuer = root.find("issuer")
    symbol = _text(issuer, "issuerTradingSymbol").upper()
    if not symbol:
        raise Form4Error("no issuerTradingSymbol")
    cik = _text(issuer, "issuerCik")
    owner = root.find("reportingOwner")
    name = _text(owner, "reportingOwnerId/rptOwnerName")
    owner_cik = _text(owner, "reportingOwnerId/rptOwnerCik")
    rel = owner.find("reportingOwnerRelationship") if owner is not None else None
    if _flag(rel, "isOfficer"):
        role = f"officer:{_text(rel, 'officerTitle')}"
    elif _flag(rel, "isDirector"):
        role = "director"
    elif _flag(rel, "isTenPercentOwner"):
        role = "10% owner"
    else:
        role = "other"
    plan = _flag(root, "aff10b5One")
    out: list[InsiderTrade] = []
    for tx in root.iterfind("nonDerivativeTable/nonDerivativeTransaction"):
        try:
            date = dt.date.fromisoformat(_text(tx, "transactionDate")[:10])
        except ValueError:
            continue  # a row without a usable date cannot be placed on the timeline
        shares = _num(tx, "transactionAmounts/transactionShares")
        if not math.isfinite(shares) or shares <= 0:
            continue
        out.append(InsiderTrade(
            symbol=symbol, issuer_cik=cik, owner=name, owner_cik=owner_cik, role=role, date=date,
            code=_text(tx, "transactionCoding/transactionCode").upper(), shares=shares,
            price=_num(tx, "transactionAmounts/transactionPricePerShare"),
            acquired=_text(tx, "transactionAmounts/transactionAcquiredDisposedCode") == "A",
            owned_after=_num(tx, "postTransactionAmounts/sharesOwnedFollowingTransaction"),
            direct=_text(tx, "ownershipNature/directOrIndirectOwnership") != "I",
            plan_10b5_1=plan, amendment=doc_type == "4/A"))
    return out


def filing_event(symbol: str, published_ns: int, trades: list[InsiderTrade]) -> InsiderFiling:
    """One filing's open-market trades in ``symbol`` as the feature event (grants, exercises,
    withholding and gifts net to zero: they say nothing about the insider's view)."""
    rows = [t for t in trades if t.symbol == symbol and t.code in OPEN_MARKET]
    owner = next((t.owner_cik or t.owner for t in trades if t.symbol == symbol), "") or "unknown"
    return InsiderFiling(symbol, published_ns, owner, sum(OPEN_MARKET[t.code] * t.shares for t in rows),
                         sum(t.signed_value for t in rows))


class InsiderBook:
    """Per-symbol net insider buying over a trailing window, from parsed trades."""

    def __init__(self, window_days: int = 90) -> None:
        self.window = dt.timedelta(days=window_days)
        self._rows: dict[str, dict[tuple[str, dt.date, str, float, float], InsiderTrade]] = defaultdict(dict)

    def add(self, trades: list[InsiderTrade]) -> int:
        """Returns how many rows were new (re-filed identical rows count once)."""
        return len(self.add_new(trades))

    def add_new(self, trades: list[InsiderTrade]) -> list[InsiderTrade]:
        """The rows not seen before (an amendment's repeated rows are not news to the market)."""
        new: list[InsiderTrade] = []
        for t in trades:
            key = (t.owner_cik or t.owner, t.date, t.code, t.shares, t.price)
            rows = self._rows[t.symbol]
            if key not in rows:
                new.append(t)
            rows[key] = t
        return new

    def features(self, symbol: str, asof: dt.date) -> dict[str, float]:
        """net_value: $ bought - $ sold; buyers / sellers: distinct insiders; excluding 10b5-1 sales
        from ``sellers`` (pre-scheduled sales say little about the insider's view)."""
        lo = asof - self.window
        rows = [t for t in self._rows.get(symbol, {}).values() if lo < t.date <= asof and t.code in OPEN_MARKET]
        net = sum(t.signed_value for t in rows)
        buyers = {t.owner_cik or t.owner for t in rows if t.code == "P"}
        sellers = {t.owner_cik or t.owner for t in rows if t.code == "S" and not t.plan_10b5_1}
        return {"net_value": net, "buyers": float(len(buyers)), "sellers": float(len(sellers)),
                "net_insiders": float(len(buyers) - len(sellers))}
