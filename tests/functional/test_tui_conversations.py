"""Saved conversations (issue 14, item 10): kept across restarts, listed with Ctrl+L and
resumed with their answers; filtered, renamed and deleted in the list. Search in the
conversation (Ctrl+F): next / previous match, "k of n", Esc closes. Saving, resuming with
the follow-up context and a damaged file set aside are tested on the controller
(tests/unit/test_chat_controller_conversations.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.pilot import spy_notes
from test_tui import (
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
            assert "follow-ups continue it" in app.status_line.text

    run(second)


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
def test_f5_asks_the_last_question_again_fresh(briefing: Callable[[], BriefingApp]) -> None:
    """Issue 27, "Ask again, fresh": F5 (and the palette) asks the last question again, and
    its card says it is asked without the conversation's context (what context it gets is
    tested on the controller)."""

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
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert "Ask again, fresh" in titles

    run(go)


@pytest.mark.slow
def test_saved_conversations_filter_rename_and_delete(
        briefing: Callable[[], BriefingApp], tmp_path: Path) -> None:
    """Issue 27, saved conversations: in Ctrl+L typing filters the list by the words of the
    questions (and names); F2 renames the one highlighted (kept on disk); Ctrl+D deletes it
    after a confirmation (n keeps it); deleting the open one starts a new conversation. What
    follows for the open conversation is tested on the controller."""
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
            # deleted while open: the chat starts a new conversation
            await pilot.press(*["backspace"] * 10, *"beijing", "ctrl+d")
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
