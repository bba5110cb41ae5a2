"""Where a quote stands in its source file: the line (and a PDF's page) of an offset of a
document's readable text, from the map its reader made (``SourceDocument.locations``), and the
label of the unit it is quoted from.

Every citation the user sees, in the chat, ``ask``, ``batch`` and JSON, is located here, once,
after the answer is made (the answer stages work in offsets of the readable text).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.models import Answer, Location, Unit


@dataclass(frozen=True)
class DocumentMap:
    """A document's readable text with its units and its map to the source's lines."""

    text: str
    units: list[Unit]
    locations: list[Location]
    _offsets: list[int] = field(default_factory=list, repr=False)
    _unit_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_offsets", [loc[0] for loc in self.locations])
        object.__setattr__(self, "_unit_starts", [u.start for u in self.units])

    def place(self, offset: int) -> tuple[int, int | None]:
        """The source line of ``offset`` and its page (None outside a PDF)."""
        offset = max(0, min(offset, len(self.text)))
        k = bisect.bisect_right(self._offsets, offset) - 1
        at, line, page = self.locations[k] if k >= 0 else (0, 1, 0)
        return line + self.text.count("\n", at, offset), page or None

    def label(self, offset: int) -> str:
        """The label of the unit holding ``offset`` ("" when it has none)."""
        k = bisect.bisect_right(self._unit_starts, offset) - 1
        if k >= 0 and offset < self.units[k].end:
            return self.units[k].label
        return ""


def locate(answer: Answer, map_of: Callable[[str], DocumentMap]) -> Answer:
    """The answer with the line, page and label of its quote and of every citation."""
    span = answer.answer
    if span is not None:
        line, page = map_of(span.doc_id).place(span.start)
        span = span.model_copy(update={"line": line, "page": page})
    citations = []
    for c in answer.citations:
        m = map_of(c.doc_id)
        line, page = m.place(c.start)
        citations.append(c.model_copy(update={"line": line, "page": page,
                                              "label": m.label(c.start)}))
    return answer.model_copy(update={"answer": span, "citations": citations})
