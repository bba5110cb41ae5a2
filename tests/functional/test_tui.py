"""The Textual chat, driven by Pilot on the real model and real indexes.

Functional tests run the whole app (``create_app``) headless at 120x40: ask and read the
cited answer inside its passage, follow up, open a source, export, copy, build an index in
the UI, survive a document made of markup and escape sequences, and show every index error
as a card that says what to do. What the chat does behind the screen (the queue, a rebuild
while answering, saving, exports) is tested on its controller, without Textual:
tests/unit/test_chat_controller*.py. Unit tests cover
the pure parts (passages, history). pytest-asyncio is not installed: each test runs its
coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.pilot import ask, run, settle
from rich.segment import Segment
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static

from assistant.build import build_index
from assistant.chat.history import InputHistory
from assistant.chat.passage import passage_around
from assistant.models import Section
from assistant.settings import Settings
from assistant.tui.app import BriefingApp, create_app
from assistant.tui.passage import highlighted
from assistant.tui.screens.document import DocumentScreen
from assistant.tui.screens.help import HelpScreen
from assistant.tui.widgets.conversation import (
    QUOTE_STYLE,
    AnswerCard,
    CitationLine,
    MessageCard,
    PassageView,
    PendingCard,
    QuestionCard,
)
from assistant.tui.widgets.question_input import QuestionInput
from assistant.tui.widgets.side_panel import SidePanel
from assistant.tui.widgets.status_line import StatusLine

SIZE = (120, 40)
VENDORS = "Huawei, Baidu, Cambricon, Biren, MetaX"
RACK_SCALE = "Huawei and Baidu are deploying rack-scale systems"
QUOTE_BG = QUOTE_STYLE.split(" on ")[1]

# ---- helpers -------------------------------------------------------------------------------


def lines_of(widget: Widget) -> list[list[Segment]]:
    """The widget's own rendered lines (what the terminal shows), as segments."""
    width, height = widget.outer_size
    return [list(strip) for strip in widget.render_lines(Region(0, 0, width, height))]


def text_of(widget: Widget) -> str:
    """The rendered text of a widget and of every widget inside it that draws its own
    content, line by line, without the border characters."""
    parts = [w for w in [widget, *widget.query("*")] if not w.children]
    text = "\n".join("".join(seg.text for seg in line).rstrip()
                     for part in parts for line in lines_of(part))
    return re.sub(r"[│╭╮╰╯─]", " ", text)


def flat(text: str) -> str:
    return " ".join(text.split())


def highlighted_text(widget: Widget) -> str:
    """The characters drawn with the quote's highlight."""
    def quoted(seg: Segment) -> bool:
        bg = seg.style.bgcolor if seg.style is not None else None
        return bg is not None and bg.triplet is not None and bg.triplet.hex == QUOTE_BG

    return flat(" ".join("".join(seg.text for seg in line if quoted(seg))
                         for line in lines_of(widget)))


def make_app(tmp_path: Path, corpus: Path, index: Path, **settings: Any) -> BriefingApp:
    return create_app(Settings(corpus_dir=corpus, index_dir=index, **settings),
                      history_file=tmp_path / "history")


@pytest.fixture(autouse=True)
def exports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports and copies made without a clipboard tool (``clipboard.txt``) go to the test's
    folder, never into the checkout."""
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(tmp_path / "exports"))


@pytest.fixture()
def briefing(briefing_index: Path, tmp_path: Path) -> Callable[[], BriefingApp]:
    """A factory of apps on the session's briefing index (read-only)."""
    corpus = briefing_index.parent / "corpus"
    return lambda: make_app(tmp_path, corpus, briefing_index)


# ---- the conversation ----------------------------------------------------------------------


