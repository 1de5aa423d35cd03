"""One step per batch for the sequence models (LSTM, ALSTM, TCN, one-layer transformer).

Re-running a 20-step window for every symbol on every batch costs ~20 network steps; a
``SequenceStream`` keeps each symbol's state (LSTM/GRU hidden state, the ALSTM ring of pooled
states, the TCN blocks' cached inputs, the transformer's projected window rows) and feeds it
only the newest row of the feature engine's sequence buffer. The buffer gets one row per batch for every symbol (stale ones
included), so stepping every symbol once per batch sees exactly the rows the window holds.

The models were trained on ``seq_len``-step windows from the zero state, while a carried state
remembers more. To keep the served state close to that, every symbol is re-warmed from its
window (the windowed forward pass, exact) once every ``rewarm_every`` batches, staggered so
that ~1/rewarm_every of the symbols re-warm on each batch: a state then covers between
``seq_len`` and ``seq_len + rewarm_every - 1`` rows (the transformer's state is the window
itself, so its stepped output equals the windowed one at every batch). New symbols are warmed
from their window on the batch they appear.
"""

from __future__ import annotations

import numpy as np
import torch

from algobotd.models.deep import STREAMABLE, SequenceLearner


def streamable(learner: SequenceLearner) -> bool:
    return learner.name in STREAMABLE and learner.net is not None and getattr(learner.net, "streamable", True)


class SequenceStream:
    def __init__(self, learner: SequenceLearner, rewarm_every: int | None = None) -> None:
        if not streamable(learner):
            raise ValueError(f"{learner.name} cannot be streamed (fitted {learner.net is not None})")
        self.learner = learner
        self.net = learner.net.eval()
        self.seq_len = learner.p.seq_len
        self.rewarm_every = max(1, rewarm_every if rewarm_every is not None else learner.p.seq_len)
        self.state: list[torch.Tensor] | None = None
        self.steps = 0
        self.last = np.zeros(0)  # the latest predictions (every symbol)

    @property
    def n_symbols(self) -> int:
        return 0 if self.state is None else int(self.state[0].shape[0])

    def _warm(self, win: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.net.warm(self.learner._scale(win[:, -self.seq_len:]))  # type: ignore[operator]

    def step(self, win: np.ndarray) -> np.ndarray:
        """``win``: the sequence buffer's window ``[symbols, L, F]`` right after this batch's push.

        Returns the prediction for every symbol (index = the feature engine's symbol index).
        Call exactly once per pushed batch: a skipped batch would leave a row out of the state.
        """
        n = win.shape[0]
        with torch.inference_mode():
            if self.state is None:
                y, self.state = self._warm(win)
            else:
                old = self.n_symbols
                y, state = self.net.step(self.learner._scale(win[:old, -1]), self.state)  # type: ignore[operator]
                if n > old:  # symbols added since the last batch: their own window, from the zero state
                    y_new, s_new = self._warm(win[old:])
                    y = torch.cat([y, y_new])
                    state = [torch.cat([a, b]) for a, b in zip(state, s_new)]
                due = np.flatnonzero((np.arange(n) + self.steps) % self.rewarm_every == 0)
                if due.size:
                    y_due, s_due = self._warm(win[due])
                    rows = torch.from_numpy(due)
                    y[rows] = y_due
                    for a, b in zip(state, s_due):
                        a[rows] = b
                self.state = state
        self.steps += 1
        self.last = y.double().numpy()
        return self.last
