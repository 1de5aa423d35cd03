"""Stateful one-step inference (and the transformer's last-token path) equals the full forward pass on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algobotd.models.deep import (
    NETS,
    STREAMABLE,
    DeepParams,
    SequenceLearner,
    TransformerNet,
)
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
    zero state over all rows so far (LSTM, CNN); ALSTM pools over its last L states by design; the
    transformer's output equals its full encoder on the last L rows (the window)."""
    lr = fitted(name)
    x = torch.nan_to_num(lr._scale(rows(7, 3 * L)))
    net = lr.net
    with torch.inference_mode():
        y, state = net.warm(x[:, :L])  # type: ignore[operator]
        assert torch.allclose(y, net(x[:, :L]), atol=1e-6)
        for t in range(L, 3 * L):
            y, state = net.step(x[:, t], state)  # type: ignore[operator]
            if name == "transformer":
                ref = net(x[:, t + 1 - L: t + 1])
            elif name == "attention":
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
    # never re-warmed, a state remembers rows older than the window (the CNN: its 31-step field): they part;
    # the transformer's state is the window's rows: it stays exact
    close = np.allclose(never.last, lr.predict(x[:, 3 * L - 1: 4 * L - 1]), atol=1e-4)
    assert close == (name == "transformer")


def test_deeper_transformer_is_not_streamed() -> None:
    lr = fitted("transformer")
    lr.net = TransformerNet(F, H, layers=2).eval()  # no last-token form: served windowed
    with pytest.raises(ValueError, match="cannot be streamed"):
        SequenceStream(lr)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_last_token_path_equals_the_full_encoder(norm_first: bool) -> None:
    """The served path (attention and feed-forward for the last token only) equals the module's forward
    in eval mode, post-norm and pre-norm; the learner's predict (scaling, NaN -> 0) serves it."""
    lr = fitted("transformer")
    net = lr.net
    assert isinstance(net, TransformerNet) and len(net.enc.layers) == 1  # the default depth the path needs
    net.enc.layers[0].norm_first = norm_first
    with torch.no_grad():  # non-trivial biases, so the q.bk / bv shortcuts are exercised
        for prm in net.parameters():
            prm.add_(0.3 * torch.randn_like(prm))
    win = rows(9, 2 * L, seed=4)
    x = lr._scale(win[:, -L:])
    with torch.inference_mode():
        full, last = net(x), net.last(x)
    assert torch.allclose(last, full, atol=1e-5)
    assert full.std() > 1e-3  # not a constant output that would match anything
    np.testing.assert_allclose(lr.predict(win), full.double().numpy(), atol=1e-5)


def test_two_layer_transformer_state_still_loads_and_serves_the_full_pass() -> None:
    """Bundles saved when the default depth was 2 load at their own depth (``last`` = the full pass)."""
    import pickle

    lr = fitted("transformer")
    torch.manual_seed(5)
    lr.net = TransformerNet(F, H, layers=2).eval()
    back = pickle.loads(pickle.dumps(lr))
    assert len(back.net.enc.layers) == 2
    win = rows(4, L, seed=6)
    np.testing.assert_allclose(back.predict(win), lr.predict(win), atol=1e-6)
    with torch.inference_mode():
        x = lr._scale(win)
        assert torch.allclose(back.net.last(x), lr.net(x), atol=1e-6)