def test_ask_follow_up_and_open_the_source(briefing: Callable[[], BriefingApp]) -> None:
    """The answer is quoted inside its passage with numbered citations; a follow-up is
    understood in context; Ctrl+O and the number keys open the document at the quote."""

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.chat.session is not None
            await ask(pilot, "Which Chinese vendors are mentioned?")
            card = app.query(AnswerCard).last()
            assert not card.answer.abstained
            passage = card.query_one(PassageView)
            assert VENDORS in highlighted_text(passage)
            # the passage shows context beyond the quote, and the quote is only part of it
            assert len(flat(text_of(passage))) > len(highlighted_text(passage)) + 40
            cites = list(card.query(CitationLine))
            assert len(cites) >= 2
            label = flat(text_of(cites[0]))
            assert label.startswith("[1] nvidia-h200-china.txt")
            assert "confidence " in str(card.border_subtitle) and "%" in str(card.border_subtitle)

            await ask(pilot, "Which of them are deploying rack-scale systems?")
            follow = app.query(AnswerCard).last()
            assert follow is not card
            assert RACK_SCALE in highlighted_text(follow.query_one(PassageView))
            assert follow.answer.resolved_question
            assert "understood as" in text_of(app.query(QuestionCard).last())

            await pilot.press("ctrl+o")
            await settle(pilot)  # a document is read in a worker
            screen = app.screen
            assert isinstance(screen, DocumentScreen)
            quote = screen.query_one("#doc-quote", Static)
            assert RACK_SCALE in highlighted_text(quote)
            assert "Letting Nvidia sell H200s" in text_of(screen.query_one("#doc-header"))
            body = screen.query_one("#doc-body")
            assert body.scroll_offset.y <= quote.virtual_region.y  # the quote is in view
            assert quote.virtual_region.bottom <= body.scroll_offset.y + body.size.height + 1
            await pilot.press("y")
            assert RACK_SCALE in app.clipboard
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, DocumentScreen)

            # keys: Escape moves to the sources, 2 opens the second one
            await pilot.press("escape")
            assert isinstance(app.focused, CitationLine)
            await pilot.press("2")
            await settle(pilot)  # a document is read in a worker
            assert isinstance(app.screen, DocumentScreen)
            second = follow.answer.citations[1]
            assert app.screen.quote == (second.start, second.end)
            await pilot.press("escape")
            await pilot.pause()
            # a click on a citation opens it too
            await pilot.click(follow.query(CitationLine).first())
            await settle(pilot)  # a document is read in a worker
            assert isinstance(app.screen, DocumentScreen)

    run(go)


