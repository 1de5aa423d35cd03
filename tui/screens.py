"""Modal dialogs: confirmations for control actions, and help."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmScreen(ModalScreen[str | None]):
    """Ask before a control action. Dismisses with the reason text (``""`` when there is no
    reason field) on confirm, ``None`` on cancel.

    ``require``: the user must type this word (RESUME, FLATTEN) — a stray key press must never
    resume trading or close every position. ``reason``: pre-filled reason field (halt), so
    halting is just ``h`` then Enter.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, body: str, confirm_label: str, *, require: str | None = None,
                 reason: str | None = None, danger: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label
        self.require = require
        self.reason = reason
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            if self.require is not None:
                yield Input(placeholder=f"type {self.require}", id="dialog-input")
            elif self.reason is not None:
                yield Input(value=self.reason, placeholder="reason (recorded in the audit trail)", id="dialog-input")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.confirm_label, variant="error" if self.danger else "primary", id="confirm",
                             disabled=self.require is not None)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        inputs = self.query("#dialog-input")
        (inputs.first() if inputs else self.query_one("#cancel")).focus()

    def _typed(self) -> str:
        inputs = self.query("#dialog-input")
        return inputs.first(Input).value.strip() if inputs else ""

    def _acceptable(self) -> bool:
        return self.require is None or self._typed() == self.require

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = not self._acceptable()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._acceptable():
            self.dismiss(self._typed())
        else:
            self.notify(f"type {self.require} exactly to confirm", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm" and self._acceptable():
            self.dismiss(self._typed())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


HELP_TEXT = """\
[b]Keys[/b]                                       [dim]Esc closes this help[/dim]
  [b]h[/b]   halt: no new orders, open orders cancelled (asks)
  [b]r[/b]   resume trading (type RESUME)
  [b]f[/b]   flatten: close every position (type FLATTEN)
  [b]c[/b]   cancel all open orders
  [b]t[/b]   retrain the models now
  [b]1-5[/b] positions / orders / predictions / risk / events
  [b]?[/b]   this help
  [b]q[/b]   quit the dashboard (the daemon keeps running)

[b]Trading states[/b]
  ACTIVE → REDUCING (only shrinking orders) → HALTED.
  Breakers only move the state down; only resume moves it up.

If the daemon is unreachable the banner says DISCONNECTED and
the dashboard reconnects by itself."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP_TEXT)

    def action_close(self) -> None:
        self.dismiss(None)
