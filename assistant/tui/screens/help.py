"""The help screen: every key of the chat, in one place (also in the command palette)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Asking", [
        ("Enter", "ask the question typed"),
        ("↑ / ↓", "earlier / later questions (history kept across runs)"),
        ("F5", "ask the last question again, fresh: without the conversation's context"),
        ("Ctrl+N", "new conversation (the one left stays saved)"),
        ("Ctrl+L", "saved conversations: type to filter, Enter resumes one (follow-ups "
                   "continue it), F2 renames it, Ctrl+D deletes it (after a y / n)"),
        ("Ctrl+F", "search the conversation: Enter / ↓ next, Shift+Enter / ↑ previous, "
                   "Esc closes"),
        ("o on a document", "ask only that document, when the question box is empty "
                            "(o again: every document); typed into a question, o is a letter"),
        ("Space on a document", "mark it as one of the documents asked (again: unmark it); "
                                "on a folder's row, all of its documents"),
        ("Enter or o on a folder", "ask the documents in that sub-folder alone"),
    ]),
    ("Sources", [
        ("Ctrl+O", "open the latest answer's source, the quote highlighted"),
        ("Tab / Shift+Tab", "question box → latest answer's sources → document list"),
        ("↑ / ↓ on a source", "previous / next source, through every answer"),
        ("Enter or click", "open the focused source"),
        ("1 – 9", "open source n (of the focused answer, else the latest)"),
        ("y", "copy the focused source (or, in a document, its quote)"),
        ("F2", "why: each source's score, character offsets and matched words"),
        ("Esc", "from the question box to the sources; back from a document"),
        ("any other key", "typed (or pasted) into the question box, wherever the focus "
                          "is"),
    ]),
    ("In a document", [
        ("/ or Ctrl+F", "search the document; Enter finds"),
        ("n / N", "next / previous match"),
        ("] / [", "next / previous page (PDF)"),
        ("y", "copy the quote"),
        ("e", "open the file in $EDITOR (else $PAGER, else less) at the quote's line"),
        ("Esc or q", "close the search, then back to the chat"),
    ]),
    ("Chat", [
        ("Ctrl+Y", "copy the latest answer with its source (no OSC 52 in the terminal: "
                   "also to wl-copy / xclip / xsel / pbcopy, else to clipboard.txt)"),
        ("Ctrl+S", "export the conversation to Markdown, with citations, into the export "
                   "folder (the notice shows its full path)"),
        ("Ctrl+E", "export to a path of your choice: .md, or .json"),
        ("Ctrl+R", "rebuild the index (answers continue from the old one meanwhile); "
                   "the side panel says when the corpus has changed"),
        ("Ctrl+B", "show / hide the side panel"),
        ("Ctrl+T", "switch theme"),
        ("Ctrl+P", "command palette: every action, plus clearing the history"),
        ("F1", "this help"),
        ("Ctrl+Q", "quit (a build in progress stops; the next start resumes it)"),
    ]),
]


def keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for i, (group, rows) in enumerate(KEYS):
        if i:
            table.add_row("", "")
        table.add_row(Text(group, style="bold italic"), "")
        for key, what in rows:
            table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 82; max-width: 95%; height: auto; max-height: 90%;
        border: round $accent; border-title-color: $accent; background: $surface;
        padding: 1 2;
    }
    HelpScreen .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Keys"
            yield Static(keys_table())
            yield Static("Every answer is a verbatim quote from the indexed documents; when "
                         "none answers, the assistant says so. Esc closes this help.",
                         classes="hint", markup=False)
