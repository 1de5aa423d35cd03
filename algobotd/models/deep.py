"""Torch sequence learners on ``[n, L, F]`` windows: LSTM, Transformer, dilated 1D-CNN, ALSTM attention.

One training loop for all four: AdamW, MSE, early stopping on a purged validation split,
deterministic seeds, standardisation fitted on training rows only, NaN -> 0 after scaling
(0 = the training mean), CUDA > MPS > CPU with ``device="auto"``, autocast on CUDA, and a
bounded torch thread count so a training process cannot starve the daemon's event loop.
Training windows are gathered from the feature panel per minibatch, never materialised.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from algobotd.models.dataset import windows

SEQUENCE = ("lstm", "transformer", "cnn", "attention")


@dataclass(frozen=True, slots=True)
class DeepParams:
    seq_len: int = 20
    hidden: int = 32
    epochs: int = 20
    batch: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-3
    patience: int = 3
    max_steps_per_epoch: int = 200  # bounds an epoch on big panels; minibatches are drawn at random
    threads: int = 1
    device: str = "auto"
    seed: int = 0


def pick_device(pref: str = "auto") -> torch.device:
    if pref != "auto":
        return torch.device(pref)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class LSTMNet(nn.Module):
    def __init__(self, f: int, h: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(f, h, batch_first=True)
        self.head = nn.Linear(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.warm(x)[0]

    # streaming (algobotd.models.stream): states are batch-first lists of tensors
    def warm(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run a whole window from the zero state: the prediction and the state after it."""
        out, (h, c) = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1), [h.transpose(0, 1), c.transpose(0, 1)]

    def step(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One new row ``x[n, F]`` on top of ``state``: same as ``warm`` on the window extended by it."""
        hx = (state[0].transpose(0, 1).contiguous(), state[1].transpose(0, 1).contiguous())
        out, (h, c) = self.rnn(x.unsqueeze(1), hx)
        return self.head(out[:, -1]).squeeze(-1), [h.transpose(0, 1), c.transpose(0, 1)]


class PositionalEncoding(nn.Module):
    def __init__(self, d: int, max_len: int = 512) -> None:
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10_000.0) / d))
        pe = torch.zeros(max_len, d)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]]


class TransformerNet(nn.Module):
    """Encoder over the window, head on the last token.

    One layer by default: the last token's output then needs every token's key and value but
    attention and the feed-forward block for that token only (``last``), O(window x d) per
    symbol instead of O(window^2) — what lets the daemon serve it in the default list. A
    second layer would need the first layer's output at every token.
    """

    def __init__(self, f: int, h: int, heads: int = 4, layers: int = 1) -> None:
        super().__init__()
        self.proj = nn.Linear(f, h)
        self.pos = PositionalEncoding(h)
        layer = nn.TransformerEncoderLayer(h, heads, dim_feedforward=2 * h, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.enc(self.pos(self.proj(x)))
        return self.head(z[:, -1]).squeeze(-1)

    @property
    def streamable(self) -> bool:
        """``warm``/``step``/``last`` need one layer (deeper, e.g. older bundles: the full pass only)."""
        return len(self.enc.layers) == 1

    def last(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` in eval mode, computed for the last token only."""
        if not self.streamable or self.training:
            return self(x)
        return self._last_token(self.proj(x))

    # streaming (algobotd.models.stream): the state is the window's projected rows (positions are
    # added per pass, so the ring shifting by one row keeps each row's position right): exact
    def warm(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        tokens = self.proj(x)
        return self._last_token(tokens), [tokens]

    def step(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One new row ``x[n, F]``: the oldest row leaves the window, as in the sequence buffer."""
        tokens = torch.cat([state[0][:, 1:], self.proj(x).unsqueeze(1)], 1)
        return self._last_token(tokens), [tokens]

    def _last_token(self, tokens: torch.Tensor) -> torch.Tensor:
        lay = self.enc.layers[0]
        u = self.pos(tokens)  # [n, L, d]: every token is a key and a value
        src = lay.norm1(u) if lay.norm_first else u  # what attention reads
        z = u[:, -1] + self._last_attention(lay.self_attn, src)
        if lay.norm_first:
            z = z + self._feed_forward(lay, lay.norm2(z))
        else:
            z = lay.norm1(z)
            z = lay.norm2(z + self._feed_forward(lay, z))
        if self.enc.norm is not None:
            z = self.enc.norm(z)
        return self.head(z).squeeze(-1)

    @staticmethod
    def _feed_forward(lay: nn.TransformerEncoderLayer, z: torch.Tensor) -> torch.Tensor:
        return lay.linear2(lay.activation(lay.linear1(z)))

    @staticmethod
    def _last_attention(att: nn.MultiheadAttention, src: torch.Tensor) -> torch.Tensor:
        """Multi-head attention of the last token over ``src[n, L, d]``, with no key/value projected per token.

        Per head: q.(Wk u + bk) = (Wk^T q).u + q.bk, and q.bk is the same for every token (softmax
        drops it); sum_t a_t (Wv u_t + bv) = Wv (sum_t a_t u_t) + bv as the weights sum to 1.
        """
        n, _, d = src.shape
        heads = att.num_heads
        dh = d // heads
        wq, wk, wv = att.in_proj_weight.split(d)
        bq, _, bv = att.in_proj_bias.split(d)
        q = nn.functional.linear(src[:, -1], wq, bq).view(n, heads, dh) / math.sqrt(dh)
        qk = torch.einsum("nhe,hed->nhd", q, wk.view(heads, dh, d))  # each head's query in token space
        a = torch.softmax(torch.bmm(qk, src.transpose(1, 2)), dim=-1)  # [n, heads, L]
        pooled = torch.bmm(a, src)  # [n, heads, d]: the attention-weighted token per head
        ctx = torch.einsum("nhd,hed->nhe", pooled, wv.view(heads, dh, d)) + bv.view(heads, dh)
        return att.out_proj(ctx.reshape(n, d))


class TCNNet(nn.Module):
    """Causal dilated convolutions (1, 2, 4, 8) with residuals: receptive field 31 steps."""

    def __init__(self, f: int, h: int, k: int = 3) -> None:
        super().__init__()
        self.inp = nn.Conv1d(f, h, 1)
        self.blocks = nn.ModuleList(nn.Conv1d(h, h, k, dilation=d) for d in (1, 2, 4, 8))
        self.pads = [(k - 1) * d for d in (1, 2, 4, 8)]
        self.head = nn.Linear(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.warm(x)[0]

    def warm(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """State: each block's last ``pad`` inputs (zeros before the window, as the left padding)."""
        z = self.inp(x.transpose(1, 2))
        state = []
        for conv, pad in zip(self.blocks, self.pads):
            zp = nn.functional.pad(z, (pad, 0))  # left pad: no look into later steps
            state.append(zp[:, :, zp.shape[2] - pad:])
            z = z + torch.relu(conv(zp))
        return self.head(z[:, :, -1]).squeeze(-1), state

    def step(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # a block's newest output needs only its inputs at t - pad, ..., t: the cached ones plus the new one
        # (as matmuls over the k taps: conv1d on a 1-output input is several times slower)
        z = nn.functional.linear(x, self.inp.weight[:, :, 0], self.inp.bias).unsqueeze(2)
        new = []
        for conv, past in zip(self.blocks, state):
            zz = torch.cat([past, z], 2)
            new.append(zz[:, :, 1:])
            taps = zz[:, :, ::conv.dilation[0]].reshape(zz.shape[0], -1)  # [n, in * k], the weight's order
            z = z + torch.relu(nn.functional.linear(taps, conv.weight.reshape(conv.out_channels, -1), conv.bias)).unsqueeze(2)
        return self.head(z[:, :, -1]).squeeze(-1), new


class ALSTMNet(nn.Module):
    """ALSTM: GRU states pooled by learned attention, concatenated with the last state."""

    def __init__(self, f: int, h: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(f, h), nn.Tanh())
        self.rnn = nn.GRU(h, h, batch_first=True)
        self.att = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1, bias=False))
        self.head = nn.Linear(2 * h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.warm(x)[0]

    def _pool(self, states: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        ctx = (torch.softmax(logits, dim=1) * states).sum(dim=1)
        return self.head(torch.cat([ctx, states[:, -1]], dim=-1)).squeeze(-1)

    def warm(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """State: the window's GRU states and their attention logits (the pooled ring), the last state."""
        out, h = self.rnn(self.proj(x))
        logits = self.att(out)
        return self._pool(out, logits), [out, logits, h.transpose(0, 1)]

    def step(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The GRU advances one step; pooling covers the last ``window`` states (the ring drops the oldest)."""
        ring, logits, h = state
        o, h2 = self.rnn(self.proj(x).unsqueeze(1), h.transpose(0, 1).contiguous())
        ring = torch.cat([ring[:, 1:], o], 1)
        logits = torch.cat([logits[:, 1:], self.att(o)], 1)
        return self._pool(ring, logits), [ring, logits, h2.transpose(0, 1)]


def saved_shape(sd: dict[str, torch.Tensor]) -> dict[str, int]:
    """Constructor arguments a saved state dict needs beyond the defaults: the transformer's depth
    (bundles trained before the default went from 2 layers to 1 still load, served by the full pass)."""
    depth = {int(k.split(".")[2]) for k in sd if k.startswith("enc.layers.")}
    return {"layers": len(depth)} if depth else {}


NETS = {"lstm": LSTMNet, "transformer": TransformerNet, "cnn": TCNNet, "attention": ALSTMNet}
#: nets with ``warm``/``step``: served one step per batch (the transformer: one layer only, ``streamable``)
STREAMABLE = ("lstm", "transformer", "cnn", "attention")


class SequenceLearner:
    sequence = True

    def __init__(self, name: str, p: DeepParams) -> None:
        if name not in NETS:
            raise ValueError(f"unknown sequence model {name!r}")
        self.name, self.p = name, p
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.net: nn.Module | None = None
        self.n_features = 0

    def _scale(self, w: np.ndarray) -> torch.Tensor:
        """Standardise with the training stats; NaN -> 0 (the training mean); clip outliers at 5 sd."""
        x = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        x = (x - torch.from_numpy(self.mean)) / torch.from_numpy(self.std)  # type: ignore[arg-type]
        return torch.nan_to_num_(x, nan=0.0, posinf=0.0, neginf=0.0).clamp_(-5.0, 5.0)

    def fit(self, X: np.ndarray, t: np.ndarray, i: np.ndarray, y: np.ndarray, tv: np.ndarray, iv: np.ndarray,
            yv: np.ndarray) -> None:
        """Train on windows of panel ``X[T, N, F]`` ending at (t, i); validate on (tv, iv)."""
        p = self.p
        torch.set_num_threads(p.threads)
        torch.manual_seed(p.seed)
        g = np.random.default_rng(p.seed)
        rows = X[np.unique(t)][:, :, :].reshape(-1, X.shape[2])  # training-time rows only: no val/test stats
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: mean 0, sd 1 below
            self.mean = np.nan_to_num(np.nanmean(rows, axis=0)).astype(np.float32)
            sd = np.nan_to_num(np.nanstd(rows, axis=0))
        self.std = np.where(sd > 1e-12, sd, 1.0).astype(np.float32)
        self.n_features = X.shape[2]
        dev = pick_device(p.device)
        net = NETS[self.name](self.n_features, p.hidden).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        amp = dev.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        yt = y.astype(np.float32)
        vx = self._scale(windows(X, tv, iv, p.seq_len)) if len(tv) else None
        best, best_state, bad = math.inf, copy.deepcopy(net.state_dict()), 0
        steps = min(p.max_steps_per_epoch, max(1, math.ceil(len(t) / p.batch)))
        for _ in range(p.epochs):
            net.train()
            for _ in range(steps):
                k = g.integers(0, len(t), min(p.batch, len(t)))
                xb = self._scale(windows(X, t[k], i[k], p.seq_len)).to(dev)
                yb = torch.from_numpy(yt[k]).to(dev)
                opt.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, enabled=amp):
                    loss = nn.functional.mse_loss(net(xb).float(), yb)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
            if vx is None:
                best_state = copy.deepcopy(net.state_dict())
                continue
            self.net = net
            val = float(np.mean((self._predict_scaled(vx, dev) - yv) ** 2))
            if val < best - 1e-6:
                best, best_state, bad = val, copy.deepcopy(net.state_dict()), 0
            else:
                bad += 1
                if bad >= p.patience:
                    break
        net.load_state_dict(best_state)
        self.net = net.to("cpu").eval()  # inference runs on CPU in the daemon unless moved

    def _predict_scaled(self, x: torch.Tensor, dev: torch.device, chunk: int = 4096) -> np.ndarray:
        net = self.net
        assert net is not None
        net.eval()
        forward = getattr(net, "last", net)  # the transformer's last-token path: equal output, far cheaper
        outs = []
        with torch.inference_mode():
            for s in range(0, x.shape[0], chunk):
                outs.append(forward(x[s: s + chunk].to(dev)).float().cpu().numpy())
        return np.concatenate(outs).astype(np.float64) if outs else np.zeros(0)

    def predict(self, w: np.ndarray) -> np.ndarray:
        """Batched inference for windows ``[n, L', F]`` (the last ``seq_len`` steps are used)."""
        if self.net is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return self._predict_scaled(self._scale(w[:, -self.p.seq_len:]), torch.device("cpu"))

    def predict_panel(self, X: np.ndarray, t: np.ndarray, i: np.ndarray, chunk: int = 8192) -> np.ndarray:
        out = [self.predict(windows(X, t[s: s + chunk], i[s: s + chunk], self.p.seq_len))
               for s in range(0, len(t), chunk)]
        return np.concatenate(out) if out else np.zeros(0)

    def __getstate__(self) -> dict[str, object]:
        # state_dict instead of the module: smaller and independent of pickling nn.Module internals
        d = dict(self.__dict__)
        d["net"] = None if self.net is None else {k: v.cpu() for k, v in self.net.state_dict().items()}
        return d

    def __setstate__(self, d: dict[str, object]) -> None:
        sd = d.pop("net")
        self.__dict__.update(d)
        self.net = None
        if sd is not None:
            net = NETS[self.name](self.n_features, self.p.hidden, **saved_shape(sd))  # type: ignore[arg-type]
            net.load_state_dict(sd)  # type: ignore[arg-type]
            self.net = net.eval()
