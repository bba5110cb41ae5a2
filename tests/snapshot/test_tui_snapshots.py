"""Snapshot tests of the chat (pytest-textual-snapshot) at 100x32, cursor blink off.

The frames are made deterministic: the app runs in a temporary working directory on
relative paths (``corpus``, ``index``), the side panel's "built at" is pinned, and the
answer shown is a recorded one (the bundled briefing's sentences, located in the real
index), so that tuning the answer engine changes the Pilot tests' scores, not these
pictures. The passage, the highlighting and the document screen come from the real index.

Update after an intended change of the UI: ``pytest tests/snapshot/test_tui_snapshots.py
--snapshot-update``, then look at the SVGs in ``tests/snapshot/__snapshots__/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers.pilot import ask, settle
from textual.pilot import Pilot

from assistant.build import Progress, index_status
from assistant.chat.backend import CoreBackend
from assistant.models import Answer, AnswerSpan, Citation
from assistant.qa.conversation import Conversation
from assistant.qa.pipeline import Reply
from assistant.session import IndexOutcome, Session
from assistant.settings import Settings
from assistant.tui.app import BriefingApp, create_app
from assistant.tui.widgets.question_input import QuestionInput
from assistant.tui.widgets.side_panel import SidePanel

SIZE = (100, 32)
DOC = "nvidia-h200-china.txt"
RECORDED = [  # (section, quote, score) as answered for "Which Chinese vendors are mentioned?"
    ("Key Points", "Chinese vendors (Huawei, Baidu, Cambricon, Biren, MetaX) are rapidly "
     "improving accelerators and large rack systems to meet local demand.", 0.7458),
    ("Summary", "China has already accelerated domestic development — firms such as Huawei "
     "and Baidu are deploying rack-scale systems and new accelerators; other vendors like "
     "Biren and Cambricon are advancing quickly.", 0.6252),
    ("Summary", "Historical precedents and recent moves by Chinese regulators and companies "
     "show momentum toward self-sufficiency despite earlier reliance on Western chips.",
     0.5318),
]

Snap = Callable[..., bool]


class RecordedAnswerer:
    """Answers every question with the recorded citations, placed in the real text."""

    def __init__(self, text: str, title: str) -> None:
        self.text = text
        self.title = title

    def ask(self, question: str, conversation: Conversation | None = None, **_: Any) -> Reply:
        abstain = "weather" in question  # the recorded abstention, for the same passages
        cites = []
        for rank, (section, quote, score) in enumerate(RECORDED, start=1):
            start = self.text.index(quote)
            cites.append(Citation(rank=rank, doc_id=DOC, title=self.title, section=section,
                                  quote=quote, start=start, end=start + len(quote),
                                  score=score, why="recorded",
                                  is_answer=rank == 1 and not abstain))
        if abstain:
            return Reply(Answer(id="recorded", question=question, abstained=True,
                                outcome="not_covered",
                                message="The briefing does not cover this.", answer=None,
                                confidence=0.08, citations=cites),
                         conversation or Conversation())
        first = cites[0]
        answer = Answer(id="recorded", question=question, abstained=False, message=first.quote,
                        answer=AnswerSpan(text=first.quote, doc_id=DOC, start=first.start,
                                          end=first.end), confidence=0.9978, citations=cites)
        if "guess" in question:  # the recorded best guess
            answer.outcome, answer.confidence = "best_guess", 0.457
            answer.message = f"Best guess, not sure: {first.quote}"
        return Reply(answer, conversation or Conversation())


class RecordedSession(Session):
    """The real index and documents, with recorded answers: the snapshots do not depend on
    which sentence the ranking picks."""

    def ask(self, question: str, conversation: Conversation | None = None,
            top_k: int | None = None, documents: frozenset[str] | None = None) -> Reply:
        recorded = RecordedAnswerer(self.index.document_text(DOC),
                                    self.manifest.documents[DOC].title)
        return recorded.ask(question, conversation)


class RecordedBackend(CoreBackend):
    """The chat's real backend, opening a ``RecordedSession`` (``create_app(backend=...)``)."""

    def load(self, settings: Settings, progress: Progress) -> IndexOutcome:
        outcome = super().load(settings, progress)
        if outcome.session is not None:
            outcome.session = RecordedSession(outcome.session.index, outcome.session.answerer)
        return outcome


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    return tmp_path


@pytest.fixture()
def stable_app(briefing_index: Path, here: Path) -> BriefingApp:
    """The chat on a copy of the briefing index, at relative paths (mtimes kept: not stale)."""
    shutil.copytree(briefing_index.parent / "corpus", here / "corpus")
    shutil.copytree(briefing_index, here / "index")
    return create_app(Settings(corpus_dir=Path("corpus"), index_dir=Path("index")),
                      history_file=here / "history", backend=RecordedBackend())


