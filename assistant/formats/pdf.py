"""A PDF's page texts made one readable text: running headers, footers and page numbers
dropped, words hyphenated at a line's end joined, every character mapped to its page and
its line on that page.

Works on the list of page texts only (``assistant.ingest`` reads the pages), so it composes
with any page reader.
"""

from __future__ import annotations

import re

from assistant.formats import Reading, TextBuilder, sections_from_heads
from assistant.formats.plain import plain_text_sections, plain_units

_PAGE_NUMBER = re.compile(r"(?i)^\W*(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\W*$")
_HYPHENATED = re.compile(r"[^\W\d_]-$")
"""A line ending in a letter and a hyphen: a word cut at the line's end, when the next line
goes on in lower case ("regu-" / "lation")."""


def _key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


def _edges(lines: list[str]) -> list[int]:
    """The lines a running header or footer can be: the first and last two filled lines, one
    each on a page of four or fewer, so a short page keeps its body ("Body 3 text." between
    "Report" and "3" is not furniture, though it repeats but for its number)."""
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    zone = min(2, max(1, (len(filled) - 1) // 2))
    return sorted(set(filled[:zone] + filled[-zone:]))


def kept_lines(pages: list[str]) -> list[list[tuple[int, str]]]:
    """Each page's lines, numbered from 1 on the page, without its running header and footer:
    a line among the first or last two of at least half the pages (three or more), the same
    but for its numbers ("Chapter 3: Utilities 6"), and bare page numbers ("6", "Page 6 of
    12") at a page's top or bottom."""
    split = [page.split("\n") for page in pages]
    counts: dict[str, int] = {}
    for lines in split:
        for k in {_key(lines[i]) for i in _edges(lines)}:
            counts[k] = counts.get(k, 0) + 1
    filled_pages = sum(1 for p in pages if p.strip())
    repeated = {k for k, n in counts.items() if filled_pages >= 3 and n >= max(3, filled_pages / 2)}
    out = []
    for lines in split:
        drop = {i for i in _edges(lines)
                if _key(lines[i]) in repeated or _PAGE_NUMBER.match(lines[i].strip())}
        out.append([(i + 1, ln) for i, ln in enumerate(lines) if i not in drop])
    return out


def drop_page_furniture(pages: list[str]) -> list[str]:
    """The page texts without their running headers, footers and page numbers."""
    return ["\n".join(ln for _, ln in page) for page in kept_lines(pages)]


def read_pdf(pages: list[str], meta_title: str = "") -> Reading:
    """One text from the pages (newlines normalised), a blank line between pages; each page
    a section "Page N", the headings inside it found by shape as in plain text."""
    b = TextBuilder()
    for n, lines in enumerate(kept_lines(pages), start=1):
        while lines and not lines[0][1].strip():
            lines = lines[1:]
        while lines and not lines[-1][1].strip():
            lines = lines[:-1]
        if not lines:
            continue
        b.separate(2)
        page_start = b.length
        b.heads.append((page_start, 1, f"Page {n}"))
        expected = -1
        joined = False
        for k, (number, line) in enumerate(lines):
            if k and not joined:
                b.write("\n")
            if number != expected or joined:
                b.mark(number, n)
            nxt = lines[k + 1][1] if k + 1 < len(lines) else ""
            joined = bool(_HYPHENATED.search(line.rstrip())) and nxt.lstrip()[:1].islower()
            b.write(line.rstrip()[:-1] if joined else line)
            if joined:  # the next line goes on here, its leading space dropped
                lines[k + 1] = (lines[k + 1][0], nxt.lstrip())
            expected = number + 1
        page_text = b.out.getvalue()[page_start:]
        inner, _ = plain_text_sections(page_text)
        b.heads.extend((page_start + sec.start, 2, sec.title) for sec in inner)
    reading = b.reading("")
    text = reading.text
    sections = sections_from_heads(b.heads, len(text))
    title = meta_title.strip() or next((ln.strip() for ln in text.split("\n") if ln.strip()), "")
    return Reading(text=text, title=title[:200], sections=sections,
                   units=plain_units(text, sections), locations=reading.locations)
