"""Small modal questions: a line to type (the "export as…" path, a conversation's new name)
and a yes / no confirmation (deleting a saved conversation)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from assistant.tui.passage import literal

PROMPT_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 90; max-width: 95%; height: auto; border: round $accent;
    border-title-color: $accent; background: $surface; padding: 1 2;
}}
{name} .hint {{ color: $text-muted; }}
"""


class PromptScreen(ModalScreen[str | None]):
    """Asks for a line (prefilled); dismisses with it, stripped, or None on Esc or when
    left empty."""

    DEFAULT_CSS = PROMPT_CSS.format(name="PromptScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, hint: str, default: str, *, id: str) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.default = default
        self.input_id = id

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.hint, classes="hint", markup=False)
            yield Input(value=self.default, id=self.input_id, select_on_focus=False)

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


def export_prompt(default: str) -> PromptScreen:
    """The "export as…" prompt: where to write the conversation; ``.json`` writes JSON."""
    return PromptScreen("Export the conversation",
                        "Path to write (.md: Markdown with citations; .json: every answer as "
                        "JSON). Missing folders are created. Enter saves, Esc cancels.",
                        default, id="export-path")


class ConfirmScreen(ModalScreen[bool]):
    """A yes / no question: y or Enter confirms, n or Esc declines."""

    DEFAULT_CSS = PROMPT_CSS.format(name="ConfirmScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(literal(self.question), id="confirm-question")
            yield Static("y or Enter: yes · n or Esc: no", classes="hint", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
