"""What the chat adds to a session's answer: the passage around the quote and each
citation's place in its document, worked out in the answer's job, never on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.chat.passage import Passage, passage_around, place_of, section_of

if TYPE_CHECKING:
    from assistant.chat.backend import ChatSession
    from assistant.models import Answer
    from assistant.qa.conversation import Conversation
    from assistant.session import DocumentView


@dataclass(frozen=True)
class ShownAnswer:
    """An answer with what its card shows: the passage its quote sits in (None for an
    abstention) and each citation's place."""

    answer: Answer
    passage: Passage | None
    conversation: Conversation
    """The conversation with this turn added."""
    places: dict[int, str] = field(default_factory=dict)
    """Each citation's place in its document by rank, in a reader's words (section, page,
    line): ``assistant.chat.passage.place_of``."""


def shown(session: ChatSession, answer: Answer, conversation: Conversation) -> ShownAnswer:
    """The answer with the passage around its quote and each citation's place."""
    docs: dict[str, DocumentView] = {}

    def doc(doc_id: str) -> DocumentView:
        if doc_id not in docs:  # most citations share a document: read it once
            docs[doc_id] = session.document(doc_id)
        return docs[doc_id]

    passage = None
    if answer.answer is not None:
        span = answer.answer
        view = doc(span.doc_id)
        passage = passage_around(span.doc_id, view.text, span.start, span.end,
                                 section_of(view.sections, span.start), sections=view.sections,
                                 units=view.map.units if view.map is not None else ())
    places: dict[int, str] = {}
    for c in answer.citations:
        view = doc(c.doc_id)
        places[c.rank] = place_of(view.text, view.sections, c.start, c.title, line=c.line,
                                  page=c.page, label=c.label)
    return ShownAnswer(answer=answer, passage=passage, conversation=conversation,
                       places=places)
