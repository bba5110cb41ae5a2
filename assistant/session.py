"""A session: one open index generation, answering and reading documents, for the CLI and the chat.

``Session.open`` is the one place where what can go wrong opening an index or its model is
turned into what the user reads (a damaged copy of the model is a damaged index, with its
fix). ``load`` and ``rebuild`` bring an index up to date and open it, never raising: every
failure comes back inside an ``IndexOutcome``, which is what a chat worker thread needs.

The answer stages answer one question at a time (``ask`` holds a lock); document reads go
through a reader of their own, so opening a source while an answer is being worked out
never waits for it. Nothing here imports ``textual``.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

from assistant.build import Progress, build_index, documents_changed, index_status
from assistant.chunk import CHUNKER_VERSION
from assistant.errors import (
    AnswerModelError,
    AssistantError,
    IndexCorruptError,
    IndexIncompatibleError,
    IndexMissingError,
    ModelError,
    UnexpectedError,
)
from assistant.index.meta import DocumentSource
from assistant.index.store import OpenIndex, check_model, open_index
from assistant.locations import DocumentMap, locate
from assistant.models import Answer, BuildSummary, IndexManifest, IndexStatus, Section
from assistant.preload import EmbedderPreload, preload_embedder
from assistant.qa.conversation import Conversation
from assistant.qa.pipeline import Answerer, Reply
from assistant.settings import Settings


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    title: str
    text: str
    sections: list[Section]
    map: DocumentMap | None = None
    """Its units and the map to its source's lines (for the line an editor opens at)."""


class Session:
    """One open index generation, its Answerer, and a document reader of its own."""

    def __init__(self, index: OpenIndex, answerer: Answerer) -> None:
        self.index = index
        self.answerer = answerer
        self._answer_lock = threading.Lock()
        self._reader: DocumentSource | None = None
        self._maps: dict[str, DocumentMap] = {}
        self._reader_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, preload: EmbedderPreload | None = None) -> Session:
        """``preload``: the embedder started early by ``assistant.preload``, used when it
        is the opened index's."""
        try:
            index = open_server(settings) if settings.server else open_index(
                settings.index_dir, preload.known if preload is not None else None)
        except BaseException:
            if preload is not None:
                preload.wait()
            raise
        made = index.manifest.chunk_params.chunker_version
        if made != CHUNKER_VERSION:  # never answer from documents read the old way
            index.close()
            if preload is not None:
                preload.wait()
            raise IndexIncompatibleError(
                f"the index was built by another version of the assistant (index format "
                f"{made}, this version reads {CHUNKER_VERSION}); run `assistant index` to "
                "rebuild it")
        try:
            embedder = preload.take(index.onnx_file) if preload is not None else None
            return cls(index, Answerer(index, settings, embedder=embedder))
        except AnswerModelError:  # the installation's, not the index's
            index.close()
            raise
        except ModelError as exc:  # the index's own copy of the model is damaged
            index.close()
            raise IndexCorruptError(f"the index's copy of the model cannot be loaded "
                                    f"({exc.message.split(';')[0]}); run "
                                    "`assistant index --full` to restore it") from exc
        except BaseException:
            index.close()
            raise

    @property
    def manifest(self) -> IndexManifest:
        return self.index.manifest

    @property
    def generation(self) -> int:
        return self.index.manifest.generation

    def ask(self, question: str, conversation: Conversation | None = None,
            top_k: int | None = None, documents: frozenset[str] | None = None) -> Reply:
        """Answer one question (in a conversation, which is returned with this turn added);
        ``documents`` (doc ids): from those documents only."""
        with self._answer_lock:
            reply = self.answerer.ask(question, conversation, top_k=top_k, documents=documents)
        return dataclasses.replace(reply, answer=self.locate(reply.answer))

    def locate(self, answer: Answer) -> Answer:
        """The answer with each quote's source line, page and label (``assistant.locations``):
        for answers made by the answerer directly (``assistant batch``)."""
        return locate(answer, self.document_map)

    def document_map(self, doc_id: str) -> DocumentMap:
        """A document's text, units and map to its source's lines (the generation never
        changes: each is read once)."""
        with self._reader_lock:
            found = self._maps.get(doc_id)
            if found is None:
                if self._reader is None:
                    self._reader = self.index.reader()
                if len(self._maps) >= 64:
                    self._maps.clear()
                units, locations = self._reader.document_map(doc_id)
                found = DocumentMap(text=self._reader.document_text(doc_id), units=units,
                                    locations=locations)
                self._maps[doc_id] = found
            return found

    def ask_each(self, question: str, documents: frozenset[str] | None = None
                 ) -> list[Answer]:
        """Each document's best passage that covers ``question``
        (``Answerer.ask_each``), most likely first, each located as ``ask``'s."""
        with self._answer_lock:
            answers = self.answerer.ask_each(question, documents)
        return [self.locate(a) for a in answers]

    def documents_matching(self, patterns: tuple[str, ...]) -> frozenset[str]:
        """The documents ``--only`` names: those whose id matches one of the glob
        ``patterns`` (``fnmatch``: ``*`` also crosses ``/``), or that lie in a folder one of
        them names (``reports`` or ``reports/``). Matching none is an error (exit 8)."""
        from fnmatch import fnmatchcase

        folders = tuple(p.rstrip("/") + "/" for p in patterns if p.rstrip("/"))
        docs = self.index.manifest.documents
        found = frozenset(d for d in docs if d.startswith(folders)
                          or any(fnmatchcase(d, p) for p in patterns))
        if not found:
            from assistant.errors import InputError

            raise InputError(f"--only {' '.join(patterns)} matches none of the "
                             f"{len(docs):,} documents of the index (`assistant info "
                             "--documents` lists them)")
        return found

    def document(self, doc_id: str) -> DocumentView:
        """A document's text, sections and map; never waits for an answer in progress."""
        found = self.document_map(doc_id)
        with self._reader_lock:
            assert self._reader is not None  # opened by document_map
            sections = self._reader.document_sections(doc_id)
        record = self.index.manifest.documents.get(doc_id)
        return DocumentView(doc_id=doc_id, title=record.title if record else doc_id,
                            text=found.text, sections=sections, map=found)

    def stale_documents(self) -> list[str]:
        """Documents of the corpus this index was built from that changed since (stat only)."""
        return documents_changed(self.index.manifest)

    def close(self) -> None:
        with self._answer_lock, self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self.index.close()


