"""How the chat reaches the core: a ``ChatBackend`` opens, rebuilds and asks, in worker threads.

``create_app`` takes one (``CoreBackend``, over ``assistant.session``, by default), so Pilot
tests can run the chat on a recorded or fake backend and stop depending on which sentence
the ranking picks. Light on purpose: the app imports it at start, and the heavy modules
(numpy, FAISS, onnxruntime) are imported by ``CoreBackend``'s methods, in the workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from assistant.errors import AssistantError

if TYPE_CHECKING:
    from assistant.build import Progress
    from assistant.models import IndexManifest
    from assistant.qa.conversation import Conversation
    from assistant.session import DocumentView, IndexOutcome, Session
    from assistant.settings import Settings
    from assistant.tui.engine import Reply


class ChatEngine(Protocol):
    """What the chat needs of an open index (``assistant.session.Session``)."""

    @property
    def manifest(self) -> IndexManifest: ...

    @property
    def generation(self) -> int: ...

    def document(self, doc_id: str) -> DocumentView: ...

    def close(self) -> None: ...


class ChatBackend(Protocol):
    def load(self, settings: Settings, progress: Progress) -> IndexOutcome: ...

    def rebuild(self, settings: Settings, progress: Progress, full: bool = False
                ) -> IndexOutcome: ...

    def ask(self, engine: ChatEngine, question: str, conversation: Conversation,
            documents: frozenset[str] | None = None) -> Reply | AssistantError:
        """Answer (``documents``: of those documents only), never raising."""
        ...

    def ask_each(self, engine: ChatEngine, question: str, conversation: Conversation,
                 documents: frozenset[str] | None = None) -> list[Reply] | AssistantError:
        """Each document's best passage that covers the question, never raising."""
        ...


class CoreBackend:
    """The real thing: ``assistant.session`` and ``assistant.tui.engine``."""

    def load(self, settings: Settings, progress: Progress) -> IndexOutcome:
        from assistant import session

        return session.load(settings, progress)

    def rebuild(self, settings: Settings, progress: Progress, full: bool = False
                ) -> IndexOutcome:
        from assistant import session

        return session.rebuild(settings, progress, full=full)

    def ask(self, engine: ChatEngine, question: str, conversation: Conversation,
            documents: frozenset[str] | None = None) -> Reply | AssistantError:
        from assistant.tui.engine import ask

        session = _session(engine)
        if isinstance(session, AssistantError):
            return session
        return ask(session, question, conversation, documents)

    def ask_each(self, engine: ChatEngine, question: str, conversation: Conversation,
                 documents: frozenset[str] | None = None) -> list[Reply] | AssistantError:
        from assistant.tui.engine import ask_each

        session = _session(engine)
        if isinstance(session, AssistantError):
            return session
        return ask_each(session, question, conversation, documents)


def _session(engine: ChatEngine) -> Session | AssistantError:
    """The engine as the ``Session`` this backend's ``load`` opened, or the bug as an error."""
    from assistant.errors import UnexpectedError
    from assistant.session import Session

    if isinstance(engine, Session):
        return engine
    return UnexpectedError.wrap(
        TypeError(f"CoreBackend asks a Session, not {type(engine).__name__}"))
