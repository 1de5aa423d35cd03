"""Stateful one-step inference equals the full-sequence forward pass on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algobotd.models.deep import NETS, STREAMABLE, DeepParams, SequenceLearner
from algobotd.models.stream import SequenceStream

F, H, L = 5, 8, 6


def fitted(name: str) -> SequenceLearner:
    """A learner with random (untrained) weights and non-trivial scaling: equality is about the arithmetic."""
    torch.manual_seed(3)
    lr = SequenceLearner(name, DeepParams(seq_len=L, hidden=H, device="cpu"))
    lr.net = NETS[name](F, H).eval()
    lr.n_features = F
    lr.mean = np.linspace(-0.5, 0.5, F).astype(np.float32)
    lr.std = np.linspace(0.5, 2.0, F).astype(np.float32)
    return lr


def rows(n: int, t: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, t, F)).astype(np.float32)
    x[0, 2, 1] = np.nan  # NaN -> the training mean, the same in both forms
    return x


@pytest.mark.parametrize("name", STREAMABLE)
def test_one_step_equals_the_longer_sequence(name: str) -> None:
    """Warm on the first L rows, then one step per row: each output equals the forward pass from the
    zero state over all rows so far (LSTM, CNN); ALSTM pools over its last L states by design."""
    lr = fitted(name)
    x = torch.nan_to_num(lr._scale(rows(7, 3 * L)))
    net = lr.net
    with torch.inference_mode():
        y, state = net.warm(x[:, :L])  # type: ignore[operator]
        assert torch.allclose(y, net(x[:, :L]), atol=1e-6)
        for t in range(L, 3 * L):
            y, state = net.step(x[:, t], state)  # type: ignore[operator]
            if name == "attention":
                out, _ = net.rnn(net.proj(x[:, : t + 1]))
                ref = net._pool(out[:, -L:], net.att(out[:, -L:]))
            else:
                ref = net(x[:, : t + 1])
            assert torch.allclose(y, ref, atol=1e-5), (name, t)


@pytest.mark.parametrize("name", STREAMABLE)
def test_stream_rewarm_and_new_symbols_match_the_window(name: str) -> None:
    lr = fitted(name)
    x = rows(6, 4 * L, seed=1)
    every = SequenceStream(lr, rewarm_every=1)  # every symbol re-warmed each batch: exactly the window
    kept = SequenceStream(lr, rewarm_every=L)  # staggered: each batch re-warms the symbols that are due
    never = SequenceStream(lr, rewarm_every=10**9)
    for t in range(L, 4 * L):
        n = 4 if t < 2 * L else 6  # two symbols join halfway: warmed from their own window
        win = x[:n, t - L: t]
        np.testing.assert_allclose(every.step(win), lr.predict(win), atol=1e-5)
        got, want = kept.step(win), lr.predict(win)
        due = (np.arange(n) + kept.steps - 1) % L == 0
        np.testing.assert_allclose(got[due], want[due], atol=1e-5)
        assert never.step(win).shape == (n,)
    # never re-warmed, a state remembers rows older than the window (the CNN: its 31-step field): they part
    assert not np.allclose(never.last, lr.predict(x[:, 3 * L - 1: 4 * L - 1]), atol=1e-4)


def test_transformer_is_not_streamed() -> None:
    with pytest.raises(ValueError, match="cannot be streamed"):
        SequenceStream(fitted("transformer"))
