"""Where a quote sits in its document: the passage around it, and its literal rendering.

The chat shows every answer inside the lines it comes from, so the reader sees its
context before trusting it. This module never imports ``textual`` (only ``rich``'s
``Text``), and never builds markup from document text: every piece is appended to a
``Text`` as plain characters, after control characters are made visible.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from assistant.models import Answer, Citation, Section, Unit

PASSAGE_RADIUS = 300
"""Characters of context kept on each side of a quote before clipping at a line."""


@dataclass(frozen=True)
class Passage:
    """``text == document[start:end]``; the quote is ``document[quote_start:quote_end]``."""

    doc_id: str
    section: str
    text: str
    start: int
    end: int
    quote_start: int
    quote_end: int
    cut_before: bool = False
    """The passage starts in the middle of a line (shown with a leading ellipsis)."""
    cut_after: bool = False
    headings: tuple[tuple[int, int], ...] = ()
    """Document spans of the headings inside the passage: shown bold, never quoted."""
    table: tuple[str, ...] = ()
    """When the quote is a table row: the table's header line (or "") and the rows around
    the quote, each a line of the document (cells joined by `` · ``), shown as a small
    table; ``table_quote`` is the quoted row's place among them."""
    table_quote: int = 0


TABLE_ROWS_AROUND = 2
"""Rows shown on each side of a quoted table row."""


_PAGE = re.compile(r"Page (\d+)")
"""The sections ingest gives a PDF's pages (assistant.ingest._extract_pdf)."""


def page_of(sections: list[Section], offset: int) -> tuple[int, int] | None:
    """For a PDF: the page number holding ``offset`` and the offset where that page starts."""
    page = None
    for s in sections:  # the last page that starts at or before it (headings split pages)
        m = _PAGE.fullmatch(s.title)
        if m and s.level == 1 and s.start <= offset:
            page = (int(m.group(1)), s.start)
    return page


def place_of(text: str, sections: list[Section], offset: int, title: str = "", *,
             line: int | None = None, page: int | None = None, label: str = "") -> str:
    """Where ``offset`` is, in a reader's words: ``Summary · line 12``, for a PDF
    ``Chapter 3 · page 6, line 4``, with the speaker or lead-in when there is one (never
    character offsets). ``line`` and ``page``: the source file's, from the document's map
    (``assistant.locations``); else counted in the text."""
    at_page = page_of(sections, offset)
    named = [s for s in sections if s.start <= offset < s.end
             and not (at_page and s.level == 1 and _PAGE.fullmatch(s.title))]
    parts = []
    if named:
        section = max(named, key=lambda s: (s.start, -s.end))
        if section.title.strip() and section.title != title:
            parts.append(" ".join(section.title.split()))
    if label.strip():
        parts.append(" ".join(label.split()))
    if line is None:
        start = at_page[1] if at_page else 0
        line = text.count("\n", start, max(start, min(offset, len(text)))) + 1
        page = at_page[0] if at_page else None
    parts.append(f"page {page}, line {line}" if page else f"line {line}")
    return " · ".join(parts)


def section_of(sections: list[Section], offset: int) -> Section | None:
    """The innermost section whose span holds ``offset``."""
    holding = [s for s in sections if s.start <= offset < s.end]
    return max(holding, key=lambda s: (s.start, -s.end)) if holding else None


