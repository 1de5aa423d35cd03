"""Operations: market calendar, scheduler jobs, alert backlog, model monitor, data sources."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from algobotd.control.protocol import Status
from tui.widgets.sync_table import Row, SyncTable


def _yes(v: Any) -> Text:
    return Text("yes", style="green") if v else Text("no", style="yellow")


def _short_ts(v: str | None) -> str:
    return "-" if not v else v.replace("T", " ")[:16]


class OpsTable(SyncTable):
    TITLE = "Ops"
    COLUMNS = (("Item", "item"), ("State", "state"), ("Detail", "detail"))

    def show(self, status: Status) -> None:
        ops: dict[str, Any] = status.ops or {}
        rows: list[Row] = []
        if ops:
            rows.append(("market", ("market open", _yes(ops.get("market_open")),
                                    f"calendar {ops.get('calendar', '-')}")))
            rows.append(("entries", ("new entries", _yes(ops.get("entries_allowed")), "")))
            for job in ops.get("jobs") or []:
                err = job.get("last_error")
                state = Text("error", style="bold red") if err else Text(str(job.get("last_result") or "-"))
                rows.append((f"job-{job.get('id')}", (f"job {job.get('id')}", state,
                                                      f"next {_short_ts(job.get('next_run'))}")))
            alerts = ops.get("alerts") or {}
            backlog = int(alerts.get("backlog") or 0)
            rows.append(("alerts", ("alerts backlog", Text(str(backlog), style="yellow" if backlog else "green"),
                                    str(alerts.get("last_error") or ""))))
            monitor = ops.get("monitor") or {}
            drifted = monitor.get("drifted") or []
            rows.append(("monitor", ("model monitor", Text("retraining", style="yellow") if monitor.get("retraining")
                                     else Text("ok", style="green"), f"drifted: {', '.join(drifted) or 'none'}")))
        model: dict[str, Any] = status.model or {}
        if model:
            state = ("training" if model.get("training") else "loading" if model.get("loading")
                     else "ready" if model.get("ready") else "not ready")
            ic = model.get("recent_ic") or {}
            detail = " ".join(f"{k} {v:+.3f}" for k, v in ic.items()) or str(model.get("error") or "")
            rows.append(("model", (f"model {model.get('model_id') or status.model_id}",
                                   Text(state, style="green" if state == "ready" else "yellow"), detail)))
        for name, src in ((status.altdata or {}).get("sources") or {}).items():
            ok = bool(src.get("ok"))
            age = src.get("age_s")
            rows.append((f"src-{name}", (f"source {name}", _yes(ok),
                                         f"age {age:.0f}s" if isinstance(age, (int, float)) else "no data yet")))
        self.sync(rows)
