"""The dashboard driven by Textual's pilot against a real control server."""

from __future__ import annotations

from pathlib import Path

from ctl_fake_target import FakeTarget
from textual.widgets import DataTable, Label, Tabs
from tui_pilot import banner_text, header_text, make_app, wait_loaded, wait_until

from algobotd.control.server import ControlServer, serve
from algobotd.domain import TradingState
from tui.screens import ConfirmScreen, HelpScreen


async def test_halt_then_resume(server: ControlServer, target: FakeTarget) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        assert "ACTIVE" in banner_text(app)
        assert app.query_one("#banner").has_class("-active")

        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="halt dialog")
        await pilot.press("enter")  # the reason is pre-filled: h, Enter halts
        await wait_until(pilot, lambda: target.state is TradingState.HALTED, what="target halted")
        assert target.reason == "operator halt (TUI)"
        await wait_until(pilot, lambda: "HALTED" in banner_text(app), what="HALTED banner")
        assert app.query_one("#banner").has_class("-halted")
        assert "operator halt (TUI)" in banner_text(app)

        # resume demands the word: a wrong word does nothing
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="resume dialog")
        await pilot.press(*"resume", "enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmScreen) and target.state is TradingState.HALTED
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="dialog closed")
        assert target.state is TradingState.HALTED

        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="resume dialog")
        await pilot.press(*"RESUME", "enter")
        await wait_until(pilot, lambda: target.state is TradingState.ACTIVE, what="target active")
        await wait_until(pilot, lambda: "ACTIVE" in banner_text(app) and "HALTED" not in banner_text(app),
                         what="ACTIVE banner")
        assert [m for m, _ in target.control_calls] == ["halt", "resume"]


async def test_halt_cancelled(server: ControlServer, target: FakeTarget) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#cancel")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.pause(0.1)
        assert target.state is TradingState.ACTIVE and target.control_calls == []


async def test_flatten_cancel_retrain(server: ControlServer, target: FakeTarget) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        positions = app.query_one("#positions", DataTable)
        assert positions.row_count == 5
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(*"FLATTEN", "enter")
        await wait_until(pilot, lambda: not target.book, what="flattened")
        await wait_until(pilot, lambda: positions.row_count == 0, what="positions table emptied")
        assert app.query_one("#positions") is positions  # updated in place, not recomposed

        await pilot.press("c")
        await wait_until(pilot, lambda: not target.open_orders, what="orders cancelled")
        await wait_until(pilot, lambda: app.query_one("#orders", DataTable).row_count == 0)
        await pilot.press("t")
        await wait_until(pilot, lambda: "ens-0002" in header_text(app), what="new model id")


async def test_live_updates_in_place(server: ControlServer, target: FakeTarget) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        label = app.query_one("#equity-range", Label)
        before = str(label.content)
        table = app.query_one("#positions", DataTable)
        for _ in range(5):
            target.step()
        await wait_until(pilot, lambda: str(label.content) != before, what="equity updated")
        assert "65 pts" in str(label.content)
        assert app.query_one("#positions", DataTable) is table and table.row_count == 5


async def test_daemon_restart_reconnects(server: ControlServer, target: FakeTarget, sock_path: Path) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        assert "connected" in header_text(app) and "disconnected" not in header_text(app)
        await server.close()
        await wait_until(pilot, lambda: "DISCONNECTED" in banner_text(app), what="DISCONNECTED banner")
        assert "disconnected" in header_text(app)
        assert app.has_class("-disconnected")
        # control keys are disabled (greyed) while disconnected
        assert app.check_action("halt", ()) is None
        await pilot.press("h")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, ConfirmScreen)

        target.step()
        srv2 = await serve(target, sock_path, heartbeat_s=None)
        try:
            await wait_until(pilot, lambda: app.connected, what="reconnected")
            await wait_loaded(pilot, app)
            assert "disconnected" not in header_text(app)
            assert "ACTIVE" in banner_text(app) and not app.has_class("-disconnected")
        finally:
            await srv2.close()


async def test_starts_without_daemon(sock_path: Path, target: FakeTarget) -> None:
    app = make_app(sock_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "DISCONNECTED" in banner_text(app), what="DISCONNECTED")
        assert "no daemon socket" in banner_text(app) or "nothing answers" in banner_text(app)
        srv = await serve(target, sock_path, heartbeat_s=None)
        try:
            await wait_loaded(pilot, app)
            assert "ACTIVE" in banner_text(app)
        finally:
            await srv.close()


async def test_read_only_peer(target: FakeTarget, sock_path: Path) -> None:
    srv = await serve(target, sock_path, authorize=lambda peer: False, heartbeat_s=None)
    app = make_app(sock_path)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_loaded(pilot, app)
            assert "read-only" in header_text(app)
            await pilot.press("h")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("enter")
            await wait_until(pilot, lambda: any("permission_denied" in n.message for n in app._notifications),
                             what="permission denied notification")
            assert target.state is TradingState.ACTIVE
    finally:
        await srv.close()


async def test_help_and_quit_leave_daemon_running(server: ControlServer, target: FakeTarget) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("q")
        await pilot.pause(0.1)
    assert not app.is_running
    assert target.control_calls == [] and target.state is TradingState.ACTIVE
    assert server.path.exists()
    await wait_until_sessions_gone(server)


async def wait_until_sessions_gone(server: ControlServer) -> None:
    import asyncio

    for _ in range(100):
        if not server.sessions:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("TUI session still open after quit")


async def test_layouts(server: ControlServer) -> None:
    app = make_app(server.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        assert app.query_one(Tabs).display
        assert app.query_one("#positions").display and not app.query_one("#orders").display
        await pilot.press("2")
        await pilot.pause()
        assert app.query_one("#orders").display and not app.query_one("#positions").display
        assert app.query_one(Tabs).active == "tab-orders"
        await pilot.resize_terminal(160, 48)
        await pilot.pause(0.1)
        assert not app.query_one(Tabs).display
        assert all(app.query_one(f"#{k}").display for k in ("positions", "orders", "predictions", "risk", "events"))
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.1)
        assert app.query_one(Tabs).display and not app.query_one("#positions").display
