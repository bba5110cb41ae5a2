"""The chat's tools for people used to Elia, oterm and Harlequin (issue 14, item 10): copying
where the terminal ignores OSC 52, the corpus watched while the chat is open, questions
asked of one document, and a source opened in ``$EDITOR`` / ``$PAGER``."""

from __future__ import annotations

import contextlib
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.pilot import spy_notes
from test_tui import SIZE, ask, flat, make_app, run, settle, text_of
from textual.pilot import Pilot
from textual.widgets import OptionList

from assistant.build import build_index
from assistant.settings import Settings
from assistant.tui.app import BriefingApp
from assistant.tui.outside import line_in_file, outside_command
from assistant.tui.screens.document import DocumentScreen
from assistant.tui.widgets.conversation import AnswerCard, MessageCard, QuestionCard
from assistant.tui.widgets.question_input import QuestionInput
from assistant.tui.widgets.side_panel import SidePanel

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"
BRIEFING_DOC = "nvidia-h200-china.txt"


@pytest.fixture(autouse=True)
def exports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "exports"
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(out))
    return out


@pytest.fixture()
def briefing(briefing_index: Path, tmp_path: Path) -> Callable[[], BriefingApp]:
    corpus = briefing_index.parent / "corpus"
    return lambda: make_app(tmp_path, corpus, briefing_index)