@pytest.mark.slow
def test_typing_reaches_the_question_box_wherever_focus_is(
        briefing: Callable[[], BriefingApp]) -> None:
    """Issue 14, item 2: after a document (Esc) or from a source or the document list,
    printable keys go to the question box; Enter does not re-open the document; Tab cycles
    question box → latest answer's sources → document list, not through every citation;
    1–9 work with the conversation in focus."""

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            box = app.query_one(QuestionInput)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await ask(pilot, "What revenue share does the US get?")
            await ask(pilot, "What does Beijing want?")
            latest = app.query(AnswerCard).last()
            # Tab: three stops, whatever the number of answers and citations
            assert app.focused is box
            await pilot.press("tab")
            assert app.focused is latest.query(CitationLine).first()
            await pilot.press("tab")
            assert app.focused is app.query_one(SidePanel).query_one(OptionList)
            await pilot.press("tab")
            assert app.focused is box
            await pilot.press("shift+tab")
            assert isinstance(app.focused, OptionList)
            # ↑ from the latest answer's first source reaches the previous answer's sources
            await pilot.press("shift+tab")
            await pilot.press("up")
            assert isinstance(app.focused, CitationLine)
            assert app.focused.citation in app.query(AnswerCard)[1].answer.citations
            # a citation opened, then Esc: focus is back in the question box
            await pilot.press("enter")
            await settle(pilot)  # a document is read in a worker
            assert isinstance(app.screen, DocumentScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert app.focused is box
            await pilot.press("enter")  # an empty question: nothing re-opens
            await pilot.pause()
            assert not isinstance(app.screen, DocumentScreen)
            # typed on a source: the keys go to the question box (y and digits keep theirs)
            latest.query(CitationLine).first().focus()
            await pilot.press("w", "h", "o", "space", "s")
            assert app.focused is box and box.value == "who s"
            box.value = ""
            # from the document list: open one, come back, type
            docs = app.query_one(SidePanel).query_one(OptionList)
            docs.focus()
            await pilot.press("enter")
            await settle(pilot)  # a document is read in a worker
            assert isinstance(app.screen, DocumentScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert app.focused is box
            docs.focus()
            await pilot.press("a", "b")
            assert app.focused is box and box.value == "ab"
            # 1–9 with the conversation itself in focus open the latest answer's sources
            app.conversation_view.focus()
            await pilot.press("2")
            await settle(pilot)  # a document is read in a worker
            assert isinstance(app.screen, DocumentScreen)
            second = latest.answer.citations[1]
            assert app.screen.quote == (second.start, second.end)

    run(go)


def test_pasted_escape_sequences_are_cleaned_from_the_question(
        briefing: Callable[[], BriefingApp]) -> None:
    """Issue 14, item 3: a question pasted with ANSI colours (and over two lines) arrives
    as its words, in order; nothing of the escapes reaches the card, the history or the
    next follow-up's context."""
    from textual import events

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            box = app.query_one(QuestionInput)
            box.focus()
            await pilot.press("W", "h", "i", "c", "h")
            box.post_message(events.Paste(" \x1b[31mChinese\x1b[0m vendors\nare mentioned?"))
            await pilot.pause()
            assert box.value == "Which Chinese vendors are mentioned?"
            assert box.cursor_position == len(box.value)
            box.value = "Who is \x1b[1;31mmentioned\x1b[0m?\x07"  # set by other means
            await pilot.press("enter")
            await settle(pilot)
            asked = flat(text_of(app.query(QuestionCard).last()))
            assert asked.startswith("› Who is mentioned?"), asked
            assert app.history.previous("") == "Who is mentioned?"
            answer = app.query(AnswerCard).last().answer
            assert answer.question == "Who is mentioned?"
            await ask(pilot, "Which of them are deploying rack-scale systems?")
            follow = app.query(AnswerCard).last().answer
            for text in (follow.resolved_question or "", follow.question):
                assert "31m" not in text and "\x1b" not in text and "x1b" not in text

    run(go)


def test_abstention_looks_different(briefing: Callable[[], BriefingApp]) -> None:
    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "How do I bake sourdough bread?")
            card = app.query(AnswerCard).last()
            assert card.answer.abstained and card.has_class("abstained")
            assert card.border_title == "Not covered"
            shown = flat(text_of(card))
            assert "does not cover this" in shown
            assert "these do not answer the question" in shown
            assert not card.query(PassageView)  # no passage pretends to answer
            assert all(not c.citation.is_answer for c in card.query(CitationLine))
            # no confidence figure on an abstention, and not the green "ready" mark
            assert not card.border_subtitle
            assert app.query_one(StatusLine).kind == "warning"
            assert "0." not in shown.split("Closest passages")[0]
            # a document chosen in the side panel opens at its top
            app.query_one("#documents").focus()
            await pilot.press("enter")
            await settle(pilot)  # a document is read in a worker
            assert isinstance(app.screen, DocumentScreen) and app.screen.quote is None
            assert "Letting Nvidia sell H200s" in text_of(app.screen.query_one("#doc-text"))

    run(go)


@pytest.mark.slow
def test_citations_read_as_places_and_why_shows_the_scores(tmp_path: Path,
                                                         briefing_index: Path) -> None:
    """Issue 14, item 6: a source names its file (BUGS.MD is not bugs.md) and where it is
    (section, line), not "characters a–b · score x"; F2 shows the scores and offsets; the
    excerpt wraps instead of being cut at one line, even in a wide window."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    briefing = briefing_index.parent / "corpus" / "nvidia-h200-china.txt"
    shutil.copy2(briefing, corpus / "nvidia-h200-china.txt")
    (corpus / "BUGS.MD").write_text("# Known bugs\n\nThe H200 export licence form crashes "
                                    "when the vendor list is long.\n")
    (corpus / "bugs.md").write_text("# Fixed bugs\n\nThe H200 export licence form no longer "
                                    "loses the vendor list.\n")

    async def go() -> None:
        app = make_app(tmp_path, corpus, tmp_path / "index")
        async with app.run_test(size=(200, 50)) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            card = app.query(AnswerCard).last()
            cites = list(card.query(CitationLine))
            labels = [text_of(c).splitlines()[0].strip() for c in cites]
            assert labels[0].startswith("[1] nvidia-h200-china.txt · "), labels
            assert all("line " in label for label in labels), labels
            assert not any("score" in label or "characters" in label for label in labels)
            assert "score " not in text_of(cites[0])
            await ask(pilot, "What happens to the H200 export licence form?")
            names = {c.citation.doc_id for c in app.query(AnswerCard).last().query(
                CitationLine)}
            assert {"BUGS.MD", "bugs.md"} <= names
            shown = flat(text_of(app.query(AnswerCard).last()))
            assert "BUGS.MD" in shown and "bugs.md" in shown
            # a long excerpt is shown whole (wrapped), not cut with an ellipsis
            long = next(c for c in card.query(CitationLine) if c.show_quote
                        and len(c.citation.quote) > 150)
            quote = flat(text_of(long))
            assert " ".join(long.citation.quote.split()) in quote, quote
            await pilot.press("f2")
            await pilot.pause()
            assert app.conversation_view.has_class("-why")
            why = text_of(cites[0]).splitlines()[-1].strip()
            assert why.startswith("score "), why
            assert f"characters {cites[0].citation.start}" in why

    run(go)


@pytest.mark.slow
def test_small_terminals_keep_the_answer_readable(briefing: Callable[[], BriefingApp]) -> None:
    """Issue 14, item 5: at 80 columns the side panel steps aside (Ctrl+B shows it, narrow);
    at 50 columns an answer still shows its words, not "…"; a resize keeps the message that
    was in view."""

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            side = app.query_one(SidePanel)
            assert not side.display  # the answers get the width
            await pilot.press("ctrl+b")
            await pilot.pause()
            assert side.display and side.size.width <= 26
            await pilot.press("ctrl+b")
            await pilot.pause()
            assert not side.display
            assert app.preferences.side_panel  # the wide layout's choice is unchanged
            for q in ("Which Chinese vendors are mentioned?", "What does Beijing want?",
                      "What revenue share does the US get from H200 sales?"):
                await ask(pilot, q)
            await pilot.resize_terminal(50, 24)
            await pilot.pause()
            card = app.query(AnswerCard).last()
            passage = flat(text_of(card.query_one(PassageView)))
            assert len(passage) > 60 and "25%" in passage, passage
            label = flat(text_of(card.query(CitationLine).first()))
            assert label.startswith("[1] nvidia-h200-china.txt"), label
            # bring the second question to the top, then resize: it stays in view
            view = app.conversation_view
            second = app.query(QuestionCard)[1]
            view.scroll_to_widget(second, top=True, animate=False)
            await pilot.pause()
            assert abs(view.scroll_y - second.virtual_region.y) <= 1
            for size in ((120, 40), (60, 20), (80, 24)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                await pilot.pause()
                top, bottom = view.scroll_y, view.scroll_y + view.size.height
                region = second.virtual_region
                assert top - 1 <= region.y < bottom, (size, top, region)

    run(go)


@pytest.mark.slow
def test_document_viewer_marks_pages_styles_headings_and_searches(tmp_path: Path) -> None:
    """Issue 14, items 7 and 10: a PDF opens with a mark at each page and its headings
    styled; / searches the text, n / N walk the matches, ] jumps to the next page."""
    from test_ingest import make_pdf

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pages = [[f"Chapter 3: Utilities {n}", head, f"The {head.lower()} plan covers the "
              f"building in {n} parts.", "Further lines follow here.",
              *[f"Note {k} on page {n} says little." for k in range(30)], str(n)]
             for n, head in enumerate(["Parking", "Lighting", "Heating", "Water"], start=4)]
    (corpus / "guide.pdf").write_bytes(make_pdf(pages))

    async def go() -> None:
        app = make_app(tmp_path, corpus, tmp_path / "index")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.query_one(SidePanel).query_one(OptionList).focus()
            await pilot.press("enter")
            await settle(pilot)  # a document is read in a worker
            screen = app.screen
            assert isinstance(screen, DocumentScreen)
            marks = [flat(text_of(w)) for w in screen.query(".page-mark")]
            assert marks == ["page 1", "page 2", "page 3", "page 4"]
            body_text = text_of(screen.query_one("#doc-body"))
            assert "Chapter 3" not in body_text and "Lighting" in body_text
            styled = [seg.text for w in screen.query("#doc-body Static") for line in
                      lines_of(w) for seg in line if seg.style and seg.style.bold
                      and seg.style.underline]
            assert "Parking" in "".join(styled)
            await pilot.press("slash")
            await pilot.pause()
            await pilot.press(*"plan", "enter")
            await pilot.pause()
            assert screen.matches and len(screen.matches) == 4
            assert "match 1 of 4" in flat(text_of(screen.query_one("#doc-header")))
            assert "plan" in flat(text_of(screen.query_one("#doc-match")))
            await pilot.press("n")
            await pilot.pause()
            assert "match 2 of 4" in flat(text_of(screen.query_one("#doc-header")))
            await pilot.press("N", "N")
            await pilot.pause()
            assert "match 4 of 4" in flat(text_of(screen.query_one("#doc-header")))
            body = screen.query_one("#doc-body")
            body.scroll_home(animate=False)
            await pilot.pause()
            await pilot.press("right_square_bracket")
            await pilot.pause()
            second = list(screen.query(".page-mark"))[1]
            assert abs(body.scroll_y - second.virtual_region.y) <= 1
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, DocumentScreen)

    run(go)


@pytest.mark.slow
def test_export_as_a_chosen_path_and_json(briefing: Callable[[], BriefingApp],
                                          tmp_path: Path) -> None:
    """Issue 14, item 10: Ctrl+E asks where to write (Esc cancels) and writes there; what a
    .json or .md export holds is tested on the controller."""
    import json

    target = tmp_path / "chosen" / "deep" / "chat.json"

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await pilot.press("ctrl+e")
            await pilot.pause()
            box = app.screen.query_one("#export-path", Input)
            assert box.value.endswith(".md")
            await pilot.press("escape")
            await pilot.pause()
            assert not target.exists()
            await pilot.press("ctrl+e")
            await pilot.pause()
            app.screen.query_one("#export-path", Input).value = str(target)
            await pilot.press("enter")
            await pilot.pause()
            data = json.loads(target.read_text(encoding="utf-8"))
            assert [a["question"] for a in data["answers"]] == [
                "Which Chinese vendors are mentioned?"]

    run(go)


@pytest.mark.slow
def test_ctrl_s_exports_and_ctrl_y_copies_the_latest_answer(
        briefing: Callable[[], BriefingApp], tmp_path: Path) -> None:
    """What the export holds is tested on the controller
    (tests/unit/test_chat_controller_conversations.py); here, the keys."""
    out = tmp_path / "exports"

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("ctrl+s")  # nothing to export yet: a warning, no file
            assert not out.exists()
            await ask(pilot, "Which Chinese vendors are mentioned?")
            # a follow-up right after an answered turn (an abstained one lends no context)
            await ask(pilot, "Which of them are deploying rack-scale systems?")
            await pilot.press("ctrl+y")
            assert RACK_SCALE in app.clipboard and " line " in app.clipboard
            await ask(pilot, "How do I bake sourdough bread?")
            await pilot.press("ctrl+y")
            assert app.clipboard.startswith("How do I bake sourdough bread?")
            await pilot.press("ctrl+s")
            await pilot.pause()

    run(go)
    md = [f.read_text(encoding="utf-8") for f in out.glob("conversation-*.md")]
    assert len(md) == 1 and md[0].count("### ") == 3


@pytest.mark.slow
def test_command_palette_runs_the_chat_actions(briefing: Callable[[], BriefingApp],
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(tmp_path / "exports"))

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"New conversation", "Rebuild index", "Export conversation", "Copy answer",
                    "Clear question history", "Help", "Theme"} <= titles
            await ask(pilot, "Which Chinese vendors are mentioned?")
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert "Copy citation [2]" in titles
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"Export conversation")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert list((tmp_path / "exports").glob("conversation-*.md"))
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("ctrl+n")  # new conversation: the chat is cleared
            await pilot.pause()
            assert not app.query(AnswerCard) and not app.chat.answers
            await ask(pilot, "Which of them are deploying rack-scale systems?")
            assert app.query(AnswerCard).last().answer.resolved_question is None

    run(go)


@pytest.mark.slow
def test_history_and_preferences_are_kept_across_runs(briefing: Callable[[], BriefingApp],
                                                   tmp_path: Path) -> None:
    async def first() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await ask(pilot, "How do I bake sourdough bread?")
            app.theme = "gruvbox"
            await pilot.press("ctrl+b")
            assert not app.query_one(SidePanel).display

    async def second() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.theme == "gruvbox" and not app.query_one(SidePanel).display
            box = app.query_one(QuestionInput)
            box.value = "draft"
            await pilot.press("up")
            assert box.value == "How do I bake sourdough bread?"
            await pilot.press("up")
            assert box.value == "Which Chinese vendors are mentioned?"
            await pilot.press("down", "down")
            assert box.value == "draft"
            app.action_clear_history()
            box.value = ""
            await pilot.press("up")
            assert box.value == ""

    run(first)
    assert len((tmp_path / "history").read_text().splitlines()) == 2
    run(second)
    assert (tmp_path / "history").read_text() == ""


# ---- the index: building, rebuilding, errors -----------------------------------------------


@pytest.mark.slow
def test_empty_corpus_and_missing_index_show_what_to_do(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.is_running and app.chat.session is None
            card = app.query_one(MessageCard)
            assert card.border_title == "Corpus"
            shown = flat(text_of(card))
            assert "has no .txt, .md, .html or .pdf documents" in shown
            assert "press Ctrl+R to build the index" in shown
            assert "Traceback" not in shown
            assert app.query_one(StatusLine).kind == "error"
            # a question waits; once documents are added, Ctrl+R builds and answers it
            await ask(pilot, "Which Chinese vendors are mentioned?")
            assert "Waiting for a usable index" in text_of(app.query_one(PendingCard))
            shutil.copy(Path(__file__).resolve().parents[2] / "corpus" / "nvidia-h200-china.txt",
                        corpus)
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert VENDORS in highlighted_text(app.query(PassageView).last())

    run(go)


def test_corrupt_index_with_empty_corpus(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (index / "gen-000001").mkdir(parents=True)
    (index / "gen-000001" / "manifest.json").write_text("{not json", encoding="utf-8")
    (index / "CURRENT").write_text("gen-000001\n", encoding="utf-8")

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.is_running and app.chat.session is None
            shown = flat(text_of(app.query_one(MessageCard)))
            assert "has no .txt" in shown
            assert "Also:" in shown and "not valid JSON" in shown
            await pilot.press("ctrl+o")  # nothing to open: a warning, not a crash
            await pilot.press("ctrl+y", "ctrl+s")
            assert app.is_running

    run(go)


def test_failed_model_load_is_shown(workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = workspace

    async def go() -> None:
        app = make_app(tmp_path, corpus, index, model_path=tmp_path / "no-such-model")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.is_running and app.chat.session is None
            card = app.query_one(MessageCard)
            assert card.border_title == "Embedding model"
            assert "ASSISTANT_MODEL_PATH" in flat(text_of(card))

    run(go)


# ---- safety: markup, escapes and control characters are shown, never obeyed ----------------

HOSTILE = ("[bold red]Flux[/] manual [@click=app.quit]quit[/]\n"
           "Operating notes\n"
           "The flux capacitor needs [bold red]1.21 gigawatts[/] of power "
           "[@click=app.quit]click me[/] before \x1b[31mred\x1b[0m time travel "
           "\x1b]52;c;aGk=\x07 works [link=https://example.com]link[/link] \\[escaped].\n"
           "A second line with a stray [/] closing tag and [on red]colour[/on red].\n")


@pytest.mark.slow
def test_markup_and_escape_sequences_are_shown_literally(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    build_index(Settings(corpus_dir=corpus, index_dir=index))

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            question = "[bold]How many gigawatts[/bold] does the flux capacitor need?"
            await ask(pilot, question)
            assert app.is_running
            assert question in text_of(app.query(QuestionCard).last())
            card = app.query(AnswerCard).last()
            assert not card.answer.abstained
            quote = highlighted_text(card.query_one(PassageView))
            assert "[bold red]1.21 gigawatts[/]" in quote
            assert "[@click=app.quit]click me[/]" in quote
            assert "␛[31mred␛[0m" in quote  # the escape made visible, not sent
            everything = [seg for w in app.screen.query(Static) for line in lines_of(w)
                          for seg in line]
            assert not any("\x1b" in seg.text or "\x07" in seg.text for seg in everything)
            assert not any(seg.style and seg.style.meta.get("@click") for seg in everything)
            assert not any(seg.style and seg.style.link for seg in everything)
            await pilot.click(PassageView)  # a click on "[@click=app.quit]" opens the source
            await settle(pilot)  # a document is read in a worker
            assert app.is_running and isinstance(app.screen, DocumentScreen)
            doc = text_of(app.screen.query_one("#doc-body"))
            assert "[@click=app.quit]quit[/]" in doc and "[on red]colour[/on red]" in doc
            header = text_of(app.screen.query_one("#doc-header"))
            assert "[bold red]Flux[/] manual" in header
            await pilot.press("escape")
            await pilot.pause()
            assert "[bold red]Flux[/] manual" in text_of(app.query_one(SidePanel))
            await pilot.click(card.query(CitationLine).first(), offset=(20, 0))
            await pilot.pause()
            assert app.is_running

    run(go)


@pytest.mark.slow
def test_a_huge_document_opens_at_its_quote(briefing: Callable[[], BriefingApp]) -> None:
    """A 2 MB document is shown as a window around the quote, highlighted, at once."""
    from assistant.session import DocumentView

    line = "Filler sentence number {n} says nothing of interest at all.\n"
    before = "".join(line.format(n=n) for n in range(20_000))
    quote = "The needle: the quote in the middle of a haystack."
    text = before + quote + "\n" + before

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            started = time.monotonic()
            view = DocumentView(doc_id="hay.txt", title="Haystack", text=text, sections=[])
            await app.push_screen(DocumentScreen(view, len(before), len(before) + len(quote)))
            await pilot.pause()
            assert time.monotonic() - started < 10
            screen = app.screen
            assert highlighted_text(screen.query_one("#doc-quote", Static)) == quote
            clipped = [flat(text_of(w)) for w in screen.query(".clipped")]
            assert len(clipped) == 2 and "characters before this point" in clipped[0]
            body = screen.query_one("#doc-body")
            quote_box = screen.query_one("#doc-quote")
            assert body.scroll_offset.y <= quote_box.virtual_region.y
            assert quote_box.virtual_region.y < body.scroll_offset.y + body.size.height

    run(go)


# ---- pure parts ----------------------------------------------------------------------------

DOC = ("Title line\n"
       "Section A\n"
       "First line of A.\n"
       "Second line of A holds the quote: THE QUOTE. And more after it.\n"
       "Third line of A.\n"
       "Section B\n"
       "Other text.\n")


def test_passage_keeps_whole_lines_of_the_section() -> None:
    start = DOC.index("THE QUOTE")
    end = start + len("THE QUOTE.")
    a = DOC.index("Section A")
    section = Section(title="Section A", level=2, start=a, end=DOC.index("Section B"))
    p = passage_around("d", DOC, start, end, section)
    assert p.text == "First line of A.\nSecond line of A holds the quote: THE QUOTE. And " \
                     "more after it.\nThird line of A."
    assert DOC[p.start:p.end] == p.text and DOC[p.quote_start:p.quote_end] == "THE QUOTE."
    assert not p.cut_before and not p.cut_after
    small = passage_around("d", DOC, start, end, section, radius=12)
    assert small.text == "the quote: THE QUOTE. And more"
    assert small.cut_before and small.cut_after
    whole = passage_around("d", DOC, start, end, None, radius=10_000)
    assert whole.text == DOC.strip()


def test_highlighted_makes_control_characters_visible_without_shifting() -> None:
    text = "a\x1b[31mb QUOTE\x07 c"
    start = text.index("QUOTE")
    out = highlighted(text, start, start + len("QUOTE\x07"), "bold")
    assert out.plain == "a␛[31mb QUOTE␇ c"
    spans = [out.plain[s.start:s.end] for s in out.spans if s.style == "bold"]
    assert spans == ["QUOTE␇"]


def test_history_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "history"
    h = InputHistory(path, limit=3)
    for q in ["one", "two", "two", "multi\nline", "four"]:
        h.add(q)
    assert h.entries == ["two", "multi\nline", "four"]
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("{damaged\n")
    again = InputHistory(path, limit=3)
    assert again.entries == ["two", "multi\nline", "four"]
    assert again.previous("typing") == "four"
    assert again.next() == "typing"
    again.clear()
    assert InputHistory(path).entries == []
    blocked = tmp_path / "file"
    blocked.write_text("x")
    broken = InputHistory(blocked / "history")
    broken.add("q")
    assert broken.entries == ["q"] and broken.problem


# ---- the core never imports the UI ---------------------------------------------------------


def test_core_imports_without_textual() -> None:
    code = ("import sys, assistant.qa.pipeline, assistant.build, assistant.cli, assistant.batch, "
            "assistant.render; assert 'textual' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith('textual'))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_the_ui_starts_without_the_engine() -> None:
    """The chat module paints before numpy, FAISS or onnxruntime are imported."""
    code = ("import sys, assistant.tui.app; heavy = [m for m in ('numpy', 'faiss', "
            "'onnxruntime', 'torch', 'sentence_transformers', 'assistant.qa.pipeline') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_place_of_names_section_page_and_line() -> None:
    from assistant.chat.passage import place_of

    text = "Title\nIntro line.\nSummary\nFirst.\nSecond line here.\n"
    sections = [Section(title="Summary", start=18, end=len(text))]
    at = text.index("Second")
    assert place_of(text, sections, at, title="Title") == "Summary · line 5"
    assert place_of(text, [], 0) == "line 1"
    pdf = "Page one text.\n\nChapter 3\nUtilities are here.\nMore.\n\n"
    pages = [Section(title="Page 1", start=0, end=16),
             Section(title="Page 2", start=16, end=len(pdf))]
    assert place_of(pdf, pages, pdf.index("Utilities")) == "page 2, line 2"
    heading = Section(title="Chapter 3", level=2, start=pdf.index("Chapter 3"), end=len(pdf))
    pages[1] = Section(title="Page 2", start=16, end=heading.start)
    assert place_of(pdf, [*pages, heading], pdf.index("More")) == "Chapter 3 · page 2, line 3"
