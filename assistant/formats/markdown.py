"""Markdown read as it renders: the text a reader sees, never its markup.

markdown-it-py (CommonMark, with GFM tables) parses the file; its tokens are written out as
plain text: no ``#``, ``*``, ``_``, backticks, link syntax or HTML comments. Headings are
sections (their lines are never quoted); each paragraph, list item, table row and code block
is a unit of its own. A bold lead-in that is a phrase of its own (``**Leakage.** In
October...``, ``**To:** Digital policy team``) is the paragraph's label: it stays in the text
but out of the unit. A bold date that opens a timeline entry (``**12 July 2024**: ...``) is
part of the sentence and stays in it. A table's header row is shown, not indexed; each body
row is quoted as its cells joined by `` · `` and found by its "Header: value" pairs too.
Every block marks its source line, and every line break inside a paragraph too, so a
quote's line is the file's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from assistant.formats import CELL_SEPARATOR, Reading, TextBuilder
from assistant.formats.plain import speaker_prefix

_LEAD_IN_END = (".", ":", "?", "!")
_TAGS = re.compile(r"<!--.*?(?:-->|$)|<[^>]*>", re.S)
_WS = re.compile(r"[ \t\r\f\v]+")


@dataclass
class _Inline:
    text: str
    breaks: list[tuple[int, int]]
    """(offset in ``text``, source line) where a source line starts inside the text."""
    lead_in: int = 0
    """Characters at the start of ``text`` that are a bold lead-in (0: none)."""
    label: str = ""
    all_strong: bool = False


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _inline(tok: Token, line: int) -> _Inline:
    """An inline token's children as plain text, with the source line of each break."""
    parts: list[str] = []
    breaks: list[tuple[int, int]] = []
    length = 0
    strong_depth = 0
    lead_end: int | None = None  # where the opening bold span closes, if the text opens with one
    outside_strong = False
    children = [c for c in tok.children or [] if c.type != "text" or c.content]
    for k, child in enumerate(children):
        t = child.type
        piece = ""
        if t in ("text", "text_special", "code_inline"):
            piece = child.content
            if strong_depth == 0 and piece.strip():
                outside_strong = True
        elif t == "softbreak":
            piece = " "
            line += 1
        elif t == "hardbreak":
            piece = "\n"
            line += 1
        elif t == "image":
            piece = child.content
        elif t == "strong_open":
            strong_depth += 1
        elif t == "strong_close":
            strong_depth -= 1
            if strong_depth == 0 and lead_end is None and k > 0 and \
                    children[0].type == "strong_open":
                lead_end = length
        elif t == "html_inline" and re.fullmatch(r"<br\s*/?>", child.content.strip(), re.I):
            piece = "\n"
        if piece:
            parts.append(piece)
            length += len(piece)
            if t in ("softbreak", "hardbreak"):
                breaks.append((length, line))
    text = "".join(parts)
    out = _Inline(text=text, breaks=breaks)
    out.all_strong = bool(children) and children[0].type == "strong_open" and \
        not outside_strong and bool(text.strip())
    if lead_end is not None and not out.all_strong:
        phrase = text[:lead_end].strip()
        rest = text[lead_end:]
        if phrase.endswith(_LEAD_IN_END) and rest.strip():
            out.label = phrase.rstrip(":").strip() if phrase.endswith(":") else phrase
            out.label = out.label.rstrip(".").strip() or phrase
            out.lead_in = lead_end + (len(rest) - len(rest.lstrip()))
    return out


def _strip_edges(text: str, breaks: list[tuple[int, int]], start: int
                 ) -> tuple[str, list[tuple[int, int]]]:
    """``text[start:]`` without surrounding space, its breaks moved with it."""
    body = text[start:]
    lead = len(body) - len(body.lstrip())
    body = body.strip()
    cut = start + lead
    return body, [(off - cut, ln) for off, ln in breaks if cut < off < cut + len(body)]


