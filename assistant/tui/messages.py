"""Messages the chat's widgets and workers send to the app.

A job's thread posts ``FromJob`` (``post_message`` is thread-safe); widgets post
``SourceRequested`` when a citation or a document is chosen, and ``RestrictionRequested``
when a document is to be asked alone.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message


class SourceRequested(Message):
    """Open a document, scrolled to ``start``–``end`` and highlighted (``None``: its top)."""

    def __init__(self, doc_id: str, start: int | None = None, end: int | None = None) -> None:
        super().__init__()
        self.doc_id = doc_id
        self.start = start
        self.end = end


class FromJob(Message):
    """Posted from a job's thread (``post_message`` is thread-safe): run ``callback`` on the
    UI thread (a build's progress, for the chat controller)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self.callback = callback


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
