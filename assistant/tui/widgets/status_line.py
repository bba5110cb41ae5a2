"""The status line under the conversation: what the assistant is doing, with build progress."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from assistant.tui.passage import literal

Kind = Literal["busy", "ready", "warning", "error"]
_MARKS: dict[Kind, tuple[str, str]] = {
    "busy": ("◌", "bold #7aa2f7"), "ready": ("●", "bold #9ece6a"),
    "warning": ("▲", "bold #e0af68"), "error": ("✖", "bold #f7768e"),
}

STAGES = {"scan": "scanning the corpus",
          "export": "exporting the embedding model (once per machine, ~15 s)",
          "embed": "embedding chunks", "vectors": "writing vectors",
          "publish": "publishing the new index",
          "waiting": "another build holds the index; waiting for it"}


class StatusLine(Horizontal):
    DEFAULT_CSS = """
    StatusLine { height: 1; margin: 0 1; }
    StatusLine #status-text { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusLine ProgressBar { width: auto; display: none; }
    StatusLine ProgressBar.-active { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.kind: Kind = "busy"
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="status-text")
        yield ProgressBar(id="progress", show_eta=False)

    def say(self, text: str | Text, kind: Kind = "ready") -> None:
        """Show ``text``: a string is untrusted (made literal), a ``Text`` is the app's own."""
        self.kind, self.text = kind, str(text)
        mark, style = _MARKS[kind]
        line = Text(mark + " ", style=style)
        line.append(text if isinstance(text, Text) else literal(text))
        self.query_one("#status-text", Static).update(line)

    def progress(self, done: int, total: int | None) -> None:
        bar = self.query_one(ProgressBar)
        bar.add_class("-active")
        bar.update(total=total, progress=done)

    def hide_progress(self) -> None:
        self.query_one(ProgressBar).remove_class("-active")
