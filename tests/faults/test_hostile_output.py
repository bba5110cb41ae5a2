"""One hostile document through every surface where text leaves the assistant.

Its file name, title, heading and body hold terminal escapes (OSC 0 sets the window title,
OSC 52 writes the clipboard, ``ESC[201~`` ends bash's bracketed paste, ``ESC[2J`` clears
the screen), C1 controls, the right-to-left override U+202E and Rich/Textual markup
(``[/bold]``, ``[@click=app.quit]``). Every surface — ``ask`` as text and JSON, ``batch``
as Markdown and JSON Lines, ``info`` as text and JSON, ``index``'s warnings, error lines,
the chat's screen, command palette, notifications, clipboard (OSC 52 and
``clipboard.txt``) and exports (Markdown and JSON) — must show them visibly and never pass
a raw control byte or act on the markup; JSON keeps the exact text, escaped.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile import assert_ok, assert_quotes_match, build, cli
from helpers.pilot import ask, run, settle

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What must never reach a screen, a clipboard or a file meant to be read: control
characters but the line break and the tab, line separators, bidi controls."""

ESCAPES = ("\x1b]0;pwned-title\x07 \x1b]52;c;ZWNobyBwd25lZA==\x07 \x1b[2J \x9b31m \x85 "
           "\u202eevil\u202c")
NAME = "[@click=app.quit]click \u202egnp.md"
"""Shows as "click dm.png" reversed where U+202E is obeyed; the markup would quit the chat."""
HEADING = "Grazing [/bold] Habits"
PASTE = "\x1b[201~; touch ~/x #"
BODY = (f"# {HEADING} {ESCAPES}\n\n"
        f"## {HEADING}\n\n"
        f"Cattle graze {PASTE} in the northern meadow for nine hours a day "
        f"[@click=app.quit]quit[/] {ESCAPES}.\n\n"
        "The meadow covers forty hectares of grass and clover.\n")
QUESTION = "How many hours a day do cattle graze in the northern meadow?"
EMPTY_NAME = "[@click=app.quit]\u202eempty\x1b.txt"
"""An empty file: skipped, with a warning that names it."""


def assert_clean(text: str, where: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in RAW.findall(text)})
    assert not found, f"raw {found} in {where}: {text[:300]!r}"


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("hostile-output")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / NAME).write_text(BODY, encoding="utf-8")
    (corpus / EMPTY_NAME).write_text("", encoding="utf-8")
    build(corpus, base / "index")
    return corpus, base / "index"


def _open_index(index: Path) -> Any:
    from assistant.index.store import open_index

    return open_index(index)


@pytest.mark.slow
def test_cli_surfaces_show_a_hostile_document_visibly(hostile_index: tuple[Path, Path]
                                                      ) -> None:
    corpus, index = hostile_index
    cwd = index.parent
    shown: dict[str, str] = {}

    proc = cli("ask", "--index", index, QUESTION, cwd=cwd)
    assert_ok(proc)
    shown["ask"], shown["ask stderr"] = proc.stdout, proc.stderr
    assert "␛[201~; touch ~/x #" in proc.stdout  # shown, not obeyed
    assert "\\u202e" in proc.stdout and "[@click=app.quit]" in proc.stdout

    proc = cli("ask", "--json", "--index", index, QUESTION, cwd=cwd)
    assert_ok(proc)
    shown["ask --json"] = proc.stdout
    answer = json.loads(proc.stdout)
    assert PASTE in answer["answer"]["text"]  # JSON keeps the exact text, escaped

    idx = _open_index(index)
    try:
        from assistant.models import Answer

        assert_quotes_match(Answer.model_validate(answer), idx.document_text)
    finally:
        idx.close()

    (cwd / "q.txt").write_text(QUESTION + "\n", encoding="utf-8")
    proc = cli("batch", "q.txt", "--format", "md", "--index", index, cwd=cwd)
    assert_ok(proc)
    shown["batch md"] = proc.stdout
    assert "␛[201~" in proc.stdout
    proc = cli("batch", "q.txt", "-o", "out.jsonl", "--index", index, cwd=cwd)
    assert_ok(proc)
    shown["batch jsonl"] = (cwd / "out.jsonl").read_text(encoding="utf-8")
    assert PASTE in json.loads(shown["batch jsonl"])["answer"]["text"]

    for args in (["info"], ["info", "--json"]):
        proc = cli(*args, "--index", index, "--corpus", corpus, cwd=cwd)
        assert_ok(proc)
        shown[" ".join(args)] = proc.stdout
    assert "Grazing [/bold] Habits ␛]0;pwned-title␇" in shown["info"]
    titles = [d["title"] for d in json.loads(shown["info --json"])["documents"]]
    assert any("\x1b]0;pwned-title\x07" in t for t in titles)

    proc = cli("index", "--index", index, "--corpus", corpus, cwd=cwd)
    assert_ok(proc)
    shown["index"], shown["index stderr"] = proc.stdout, proc.stderr
    assert "empty" in proc.stderr  # the skipped file's warning names it

    proc = cli("batch", f"{NAME}\x1b]0;t\x07.txt", "--index", index, cwd=cwd)
    assert proc.returncode == 8 and "does not exist" in proc.stderr
    shown["error"] = proc.stderr
    proc = cli("ask", "--json", "--index", index / f"{NAME}\x1b[2J\u202e", QUESTION, cwd=cwd)
    assert proc.returncode == 4
    shown["error --json"] = proc.stderr
    json.loads(proc.stderr)

    for where, text in shown.items():
        assert_clean(text, where)


