"""The chat as a newcomer meets it, round two (issue 27): quitting during a build, typing
and pasting wherever the focus is, small terminals, the quote without colour, exports.

Pilot drives the app headless on the real model and index; the quit test runs the real
``assistant chat`` in a pseudo-terminal, since what it checks is when the process ends.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.corpora import briefing_copies
from helpers.pilot import ask, run, settle
from textual import events
from textual.widget import Widget
from textual.widgets import OptionList

from assistant.chat.backend import CoreBackend
from assistant.settings import Settings
from assistant.tui.app import BriefingApp, create_app
from assistant.tui.widgets.conversation import AnswerCard, CitationLine, PassageView
from assistant.tui.widgets.question_input import QuestionInput

SIZE = (120, 36)


@pytest.fixture(autouse=True)
def exports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(tmp_path / "exports"))


@pytest.fixture()
def briefing(briefing_index: Path, tmp_path: Path) -> Callable[[], BriefingApp]:
    corpus = briefing_index.parent / "corpus"
    return lambda: create_app(Settings(corpus_dir=corpus, index_dir=briefing_index),
                              history_file=tmp_path / "history")


def _committed(staging_db: Path) -> int:
    if not staging_db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{staging_db}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    except sqlite3.Error:
        return 0


def _read(fd: int, seconds: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], seconds)
    if ready:
        with contextlib.suppress(OSError):  # the child has closed the terminal
            return os.read(fd, 65536)
    return b""


@pytest.mark.slow
def test_ctrl_q_during_a_build_quits_at_once_and_the_build_resumes(tmp_path: Path) -> None:
    """Item 1: Ctrl+Q during a long build ends the process within seconds (it used to keep
    embedding, the screen blank, until the build was done), says that the next start
    resumes, and the next build reuses what was committed."""
    corpus = briefing_copies(tmp_path / "corpus", 60)
    index = tmp_path / "index"
    (tmp_path / "none.toml").write_text("", encoding="utf-8")  # no settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(HF_HUB_OFFLINE="1", TERM="xterm-256color", XDG_DATA_HOME=str(tmp_path / "data"),
               ASSISTANT_CONFIG=str(tmp_path / "none.toml"), COLUMNS="80", LINES="24")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the chat, as a user starts it
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "assistant", "chat", "--corpus",
                                   str(corpus), "--index", str(index)], env)
    shown = b""
    try:
        deadline = time.monotonic() + 300
        while _committed(index / "staging" / "meta.sqlite") == 0:
            assert time.monotonic() < deadline, "the build did not start"
            assert os.waitpid(pid, os.WNOHANG)[0] == 0, shown.decode("utf-8", "replace")
            shown += _read(fd, 0.05)
        os.write(fd, b"\x11")  # Ctrl+Q
        pressed = time.monotonic()
        ended = None
        while ended is None and time.monotonic() - pressed < 120:
            shown += _read(fd, 0.05)
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                ended = time.monotonic() - pressed
        while chunk := _read(fd, 0.2):
            shown += chunk
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert ended is not None and ended < 5, f"the chat took {ended} s to quit"
    text = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]", "",
                           shown.decode("utf-8", "replace")).split())
    assert "Stopped building the index with" in text, text[-600:]
    assert "resumes from there" in text
    committed = _committed(index / "staging" / "meta.sqlite")
    assert committed > 0  # what was embedded is kept for the next build
    from helpers.fast_encoder import FastEncoder

    from assistant.build import build_index

    resumed = build_index(Settings(corpus_dir=corpus, index_dir=index), encoder=FastEncoder)
    assert resumed.chunks_reused > 0, resumed


def test_typing_and_pasting_on_the_document_list_reach_the_question_box(
        briefing: Callable[[], BriefingApp]) -> None:
    """Item 2: a fast burst of keys (sent before the app has handled the first) and a paste,
    with the document list focused, arrive whole in the question box; the o's in them are
    letters, not "ask only this document". o on the list with the box empty still is."""

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            box = app.query_one(QuestionInput)
            docs = app.query_one(OptionList)
            docs.focus()
            await pilot.pause()
            question = "Is anything expected to happen soon to Tokyo?"
            assert app._driver is not None
            for ch in question:  # all at once, as a terminal delivers a fast burst
                key = {" ": "space", "?": "question_mark"}.get(ch, ch)
                event = events.Key(key, ch)
                event.set_sender(app)
                app._driver.send_message(event)
            await pilot.pause(0.3)
            assert box.value == question
            assert app.chat.scope is None
            assert app.focused is box
            # a paste with the list focused
            box.value = ""
            docs.focus()
            await pilot.pause()
            app.post_message(events.Paste("Which vendors\nare mentioned?"))
            await pilot.pause()
            assert box.value == "Which vendors are mentioned?" and app.focused is box
            # o on the list with an empty box: ask only that document (the documented key)
            box.value = ""
            docs.focus()
            await pilot.press("o")
            assert app.chat.scope == frozenset({"nvidia-h200-china.txt"})
            assert box.value == ""
            await pilot.press("o")
            assert app.chat.scope is None

    run(go)


def test_exports_go_to_the_user_data_folder_not_the_working_folder(
        briefing: Callable[[], BriefingApp], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 5: without ASSISTANT_EXPORT_DIR, Ctrl+S and a copy without clipboard tool write
    into exports/ of the user's data folder (never the folder the chat was started from),
    and the notice shows the full path."""
    from helpers.pilot import spy_notes

    monkeypatch.delenv("ASSISTANT_EXPORT_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    started_in = tmp_path / "checkout"
    started_in.mkdir()
    monkeypatch.chdir(started_in)
    exports = tmp_path / "data" / "briefing-assistant" / "exports"

    async def go() -> None:
        app = briefing()
        app.which = lambda name: None  # no clipboard tool on this machine
        said = spy_notes(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await pilot.press("ctrl+s")
            await pilot.press("ctrl+y")
            await pilot.pause()
        written = sorted(p.name for p in exports.iterdir())
        assert len(written) == 2 and "clipboard.txt" in written, written
        assert list(started_in.iterdir()) == []
        export = next(p for p in exports.iterdir() if p.suffix == ".md")
        assert any(f"Saved the conversation to {export}" in s for s in said), said
        assert any(str(exports / "clipboard.txt") in s for s in said), said

    run(go)


QUESTIONS = ["Which Chinese vendors are mentioned?", "What does Beijing want?",
             "What revenue share does the US get from H200 sales?",
             "What will the weather be in Paris tomorrow?"]


def _visible(app: BriefingApp, widget: Widget) -> bool:
    view = app.conversation_view
    region = widget.virtual_region
    return region.y < view.scroll_y + view.size.height and region.bottom > view.scroll_y


def test_at_60x20_sources_end_visibly_and_the_status_keeps_its_figures(
        briefing: Callable[[], BriefingApp]) -> None:
    """Item 3: every source's excerpt ends with its closing quote mark (after "…" when cut),
    never mid-sentence with nothing to say so; the status line, cut to 60 columns, keeps its
    end ("0 of about 400"); F2 and a resize keep the latest answer in view."""
    from test_tui import flat, text_of

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=(60, 20)) as pilot:
            await settle(pilot)
            for q in QUESTIONS:
                await ask(pilot, q)
            for line in app.query(CitationLine):
                if line.show_quote:
                    shown = flat(text_of(line))
                    assert shown.endswith("”"), shown
            latest = app.query(AnswerCard).last()
            await pilot.press("f2")
            await pilot.pause()
            await pilot.pause()
            assert _visible(app, latest)
            for size in ((80, 24), (60, 20)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                await pilot.pause()
                assert _visible(app, latest), size
            status = app.status_line
            status.say("Building the index: embedding chunks, 0 of about 400", "busy")
            status.progress(0, 400)
            await pilot.pause()
            shown = flat(text_of(status.query_one("#status-text")))
            assert shown.endswith("0 of about 400"), shown
            assert shown.startswith("◌ …")

    run(go)


def test_the_quote_is_marked_without_colour_and_scrolled_into_view(
        briefing: Callable[[], BriefingApp]) -> None:
    """Item 4: the quote's lines carry a bar in the margin and the quote is underlined, which
    survive NO_COLOR; after an answer at 60x20 the quote's first line is in view."""
    from test_tui import lines_of

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=(60, 20)) as pilot:
            await settle(pilot)
            await ask(pilot, "What does Beijing want?")
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await pilot.pause()
            card = app.query(AnswerCard).last()
            passage = card.query_one(PassageView)
            lines = lines_of(passage)
            barred = [y for y, line in enumerate(lines) if line and line[0].text == "▌"]
            underlined = [y for y, line in enumerate(lines)
                          if any(s.style is not None and s.style.underline and s.text.strip()
                                 for s in line)]
            assert barred and barred == underlined, (barred, underlined)
            view = app.conversation_view
            first = card.virtual_region.y + passage.region.y - card.region.y + barred[0]
            assert view.scroll_y <= first < view.scroll_y + view.size.height

    run(go)


def test_a_step_of_unknown_length_shows_a_moving_bar_and_the_time_taken(
        briefing: Callable[[], BriefingApp]) -> None:
    """Item 6: the model's export (no known length) shows the seconds it has taken beside
    an indeterminate bar, not an empty "--%"."""
    from test_tui import flat, text_of

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            status = app.status_line
            status.say("Building the index: exporting the embedding model…", "busy")
            status.progress(0, None)
            await pilot.pause(2.2)
            shown = flat(text_of(status))
            assert "--%" not in shown, shown
            assert re.search(r"\b[12] s$", shown), shown
            status.progress(5, 10)
            await pilot.pause()
            assert "50%" in flat(text_of(status)) and not re.search(r" s$",
                                                                    flat(text_of(status)))

    run(go)


SLOW = 3.0
"""How long the slow session takes to load, answer and read a document."""


class SlowEngine:
    """A real session whose answers and document reads take ``SLOW`` seconds each."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def manifest(self) -> Any:
        return self.inner.manifest

    @property
    def generation(self) -> int:
        return int(self.inner.generation)

    def ask(self, question: str, conversation: Any = None, *,
            documents: frozenset[str] | None = None) -> Any:
        time.sleep(SLOW)
        return self.inner.ask(question, conversation, documents=documents)

    def ask_each(self, question: str, documents: frozenset[str] | None = None) -> Any:
        time.sleep(SLOW)
        return self.inner.ask_each(question, documents)

    def document(self, doc_id: str) -> Any:
        time.sleep(SLOW)
        return self.inner.document(doc_id)

    def close(self) -> None:
        self.inner.close()


class SlowBackend(CoreBackend):
    """The real backend, slowed down: a seam test of the UI thread, not of the engine."""

    def load(self, settings: Settings, progress: Any) -> Any:
        time.sleep(SLOW)
        outcome = super().load(settings, progress)
        outcome.session = SlowEngine(outcome.session)
        return outcome


@pytest.mark.slow  # waits out a deliberately slow index, answer and source: about 25 s
def test_no_key_waits_for_a_slow_index_or_model(briefing_index: Path, tmp_path: Path) -> None:
    """Must hold (issue 27): while the index loads, while a question is answered and while
    a source is read, every key is handled at once (each press well under the session's
    delay); the slow work lands when it is done."""
    from assistant.tui.screens.document import DocumentScreen

    corpus = briefing_index.parent / "corpus"

    async def timed(pilot: Any, *keys: str) -> float:
        start = time.monotonic()
        await pilot.press(*keys)
        return time.monotonic() - start

    async def go() -> None:
        app = create_app(Settings(corpus_dir=corpus, index_dir=briefing_index),
                         history_file=tmp_path / "history", backend=SlowBackend())
        async with app.run_test(size=SIZE) as pilot:
            presses = [await timed(pilot, "W", "h", "o")]  # while the index loads
            presses.append(await timed(pilot, "ctrl+b"))
            presses.append(await timed(pilot, "ctrl+b"))
            await settle(pilot)
            box = app.query_one(QuestionInput)
            box.value = "Which Chinese vendors are mentioned?"
            presses.append(await timed(pilot, "enter"))
            presses.append(await timed(pilot, "f2"))  # while it is answered
            presses.append(await timed(pilot, "f2"))
            await settle(pilot)
            presses.append(await timed(pilot, "ctrl+o"))  # while the source is read
            assert not isinstance(app.screen, DocumentScreen)
            presses.append(await timed(pilot, "f1"))
            presses.append(await timed(pilot, "escape"))
            await settle(pilot)
            assert isinstance(app.screen, DocumentScreen)  # opened once read
            await pilot.press("escape")
            presses.append(await timed(pilot, "f5"))  # asked again, fresh: queued
            presses.append(await timed(pilot, "ctrl+b"))
            await settle(pilot)
            each = {c.title: c for c in app.get_system_commands(app.screen)}[
                "What does each document say?"]
            start = time.monotonic()
            await each.callback()
            presses.append(time.monotonic() - start)
            presses.append(await timed(pilot, "ctrl+b"))  # while each document is asked
            assert app.chat.busy
            await settle(pilot)
            assert max(presses) < SLOW / 2, [f"{t:.2f}" for t in presses]

    run(go)
