"""The saved conversations (Ctrl+L): each one's first question, when it was last continued
and how many questions it has; Enter resumes the one highlighted, Esc goes back."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.render import count
from assistant.tui.passage import literal

if TYPE_CHECKING:
    from assistant.tui.conversations import SavedConversation

TITLE_CHARS = 70


def saved_option(saved: SavedConversation, current: bool = False) -> Option:
    title = " ".join(saved.title.split())
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    prompt = literal(title, "bold")
    prompt.append("\n")
    when = saved.updated.astimezone()
    line = f"{when:%Y-%m-%d %H:%M} · {count(len(saved.turns), 'question')}"
    prompt.append(Text(line + (" · open now" if current else ""), style="dim"))
    return Option(prompt, id=saved.id)


class ConversationsScreen(ModalScreen[str | None]):
    """Dismisses with the id of the conversation to resume, or None."""

    DEFAULT_CSS = """
    ConversationsScreen { align: center middle; }
    ConversationsScreen > Vertical {
        width: 90; max-width: 95%; height: auto; max-height: 90%; border: round $accent;
        border-title-color: $accent; background: $surface; padding: 1 2;
    }
    ConversationsScreen .hint { color: $text-muted; margin-bottom: 1; }
    ConversationsScreen OptionList { height: auto; max-height: 30; border: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Back")]

    def __init__(self, saved: list[SavedConversation], current: str | None = None) -> None:
        super().__init__()
        self.saved = saved
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Saved conversations"
            if self.saved:
                yield Static("Enter resumes the conversation (its answers, and follow-ups in "
                             "its context); Esc goes back.", classes="hint", markup=False)
                yield OptionList(*(saved_option(s, s.id == self.current) for s in self.saved),
                                 id="saved")
            else:
                yield Static("No saved conversations yet: every answered question is saved "
                             "as it is answered. Esc goes back.", classes="hint",
                             markup=False)

    def on_mount(self) -> None:
        for options in self.query(OptionList):
            options.focus()
            options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