async def ready(pilot: Pilot[None]) -> None:
    """Loaded, the volatile "built at" pinned, the recorded answerer in place, no blink."""
    app = pilot.app
    assert isinstance(app, BriefingApp)
    await settle(pilot)
    assert isinstance(app.chat.session, RecordedSession)
    status = index_status(app.settings)
    status.built_at = datetime(2025, 12, 10, 9, 30, tzinfo=UTC)
    app.query_one(SidePanel).show_status(status)
    app.query_one(QuestionInput).cursor_blink = False
    await pilot.pause()


async def answered(pilot: Pilot[None]) -> None:
    await ready(pilot)
    await ask(pilot, "Which Chinese vendors are mentioned?")


def test_snapshot_ready(snap_compare: Snap, stable_app: BriefingApp) -> None:
    assert snap_compare(stable_app, terminal_size=SIZE, run_before=ready)


def test_snapshot_answer(snap_compare: Snap, stable_app: BriefingApp) -> None:
    assert snap_compare(stable_app, terminal_size=SIZE, run_before=answered)


async def source_opened(pilot: Pilot[None]) -> None:
    await answered(pilot)
    await pilot.press("ctrl+o")
    await settle(pilot)  # the document is read in a worker


def test_snapshot_document(snap_compare: Snap, stable_app: BriefingApp) -> None:
    assert snap_compare(stable_app, terminal_size=SIZE, run_before=source_opened)


def test_snapshot_help(snap_compare: Snap, stable_app: BriefingApp) -> None:
    assert snap_compare(stable_app, terminal_size=SIZE, run_before=ready, press=["f1"])


def test_snapshot_empty_corpus_error(snap_compare: Snap, here: Path) -> None:
    (here / "corpus").mkdir()
    app = create_app(Settings(corpus_dir=Path("corpus"), index_dir=Path("index")),
                     history_file=here / "history")

    async def failed(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.query_one(QuestionInput).cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=failed)


def test_snapshot_answer_at_80x24(snap_compare: Snap, stable_app: BriefingApp) -> None:
    """The narrow layout (issue 14): the side panel steps aside, the answer gets the width."""
    assert snap_compare(stable_app, terminal_size=(80, 24), run_before=answered)


def test_snapshot_answer_at_50_columns(snap_compare: Snap, stable_app: BriefingApp) -> None:
    """50 columns: the answer and its sources still show their words, wrapped."""
    assert snap_compare(stable_app, terminal_size=(50, 30), run_before=answered)


async def answered_and_abstained(pilot: Pilot[None]) -> None:
    """A long answer (its passage, three sources), then an abstention (issue 27)."""
    await answered(pilot)
    await ask(pilot, "What will the weather be in Paris tomorrow?")


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 20)],
                         ids=["120x36", "80x24", "60x20"])
def test_snapshot_answer_then_abstention(snap_compare: Snap, stable_app: BriefingApp,
                                         size: tuple[int, int]) -> None:
    """Issue 27, item 3: at every size the sources end with their closing quote mark, the
    status line keeps its end, the latest card is in view."""
    assert snap_compare(stable_app, terminal_size=size, run_before=answered_and_abstained)


def test_snapshot_long_answer_at_60x20(snap_compare: Snap, stable_app: BriefingApp) -> None:
    """Issue 27, items 3 and 4: the quote's lines barred in the margin and in view."""
    assert snap_compare(stable_app, terminal_size=(60, 20), run_before=answered)


@pytest.fixture()
def no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")


def test_snapshot_answer_without_colour_at_80x24(snap_compare: Snap, no_color: None,
                                                 stable_app: BriefingApp) -> None:
    """Issue 27, item 4: with NO_COLOR the quote is still marked (a bar in the margin, and
    underlined), not only by its background."""
    assert snap_compare(stable_app, terminal_size=(80, 24), run_before=answered)


async def answered_and_guessed(pilot: Pilot[None]) -> None:
    """A long answer, then a best guess (the answer engine's third outcome)."""
    await answered(pilot)
    await ask(pilot, "Take a guess: what happens to the chips?")


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 20)],
                         ids=["120x36", "80x24", "60x20"])
def test_snapshot_best_guess(snap_compare: Snap, stable_app: BriefingApp,
                             size: tuple[int, int]) -> None:
    """Issue 27, must hold: a best guess is drawn apart from an answer (a dashed amber
    border titled "Best guess — not sure", an amber status line)."""
    assert snap_compare(stable_app, terminal_size=size, run_before=answered_and_guessed)
