"""The chat without its screen: questions, the index, conversations, exports, the corpus.

``ChatController`` holds what the chat does and remembers: the queue of questions (one
answered at a time, in the order asked; those asked before the index is open wait), the
index jobs (open, build, rebuild while answering from the current generation, then swap
them), the conversation (saved after every answered turn, renamed, deleted, resumed),
exports, the documents questions are asked of, and the corpus watcher (a change is said;
with ``watch`` on, the index is rebuilt once the changed files stay as they are).

It never imports ``textual``. It talks to its face through events (``assistant.chat.events``)
given to ``emit`` in order, to the index through ``ChatBackend`` and ``ChatSession``
(``assistant.chat.backend``), and runs slow work as ``Job`` values a ``Runner`` starts: the
app in a worker thread, a test when it chooses. Every job's result comes back through
``Job.done`` on the controller's thread; nothing here waits on the index or the model.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from assistant.chat.backend import ChatBackend, ChatSession, CoreBackend
from assistant.chat.events import (
    Answering,
    AnswerReady,
    ChatEvent,
    ConversationCleared,
    ConversationResumed,
    CorpusChanged,
    DocumentReady,
    EachAnswered,
    EachAsked,
    EngineSwapped,
    ErrorCard,
    IndexFinished,
    IndexProgress,
    Notice,
    NoticeCard,
    QuestionAsked,
    QuestionWaiting,
    ScopeChanged,
    Severity,
    Status,
    StatusKind,
)
from assistant.errors import AssistantError
from assistant.qa.conversation import Conversation
from assistant.render import BEST_GUESS, confidence_words, count, scope_text

if TYPE_CHECKING:
    from assistant.chat.answers import ShownAnswer
    from assistant.chat.backend import Changes
    from assistant.chat.conversations import ConversationStore, SavedConversation, SavedTurn
    from assistant.models import Answer
    from assistant.session import DocumentView, IndexOutcome
    from assistant.settings import Settings

T = TypeVar("T")

JobKind = Literal["index", "ask", "each", "watch", "document"]

STAGES = {"scan": "scanning the corpus",
          "export": "exporting the embedding model (once per machine, ~15 s)",
          "embed": "embedding chunks", "vectors": "writing vectors",
          "publish": "publishing the new index",
          "waiting": "another build holds the index; waiting for it"}
"""A build's stages, in the status line's words."""

WAITING_FOR_A_USABLE_INDEX = ("Waiting for a usable index (see the message above; Ctrl+R "
                              "builds it).")


class BuildStopped(BaseException):
    """Raised from a build's progress callback once the chat has quit: the build stops at
    its next report (between embedding batches, each committed), and the next build resumes
    from what was committed. A ``BaseException``, so no layer on the way turns it into an
    error to show: there is no one left to show it to."""


@dataclass(frozen=True, eq=False)
class Job(Generic[T]):
    """Slow work for a runner to do off the controller's thread; its result (or the error
    it raised, as a value) goes to ``done``, on the controller's thread."""

    kind: JobKind
    name: str
    description: str
    work: Callable[[], T]
    done: Callable[[T | AssistantError], None]

    def run(self) -> T | AssistantError:
        """The work's result, never raising an ``Exception``: an error comes back as a
        value (a ``BaseException`` such as ``BuildStopped`` goes on)."""
        try:
            return self.work()
        except AssistantError as exc:
            return exc
        except Exception as exc:
            from assistant.errors import UnexpectedError

            return UnexpectedError.wrap(exc)


class Runner(Protocol):
    """Where jobs run: the app's worker threads, or a test's hands."""

    def start(self, job: Job[Any]) -> None:
        """Run ``job`` off the controller's thread, then ``job.done`` on it."""
        ...

    def deliver(self, callback: Callable[[], None]) -> None:
        """Called from a job's thread: run ``callback`` on the controller's thread."""
        ...


