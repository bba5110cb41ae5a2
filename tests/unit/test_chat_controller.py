"""The chat controller without a terminal: questions queued while the index opens or a
question is answered, a rebuild that swaps the index under a question in flight, errors
turned into cards, asking each document or a part of the folder, reading a document, the
corpus watcher, quitting during a build.

A fake session answers (``helpers.chat``) and the test finishes each job itself, so every
order of events a user can cause is played out exactly, in milliseconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.chat import DOC, TEXT, Chat

from assistant.chat.controller import BuildStopped
from assistant.chat.events import (
    Answering,
    AnswerReady,
    CorpusChanged,
    DocumentReady,
    EachAnswered,
    EachAsked,
    EngineSwapped,
    ErrorCard,
    IndexFinished,
    IndexProgress,
    Notice,
    QuestionAsked,
    QuestionWaiting,
    ScopeChanged,
    Status,
)
from assistant.errors import AssistantError, CorpusError

VENDORS = "Chinese vendors (Huawei, Baidu, Cambricon) are improving accelerators."
RACK = "Huawei and Baidu are deploying rack-scale systems."
SHARE = "The US takes a 25% share of the revenue."
ANSWERS = {"Which Chinese vendors are mentioned?": VENDORS,
           "Which of them are deploying rack-scale systems? "
           "(Which Chinese vendors are mentioned?)": RACK,
           "What revenue share does the US get?": SHARE}
Q1, Q2, Q3 = "Which Chinese vendors are mentioned?", "What revenue share does the US get?", \
    "Which of them are deploying rack-scale systems?"
OTHER = "other.txt"
OTHER_TEXT = "Other notes\nChinese vendors (Huawei, Baidu, Cambricon) are improving " \
    "accelerators.\nNothing else.\n"


@pytest.fixture()
def chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Chat:
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(tmp_path / "exports"))
    return Chat(tmp_path, ANSWERS)


def answered(chat: Chat) -> list[tuple[int, str]]:
    """(question number, the quote or the error's title) of every answer shown."""
    out = []
    for e in chat.of(AnswerReady):
        r = e.result
        out.append((e.number, r.title if isinstance(r, AssistantError) else
                    r.answer.answer.text if r.answer.answer else "not covered"))
    return out


# ---- the queue and the index ---------------------------------------------------------------


def test_questions_asked_while_the_index_opens_wait_then_are_answered_in_order(
        chat: Chat) -> None:
    c = chat.controller
    c.start()
    assert c.building == "load" and chat.status().text == "Opening the index…"
    c.submit(Q1)
    c.submit(Q2)
    asked = chat.of(QuestionAsked)
    assert [a.question for a in asked] == [Q1, Q2]
    assert all(a.note.startswith("Waiting for the index to load") for a in asked)
    assert chat.runner.kinds() == ["index"]  # nothing is answered before the index is open
    assert chat.status().text == "2 question(s) waiting for the index…"
    assert c.busy
    chat.runner.finish("index")
    said = [s.text for s in chat.of(type(chat.status()))]
    assert "Building the index: embedding chunks, 40 of about 40" in said
    progress = chat.of(IndexProgress)
    assert progress[-1] == IndexProgress(40, 40, "building the index…")
    assert chat.of(IndexFinished) and chat.of(EngineSwapped)
    # one question at a time, in the order asked
    assert chat.runner.kinds() == ["ask"] and [e.number for e in chat.of(Answering)] == [1]
    chat.runner.finish()
    assert chat.runner.kinds() == ["ask"] and [e.number for e in chat.of(Answering)] == [1, 2]
    chat.runner.finish()
    assert answered(chat) == [(1, VENDORS), (2, SHARE)]
    assert not c.busy
    shown = chat.of(AnswerReady)[0].result
    assert shown.passage is not None and VENDORS in shown.passage.text
    assert shown.places == {1: "Key points · line 2"}
    assert chat.status().text.startswith("Answered (confidence 90%)")


def test_a_question_asked_while_another_is_answered_waits_its_turn(chat: Chat) -> None:
    c = chat.opened()
    c.submit(Q1)
    c.submit(Q2)
    assert chat.of(QuestionAsked)[1].note == "Answering…"
    assert chat.runner.kinds() == ["ask"]  # the second waits for the first
    assert [q.question for q in c.queue] == [Q2]
    chat.runner.finish_all()
    assert answered(chat) == [(1, VENDORS), (2, SHARE)]


def test_without_a_usable_index_questions_wait_until_one_is_built(chat: Chat) -> None:
    chat.backend.fail = CorpusError("corpus has no .txt, .md, .html or .pdf documents")
    c = chat.controller
    c.start()
    c.submit(Q1)
    chat.runner.finish("index")
    assert chat.of(ErrorCard)[0].error is chat.backend.fail
    assert chat.status().kind == "error" and "no index to answer from" in chat.status().text
    assert chat.of(QuestionWaiting) == [QuestionWaiting((1,), "Waiting for a usable index "
                                                        "(see the message above; Ctrl+R "
                                                        "builds it).")]
    c.submit(Q2)
    assert chat.of(QuestionAsked)[-1].note.startswith("Waiting for a usable index")
    chat.backend.fail = None
    c.rebuild()
    assert c.building == "rebuild" and chat.status().text == "Building the index…"
    chat.runner.finish_all()
    assert answered(chat) == [(1, VENDORS), (2, SHARE)]


def test_a_rebuild_answers_from_the_old_index_until_the_new_one_is_in(chat: Chat) -> None:
    c = chat.opened()
    old = c.session
    assert old is not None
    c.rebuild()
    assert c.building == "rebuild"
    assert chat.status().text == ("Rebuilding the index — answering from the current one "
                                  "meanwhile…")
    said = len(chat.notices())
    c.rebuild()  # Ctrl+R again: one build at a time
    assert chat.notices()[said:] == ["The index is already being built."]
    c.submit(Q1)
    assert c.asking is not None and c.asking.session is old
    chat.runner.finish("index")  # the new generation is in while the question is answered
    new = c.session
    assert new is not None and new is not old and new.generation == 2
    assert not old.closed  # its question is still being answered
    assert "The index was already up to date; reopened it." in chat.notices()
    chat.runner.finish("ask")
    assert answered(chat) == [(1, VENDORS)]
    assert [a[0] for a in old.asked] == [Q1] and old.closed  # answered by it, then closed
    c.submit(Q2)
    chat.runner.finish()
    assert [a[0] for a in new.asked] == [Q2] and not new.closed


def test_a_failed_rebuild_keeps_answering_from_the_current_index(chat: Chat) -> None:
    c = chat.opened()
    chat.backend.fail = CorpusError("cannot read the corpus")
    c.rebuild()
    chat.runner.finish()
    assert chat.of(ErrorCard) and chat.status().kind == "warning"
    assert "still answering from the current index" in chat.status().text
    c.submit(Q1)
    chat.runner.finish()
    assert answered(chat) == [(1, VENDORS)]


def test_an_error_while_answering_is_a_card_and_the_next_question_goes_on(chat: Chat) -> None:
    c = chat.opened()
    session = chat.backend.sessions[0]
    session.fail = RuntimeError("boom")
    c.submit(Q1)
    c.submit(Q2)
    chat.runner.finish()
    assert answered(chat) == [(1, "Unexpected error")]
    said = chat.of(Status)
    assert said[-2].kind == "warning" and "boom" in said[-2].text
    assert said[-1] == Status("Answering…", "busy")  # the next question
    session.fail = None
    chat.runner.finish()
    assert answered(chat) == [(1, "Unexpected error"), (2, SHARE)]
    assert [a.question for a in c.answers] == [Q2]  # an error is no turn


def test_quitting_during_a_build_stops_it_and_says_how_far_it_got(chat: Chat) -> None:
    c = chat.controller
    assert c.quit() is None  # nothing being built
    said: list[str | None] = []
    chat.backend.progress = [("embed", 40, 400), ("embed", 80, 400)]
    chat.backend.on_step = lambda n: said.append(c.quit()) if n == 0 else None
    c.start()
    with pytest.raises(BuildStopped):  # at the next progress report
        chat.runner.finish("index")
    assert c.stopping
    assert said[0] is not None and said[0].startswith(
        "Stopped building the index with 40 of about 400 chunks done; the next start")
    assert not chat.backend.sessions


# ---- asking ----------------------------------------------------------------------------------


def test_a_follow_up_leans_on_the_last_answer_and_asked_again_fresh_does_not(
        chat: Chat) -> None:
    c = chat.opened()
    c.ask_fresh()
    assert chat.notices() == ["No question yet: ask one first."]
    assert not chat.of(QuestionAsked)
    c.submit(Q1)
    c.submit(Q3)
    chat.runner.finish_all()
    follow = chat.of(AnswerReady)[-1].result.answer
    assert follow.resolved_question and follow.answer.text == RACK
    assert len(c.conversation.turns) == 2
    c.ask_fresh()  # F5: the last question again, as it stands
    again = chat.of(QuestionAsked)[-1]
    assert again.question == Q3 and again.fresh
    chat.runner.finish()
    session = chat.backend.sessions[0]
    assert session.asked[-1][1] is not None and session.asked[-1][1].turns == ()
    fresh = chat.of(AnswerReady)[-1].result.answer
    assert fresh.question == Q3 and fresh.resolved_question is None
    # the earlier turns are kept; follow-ups continue from the fresh answer
    assert len(c.conversation.turns) == 2
    assert [a.question for a in c.answers] == [Q1, Q3, Q3]


def test_asked_again_fresh_while_it_is_still_being_answered(chat: Chat) -> None:
    c = chat.opened()
    c.submit(Q2)
    c.ask_fresh()  # the question in flight counts as the last one
    assert [(a.question, a.fresh) for a in chat.of(QuestionAsked)] == [(Q2, False), (Q2, True)]


def test_a_reply_to_a_conversation_left_meanwhile_is_dropped(chat: Chat,
                                                            tmp_path: Path) -> None:
    c = chat.opened()
    c.submit(Q1)
    c.submit(Q2)
    c.new_conversation()
    assert not c.queue  # what was waiting is not asked any more
    chat.runner.finish_all()
    assert not chat.of(AnswerReady) and not c.answers and not c.conversation.turns
    assert not list((tmp_path / "conversations").glob("*.json"))


def test_what_each_document_says(tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    chat.backend.documents = {DOC: TEXT, OTHER: OTHER_TEXT}
    c = chat.controller
    assert not c.ask_each(Q1) and chat.notices() == ["The index is not open yet."]
    chat.opened()
    assert not c.ask_each("") and chat.notices()[-1] == "Type a question first."
    c.submit(Q1)
    chat.runner.finish()
    turns = c.conversation.turns
    assert c.ask_each(Q1)
    assert chat.of(EachAsked) == [EachAsked(Q1)] and c.busy
    assert not c.ask_each(Q1)
    assert chat.notices()[-1] == "Each document is already being asked."
    chat.runner.finish("each")
    each = chat.of(EachAnswered)[0].result
    assert [s.answer.answer.doc_id for s in each] == [DOC, OTHER]
    assert [s.places[1] for s in each] == ["Key points · line 2"] * 2
    assert c.conversation.turns == turns  # no turn: follow-ups do not lean on it
    assert [a.question for a in c.answers] == [Q1, Q1, Q1]  # exported with the rest
    assert chat.status().text == "2 documents cover this, the likeliest first"
    assert c.ask_each("How do I bake sourdough bread?")
    chat.runner.finish()
    assert chat.of(EachAnswered)[-1].result == []
    assert chat.status().text == "Not covered by any document"


# ---- asking part of the folder ---------------------------------------------------------------


def test_questions_are_asked_of_the_documents_chosen(tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    chat.backend.documents = {DOC: TEXT, OTHER: OTHER_TEXT}
    c = chat.opened()
    c.choose(frozenset({OTHER}), mark=False)  # o on a document: it alone
    assert c.scope == frozenset({OTHER})
    assert chat.of(ScopeChanged)[-1] == ScopeChanged(frozenset({OTHER}))
    assert chat.status().text.startswith("Asking other.txt only (o on one")
    c.submit(Q1)
    chat.runner.finish()
    assert chat.backend.sessions[0].asked[-1][2] == frozenset({OTHER})
    assert chat.status().text.endswith(" · asked of other.txt only")
    assert c.answers[-1].scope == [OTHER]
    c.choose(frozenset({OTHER}), mark=False)  # o again: every document
    assert c.scope is None and chat.status().text == "Asking every document again."
    c.choose(frozenset({DOC}), mark=True)  # space marks more, or fewer
    c.choose(frozenset({OTHER}), mark=True)
    assert c.scope == frozenset({DOC, OTHER})
    c.choose(frozenset({DOC}), mark=True)
    assert c.scope == frozenset({OTHER})
    c.choose(frozenset({DOC, OTHER}), mark=True)  # a folder partly marked: all of it
    assert c.scope == frozenset({DOC, OTHER})
    c.choose(frozenset({DOC, OTHER}), mark=True)  # all of it marked: none of it
    assert c.scope is None
    c.choose(frozenset(), mark=True)
    assert c.scope is None


def test_a_document_no_longer_indexed_leaves_the_documents_asked(tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    c = chat.opened()
    c.restrict(frozenset({DOC, OTHER}))
    c.rebuild()
    chat.runner.finish()
    assert c.scope == frozenset({DOC})
    assert "other.txt no longer indexed; asking briefing.txt only now." in chat.notices()
    assert chat.status().text.endswith("Ask a question. Asking briefing.txt only.")


# ---- documents -------------------------------------------------------------------------------


def test_a_document_is_read_in_a_job_and_only_the_latest_asked_is_shown(tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS)
    chat.backend.documents = {DOC: TEXT, OTHER: OTHER_TEXT}
    c = chat.controller
    c.open_document(DOC)
    assert chat.notices() == ["The index is not open yet."] and not chat.runner.jobs
    chat.opened()
    c.open_document(DOC, 11, 20)
    c.open_document(OTHER, 12, 30, outside=True)
    chat.runner.finish()  # the first one read: another was asked for since
    assert not chat.of(DocumentReady)
    chat.runner.finish()
    ready = chat.of(DocumentReady)
    assert len(ready) == 1 and ready[0].view.doc_id == OTHER and ready[0].outside
    assert (ready[0].start, ready[0].end) == (12, 30)
    assert ready[0].source == Path("corpus") / OTHER
    c.open_document("gone.txt")  # an error reading it is a notice, not a crash
    chat.runner.finish()
    assert chat.of(Notice)[-1].severity == "error" and len(chat.of(DocumentReady)) == 1


# ---- the corpus watched ------------------------------------------------------------------


def test_a_corpus_change_is_said_once_and_not_indexed_with_watch_off(chat: Chat) -> None:
    c = chat.opened()
    c.watch_tick()
    c.watch_tick()  # a scan is running: no second one
    assert chat.runner.kinds() == ["watch"]
    chat.runner.finish()
    assert not chat.of(CorpusChanged) and not chat.notices()
    chat.backend.changed, chat.backend.looks = [DOC], ((DOC, 10, 1),)
    for _ in range(3):
        chat.now += 5
        c.watch_tick()
        chat.runner.finish()
    assert chat.of(CorpusChanged) == [CorpusChanged([DOC])]
    said = [n for n in chat.notices() if DOC in n]
    assert len(said) == 1 and "Press Ctrl+R to rebuild it" in said[0]
    assert c.building is None and not chat.runner.jobs  # not rebuilt
    c.rebuild()
    chat.backend.changed, chat.backend.looks = [], ()
    c.watch_tick()  # no scan while the index is built
    assert chat.runner.kinds() == ["index"]
    chat.runner.finish()  # the side panel's fresh status supersedes the changes seen
    c.watch_tick()
    chat.runner.finish()
    assert chat.of(CorpusChanged) == [CorpusChanged([DOC])]
    chat.backend.changed, chat.backend.looks = [DOC], ((DOC, 11, 2),)  # changed again
    c.watch_tick()
    chat.runner.finish()
    assert chat.of(CorpusChanged) == [CorpusChanged([DOC])] * 2
    assert len([n for n in chat.notices() if "Press Ctrl+R" in n]) == 2


def test_with_watch_on_changed_files_are_reindexed_once_they_stop_changing(
        tmp_path: Path) -> None:
    chat = Chat(tmp_path, ANSWERS, watch=True)
    c = chat.opened()
    chat.backend.changed = [DOC]
    for size in range(10, 18):  # a file written bit by bit: no rebuild meanwhile
        chat.backend.looks = ((DOC, size, size),)
        chat.now += 1
        c.watch_tick()
        chat.runner.finish()
        assert c.building is None
    chat.now += 2  # unchanged, but not for long enough yet
    c.watch_tick()
    chat.runner.finish()
    assert c.building is None
    chat.now += 1.5
    c.watch_tick()
    chat.runner.finish()
    assert c.building == "rebuild"
    assert any(n.startswith(f"Re-indexing {DOC};") for n in chat.notices())
    assert not any("Press Ctrl+R" in n for n in chat.notices())
    chat.backend.fail = CorpusError("cannot read the corpus")
    chat.runner.finish()  # the rebuild failed: not retried for the same changes
    chat.now += 10
    c.watch_tick()
    chat.runner.finish()
    assert c.building is None
    c.toggle_watch()  # off: a change is only said
    assert not c.watching
    assert chat.notices()[-1].startswith("Changed files are no longer re-indexed")
    chat.backend.changed, chat.backend.looks = [DOC, OTHER], ((DOC, 20, 20),)
    chat.now += 10
    c.watch_tick()
    chat.runner.finish()
    assert c.building is None and "Press Ctrl+R" in chat.notices()[-1]


def test_a_scan_started_before_a_rebuild_is_not_acted_on(chat: Chat) -> None:
    c = chat.opened()
    c.watch_tick()
    c.rebuild()
    chat.backend.changed, chat.backend.looks = [DOC], ((DOC, 1, 1),)
    chat.runner.finish("index")
    chat.runner.finish("watch")  # it compared with the generation rebuilt since
    assert not chat.of(CorpusChanged) and not any(DOC in n for n in chat.notices())


# ---- the controller runs without a terminal -----------------------------------------------


def test_the_controller_imports_neither_textual_nor_the_engine() -> None:
    code = ("import sys, assistant.chat.controller; bad = [m for m in sys.modules if "
            "m.split('.')[0] in ('textual', 'numpy', 'faiss', 'onnxruntime') or "
            "m.startswith('assistant.tui')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