def open_server(settings: Settings) -> OpenIndex:
    """The index on ``settings.server``; its model's export comes from this machine's shared
    cache (made from the local model when this machine has not made it yet)."""
    from assistant.index.postgres import Patience, open_server_index
    from assistant.model_export import ensure_onnx, identify, shared_cache_dir

    assert settings.server is not None
    root = shared_cache_dir()
    index = open_server_index(settings.server, root, Patience(
        timeout_s=settings.server_timeout_s, retry_s=settings.server_retry_s))
    try:
        try:
            check_model(index.layout, index.manifest)
        except IndexCorruptError:  # not made on this machine yet, or damaged: made again
            files = identify(settings.resolved_model_path(), root / "models")
            if files.weights_sha256 != index.manifest.model.weights_sha256:
                raise IndexIncompatibleError(
                    f"the server's index was built with {index.manifest.model.name} "
                    f"({index.manifest.model.weights_sha256[:12]}), this machine has "
                    f"{files.weights_sha256[:12]}; install that model or rebuild the index"
                ) from None
            ensure_onnx(root / "models", files, settings.embed_threads)
            check_model(index.layout, index.manifest)
    except BaseException:
        index.close()
        raise
    return index


@dataclass
class IndexOutcome:
    """What loading or rebuilding ended with: a session to answer from, or the error that
    leaves the caller without one (``also``: a second problem behind the first)."""

    session: Session | None = None
    status: IndexStatus | None = None
    summary: BuildSummary | None = None
    error: AssistantError | None = None
    also: AssistantError | None = None
    warnings: list[str] = field(default_factory=list)


def read_status(settings: Settings) -> tuple[IndexStatus | None, AssistantError | None]:
    """The index's status for the chat; its files checked by their stamps, not hashed (the
    chat opens at once; `assistant info` and `assistant index` hash them)."""
    try:
        return index_status(settings, thorough=False), None
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


def _open(settings: Settings, preload: EmbedderPreload | None = None
          ) -> tuple[Session | None, AssistantError | None]:
    try:
        return Session.open(settings, preload), None
    except AssistantError as exc:
        return None, exc
    except Exception as exc:
        return None, UnexpectedError.wrap(exc)


def _summary_warnings(summary: BuildSummary | None) -> list[str]:
    if summary is None:
        return []
    return ([f"skipped {s.path}: {s.reason}" for s in summary.skipped]
            + list(summary.warnings))


def _reader_of_a_server(settings: Settings, status: IndexStatus | None) -> bool:
    """A server index that exists, opened where its corpus is not: nothing to build from."""
    return (settings.server is not None and status is not None and status.exists
            and not Path(status.corpus_dir).is_dir())


def load(settings: Settings, progress: Progress) -> IndexOutcome:
    """Start-up: bring a missing or stale index up to date, then open it. When the build
    fails but an older index opens, answer from that one and say so."""
    # the model loads on threads while the corpus is checked (ready sooner); only
    # when no build follows, which may replace the model's files and takes far longer
    preload = preload_embedder(settings)
    status, status_error = read_status(settings)
    summary = build_error = None
    if _reader_of_a_server(settings, status):
        pass  # a team member without the corpus answers from the server as it is
    elif status_error is not None or status is None or not status.exists or status.stale:
        if preload is not None:
            preload.wait()
            preload = None
        summary, build_error = _build(settings, progress, full=False)
    session, open_error = _open(settings, preload)
    # No build, and the generation checked is the one opened: its status stands. Checking
    # again would stat the whole corpus a second time (slow on a large corpus).
    status_after: IndexStatus | None = status
    if summary is not None or session is None or status is None \
            or session.index.manifest.generation != status.generation:
        status_after, _ = read_status(settings)
    outcome = IndexOutcome(session=session, status=status_after or status, summary=summary,
                           warnings=_summary_warnings(summary))
    if session is None:
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
    answering from its current session until this returns, and keeps it on failure."""
    summary, build_error = _build(settings, progress, full=full)
    if build_error is not None:
        status, _ = read_status(settings)
        return IndexOutcome(status=status, error=build_error)
    session, open_error = _open(settings)
    status, _ = read_status(settings)
    return IndexOutcome(session=session, status=status, summary=summary, error=open_error,
                        warnings=_summary_warnings(summary))
