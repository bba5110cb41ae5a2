"""The document screen: a source's full text, scrolled to the cited passage, the quote
highlighted. Escape goes back to the chat.

The text is split at line boundaries into before / the quoted lines / after, so the
quoted lines are one widget the screen can scroll to, whatever the wrapping. Very long
documents are shown as a window of ``WINDOW_CHARS`` around the quote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from assistant.tui.passage import highlighted, literal, section_of
from assistant.tui.widgets.conversation import QUOTE_STYLE

if TYPE_CHECKING:
    from assistant.tui.engine import DocumentView

WINDOW_CHARS = 200_000


def line_start(text: str, at: int) -> int:
    return text.rfind("\n", 0, at) + 1


def line_end(text: str, at: int) -> int:
    end = text.find("\n", at)
    return len(text) if end == -1 else end


class DocumentScreen(Screen[None]):
    DEFAULT_CSS = """
    DocumentScreen #doc-header {
        height: auto; padding: 0 2; background: $panel; border-bottom: solid $primary;
    }
    DocumentScreen #doc-body { padding: 1 2; }
    DocumentScreen #doc-quote { border-left: thick $warning; padding-left: 1; }
    DocumentScreen .clipped { color: $text-muted; text-style: italic; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("y", "copy_quote", "Copy quote"),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, view: DocumentView, start: int | None = None,
                 end: int | None = None) -> None:
        super().__init__()
        self.view = view
        n = len(view.text)
        self.quote: tuple[int, int] | None = None
        if start is not None and end is not None:
            a = max(0, min(start, n))
            self.quote = (a, max(a, min(end, n)))

    def compose(self) -> ComposeResult:
        view, text = self.view, self.view.text
        header = literal(view.title, "bold")
        header.append("\n")
        where = view.doc_id
        if self.quote is not None:
            section = section_of(view.sections, self.quote[0])
            if section is not None and section.title != view.title:
                where += f" · {section.title}"
            where += f" · characters {self.quote[0]}–{self.quote[1]} of {len(text):,}"
        else:
            where += f" · {len(text):,} characters"
        header.append(literal(where, "dim"))
        yield Static(header, id="doc-header")
        focus = self.quote[0] if self.quote else 0
        lo = line_start(text, max(0, focus - WINDOW_CHARS // 2))
        hi = line_end(text, min(len(text), max(focus, lo) + WINDOW_CHARS))
        with VerticalScroll(id="doc-body"):
            if lo > 0:
                yield Static(f"… {lo:,} characters before this point are not shown",
                             classes="clipped", markup=False)
            if self.quote is None:
                yield Static(literal(text[lo:hi]), id="doc-text")
            else:
                a, b = self.quote
                qa, qb = line_start(text, a), line_end(text, b)
                if qa > lo:
                    yield Static(literal(text[lo:qa].removesuffix("\n")), id="doc-before")
                yield Static(highlighted(text[qa:qb], a, b, QUOTE_STYLE, offset=qa),
                             id="doc-quote")
                if hi > qb:
                    yield Static(literal(text[qb:hi].removeprefix("\n")), id="doc-after")
            if hi < len(text):
                yield Static(f"… {len(text) - hi:,} more characters are not shown",
                             classes="clipped", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        body = self.query_one("#doc-body", VerticalScroll)
        body.focus()
        if self.quote is not None:
            quote = self.query_one("#doc-quote", Static)
            self.call_after_refresh(body.scroll_to_center, quote, animate=False)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_scroll_home(self) -> None:
        self.query_one("#doc-body", VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.query_one("#doc-body", VerticalScroll).scroll_end(animate=False)

    def action_copy_quote(self) -> None:
        if self.quote is None:
            self.app.bell()
            return
        a, b = self.quote
        self.app.copy_to_clipboard(self.view.text[a:b])
        self.app.notify("Copied the quote.", markup=False)

