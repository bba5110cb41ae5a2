"""Where a quote sits in its document: the passage around it, and its literal rendering.

The chat shows every answer inside the lines it comes from, so the reader sees its
context before trusting it. This module never imports ``textual`` (only ``rich``'s
``Text``), and never builds markup from document text: every piece is appended to a
``Text`` as plain characters, after control characters are made visible.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from assistant.models import Answer, Citation, Section

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
                   section: Section | None = None, radius: int = PASSAGE_RADIUS) -> Passage:
    """The quote with up to ``radius`` characters either side, within its section (its
    heading line left out), clipped at line boundaries, or at a word when one line runs
    longer than ``radius``."""
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
    return Passage(doc_id=doc_id, section=section.title if section else "", text=text[lo:hi],
                   start=lo, end=hi, quote_start=quote_start, quote_end=quote_end,
                   cut_before=cut_before, cut_after=cut_after)


def highlighted(text: str, start: int, end: int, quote_style: str, base_style: str = "",
                offset: int = 0) -> Text:
    """``text`` as a literal ``Text`` with ``text[start-offset:end-offset]`` styled as the
    quote. Each piece is made printable on its own, so offsets never drift."""
    from assistant.render import printable  # pydantic models: ~0.1 s, after the first frame

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
    from assistant.render import printable  # pydantic models: ~0.1 s, after the first frame

    end = offset + len(text)
    spans = [(max(a, offset), min(b, end), style) for a, b, style in marks
             if a < end and b > offset and a < b]
    cuts = sorted({offset, end, *(a for a, _, _ in spans), *(b for _, b, _ in spans)})
    out = Text(no_wrap=False)
    for x, y in itertools.pairwise(cuts):
        styles = [style for a, b, style in spans if a <= x and y <= b]
        out.append(printable(text[x - offset:y - offset]), style=" ".join(styles) or None)
    return out


def passage_text(p: Passage, quote_style: str, base_style: str = "") -> Text:
    """A passage for the conversation view: context dimmed by the caller's style, the
    quote highlighted, ellipses where a line was cut."""
    body = highlighted(p.text, p.quote_start, p.quote_end, quote_style, base_style,
                       offset=p.start)
    if p.cut_before:
        body = Text("…", style=base_style) + body
    if p.cut_after:
        body.append("…")
    return body


def literal(text: str, style: str = "") -> Text:
    """Untrusted text (a question, a title, a path) as a literal, printable ``Text``."""
    from assistant.render import printable  # pydantic models: ~0.1 s, after the first frame

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
