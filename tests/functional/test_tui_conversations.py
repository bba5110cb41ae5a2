"""Saved conversations (issue 14, item 10): kept across restarts, listed with Ctrl+L and
resumed with their answers and their follow-up context; a damaged file is set aside, not
lost. Search in the conversation (Ctrl+F): next / previous match, "k of n", Esc closes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.pilot import spy_notes
from test_tui import (
    RACK_SCALE,
    SIZE,
    VENDORS,
    ask,
    highlighted_text,
    make_app,
    run,
    settle,
    text_of,
)
from textual.widgets import Input, OptionList, Static

from assistant.chat.conversations import ConversationStore
from assistant.tui.app import BriefingApp
from assistant.tui.screens.conversations import ConversationsScreen
from assistant.tui.widgets.conversation import AnswerCard, PassageView, QuestionCard
from assistant.tui.widgets.conversation_search import ConversationSearch
from assistant.tui.widgets.question_input import QuestionInput


@pytest.fixture(autouse=True)
def exports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(tmp_path / "exports"))


@pytest.fixture()
def briefing(briefing_index: Path, tmp_path: Path) -> Callable[[], BriefingApp]:
    corpus = briefing_index.parent / "corpus"
    return lambda: make_app(tmp_path, corpus, briefing_index)




@pytest.mark.slow
def test_conversations_are_saved_listed_and_resumed_across_restarts(
        briefing: Callable[[], BriefingApp], tmp_path: Path) -> None:
    saved_dir = tmp_path / "conversations"

    async def first() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await pilot.press("ctrl+n")  # a new conversation: the first one stays saved
            await pilot.pause()
            await ask(pilot, "What revenue share does the US get?")

    run(first)
    files = sorted(saved_dir.glob("*.json"))
    assert len(files) == 2
    assert not list(saved_dir.glob(".*.tmp"))  # written whole, then renamed

    async def second() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert not app.query(AnswerCard)  # a restart opens a fresh conversation
            await pilot.press("ctrl+l")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ConversationsScreen)
            options = screen.query_one(OptionList)
            shown = [str(options.get_option_at_index(i).prompt)
                     for i in range(options.option_count)]
            assert len(shown) == 2  # the latest first: its first question, date and turns
            assert shown[0].startswith("What revenue share does the US get?")
            assert shown[1].startswith("Which Chinese vendors are mentioned?")
            assert "1 question" in shown[1]
            await pilot.press("down", "enter")
            await pilot.pause()
            assert not isinstance(app.screen, ConversationsScreen)
            cards = list(app.query(AnswerCard))
            assert len(cards) == 1
            assert VENDORS in highlighted_text(cards[0].query_one(PassageView))
            assert [q.question for q in app.query(QuestionCard)] == [
                "Which Chinese vendors are mentioned?"]
            assert app.focused is app.query_one(QuestionInput)
            # a follow-up continues the resumed conversation's context
            await ask(pilot, "Which of them are deploying rack-scale systems?")
            follow = app.query(AnswerCard).last()
            assert follow.answer.resolved_question
            assert RACK_SCALE in highlighted_text(follow.query_one(PassageView))

    run(second)
    turns = {f.stem: [t["answer"]["question"] for t in
                      json.loads(f.read_text(encoding="utf-8"))["turns"]]
             for f in saved_dir.glob("*.json")}
    assert sorted(turns.values()) == [
        ["What revenue share does the US get?"],
        ["Which Chinese vendors are mentioned?",
         "Which of them are deploying rack-scale systems?"]]


def test_a_damaged_saved_conversation_is_set_aside_not_lost(
        briefing: Callable[[], BriefingApp], tmp_path: Path) -> None:
    saved_dir = tmp_path / "conversations"

    async def first() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")

    run(first)
    damaged = saved_dir / "0badc0ffee00.json"
    damaged.write_text('{"format": 1, "id": "0badc0ffee00", "turns": [', encoding="utf-8")

    async def second() -> None:
        app = briefing()
        said = spy_notes(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert isinstance(app.screen, ConversationsScreen)
            assert app.screen.query_one(OptionList).option_count == 1  # the good one
            notes = [s for s in said if "0badc0ffee00" in s]
            assert len(notes) == 1 and "set aside" in notes[0] and "\n" not in notes[0]

    run(second)
    assert not damaged.exists()
    aside = saved_dir / "0badc0ffee00.json.corrupt"
    assert aside.read_text(encoding="utf-8").startswith('{"format": 1')  # kept, as it was


def test_conversation_store_reports_a_failed_save(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from assistant.chat.conversations import SavedConversation
    from assistant.qa.conversation import Conversation

    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    store = ConversationStore(blocked / "conversations")
    when = datetime(2026, 1, 2, tzinfo=UTC)
    saved = SavedConversation(id="abc123", created=when, updated=when,
                              context=Conversation(id="abc123"))
    assert not store.save(saved)
    assert store.problem and "cannot save the conversation" in store.problem
    good = ConversationStore(tmp_path / "ok")
    assert good.save(saved) and good.load("abc123") == saved
    assert good.path_of("../escape") is None  # an id never becomes a path elsewhere


@pytest.mark.slow
def test_search_in_the_conversation(briefing: Callable[[], BriefingApp]) -> None:
    async def go() -> None:
        app = briefing()
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await ask(pilot, "What revenue share does the US get?")
            await ask(pilot, "How do I bake sourdough bread?")
            bar = app.query_one(ConversationSearch)
            assert not bar.display
            await pilot.press("ctrl+f")
            await pilot.pause()
            assert bar.display and app.focused is bar.box
            await pilot.press(*"Cambricon")
            await pilot.pause()
            count = bar.query_one("#search-count", Static)
            found = [c for c in app.conversation_view.children if c.has_class("-found")]
            assert len(found) == 1
            n = len(app._search_hits)
            assert n >= 2  # the vendors' answer, and the closest passages of others
            assert str(count.content) == f"{n} of {n}"  # the latest match first
            view = app.conversation_view
            await pilot.press("enter")  # next wraps round to the first
            await pilot.pause()
            assert str(count.content) == f"1 of {n}"
            first = next(c for c in view.children if c.has_class("-found"))
            assert "Cambricon" in first.search_text  # type: ignore[attr-defined]
            # scrolled to it: the card's top is in view
            assert view.scroll_y <= first.virtual_region.y < view.scroll_y + view.size.height
            await pilot.press("up")  # previous
            await pilot.pause()
            assert str(count.content) == f"{n} of {n}"
            bar.box.value = "no such words anywhere"
            await pilot.pause()
            assert str(count.content) == "no match"
            assert not view.query(".-found")
            await pilot.press("escape")
            await pilot.pause()
            assert not bar.display and app.focused is app.query_one(QuestionInput)

    run(go)


@pytest.mark.slow
def test_ask_again_fresh_drops_the_conversations_context(
        briefing: Callable[[], BriefingApp]) -> None:
    """Issue 27, "Ask again, fresh": F5 (and the palette) asks the last question again as it
    stands, without the context of the turns before it; the card says so; a later follow-up
    continues from the fresh answer."""

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            said = spy_notes(app)
            await pilot.press("f5")  # nothing asked yet: a notice, no card
            await pilot.pause()
            assert not app.query(QuestionCard) and any("No question yet" in s for s in said)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await ask(pilot, "Which of them are deploying rack-scale systems?")
            follow = app.query(AnswerCard).last().answer
            assert follow.resolved_question is not None
            await pilot.press("f5")
            await settle(pilot)
            cards = app.query(QuestionCard)
            assert len(cards) == 3 and cards.last().question == follow.question
            assert "without the conversation's context" in text_of(cards.last())
            fresh = app.query(AnswerCard).last().answer
            assert fresh.question == follow.question and fresh.resolved_question is None
            assert len(app.chat.conversation.turns) == 3  # the earlier turns are kept
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert "Ask again, fresh" in titles

    run(go)


@pytest.mark.slow
def test_saved_conversations_filter_rename_and_delete(
        briefing: Callable[[], BriefingApp], tmp_path: Path) -> None:
    """Issue 27, saved conversations: in Ctrl+L typing filters the list by the words of the
    questions (and names); F2 renames the one highlighted (kept on disk, and when it is
    continued); Ctrl+D deletes it after a confirmation (n keeps it); deleting the open one
    starts a new conversation."""
    saved_dir = tmp_path / "conversations"

    def names() -> dict[str, str | None]:
        return {f.stem: json.loads(f.read_text(encoding="utf-8")).get("name")
                for f in saved_dir.glob("*.json")}

    def listed(screen: ConversationsScreen) -> list[str]:
        options = screen.query_one(OptionList)
        return [str(options.get_option_at_index(i).prompt).split("\n")[0]
                for i in range(options.option_count)]

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            await pilot.press("ctrl+n")
            await ask(pilot, "What revenue share does the US get?")
            await pilot.press("ctrl+n")
            await ask(pilot, "What does Beijing want?")
            current = app.chat.conversation.id
            await pilot.press("ctrl+l")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ConversationsScreen) and len(listed(screen)) == 3
            await pilot.press(*"REVENUE us")  # typed: the list is filtered, case aside
            await pilot.pause()
            assert listed(screen) == ["What revenue share does the US get?"]
            await pilot.press("f2")
            await pilot.pause()
            box = app.screen.query_one("#rename", Input)
            assert box.value == "What revenue share does the US get?"
            box.value = "US revenue share"
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is screen and listed(screen) == ["US revenue share"]
            assert sorted(map(str, names().values())) == ["None", "None", "US revenue share"]
            await pilot.press(*["backspace"] * 10)
            await pilot.pause()
            assert len(listed(screen)) == 3
            await pilot.press(*"vendors", "ctrl+d")
            await pilot.pause()
            assert "Which Chinese vendors are mentioned?" in text_of(app.screen)
            await pilot.press("n")  # declined: kept
            await pilot.pause()
            assert app.screen is screen and len(names()) == 3
            await pilot.press("ctrl+d")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert app.screen is screen and listed(screen) == [] and len(names()) == 2
            # the open conversation, renamed, keeps its name when it is continued
            await pilot.press(*["backspace"] * 10, *"beijing", "f2")
            await pilot.pause()
            app.screen.query_one("#rename", Input).value = "Beijing"
            await pilot.press("enter", "escape")
            await pilot.pause()
            assert not isinstance(app.screen, ConversationsScreen)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            assert names()[current] == "Beijing"
            # deleted while open: the chat starts a new conversation, not saved again
            await pilot.press("ctrl+l")
            await pilot.pause()
            await pilot.press(*"beijing", "ctrl+d")
            await pilot.pause()
            assert "open now" in text_of(app.screen)
            await pilot.press("y")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert app.chat.conversation.id != current and not app.query(AnswerCard)
            assert list(names()) == [n for n in names() if n != current] and len(names()) == 1
            # the open conversation renamed and deleted from the palette
            await ask(pilot, "What does Beijing want?")
            current = app.chat.conversation.id
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            commands["Rename this conversation"].callback()
            await pilot.pause()
            app.screen.query_one("#rename", Input).value = "Beijing again"
            await pilot.press("enter")
            await pilot.pause()
            assert names()[current] == "Beijing again"
            commands["Delete this conversation"].callback()
            await pilot.pause()
            assert "Beijing again" in text_of(app.screen)
            await pilot.press("y")
            await pilot.pause()
            assert current not in names() and app.chat.conversation.id != current

    run(go)
