"""algobot-tui: a dashboard over the daemon's control socket.

Everything shown comes from the subscription stream (``DaemonLink`` posts ``TopicUpdate``
messages); each handler updates one widget in place. Control keys go through a confirmation
dialog and a worker, so the UI never waits on the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import Footer, Tab, Tabs

from algobotd.control import protocol as p
from algobotd.control.target import ControlError
from tui.link import DaemonLink
from tui.messages import LinkDown, LinkUp, TopicUpdate
from tui.screens import ConfirmScreen, HelpScreen
from tui.widgets.banner import TradingBanner
from tui.widgets.equity_chart import EquityChart
from tui.widgets.events import EventLog
from tui.widgets.header import StatusHeader
from tui.widgets.metrics import MetricsBar
from tui.widgets.orders import OrdersTable
from tui.widgets.ops import OpsTable
from tui.widgets.positions import PositionsTable
from tui.widgets.predictions import PredictionsTable
from tui.widgets.risk import RiskTable

PANELS = (("positions", "Positions"), ("orders", "Orders"), ("predictions", "Predictions"),
          ("risk", "Risk"), ("events", "Events"), ("ops", "Ops"))
WIDE = Size(140, 40)  # from this size on, every panel is visible at once
CONTROL_ACTIONS = {"halt", "resume", "flatten", "cancel_all", "retrain"}


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlgobotApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "algobot"
    ENABLE_COMMAND_PALETTE = False  # every key is a trading action; no surprises
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "halt", "Halt"),
        Binding("r", "resume", "Resume"),
        Binding("f", "flatten", "Flatten"),
        Binding("c", "cancel_all", "Cancel all"),
        Binding("t", "retrain", "Retrain"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        *(Binding(str(i), f"show_panel('{key}')", title, show=False) for i, (key, title) in enumerate(PANELS, 1)),
    ]

    def __init__(self, socket_path: Path, *, clock: Callable[[], datetime] = utc_now,
                 backoff: tuple[float, float] = (0.5, 5.0)) -> None:
        super().__init__()
        self.socket_path = Path(socket_path)
        self.clock = clock
        self.link = DaemonLink(self, self.socket_path, backoff=backoff)
        self.connected = False
        self.last_status: p.Status | None = None
        self.topics_seen: set[str] = set()  # since the last (re)connect; tests wait on it

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.clock, id="header")
        yield TradingBanner(id="banner")
        yield MetricsBar(id="metrics")
        yield EquityChart(id="equity")
        yield Tabs(*(Tab(title, id=f"tab-{key}") for key, title in PANELS), id="tabs")
        with Container(id="panels"):
            yield PositionsTable(id="positions")
            yield OrdersTable(id="orders")
            yield PredictionsTable(id="predictions")
            yield RiskTable(id="risk")
            yield EventLog(id="events")
            yield OpsTable(id="ops")
        yield Footer()

    def on_mount(self) -> None:
        self._layout(self.size)
        self.show_panel("positions")
        self.run_link()
        # the feed-lag figure ages even when nothing is pushed
        self.set_interval(1.0, self.query_one(StatusHeader).redraw)

    @work(exclusive=True, group="link")
    async def run_link(self) -> None:
        await self.link.run()

    # --- layout ---------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size)

    def _layout(self, size: Size) -> None:
        """Large terminals show every panel in a grid; small ones show one panel behind tabs."""
        wide = size.width >= WIDE.width and size.height >= WIDE.height
        self.set_class(wide, "-wide")
        self.query_one("#panels").set_class(wide, "-wide")
        self.query_one("#tabs").display = not wide

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is not None and event.tab.id:
            self._show_only(event.tab.id.removeprefix("tab-"))

    def action_show_panel(self, key: str) -> None:
        self.show_panel(key)

    def show_panel(self, key: str) -> None:
        self.query_one(Tabs).active = f"tab-{key}"
        self._show_only(key)

    def _show_only(self, key: str) -> None:
        for name, _ in PANELS:
            self.query_one(f"#{name}").set_class(name == key, "-current")

    # --- link messages --------------------------------------------------------------------

    def _widgets_mounted(self) -> bool:
        return bool(self.query(StatusHeader))

    def on_link_up(self, message: LinkUp) -> None:
        self.connected = True
        self.topics_seen.clear()
        self.remove_class("-disconnected")
        if not self._widgets_mounted():
            return
        self.query_one(StatusHeader).set_link(True, message.hello.may_control)
        self.query_one(TradingBanner).update("connected, waiting for status…")

    def on_link_down(self, message: LinkDown) -> None:
        self.connected = False
        self.add_class("-disconnected")
        if not self._widgets_mounted():
            return  # the link noticed the socket close while the app itself is shutting down
        self.query_one(StatusHeader).set_link(False)
        self.query_one(TradingBanner).show_disconnected(message.reason, message.retry_in, str(self.socket_path))

    def on_topic_update(self, message: TopicUpdate) -> None:
        data: Any = message.data
        topic = message.topic
        self.topics_seen.add(topic)
        if not self._widgets_mounted():
            return
        if topic == "status":
            self.last_status = data
            self.query_one(StatusHeader).set_status(data)
            self.query_one(TradingBanner).show_status(data)
            self.query_one(MetricsBar).show_status(data)
            self.query_one(OpsTable).show(data)
        elif topic == "positions":
            self.query_one(PositionsTable).show(data)
        elif topic == "orders":
            self.query_one(OrdersTable).show(data)
        elif topic == "predictions":
            self.query_one(PredictionsTable).show(data)
        elif topic == "risk":
            self.query_one(RiskTable).show(data)
        elif topic == "equity":
            self.query_one(EquityChart).set_curve(data)
        elif topic == "events":
            self.query_one(EventLog).show(data)

    # --- control actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CONTROL_ACTIONS and not self.connected:
            return None  # shown greyed out in the footer
        return True

    def action_halt(self) -> None:
        self.push_screen(
            ConfirmScreen("Halt trading?", "No new orders will be sent and open orders are cancelled.\n"
                          "Positions stay open (flatten separately). Enter a reason:", "Halt",
                          reason="operator halt (TUI)"),
            lambda reason: self._confirmed("halt", reason=reason or "operator halt (TUI)") if reason is not None else None,
        )

    def action_resume(self) -> None:
        self.push_screen(
            ConfirmScreen("Resume trading?", "The engine goes back to ACTIVE and may open new positions.\n"
                          "Type RESUME to confirm.", "Resume", require="RESUME", danger=False),
            lambda typed: self._confirmed("resume", confirm="RESUME") if typed is not None else None,
        )

    def action_flatten(self) -> None:
        self.push_screen(
            ConfirmScreen("Flatten every position?", "Market orders close all positions now.\n"
                          "Type FLATTEN to confirm.", "Flatten", require="FLATTEN"),
            lambda typed: self._confirmed("flatten", confirm="FLATTEN") if typed is not None else None,
        )

    def action_cancel_all(self) -> None:
        self.control("cancel_all")

    def action_retrain(self) -> None:
        self.control("retrain")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def _confirmed(self, method: str, **params: Any) -> None:
        self.control(method, **params)

    @work(group="control")
    async def control(self, method: str, **params: Any) -> None:
        try:
            result = await self.link.call(method, **params)
        except ControlError as exc:
            self.notify(f"{method} failed — {exc.code}: {exc.message}", severity="error", timeout=8)
            return
        summary = ", ".join(f"{k}={v}" for k, v in result.items()) if isinstance(result, dict) else str(result)
        self.notify(f"{method}: {summary}", title="done", severity="warning" if method in ("halt", "flatten") else "information")