def script(path: Path, body: str) -> Path:
    """A small shell program (a fake clipboard tool or editor) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# ---- copying without OSC 52 ----------------------------------------------------------------


def test_copy_goes_to_a_clipboard_tool_else_to_a_file(briefing: Callable[[], BriefingApp],
                                                      tmp_path: Path,
                                                      exports_in_tmp: Path) -> None:
    got = tmp_path / "xclip-got"
    xclip = script(tmp_path / "bin" / "xclip", f'echo "$@" > "{got}.args"\ncat > "{got}"\n')
    broken = script(tmp_path / "bin" / "wl-copy", "exit 1\n")  # no Wayland display here
    tools = {"xclip": str(xclip), "wl-copy": str(broken)}
    clip_file = exports_in_tmp / "clipboard.txt"

    async def go() -> None:
        app = briefing()
        said = spy_notes(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            app.which = tools.get
            await pilot.press("ctrl+y")
            await pilot.pause()
            assert got.read_text(encoding="utf-8") == app.clipboard  # OSC 52 and xclip
            assert got.with_suffix(".args").read_text().split() == ["-selection",
                                                                    "clipboard"]
            assert not clip_file.exists()
            app.which = lambda _: None  # no tool at all: the text is also put in a file
            said.clear()
            await pilot.press("escape")  # to the sources; y copies the first one
            await pilot.press("y")
            await pilot.pause()
            assert clip_file.read_text(encoding="utf-8") == app.clipboard
            assert "Cambricon" in app.clipboard
            assert any(str(clip_file) in s for s in said), said

    run(go)


# ---- the corpus watched ----------------------------------------------------------------------


async def wait_for(pilot: Pilot[None], done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


@pytest.mark.slow
def test_a_corpus_change_marks_the_index_stale_and_offers_the_rebuild(
        workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = workspace
    build_index(Settings(corpus_dir=corpus, index_dir=index))

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        app.CORPUS_WATCH_SECONDS = 0.2  # type: ignore[misc]
        said = spy_notes(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            panel = app.query_one(SidePanel)
            assert "up to date" in flat(text_of(panel))
            assert app.chat.session is not None
            generation = app.chat.session.generation
            with open(corpus / BRIEFING_DOC, "a", encoding="utf-8") as fh:
                fh.write("\nA sentence added while the chat is open.\n")
            await wait_for(pilot, lambda: "stale: 1 changed" in flat(text_of(panel)))
            notes = [s for s in said if BRIEFING_DOC in s]
            assert len(notes) == 1 and "Ctrl+R" in notes[0]
            assert app.chat.session.generation == generation  # not rebuilt
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert app.chat.session.generation > generation
            await pilot.pause(0.5)
            assert "up to date" in flat(text_of(panel))

    run(go)


def test_a_corpus_scan_sees_what_changed_and_a_file_still_being_written(
        workspace: tuple[Path, Path]) -> None:
    """The watcher's scan on the real index: the changed files, and how each looks now, so
    that a file still being written is not indexed half-written (the controller waits
    until it stays the same: tests/unit/test_chat_controller.py)."""
    from assistant.chat.backend import CoreBackend
    from assistant.index.store import open_index

    corpus, index = workspace
    settings = Settings(corpus_dir=corpus, index_dir=index)
    build_index(settings)
    opened = open_index(index)
    manifest = opened.manifest
    opened.close()
    backend = CoreBackend()
    assert backend.changes(settings, manifest) == ([], ())
    with open(corpus / BRIEFING_DOC, "a", encoding="utf-8") as fh:
        fh.write("\nA line written while the chat is open.")
    changed, first = backend.changes(settings, manifest)
    assert changed == [BRIEFING_DOC]
    assert backend.changes(settings, manifest) == (changed, first)  # unchanged since
    with open(corpus / BRIEFING_DOC, "a", encoding="utf-8") as fh:
        fh.write(" And more of it.\n")
    assert backend.changes(settings, manifest)[1] != first  # still being written


# ---- one document ----------------------------------------------------------------------------


@pytest.mark.slow
def test_questions_can_be_restricted_to_one_document(tmp_path: Path,
                                                      briefing_index: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(briefing_index.parent / "corpus", corpus)
    shutil.copy(DATA / "grid-outlook.txt", corpus / "grid-outlook.txt")
    index = tmp_path / "index"
    build_index(Settings(corpus_dir=corpus, index_dir=index))

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            assert {c.doc_id for c in app.query(AnswerCard).last().answer.citations} >= {
                BRIEFING_DOC}
            docs = app.query_one(SidePanel).query_one(OptionList)
            docs.focus()
            at = next(i for i in range(docs.option_count)
                      if docs.get_option_at_index(i).id == "grid-outlook.txt")
            docs.highlighted = at
            await pilot.press("o")
            await pilot.pause()
            assert app.chat.scope == frozenset({"grid-outlook.txt"})
            panel = flat(text_of(app.query_one(SidePanel)))
            assert "only grid-outlook.txt" in panel and "asked alone" in panel
            assert "grid-outlook.txt only" in app.query_one(QuestionInput).placeholder
            await ask(pilot, "Which Chinese vendors are mentioned?")
            answer = app.query(AnswerCard).last().answer
            assert answer.citations and {c.doc_id for c in answer.citations} == {
                "grid-outlook.txt"}
            assert "grid-outlook.txt only" in app.status_line.text
            docs.focus()
            docs.highlighted = at
            await pilot.press("o")  # again: every document
            await pilot.pause()
            assert app.chat.scope is None
            await ask(pilot, "Which Chinese vendors are mentioned?")
            assert BRIEFING_DOC in {c.doc_id for c in
                                    app.query(AnswerCard).last().answer.citations}

    run(go)


def test_answerer_asks_only_the_documents_given(answerer: object) -> None:
    from assistant.qa.pipeline import Answerer

    assert isinstance(answerer, Answerer)
    question = "Which Chinese vendors are mentioned?"
    everything = answerer.ask(question).answer
    same = answerer.ask(question, documents=frozenset({BRIEFING_DOC})).answer
    assert not everything.abstained and same.message == everything.message
    elsewhere = answerer.ask(question, documents=frozenset({"another.txt"})).answer
    assert elsewhere.abstained and not elsewhere.citations


# ---- $EDITOR / $PAGER -------------------------------------------------------------------------


def test_a_source_opens_in_the_editor_at_the_quote(briefing: Callable[[], BriefingApp],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "argv"
    vim = script(tmp_path / "bin" / "vim", f'printf "%s\\n" "$@" > "{record}"\n')
    pager = script(tmp_path / "pager" / "less", f'printf "%s\\n" "$@" > "{record}.pager"\n')
    monkeypatch.setenv("EDITOR", f"{vim} -R")
    monkeypatch.delenv("PAGER", raising=False)

    async def go() -> None:
        app = briefing()
        app.suspend = contextlib.nullcontext  # type: ignore[assignment,method-assign]
        said = spy_notes(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            answer = app.query(AnswerCard).last().answer
            assert answer.answer is not None
            await pilot.press("ctrl+o")
            await settle(pilot)  # a document is read in a worker
            screen = app.screen
            assert isinstance(screen, DocumentScreen)
            await pilot.press("e")
            await pilot.pause()
            argv = record.read_text(encoding="utf-8").splitlines()
            assert argv[0] == "-R" and argv[1].startswith("+")
            path = Path(argv[2])
            assert path.name == BRIEFING_DOC
            line = path.read_text(encoding="utf-8").splitlines()[int(argv[1][1:]) - 1]
            assert answer.answer.text[:40] in line  # the editor opens at the quote's line
            monkeypatch.delenv("EDITOR")
            monkeypatch.setenv("PAGER", str(pager))
            await pilot.press("e")
            await pilot.pause()
            assert record.with_suffix(".pager").read_text().splitlines() == argv[1:]
            monkeypatch.delenv("PAGER")
            monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no less either
            said.clear()
            await pilot.press("e")
            await settle(pilot)  # a document is read in a worker
            assert any("Set $EDITOR or $PAGER" in s and BRIEFING_DOC in s for s in said)
            assert isinstance(app.screen, DocumentScreen)

    run(go)


def test_outside_command_and_the_line_in_the_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.html"
    f.write_text("<html>\n<body>\n<p>First part.</p>\n<p>The quoted words are here.</p>\n",
                 encoding="utf-8")

    def which(name: str) -> str | None:
        return "/usr/bin/less" if name == "less" else None

    assert outside_command(f, 4, {"EDITOR": "nano"}, which) == ["nano", "+4", str(f)]
    assert outside_command(f, 4, {"EDITOR": "code --wait"}, which) == ["code", "--wait", str(f)]
    assert outside_command(f, 4, {"PAGER": "less -R"}, which) == ["less", "-R", "+4", str(f)]
    assert outside_command(f, 4, {}, which) == ["/usr/bin/less", "+4", str(f)]
    assert outside_command(f, 4, {}, lambda _: None) is None
    text = "First part.\nThe quoted words are here.\n"  # the extracted text: other lines
    assert line_in_file(f, text, text.index("The"), "The quoted words are here.") == 4
    assert line_in_file(f, text, text.index("The"), "Not in the file at all") == 2


# ---- the new keys are listed -----------------------------------------------------------------


def test_the_new_keys_are_in_the_help_and_the_palette(
        briefing: Callable[[], BriefingApp]) -> None:
    from assistant.tui.screens.help import KEYS

    keys = {key: what for _, rows in KEYS for key, what in rows}
    assert "saved conversations" in keys["Ctrl+L"]
    assert "search the conversation" in keys["Ctrl+F"]
    assert "ask only" in keys["o on a document"]
    assert "$EDITOR" in keys["e"]
    assert "clipboard.txt" in keys["Ctrl+Y"]

    async def go() -> None:
        app = briefing()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            assert {"Saved conversations", "Search the conversation",
                    "Open source in $EDITOR", f"Ask only {BRIEFING_DOC}"} <= set(commands)
            commands[f"Ask only {BRIEFING_DOC}"].callback()
            await pilot.pause()
            assert app.chat.scope == frozenset({BRIEFING_DOC})
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            commands["Ask every document"].callback()
            assert app.chat.scope is None

    run(go)


@pytest.mark.slow
def test_questions_can_be_asked_of_marked_documents_or_a_folder(
        tmp_path: Path, briefing_index: Path, exports_in_tmp: Path) -> None:
    """Issue 27, "Ask a part of the folder": space on the document list marks documents (the
    cursor moves on, as in file managers); questions are answered from the marked ones,
    which the panel, the status line and the export say; the palette asks a sub-folder."""
    corpus = tmp_path / "corpus"
    shutil.copytree(briefing_index.parent / "corpus", corpus)
    (corpus / "energy").mkdir()
    for name in ("grid-outlook.txt", "market-report.md"):
        shutil.copy(DATA / name, corpus / "energy" / name)
    index = tmp_path / "index"
    build_index(Settings(corpus_dir=corpus, index_dir=index))
    energy = frozenset({"energy/grid-outlook.txt", "energy/market-report.md"})

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            docs = app.query_one(SidePanel).query_one(OptionList)
            docs.focus()
            ids = [docs.get_option_at_index(i).id for i in range(docs.option_count)]
            for doc in sorted(energy):
                docs.highlighted = ids.index(doc)
                await pilot.press("space")
                await pilot.pause()
            assert app.chat.scope == energy
            panel = flat(text_of(app.query_one(SidePanel)))
            assert "2 marked documents" in panel and panel.count("· asked") == 3
            assert "◆ energy/ folder · 2 documents · asked" in panel  # all of the folder
            await ask(pilot, "Which Chinese vendors are mentioned?")
            answer = app.query(AnswerCard).last().answer
            assert {c.doc_id for c in answer.citations} <= energy and answer.citations
            assert answer.scope == sorted(energy)
            assert "asked of energy/grid-outlook.txt and energy/market-report.md only" in \
                app.status_line.text
            docs.focus()
            docs.highlighted = ids.index("energy/market-report.md")
            await pilot.press("space")  # unmarked: the other one is asked alone
            await pilot.pause()
            assert app.chat.scope == frozenset({"energy/grid-outlook.txt"})
            await pilot.press("ctrl+s")
            await pilot.pause()
            export = next(exports_in_tmp.glob("conversation-*.md")).read_text("utf-8")
            assert "*Asked of:* energy/grid-outlook.txt and energy/market-report.md only" in \
                export
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            assert "Also ask energy/grid-outlook.txt" not in commands  # it is asked
            commands[f"Also ask {BRIEFING_DOC}"].callback()  # Space, from the palette
            await pilot.pause()
            assert app.chat.scope == frozenset({"energy/grid-outlook.txt", BRIEFING_DOC})
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            commands[f"Stop asking {BRIEFING_DOC}"].callback()
            await pilot.pause()
            assert app.chat.scope == frozenset({"energy/grid-outlook.txt"})
            commands["Ask only the folder energy/"].callback()
            assert app.chat.scope == energy
            commands["Ask every document"].callback()
            assert app.chat.scope is None
            # the folder's own row in the list: Space marks all of it, again none of it;
            # Enter (or o) asks it alone
            docs.focus()
            docs.highlighted = ids.index("/energy")
            await pilot.press("space")
            await pilot.pause()
            assert app.chat.scope == energy
            docs.highlighted = ids.index("/energy")
            await pilot.press("space")
            await pilot.pause()
            assert app.chat.scope is None
            docs.highlighted = ids.index("/energy")
            await pilot.press("enter")
            await pilot.pause()
            assert app.chat.scope == energy and not isinstance(app.screen, DocumentScreen)
            app.chat.restrict(None)
            # typed into a question, a space on the list is a space
            app.query_one(QuestionInput).insert_text_at_cursor("Which")
            docs.focus()
            await pilot.press("space", "x")
            await pilot.pause()
            assert app.chat.scope is None and app.query_one(QuestionInput).value == "Which x"

    run(go)


@pytest.mark.slow
def test_what_each_document_says(tmp_path: Path, briefing_index: Path) -> None:
    """Issue 27, "Answers from every document": the palette's "What does each document
    say?" shows, for the question typed, one card per document that covers it (its best
    passage, the likeliest first), outside the conversation's context; none: a notice."""
    corpus = tmp_path / "corpus"
    shutil.copytree(briefing_index.parent / "corpus", corpus)
    for name in ("chip-policy.html", "grid-outlook.txt"):
        shutil.copy(DATA / name, corpus / name)
    index = tmp_path / "index"
    build_index(Settings(corpus_dir=corpus, index_dir=index))

    async def go() -> None:
        app = make_app(tmp_path, corpus, index)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await ask(pilot, "Which Chinese vendors are mentioned?")
            box = app.query_one(QuestionInput)
            box.value = "What are vendors doing?"
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            await commands["What does each document say?"].callback()
            await settle(pilot)
            cards = list(app.query(AnswerCard))[1:]
            docs = [c.answer.answer.doc_id for c in cards if c.answer.answer]
            assert sorted(docs) == sorted(["chip-policy.html", BRIEFING_DOC])
            likeliest = [c.answer.confidence for c in cards]
            assert likeliest == sorted(likeliest, reverse=True), likeliest
            assert all(len(c.answer.citations) == 1 for c in cards)
            policy = cards[docs.index("chip-policy.html")]
            assert "Vendors adapted quickly." in flat(text_of(policy).replace("▌", ""))
            assert "what each document says" in text_of(app.query(QuestionCard).last())
            assert box.value == ""
            box.value = "How do I bake sourdough bread?"
            await commands["What does each document say?"].callback()
            await settle(pilot)
            assert len(app.query(AnswerCard)) == 3
            assert "No document covers this" in text_of(app.query(MessageCard).last())

    run(go)
