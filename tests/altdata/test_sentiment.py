"""The lexicon scorer: direction, negation, headline/summary weighting, name (speed: bench/sentiment.py)."""

from __future__ import annotations

import pytest

from algobotd.altdata.sentiment import LexiconScorer, load_vader_lexicon, make_scorer


@pytest.fixture(scope="module")
def scorer() -> LexiconScorer:
    return LexiconScorer()


@pytest.mark.parametrize("headline", [
    "Apple beats estimates and raises guidance",
    "Analysts upgrade NVDA to outperform after record quarter",
    "FDA approves Moderna vaccine; shares surge",
    "XYZ announces $5 billion buyback",
])
def test_positive_headlines(scorer: LexiconScorer, headline: str) -> None:
    assert scorer.score(headline) > 0.2


@pytest.mark.parametrize("headline", [
    "Tesla misses estimates as deliveries plunge",
    "Regulators probe accounting fraud at XYZ",
    "Moody's downgrades Boeing; company warns of losses",
    "Retailer files for chapter 11 bankruptcy",
])
def test_negative_headlines(scorer: LexiconScorer, headline: str) -> None:
    assert scorer.score(headline) < -0.2


def test_negation_flips_direction(scorer: LexiconScorer) -> None:
    assert scorer.score("Company expects layoffs") < 0 < scorer.score("Company does not expect layoffs")
    assert scorer.score("Shares surge after results") > 0 > scorer.score("Shares fail to surge after results")
    assert scorer.score("Regulator approves merger") > 0 > scorer.score("Regulator never approves merger")


def test_finance_overrides_vader(scorer: LexiconScorer) -> None:
    vader = load_vader_lexicon()
    assert len(vader) > 7000  # the lexicon shipped in the vaderSentiment wheel, not a download
    assert scorer.score("Quarterly tax liability disclosed") <= 0.0  # neutral words stay neutral-ish
    assert scorer.score("Earnings miss") < 0  # VADER alone has no view on "miss" in finance
    assert scorer.score("AAPL files quarterly report") == 0.0


def test_headline_and_summary_are_weighted(scorer: LexiconScorer) -> None:
    head = scorer.score("Apple beats estimates")
    both = scorer.score("Apple beats estimates", "Regulators opened a fraud probe; losses widen.")
    assert 0 < both < head  # the summary pulls the score, the headline dominates
    assert scorer.score("", "Record profit") > 0  # summary alone is used when there is no headline
    assert scorer.score_many([("Apple beats estimates", ""), ("Tesla misses", "")])[1] < 0


def test_scores_bounded_and_named(scorer: LexiconScorer) -> None:
    s = scorer.score("surge soar rally record beat upgrade " * 20)
    assert -1.0 < s < 1.0
    assert make_scorer("lexicon").name == scorer.name == "lexicon-vader-fin-v1"


def test_transformer_scorer_never_downloads(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        make_scorer("transformer", str(tmp_path / "no-such-checkpoint"))