def read_markdown(source: str) -> Reading:
    tokens = _parser().parse(source)
    b = TextBuilder()
    lists: list[list[int]] = []  # per open list: [ordered (0/1), next number, no item yet]
    item_first: list[bool] = []  # per open list item: its first block is still to come
    quote_depth = 0
    header: list[str] = []
    row: list[str] = []
    row_line = 0
    in_head = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        t = tok.type
        line = tok.map[0] + 1 if tok.map else 1
        if t == "heading_open":
            inline = _inline(tokens[i + 1], line)
            title = " ".join(inline.text.split())
            if title:
                b.heading(title, int(tok.tag[1:]), line)
            i += 3
            continue
        if t in ("bullet_list_open", "ordered_list_open"):
            start = tok.attrGet("start")
            lists.append([int(t == "ordered_list_open"), int(start) if start else 1, 1])
        elif t in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif t == "list_item_open":
            item_first.append(True)
        elif t == "list_item_close":
            item_first.pop()
        elif t == "blockquote_open":
            quote_depth += 1
        elif t == "blockquote_close":
            quote_depth -= 1
        elif t == "paragraph_open":
            for inline, at in _field_lines(tokens[i + 1], line):
                _paragraph(b, inline, at, lists, item_first)
            i += 3
            continue
        elif t in ("fence", "code_block"):
            raw = tok.content.rstrip()
            code = raw.lstrip()  # a unit starts and ends on a character shown
            b.separate(1 if lists else 2)
            if code:
                skipped = raw[:len(raw) - len(code)].count("\n")
                b.unit(code, line + (1 if t == "fence" else 0) + skipped, kind="code")
        elif t == "html_block":
            shown = _WS.sub(" ", _TAGS.sub(" ", tok.content)).strip()
            if shown:
                b.separate(2)
                b.unit(shown, line)
        elif t == "thead_open":
            in_head = True
        elif t == "thead_close":
            in_head = False
        elif t == "tr_open":
            row, row_line = [], line
        elif t in ("th_open", "td_open"):
            row.append(" ".join(_inline(tokens[i + 1], row_line).text.split()))
            i += 3
            continue
        elif t == "tr_close":
            _table_row(b, row, header, row_line, in_head)
            if in_head:
                header = row
        elif t == "table_close":
            header = []
        i += 1
    title = next((h[2] for h in b.heads if h[1] == 1), "")
    if not title:
        title = next((ln.strip() for ln in source.split("\n") if ln.strip()), "")[:200]
    return b.reading(title)


_FIELD = re.compile(r"\s*(\*\*|__)[^*_\n]+?\1")


def _field_lines(tok: Token, line: int) -> list[tuple[_Inline, int]]:
    """A paragraph, or its lines when each opens with a bold lead-in (a memo's
    ``**To:** ...`` / ``**From:** ...`` block): each line is then a unit of its own."""
    lines = tok.content.split("\n")
    if len(lines) > 1 and all(_FIELD.match(ln) for ln in lines):
        parser = _parser()
        return [(_inline(parser.parseInline(ln)[0], line + k), line + k)
                for k, ln in enumerate(lines)]
    return [(_inline(tok, line), line)]


def _paragraph(b: TextBuilder, inline: _Inline, line: int, lists: list[list[int]],
               item_first: list[bool]) -> None:
    in_item = bool(item_first)
    b.separate(2 if not in_item or (item_first[-1] and lists[-1][2] and len(lists) == 1) else 1)
    if in_item:
        depth = len(lists)
        indent = "  " * (depth - 1)
        lists[-1][2] = 0  # the list's first item is written
        if item_first[-1]:
            item_first[-1] = False
            if lists[-1][0]:
                marker = f"{lists[-1][1]}. "
                lists[-1][1] += 1
            else:
                marker = "• "
            b.mark(line)
            b.write(indent + marker)
        else:
            b.write(indent + "  ")
    if inline.all_strong and not in_item and len(inline.text.split()) <= 12 \
            and not inline.text.rstrip().endswith("."):
        # a paragraph that is one bold phrase is a heading in all but name
        b.heads.append((b.length, 6, " ".join(inline.text.split())))
        b.mark(line)
        b.write(inline.text.strip())
        return
    label = inline.label
    start = inline.lead_in
    if label:
        b.mark(line)
        b.write(inline.text[:start])
    elif not in_item:
        speaker = speaker_prefix(inline.text)
        if speaker is not None:
            label, start = speaker
            b.mark(line)
            b.write(inline.text[:start])
    body, breaks = _strip_edges(inline.text, inline.breaks, start)
    b.unit(body, _line_at(inline.breaks, start, line), label=label,
           kind="item" if in_item else "text", breaks=breaks)


def _line_at(breaks: list[tuple[int, int]], offset: int, line: int) -> int:
    for off, ln in breaks:
        if off <= offset:
            line = ln
    return line


def _table_row(b: TextBuilder, cells: list[str], header: list[str], line: int,
               in_head: bool) -> None:
    text = CELL_SEPARATOR.join(c for c in cells if c)
    if not text:
        return
    b.separate(2 if in_head else 1)
    if in_head:
        b.mark(line)
        b.write(text)
        return
    pairs = [f"{h}: {c}" if h else c for h, c in zip(header or [""] * len(cells), cells,
                                                      strict=False) if c]
    b.unit(text, line, kind="row", search="; ".join(pairs))
