"""The optional transformer scorer on a tiny checkpoint built here (random weights, local files
only): it loads without a hub, batches, labels map to P(positive) - P(negative). Skipped when
the optional ``transformers`` package is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")

from algobotd.altdata.sentiment import make_scorer  # noqa: E402

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "apple", "beats", "misses", "estimates", "shares", "fall"]


def tiny_checkpoint(path: Path) -> Path:
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizer(str(path / "vocab.txt"))
    cfg = transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=64, num_labels=3,
                                  id2label={0: "positive", 1: "negative", 2: "neutral"},
                                  label2id={"positive": 0, "negative": 1, "neutral": 2})
    model = transformers.BertForSequenceClassification(cfg)
    tok.save_pretrained(str(path))
    model.save_pretrained(str(path))
    return path


def test_local_checkpoint_scores_in_range(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "tiny-finbert")
    scorer = make_scorer("transformer", str(ckpt), headline_weight=0.7)
    assert scorer.name == "transformer:tiny-finbert"
    items = [("apple beats estimates", ""), ("shares fall", "apple misses estimates")] * 20  # > one batch
    scores = scorer.score_many(items)
    assert len(scores) == 40 and all(-1.0 <= s <= 1.0 for s in scores)
    assert scores[0] == pytest.approx(scorer.score("apple beats estimates"), abs=1e-6)


def test_checkpoint_without_sentiment_labels_is_refused(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "x")
    cfg = transformers.AutoConfig.from_pretrained(str(ckpt))
    cfg.id2label = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    cfg.save_pretrained(str(ckpt))
    with pytest.raises(ValueError):
        make_scorer("transformer", str(ckpt))