@dataclass
class Pending:
    """A question asked and not yet answered."""

    number: int
    question: str
    conversation_id: str
    """The conversation it was asked in; a reply to one since cleared is dropped."""
    documents: frozenset[str] | None = None
    """The documents it is asked of (None: all of them)."""
    fresh: bool = False
    """Asked without the conversation's context (F5, "Ask again, fresh")."""
    session: ChatSession | None = None
    """The index generation answering it, once started."""


class ChatController:
    """The chat's state and behaviour; a face calls its methods and renders its events."""

    QUIET_SECONDS = 3.0
    """With ``watch`` on: how long changed files must stay as they are before the index is
    rebuilt (a file being saved or copied is not indexed half-written)."""

    def __init__(self, settings: Settings, emit: Callable[[ChatEvent], None], runner: Runner,
                 backend: ChatBackend | None = None, conversations_dir: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.emit = emit
        self.runner = runner
        self.backend: ChatBackend = backend or CoreBackend()
        self.conversations_dir = conversations_dir
        self.clock = clock
        self.quiet_seconds = self.QUIET_SECONDS
        self.session: ChatSession | None = None
        """The index generation answering now (None until one is open)."""
        self.building: Literal["load", "rebuild"] | None = None
        """While an index job runs: which."""
        self.index_error: AssistantError | None = None
        """Why no index is open, when one could not be."""
        self.queue: deque[Pending] = deque()
        self.asking: Pending | None = None
        self.each: str | None = None
        """"What does each document say?" being answered: the conversation it was asked in."""
        self.scope: frozenset[str] | None = None
        """The documents questions are asked of (``o`` or space on the document list, the
        palette's folders); None: every document."""
        self.watching = settings.watch
        """Whether changed files are re-indexed by themselves (the ``watch`` setting; the
        palette toggles it)."""
        self.conversation = Conversation(id=uuid.uuid4().hex[:12])
        self.conversation_name: str | None = None
        """The name given to this conversation (Ctrl+L, F2), if any."""
        self.answers: list[Answer] = []
        self.turns: list[SavedTurn] = []
        """The answered turns of this conversation, as saved."""
        self.started = datetime.now(UTC)
        self.embedded = (0, 0)
        """The running build's chunks done, of about how many (for the farewell on quit)."""
        self._store: ConversationStore | None = None
        self._asked = 0
        self._retired: list[ChatSession] = []
        self._stop_build = threading.Event()
        """Set on quit: the running build stops at its next progress report."""
        self._opening: object | None = None
        """The latest document asked for: an older read that ends later is not shown."""
        self._scanning = False
        self._changes: tuple[str, ...] = ()
        self._changes_seen: tuple[object, ...] = ()
        """The changed files' names, sizes and times as last seen, and since when
        (``_changes_since``): they must stay so a while before a rebuild by itself."""
        self._changes_since = 0.0
        self._rebuilt_for: tuple[object, ...] = ()
        """The changes a rebuild by itself was started for: not retried if it failed."""

    @property
    def store(self) -> ConversationStore:
        """The saved conversations (opened at the first use: its pydantic models need not
        be imported before the first frame)."""
        if self._store is None:
            from assistant.chat.conversations import ConversationStore

            self._store = ConversationStore(self.conversations_dir)
        return self._store

    @property
    def busy(self) -> bool:
        """Anything still to do: loading, building, answering or questions queued."""
        return bool(self.building or self.asking or self.each or (self.queue and self.session))

    def _status(self, text: str, kind: StatusKind = "ready") -> None:
        self.emit(Status(text, kind))

    def _notice(self, text: str, title: str = "",
                severity: Severity = "information",
                timeout: float | None = None) -> None:
        self.emit(Notice(text, title, severity, timeout))

    def scope_note(self) -> str:
        return f" Asking {scope_text(self.scope)}." if self.scope else ""

    # ---- the index ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the index (building it first when missing or stale)."""
        self._start_index_job("load")

    def rebuild(self, full: bool = False) -> None:
        """Bring the index up to date with the corpus (``full``: re-embed everything); the
        current generation answers meanwhile."""
        if self.building is not None:
            self._notice("The index is already being built.", severity="warning")
            return
        self._start_index_job("rebuild", full=full)

    def _start_index_job(self, kind: Literal["load", "rebuild"], full: bool = False) -> None:
        self.building = kind
        if kind == "load":
            self._status("Opening the index…", "busy")
        elif self.session is not None:
            self._status("Rebuilding the index — answering from the current one meanwhile…",
                         "busy")
        else:
            self._status("Building the index…", "busy")
        self.emit(IndexProgress(0, None))
        settings, backend, stop, runner = self.settings, self.backend, self._stop_build, \
            self.runner
        self.embedded = (0, 0)

        def progress(stage: str, done: int, total: int) -> None:  # in the job's thread
            if stop.is_set():
                raise BuildStopped
            runner.deliver(lambda: self._progress(stage, done, total))

        def work() -> IndexOutcome:
            if kind == "load":
                return backend.load(settings, progress)
            return backend.rebuild(settings, progress, full=full)

        self.runner.start(Job("index", kind, f"{kind} the index {settings.index_dir}", work,
                              lambda outcome: self._index_done(kind, outcome)))

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self.building is None:
            return
        panel = "building the index…" if self.session is None else None
        label = STAGES.get(stage, stage)
        verb = "Rebuilding" if self.building == "rebuild" and self.session else "Building"
        if stage == "embed" and total:
            self.embedded = (done, total)
            self._status(f"{verb} the index: {label}, {done:,} of about {total:,}", "busy")
            self.emit(IndexProgress(done, total, panel))
        else:
            self._status(f"{verb} the index: {label}…",
                         "warning" if stage == "waiting" else "busy")
            self.emit(IndexProgress(0, None, panel))

    def _index_done(self, kind: str, outcome: IndexOutcome | AssistantError) -> None:
        self.building = None
        if isinstance(outcome, AssistantError):  # the jobs catch everything; a last resort
            self.emit(ErrorCard(outcome))
            return
        self.emit(IndexFinished(outcome.status))
        if outcome.session is not None:
            self._swap(outcome.session)
            self.index_error = None
            self._changes = ()
            gone = sorted((self.scope or frozenset()) - set(outcome.session.manifest.documents))
            if gone and self.scope is not None:
                kept = self.scope - set(gone)
                self._notice(f"{', '.join(gone)} no longer indexed; asking "
                             f"{scope_text(kept) if kept else 'every document'} now.",
                             severity="warning")
                self.restrict(kept or None)
            summary = outcome.summary
            if summary is not None and not summary.up_to_date:
                self._notice(f"Indexed {count(summary.documents, 'document')} "
                             f"({count(summary.chunk_count, 'chunk')}; "
                             f"{summary.chunks_embedded:,} embedded) in "
                             f"{summary.seconds:.1f} s.", title="Index built")
            elif kind == "rebuild":
                self._notice("The index was already up to date; reopened it.", title="Index")
            if outcome.warnings:
                self.emit(NoticeCard("Index warnings", outcome.warnings, warning=True))
            manifest = outcome.session.manifest
            self.emit(EngineSwapped(manifest))
            self._status(f"Ready — {count(len(manifest.documents), 'document')}, "
                         f"{count(manifest.chunk_count, 'chunk')}. Ask a question."
                         f"{self.scope_note()}", "ready")
        elif outcome.error is not None:
            self.emit(ErrorCard(outcome.error, outcome.also))
            if self.session is not None:
                self._status(f"{outcome.error.title}: the rebuild failed; still answering "
                             "from the current index", "warning")
            else:
                self.index_error = outcome.error
                self._status(f"{outcome.error.title}: no index to answer from — see above",
                             "error")
                if self.queue:
                    self.emit(QuestionWaiting(tuple(p.number for p in self.queue),
                                              WAITING_FOR_A_USABLE_INDEX))
        else:  # cannot happen; be safe
            self._status("The index could not be opened.", "error")
        self._pump()

    def _swap(self, new: ChatSession) -> None:
        old, self.session = self.session, new
        if old is None:
            return
        if self.asking is not None and self.asking.session is old:
            self._retired.append(old)  # closed when its question is answered
        else:
            old.close()

    def quit(self) -> str | None:
        """Quitting: a running build is told to stop at its next committed batch. What to
        say in the terminal then (None: no build was running)."""
        if self.building is None:
            return None
        self._stop_build.set()
        done, total = self.embedded
        if done:
            return (f"Stopped building the index with {done:,} of about {total:,} chunks "
                    "done; the next start (the chat or `assistant index`) resumes from there.")
        return ("Stopped building the index before any chunk was embedded; the previous "
                "index, if any, is unchanged.")

    @property
    def stopping(self) -> bool:
        """Whether a build was told to stop (the chat quit during it)."""
        return self._stop_build.is_set()

    # ---- asking ------------------------------------------------------------------------

    def submit(self, question: str, fresh: bool = False) -> None:
        """Show the question at once; it is answered when the index is ready (``fresh``:
        without the conversation's context)."""
        self._asked += 1
        if self.session is not None:
            note = "Answering…"
        elif self.index_error is not None:
            note = WAITING_FOR_A_USABLE_INDEX
        else:
            note = "Waiting for the index to load; this question will be answered then."
        self.emit(QuestionAsked(self._asked, question, note, fresh))
        self.queue.append(Pending(self._asked, question, self.conversation.id,
                                  documents=self.scope, fresh=fresh))
        self._pump()

    def ask_fresh(self) -> None:
        """Ask the conversation's last question again, as it stands: no context from the
        turns before it (a follow-up that was misunderstood, or a check)."""
        waiting = [*([self.asking] if self.asking else []), *self.queue]
        asked = [a.question for a in self.answers] + [
            p.question for p in waiting if p.conversation_id == self.conversation.id]
        if not asked:
            self._notice("No question yet: ask one first.", severity="warning")
            return
        self.submit(asked[-1], fresh=True)

    def _pump(self) -> None:
        """Start answering the next queued question, if the index is open and free."""
        if self.asking is not None or not self.queue:
            return
        if self.session is None:
            if self.building:
                self._status(f"{len(self.queue)} question(s) waiting for the index…", "busy")
            return
        pending = self.queue.popleft()
        pending.session = session = self.session
        self.asking = pending
        self.emit(Answering(pending.number))
        self._status("Answering…", "busy")
        conversation = self.conversation  # as it stands after the answers before this one
        if pending.fresh:
            conversation = conversation.reset()

        def work() -> ShownAnswer:
            from assistant.chat.answers import shown

            reply = session.ask(pending.question, conversation, documents=pending.documents)
            return shown(session, reply.answer, reply.conversation)

        self.runner.start(Job("ask", f"ask-{pending.number}",
                              f"answer question {pending.number}", work, self._answered))

    def _answered(self, result: ShownAnswer | AssistantError) -> None:
        pending, self.asking = self.asking, None
        for old in [s for s in self._retired if pending is None or s is not pending.session]:
            old.close()
            self._retired.remove(old)
        if pending is not None and pending.session in self._retired:
            pending.session.close()
            self._retired.remove(pending.session)
        if pending is None or pending.conversation_id != self.conversation.id:
            self._pump()  # asked in a conversation since cleared: drop the reply
            return
        if isinstance(result, AssistantError):
            self.emit(AnswerReady(pending.number, result))
            self._status(f"{result.title}: {result.message}", "warning")
            self._pump()
            return
        answer = result.answer
        if pending.fresh:  # the earlier turns stay; follow-ups continue from this one
            self.conversation = replace(result.conversation, turns=(
                *self.conversation.turns, *result.conversation.turns))
        else:
            self.conversation = result.conversation
        self._keep([result])
        only = f" · asked of {scope_text(pending.documents)}" if pending.documents else ""
        if answer.abstained:
            self._status(f"Not covered by the documents · closest passages listed{only}",
                         "warning")
        elif answer.outcome == "best_guess":
            self._status(f"{BEST_GUESS} ({confidence_words(answer)}) · Ctrl+O opens the "
                         f"source{only}", "warning")
        else:
            self._status(f"Answered ({confidence_words(answer)}) · Ctrl+O opens the source"
                         f"{only}", "ready")
        self.emit(AnswerReady(pending.number, result))
        self._pump()

    def _keep(self, shown: list[ShownAnswer]) -> None:
        """Answered turns: kept for export and saved."""
        from assistant.chat.conversations import SavedTurn

        for s in shown:
            self.answers.append(s.answer)
            self.turns.append(SavedTurn(answer=s.answer, passage=s.passage, places=s.places))
        self.save()

    @property
    def last_question(self) -> str:
        """The last question answered in this conversation ("" before any)."""
        return self.answers[-1].question if self.answers else ""

    def ask_each(self, question: str) -> bool:
        """What does each document say: the best passage of each document that covers
        ``question``, the likeliest first. No turn of the conversation: follow-ups do not
        lean on it. Whether it was asked (else a notice says why)."""
        session = self.session
        if not question or session is None or self.each is not None:
            self._notice("Type a question first." if not question else
                         "The index is not open yet." if session is None else
                         "Each document is already being asked.", severity="warning")
            return False
        self.emit(EachAsked(question))
        self._status("Asking each document…", "busy")
        self.each = self.conversation.id
        scope, conversation = self.scope, self.conversation

        def work() -> list[ShownAnswer]:
            from assistant.chat.answers import shown

            return [shown(session, a, conversation)
                    for a in session.ask_each(question, scope)]

        self.runner.start(Job("each", "each", "ask each document", work, self._each_done))
        return True

    def _each_done(self, result: list[ShownAnswer] | AssistantError) -> None:
        if self.each is None:
            return
        conversation_id, self.each = self.each, None
        if conversation_id != self.conversation.id:
            return  # the conversation was left meanwhile
        if isinstance(result, AssistantError):
            self._status(f"{result.title}: {result.message}", "warning")
        elif not result:
            self._status("Not covered by any document", "warning")
        else:
            self._keep(result)
            covers = "covers" if len(result) == 1 else "cover"
            self._status(f"{count(len(result), 'document')} {covers} this, the likeliest "
                         "first", "ready")
        self.emit(EachAnswered(result))

    # ---- the documents asked -----------------------------------------------------------

    def restrict(self, scope: frozenset[str] | None) -> None:
        """Ask ``scope`` from now on (None: every document)."""
        self.scope = scope
        self.emit(ScopeChanged(scope))
        if scope:
            self._status(f"Asking {scope_text(scope)} (o on one: it alone, again: every "
                         "document; space: mark or unmark)", "ready")
        else:
            self._status("Asking every document again.", "ready")

    def choose(self, docs: frozenset[str], mark: bool) -> None:
        """``o`` on documents: those alone, or (asked for those already alone) every
        document again; ``mark`` (space): add them to the documents asked, or take them out
        when all of them are asked."""
        if not docs:
            return
        scope = self.scope or frozenset()
        if mark:
            self.restrict((scope - docs if docs <= scope else scope | docs) or None)
        else:
            self.restrict(None if self.scope == docs else docs)

    # ---- conversations -----------------------------------------------------------------

    def new_conversation(self) -> None:
        """A fresh conversation; the one left is already saved."""
        self.conversation = Conversation(id=uuid.uuid4().hex[:12])
        self.conversation_name = None
        self.answers = []
        self.turns = []
        self.started = datetime.now(UTC)
        self.queue.clear()
        self.emit(ConversationCleared())
        if self.session is not None:
            self._status(f"New conversation. Ask a question.{self.scope_note()}", "ready")

    def save(self) -> None:
        """Save the conversation (from its first answer on); a failure is a notice."""
        from assistant.chat.conversations import SavedConversation

        if not self.turns:
            return
        saved = SavedConversation(id=self.conversation.id, created=self.started,
                                  updated=datetime.now(UTC), turns=self.turns,
                                  context=self.conversation, name=self.conversation_name)
        if not self.store.save(saved) and self.store.problem:
            self._notice(self.store.problem, title="Conversation not saved",
                         severity="warning")
            self.store.problem = None

    @property
    def title(self) -> str | None:
        """The conversation's name, else its first question (None before any answer)."""
        if not self.turns:
            return None
        return self.conversation_name or self.turns[0].answer.question

    def rename(self, name: str | None) -> None:
        """Name the open conversation (None, or its current title: unchanged)."""
        if name is None or name == self.title or not self.turns:
            return
        self.conversation_name = name
        self.save()
        self._notice(f"Named this conversation “{name}”.", title="Renamed")

    def delete(self) -> None:
        """Delete the open conversation's saved file; a new conversation starts."""
        title = " ".join((self.title or "").split())
        if not self.store.delete(self.conversation.id):
            self._notice(self.store.problem or "cannot delete it", title="Not deleted",
                         severity="error")
            self.store.problem = None
            return
        self.new_conversation()
        self._notice(f"Deleted “{title}”.", title="Deleted")

    def saved_conversations(self) -> list[SavedConversation]:
        """Every saved conversation, the latest first (a damaged file set aside is said)."""
        saved = self.store.list()
        if self.store.problem:
            self._notice(self.store.problem, title="Saved conversations", severity="warning")
            self.store.problem = None
        return saved

    def changed_elsewhere(self, renamed: dict[str, SavedConversation],
                          deleted: set[str]) -> None:
        """Conversations renamed or deleted in the saved list: the open one follows."""
        if self.conversation.id in renamed:
            # an answer may have been saved while the list was open: say it again
            self.conversation_name = renamed[self.conversation.id].name
            self.save()
        if self.conversation.id in deleted:
            self.store.delete(self.conversation.id)
            self.new_conversation()  # not saved again by a follow-up

    def resume(self, saved: SavedConversation) -> None:
        """Show a saved conversation's cards again; follow-ups continue in its context."""
        if saved.id == self.conversation.id:
            return
        self.conversation = saved.context
        if self.conversation.id != saved.id:  # the file's name is the conversation
            self.conversation = Conversation(id=saved.id, turns=saved.context.turns)
        self.conversation_name = saved.name
        self.turns = list(saved.turns)
        self.answers = [t.answer for t in saved.turns]
        self.started = saved.created
        self.queue.clear()
        self.emit(ConversationResumed(saved))
        self._status(f"Resumed “{saved.title}” ({count(len(saved.turns), 'question')}); "
                     "follow-ups continue it.", "ready")

    # ---- exports -----------------------------------------------------------------------

    def _nothing_to_export(self) -> bool:
        if self.answers:
            return False
        self._notice("Nothing to export yet: ask a question first.", severity="warning")
        return True

    def export(self) -> None:
        """The conversation as Markdown, to a new file in the export folder."""
        from assistant.chat.export import export_conversation, export_dir

        if self._nothing_to_export():
            return
        try:
            path = export_conversation(self.answers, export_dir())
        except OSError as exc:
            self._notice(f"Cannot write the export: {exc.strerror or exc}", title="Export",
                         severity="error")
            return
        self._notice(f"Saved the conversation to {path}", title="Exported")

    def export_path(self) -> Path | None:
        """Where "Export as" proposes to write (None, with a notice: nothing to export)."""
        from assistant.chat.export import export_dir

        if self._nothing_to_export():
            return None
        return export_dir() / f"conversation-{datetime.now():%Y%m%d-%H%M%S}.md"

    def export_to(self, path: Path) -> None:
        """The conversation to ``path`` (.json: JSON, else Markdown)."""
        from assistant.chat.export import export_to

        target = path.expanduser()
        try:
            export_to(self.answers, target)
        except OSError as exc:
            self._notice(f"Cannot write {target}: {exc.strerror or exc}", title="Export",
                         severity="error")
            return
        self._notice(f"Saved the conversation to {target}", title="Exported")

    # ---- documents ---------------------------------------------------------------------

    def open_document(self, doc_id: str, start: int | None = None, end: int | None = None,
                      outside: bool = False) -> None:
        """Read a document in a job (it reads the index, which the UI never waits on),
        then ``DocumentReady`` (``outside``: to open in $EDITOR too)."""
        session = self.session
        if session is None:
            self._notice("The index is not open yet.", severity="warning")
            return
        source = Path(session.manifest.corpus_dir) / doc_id
        request = self._opening = object()

        def done(view: DocumentView | AssistantError) -> None:
            if request is not self._opening:
                return  # another document was asked for since
            self._opening = None
            if isinstance(view, AssistantError):
                self._notice(view.message, title=view.title, severity="error")
            elif view.doc_id == doc_id:
                self.emit(DocumentReady(view, source, start, end, outside))

        self.runner.start(Job("document", "document", f"read {doc_id}",
                              lambda: session.document(doc_id), done))

    # ---- watching the corpus -----------------------------------------------------------

    def watch_tick(self) -> None:
        """Every few seconds: look for changes in the corpus, in a job."""
        session = self.session
        if session is None or self.building is not None or self._scanning:
            return
        self._scanning = True
        settings, manifest, generation = self.settings, session.manifest, session.generation

        def done(scan: Changes | AssistantError) -> None:
            self._scanning = False
            if not isinstance(scan, AssistantError):  # a failed scan is retried, silently
                self._corpus_scanned(scan, generation)

        self.runner.start(Job("watch", "watch", "look for changes in the corpus",
                              lambda: self.backend.changes(settings, manifest), done))

    def _corpus_scanned(self, scan: Changes, generation: int) -> None:
        changed, seen = scan
        if self.session is None or self.building is not None or \
                self.session.generation != generation:
            return  # rebuilt (or rebuilding) since the scan began: it is out of date
        now = self.clock()
        if seen != self._changes_seen:
            self._changes_seen, self._changes_since = seen, now
        names = ", ".join(changed[:3]) + (f" (+{len(changed) - 3} more)"
                                          if len(changed) > 3 else "")
        if changed and self.watching and seen != self._rebuilt_for and \
                now - self._changes_since >= self.quiet_seconds:
            self._rebuilt_for = seen
            self._notice(f"Re-indexing {names}; answers come from the index as it was until "
                         "it is done.", title="Keeping the index current")
            self._start_index_job("rebuild")
            return
        if tuple(changed) == self._changes:
            return
        self._changes = tuple(changed)
        self.emit(CorpusChanged(changed))
        if changed and not self.watching:
            self._notice(f"{names} changed since the index was built. Press Ctrl+R to "
                         "rebuild it (or turn on \"Keep the index current\" in Ctrl+P); "
                         "until then answers come from the index as it was.",
                         title="The corpus changed", timeout=10)

    def toggle_watch(self) -> None:
        """Re-index changed files by themselves, or not, for this session."""
        self.watching = not self.watching
        self._rebuilt_for = ()
        self._notice("Changed files are now re-indexed by themselves, a few seconds after "
                     "they stop changing." if self.watching else
                     "Changed files are no longer re-indexed by themselves (Ctrl+R does it).",
                     title="Keep the index current")
