"""Where a quote sits in its document: the passage around it, and its place in a reader's
words (section, page, line).

The chat shows every answer inside the lines it comes from, so the reader sees its context
before trusting it; the controller works the passage out in the answer's job, and the
terminal draws it (``assistant.tui.passage``). Plain Python: no ``textual``, no ``rich``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.models import Section, Unit

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
