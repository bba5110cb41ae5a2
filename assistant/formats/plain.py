"""Plain text, and what PDFs are made of: the text verbatim, its headings found by shape, and
units cut at blank lines, bullets and lines that end a sentence.

Notes and transcripts: a line ``SPEAKER: text`` (a name in capitals) or ``Name (role): text``
makes the speaker the unit's label, outside the quote; a separator line (``---``,
``=== CALL 1 ===``, ``--- Prepared remarks ---``) starts a section, named by the words
inside it; a participants list (the lines under "Speakers", "Participants", "Present" and the
like) is never a heading, and each of its lines is a unit of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from assistant.formats import Reading, sections_from_heads
from assistant.models import Section, SourceDocument, Unit

_UNDERLINE = re.compile(r"^\s*([=\-*~^\"#+_])\1{2,}\s*$")
BULLET = re.compile(r"\s*(?:[-*•‣◦–]|\d{1,3}[.)])\s+")
"""A list-item marker; used with ``match`` (anchored at the position given)."""
_SENTENCE_END = re.compile(r"[.,;:]$")


def is_rule_line(line: str) -> bool:
    """A line of one repeated punctuation character: an underline or a separator."""
    return bool(_UNDERLINE.match(line))


_INNER_SENTENCE_END = re.compile(r"[.!?][\"”’)\]]*\s")
_ENDS_PARAGRAPH = re.compile(r"[.!?:][\"”’)\]]*$")


def _looks_like_heading(line: str, next_line: str | None, prev_line: str | None,
                        blank_before: bool) -> bool:
    """A short capitalised line standing alone: not the first line of a hard-wrapped
    paragraph (no sentence ends inside it, the line before it ends a paragraph, and the
    line after it starts a new sentence or a list)."""
    s = line.strip()
    if not (2 <= len(s) <= 70) or next_line is None or line[:1].isspace():
        return False  # an indented line is code or a quotation, not a heading
    if BULLET.match(line) or _SENTENCE_END.search(s) or "://" in s:
        return False
    if not (s[0].isupper() or s[0].isdigit()) or len(s.split()) > 9:
        return False
    if _INNER_SENTENCE_END.search(s):
        return False
    if prev_line is not None and not blank_before and \
            not _ENDS_PARAGRAPH.search(prev_line.strip()) and not _is_title_like(prev_line):
        return False
    if s.split()[-1].lower() in _CONNECTIVES:  # "… the implementation of" runs on
        return False
    nxt = next_line.strip()
    if BULLET.match(next_line):
        return True
    first_letter = next((ch for ch in nxt if ch.isalpha()), "")
    return len(nxt) > len(s) and not first_letter.islower()


_CONNECTIVES = frozenset("""
a an and as at by for from in into of on or than that the to which with without
""".split())  # noqa: SIM905 - a word list reads best as text


def _is_title_like(line: str) -> bool:
    s = line.strip()
    return bool(s) and len(s) <= 200 and not _SENTENCE_END.search(s) and s[:1].isupper()


def plain_text_sections(text: str) -> tuple[list[Section], str]:
    """Title (first non-blank line) and headings of a plain-text document.

    A heading is a line underlined with a repeated punctuation character (reST style),
    or a short capitalised line with no closing punctuation followed by a longer line
    or a bullet list — never a list of known heading names.
    """
    lines = text.split("\n")
    starts: list[int] = []
    pos = 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    title = ""
    heads: list[tuple[int, int, str]] = []  # (start, level, title)
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    listed = {start for start, _ in participant_lines(text)}
    for k, i in enumerate(nonblank):
        line = lines[i]
        nxt_i = nonblank[k + 1] if k + 1 < len(nonblank) else None
        nxt = lines[nxt_i] if nxt_i is not None else None
        separator = separator_title(line)
        if separator is not None and not (separator == "" and k and nonblank[k - 1] == i - 1):
            # "=== CALL 1 ===" names a section; a bare "---" (not an underline) ends one
            if separator or title:
                heads.append((starts[i], 1, separator))
            title = title or separator
            continue
        if starts[i] + len(line) - len(line.lstrip()) in listed or speaker_prefix(line):
            continue  # a participants list or a speaker's words: never headings
        if not title and len(line.strip()) <= 200 and not is_rule_line(line):
            title = line.strip()
            # A first line that ends a sentence, or runs on into the next, is prose that
            # names the document, not a heading: it stays content to quote.
            if nxt_i == i + 1 and nxt is not None and nxt.lstrip()[:1].islower():
                continue
            if not _SENTENCE_END.search(title):
                heads.append((starts[i], 0, title))
                continue
        if is_rule_line(line):
            continue
        if nxt is not None and nxt_i == i + 1 and is_rule_line(nxt) and len(line.strip()) <= 120:
            heads.append((starts[i], 1, line.strip()))
        elif _looks_like_heading(line, nxt, lines[nonblank[k - 1]] if k else None,
                                 k > 0 and nonblank[k - 1] < i - 1):
            heads.append((starts[i], 2, line.strip()))
    return sections_from_heads(heads, len(text)), title

_NAME = r"[A-Z][A-Z.'’\-]*(?:[ \t]+[A-Z][A-Z.'’\-]*){0,4}"
_MIXED_NAME = r"[A-Z][\w.'’\-]*(?:[ \t]+[\w.'’\-]+){0,4}"
_SPEAKER = re.compile(
    rf"[ \t]*(?:(?P<caps>{_NAME})(?:[ \t]*\((?P<caps_role>[^()\n]{{1,60}})\))?"
    rf"|(?P<name>{_MIXED_NAME})[ \t]*\((?P<role>[^()\n]{{1,60}})\)):[ \t]+(?=\S)")
"""``WENDELL HUANG: ...``, ``HOLLOWAY (opening): ...``, ``Dr. Marsh (CHIPS office): ...``."""


def speaker_prefix(text: str) -> tuple[str, int] | None:
    """The speaker naming a line of notes and where their words start, or None."""
    m = _SPEAKER.match(text)
    if m is None:
        return None
    name = (m.group("caps") or m.group("name") or "").strip()
    if len(name) > 40 or sum(ch.isalpha() for ch in name) < 2:
        return None
    return m.group(0)[:m.group(0).rindex(":")].strip(), m.end()


def read_plain(text: str) -> Reading:
    """Plain text: verbatim (newlines normalised by the caller); its line ``n`` is the file's."""
    sections, title = plain_text_sections(text)
    return Reading(text=text, title=title, sections=sections,
                   units=plain_units(text, sections), locations=[(0, 1, 0)])


