"""The search bar over the conversation (Ctrl+F): type to find, Enter / ↓ for the next
match, Shift+Enter / ↑ for the previous, Esc to close. The card holding the match is
scrolled to and highlighted, and the bar says "k of n"."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static


def card_matches(cards: list[tuple[Widget, str]], query: str) -> list[Widget]:
    """The cards whose text holds ``query`` (case-insensitive, spacing ignored), in order."""
    needle = " ".join(query.split()).casefold()
    if not needle:
        return []
    return [card for card, text in cards if needle in " ".join(text.split()).casefold()]


class SearchInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,shift+enter", "step(1)", "Next match", show=False),
        Binding("up", "step(-1)", "Previous match", show=False),
        Binding("escape", "close", "Close search", show=False),
    ]

    def action_step(self, step: int) -> None:
        self.post_message(ConversationSearch.Step(step))

    def action_close(self) -> None:
        self.post_message(ConversationSearch.Closed())


class ConversationSearch(Horizontal):
    """Hidden until opened; the app finds the matches and tells the bar what to show."""

    DEFAULT_CSS = """
    ConversationSearch { display: none; height: auto; margin: 0 1; }
    ConversationSearch.-open { display: block; }
    ConversationSearch > SearchInput { width: 1fr; }
    ConversationSearch > #search-count {
        width: auto; min-width: 12; padding: 1 1 0 1; color: $text-muted;
    }
    """

    class Step(Message):
        """Go to the next (1) or previous (-1) match."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    class Closed(Message):
        pass

    class Changed(Message):
        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    def compose(self) -> ComposeResult:
        yield SearchInput(placeholder="Search the conversation (Enter/↓ next · Shift+Enter/↑ "
                                      "previous · Esc close)", id="search-box",
                          select_on_focus=False)
        yield Static("", id="search-count", markup=False)

    @property
    def box(self) -> SearchInput:
        return self.query_one(SearchInput)

    def open(self) -> None:
        self.add_class("-open")
        self.box.focus()

    def close(self) -> None:
        self.remove_class("-open")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def show_count(self, at: int, found: int) -> None:
        """``at`` is 0-based; nothing typed shows nothing."""
        text = "" if not self.box.value.strip() else (
            f"{at + 1} of {found}" if found else "no match")
        self.query_one("#search-count", Static).update(text)

    @on(Input.Changed, "#search-box")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value))

    @on(Input.Submitted, "#search-box")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Step(1))
