"""The question box: Enter asks, Up/Down recall earlier questions (kept across runs).

Pasted text is cleaned as it comes in: terminal escape sequences (``ESC[31m``) are dropped,
control characters and newlines become spaces, so a question copied from a coloured
terminal or over several lines arrives whole and readable."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import Input

from assistant.chat.history import InputHistory
from assistant.text import without_terminal_codes


class QuestionInput(Input):
    DEFAULT_CSS = """
    QuestionInput { margin: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history_previous", "Earlier question", show=False),
        Binding("down", "history_next", "Later question", show=False),
        Binding("escape", "app.focus_sources", "Sources", show=False),
    ]

    def __init__(self, history: InputHistory, *, placeholder: str = "", id: str | None = None
                 ) -> None:
        # no select-all on focus: a key typed elsewhere is forwarded here (BriefingApp.on_key)
        # and the next one must not replace it
        super().__init__(placeholder=placeholder, id=id, select_on_focus=False)
        self.history = history

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # instead of Input's, which keeps the first line, raw
        event.stop()
        self.paste(event.text)

    def paste(self, text: str) -> None:
        """Insert pasted ``text`` at the cursor (over the selection), cleaned."""
        text = without_terminal_codes(text)
        if not text:
            return
        selection = self.selection
        if selection.is_empty:
            self.insert_text_at_cursor(text)
        else:
            self.replace(text, *selection)

    def action_history_previous(self) -> None:
        entry = self.history.previous(self.value)
        if entry is None:
            self.app.bell()
            return
        self._show(entry)

    def action_history_next(self) -> None:
        entry = self.history.next()
        if entry is None:
            return
        self._show(entry)

    def _show(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)
