"""The "export as…" prompt: where to write the conversation; ``.json`` writes JSON."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ExportScreen(ModalScreen[str | None]):
    """Asks for a path (prefilled); dismisses with it, or None on Esc."""

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical {
        width: 90; max-width: 95%; height: auto; border: round $accent;
        border-title-color: $accent; background: $surface; padding: 1 2;
    }
    ExportScreen .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Export the conversation"
            yield Static("Path to write (.md: Markdown with citations; .json: every answer as "
                         "JSON). Missing folders are created. Enter saves, Esc cancels.",
                         classes="hint", markup=False)
            yield Input(value=self.default, id="export-path", select_on_focus=False)

    def on_mount(self) -> None:
        box = self.query_one(Input)
        box.focus()
        box.cursor_position = len(box.value)

    @on(Input.Submitted)
    def save(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