def passage_around(doc_id: str, text: str, quote_start: int, quote_end: int,
                   section: Section | None = None, radius: int = PASSAGE_RADIUS, *,
                   sections: Sequence[Section] = (), units: Sequence[Unit] = ()) -> Passage:
    """The quote with up to ``radius`` characters either side, within its section (its
    heading line left out), clipped at line boundaries, or at a word when one line runs
    longer than ``radius``. ``sections``: the document's, so headings inside the passage are
    styled; ``units``: the document's, so a quoted table row comes with its table."""
    quote_start = max(0, min(quote_start, len(text)))
    quote_end = max(quote_start, min(quote_end, len(text)))
    lo_limit, hi_limit = 0, len(text)
    if section is not None:
        lo_limit, hi_limit = max(0, section.start), min(len(text), section.end)
        heading_end = lo_limit + len(section.title)
        if text.startswith(section.title, lo_limit) and heading_end <= quote_start:
            lo_limit = heading_end
    lo_limit, hi_limit = min(lo_limit, quote_start), max(hi_limit, quote_end)

    lo, cut_before = max(lo_limit, quote_start - radius), False
    if lo > lo_limit and text[lo - 1] != "\n":
        newline = text.find("\n", lo, quote_start)
        if newline != -1:
            lo = newline + 1
        else:
            space = text.find(" ", lo, quote_start)
            lo = space + 1 if space != -1 else quote_start
            cut_before = lo > lo_limit and text[lo - 1] != "\n"
    while lo < quote_start and text[lo].isspace():
        lo += 1

    hi, cut_after = min(hi_limit, quote_end + radius), False
    if hi < hi_limit and text[hi] != "\n":
        newline = text.rfind("\n", quote_end, hi)
        if newline != -1:
            hi = newline
        else:
            space = text.rfind(" ", quote_end, hi)
            hi = space if space != -1 else quote_end
            cut_after = hi < hi_limit and text[hi] != "\n"
    while hi > quote_end and text[hi - 1].isspace():
        hi -= 1
    headings = tuple((s.start, s.start + len(s.title)) for s in sections
                     if lo <= s.start and s.start + len(s.title) <= hi and s.title
                     and text.startswith(s.title, s.start))
    table, table_quote = _table_around(text, units, quote_start)
    return Passage(doc_id=doc_id, section=section.title if section else "", text=text[lo:hi],
                   start=lo, end=hi, quote_start=quote_start, quote_end=quote_end,
                   cut_before=cut_before, cut_after=cut_after, headings=headings,
                   table=table, table_quote=table_quote)


def _table_around(text: str, units: Sequence[Unit], offset: int) -> tuple[tuple[str, ...], int]:
    """The header line and the rows around the table row holding ``offset`` (none when it
    is not in a row): consecutive row units, one a line, and the line above the first of
    them when it is no unit (the header row is shown, not quoted)."""
    from assistant.formats import CELL_SEPARATOR  # pydantic models: after the first frame

    k = bisect.bisect_right(units, offset, key=lambda u: u.start) - 1
    if k < 0 or units[k].kind != "row" or offset >= units[k].end:
        return (), 0

    def adjacent(a: Unit, b: Unit) -> bool:
        return a.kind == b.kind == "row" and text[a.end:b.start] == "\n"

    first, last = k, k
    while first > 0 and adjacent(units[first - 1], units[first]):
        first -= 1
    while last + 1 < len(units) and adjacent(units[last], units[last + 1]):
        last += 1
    top = units[first].start
    head_start = text.rfind("\n", 0, max(0, top - 1)) + 1
    header = text[head_start:top - 1] if top > 0 and text[top - 1] == "\n" else ""
    covered = first > 0 and units[first - 1].end > head_start
    if CELL_SEPARATOR not in header or covered:
        header = ""
    lo, hi = max(first, k - TABLE_ROWS_AROUND), min(last, k + TABLE_ROWS_AROUND)
    rows = tuple(text[u.start:u.end] for u in units[lo:hi + 1])
    return (header, *rows), k - lo + 1


def highlighted(text: str, start: int, end: int, quote_style: str, base_style: str = "",
                offset: int = 0) -> Text:
    """``text`` as a literal ``Text`` with ``text[start-offset:end-offset]`` styled as the
    quote. Each piece is made printable on its own, so offsets never drift."""
    from assistant.render import printable  # pydantic models: imported after the first frame

    a = max(0, min(len(text), start - offset))
    b = max(a, min(len(text), end - offset))
    out = Text(style=base_style, no_wrap=False)
    out.append(printable(text[:a]))
    out.append(printable(text[a:b]), style=quote_style)
    out.append(printable(text[b:]))
    return out