def plain_units(text: str, sections: list[Section]) -> list[Unit]:
    """The units of plain text (also a PDF's): the chunker's blocks, each opened by a speaker
    labelled with them, the lines of a participants list one by one."""
    doc = SourceDocument(doc_id="", title="", format="txt", text=text, sections=sections,
                         content_hash="")
    lists = participant_lines(text)
    units: list[Unit] = []
    for region in regions(doc):
        for start, end in blocks(text, region):
            for s, e in _split_listed(text, start, end, lists):
                m = BULLET.match(text, s, e)
                kind = "item" if m else "text"
                if m:
                    s = m.end()
                label = ""
                speaker = None if m or (s, e) in lists else speaker_prefix(text[s:e])
                if speaker is not None:
                    label, skip = speaker
                    s += skip
                if s < e:
                    units.append(Unit(start=s, end=e, label=label, kind=kind))
    return units


def _split_listed(text: str, start: int, end: int, lists: set[tuple[int, int]]
                  ) -> list[tuple[int, int]]:
    """A block, or its lines when they are a participants list's."""
    lines = []
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        nl = end if nl == -1 else nl
        a, z = pos, nl
        while a < z and text[a].isspace():
            a += 1
        while z > a and text[z - 1].isspace():
            z -= 1
        if a < z:
            lines.append((a, z))
        pos = nl + 1
    if not any(line in lists for line in lines):
        return [(start, end)]
    return [ln for ln in lines if ln in lists or not text[ln[0]:ln[1]].endswith(":")]


_PARTICIPANTS = re.compile(
    r"(?i)\s*(?:speakers|participants|present|attendees|attending|on the call|panel(?:ists)?"
    r"|witnesses|call participants|company participants|conference call participants)"
    r"\s*:?\s*")


