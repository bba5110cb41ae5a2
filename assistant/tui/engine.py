"""The chat's engine room: open (or build) the index, answer, fetch documents — off the UI thread.

Everything here runs inside Textual thread workers and never imports ``textual``: the
app imports this module only from its workers, so the first frame does not wait for
numpy, FAISS or onnxruntime (~0.5 s). Every failure comes back as an
``AssistantError`` inside an outcome object, never as an exception escaping a worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from assistant.build import Progress, build_index, index_status
from assistant.errors import AssistantError, IndexCorruptError, IndexMissingError, ModelError
from assistant.models import Answer, BuildSummary, IndexStatus, Section
from assistant.qa.conversation import Conversation
from assistant.qa.pipeline import Answerer
from assistant.settings import Settings
from assistant.store import OpenIndex, open_index
from assistant.tui.passage import Passage, passage_around, place_of, section_of


class UnexpectedError(AssistantError):
    """A bug, reported in the chat as one readable line instead of a traceback."""

    title = "Unexpected error"

    @classmethod
    def wrap(cls, exc: BaseException) -> UnexpectedError:
        text = " ".join(str(exc).split())[:300]
        return cls(f"unexpected {type(exc).__name__}: {text} (a bug; the chat goes on)")


@dataclass(frozen=True)
class Reply:
    """An answer and, when it answers, the passage its quote sits in."""

    answer: Answer
    passage: Passage | None
    conversation: Conversation
    """The conversation with this turn added."""
    places: dict[int, str] = field(default_factory=dict)
    """Each citation's place in its document by rank, in a reader's words (section, page,
    line): ``assistant.tui.passage.place_of``."""


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    title: str
    text: str
    sections: list[Section]


class Engine:
    """One open index generation and its Answerer. ``ask`` and the document reads share a
    lock: the Answerer answers one question at a time."""

    def __init__(self, index: OpenIndex, answerer: Answerer) -> None:
        self.index = index
        self.answerer = answerer
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> Engine:
        index = open_index(settings.index_dir)
        try:
            return cls(index, Answerer(index, settings))
        except ModelError as exc:  # the index's own copy of the model is damaged
            index.close()
            raise IndexCorruptError(f"the index's copy of the model cannot be loaded "
                                    f"({exc.message.split(';')[0]}); rebuild the index") from exc
        except BaseException:
            index.close()
            raise

    @property
    def generation(self) -> int:
        return self.index.manifest.generation

    def ask(self, question: str, conversation: Conversation,
            documents: frozenset[str] | None = None) -> Reply:
        with self._lock:
            reply = self.answerer.ask(question, conversation, documents=documents)
            answer = reply.answer
            passage = None
            if answer.answer is not None:
                span = answer.answer
                text = self.index.document_text(span.doc_id)
                section = section_of(self.index.document_sections(span.doc_id), span.start)
                passage = passage_around(span.doc_id, text, span.start, span.end, section)
            places: dict[int, str] = {}
            docs: dict[str, tuple[str, list[Section]]] = {}
            for c in answer.citations:
                if c.doc_id not in docs:  # most citations share a document: read it once
                    docs[c.doc_id] = (self.index.document_text(c.doc_id),
                                      self.index.document_sections(c.doc_id))
                places[c.rank] = place_of(*docs[c.doc_id], c.start, c.title)
        return Reply(answer=answer, passage=passage, conversation=reply.conversation,
                     places=places)

    def document(self, doc_id: str) -> DocumentView:
        with self._lock:
            text = self.index.document_text(doc_id)
            sections = self.index.document_sections(doc_id)
        record = self.index.manifest.documents.get(doc_id)
        return DocumentView(doc_id=doc_id, title=record.title if record else doc_id,
                            text=text, sections=sections)

    def close(self) -> None:
        with self._lock:
            self.index.close()


@dataclass
class IndexOutcome:
    """What loading or rebuilding ended with: an engine to answer from, or the error that
    leaves the chat without one (``also``: a second problem behind the first)."""

    engine: Engine | None = None
    status: IndexStatus | None = None
    summary: BuildSummary | None = None
    error: AssistantError | None = None
    also: AssistantError | None = None
    warnings: list[str] = field(default_factory=list)


def read_status(settings: Settings) -> tuple[IndexStatus | None, AssistantError | None]:
    try:
        return index_status(settings), None
    except AssistantError as exc:
        return None, exc
    except Exception as exc:
        return None, UnexpectedError.wrap(exc)


def _build(settings: Settings, progress: Progress, full: bool
           ) -> tuple[BuildSummary | None, AssistantError | None]:
    try:
        return build_index(settings, full=full, progress=progress), None
    except AssistantError as exc:
        return None, exc
    except Exception as exc:
        return None, UnexpectedError.wrap(exc)


def _open(settings: Settings) -> tuple[Engine | None, AssistantError | None]:
    try:
        return Engine.open(settings), None
    except AssistantError as exc:
        return None, exc
    except Exception as exc:
        return None, UnexpectedError.wrap(exc)


def _summary_warnings(summary: BuildSummary | None) -> list[str]:
    if summary is None:
        return []
    return ([f"skipped {s.path}: {s.reason}" for s in summary.skipped]
            + list(summary.warnings))


def load(settings: Settings, progress: Progress) -> IndexOutcome:
    """Start-up: bring a missing or stale index up to date, then open it. When the build
    fails but an older index opens, answer from that one and say so."""
    status, status_error = read_status(settings)
    summary = build_error = None
    if status_error is not None or status is None or not status.exists or status.stale:
        summary, build_error = _build(settings, progress, full=False)
    engine, open_error = _open(settings)
    status_after, _ = read_status(settings)
    outcome = IndexOutcome(engine=engine, status=status_after or status, summary=summary,
                           warnings=_summary_warnings(summary))
    if engine is None:
        outcome.error = build_error or open_error
        if build_error is not None and not isinstance(open_error, IndexMissingError):
            outcome.also = open_error  # a damaged index behind a failed build: say both
    elif build_error is not None:
        outcome.warnings.insert(0, f"the index could not be brought up to date "
                                   f"({build_error.message}); answering from the existing "
                                   f"index, built before the change")
    return outcome


def rebuild(settings: Settings, progress: Progress, full: bool = False) -> IndexOutcome:
    """Update (or, ``full``, remake) the index and open the new generation; the caller keeps
    answering from its current engine until this returns, and keeps it on failure."""
    summary, build_error = _build(settings, progress, full=full)
    if build_error is not None:
        status, _ = read_status(settings)
        return IndexOutcome(status=status, error=build_error)
    engine, open_error = _open(settings)
    status, _ = read_status(settings)
    return IndexOutcome(engine=engine, status=status, summary=summary, error=open_error,
                        warnings=_summary_warnings(summary))


def ask(engine: Engine, question: str, conversation: Conversation,
        documents: frozenset[str] | None = None) -> Reply | AssistantError:
    """One question, never raising: an unusable question or a bug comes back as an error.
    ``documents`` (doc ids): answer from those documents only."""
    try:
        return engine.ask(question, conversation, documents)
    except AssistantError as exc:
        return exc
    except Exception as exc:
        return UnexpectedError.wrap(exc)
