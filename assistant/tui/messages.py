"""Messages the chat's widgets and workers send to the app.

Workers post ``BuildProgress`` and ``EngineNote`` from their threads (``post_message``
is thread-safe); widgets post ``SourceRequested`` when a citation or a document is chosen, and
``RestrictionRequested`` when a document is to be asked alone.
"""

from __future__ import annotations

from textual.message import Message


class SourceRequested(Message):
    """Open a document, scrolled to ``start``–``end`` and highlighted (``None``: its top)."""

    def __init__(self, doc_id: str, start: int | None = None, end: int | None = None) -> None:
        super().__init__()
        self.doc_id = doc_id
        self.start = start
        self.end = end


class BuildProgress(Message):
    """``build_index`` progress: stage ("scan", "export", "embed", "vectors", "publish",
    "waiting"), done of total."""

    def __init__(self, stage: str, done: int, total: int) -> None:
        super().__init__()
        self.stage = stage
        self.done = done
        self.total = total


class EngineNote(Message):
    """A line for the status bar from a worker: what it is doing now."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RestrictionRequested(Message):
    """Ask only ``doc_id`` from now on (asked for the document already restricted to:
    every document again); ``mark``: add it to the documents asked, or take it out.
    ``members``: for a folder, the documents in it, asked (or marked) together."""

    def __init__(self, doc_id: str, mark: bool = False,
                 members: frozenset[str] | None = None) -> None:
        super().__init__()
        self.doc_id = doc_id
        self.mark = mark
        self.members = members
