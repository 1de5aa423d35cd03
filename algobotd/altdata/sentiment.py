"""Sentiment scorers for headlines and social text: a fast lexicon scorer and an optional local
transformer, behind one small protocol so the rest of the daemon never knows which one runs.

Why a lexicon of our own making on top of VADER's:
- VADER's word list (shipped inside the ``vaderSentiment`` wheel, read from the installed package,
  never downloaded) is tuned for social media; financial text flips some words ("liability",
  "bull", "beat", "miss", "cut") or leaves them neutral. ``FINANCE`` overrides those, and a few
  two-word phrases ("price target", "guidance cut") are matched before single words.
- We do not call VADER's ``SentimentIntensityAnalyzer``: its per-call rule machinery costs
  ~0.1-0.3 ms; a regex tokenizer plus dict look-ups scores a headline in a few microseconds.
- Negation: a negator ("not", "no", "never", "n't", "without", "fails to" ...) within the three
  preceding tokens flips and damps a word's valence (VADER's N_SCALAR = -0.74).
- Headline and summary are scored separately and blended (``headline_weight``), because
  summaries are long and often boilerplate; an empty summary leaves the headline alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol

N_SCALAR = -0.74  # VADER: valence multiplier of a negated word
NORM_ALPHA = 15.0  # VADER's normalisation: sum / sqrt(sum^2 + alpha) maps to (-1, 1)
NEGATION_WINDOW = 3
VADER_MAX = 4.0

NEGATORS = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot",
    "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't", "won't", "wouldn't",
    "can't", "couldn't", "shouldn't", "hasn't", "haven't", "hadn't", "fails", "failed", "unlikely",
    "denies", "denied", "rejects", "rejected", "avoids", "avoided", "dismisses",
})

# Finance valences on VADER's -4..4 scale; they replace VADER's where both exist.
FINANCE: dict[str, float] = {
    "beat": 2.0, "beats": 2.0, "tops": 1.8, "topped": 1.8, "exceed": 1.8, "exceeds": 1.8, "exceeded": 1.8,
    "miss": -2.0, "misses": -2.0, "missed": -2.0, "upgrade": 2.2, "upgrades": 2.2, "upgraded": 2.2,
    "downgrade": -2.2, "downgrades": -2.2, "downgraded": -2.2, "outperform": 1.8, "underperform": -1.8,
    "overweight": 1.2, "underweight": -1.2, "bullish": 2.2, "bearish": -2.2, "bull": 1.2, "bear": -1.2,
    "rally": 1.8, "rallies": 1.8, "surge": 2.2, "surges": 2.2, "soar": 2.4, "soars": 2.4, "jumps": 1.8,
    "jump": 1.6, "climbs": 1.4, "gains": 1.4, "rises": 1.2, "record": 1.2, "raises": 1.2, "raised": 1.2,
    "plunge": -2.6, "plunges": -2.6, "plummets": -2.8, "tumbles": -2.2, "slumps": -2.2, "sinks": -2.0,
    "falls": -1.4, "drops": -1.4, "slides": -1.4, "declines": -1.2, "cuts": -1.2, "cut": -1.2,
    "layoffs": -1.8, "bankruptcy": -3.2, "bankrupt": -3.2, "default": -2.6, "defaults": -2.6,
    "fraud": -3.0, "probe": -1.8, "probes": -1.8, "probed": -1.8, "investigation": -1.8, "lawsuit": -1.8, "sues": -1.8, "sued": -1.8,
    "recall": -1.8, "recalls": -1.8, "halted": -1.4, "delisted": -2.6, "delisting": -2.6,
    "dilution": -1.8, "impairment": -2.0, "writedown": -2.0, "restatement": -2.4, "subpoena": -2.0,
    "warns": -1.8, "warning": -1.6, "shortfall": -2.0, "losses": -1.8, "loss": -1.6, "weak": -1.6,
    "strong": 1.6, "robust": 1.6, "profit": 1.4, "profitable": 1.6, "dividend": 0.8, "buyback": 1.6,
    "repurchase": 1.2, "approval": 1.8, "approved": 1.8, "approves": 1.8, "acquire": 0.6,
    "acquisition": 0.4, "merger": 0.4, "wins": 1.6, "awarded": 1.6, "contract": 0.6, "growth": 1.2,
    "accretive": 1.6, "dilutive": -1.6, "volatile": -0.6, "volatility": -0.4, "liability": -0.6,
    "liabilities": -0.6, "tax": 0.0, "share": 0.0, "shares": 0.0, "stock": 0.0, "company": 0.0,
    "crude": 0.0, "mine": 0.0, "gross": 0.0, "fine": -1.0, "fined": -1.8, "penalty": -1.8,
}
PHRASES: dict[str, float] = {
    "price target": 0.0, "guidance cut": -2.4, "cuts guidance": -2.4, "lowers guidance": -2.2,
    "raises guidance": 2.2, "record high": 2.0, "all-time high": 2.0, "52-week high": 1.4,
    "52-week low": -1.4, "short seller": -1.4, "going concern": -2.8, "chapter 11": -3.2,
    "beats estimates": 2.4, "misses estimates": -2.4, "better than expected": 2.0,
    "worse than expected": -2.0, "profit warning": -2.6, "strong buy": 2.2, "sell rating": -1.6,
}

_TOKEN = re.compile(r"[a-z0-9][a-z0-9'\-]*")


class Scorer(Protocol):
    """Scores text in [-1, 1]; ``name`` is stored with every score (``news.scorer``)."""

    name: str

    def score(self, headline: str, summary: str = "") -> float: ...

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[float]: ...


def load_vader_lexicon() -> dict[str, float]:
    """VADER's word -> mean valence table, read from the installed ``vaderSentiment`` package."""
    text = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                out[parts[0].lower()] = float(parts[1])
            except ValueError:
                continue
    return out


