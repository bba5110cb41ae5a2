"""What the chat adds to a session's answer: the passage around the quote and each citation's
place in its document, worked out in the answer's worker thread, never on the UI thread.

Imported only from workers (``assistant.tui.backend.CoreBackend``): it pulls in numpy,
FAISS and onnxruntime (~0.5 s). Failures come back as ``AssistantError`` values, never as
exceptions escaping a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.chat.passage import Passage, passage_around, place_of, section_of
from assistant.errors import AssistantError, UnexpectedError
from assistant.models import Answer, Section
from assistant.qa.conversation import Conversation
from assistant.session import DocumentView, Session

__all__ = ["DocumentView", "Reply", "UnexpectedError", "ask", "ask_each"]


@dataclass(frozen=True)
class Reply:
    """An answer and, when it answers, the passage its quote sits in."""

    answer: Answer
    passage: Passage | None
    conversation: Conversation
    """The conversation with this turn added."""
    places: dict[int, str] = field(default_factory=dict)
    """Each citation's place in its document by rank, in a reader's words (section, page,
    line): ``assistant.chat.passage.place_of``."""


def _reply(session: Session, question: str, conversation: Conversation,
           documents: frozenset[str] | None) -> Reply:
    reply = session.ask(question, conversation, documents=documents)
    return _shown(session, reply.answer, reply.conversation)


def _shown(session: Session, answer: Answer, conversation: Conversation) -> Reply:
    """The answer with what its card shows: the passage around the quote, each citation's
    place."""
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
        sections: list[Section] = view.sections
        places[c.rank] = place_of(view.text, sections, c.start, c.title, line=c.line,
                                  page=c.page, label=c.label)
    return Reply(answer=answer, passage=passage, conversation=conversation, places=places)


def ask(session: Session, question: str, conversation: Conversation,
        documents: frozenset[str] | None = None) -> Reply | AssistantError:
    """One question, never raising: an unusable question or a bug comes back as an error.
    ``documents`` (doc ids): answer from those documents only."""
    try:
        return _reply(session, question, conversation, documents)
    except AssistantError as exc:
        return exc
    except Exception as exc:
        return UnexpectedError.wrap(exc)


def ask_each(session: Session, question: str, conversation: Conversation,
             documents: frozenset[str] | None = None) -> list[Reply] | AssistantError:
    """"What does each document say?" (``Session.ask_each``), each answer with what its
    card shows, never raising. ``conversation`` is returned unchanged in every reply: these
    answers are no turn of it."""
    try:
        return [_shown(session, a, conversation) for a in session.ask_each(question, documents)]
    except AssistantError as exc:
        return exc
    except Exception as exc:
        return UnexpectedError.wrap(exc)