def participant_lines(text: str) -> set[tuple[int, int]]:
    """(start, end) of each line of a participants list: the non-blank lines under a line
    such as "Speakers" or "PRESENT", up to the next blank line; sub-headings ending in ":"
    (``Witnesses:``) are left out."""
    out: set[tuple[int, int]] = set()
    lines = text.split("\n")
    pos = 0
    starts = []
    for ln in lines:
        starts.append(pos)
        pos += len(ln) + 1
    i = 0
    while i < len(lines):
        if _PARTICIPANTS.fullmatch(lines[i]) and i + 1 < len(lines) and lines[i + 1].strip():
            j = i + 1
            while j < len(lines) and lines[j].strip():
                s = lines[j]
                a = starts[j] + len(s) - len(s.lstrip())
                z = starts[j] + len(s.rstrip())
                if not s.rstrip().endswith(":"):
                    out.add((a, z))
                j += 1
            i = j
        else:
            i += 1
    return out


def separator_title(line: str) -> str | None:
    """The words inside a separator line (``=== CALL 1 ===`` -> ``CALL 1``; ``---`` -> ``""``),
    or None when the line is not one."""
    m = _SEPARATOR.fullmatch(line.strip())
    if m is None:
        return None
    return (m.group(2) or "").strip()


_SEPARATOR = re.compile(r"([=\-*~#_+])\1{2,}(?:\s+(.*?\w.*?)\s+\1{3,})?")


# --- blocks: what a sentence never crosses -------------------------------------------------

_ENDS_SENTENCE = re.compile(r"[.!?:;…][\"”’'»)\]]*\s*$")
"""A line ending like this ends its sentence; otherwise the next line continues it."""
_ATX_MARKS = re.compile(r"^#{1,6}[ \t]*|[ \t]+#+[ \t]*$")


def iter_lines_with_offsets(text: str, start: int = 0, end: int | None = None
                            ) -> Iterator[tuple[int, str]]:
    """(offset, line) for each line of ``text[start:end]``, without the newline."""
    end = len(text) if end is None else end
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        if nl == -1:
            nl = end
        yield pos, text[pos:nl]
        pos = nl + 1


@dataclass(frozen=True)
class Region:
    title: str
    start: int
    end: int
    heading_in_text: bool


def regions(doc: SourceDocument) -> list[Region]:
    """The document cut by its sections; text before the first heading is its own region."""
    out: list[Region] = []
    secs = sorted(doc.sections, key=lambda s: s.start)
    if not secs or secs[0].start > 0:
        out.append(Region(title="", start=0, end=secs[0].start if secs else len(doc.text),
                          heading_in_text=False))
    for s in secs:
        first_line = doc.text[s.start:s.end].split("\n", 1)[0].strip()
        # A Markdown ATX heading ("## Title ##") is the title in markup: structure, not prose;
        # so is a separator line naming a part of notes ("=== CALL 1 ===").
        in_text = s.title in (first_line, _ATX_MARKS.sub("", first_line),
                              separator_title(first_line))
        out.append(Region(title=s.title, start=s.start, end=s.end, heading_in_text=in_text))
    return out


def blocks(text: str, region: Region) -> Iterator[tuple[int, int]]:
    """Paragraph-like blocks (start, end) of a region: a sentence never crosses a block."""
    cur_start: int | None = None
    cur_end = 0
    first = True
    for off, line in iter_lines_with_offsets(text, region.start, region.end):
        skip_heading = first and region.heading_in_text
        first = False
        stripped = line.strip()
        if skip_heading or not stripped or is_rule_line(line):
            if cur_start is not None:
                yield cur_start, cur_end
                cur_start = None
            continue
        if cur_start is not None and BULLET.match(line):
            yield cur_start, cur_end
            cur_start = None
        if cur_start is None:
            cur_start = off + (len(line) - len(line.lstrip()))
        cur_end = off + len(line.rstrip())
        if _ENDS_SENTENCE.search(line):
            yield cur_start, cur_end
            cur_start = None
    if cur_start is not None:
        yield cur_start, cur_end