class LexiconScorer:
    """VADER lexicon + finance overrides + negation; microseconds per headline, no model files."""

    def __init__(self, headline_weight: float = 0.7, lexicon: dict[str, float] | None = None) -> None:
        base = load_vader_lexicon() if lexicon is None else dict(lexicon)
        base.update(FINANCE)
        self.lexicon = base
        self.phrases = {tuple(k.split()): v for k, v in PHRASES.items()}
        self.headline_weight = headline_weight
        self.name = "lexicon-vader-fin-v1"

    def _raw(self, text: str) -> tuple[float, int]:
        """Sum of (possibly negated) valences and the number of scored words."""
        toks = _TOKEN.findall(text.lower())
        total, hits, last_neg, i = 0.0, 0, -NEGATION_WINDOW - 1, 0
        lex, phrases = self.lexicon, self.phrases
        while i < len(toks):
            t = toks[i]
            if t in NEGATORS or t.endswith("n't"):
                last_neg = i
                i += 1
                continue
            v: float | None = None
            step = 1
            if i + 1 < len(toks):
                v = phrases.get((t, toks[i + 1]))
                step = 2 if v is not None else 1
                if v is None and i + 2 < len(toks):
                    v = phrases.get((t, toks[i + 1], toks[i + 2]))
                    step = 3 if v is not None else 1
            if v is None:
                v = lex.get(t)
            if v:
                if i - last_neg <= NEGATION_WINDOW:
                    v *= N_SCALAR
                total += v
                hits += 1
            i += step
        return total, hits

    def _one(self, text: str) -> float | None:
        if not text:
            return None
        total, hits = self._raw(text)
        if hits == 0:
            return 0.0
        return total / math.sqrt(total * total + NORM_ALPHA)

    def score(self, headline: str, summary: str = "") -> float:
        h, s = self._one(headline), self._one(summary)
        if s is None:
            return h or 0.0
        if h is None:
            return s
        w = self.headline_weight
        return w * h + (1.0 - w) * s

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[float]:
        return [self.score(h, s) for h, s in items]


class TransformerScorer:
    """A sequence-classification checkpoint already on disk (e.g. FinBERT), batched, GPU if present.

    Loaded with ``local_files_only=True``: a missing path is a config error, never a download.
    Labels are read from the checkpoint's ``id2label``; the score is P(positive) - P(negative).
    """

    def __init__(self, path: str, headline_weight: float = 0.7, batch_size: int = 32) -> None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(f"no transformer checkpoint directory at {path}")
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:  # transformers is optional: the lexicon scorer needs nothing
            raise RuntimeError(f"the transformer scorer needs the 'transformers' package: {exc}") from None
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(p), local_files_only=True)
        self.model.to(self.device).eval()
        labels = {int(k): str(v).lower() for k, v in self.model.config.id2label.items()}
        self.pos = [i for i, v in labels.items() if v.startswith("pos")]
        self.neg = [i for i, v in labels.items() if v.startswith("neg")]
        if not self.pos or not self.neg:
            raise ValueError(f"checkpoint labels {labels} have no positive/negative classes")
        self.headline_weight, self.batch_size = headline_weight, batch_size
        self.name = f"transformer:{p.name}"

    def _probs(self, texts: list[str]) -> list[float]:
        out: list[float] = []
        torch = self._torch
        for k in range(0, len(texts), self.batch_size):
            chunk = texts[k:k + self.batch_size]
            enc = self.tok(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt").to(self.device)
            with torch.no_grad():
                p = torch.softmax(self.model(**enc).logits, dim=-1)
            out += (p[:, self.pos].sum(-1) - p[:, self.neg].sum(-1)).tolist()
        return out

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[float]:
        heads = self._probs([h for h, _ in items])
        with_sum = [i for i, (_, s) in enumerate(items) if s]
        sums = self._probs([items[i][1] for i in with_sum]) if with_sum else []
        w = self.headline_weight
        for i, s in zip(with_sum, sums):
            heads[i] = w * heads[i] + (1.0 - w) * s
        return heads

    def score(self, headline: str, summary: str = "") -> float:
        return self.score_many([(headline, summary)])[0]


def make_scorer(kind: str = "lexicon", path: str = "", headline_weight: float = 0.7) -> Scorer:
    if kind == "transformer":
        return TransformerScorer(path, headline_weight)
    return LexiconScorer(headline_weight)
