"""The chat controller's conversations and exports, without a terminal: every answered turn
saved, a new conversation saved apart, one resumed with its follow-up context, renamed and
deleted (from the palette or the saved list), a damaged file set aside, and the
conversation exported as Markdown or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.chat import Chat
from test_chat_controller import ANSWERS, Q1, Q2, Q3, RACK, VENDORS

from assistant.chat.conversations import ConversationStore, SavedConversation
from assistant.chat.events import AnswerReady, ConversationCleared, ConversationResumed
from assistant.qa.conversation import Conversation

NOT_COVERED = "How do I bake sourdough bread?"


@pytest.fixture()
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "exports"
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(out))
    return out


def ask(chat: Chat, *questions: str) -> None:
    for q in questions:
        chat.controller.submit(q)
    chat.runner.finish_all()


def saved(tmp_path: Path) -> dict[str, dict[str, object]]:
    """Each saved conversation's name and questions, by id."""
    out = {}
    for f in (tmp_path / "conversations").glob("*.json"):
        data = json.loads(f.read_text(encoding="utf-8"))
        out[f.stem] = {"name": data.get("name"),
                       "questions": [t["answer"]["question"] for t in data["turns"]]}
    return out


def test_every_answered_turn_is_saved_and_resumed_with_its_context(tmp_path: Path) -> None:
    first = Chat(tmp_path, ANSWERS)
    first.opened()
    c = first.controller
    assert not saved(tmp_path)
    ask(first, Q1)
    assert saved(tmp_path) == {c.conversation.id: {"name": None, "questions": [Q1]}}
    ask(first, NOT_COVERED)  # not covered is a turn too, shown again when resumed
    c.new_conversation()  # the first stays saved; the new one is saved apart
    assert first.of(ConversationCleared)
    ask(first, Q2)
    assert sorted(v["questions"] for v in saved(tmp_path).values()) == [
        [Q2], [Q1, NOT_COVERED]]
    assert not list((tmp_path / "conversations").glob(".*.tmp"))  # written whole, renamed

    again = Chat(tmp_path, ANSWERS)  # a restart: a fresh conversation
    c = again.opened()
    assert not c.turns
    listed = c.saved_conversations()
    assert [s.title for s in listed] == [Q2, Q1]  # the latest continued first
    c.resume(listed[1])
    shown = again.of(ConversationResumed)
    assert len(shown) == 1 and [t.answer.question for t in shown[0].saved.turns] == [
        Q1, NOT_COVERED]
    assert again.status().text == f"Resumed “{Q1}” (2 questions); follow-ups continue it."
    ask(again, Q3)  # a follow-up continues the resumed conversation's context
    follow = again.of(AnswerReady)[-1].result.answer
    assert follow.resolved_question and follow.answer.text == RACK
    assert saved(tmp_path)[listed[1].id]["questions"] == [Q1, NOT_COVERED, Q3]
    c.resume(listed[1])  # the open one: nothing to do
    assert len(again.of(ConversationResumed)) == 1


