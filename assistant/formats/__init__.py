"""Per-format readers: a document's bytes decoded to text become its readable text, its
sections, its units and the map back to the source file's lines.

Each reader takes text (or a PDF's page texts) and returns a ``Reading``; none opens a file
(``assistant.ingest`` reads and decodes, then hands the text here). What the readable text
of each format is, is written in the README ("What is indexed").
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from assistant.models import Location, Section, Unit, UnitKind

CELL_SEPARATOR = " · "
"""Between a table row's cells in the readable text (Markdown and web pages)."""


@dataclass
class Reading:
    """A document as one reader made it: ``text`` is what every offset points into."""

    text: str
    title: str
    sections: list[Section]
    units: list[Unit]
    locations: list[Location]


def sections_from_heads(heads: list[tuple[int, int, str]], length: int) -> list[Section]:
    """Sections from ``(start, level, title)`` heads in order: each runs to the next head."""
    sections = []
    for j, (start, level, name) in enumerate(heads):
        end = heads[j + 1][0] if j + 1 < len(heads) else length
        sections.append(Section(title=name, level=level, start=start, end=end))
    return sections


@dataclass
class TextBuilder:
    """Readable text written block by block, with its units, headings and source lines."""

    out: io.StringIO = field(default_factory=io.StringIO)
    length: int = 0
    units: list[Unit] = field(default_factory=list)
    heads: list[tuple[int, int, str]] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    _newlines: int = 0
    """Newlines at the end of the text so far."""

    def write(self, s: str) -> None:
        if not s:
            return
        self.out.write(s)
        self.length += len(s)
        stripped = s.rstrip("\n")
        self._newlines = (self._newlines + len(s)) if not stripped else len(s) - len(stripped)

    def separate(self, newlines: int) -> None:
        """End the current block: at least ``newlines`` newlines (none at the very start)."""
        if self.length:
            self.write("\n" * max(0, newlines - self._newlines))

    def mark(self, line: int, page: int = 0) -> None:
        """From here on the text comes from ``line`` (1-based) of the source."""
        loc = (self.length, line, page)
        if self.locations and self.locations[-1][0] == self.length:
            self.locations[-1] = loc
        else:
            self.locations.append(loc)

    def write_lines(self, text: str, lines: list[tuple[int, int]], page: int = 0) -> None:
        """``text`` with source lines: ``lines`` holds (offset in ``text``, line) breaks."""
        base = self.length
        at = 0
        for off, line in lines:
            self.write(text[at:off])
            at = off
            if self.length == base + off:
                self.mark(line, page)
        self.write(text[at:])

    def heading(self, title: str, level: int, line: int, page: int = 0) -> None:
        self.separate(2)
        self.mark(line, page)
        self.heads.append((self.length, level, title))
        self.write(title)

    def unit(self, text: str, line: int, *, label: str = "", kind: UnitKind = "text",
             search: str = "", breaks: list[tuple[int, int]] | None = None,
             page: int = 0) -> None:
        """A unit at the current position (the caller separates it from what precedes)."""
        self.mark(line, page)
        start = self.length
        self.write_lines(text, breaks or [], page)
        if text.strip():
            self.units.append(Unit(start=start, end=self.length, label=label,
                                   kind=kind, search=search))

    def reading(self, title: str) -> Reading:
        text = self.out.getvalue()
        return Reading(text=text, title=title,
                       sections=sections_from_heads(self.heads, len(text)),
                       units=self.units, locations=self.locations or [(0, 1, 0)])
