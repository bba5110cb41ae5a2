"""The chat app: ask, read the quote inside its passage, open the source, follow up, rebuild.

The app paints its first frame before anything heavy is imported: the index is checked,
built if missing or stale, and opened in a thread worker (group ``index``), and every
question is answered in another (group ``ask``), one at a time, in the order asked.
Questions typed while the index loads wait in a queue. A rebuild builds and opens the
new generation in a worker while the chat keeps answering from the old one, then swaps
them. Every ``AssistantError`` becomes a card in the conversation that says what to do.

Every answered turn is saved (``chat/conversations.py``) and Ctrl+L resumes a saved
conversation; Ctrl+F searches the conversation's cards. While the chat is open the corpus
is stat-ed every ``CORPUS_WATCH_SECONDS`` in a worker (group ``watch``): a change marks the
side panel stale and names the key that rebuilds; with ``watch`` on (the setting, or the
palette's toggle) the index is rebuilt by itself once the changed files have not changed
for ``WATCH_QUIET_SECONDS``. ``o`` on a document in the side panel asks it alone, Space
marks several (on a folder's row: all of it). Copies also go to a clipboard tool, or a
file, for terminals without OSC 52 (``tui/clipboard.py``).

    BriefingApp
    ├── Header
    ├── #main
    │   ├── SidePanel          index status, documents (Enter opens one)
    │   └── #chat
    │       ├── ConversationView   QuestionCard, AnswerCard (PassageView, CitationLine…),
    │       │                      MessageCard (errors, notices)
    │       ├── ConversationSearch Ctrl+F: find in the cards, "k of n"
    │       ├── StatusLine         what is happening, build progress
    │       └── QuestionInput      history on ↑/↓
    └── Footer
    DocumentScreen (a source, its quote highlighted), HelpScreen, the prompts and
    ConversationsScreen (the saved ones) are pushed over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, OptionList
from textual.worker import Worker, WorkerState

from assistant.chat.history import InputHistory, default_history_path
from assistant.errors import AssistantError
from assistant.qa.conversation import Conversation
from assistant.render import BEST_GUESS, confidence_words, count, scope_text
from assistant.settings import Settings
from assistant.tui.backend import CoreBackend
from assistant.tui.messages import BuildProgress, RestrictionRequested, SourceRequested
from assistant.tui.passage import answer_clip, citation_clip, markup_literal
from assistant.tui.preferences import Preferences
from assistant.tui.screens.document import DocumentScreen
from assistant.tui.screens.help import HelpScreen
from assistant.tui.widgets.conversation import (
    AnswerCard,
    CitationLine,
    ConversationView,
    MessageCard,
    PendingCard,
    QuestionCard,
)
from assistant.tui.widgets.conversation_search import ConversationSearch, card_matches
from assistant.tui.widgets.question_input import QuestionInput
from assistant.tui.widgets.side_panel import SidePanel, folders_of
from assistant.tui.widgets.status_line import STAGES, StatusLine

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from assistant.chat.conversations import ConversationStore, SavedConversation, SavedTurn
    from assistant.models import Answer
    from assistant.session import IndexOutcome
    from assistant.tui.backend import ChatBackend, ChatEngine
    from assistant.tui.clipboard import Which
    from assistant.tui.engine import Reply

T = TypeVar("T")

NARROW_BELOW = 100
"""Columns under which the chat is laid out for a small terminal."""

CHAT_ACTIONS = frozenset({"new_conversation", "open_source", "copy_answer", "export",
                          "export_as", "conversations", "search_conversation",
                          "rebuild", "toggle_panel", "scroll_chat", "toggle_why",
                          "ask_fresh"})
"""Actions of the chat screen, disabled while a document or the help is shown."""


class BuildStopped(BaseException):
    """Raised from a build's progress callback once the chat has quit: the build stops at
    its next report (between embedding batches, each committed), and the next build resumes
    from what was committed. A ``BaseException``, so no layer on the way turns it into an
    error to show: there is no one left to show it to."""


@dataclass
class Pending:
    """A question asked and not yet answered, with the cards that show it."""

    number: int
    question: str
    conversation_id: str
    """The conversation it was asked in; a reply to one since cleared is dropped."""
    question_card: QuestionCard
    card: PendingCard
    engine: ChatEngine | None = None
    documents: frozenset[str] | None = None
    """The documents it is asked of (None: all of them)."""
    fresh: bool = False
    """Asked without the conversation's context (F5, "Ask again, fresh")."""


