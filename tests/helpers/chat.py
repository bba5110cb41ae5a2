"""A fake session, backend and runner for the chat controller's fast tests.

``FakeSession`` answers from a table of questions (a question it does not know is not
covered), reads documents from a dict and records what it was asked; ``FakeBackend`` opens
and rebuilds generations of it and reports scripted corpus changes; ``ManualRunner`` holds
the controller's jobs until the test finishes them, in the order it chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.chat.controller import ChatController, Job
from assistant.chat.events import ChatEvent, Notice, Status
from assistant.errors import AssistantError
from assistant.models import Answer, AnswerSpan, Citation, Section
from assistant.qa.conversation import Conversation, Turn
from assistant.session import DocumentView, IndexOutcome
from assistant.settings import Settings

DOC = "briefing.txt"
TEXT = ("Key points\n"
        "Chinese vendors (Huawei, Baidu, Cambricon) are improving accelerators.\n"
        "Huawei and Baidu are deploying rack-scale systems.\n"
        "The US takes a 25% share of the revenue.\n")


def answer(question: str, quote: str | None, doc: str = DOC, text: str = TEXT,
           resolved: str | None = None, scope: frozenset[str] | None = None) -> Answer:
    """An answer quoting ``quote`` from ``text`` (None: not covered, the first line listed
    as the closest passage)."""
    shown = quote or text.splitlines()[1]
    start = text.index(shown)
    cite = Citation(rank=1, doc_id=doc, title="Briefing", section="Key points", quote=shown,
                    start=start, end=start + len(shown), score=0.8, why="fake",
                    is_answer=quote is not None, line=text.count("\n", 0, start) + 1)
    return Answer(id=f"a-{abs(hash(question)) % 10_000}", question=question,
                  resolved_question=resolved,
                  scope=sorted(scope) if scope is not None else None,
                  abstained=quote is None,
                  outcome="answer" if quote is not None else "not_covered",
                  message=quote or "The documents do not cover this.",
                  answer=AnswerSpan(text=quote, doc_id=doc, start=start, end=start + len(quote))
                  if quote is not None else None,
                  confidence=0.9 if quote is not None else 0.1, citations=[cite])


@dataclass
class Reply:
    answer: Answer
    conversation: Conversation


@dataclass
class Manifest:
    """The few fields of an ``IndexManifest`` the chat reads."""

    documents: dict[str, object]
    generation: int = 1
    chunk_count: int = 3
    corpus_dir: str = "corpus"


class FakeSession:
    """An open index answering from ``answers`` (question → quote)."""

    def __init__(self, answers: dict[str, str], generation: int = 1,
                 documents: dict[str, str] | None = None) -> None:
        self.answers = answers
        self.texts = documents or {DOC: TEXT}
        self.manifest = Manifest(dict.fromkeys(self.texts), generation)
        self.generation = generation
        self.asked: list[tuple[str, Conversation | None, frozenset[str] | None]] = []
        self.closed = False
        self.fail: AssistantError | Exception | None = None

    def ask(self, question: str, conversation: Conversation | None = None, *,
            documents: frozenset[str] | None = None) -> Reply:
        assert not self.closed, "asked a closed session"
        self.asked.append((question, conversation, documents))
        if self.fail is not None:
            raise self.fail
        conversation = conversation or Conversation()
        resolved = None
        if question.startswith("Which of them") and conversation.turns:
            resolved = f"{question} ({conversation.turns[-1].question})"
        quote = self.answers.get(resolved or question) or self.answers.get(question)
        turn = Turn(question=question, subject=(), asked_for_names=False, names=(),
                    answer_key=None)
        after = Conversation(id=conversation.id, turns=(*conversation.turns, turn)) \
            if quote is not None else conversation
        return Reply(answer(question, quote, resolved=resolved, scope=documents), after)

    def ask_each(self, question: str, documents: frozenset[str] | None = None
                 ) -> list[Answer]:
        quote = self.answers.get(question)
        return [] if quote is None else [answer(question, quote, doc=d, text=t)
                                         for d, t in self.texts.items()
                                         if quote in t and (documents is None or d in documents)]

    def document(self, doc_id: str) -> DocumentView:
        text = self.texts[doc_id]
        return DocumentView(doc_id=doc_id, title="Briefing", text=text,
                            sections=[Section(title="Key points", start=0, end=len(text))])

    def close(self) -> None:
        self.closed = True


class FakeBackend:
    """Opens generation 1, each rebuild the next; ``changed``: what a corpus scan finds."""

    def __init__(self, answers: dict[str, str], fail: AssistantError | None = None) -> None:
        self.answers = answers
        self.sessions: list[FakeSession] = []
        self.fail = fail
        self.changed: list[str] = []
        self.looks: tuple[object, ...] = ()
        self.progress: list[tuple[str, int, int]] = [("scan", 0, 0), ("embed", 0, 40),
                                                      ("embed", 40, 40)]
        self.on_step: Callable[[int], object] = lambda n: None
        """Called after each progress report (the user acting during a build)."""
        self.documents: dict[str, str] | None = None

    def _open(self, progress: Callable[[str, int, int], None]) -> IndexOutcome:
        for n, step in enumerate(self.progress):
            progress(*step)
            self.on_step(n)
        if self.fail is not None:
            return IndexOutcome(error=self.fail)
        session = FakeSession(self.answers, generation=len(self.sessions) + 1,
                              documents=self.documents)
        self.sessions.append(session)
        return IndexOutcome(session=session)  # a FakeSession: what the chat needs of one

    def load(self, settings: Settings, progress: Callable[[str, int, int], None]
             ) -> IndexOutcome:
        return self._open(progress)

    def rebuild(self, settings: Settings, progress: Callable[[str, int, int], None],
                full: bool = False) -> IndexOutcome:
        return self._open(progress)

    def changes(self, settings: Settings, manifest: Any) -> tuple[list[str], tuple[object, ...]]:
        return list(self.changed), self.looks


@dataclass
class ManualRunner:
    """Holds jobs until ``finish`` runs them (in their thread's stead) and hands the result
    back, as the app's worker would."""

    jobs: list[Job[Any]] = field(default_factory=list)

    def start(self, job: Job[Any]) -> None:
        self.jobs.append(job)

    def deliver(self, callback: Callable[[], None]) -> None:
        callback()

    def kinds(self) -> list[str]:
        return [j.kind for j in self.jobs]

    def finish(self, kind: str | None = None) -> None:
        """Run the first job held (of ``kind``) and hand its result back."""
        job = next(j for j in self.jobs if kind is None or j.kind == kind)
        self.jobs.remove(job)
        job.done(job.run())

    def finish_all(self) -> None:
        while self.jobs:
            self.finish()


class Chat:
    """A controller on a fake backend, its events recorded."""

    def __init__(self, tmp_path: Path, answers: dict[str, str] | None = None,
                 fail: AssistantError | None = None, watch: bool = False) -> None:
        self.events: list[ChatEvent] = []
        self.runner = ManualRunner()
        self.backend = FakeBackend(answers if answers is not None else {}, fail)
        self.now = 0.0
        self.controller = ChatController(
            Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                     watch=watch),
            self.events.append, self.runner, backend=self.backend,
            conversations_dir=tmp_path / "conversations", clock=lambda: self.now)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def notices(self) -> list[str]:
        return [e.text for e in self.of(Notice)]

    def status(self) -> Status:
        return self.of(Status)[-1]

    def opened(self) -> ChatController:
        """The controller with its index open (nothing else pending)."""
        self.controller.start()
        self.runner.finish("index")
        return self.controller
