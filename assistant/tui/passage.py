"""How a passage and a quote are drawn: literally, with the quote marked.

This module never imports ``textual`` (only ``rich``'s ``Text``), and never builds markup
from document text: every piece is appended to a ``Text`` as plain characters, after control
characters are made visible. Where a quote sits (``Passage``, ``place_of``) is worked out
in ``assistant.chat.passage``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from assistant.chat.passage import Passage
    from assistant.models import Answer, Citation


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