class BriefingApp(App[None]):
    """The terminal chat over one index; build it with ``create_app``."""

    TITLE = "Briefing assistant"
    CORPUS_WATCH_SECONDS = 2.0
    WATCH_QUIET_SECONDS = 3.0
    """With ``watch`` on: how long changed files must stay as they are before the index is
    rebuilt (a file being saved or copied is not indexed half-written)."""
    """How often the corpus is stat-ed for changes while the chat is open."""
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide")]  # noqa: RUF012
    """Below NARROW_BELOW columns the side panel steps aside (Ctrl+B still shows it, narrower):
    at 80 columns it would take two fifths of the width the answers need."""
    CSS = """
    SidePanel.-hidden { display: none; }
    Screen.-narrow SidePanel { display: none; }
    Screen.-narrow SidePanel.-peek { display: block; width: 26; }
    #main { height: 1fr; }
    #chat { width: 1fr; height: 1fr; }
    QuestionInput { margin-bottom: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+n", "new_conversation", "New chat", priority=True),
        Binding("ctrl+o", "open_source", "Source", tooltip="Open the latest answer's source",
                priority=True),
        Binding("ctrl+y", "copy_answer", "Copy", tooltip="Copy the latest answer",
                priority=True),
        Binding("ctrl+s", "export", "Export", tooltip="Export the conversation to Markdown",
                priority=True),
        Binding("ctrl+e", "export_as", "Export as", tooltip="Export the conversation to a "
                "path of your choice (.md or .json)", priority=True),
        Binding("ctrl+r", "rebuild", "Rebuild", tooltip="Rebuild the index", priority=True),
        Binding("ctrl+b", "toggle_panel", "Panel", priority=True),
        Binding("ctrl+f", "search_conversation", "Search", show=False,
                tooltip="Search the conversation"),
        Binding("ctrl+l", "conversations", "Conversations", show=False,
                tooltip="List the saved conversations and resume one"),
        Binding("f2", "toggle_why", "Why", tooltip="Show the scores and offsets behind "
                "each source"),
        Binding("f5", "ask_fresh", "Ask fresh", show=False,
                tooltip="Ask the last question again, without the conversation's context"),
        Binding("ctrl+t", "change_theme", "Theme", show=False),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, settings: Settings, history: InputHistory,
                 preferences_file: Path | None = None,
                 conversations_dir: Path | None = None,
                 backend: ChatBackend | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.backend: ChatBackend = backend or CoreBackend()
        self.history = history
        self.conversations_dir = conversations_dir
        self._store: ConversationStore | None = None
        self.turns: list[SavedTurn] = []
        """The answered turns of this conversation, as saved."""
        self.started = datetime.now(UTC)
        self.scope: frozenset[str] | None = None
        """The documents questions are asked of (``o`` or space on the document list, the
        palette's folders); None: every document."""
        self.which: Which = shutil.which
        """How clipboard tools are looked up (a seam for the tests)."""
        self._corpus_changes: tuple[str, ...] = ()
        self._changes_seen: tuple[object, ...] = ()
        """The changed files' names, sizes and times as last seen, and since when
        (``_changes_since``): they must stay so a while before a rebuild by itself."""
        self._changes_since = 0.0
        self._rebuilt_for: tuple[object, ...] = ()
        """The changes a rebuild by itself was started for: not retried if it failed."""
        self.watching = settings.watch
        """Whether changed files are re-indexed by themselves (the ``watch`` setting; the
        palette toggles it)."""
        self._watched_gen: int | None = None
        """The index generation the running corpus scan compares with."""
        self._search_hits: list[Widget] = []
        self._search_at = -1
        self.preferences_file = preferences_file
        self.preferences = (Preferences.load(preferences_file) if preferences_file
                            else Preferences())
        self.engine: ChatEngine | None = None
        self.conversation = Conversation(id=uuid.uuid4().hex[:12])
        self.conversation_name: str | None = None
        """The name given to this conversation (Ctrl+L, F2), if any."""
        self.answers: list[Answer] = []
        self.queue: deque[Pending] = deque()
        self.asking: Pending | None = None
        self.building: str | None = None
        """"load" or "rebuild" while an index worker runs."""
        self.index_error: AssistantError | None = None
        self._retired: list[ChatEngine] = []
        self._asked = 0
        self._stop_build = threading.Event()
        """Set on quit: the running build stops at its next progress report."""
        self._index_thread: threading.Thread | None = None
        self._embedded = (0, 0)
        """The running build's chunks done, of about how many (for the farewell on quit)."""
        self._each: tuple[QuestionCard, PendingCard, str] | None = None
        """"What does each document say?" being answered: its cards and conversation."""
        self._opening: tuple[SourceRequested, Path, bool] | None = None
        """The document being read for showing: the request, its file, and whether to
        open it in $EDITOR then."""

    # ---- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield SidePanel(id="side")
            with Vertical(id="chat"):
                yield ConversationView(id="conversation")
                yield ConversationSearch(id="search")
                yield StatusLine()
                yield QuestionInput(self.history, id="question",
                                    placeholder="Ask a question about the documents…  "
                                                "(↑↓ history · F1 keys)")
        yield Footer()

    def on_mount(self) -> None:
        if self.preferences.theme in self.available_themes:
            self.theme = self.preferences.theme
        self.query_one(SidePanel).set_class(not self.preferences.side_panel, "-hidden")
        self.theme_changed_signal.subscribe(self, lambda _: self._remember())
        self.query_one(QuestionInput).focus()
        if self.history.problem:
            self.notify(self.history.problem, title="History", severity="warning",
                        markup=False)
        self._start_index_job("load")
        self.set_interval(self.CORPUS_WATCH_SECONDS, self._watch_corpus, name="corpus watch")

    def _remember(self) -> None:
        self.preferences.theme = self.theme
        self.preferences.side_panel = not self.query_one(SidePanel).has_class("-hidden")
        if self.preferences_file is not None:
            self.preferences.save(self.preferences_file)

    @property
    def store(self) -> ConversationStore:
        """The saved conversations (opened at the first answer: its pydantic models cost
        ~20 ms of import the first frame need not wait for)."""
        if self._store is None:
            from assistant.chat.conversations import ConversationStore

            self._store = ConversationStore(self.conversations_dir)
        return self._store

    @property
    def conversation_view(self) -> ConversationView:
        return self.query_one(ConversationView)

    @property
    def status_line(self) -> StatusLine:
        return self.query_one(StatusLine)

    @property
    def busy(self) -> bool:
        """Anything still to do: loading, building, answering or questions queued."""
        return bool(self.building or self.asking or self._each or (self.queue and self.engine))

    # ---- the index ---------------------------------------------------------------------

    def _start_index_job(self, kind: str, full: bool = False) -> None:
        self.building = kind
        status = self.status_line
        if kind == "load":
            status.say(Text("Opening the index…"), "busy")
        elif self.engine is not None:
            status.say("Rebuilding the index — answering from the current one meanwhile…",
                       "busy")
        else:
            status.say("Building the index…", "busy")
        status.progress(0, None)
        settings = self.settings
        stop = self._stop_build
        self._embedded = (0, 0)

        def progress(stage: str, done: int, total: int) -> None:
            if stop.is_set():
                raise BuildStopped
            self.post_message(BuildProgress(stage, done, total))

        backend = self.backend

        def job() -> IndexOutcome:  # numpy, FAISS, onnxruntime: ~0.5 s to import, off the UI
            if kind == "load":
                return backend.load(settings, progress)
            return backend.rebuild(settings, progress, full=full)

        self.run_worker(self._in_daemon_thread(job, f"index-{kind}"), name=kind,
                        group="index", exclusive=True,
                        description=f"{kind} the index {settings.index_dir}",
                        exit_on_error=False)

    async def _in_daemon_thread(self, job: Callable[[], T], name: str) -> T:
        """``job``'s result, worked out in a daemon thread. A thread worker's thread would
        keep the process alive after Ctrl+Q until the build ends (the interpreter joins
        it), and not every step of a build can stop early: the model's export checks no
        flag. A daemon thread ends with the process (``run_app`` gives it a moment to stop
        cleanly at a committed batch first); a killed build resumes as after ``kill -9``."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def settle(set_outcome: Callable[[Any], None], value: Any) -> None:
            if not done.done():  # else the worker was cancelled, or replaced by another
                set_outcome(value)

        def target() -> None:
            try:
                outcome: tuple[Callable[[Any], None], Any] = (done.set_result, job())
            except BaseException as exc:  # passed on to the awaiting worker
                outcome = (done.set_exception, exc)
            with contextlib.suppress(RuntimeError):  # the loop is closed: the chat quit
                loop.call_soon_threadsafe(settle, *outcome)

        thread = threading.Thread(target=target, name=name, daemon=True)
        self._index_thread = thread
        thread.start()
        return await done

    async def action_quit(self) -> None:
        """Quit at once. A build in progress is told to stop (at its next committed batch);
        what it did is kept, the next start resumes it, and the terminal says so."""
        thread = self._index_thread
        if self.building is None or thread is None or not thread.is_alive():
            self.exit()
            return
        self._stop_build.set()
        done, total = self._embedded
        if done:
            farewell = (f"Stopped building the index with {done:,} of about {total:,} chunks "
                        "done; the next start (the chat or `assistant index`) resumes from "
                        "there.")
        else:
            farewell = ("Stopped building the index before any chunk was embedded; the "
                        "previous index, if any, is unchanged.")
        self.exit(message=Text(farewell))

    def wait_for_stopped_build(self, timeout: float) -> bool:
        """After quitting: give a stopped build up to ``timeout`` seconds to end at a
        committed batch; whether it has ended."""
        thread = self._index_thread
        if thread is None or not self._stop_build.is_set():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def on_build_progress(self, message: BuildProgress) -> None:
        if self.building is None:
            return
        if self.engine is None:
            self.query_one(SidePanel).show_status(None, "building the index…")
        label = STAGES.get(message.stage, message.stage)
        status = self.status_line
        verb = "Rebuilding" if self.building == "rebuild" and self.engine else "Building"
        if message.stage == "embed" and message.total:
            self._embedded = (message.done, message.total)
            status.say(f"{verb} the index: {label}, {message.done:,} of about "
                       f"{message.total:,}", "busy")
            status.progress(message.done, message.total)
        else:
            status.say(f"{verb} the index: {label}…",
                       "warning" if message.stage == "waiting" else "busy")
            status.progress(0, None)

    async def _finish_index_job(self, kind: str, outcome: IndexOutcome) -> None:
        self.building = None
        status = self.status_line
        status.hide_progress()
        side = self.query_one(SidePanel)
        side.show_status(outcome.status)
        view = self.conversation_view
        if outcome.session is not None:
            self._swap_engine(outcome.session)
            self.index_error = None
            self._corpus_changes = ()
            gone = sorted((self.scope or frozenset()) - set(outcome.session.manifest.documents))
            if gone and self.scope is not None:
                kept = self.scope - set(gone)
                self.notify(f"{', '.join(gone)} no longer indexed; asking "
                            f"{scope_text(kept) if kept else 'every document'} now.",
                            severity="warning", markup=False)
                self._restrict(kept or None)
            summary = outcome.summary
            if summary is not None and not summary.up_to_date:
                self.notify(f"Indexed {count(summary.documents, 'document')} "
                            f"({count(summary.chunk_count, 'chunk')}; "
                            f"{summary.chunks_embedded:,} embedded) in "
                            f"{summary.seconds:.1f} s.", title="Index built", markup=False)
            elif kind == "rebuild":
                self.notify("The index was already up to date; reopened it.",
                            title="Index", markup=False)
            if outcome.warnings:
                await self._add_card(MessageCard.notice("Index warnings", outcome.warnings,
                                                        warning=True))
            manifest = outcome.session.manifest
            docs = len(manifest.documents)
            self.sub_title = count(docs, "document")
            status.say(f"Ready — {count(docs, 'document')}, "
                       f"{count(manifest.chunk_count, 'chunk')}. Ask a question."
                       f"{self._only_note()}", "ready")
        elif outcome.error is not None:
            await self._add_card(MessageCard.error(outcome.error, str(self.settings.corpus_dir),
                                                   also=outcome.also))
            if self.engine is not None:
                status.say(f"{outcome.error.title}: the rebuild failed; still answering from "
                           "the current index", "warning")
            else:
                self.index_error = outcome.error
                status.say(f"{outcome.error.title}: no index to answer from — see above",
                           "error")
                for p in self.queue:
                    p.card.update("Waiting for a usable index (see the message above; "
                                  "Ctrl+R builds it).")
        if outcome.session is None and outcome.error is None:  # cannot happen; be safe
            status.say("The index could not be opened.", "error")
        view.scroll_end(animate=False)
        self._pump()

    def _swap_engine(self, new: ChatEngine) -> None:
        old, self.engine = self.engine, new
        if old is None:
            return
        if self.asking is not None and self.asking.engine is old:
            self._retired.append(old)  # closed when its question is answered
        else:
            old.close()

    # ---- asking ------------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    async def ask_question(self, event: Input.Submitted) -> None:
        from assistant.text import without_terminal_codes

        # what is shown, kept in the history and the conversation: never raw escapes
        question = " ".join(without_terminal_codes(event.value).split())
        if not question:
            event.input.value = ""
            return
        event.input.value = ""
        self.history.add(question)
        await self.submit(question)

    async def submit(self, question: str, fresh: bool = False) -> None:
        """Show the question at once; it is answered when the index is ready (``fresh``:
        without the conversation's context)."""
        self._asked += 1
        qcard = QuestionCard(question)
        if fresh:
            qcard.asked("asked again, fresh: without the conversation's context")
        if self.engine is not None:
            note = "Answering…"
        elif self.index_error is not None:
            note = "Waiting for a usable index (see the message above; Ctrl+R builds it)."
        else:
            note = "Waiting for the index to load; this question will be answered then."
        card = PendingCard(note, markup=False)
        view = self.conversation_view
        for welcome in view.query("#welcome"):
            await welcome.remove()
        await view.mount_all([qcard, card])
        view.scroll_end(animate=False)
        self.queue.append(Pending(self._asked, question, self.conversation.id, qcard, card,
                                  documents=self.scope, fresh=fresh))
        self._pump()

    def _pump(self) -> None:
        """Start answering the next queued question, if the engine is free."""
        if self.asking is not None or not self.queue:
            return
        if self.engine is None:
            if self.building:
                self.status_line.say(f"{len(self.queue)} question(s) waiting for the index…",
                                     "busy")
            return
        pending = self.queue.popleft()
        pending.engine = engine = self.engine
        self.asking = pending
        pending.card.update("Answering…")
        self.status_line.say("Answering…", "busy")

        conversation = self.conversation  # as it stands after the answers before this one
        if pending.fresh:
            conversation = conversation.reset()
        backend = self.backend

        def job() -> Reply | AssistantError:
            return backend.ask(engine, pending.question, conversation, pending.documents)

        self.run_worker(job, name=f"ask-{pending.number}", group="ask", thread=True,
                        description=f"answer question {pending.number}", exit_on_error=False)

    async def _finish_ask(self, result: Reply | AssistantError) -> None:
        pending, self.asking = self.asking, None
        for old in [e for e in self._retired if pending is None or e is not pending.engine]:
            old.close()
            self._retired.remove(old)
        if pending is not None and pending.engine in self._retired:
            pending.engine.close()
            self._retired.remove(pending.engine)
        if pending is None or pending.conversation_id != self.conversation.id:
            self._pump()  # asked in a conversation since cleared: drop the reply
            return
        view = self.conversation_view
        card: AnswerCard | MessageCard
        if isinstance(result, AssistantError):
            card = MessageCard.error(result, str(self.settings.corpus_dir))
            self.status_line.say(f"{result.title}: {result.message}", "warning")
        else:
            answer = result.answer
            if pending.fresh:  # the earlier turns stay; follow-ups continue from this one
                self.conversation = replace(result.conversation, turns=(
                    *self.conversation.turns, *result.conversation.turns))
            else:
                self.conversation = result.conversation
            if answer.resolved_question:
                pending.question_card.understood_as(answer.resolved_question)
            card = AnswerCard(answer, result.passage, result.places)
            from assistant.chat.conversations import SavedTurn

            self.answers.append(answer)
            self.turns.append(SavedTurn(answer=answer, passage=result.passage,
                                        places=result.places))
            self._save_conversation()
            only = ""
            if pending.documents is not None:
                only = f" · asked of {scope_text(pending.documents)}"
            if answer.abstained:
                self.status_line.say(f"Not covered by the documents · closest passages "
                                     f"listed{only}", "warning")
            elif answer.outcome == "best_guess":
                self.status_line.say(f"{BEST_GUESS} ({confidence_words(answer)}) · Ctrl+O "
                                     f"opens the source{only}", "warning")
            else:
                self.status_line.say(f"Answered ({confidence_words(answer)}) · Ctrl+O opens "
                                     f"the source{only}", "ready")
        await view.mount(card, after=pending.card)
        await pending.card.remove()
        self.call_after_refresh(view.show_answer, pending.question_card, card)
        self._pump()

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker: Worker[Any] = event.worker
        if worker.group == "document":
            if event.state == WorkerState.SUCCESS:
                self._show_document(worker.result)
            return
        if worker.group == "watch":  # a failed scan is retried at the next tick, silently
            if event.state == WorkerState.SUCCESS and self.engine is not None:
                self._corpus_changed(cast("tuple[list[str], tuple[object, ...]]",
                                          worker.result), self._watched_gen)
            return
        if event.state == WorkerState.ERROR:  # the jobs catch everything; a last resort
            from assistant.errors import UnexpectedError

            error = UnexpectedError.wrap(worker.error or RuntimeError("worker failed"))
            if worker.group == "ask":
                await self._finish_ask(error)
            elif worker.group == "each":
                await self._finish_each(error)
            elif worker.group == "index":
                self.building = None
                await self._add_card(MessageCard.error(error, str(self.settings.corpus_dir)))
            return
        if event.state != WorkerState.SUCCESS:
            return
        if worker.group == "ask":
            await self._finish_ask(cast("Reply | AssistantError", worker.result))
        elif worker.group == "each":
            await self._finish_each(cast("list[Reply] | AssistantError", worker.result))
        elif worker.group == "index":
            await self._finish_index_job(worker.name, cast("IndexOutcome", worker.result))

    async def _add_card(self, card: MessageCard) -> None:
        view = self.conversation_view
        await view.mount(card)
        view.scroll_end(animate=False)

    # ---- sources -----------------------------------------------------------------------

    def on_source_requested(self, message: SourceRequested) -> None:
        self._open_document(message)

    def _open_document(self, request: SourceRequested, outside: bool = False) -> None:
        """Read the document in a worker (group ``document``; it reads the index, which
        the UI thread never waits on), then show it (``outside``: and open it in
        $EDITOR)."""
        engine = self.engine
        if engine is None:
            self.notify("The index is not open yet.", severity="warning", markup=False)
            return

        def job() -> object:  # a DocumentView, or the AssistantError to show
            try:
                return engine.document(request.doc_id)
            except AssistantError as exc:
                return exc
            except Exception as exc:
                from assistant.errors import UnexpectedError

                return UnexpectedError.wrap(exc)

        self._opening = (request, Path(engine.manifest.corpus_dir) / request.doc_id, outside)
        self.run_worker(job, name="document", group="document", thread=True, exclusive=True,
                        exit_on_error=False, description=f"read {request.doc_id}")

    def _show_document(self, view: Any) -> None:
        if self._opening is None:
            return
        request, source, outside = self._opening
        self._opening = None
        if isinstance(view, AssistantError):
            self.notify(view.message, title=view.title, severity="error", markup=False)
            return
        if self.screen is not self.screen_stack[0] or view.doc_id != request.doc_id:
            return  # another screen was opened meanwhile
        screen = DocumentScreen(view, request.start, request.end, source=source)
        self.push_screen(screen, lambda _: self.action_focus_question())
        if outside:
            self.call_after_refresh(screen.action_open_outside)

    # ---- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in CHAT_ACTIONS and self.screen is not self.screen_stack[0])

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_new_conversation(self) -> None:
        """A fresh conversation; the one left is already saved (Ctrl+L resumes it)."""
        self.conversation = Conversation(id=uuid.uuid4().hex[:12])
        self.conversation_name = None
        self.answers = []
        self.turns = []
        self.started = datetime.now(UTC)
        self.queue.clear()
        self._close_search()
        await self.conversation_view.reset()
        self.query_one(QuestionInput).focus()
        if self.engine is not None:
            self.status_line.say(f"New conversation. Ask a question.{self._only_note()}",
                                 "ready")

    async def action_ask_each(self) -> None:
        """What does each document say: for the question typed (else the last one asked),
        the best passage of each document that covers it, one card per document, the
        likeliest first. No turn of the conversation: follow-ups do not lean on it."""
        from assistant.text import without_terminal_codes

        box = self.query_one(QuestionInput)
        typed = " ".join(without_terminal_codes(box.value).split())
        question = typed or (self.answers[-1].question if self.answers else "")
        engine = self.engine
        if not question or engine is None or self._each is not None:
            self.notify("Type a question first." if not question else
                        "The index is not open yet." if engine is None else
                        "Each document is already being asked.", severity="warning",
                        markup=False)
            return
        if typed:
            box.value = ""
            self.history.add(typed)
        qcard = QuestionCard(question)
        qcard.asked("what each document says: the best passage of each one that covers it")
        pending = PendingCard("Asking each document…", markup=False)
        view = self.conversation_view
        for welcome in view.query("#welcome"):
            await welcome.remove()
        await view.mount_all([qcard, pending])
        view.scroll_end(animate=False)
        self.status_line.say("Asking each document…", "busy")
        self._each = (qcard, pending, self.conversation.id)
        backend, conversation, scope = self.backend, self.conversation, self.scope

        def job() -> list[Reply] | AssistantError:
            return backend.ask_each(engine, question, conversation, scope)

        self.run_worker(job, name="each", group="each", thread=True, exit_on_error=False,
                        description="ask each document")

    async def _finish_each(self, result: list[Reply] | AssistantError) -> None:
        if self._each is None:
            return
        qcard, pending, conversation_id = self._each
        self._each = None
        if conversation_id != self.conversation.id or not pending.is_attached:
            return  # the conversation was left meanwhile
        cards: list[Widget]
        if isinstance(result, AssistantError):
            cards = [MessageCard.error(result, str(self.settings.corpus_dir))]
            self.status_line.say(f"{result.title}: {result.message}", "warning")
        elif not result:
            cards = [MessageCard.notice("Each document", [
                "No document covers this: none of their best passages answers it."],
                warning=True)]
            self.status_line.say("Not covered by any document", "warning")
        else:
            from assistant.chat.conversations import SavedTurn

            cards = [AnswerCard(r.answer, r.passage, r.places) for r in result]
            for r in result:
                self.answers.append(r.answer)
                self.turns.append(SavedTurn(answer=r.answer, passage=r.passage,
                                            places=r.places))
            self._save_conversation()
            covers = "covers" if len(result) == 1 else "cover"
            self.status_line.say(f"{count(len(result), 'document')} {covers} this, the "
                                 "likeliest first", "ready")
        view = self.conversation_view
        await view.mount_all(cards, after=pending)
        await pending.remove()
        if isinstance(cards[0], AnswerCard):
            self.call_after_refresh(view.show_answer, qcard, cards[0])
        else:
            view.scroll_end(animate=False)

    async def action_ask_fresh(self) -> None:
        """Ask the conversation's last question again, as it stands: no context from the
        turns before it (a follow-up that was misunderstood, or a check)."""
        waiting = [*([self.asking] if self.asking else []), *self.queue]
        asked = [a.question for a in self.answers] + [
            p.question for p in waiting if p.conversation_id == self.conversation.id]
        if not asked:
            self.notify("No question yet: ask one first.", severity="warning", markup=False)
            return
        await self.submit(asked[-1], fresh=True)

    # ---- saved conversations -----------------------------------------------------------

    def _save_conversation(self) -> None:
        from assistant.chat.conversations import SavedConversation

        if not self.turns:
            return
        saved = SavedConversation(id=self.conversation.id, created=self.started,
                                  updated=datetime.now(UTC), turns=self.turns,
                                  context=self.conversation, name=self.conversation_name)
        if not self.store.save(saved) and self.store.problem:
            self.notify(self.store.problem, title="Conversation not saved",
                        severity="warning", markup=False)
            self.store.problem = None

    def action_rename_conversation(self) -> None:
        """Name the open conversation (as F2 in Ctrl+L's list does)."""
        from assistant.tui.screens.prompt import PromptScreen

        if not self.turns:
            self.notify("Nothing to name yet: ask a question first.", severity="warning")
            return
        current = self.conversation_name or self.turns[0].answer.question

        def named(name: str | None) -> None:
            self.action_focus_question()
            if name is None or name == current:
                return
            self.conversation_name = name
            self._save_conversation()
            self.notify(f"Named this conversation “{name}”.", title="Renamed")

        self.push_screen(PromptScreen(
            "Rename the conversation", "Its new name (Ctrl+L lists it so). Enter renames, Esc "
            "cancels.", current, id="rename"), named)

    def action_delete_conversation(self) -> None:
        """Delete the open conversation's saved file, after a confirmation (as Ctrl+D in
        Ctrl+L's list does); a new conversation starts."""
        from assistant.tui.screens.prompt import ConfirmScreen

        if not self.turns:
            self.notify("Nothing saved yet: this conversation has no answer.",
                        severity="warning")
            return
        title = " ".join((self.conversation_name or self.turns[0].answer.question).split())

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                self.action_focus_question()
                return
            if not self.store.delete(self.conversation.id):
                self.notify(self.store.problem or "cannot delete it", title="Not deleted",
                            severity="error")
                self.store.problem = None
                return
            await self.action_new_conversation()
            self.notify(f"Deleted “{title}”.", title="Deleted")

        self.push_screen(ConfirmScreen(
            "Delete the conversation", f"Delete “{title}” "
            f"({count(len(self.turns), 'question')}), the conversation open now (a new one "
            "starts)?"), confirmed)

    def action_conversations(self) -> None:
        """List the saved conversations; the one chosen is resumed."""
        from assistant.tui.screens.conversations import ConversationsScreen

        saved = self.store.list()
        if self.store.problem:
            self.notify(self.store.problem, title="Saved conversations", severity="warning",
                        markup=False)
            self.store.problem = None
        by_id = {s.id: s for s in saved}
        screen = ConversationsScreen(saved, self.store, current=self.conversation.id)

        async def chosen(conversation_id: str | None) -> None:
            by_id.update(screen.renamed)
            # an answer may have been saved while the list was open: say it again
            if self.conversation.id in screen.renamed:
                self.conversation_name = screen.renamed[self.conversation.id].name
                self._save_conversation()
            if self.conversation.id in screen.deleted:
                self.store.delete(self.conversation.id)
                await self.action_new_conversation()  # not saved again by a follow-up
            if conversation_id is None or conversation_id not in by_id:
                self.action_focus_question()
                return
            await self.resume(by_id[conversation_id])

        self.push_screen(screen, chosen)

    async def resume(self, saved: SavedConversation) -> None:
        """Show a saved conversation's cards again; follow-ups continue in its context."""
        if saved.id == self.conversation.id:
            self.action_focus_question()
            return
        self.conversation = saved.context
        if self.conversation.id != saved.id:  # the file's name is the conversation
            self.conversation = Conversation(id=saved.id, turns=saved.context.turns)
        self.conversation_name = saved.name
        self.turns = list(saved.turns)
        self.answers = [t.answer for t in saved.turns]
        self.started = saved.created
        self.queue.clear()
        self._close_search()
        view = self.conversation_view
        await view.remove_children()
        questions = [QuestionCard(t.answer.question) for t in saved.turns]
        cards: list[Widget] = []
        for question, turn in zip(questions, saved.turns, strict=True):
            cards += [question, AnswerCard(turn.answer, turn.passage, turn.places)]
        await view.mount_all(cards)
        for question, turn in zip(questions, saved.turns, strict=True):
            if turn.answer.resolved_question:
                question.understood_as(turn.answer.resolved_question)
        view.scroll_end(animate=False)
        self.action_focus_question()
        self.status_line.say(f"Resumed “{saved.title}” ({count(len(saved.turns), 'question')}"
                             "); follow-ups continue it.", "ready")

    def _latest(self) -> AnswerCard | None:
        card = self.conversation_view.latest_answer()
        if card is None:
            self.notify("No answer yet: ask a question first.", severity="warning",
                        markup=False)
        return card

    def action_open_source(self, n: int = 1) -> None:
        card = self._latest()
        if card is not None:
            card.action_open_citation(n)

    def copy_to_clipboard(self, text: str) -> None:
        """Through the terminal (OSC 52), and to a clipboard tool as well; with none, also
        into ``clipboard.txt`` in the export folder, whose path is said."""
        from assistant.render import printable
        from assistant.tui.clipboard import copy_to_file, copy_with_tool

        # every copy, whatever it holds: an escape in a document must not reach a shell
        # through a paste (``ESC[201~`` would end bash's bracketed paste) nor the terminal
        text = printable(text)
        super().copy_to_clipboard(text)
        if copy_with_tool(text, self.which) is not None:
            return
        try:
            path = copy_to_file(text, export_dir())
        except OSError as exc:
            self.notify(f"No clipboard tool (wl-copy, xclip, xsel, pbcopy) and cannot write "
                        f"the copy to a file: {exc.strerror or exc}", title="Copy",
                        severity="warning", markup=False)
            return
        self.notify(f"No clipboard tool found (wl-copy, xclip, xsel, pbcopy): if the terminal "
                    f"does not pass copies on (OSC 52), the text is also in {path}",
                    title="Copy", markup=False)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notice, from any screen, shown literally and printable: the names and
        messages in them come from the corpus and the file system."""
        from assistant.render import one_line, printable

        super().notify(printable(message), title=one_line(title), severity=severity,
                       timeout=timeout, markup=False)

    def action_open_source_outside(self) -> None:
        """The latest answer's source in $EDITOR / $PAGER, through its document screen."""
        card = self._latest()
        if card is None or not card.answer.citations:
            return
        c = card.answer.citations[0]
        self._open_document(SourceRequested(c.doc_id, c.start, c.end), outside=True)

    def action_copy_answer(self) -> None:
        card = self._latest()
        if card is not None:
            self.copy_to_clipboard(answer_clip(card.answer))
            self.notify("Copied the answer and its source.", markup=False)

    def action_copy_citation(self, n: int) -> None:
        card = self._latest()
        if card is None:
            return
        if not 1 <= n <= len(card.answer.citations):
            self.notify(f"The latest answer has no citation [{n}].", severity="warning",
                        markup=False)
            return
        self.copy_to_clipboard(citation_clip(card.answer.citations[n - 1]))
        self.notify(f"Copied citation [{n}].", markup=False)

    def action_export(self) -> None:
        if not self.answers:
            self.notify("Nothing to export yet: ask a question first.", severity="warning",
                        markup=False)
            return
        try:
            path = export_conversation(self.answers, export_dir())
        except OSError as exc:
            self.notify(f"Cannot write the export: {exc.strerror or exc}", title="Export",
                        severity="error", markup=False)
            return
        self.notify(f"Saved the conversation to {path}", title="Exported", markup=False)

    def action_export_as(self) -> None:
        """Ask where to write the conversation (.md or .json), then write it there."""
        if not self.answers:
            self.notify("Nothing to export yet: ask a question first.", severity="warning",
                        markup=False)
            return
        from assistant.tui.screens.prompt import export_prompt

        default = export_dir() / f"conversation-{datetime.now():%Y%m%d-%H%M%S}.md"

        def chosen(path: str | None) -> None:
            if path is None:
                return
            target = Path(path).expanduser()
            try:
                export_to(self.answers, target)
            except OSError as exc:
                self.notify(f"Cannot write {target}: {exc.strerror or exc}", title="Export",
                            severity="error", markup=False)
                return
            self.notify(f"Saved the conversation to {target}", title="Exported", markup=False)

        self.push_screen(export_prompt(str(default)), chosen)

    def action_rebuild(self, full: bool = False) -> None:
        if self.building is not None:
            self.notify("The index is already being built.", severity="warning", markup=False)
            return
        self._start_index_job("rebuild", full=full)

    # ---- asking part of the folder -----------------------------------------------------

    def on_restriction_requested(self, message: RestrictionRequested) -> None:
        docs = message.members if message.members is not None else frozenset(
            {message.doc_id})
        scope = self.scope or frozenset()
        if not docs:
            return
        if message.mark:  # space: more documents asked, or fewer (a folder: all, or none)
            self._restrict((scope - docs if docs <= scope else scope | docs) or None)
        else:  # o: those alone, or every document again
            self._restrict(None if self.scope == docs else docs)

    def _restrict_folder(self, folder: str) -> None:
        """Ask the documents in ``folder`` (a sub-folder of the corpus)."""
        if self.engine is not None:
            self._restrict(folders_of(list(self.engine.manifest.documents)).get(folder))

    def _restrict(self, scope: frozenset[str] | None) -> None:
        self.scope = scope
        self.query_one(SidePanel).show_scope(scope)
        box = self.query_one(QuestionInput)
        box.placeholder = (f"Ask a question about {scope_text(scope)}…  (o on a document: "
                           "every document)" if scope else
                           "Ask a question about the documents…  (↑↓ history · F1 keys)")
        if scope:
            self.status_line.say(f"Asking {scope_text(scope)} (o on one: it alone, again: "
                                 "every document; space: mark or unmark)", "ready")
        else:
            self.status_line.say("Asking every document again.", "ready")

    def _only_note(self) -> str:
        return f" Asking {scope_text(self.scope)}." if self.scope else ""

    # ---- search in the conversation ----------------------------------------------------

    def action_search_conversation(self) -> None:
        self.query_one(ConversationSearch).open()

    def _searchable_cards(self) -> list[tuple[Widget, str]]:
        cards: list[tuple[Widget, str]] = []
        for child in self.conversation_view.children:
            text = getattr(child, "search_text", None)
            if isinstance(text, str):
                cards.append((child, text))
        return cards

    def _show_match(self) -> None:
        for card in self.conversation_view.query(".-found"):
            card.remove_class("-found")
        bar = self.query_one(ConversationSearch)
        bar.show_count(self._search_at, len(self._search_hits))
        if 0 <= self._search_at < len(self._search_hits):
            card = self._search_hits[self._search_at]
            card.add_class("-found")
            self.conversation_view.scroll_to_widget(card, top=True, animate=False)

    def on_conversation_search_changed(self, message: ConversationSearch.Changed) -> None:
        self._search_hits = card_matches(self._searchable_cards(), message.query)
        self._search_at = len(self._search_hits) - 1 if self._search_hits else -1
        self._show_match()  # the latest match first: the conversation is read from the end

    def on_conversation_search_step(self, message: ConversationSearch.Step) -> None:
        query = self.query_one(ConversationSearch).box.value
        self._search_hits = card_matches(self._searchable_cards(), query)
        if not self._search_hits:
            self._search_at = -1
            self.bell()
        else:
            at = self._search_at if self._search_at >= 0 else 0
            # next goes down the conversation, previous up; both wrap round
            self._search_at = (at + message.step) % len(self._search_hits)
        self._show_match()

    def on_conversation_search_closed(self, _: ConversationSearch.Closed) -> None:
        self._close_search()
        self.action_focus_question()

    def _close_search(self) -> None:
        self.query_one(ConversationSearch).close()
        for card in self.conversation_view.query(".-found"):
            card.remove_class("-found")
        self._search_hits, self._search_at = [], -1

    # ---- watching the corpus -----------------------------------------------------------

    def _watch_corpus(self) -> None:
        """Every few seconds: stat the corpus in a worker (never on the UI thread)."""
        engine = self.engine
        if engine is None or self.building is not None:
            return
        if any(w.group == "watch" and w.is_running for w in self.workers):
            return
        settings, manifest = self.settings, engine.manifest
        self._watched_gen = engine.generation

        def job() -> tuple[list[str], tuple[object, ...]]:
            from assistant.build import documents_changed, resolve_corpus

            corpus = resolve_corpus(settings).corpus_dir
            changed = documents_changed(manifest.model_copy(update={"corpus_dir": str(corpus)}))
            seen: list[object] = []
            for name in changed:  # how each looks now: a file still being written changes
                try:
                    st = (corpus / name).stat()
                    seen.append((name, st.st_size, st.st_mtime_ns))
                except OSError:
                    seen.append((name, None))
            return changed, tuple(seen)

        self.run_worker(job, name="watch", group="watch", thread=True, exit_on_error=False,
                        description="look for changes in the corpus")

    def _corpus_changed(self, scan: tuple[list[str], tuple[object, ...]],
                        generation: int | None) -> None:
        changed, seen = scan
        if self.engine is None or self.building is not None or \
                self.engine.generation != generation:
            return  # rebuilt (or rebuilding) since the scan began: it is out of date
        if seen != self._changes_seen:
            self._changes_seen, self._changes_since = seen, time.monotonic()
        names = ", ".join(changed[:3]) + (f" (+{len(changed) - 3} more)"
                                          if len(changed) > 3 else "")
        if changed and self.watching and seen != self._rebuilt_for and \
                time.monotonic() - self._changes_since >= self.WATCH_QUIET_SECONDS:
            self._rebuilt_for = seen
            self.notify(f"Re-indexing {names}; answers come from the index as it was until "
                        "it is done.", title="Keeping the index current", markup=False)
            self._start_index_job("rebuild")
            return
        if tuple(changed) == self._corpus_changes:
            return
        self._corpus_changes = tuple(changed)
        self.query_one(SidePanel).show_changes(changed)
        if changed and not self.watching:
            self.notify(f"{names} changed since the index was built. Press Ctrl+R to "
                        "rebuild it (or turn on \"Keep the index current\" in Ctrl+P); "
                        "until then answers come from the index as it was.",
                        title="The corpus changed", timeout=10, markup=False)

    def action_toggle_watch(self) -> None:
        """Re-index changed files by themselves, or not, for this session."""
        self.watching = not self.watching
        self._rebuilt_for = ()
        self.notify("Changed files are now re-indexed by themselves, a few seconds after "
                    "they stop changing." if self.watching else
                    "Changed files are no longer re-indexed by themselves (Ctrl+R does it).",
                    title="Keep the index current", markup=False)

    def action_toggle_why(self) -> None:
        """The "why" view: each source's score, character offsets and matched evidence."""
        view = self.conversation_view
        view.toggle_class("-why")
        shown = view.has_class("-why")
        for line in view.query(CitationLine):
            line.why_shown = shown
        view.keep_place()  # every source grows or shrinks by a line: stay on this card
        self.notify("Showing why each source was chosen (F2 hides it)." if shown else
                    "Hid the scores (F2 shows them).", markup=False)

    def action_toggle_panel(self) -> None:
        side = self.query_one(SidePanel)
        if self.screen.has_class("-narrow"):  # shown for now, over the layout's choice
            side.toggle_class("-peek")
            return
        side.toggle_class("-hidden")
        self._remember()

    def action_clear_history(self) -> None:
        self.history.clear()
        message = self.history.problem or "Cleared the question history."
        self.notify(message, markup=False)

    def action_focus_sources(self) -> None:
        card = self.conversation_view.latest_answer()
        lines = list(card.query(CitationLine)) if card else []
        if lines:
            lines[0].focus()

    def action_scroll_chat(self, direction: int) -> None:
        view = self.conversation_view
        if direction < 0:
            view.scroll_page_up(animate=False)
        else:
            view.scroll_page_down(animate=False)

    def action_focus_question(self) -> None:
        self.query_one(QuestionInput).focus()

    # ---- focus: typing always reaches the question box ---------------------------------

    def on_key(self, event: events.Key) -> None:
        """A printable key pressed while a citation, the conversation or the document list
        has focus goes into the question box (keys those widgets bind, such as 1–9 and y on
        the sources, keep their meaning; ``o`` on the document list only while the question
        box is empty: ``SidePanel.check_action``)."""
        # Not "unless an Input has focus": in a burst, keys sent to the document list
        # before the focus moved arrive here after it did. An Input consumes the printable
        # keys it is sent, so none of those reaches the app.
        if self.screen is not self.screen_stack[0] or not event.is_printable:
            return
        if not event.character:
            return
        if event.key in self.active_bindings:
            return
        event.stop()
        event.prevent_default()
        self._question_box_now().insert_text_at_cursor(event.character)

    def on_paste(self, event: events.Paste) -> None:
        """Text pasted while another widget has focus goes into the question box too."""
        if self.screen is not self.screen_stack[0]:
            return  # an Input consumes what is pasted into it: this came from elsewhere
        event.stop()
        event.prevent_default()
        self._question_box_now().paste(event.text)

    def _question_box_now(self) -> QuestionInput:
        """The question box, focused at once (``focus()`` would wait for the next idle, and
        the rest of a burst of keys would still go to the widget focused before)."""
        box = self.query_one(QuestionInput)
        if self.focused is not box:
            self.screen.set_focus(box)
        return box

    def _tab_stops(self) -> list[Widget]:
        """Tab's cycle on the chat: the question box, the latest answer's sources, the
        document list (when the panel shows). Older answers' sources are reached with ↑/↓
        from there, not by tabbing through every one of them."""
        stops: list[Widget] = [self.query_one(QuestionInput)]
        latest = self.conversation_view.latest_answer()
        lines = list(latest.query(CitationLine)) if latest else []
        focused = self.focused
        if isinstance(focused, CitationLine):
            stops.append(focused)  # Tab from any source moves on to the next stop
        elif lines:
            stops.append(lines[0])
        side = self.query_one(SidePanel)
        if side.display:
            stops.append(side.query_one(OptionList))
        return stops

    def _cycle_focus(self, step: int) -> None:
        stops = self._tab_stops()
        focused = self.focused
        at = stops.index(focused) if focused in stops else (0 if step > 0 else 1)
        stops[(at + step) % len(stops)].focus()

    def action_focus_next(self) -> None:
        if self.screen is not self.screen_stack[0]:
            super().action_focus_next()
            return
        self._cycle_focus(1)

    def action_focus_previous(self) -> None:
        if self.screen is not self.screen_stack[0]:
            super().action_focus_previous()
            return
        self._cycle_focus(-1)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if screen is not self.screen_stack[0]:
            return
        commands: list[tuple[str, str, Callable[[], Any]]] = [
            ("New conversation", "Clear the chat; follow-ups start afresh (Ctrl+N)",
             self.action_new_conversation),
            ("Rebuild index", "Bring the index up to date with the corpus (Ctrl+R)",
             self.action_rebuild),
            ("Rebuild index from scratch", "Re-embed every document",
             lambda: self.action_rebuild(full=True)),
            ("Export conversation", "Save the chat as Markdown with its citations (Ctrl+S)",
             self.action_export),
            ("Export conversation as…", "Choose the path; .md or .json (Ctrl+E)",
             self.action_export_as),
            ("Saved conversations", "List the saved conversations and resume one (Ctrl+L)",
             self.action_conversations),
            ("Rename this conversation", "Give the open conversation a name for Ctrl+L's "
             "list (F2 there)", self.action_rename_conversation),
            ("Delete this conversation", "Delete the open conversation's saved file, after a "
             "confirmation (Ctrl+D in Ctrl+L's list)", self.action_delete_conversation),
            ("What does each document say?", "For the question typed (else the last one): "
             "the best passage of each document that covers it, grouped by document",
             self.action_ask_each),
            ("Ask again, fresh", "The last question again, without the conversation's "
             "context (F5)", self.action_ask_fresh),
            ("Search the conversation", "Find words in the questions, answers and sources; "
             "Enter / Shift+Enter next / previous (Ctrl+F)", self.action_search_conversation),
            ("Copy answer", "The latest answer and its source, to the clipboard (Ctrl+Y)",
             self.action_copy_answer),
            ("Open source", "The latest answer's document at the quote (Ctrl+O)",
             self.action_open_source),
            ("Open source in $EDITOR", "The latest answer's file in $EDITOR, else $PAGER or "
             "less, at the quote (e in a document)", self.action_open_source_outside),
            ("Toggle side panel", "Show or hide the index and documents (Ctrl+B)",
             self.action_toggle_panel),
            ("Why these sources", "Show or hide each source's score and offsets (F2)",
             self.action_toggle_why),
            ("Keep the index current: " + ("turn off" if self.watching else "turn on"),
             "Re-index changed files by themselves, a few seconds after they stop changing "
             "(for this session; the watch setting is the default)", self.action_toggle_watch),
            ("Clear question history", "Forget the questions kept for ↑/↓",
             self.action_clear_history),
            ("Help", "Every key of the chat (F1)", self.action_help),
        ]
        if self.scope:
            commands.append(("Ask every document", markup_literal(
                f"Stop asking {scope_text(self.scope)} (o on a document in the list)"),
                lambda: self._restrict(None)))
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
        documents = sorted(self.engine.manifest.documents) if self.engine else []
        for folder in folders_of(documents):
            yield SystemCommand(markup_literal(f"Ask only the folder {folder}/"),
                                "Restrict the questions to the documents in it",
                                lambda f=folder: self._restrict_folder(f))
        scope = self.scope or frozenset()
        for doc_id in documents if scope else []:  # Space on the document list
            marked = doc_id in scope
            yield SystemCommand(markup_literal(f"{'Stop asking' if marked else 'Also ask'} "
                                               f"{doc_id}"),
                                "Mark or unmark it as one of the documents asked (Space on it "
                                "in the document list)",
                                lambda d=doc_id: self.post_message(
                                    RestrictionRequested(d, mark=True)))
        for doc_id in documents:
            if self.scope != frozenset({doc_id}):
                yield SystemCommand(markup_literal(f"Ask only {doc_id}"),
                                    "Restrict the questions to this document (o on it in "
                                    "the document list, the question box empty; space marks "
                                    "several)",
                                    lambda d=doc_id: self._restrict(frozenset({d})))
        latest = self.conversation_view.latest_answer()
        for c in latest.answer.citations if latest else []:
            yield SystemCommand(f"Copy citation [{c.rank}]",  # "[2]" is no tag: shown as is
                                markup_literal(f"{c.section or c.title}, characters "
                                               f"{c.start}–{c.end}"),
                                lambda n=c.rank: self.action_copy_citation(n))


def export_dir() -> Path:
    """Where exports and ``clipboard.txt`` go, as an absolute path (the notices show it):
    ``ASSISTANT_EXPORT_DIR``, else ``exports/`` in the user's data folder, never the folder
    the chat happened to be started from (a git checkout)."""
    from assistant.chat.history import user_data_dir

    configured = os.environ.get("ASSISTANT_EXPORT_DIR")
    folder = Path(configured).expanduser() if configured else user_data_dir() / "exports"
    return folder.absolute()


def export_conversation(answers: list[Answer], directory: Path) -> Path:
    """Write the conversation as Markdown to a new file in ``directory``; its path."""
    from assistant.render import conversation_markdown

    stamp = datetime.now()
    body = conversation_markdown(answers, f"Conversation of {stamp:%Y-%m-%d %H:%M}")
    directory.mkdir(parents=True, exist_ok=True)
    base = f"conversation-{stamp:%Y%m%d-%H%M%S}"
    path = directory / f"{base}.md"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{base}-{n}.md"
    with open(path, "x", encoding="utf-8") as fh:
        fh.write(body)
    return path


def export_to(answers: list[Answer], path: Path) -> Path:
    """Write the conversation to ``path``: JSON (``{"title", "answers": [Answer…]}``) for a
    ``.json`` path, else Markdown; its folder is created. Overwrites: the user chose it."""
    import json

    from assistant.render import conversation_markdown

    title = f"Conversation of {datetime.now():%Y-%m-%d %H:%M}"
    if path.suffix.lower() == ".json":
        from assistant.render import json_safe

        body = json_safe(json.dumps({"title": title, "answers": [a.model_dump(mode="json")
                                                                 for a in answers]},
                                    ensure_ascii=False, indent=2)) + "\n"
    else:
        body = conversation_markdown(answers, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def create_app(settings: Settings, history_file: Path | None = None,
               backend: ChatBackend | None = None) -> BriefingApp:
    """The app for ``settings`` (the CLI and the tests build it the same way); the history
    lives in ``history_file`` (default: ``ASSISTANT_HISTORY_FILE`` or the user data dir),
    the preferences (theme, side panel) and the saved conversations next to it. ``backend``:
    how it opens and asks (``CoreBackend`` unless a test passes a fake)."""
    history_file = history_file or default_history_path()
    return BriefingApp(settings, InputHistory(history_file),
                       preferences_file=history_file.with_name("preferences.json"),
                       conversations_dir=history_file.with_name("conversations"),
                       backend=backend)


STOP_SECONDS = 2.0
"""How long a quit waits for a stopped build to end at a committed batch."""


def run_app(settings: Settings) -> None:
    """``assistant`` / ``assistant chat``: run the chat until the user quits."""
    app = create_app(settings)
    app.run()
    if not app.wait_for_stopped_build(STOP_SECONDS):
        # still inside a step that checks no flag (the model's export): end the process
        # now rather than wait; the build resumes next time, as after a kill
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(app.return_code or 0)
