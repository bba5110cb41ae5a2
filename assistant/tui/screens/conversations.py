"""The saved conversations (Ctrl+L): each one's name (else its first question), when it was
last continued and how many questions it has. Typing filters the list (by the words of its
name and questions); Enter resumes the one highlighted, F2 renames it, Ctrl+D deletes it
after a confirmation, Esc goes back."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from assistant.render import count
from assistant.tui.passage import literal

if TYPE_CHECKING:
    from assistant.chat.conversations import ConversationStore, SavedConversation

TITLE_CHARS = 70


def saved_option(saved: SavedConversation, current: bool = False) -> Option:
    title = " ".join(saved.title.split())
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    prompt = literal(title, "bold")
    prompt.append("\n")
    when = saved.updated.astimezone()
    line = f"{when:%Y-%m-%d %H:%M} · {count(len(saved.turns), 'question')}"
    if saved.name and saved.turns:
        line += f" · {' '.join(saved.turns[0].answer.question.split())}"
    prompt.append(literal(line + (" · open now" if current else ""), "dim"))
    return Option(prompt, id=saved.id)


def matches(saved: SavedConversation, words: list[str]) -> bool:
    """Whether every word typed is in the conversation's name or one of its questions."""
    text = " ".join([saved.name or "", *(t.answer.question for t in saved.turns)]).casefold()
    return all(w in text for w in words)


class ConversationsScreen(ModalScreen[str | None]):
    """Dismisses with the id of the conversation to resume, or None. What was renamed or
    deleted meanwhile is in ``renamed`` and ``deleted``."""

    DEFAULT_CSS = """
    ConversationsScreen { align: center middle; }
    ConversationsScreen > Vertical {
        width: 90; max-width: 95%; height: auto; max-height: 90%; border: round $accent;
        border-title-color: $accent; background: $surface; padding: 1 2;
    }
    ConversationsScreen .hint { color: $text-muted; margin-bottom: 1; }
    ConversationsScreen #filter { margin-bottom: 1; }
    ConversationsScreen OptionList { height: auto; max-height: 30; border: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("f2", "rename", "Rename", priority=True),
        Binding("ctrl+d", "delete", "Delete", priority=True),
    ]

    def __init__(self, saved: list[SavedConversation], store: ConversationStore,
                 current: str | None = None) -> None:
        super().__init__()
        self.saved = saved
        self.store = store
        self.current = current
        self.renamed: dict[str, SavedConversation] = {}
        """Conversations renamed here, as saved after the rename, by id."""
        self.deleted: set[str] = set()

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Saved conversations"
            if self.saved:
                yield Static("Type to filter; Enter resumes the conversation (its answers, "
                             "and follow-ups in its context); F2 renames it, Ctrl+D deletes "
                             "it; Esc goes back.", classes="hint", markup=False)
                yield Input(placeholder="filter by the words of a name or a question",
                            id="filter")
                yield OptionList(id="saved")
            else:
                yield Static("No saved conversations yet: every answered question is saved "
                             "as it is answered. Esc goes back.", classes="hint",
                             markup=False)

    def on_mount(self) -> None:
        self._show()
        for box in self.query("#filter"):
            box.focus()

    def _shown(self) -> list[SavedConversation]:
        words = self.query_one("#filter", Input).value.casefold().split()
        return [s for s in self.saved if matches(s, words)]

    def _show(self, keep: str | None = None) -> None:
        """Fill the list with the conversations the filter matches; ``keep``: the one to
        stay highlighted."""
        for options in self.query(OptionList):
            shown = self._shown()
            options.clear_options()
            options.add_options([saved_option(s, s.id == self.current) for s in shown])
            ids = [s.id for s in shown]
            options.highlighted = ids.index(keep) if keep in ids else (0 if ids else None)

    @on(Input.Changed, "#filter")
    def filter_changed(self) -> None:
        self._show()

    def _highlighted(self) -> SavedConversation | None:
        for options in self.query(OptionList):
            if options.highlighted is not None:
                option = options.get_option_at_index(options.highlighted)
                return next((s for s in self.saved if s.id == option.id), None)
        return None

    def action_move(self, step: int) -> None:
        for options in self.query(OptionList):
            if step > 0:
                options.action_cursor_down()
            else:
                options.action_cursor_up()

    @on(Input.Submitted, "#filter")
    def resume_highlighted(self, event: Input.Submitted) -> None:
        event.stop()
        saved = self._highlighted()
        if saved is not None:
            self.dismiss(saved.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_rename(self) -> None:
        from assistant.tui.screens.prompt import PromptScreen

        saved = self._highlighted()
        if saved is None:
            return

        def named(name: str | None) -> None:
            self.query_one("#filter").focus()
            if name is None or name == saved.title:
                return
            renamed = self.store.rename(saved.id, name)
            if renamed is None:
                self.app.notify(self.store.problem or f"{saved.id} is no longer saved",
                                title="Not renamed", severity="error")
                self.store.problem = None
                return
            self.saved = [renamed if s.id == saved.id else s for s in self.saved]
            self.renamed[saved.id] = renamed
            self._show(keep=saved.id)

        self.app.push_screen(PromptScreen(
            "Rename the conversation", "Its new name (the list shows it instead of the first "
            "question). Enter renames, Esc cancels.", saved.title, id="rename"), named)

    def action_delete(self) -> None:
        from assistant.tui.screens.prompt import ConfirmScreen

        saved = self._highlighted()
        if saved is None:
            return
        what = f"Delete “{' '.join(saved.title.split())}” ({count(len(saved.turns), 'question')})"
        if saved.id == self.current:
            what += ", the conversation open now (the chat then starts a new one)"

        def confirmed(yes: bool | None) -> None:
            self.query_one("#filter").focus()
            if not yes:
                return
            if not self.store.delete(saved.id):
                self.app.notify(self.store.problem or f"cannot delete {saved.id}",
                                title="Not deleted", severity="error")
                self.store.problem = None
                return
            self.saved = [s for s in self.saved if s.id != saved.id]
            self.deleted.add(saved.id)
            self._show()
            self.app.notify(f"Deleted “{' '.join(saved.title.split())}”.", title="Deleted")

        self.app.push_screen(ConfirmScreen("Delete the conversation", what + "?"), confirmed)

    def action_cancel(self) -> None:
        self.dismiss(None)
