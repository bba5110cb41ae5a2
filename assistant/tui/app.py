"""The chat app: ask, read the quote inside its passage, open the source, follow up, rebuild.

The app holds the widgets, the layout and the keys; what the chat does and remembers (the
queue of questions, the index jobs, the conversation, exports, the documents asked, the
corpus watcher) is ``assistant.chat.controller.ChatController``, which the app drives with
the user's actions and whose events it renders (``_show_event``). The app paints its first
frame before anything heavy is imported: the controller's jobs run in worker threads (an
index job in a daemon thread, group ``index``; answers one at a time, group ``ask``), and
their results come back to the controller on the UI thread. Every ``AssistantError``
becomes a card in the conversation that says what to do.

Ctrl+F searches the conversation's cards; the corpus is looked at every
``CORPUS_WATCH_SECONDS`` (the controller says what changed, and rebuilds with ``watch``
on). ``o`` on a document in the side panel asks it alone, Space marks several (on a
folder's row: all of it). Copies also go to a clipboard tool, or a file, for terminals
without OSC 52 (``tui/clipboard.py``).

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
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, OptionList
from textual.worker import Worker, WorkerState

from assistant.chat.controller import ChatController
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
    Status,
)
from assistant.chat.history import InputHistory, default_history_path
from assistant.errors import AssistantError
from assistant.render import count, scope_text
from assistant.settings import Settings
from assistant.tui.messages import FromJob, RestrictionRequested, SourceRequested
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
from assistant.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from assistant.chat.answers import ShownAnswer
    from assistant.chat.backend import ChatBackend
    from assistant.chat.controller import Job
    from assistant.tui.clipboard import Which

T = TypeVar("T")

NARROW_BELOW = 100
"""Columns under which the chat is laid out for a small terminal."""

CHAT_ACTIONS = frozenset({"new_conversation", "open_source", "copy_answer", "export",
                          "export_as", "conversations", "search_conversation",
                          "rebuild", "toggle_panel", "scroll_chat", "toggle_why",
                          "ask_fresh"})
"""Actions of the chat screen, disabled while a document or the help is shown."""


class WorkerRunner:
    """Runs the controller's jobs in the app's workers; their results, and what a job's
    thread delivers, come back on the UI thread."""

    def __init__(self, app: BriefingApp) -> None:
        self.app = app

    def start(self, job: Job[Any]) -> None:
        self.app.start_job(job)

    def deliver(self, callback: Callable[[], None]) -> None:
        self.app.post_message(FromJob(callback))


class BriefingApp(App[None]):
    """The terminal chat over one index; build it with ``create_app``."""

    TITLE = "Briefing assistant"
    CORPUS_WATCH_SECONDS = 2.0
    """How often the corpus is looked at for changes while the chat is open."""
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
        self.history = history
        self.chat = ChatController(settings, self._emit, WorkerRunner(self), backend=backend,
                                   conversations_dir=conversations_dir)
        """What the chat does and remembers; the app renders its events."""
        self._outbox: deque[ChatEvent] = deque()
        self._show_due = False
        self._rendering = asyncio.Lock()
        self._jobs: dict[Worker[Any], Job[Any]] = {}
        self._cards: dict[int, tuple[QuestionCard, PendingCard]] = {}
        """The cards of each question asked and not yet answered, by number."""
        self._each_cards: tuple[QuestionCard, PendingCard] | None = None
        self.which: Which = shutil.which
        """How clipboard tools are looked up (a seam for the tests)."""
        self._search_hits: list[Widget] = []
        self._search_at = -1
        self.preferences_file = preferences_file
        self.preferences = (Preferences.load(preferences_file) if preferences_file
                            else Preferences())
        self._index_thread: threading.Thread | None = None

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

    async def on_mount(self) -> None:
        if self.preferences.theme in self.available_themes:
            self.theme = self.preferences.theme
        self.query_one(SidePanel).set_class(not self.preferences.side_panel, "-hidden")
        self.theme_changed_signal.subscribe(self, lambda _: self._remember())
        self.query_one(QuestionInput).focus()
        if self.history.problem:
            self.notify(self.history.problem, title="History", severity="warning",
                        markup=False)
        self.chat.start()
        self.set_interval(self.CORPUS_WATCH_SECONDS, self.chat.watch_tick, name="corpus watch")
        await self._show_events()

    def _remember(self) -> None:
        self.preferences.theme = self.theme
        self.preferences.side_panel = not self.query_one(SidePanel).has_class("-hidden")
        if self.preferences_file is not None:
            self.preferences.save(self.preferences_file)

    @property
    def conversation_view(self) -> ConversationView:
        return self.query_one(ConversationView)

    @property
    def status_line(self) -> StatusLine:
        return self.query_one(StatusLine)

    # ---- the controller's jobs and events ----------------------------------------------

    def start_job(self, job: Job[Any]) -> None:
        """A controller's job in a worker thread (an index job in a daemon thread)."""
        if job.kind == "index":
            worker: Worker[Any] = self.run_worker(
                self._in_daemon_thread(job.run, f"index-{job.name}"), name=job.name,
                group="index", exclusive=True, description=job.description,
                exit_on_error=False)
        else:
            worker = self.run_worker(job.run, name=job.name, group=job.kind, thread=True,
                                     exclusive=job.kind == "document",
                                     description=job.description, exit_on_error=False)
        self._jobs[worker] = job

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        job = self._jobs.get(event.worker)
        if job is None or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR,
                                              WorkerState.CANCELLED):
            return
        del self._jobs[event.worker]
        if event.state == WorkerState.SUCCESS:
            job.done(event.worker.result)
        elif event.state == WorkerState.ERROR:  # a job catches everything; a last resort
            from assistant.errors import UnexpectedError

            job.done(UnexpectedError.wrap(event.worker.error or RuntimeError("job failed")))
        await self._show_events()

    async def on_from_job(self, message: FromJob) -> None:
        message.callback()
        await self._show_events()

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

    def _emit(self, event: ChatEvent) -> None:
        """The controller's sink: events are rendered in order, at once when the caller
        awaits ``_show_events``, else right after the current message."""
        self._outbox.append(event)
        if not self._show_due:
            self._show_due = True
            self.call_next(self._show_events)

    async def _show_events(self) -> None:
        async with self._rendering:
            self._show_due = False
            while self._outbox:
                await self._show_event(self._outbox.popleft())

    async def _show_event(self, event: ChatEvent) -> None:
        view = self.conversation_view
        match event:
            case Status(text, kind):
                self.status_line.say(text, kind)
            case Notice(text, title, severity, timeout):
                self.notify(text, title=title, severity=severity, timeout=timeout)
            case ErrorCard(error, also):
                await self._add_card(MessageCard.error(error, str(self.settings.corpus_dir),
                                                       also=also))
            case NoticeCard(title, lines, warning):
                await self._add_card(MessageCard.notice(title, lines, warning=warning))
            case IndexProgress(done, total, panel):
                if panel is not None:
                    self.query_one(SidePanel).show_status(None, panel)
                self.status_line.progress(done, total)
            case IndexFinished(status):
                self.status_line.hide_progress()
                self.query_one(SidePanel).show_status(status)
                view.scroll_end(animate=False)
            case EngineSwapped(manifest):
                self.sub_title = count(len(manifest.documents), "document")
            case QuestionAsked(number, question, note, fresh):
                qcard = QuestionCard(question)
                if fresh:
                    qcard.asked("asked again, fresh: without the conversation's context")
                self._cards[number] = (qcard, PendingCard(note, markup=False))
                await self._show_asked(*self._cards[number])
            case QuestionWaiting(numbers, note):
                for n in numbers:
                    if n in self._cards:
                        self._cards[n][1].update(note)
            case Answering(number):
                if number in self._cards:
                    self._cards[number][1].update("Answering…")
            case AnswerReady(number, result):
                await self._show_answer(number, result)
            case EachAsked(question):
                qcard = QuestionCard(question)
                qcard.asked("what each document says: the best passage of each one that "
                            "covers it")
                self._each_cards = (qcard, PendingCard("Asking each document…", markup=False))
                await self._show_asked(*self._each_cards)
            case EachAnswered(result):
                await self._show_each(result)
            case ConversationCleared():
                self._cards.clear()
                self._each_cards = None
                self._close_search()
                await view.reset()
                self.action_focus_question()
            case ConversationResumed(saved):
                self._cards.clear()
                self._each_cards = None
                self._close_search()
                await view.remove_children()
                asked = [QuestionCard(t.answer.question) for t in saved.turns]
                cards: list[Widget] = []
                for qcard, turn in zip(asked, saved.turns, strict=True):
                    cards += [qcard, AnswerCard(turn.answer, turn.passage, turn.places)]
                await view.mount_all(cards)
                for qcard, turn in zip(asked, saved.turns, strict=True):
                    if turn.answer.resolved_question:
                        qcard.understood_as(turn.answer.resolved_question)
                view.scroll_end(animate=False)
            case ScopeChanged(scope):
                self.query_one(SidePanel).show_scope(scope)
                self.query_one(QuestionInput).placeholder = (
                    f"Ask a question about {scope_text(scope)}…  (o on a document: every "
                    "document)" if scope else
                    "Ask a question about the documents…  (↑↓ history · F1 keys)")
            case CorpusChanged(changed):
                self.query_one(SidePanel).show_changes(changed)
            case DocumentReady(document, source, start, end, outside):
                if self.screen is not self.screen_stack[0]:
                    return  # another screen was opened meanwhile
                screen = DocumentScreen(document, start, end, source=source)
                self.push_screen(screen, lambda _: self.action_focus_question())
                if outside:
                    self.call_after_refresh(screen.action_open_outside)

    async def _show_asked(self, qcard: QuestionCard, pending: PendingCard) -> None:
        view = self.conversation_view
        for welcome in view.query("#welcome"):
            await welcome.remove()
        await view.mount_all([qcard, pending])
        view.scroll_end(animate=False)

    async def _show_answer(self, number: int, result: ShownAnswer | AssistantError) -> None:
        """An answer's card (or its error's) in place of its pending card."""
        if number not in self._cards:
            return  # the conversation was left meanwhile
        qcard, pending = self._cards.pop(number)
        card: AnswerCard | MessageCard
        if isinstance(result, AssistantError):
            card = MessageCard.error(result, str(self.settings.corpus_dir))
        else:
            if result.answer.resolved_question:
                qcard.understood_as(result.answer.resolved_question)
            card = AnswerCard(result.answer, result.passage, result.places)
        view = self.conversation_view
        await view.mount(card, after=pending)
        await pending.remove()
        self.call_after_refresh(view.show_answer, qcard, card)

    async def _show_each(self, result: list[ShownAnswer] | AssistantError) -> None:
        if self._each_cards is None:
            return
        qcard, pending = self._each_cards
        self._each_cards = None
        if not pending.is_attached:
            return  # the conversation was left meanwhile
        cards: list[Widget]
        if isinstance(result, AssistantError):
            cards = [MessageCard.error(result, str(self.settings.corpus_dir))]
        elif not result:
            cards = [MessageCard.notice("Each document", [
                "No document covers this: none of their best passages answers it."],
                warning=True)]
        else:
            cards = [AnswerCard(r.answer, r.passage, r.places) for r in result]
        view = self.conversation_view
        await view.mount_all(cards, after=pending)
        await pending.remove()
        if isinstance(cards[0], AnswerCard):
            self.call_after_refresh(view.show_answer, qcard, cards[0])
        else:
            view.scroll_end(animate=False)

    async def _add_card(self, card: MessageCard) -> None:
        view = self.conversation_view
        await view.mount(card)
        view.scroll_end(animate=False)

    # ---- quitting ----------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit at once. A build in progress is told to stop (at its next committed batch);
        what it did is kept, the next start resumes it, and the terminal says so."""
        thread = self._index_thread
        farewell = self.chat.quit() if thread is not None and thread.is_alive() else None
        self.exit(message=Text(farewell) if farewell else None)

    def wait_for_stopped_build(self, timeout: float) -> bool:
        """After quitting: give a stopped build up to ``timeout`` seconds to end at a
        committed batch; whether it has ended."""
        thread = self._index_thread
        if thread is None or not self.chat.stopping:
            return True
        thread.join(timeout)
        return not thread.is_alive()

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
        self.chat.submit(question, fresh)
        await self._show_events()

    async def action_ask_each(self) -> None:
        """What does each document say, for the question typed (else the last one asked)."""
        from assistant.text import without_terminal_codes

        box = self.query_one(QuestionInput)
        typed = " ".join(without_terminal_codes(box.value).split())
        if self.chat.ask_each(typed or self.chat.last_question) and typed:
            box.value = ""
            self.history.add(typed)
        await self._show_events()

    async def action_ask_fresh(self) -> None:
        """Ask the conversation's last question again, without the context of the turns
        before it."""
        self.chat.ask_fresh()
        await self._show_events()

    # ---- sources -----------------------------------------------------------------------

    def on_source_requested(self, message: SourceRequested) -> None:
        self.chat.open_document(message.doc_id, message.start, message.end)

    # ---- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in CHAT_ACTIONS and self.screen is not self.screen_stack[0])

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_new_conversation(self) -> None:
        """A fresh conversation; the one left is already saved (Ctrl+L resumes it)."""
        self.chat.new_conversation()
        await self._show_events()

    # ---- saved conversations -----------------------------------------------------------

    def action_rename_conversation(self) -> None:
        """Name the open conversation (as F2 in Ctrl+L's list does)."""
        from assistant.tui.screens.prompt import PromptScreen

        current = self.chat.title
        if current is None:
            self.notify("Nothing to name yet: ask a question first.", severity="warning")
            return

        def named(name: str | None) -> None:
            self.action_focus_question()
            self.chat.rename(name)

        self.push_screen(PromptScreen(
            "Rename the conversation", "Its new name (Ctrl+L lists it so). Enter renames, Esc "
            "cancels.", current, id="rename"), named)

    def action_delete_conversation(self) -> None:
        """Delete the open conversation's saved file, after a confirmation (as Ctrl+D in
        Ctrl+L's list does); a new conversation starts."""
        from assistant.tui.screens.prompt import ConfirmScreen

        if self.chat.title is None:
            self.notify("Nothing saved yet: this conversation has no answer.",
                        severity="warning")
            return
        title = " ".join(self.chat.title.split())

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                self.action_focus_question()
                return
            self.chat.delete()
            await self._show_events()

        self.push_screen(ConfirmScreen(
            "Delete the conversation", f"Delete “{title}” "
            f"({count(len(self.chat.turns), 'question')}), the conversation open now (a new "
            "one starts)?"), confirmed)

    def action_conversations(self) -> None:
        """List the saved conversations; the one chosen is resumed."""
        from assistant.tui.screens.conversations import ConversationsScreen

        saved = self.chat.saved_conversations()
        by_id = {s.id: s for s in saved}
        screen = ConversationsScreen(saved, self.chat.store, current=self.chat.conversation.id)

        async def chosen(conversation_id: str | None) -> None:
            by_id.update(screen.renamed)
            self.chat.changed_elsewhere(screen.renamed, screen.deleted)
            if conversation_id is not None and conversation_id in by_id:
                self.chat.resume(by_id[conversation_id])
            await self._show_events()
            self.action_focus_question()

        self.push_screen(screen, chosen)

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
        from assistant.chat.export import export_dir
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
        self.chat.open_document(c.doc_id, c.start, c.end, outside=True)

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
        self.chat.export()

    def action_export_as(self) -> None:
        """Ask where to write the conversation (.md or .json), then write it there."""
        default = self.chat.export_path()
        if default is None:
            return
        from assistant.tui.screens.prompt import export_prompt

        def chosen(path: str | None) -> None:
            if path is not None:
                self.chat.export_to(Path(path))

        self.push_screen(export_prompt(str(default)), chosen)

    def action_rebuild(self, full: bool = False) -> None:
        self.chat.rebuild(full=full)

    # ---- asking part of the folder -----------------------------------------------------

    def on_restriction_requested(self, message: RestrictionRequested) -> None:
        self.chat.choose(message.members if message.members is not None else frozenset(
            {message.doc_id}), mark=message.mark)

    def _restrict_folder(self, folder: str) -> None:
        """Ask the documents in ``folder`` (a sub-folder of the corpus)."""
        if self.chat.session is not None:
            self.chat.restrict(folders_of(list(self.chat.session.manifest.documents)).get(
                folder))

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

    def action_toggle_watch(self) -> None:
        """Re-index changed files by themselves, or not, for this session."""
        self.chat.toggle_watch()

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
            ("Keep the index current: " + ("turn off" if self.chat.watching else "turn on"),
             "Re-index changed files by themselves, a few seconds after they stop changing "
             "(for this session; the watch setting is the default)", self.action_toggle_watch),
            ("Clear question history", "Forget the questions kept for ↑/↓",
             self.action_clear_history),
            ("Help", "Every key of the chat (F1)", self.action_help),
        ]
        scope = self.chat.scope
        if scope:
            commands.append(("Ask every document", markup_literal(
                f"Stop asking {scope_text(scope)} (o on a document in the list)"),
                lambda: self.chat.restrict(None)))
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
        session = self.chat.session
        documents = sorted(session.manifest.documents) if session is not None else []
        for folder in folders_of(documents):
            yield SystemCommand(markup_literal(f"Ask only the folder {folder}/"),
                                "Restrict the questions to the documents in it",
                                lambda f=folder: self._restrict_folder(f))
        for doc_id in documents if scope else []:  # Space on the document list
            marked = doc_id in (scope or ())
            yield SystemCommand(markup_literal(f"{'Stop asking' if marked else 'Also ask'} "
                                               f"{doc_id}"),
                                "Mark or unmark it as one of the documents asked (Space on it "
                                "in the document list)",
                                lambda d=doc_id: self.post_message(
                                    RestrictionRequested(d, mark=True)))
        for doc_id in documents:
            if scope != frozenset({doc_id}):
                yield SystemCommand(markup_literal(f"Ask only {doc_id}"),
                                    "Restrict the questions to this document (o on it in "
                                    "the document list, the question box empty; space marks "
                                    "several)",
                                    lambda d=doc_id: self.chat.restrict(frozenset({d})))
        latest = self.conversation_view.latest_answer()
        for c in latest.answer.citations if latest else []:
            yield SystemCommand(f"Copy citation [{c.rank}]",  # "[2]" is no tag: shown as is
                                markup_literal(f"{c.section or c.title}, characters "
                                               f"{c.start}–{c.end}"),
                                lambda n=c.rank: self.action_copy_citation(n))


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