def test_the_open_conversation_is_renamed_and_deleted(tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    assert c.title is None  # nothing to name or delete yet
    c.rename("Early")
    assert not chat.notices()
    ask(chat, Q1)
    assert c.title == Q1
    c.rename(Q1)  # unchanged: nothing said
    c.rename(None)  # cancelled
    assert not chat.notices()
    c.rename("Vendors")
    assert chat.notices() == ["Named this conversation “Vendors”."]
    assert saved(tmp_path)[c.conversation.id]["name"] == "Vendors"
    ask(chat, Q3)  # a renamed conversation keeps its name when it is continued
    assert saved(tmp_path)[c.conversation.id] == {"name": "Vendors", "questions": [Q1, Q3]}
    gone = c.conversation.id
    c.delete()
    assert gone not in saved(tmp_path) and c.conversation.id != gone
    assert chat.of(ConversationCleared) and not c.answers
    assert chat.notices()[-1] == "Deleted “Vendors”."


def test_renamed_or_deleted_in_the_saved_list_the_open_conversation_follows(
        tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    ask(chat, Q1)
    store = c.store
    current = c.conversation.id
    renamed = store.rename(current, "Named in the list")
    assert renamed is not None
    ask(chat, Q3)  # answered while the list was open: saved without the name...
    c.changed_elsewhere({current: renamed}, set())  # ...so it is said again
    assert c.conversation_name == "Named in the list"
    assert saved(tmp_path)[current] == {"name": "Named in the list", "questions": [Q1, Q3]}
    c.submit(Q2)  # in flight while the open conversation is deleted in the list
    store.delete(current)
    c.changed_elsewhere({}, {current})
    assert c.conversation.id != current and chat.of(ConversationCleared)
    chat.runner.finish_all()
    assert current not in saved(tmp_path)  # not saved again by the late answer


def test_a_damaged_saved_conversation_is_set_aside_not_lost(tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    ask(chat, Q1)
    damaged = tmp_path / "conversations" / "0badc0ffee00.json"
    damaged.write_text('{"format": 1, "id": "0badc0ffee00", "turns": [', encoding="utf-8")
    listed = c.saved_conversations()
    assert [s.id for s in listed] == [c.conversation.id]  # the good one
    notes = [n for n in chat.notices() if "0badc0ffee00" in n]
    assert len(notes) == 1 and "set aside" in notes[0] and "\n" not in notes[0]
    assert not damaged.exists()
    aside = damaged.with_name("0badc0ffee00.json.corrupt")
    assert aside.read_text(encoding="utf-8").startswith('{"format": 1')  # kept, as it was
    c.saved_conversations()
    assert len([n for n in chat.notices() if "0badc0ffee00" in n]) == 1  # said once


def test_a_conversation_that_cannot_be_saved_is_said_and_the_chat_goes_on(
        tmp_path: Path) -> None:
    (tmp_path / "conversations").write_text("a file where the folder goes", encoding="utf-8")
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    ask(chat, Q1, Q2)
    notes = [n for n in chat.notices() if "cannot save the conversation" in n]
    assert len(notes) == 2 and "kept until the chat closes" in notes[0]
    assert [a.question for a in c.answers] == [Q1, Q2]


def test_conversation_store_reports_a_failed_save(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    store = ConversationStore(blocked / "conversations")
    when = datetime(2026, 1, 2, tzinfo=UTC)
    conversation = SavedConversation(id="abc123", created=when, updated=when,
                                     context=Conversation(id="abc123"))
    assert not store.save(conversation)
    assert store.problem and "cannot save the conversation" in store.problem
    good = ConversationStore(tmp_path / "ok")
    assert good.save(conversation) and good.load("abc123") == conversation
    assert good.path_of("../escape") is None  # an id never becomes a path elsewhere


# ---- exports ---------------------------------------------------------------------------------


def test_the_conversation_is_exported_as_markdown(tmp_path: Path, exports: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    c.export()  # nothing to export yet: a notice, no file
    assert chat.notices() == ["Nothing to export yet: ask a question first."]
    assert c.export_path() is None and not exports.exists()
    ask(chat, Q1, Q3, NOT_COVERED)
    c.export()
    files = list(exports.glob("conversation-*.md"))
    assert len(files) == 1
    assert chat.notices()[-1] == f"Saved the conversation to {files[0]}"
    md = files[0].read_text(encoding="utf-8")
    assert md.startswith("# Conversation of ")
    assert [line for line in md.splitlines() if line.startswith("### ")] == [
        f"### {Q1}", f"### {Q3}", f"### {NOT_COVERED}"]
    assert VENDORS in md and RACK in md
    assert f"*Understood as:* {Q3} ({Q1})" in md
    assert "**The documents do not cover this.**" in md
    assert "Closest passages (not an answer)" in md
    assert md.count("Citations:") == 2
    assert "briefing.txt line 2" in md
    c.export()  # a second export in the same second: a new file, not overwritten
    assert len(list(exports.glob("conversation-*.md"))) == 2


def test_the_conversation_is_exported_to_a_chosen_path(tmp_path: Path, exports: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    ask(chat, Q1)
    proposed = c.export_path()
    assert proposed is not None and proposed.parent == exports and proposed.suffix == ".md"
    target = tmp_path / "chosen" / "deep" / "chat.json"
    c.export_to(target)
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["title"].startswith("Conversation of ")
    assert [a["question"] for a in data["answers"]] == [Q1]
    assert data["answers"][0]["answer"]["text"] == VENDORS
    assert chat.notices()[-1] == f"Saved the conversation to {target}"
    md = target.with_suffix(".md")
    c.export_to(md)
    assert md.read_text(encoding="utf-8").startswith("# Conversation of ")
    c.export_to(tmp_path / "chosen" / "deep" / "chat.json" / "inside.md")  # under a file
    assert chat.notices()[-1].startswith("Cannot write ")