@pytest.mark.slow
def test_chat_surfaces_show_a_hostile_document_visibly(hostile_index: tuple[Path, Path],
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.segment import Segment
    from textual.command import CommandList, CommandPalette
    from textual.widgets import Static

    from assistant.chat.export import export_to
    from assistant.settings import Settings
    from assistant.tui.app import create_app

    _, index = hostile_index
    exports = tmp_path / "exports"
    monkeypatch.setenv("ASSISTANT_EXPORT_DIR", str(exports))
    live = tmp_path / "corpus"  # a copy, so the chat can see it change
    live.mkdir()
    (live / NAME).write_text(BODY, encoding="utf-8")
    (live / EMPTY_NAME).write_text("", encoding="utf-8")
    app = create_app(Settings(corpus_dir=live, index_dir=index),
                     history_file=tmp_path / "history")
    app.which = lambda _: None  # no clipboard tool: copies also go to clipboard.txt
    seen: dict[str, str] = {}

    def screen_segments() -> list[Segment]:
        out: list[Segment] = []
        for w in app.screen.query("*"):
            if not w.children and isinstance(w, Static | CommandList):
                width, height = w.outer_size
                from textual.geometry import Region

                out += [seg for strip in w.render_lines(Region(0, 0, width, height))
                        for seg in strip]
        return out

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            answer = app.chat.answers[-1]
            assert answer.answer is not None and PASTE in answer.answer.text
            segments = screen_segments()
            seen["chat screen"] = "".join(s.text for s in segments)
            assert not any(s.style and s.style.meta.get("@click") for s in segments)

            await pilot.press("ctrl+p")  # the heading and the name are in its commands
            await pilot.pause(0.5)
            assert app.is_running and isinstance(app.screen, CommandPalette)
            palette = app.screen.query_one(CommandList)
            prompts = [str(palette.get_option_at_index(i).prompt)
                       for i in range(palette.option_count)]
            seen["palette"] = "\n".join(prompts)
            assert any(f"Ask only {NAME[:17]}" in p for p in prompts), prompts
            assert any(HEADING in p for p in prompts), prompts
            await pilot.press(*"Ask only")
            await pilot.pause(0.5)
            seen["palette search"] = "".join(s.text for s in screen_segments())
            assert "[@click=app.quit]" in seen["palette search"]
            await pilot.press("escape")
            await pilot.pause()
            assert app.is_running

            await pilot.press("ctrl+y")
            await pilot.pause()
            seen["clipboard (OSC 52)"] = app.clipboard
            assert "␛[201~; touch ~/x #" in app.clipboard
            seen["clipboard.txt"] = (exports / "clipboard.txt").read_text(encoding="utf-8")
            app.action_copy_citation(1)
            await pilot.pause()
            seen["citation copy"] = app.clipboard

            await pilot.press("ctrl+s")
            await pilot.pause()
            md = next(exports.glob("conversation-*.md")).read_text(encoding="utf-8")
            seen["export md"] = md
            assert "␛[201~" in md and HEADING in md
            seen["export json"] = export_to(app.chat.answers, tmp_path / "chat.json").read_text(
                encoding="utf-8")
            again = json.loads(seen["export json"])["answers"][0]["answer"]["text"]
            assert PASTE in again

            # the corpus changes: a notice names the file
            (live / NAME).write_text(BODY + "More grass grows in May.\n", encoding="utf-8")
            deadline = time.monotonic() + 30
            while not any("changed since" in n.message for n in app._notifications):
                assert time.monotonic() < deadline, "no notice of the change"
                await pilot.pause(0.2)
            seen["notifications"] = "\n".join(f"{n.title}: {n.message}"
                                              for n in app._notifications)
            assert "\\u202egnp.md" in seen["notifications"]
            seen["window title"] = f"{app.title} {app.sub_title} {app.screen.title}"
            assert app.is_running

    run(go)
    for where, text in seen.items():
        assert_clean(text, where)
