"""How the chat reaches the core: the narrow seams the controller talks through.

``ChatSession`` is what the chat needs of an open index (``assistant.session.Session``
has it, structurally: no cast, no ``isinstance``); ``ChatBackend`` opens, rebuilds and
scans the corpus for changes. ``ChatController`` takes a backend (``CoreBackend`` by
default), so tests drive the chat on a fake session and the snapshot tests on recorded
answers. Light on purpose: the chat imports it at start, and the heavy modules (numpy,
FAISS, onnxruntime) are imported by ``CoreBackend``'s methods, which run in jobs, off the
UI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from assistant.build import Progress
    from assistant.models import Answer, IndexManifest
    from assistant.qa.conversation import Conversation
    from assistant.session import DocumentView, IndexOutcome
    from assistant.settings import Settings


class Answered(Protocol):
    """An answer and the conversation with its turn added (``assistant.qa.pipeline.Reply``)."""

    @property
    def answer(self) -> Answer: ...

    @property
    def conversation(self) -> Conversation: ...


class ChatSession(Protocol):
    """What the chat needs of an open index: its manifest, answers and documents."""

    @property
    def manifest(self) -> IndexManifest: ...

    @property
    def generation(self) -> int: ...

    def ask(self, question: str, conversation: Conversation | None = None, *,
            documents: frozenset[str] | None = None) -> Answered:
        """Answer (``documents``: of those documents only)."""
        ...

    def ask_each(self, question: str, documents: frozenset[str] | None = None
                 ) -> list[Answer]:
        """Each document's best passage that covers the question, the likeliest first."""
        ...

    def document(self, doc_id: str) -> DocumentView: ...

    def close(self) -> None: ...


Changes = tuple[list[str], tuple[object, ...]]
"""The corpus files changed since the index was built, and how each looks now (name, size,
time): a file still being written keeps changing."""


class ChatBackend(Protocol):
    def load(self, settings: Settings, progress: Progress) -> IndexOutcome:
        """Open the index, building it first when missing or stale."""
        ...

    def rebuild(self, settings: Settings, progress: Progress, full: bool = False
                ) -> IndexOutcome: ...

    def changes(self, settings: Settings, manifest: IndexManifest) -> Changes:
        """What changed in the corpus since ``manifest`` was built (stat only)."""
        ...


class CoreBackend:
    """The real thing: ``assistant.session`` and ``assistant.build``."""

    def load(self, settings: Settings, progress: Progress) -> IndexOutcome:
        from assistant import session

        return session.load(settings, progress)

    def rebuild(self, settings: Settings, progress: Progress, full: bool = False
                ) -> IndexOutcome:
        from assistant import session

        return session.rebuild(settings, progress, full=full)

    def changes(self, settings: Settings, manifest: IndexManifest) -> Changes:
        from assistant.build import documents_changed, resolve_corpus

        corpus: Path = resolve_corpus(settings).corpus_dir
        changed = documents_changed(manifest.model_copy(update={"corpus_dir": str(corpus)}))
        seen: list[object] = []
        for name in changed:  # how each looks now: a file still being written changes
            try:
                st = (corpus / name).stat()
                seen.append((name, st.st_size, st.st_mtime_ns))
            except OSError:
                seen.append((name, None))
        return changed, tuple(seen)
