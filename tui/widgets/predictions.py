"""Latest model output per symbol: prediction, confidence and the ensemble's weights."""

from __future__ import annotations

from rich.text import Text

from algobotd.control.protocol import PredictionRow
from tui import fmt
from tui.widgets.sync_table import Row, SyncTable


def _bar(v: float, width: int = 8) -> str:
    filled = max(0, min(width, round(v * width)))
    return "█" * filled + "·" * (width - filled)


class PredictionsTable(SyncTable):
    TITLE = "Predictions"
    COLUMNS = (
        ("Symbol", "symbol"), ("Pred.", "pred"), ("Confidence", "conf"), ("Model weights", "weights"),
    )

    def show(self, preds: list[PredictionRow]) -> None:
        rows: list[Row] = []
        for p in preds:
            weights = " ".join(f"{name} {w:.2f}" for name, w in p.weights.items())
            rows.append((p.symbol, (
                p.symbol, fmt.pnl_text(p.prediction, fmt.pct(p.prediction, signed=True)),
                Text(f"{_bar(p.confidence)} {p.confidence:.2f}"), Text(weights, style="dim"),
            )))
        self.sync(rows)
