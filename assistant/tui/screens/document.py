"""The document screen: a source's full text, scrolled to the cited passage, the quote
highlighted. Escape goes back to the chat.

The text is split at line boundaries into pieces: the lines of the quote (or of the search
match in view) are one widget the screen can scroll to, whatever the wrapping, and a PDF's
pages each start with a mark. Headings are styled. ``/`` (or Ctrl+F) searches the text,
``n`` / ``N`` go to the next / previous match, ``[`` / ``]`` to the previous / next page,
``e`` opens the file in ``$EDITOR`` (else ``$PAGER``, else ``less``) at the quote's line,
the chat suspended meanwhile. Very long documents are shown as a window of
``WINDOW_CHARS`` around the quote (or match).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from assistant.chat.passage import section_of
from assistant.tui.passage import literal, marked
from assistant.tui.widgets.conversation import QUOTE_STYLE

if TYPE_CHECKING:
    from textual.widget import Widget

    from assistant.session import DocumentView

WINDOW_CHARS = 200_000
MATCH_STYLE = "bold #1b1b1b on #7dcfff"
"""The search match in view (sets both colours: readable on every theme)."""
OTHER_MATCH_STYLE = "underline"
HEADING_STYLE = "bold underline"
_PAGE = re.compile(r"Page (\d+)")


def line_start(text: str, at: int) -> int:
    return text.rfind("\n", 0, at) + 1


def line_end(text: str, at: int) -> int:
    end = text.find("\n", at)
    return len(text) if end == -1 else end


def find_all(text: str, query: str, limit: int = 10_000) -> list[int]:
    """Offsets of ``query`` in ``text``, case-insensitive (at most ``limit``)."""
    if not query:
        return []
    hay, needle = text.casefold(), query.casefold()
    if len(hay) != len(text):  # casefold changed lengths (ß → ss): search case-sensitively
        hay, needle = text, query
    out: list[int] = []
    at = hay.find(needle)
    while at != -1 and len(out) < limit:
        out.append(at)
        at = hay.find(needle, at + max(1, len(needle)))
    return out


class DocumentScreen(Screen[None]):
    DEFAULT_CSS = """
    DocumentScreen #doc-header {
        height: auto; padding: 0 2; background: $panel; border-bottom: solid $primary;
    }
    DocumentScreen #doc-body { padding: 1 2; }
    DocumentScreen #doc-quote { border-left: thick $warning; padding-left: 1; }
    DocumentScreen #doc-match { border-left: thick $accent; padding-left: 1; }
    DocumentScreen .clipped { color: $text-muted; text-style: italic; }
    DocumentScreen .page-mark { color: $text-muted; text-style: bold; margin: 1 0 0 0; }
    DocumentScreen #doc-search { display: none; margin: 0 1; }
    DocumentScreen #doc-search.-open { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("y", "copy_quote", "Copy quote"),
        Binding("e", "open_outside", "Editor", tooltip="Open the file in $EDITOR (else "
                "$PAGER, else less) at the quote"),
        Binding("slash,ctrl+f", "search", "Search"),
        Binding("n", "next_match(1)", "Next match", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("right_square_bracket", "page(1)", "Next page", show=False),
        Binding("left_square_bracket", "page(-1)", "Previous page", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, view: DocumentView, start: int | None = None,
                 end: int | None = None, source: Path | None = None) -> None:
        super().__init__()
        self.view = view
        self.source = source
        """The document's file in the corpus (for ``e``)."""
        n = len(view.text)
        self.quote: tuple[int, int] | None = None
        if start is not None and end is not None:
            a = max(0, min(start, n))
            self.quote = (a, max(a, min(end, n)))
        self.query_text = ""
        self.matches: list[int] = []
        self.match_index = -1
        self.pages = [(int(m.group(1)), s.start) for s in view.sections
                      if s.level == 1 and (m := _PAGE.fullmatch(s.title))]
        """A PDF's pages: (number, offset where the page starts)."""
        self.headings = [(s.start, s.start + len(s.title)) for s in view.sections
                         if not _PAGE.fullmatch(s.title) and s.title
                         and view.text.startswith(s.title, s.start)]

    # ---- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._header(), id="doc-header")
        yield VerticalScroll(id="doc-body")
        yield Input(placeholder="Search this document (Enter: find · n / N: next / previous "
                                "· Esc: close)", id="doc-search", select_on_focus=False)
        yield Footer()

    def _header(self) -> Text:
        view, text = self.view, self.view.text
        header = literal(view.title, "bold")
        header.append("\n")
        where = view.doc_id
        if self.quote is not None:
            section = section_of(view.sections, self.quote[0])
            if section is not None and section.title != view.title:
                where += f" · {section.title}"
            page = self._page_at(self.quote[0])
            if page is not None:
                where += f" · page {page}"
            where += f" · characters {self.quote[0]}–{self.quote[1]} of {len(text):,}"
        else:
            where += f" · {len(text):,} characters"
        if self.pages:
            where += f" · {len(self.pages)} pages"
        if self.query_text:
            found = len(self.matches)
            where += (f" · “{self.query_text}”: match {self.match_index + 1} of {found:,}"
                      if found else f" · “{self.query_text}”: not found")
        header.append(literal(where, "dim"))
        return header

    async def on_mount(self) -> None:
        await self._render_body()

    def _focus_span(self) -> tuple[int, int] | None:
        if self.matches and self.match_index >= 0:
            at = self.matches[self.match_index]
            return at, at + len(self.query_text)
        return self.quote

    def _marks(self, lo: int, hi: int) -> list[tuple[int, int, str]]:
        marks = [(a, b, HEADING_STYLE) for a, b in self.headings if a < hi and b > lo]
        n = len(self.query_text)
        marks += [(at, at + n, OTHER_MATCH_STYLE) for at in self.matches if lo <= at < hi]
        if self.quote is not None:
            marks.append((*self.quote, QUOTE_STYLE))
        if self.matches and self.match_index >= 0:
            at = self.matches[self.match_index]
            marks.append((at, at + n, MATCH_STYLE))
        return marks

    def _pieces(self, lo: int, hi: int, focus: tuple[int, int] | None) -> list[Widget]:
        """The window's text as widgets: cut at page starts (each after its mark) and around
        the lines of ``focus``, which get an id to scroll to."""
        text = self.view.text
        fa, fb = (line_start(text, focus[0]), line_end(text, focus[1])) if focus else (-1, -1)
        page_at = {start: number for number, start in self.pages
                   if lo <= start < hi and not fa < start < fb}
        cuts = {lo, hi, *page_at}
        cuts.update(c for c in (fa, fb) if lo <= c <= hi)
        bounds = sorted(cuts)
        marks = self._marks(lo, hi)
        focus_id = "doc-quote" if focus is not None and focus == self.quote else "doc-match"
        out: list[Widget] = []
        for x, y in itertools.pairwise(bounds):
            if x in page_at:
                out.append(Static(f"── page {page_at[x]} ──", classes="page-mark",
                                  markup=False))
            a, b = x, y
            if a == fb and text.startswith("\n", a):
                a += 1
            if b == fa and b > a and text[b - 1] == "\n":
                b -= 1
            if b in page_at or b == hi:
                while b > a and text[b - 1] == "\n":
                    b -= 1
            is_focus = (x, y) == (fa, fb)
            if a >= b and not is_focus:
                continue
            wid = focus_id if is_focus else None
            if focus is None and not any(w.id == "doc-text" for w in out):
                wid = "doc-text"
            out.append(Static(marked(text[a:b], a, marks), id=wid))
        return out

    async def _render_body(self) -> None:
        text = self.view.text
        focus = self._focus_span()
        at = focus[0] if focus else 0
        lo = line_start(text, max(0, at - WINDOW_CHARS // 2))
        hi = line_end(text, min(len(text), max(at, lo) + WINDOW_CHARS))
        body = self.query_one("#doc-body", VerticalScroll)
        await body.remove_children()
        widgets: list[Widget] = []
        if lo > 0:
            widgets.append(Static(f"… {lo:,} characters before this point are not shown",
                                  classes="clipped", markup=False))
        widgets += self._pieces(lo, hi, focus)
        if hi < len(text):
            widgets.append(Static(f"… {len(text) - hi:,} more characters are not shown",
                                  classes="clipped", markup=False))
        await body.mount_all(widgets)
        self.query_one("#doc-header", Static).update(self._header())
        if not self.query_one("#doc-search", Input).has_class("-open"):
            body.focus()
        target = next(iter(body.query("#doc-match, #doc-quote")), None)
        if target is not None:
            self.call_after_refresh(body.scroll_to_center, target, animate=False)
        self.window = (lo, hi)

    # ---- actions -----------------------------------------------------------------------

    def action_back(self) -> None:
        box = self.query_one("#doc-search", Input)
        if box.has_class("-open"):
            box.remove_class("-open")
            self.query_one("#doc-body", VerticalScroll).focus()
            return
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

    def action_open_outside(self) -> None:
        """The file in the user's editor or pager, at the quote's (or the match's) line."""
        from assistant.tui.outside import line_in_file, outside_command

        path = self.source
        if path is None or not path.is_file():
            self.app.notify(f"The file is not in the corpus any more: {path or self.view.doc_id}",
                            severity="warning", markup=False)
            return
        if path.suffix.lower() == ".pdf":
            self.app.notify(f"A PDF opens in a PDF viewer, not $EDITOR or $PAGER: {path}",
                            markup=False)
            return
        span = self._focus_span()
        text = self.view.text
        line = None
        if span is not None:
            if self.view.map is not None and self.view.map.locations:
                line = self.view.map.place(span[0])[0]
            else:  # no map of the source's lines: the quote's words are looked for
                line = line_in_file(path, text, span[0], text[span[0]:span[1]])
        argv = outside_command(path, line, os.environ)
        if argv is None:
            self.app.notify(f"Set $EDITOR or $PAGER to open the file (less is not installed "
                            f"either): {path}", severity="warning", markup=False)
            return
        try:
            with self.app.suspend():
                done = subprocess.run(argv, check=False)
        except SuspendNotSupported:
            self.app.notify(f"This terminal cannot hand over to another program; the file is "
                            f"{path}", severity="warning", markup=False)
            return
        except OSError as exc:
            self.app.notify(f"Cannot run {argv[0]}: {exc.strerror or exc}", severity="error",
                            markup=False)
            return
        if done.returncode != 0:
            self.app.notify(f"{Path(argv[0]).name} exited with status {done.returncode}.",
                            severity="warning", markup=False)

    def action_search(self) -> None:
        box = self.query_one("#doc-search", Input)
        box.add_class("-open")
        box.value = self.query_text
        box.focus()

    @on(Input.Submitted, "#doc-search")
    async def run_search(self, event: Input.Submitted) -> None:
        event.stop()
        await self.search(event.value)
        event.input.remove_class("-open")
        self.query_one("#doc-body", VerticalScroll).focus()

    async def search(self, query: str) -> None:
        """Find every occurrence of ``query``; show the first one after the quote (or the
        top of the view), highlighted, and say how many there are."""
        self.query_text = " ".join(query.split()) if query.strip() else ""
        self.matches = find_all(self.view.text, self.query_text)
        self.match_index = -1
        if self.matches:
            after = self.quote[1] if self.quote else 0
            self.match_index = next((i for i, at in enumerate(self.matches) if at >= after), 0)
        elif self.query_text:
            self.app.bell()
        await self._render_body()

    async def action_next_match(self, step: int) -> None:
        if not self.matches:
            self.app.bell()
            if not self.query_text:
                self.action_search()
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        await self._render_body()

    def _page_at(self, offset: int) -> int | None:
        page = None
        for number, start in self.pages:
            if start <= offset:
                page = number
        return page

    def action_page(self, step: int) -> None:
        """Scroll to the mark of the next (or previous) page of a PDF."""
        body = self.query_one("#doc-body", VerticalScroll)
        marks = list(body.query(".page-mark"))
        if not marks:
            self.app.bell()
            return
        top = body.scroll_y
        if step > 0:
            target = next((m for m in marks if m.virtual_region.y > top + 1), None)
        else:
            target = next((m for m in reversed(marks) if m.virtual_region.y < top - 1), None)
        if target is None:
            self.app.bell()
            return
        body.scroll_to(y=target.virtual_region.y, animate=False)