def marked(text: str, offset: int, marks: list[tuple[int, int, str]]) -> Text:
    """``text`` (which starts at ``offset`` of its document) as a literal ``Text`` with each
    mark's span ``(start, end, style)`` styled, later marks over earlier ones. Each piece
    is made printable on its own, so offsets never drift."""
    from assistant.render import printable  # pydantic models: imported after the first frame

    end = offset + len(text)
    spans = [(max(a, offset), min(b, end), style) for a, b, style in marks
             if a < end and b > offset and a < b]
    cuts = sorted({offset, end, *(a for a, _, _ in spans), *(b for _, b, _ in spans)})
    out = Text(no_wrap=False)
    for x, y in itertools.pairwise(cuts):
        styles = [style for a, b, style in spans if a <= x and y <= b]
        out.append(printable(text[x - offset:y - offset]), style=" ".join(styles) or None)
    return out


HEADING_STYLE = "bold"


def passage_text(p: Passage, quote_style: str, base_style: str = "") -> RenderableType:
    """A passage for the conversation view: context in the caller's style, headings bold,
    the quote highlighted, ellipses where a line was cut; a quoted table row as a small
    table under its header."""
    if p.table:
        return table_of(p.table, p.table_quote, quote_style, base_style)
    marks = [(p.start, p.end, base_style)] if base_style else []
    marks += [(a, b, HEADING_STYLE) for a, b in p.headings]
    marks.append((p.quote_start, p.quote_end, quote_style))
    body = marked(p.text, p.start, marks)
    if p.cut_before:
        body = Text("…", style=base_style) + body
    if p.cut_after:
        body.append("…")
    return body


def table_of(lines: Sequence[str], quoted: int, quote_style: str, base_style: str = "") -> Table:
    """A header line (or "") and rows, cells joined by `` · ``, as a small table; the row
    ``lines[quoted]`` highlighted. Every cell is literal, printable text."""
    from assistant.formats import CELL_SEPARATOR
    from assistant.render import printable  # pydantic models: imported after the first frame

    rows = [line.split(CELL_SEPARATOR) for line in lines]
    width = max(len(r) for r in rows)
    table = Table(show_header=bool(lines[0]), show_edge=False, pad_edge=False, box=None,
                  header_style=HEADING_STYLE, style=base_style)
    header = rows[0] if lines[0] else []
    for i in range(width):
        table.add_column(Text(printable(header[i])) if i < len(header) else Text(""))
    for n, cells in enumerate(rows[1:], start=1):
        table.add_row(*(Text(printable(c)) for c in cells),
                      style=quote_style if n == quoted else None)
    return table


def literal(text: str, style: str = "") -> Text:
    """Untrusted text (a question, a title, a path) as a literal, printable ``Text``."""
    from assistant.render import printable  # pydantic models: imported after the first frame

    return Text(printable(text), style=style)


def markup_literal(text: str) -> str:
    """Untrusted text for the one place that takes only markup strings, the command
    palette (its titles and help go through ``Content.from_markup``): printable, on one
    line, every ``[`` escaped. ``textual.markup.escape`` (and Rich's) leave ``[$accent]``,
    ``[B]`` and ``[ bold]`` to be read as tags; an escaped bracket is always literal."""
    from assistant.render import one_line

    return one_line(text).replace("[", "\\[")


def citation_clip(c: Citation) -> str:
    """What "copy citation" puts on the clipboard: the citation line and its quote."""
    from assistant.render import citation_line

    return f"{citation_line(c)}\n“{c.quote}”"


def answer_clip(answer: Answer) -> str:
    """What "copy answer" puts on the clipboard: the quote and where it comes from, or the
    abstention."""
    from assistant.render import citation_line

    if answer.answer is None:
        return f"{answer.question}\n{answer.message}"
    source = next((c for c in answer.citations if c.is_answer), None)
    where = citation_line(source) if source else answer.answer.doc_id
    return f"“{answer.answer.text}”\n— {where} (confidence {answer.confidence:.2f})"
