"""The status line under the conversation: what the assistant is doing, with build progress.

Cut to the width, a busy line keeps its mark and its end ("◌ …embedding chunks, 120 of
about 400"), where the figures are; any other keeps its start, ending in "…". A step
without a known length (the model's export) shows a moving bar and the seconds it has
taken so far, not an empty percentage."""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import ProgressBar, Static

from assistant.chat.events import StatusKind
from assistant.tui.passage import literal

Kind = StatusKind
_MARKS: dict[Kind, tuple[str, str]] = {
    "busy": ("◌", "bold #7aa2f7"), "ready": ("●", "bold #9ece6a"),
    "warning": ("▲", "bold #e0af68"), "error": ("✖", "bold #f7768e"),
}


def keep_the_end(line: Text, width: int, head: int = 2) -> Text:
    """``line`` within ``width`` cells: its first ``head`` characters (the mark), "…", and
    as much of its end as fits."""
    if line.cell_len <= width or width <= head + 1:
        return line
    room = width - head - 1
    start = len(line.plain)
    while start > head and cell_len(line.plain[start - 1:]) <= room:
        start -= 1
    return Text.assemble(line[:head], "…", line[start:])


class StatusMessage(Widget):
    """One line of status, cut at its front when it does not fit (``keep_the_end``)."""

    DEFAULT_CSS = """
    StatusMessage { width: 1fr; height: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.line = Text()
        self.keep_end = False

    def show(self, line: Text, keep_end: bool) -> None:
        """``keep_end``: cut the front when it does not fit (progress: the figures are at
        the end), else the end, marked "…"."""
        self.line, self.keep_end = line, keep_end
        self.refresh()

    def render(self) -> Text:
        if self.keep_end:
            line = keep_the_end(self.line, self.size.width)
            line.no_wrap, line.overflow = True, "crop"
        else:
            line = self.line.copy()
            line.no_wrap, line.overflow = True, "ellipsis"
        return line


class StatusLine(Horizontal):
    DEFAULT_CSS = """
    StatusLine { height: 1; margin: 0 1; }
    StatusLine ProgressBar { width: auto; display: none; }
    StatusLine ProgressBar.-active { display: block; }
    StatusLine ProgressBar.-indeterminate #percentage { display: none; }
    Screen.-narrow StatusLine ProgressBar Bar { width: 12; }
    StatusLine #elapsed { width: auto; display: none; margin-left: 1; color: $text-muted; }
    StatusLine #elapsed.-active { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.kind: Kind = "busy"
        self.text = ""
        self._since: float | None = None
        """When the current step of unknown length began (the elapsed time's start)."""
        self._since_text = ""
        self._clock: Timer | None = None

    def compose(self) -> ComposeResult:
        yield StatusMessage(id="status-text")
        yield ProgressBar(id="progress", show_eta=False)
        yield Static(id="elapsed", markup=False)

    def say(self, text: str | Text, kind: Kind = "ready") -> None:
        """Show ``text``: a string is untrusted (made literal), a ``Text`` is the app's own."""
        self.kind, self.text = kind, str(text)
        mark, style = _MARKS[kind]
        line = Text(mark + " ", style=style)
        line.append(text if isinstance(text, Text) else literal(text))
        self.query_one(StatusMessage).show(line, keep_end=kind == "busy")

    def progress(self, done: int, total: int | None) -> None:
        """A bar: ``done`` of ``total``, or (``total`` None) a moving bar and the seconds the
        step has taken, counted from when the text last changed."""
        bar = self.query_one(ProgressBar)
        bar.add_class("-active")
        bar.set_class(total is None, "-indeterminate")
        bar.update(total=total, progress=done)
        if total is not None:
            self._stop_clock()
            return
        if self._since is None or self._since_text != self.text:
            self._since, self._since_text = time.monotonic(), self.text
        if self._clock is None:
            self._clock = self.set_interval(1.0, self._tick, name="elapsed")
        self._tick()

    def _tick(self) -> None:
        if self._since is None:
            return
        elapsed = self.query_one("#elapsed", Static)
        elapsed.add_class("-active")
        elapsed.update(f"{time.monotonic() - self._since:.0f} s")

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.stop()
            self._clock = None
        self._since = None
        self.query_one("#elapsed", Static).remove_class("-active")

    def hide_progress(self) -> None:
        self.query_one(ProgressBar).remove_class("-active")
        self._stop_clock()
