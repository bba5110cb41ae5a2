"""Hostile corpora (issue 6): whatever analysts drop into ``corpus/`` — nothing at all,
files we cannot read, odd encodings, huge exports, broken PDFs, scripts in HTML, links
out of the corpus or in circles, the same article twice, a file edited mid-build — gets
a clear outcome, and the build goes on with the rest.

Builds and answers go through the CLI where the user sees the outcome (exit code, one
line on stderr, warnings naming the file); the real model and index are used throughout.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile import (
    BRIEFING,
    TESTS,
    assert_ok,
    assert_quotes_match,
    assert_user_error,
    build,
    cli,
    cli_env,
    encrypted_pdf,
    generated_text,
    minimal_pdf,
)

# --- empty and unusable corpora -----------------------------------------------------------


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    proc = cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path)
    assert_user_error(proc, 3, "has no .txt, .md, .html or .pdf documents", "assistant index")
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    proc = cli("index", "--corpus", "nowhere", "--index", "index", cwd=tmp_path)
    assert_user_error(proc, 3, "does not exist", "--corpus DIR")


def test_only_unsupported_files_is_a_clear_error(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "slides.pptx").write_bytes(b"PK\x03\x04" + os.urandom(200))
    (corpus / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04" + os.urandom(200))
    proc = cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path)
    assert_user_error(proc, 3, "3 other files skipped")
    proc = cli("ask", "--index", "index", "anything?", cwd=tmp_path)
    assert_user_error(proc, 4, "no index", "assistant index")


def test_corpus_of_only_unreadable_documents_changes_nothing(tmp_path: Path) -> None:
    """Supported names, unreadable contents: the build fails clearly and publishes nothing."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really\n%%EOF")
    proc = cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path)
    assert_user_error(proc, 3, "none of the documents", "binary.txt: binary file, not text",
                      "broken.pdf: malformed PDF", "nothing was changed")
    assert not (tmp_path / "index" / "CURRENT").exists()


# --- one corpus with every hostile file, built once through the CLI -----------------------

CAFE = "The café on the corner serves naïve espresso drinks to the committee every Tuesday."
ZURICH = "The délégué's résumé mentions a façade renovation in Zürich last spring."
CREME = "The crème brûlée recipe was judged naïve by the jury in Besançon at the festival."
HARBOUR = "The harbour of Valletta handled nine thousand containers in March."
LIGHTHOUSE = "The lighthouse keeper counted forty ships passing the northern cape."
SECRETS = ("scriptsecretxyzzy", "stylesecretplugh", "noscriptsecretfrobozz", "templatesecretgnusto")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("hostile")
    corpus = base / "corpus"
    corpus.mkdir()
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The moon base stores outsidesecretzork in a vault.\n")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (corpus / "elf.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(4000))
    (corpus / "bom16.txt").write_bytes(f"Café notes\n\n{CAFE}\n".encode("utf-16"))
    (corpus / "nobom16.txt").write_bytes(f"Résumé notes\n\n{ZURICH}\n".encode("utf-16-le"))
    (corpus / "latin1.txt").write_bytes(f"Crème notes\n\n{CREME}\n".encode("latin-1"))
    (corpus / "page.html").write_text(
        "<html><head><title>Harbour</title><style>.stylesecretplugh{color:red}</style>"
        "<script>var scriptsecretxyzzy = 1;</script></head><body><h1>Harbour report</h1>"
        f"<p>{HARBOUR}</p><script type='module'>alert('scriptsecretxyzzy')</script>"
        "<noscript>noscriptsecretfrobozz</noscript><template>templatesecretgnusto</template>"
        "<p style='x'>Crane operators worked <b>double</b> shifts.</p></body></html>",
        encoding="utf-8")
    (corpus / "ok.pdf").write_bytes(minimal_pdf(LIGHTHOUSE))
    (corpus / "locked.pdf").write_bytes(encrypted_pdf("The vault code is encryptedsecret."))
    (corpus / "malformed.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ngarbage\n%%EOF")
    (corpus / "truncated.pdf").write_bytes(minimal_pdf("cut short")[:150])
    (corpus / "a-copy.txt").write_bytes(BRIEFING.read_bytes())
    (corpus / "b-copy.txt").write_bytes(BRIEFING.read_bytes())
    (corpus / "link-out.txt").symlink_to(outside / "secret.txt")
    (corpus / "link-dir").symlink_to(outside)
    (corpus / "loop-a.txt").symlink_to("loop-b.txt")
    (corpus / "loop-b.txt").symlink_to("loop-a.txt")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to("..")
    (corpus / "sub" / "self").symlink_to(".")
    proc = cli("index", "--corpus", corpus, "--index", base / "index", "--json", cwd=base)
    assert_ok(proc)
    return {"base": base, "index": base / "index", "proc": proc,
            "summary": json.loads(proc.stdout)}


def _stderr_lines(hostile: dict[str, Any]) -> list[str]:
    return [str(line) for line in hostile["proc"].stderr.splitlines()]


def _stored(index: Path) -> dict[str, str]:
    """Every document text the index holds, read straight from its database."""
    from assistant.index.store import open_index

    idx = open_index(index)
    try:
        return {str(d): str(t) for d, t in idx.conn.execute("SELECT doc_id, text FROM documents")}
    finally:
        idx.close()


def _ask_cli(hostile: dict[str, Any], question: str) -> Any:
    from assistant.models import Answer

    proc = cli("ask", "--json", "--index", hostile["index"], question, cwd=hostile["base"])
    assert_ok(proc)
    return Answer.model_validate_json(proc.stdout)


def test_binary_files_named_txt_are_skipped_with_a_warning(hostile: dict[str, Any]) -> None:
    lines = _stderr_lines(hostile)
    assert "warning: skipped binary.txt: binary file, not text" in lines
    assert "warning: skipped elf.txt: binary file, not text" in lines
    skipped = {s["path"] for s in hostile["summary"]["skipped"]}
    assert {"binary.txt", "elf.txt"} <= skipped
    assert "binary.txt" not in _stored(hostile["index"])


@pytest.mark.parametrize(("doc_id", "question", "expected", "note"), [
    ("bom16.txt", "Which café serves espresso to the committee?", CAFE, "UTF-16-LE (byte-order"),
    ("nobom16.txt", "Where is the façade renovation?", ZURICH, "UTF-16-LE (no byte-order"),
    ("latin1.txt", "Who judged the crème brûlée recipe?", CREME, "Windows-1252"),
])
def test_other_encodings_are_indexed_and_answerable(hostile: dict[str, Any], doc_id: str,
                                                    question: str, expected: str,
                                                    note: str) -> None:
    assert any(line.startswith(f"warning: {doc_id}: ") and note in line
               for line in _stderr_lines(hostile)), hostile["proc"].stderr
    stored = _stored(hostile["index"])[doc_id]
    assert expected in stored
    answer = _ask_cli(hostile, question)
    assert not answer.abstained, answer.message
    assert answer.answer.doc_id == doc_id
    assert answer.answer.text == expected  # decoded right: "café", "naïve", "Zürich"
    assert_quotes_match(answer, _stored(hostile["index"]).__getitem__)


def test_encrypted_and_malformed_pdfs_are_skipped_with_a_reason(hostile: dict[str, Any]
                                                                ) -> None:
    lines = _stderr_lines(hostile)
    assert "warning: skipped locked.pdf: encrypted PDF (needs a password)" in lines
    assert any(line.startswith("warning: skipped malformed.pdf: malformed PDF") for line in lines)
    assert any(line.startswith("warning: skipped truncated.pdf: ") for line in lines), lines
    stored = _stored(hostile["index"])
    assert "locked.pdf" not in stored and "malformed.pdf" not in stored
    assert LIGHTHOUSE in stored["ok.pdf"]  # a sound PDF beside them is indexed
    answer = _ask_cli(hostile, "What did the lighthouse keeper count?")
    assert answer.answer is not None and answer.answer.text == LIGHTHOUSE


def test_html_scripts_and_styles_are_not_indexed(hostile: dict[str, Any]) -> None:
    from assistant.index.store import open_index

    stored = _stored(hostile["index"])
    assert HARBOUR in stored["page.html"]
    assert "Crane operators worked double shifts." in stored["page.html"]
    for secret in SECRETS:
        assert all(secret not in text for text in stored.values()), secret
    idx = open_index(hostile["index"])
    try:
        for secret in SECRETS:
            hits = idx.conn.execute("SELECT count(*) FROM sentence_fts WHERE sentence_fts MATCH ?",
                                    (secret,)).fetchone()[0]
            assert hits == 0, secret
    finally:
        idx.close()


def test_symlinks_are_never_followed(hostile: dict[str, Any]) -> None:
    lines = _stderr_lines(hostile)
    for name in ("link-out.txt", "link-dir", "loop-a.txt", "loop-b.txt", "sub/up", "sub/self"):
        assert f"warning: skipped {name}: symbolic link, not followed" in lines, name
    stored = _stored(hostile["index"])
    assert all("outsidesecretzork" not in t for t in stored.values())
    assert not any(d.startswith(("link-dir/", "sub/")) for d in stored)


def test_a_document_deeper_than_the_recursion_limit_is_indexed_and_answers(
        tmp_path: Path) -> None:
    """The folder walk must not recurse per level (``os.walk`` does): a corpus deeper than
    Python's recursion limit crashed the build. The limit is lowered to 250 for the build
    (a 1,200-level tree would be past it too, but pytest's own clean-up cannot delete one)."""
    folder = tmp_path / "corpus"
    for _ in range(300):
        folder /= "d"
    folder.mkdir(parents=True)
    (folder / "harbour.txt").write_text("Harbour report\n\nThe new quay opened in March. "
                                        "Cargo volume rose by a tenth over the year.\n",
                                        encoding="utf-8")
    assert_ok(cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path,
                  boot="import sys; sys.setrecursionlimit(250)"))
    proc = cli("ask", "--json", "--index", "index", "When did the new quay open?", cwd=tmp_path)
    assert_ok(proc)
    answer = json.loads(proc.stdout)["answer"]
    assert "March" in answer["text"] and answer["doc_id"] == "d/" * 300 + "harbour.txt"


def test_names_that_are_not_utf8_or_hold_a_line_break_are_indexed_under_printable_ids(
        tmp_path: Path) -> None:
    """Such names crashed the build (they cannot be stored or printed as they are); now each
    document is indexed under its name with the odd bytes escaped, and stays up to date."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / os.fsdecode(b"caf\xe9.txt")).write_text(
        "Cafe report\n\nThe new quay opened in March.\n", encoding="utf-8")
    (corpus / "line\nbreak.txt").write_text(
        "Line report\n\nCargo volume rose by a tenth over the year.\n", encoding="utf-8")
    assert_ok(cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path))
    for question, doc_id, words in [("When did the new quay open?", "caf\\xe9.txt", "March"),
                                    ("How much did cargo volume rise?", "line\\nbreak.txt",
                                     "a tenth")]:
        proc = cli("ask", "--json", "--index", "index", question, cwd=tmp_path)
        assert_ok(proc)
        answer = json.loads(proc.stdout)["answer"]
        assert answer["doc_id"] == doc_id and words in answer["text"]
    again = cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path)
    assert_ok(again)
    assert "up to date" in again.stdout + again.stderr


def test_a_corpus_or_index_under_a_folder_that_is_not_utf8_is_a_clear_error(
        tmp_path: Path) -> None:
    """The manifest cannot store such a path, nor FAISS or the tokenizer open it: one line
    naming the folder and exit 3 (corpus) or 6 (index), before anything is written, not a
    crash; an index moved there is refused when opened (exit 4), not called damaged."""
    odd = tmp_path / os.fsdecode(b"archiv\xe9")
    (odd / "corpus").mkdir(parents=True)
    shutil.copy(BRIEFING, odd / "corpus")
    proc = cli("index", "--corpus", odd / "corpus", "--index", "index", cwd=tmp_path)
    assert_user_error(proc, 3, "archiv\\xe9/corpus is not valid UTF-8", "--corpus DIR")
    assert not (tmp_path / "index").exists()
    shutil.copytree(odd / "corpus", tmp_path / "corpus")
    proc = cli("index", "--corpus", "corpus", "--index", odd / "index", cwd=tmp_path)
    assert_user_error(proc, 6, "archiv\\xe9/index is not valid UTF-8", "--index DIR")
    assert not (odd / "index").exists()
    # an index built elsewhere and moved there: refused when opened, with the same reason
    assert_ok(cli("index", "--corpus", "corpus", "--index", "index", cwd=tmp_path))
    shutil.move(tmp_path / "index", odd / "moved")
    proc = cli("ask", "--index", odd / "moved", "Which vendors are named?", cwd=tmp_path)
    assert_user_error(proc, 4, "archiv\\xe9/moved is not valid UTF-8", "move the index")


def test_duplicates_are_both_indexed_but_collapsed_in_answers(hostile: dict[str, Any]) -> None:
    from assistant.index.store import open_index
    from assistant.qa.pipeline import Answerer
    from assistant.settings import Settings

    stored = _stored(hostile["index"])
    assert stored["a-copy.txt"] == stored["b-copy.txt"]
    questions = [json.loads(line)["question"] for line in
                 (TESTS / "data" / "dev_questions.jsonl").read_text().splitlines()[:25]]
    idx = open_index(hostile["index"])
    try:
        answerer = Answerer(idx, Settings(index_dir=hostile["index"]))
        for q in questions:
            answer = answerer.ask(q, top_k=10).answer
            quotes = [c.quote for c in answer.citations]
            assert len(quotes) == len(set(quotes)), (q, quotes)
            assert_quotes_match(answer, idx.document_text)
    finally:
        idx.close()


def test_unaffected_documents_answer_as_usual(hostile: dict[str, Any]) -> None:
    answer = _ask_cli(hostile, "What revenue share does the US get from H200 sales?")
    assert "25% revenue" in answer.citations[0].quote
    assert answer.citations[0].doc_id in ("a-copy.txt", "b-copy.txt")


# --- a document that changes while it is being indexed -------------------------------------

V1 = "Tide tables\n\nThe spring tide at Dover reached 6.1 metres on Monday.\n"
V2 = ("Tide tables\n\nRevised after the survey.\n\n"
      "The spring tide at Dover reached 7.4 metres on Monday.\n")


def test_document_changed_while_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is rewritten while the build reads it (after its bytes, before the check of
    the open file): the index holds the version read (text, hash and offsets agree), says
    so, and the next build takes the new one."""
    from assistant import ingest, source
    from assistant.index.store import open_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tides.txt").write_text(V1, encoding="utf-8")
    (corpus / BRIEFING.name).write_bytes(BRIEFING.read_bytes())
    read_capped = source._read_capped

    def rewrite_after_reading(fd: int, limit: int, expected: int) -> bytes:
        raw = read_capped(fd, limit, expected)
        if raw == V1.encode():
            (corpus / "tides.txt").write_text(V2, encoding="utf-8")
        return raw

    monkeypatch.setattr(source, "_read_capped", rewrite_after_reading)
    summary = build(corpus, tmp_path / "index")
    monkeypatch.undo()
    assert any("tides.txt changed while it was being indexed" in w for w in summary.warnings)
    idx = open_index(tmp_path / "index")
    try:
        assert idx.document_text("tides.txt") == V1
        assert idx.manifest.documents["tides.txt"].content_hash == ingest.content_hash(
            V1.encode())
        for start, end in idx.conn.execute("SELECT start, end FROM sentences WHERE doc_id=?",
                                           ("tides.txt",)):
            assert 0 <= start < end <= len(V1)
    finally:
        idx.close()
    from helpers.hostile import ask

    assert "6.1 metres" in ask(tmp_path / "index", "How high was the spring tide at Dover?"
                               ).answer.text
    summary = build(corpus, tmp_path / "index")
    assert summary.changed == ["tides.txt"] and not summary.warnings
    answer = ask(tmp_path / "index", "How high was the spring tide at Dover?")
    assert answer.answer is not None and "7.4 metres" in answer.answer.text


def test_document_rewritten_repeatedly_during_cli_build(tmp_path: Path) -> None:
    """A writer thread keeps replacing a file while ``assistant index`` runs: the build ends
    cleanly, the index holds exactly one whole version, and a later build settles."""
    import threading

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / BRIEFING.name).write_bytes(BRIEFING.read_bytes())
    versions = [f"Counter\n\nThe counter shows {n} visitors today. " * 40 + "\n"
                for n in range(1000, 1100)]
    target = corpus / "counter.txt"
    target.write_text(versions[0])
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n = (n + 1) % len(versions)
            tmp = target.with_name(".counter.tmp")
            tmp.write_text(versions[n])
            os.replace(tmp, target)  # each version appears whole
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        proc = cli("index", "--corpus", corpus, "--index", "index", cwd=tmp_path)
    finally:
        stop.set()
        thread.join()
    assert_ok(proc)
    stored = _stored(tmp_path / "index")
    assert stored["counter.txt"] in versions
    assert_ok(cli("index", "--corpus", corpus, "--index", "index", cwd=tmp_path))
    assert _stored(tmp_path / "index")["counter.txt"] == target.read_text()


# --- a 50 MB export --------------------------------------------------------------------------

FAST_ENCODER_BOOT = (f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                     "from helpers.fast_encoder import build_main")
MEMORY_BOUND_MB = 1500


@pytest.mark.slow
def test_50mb_text_file_is_streamed_with_bounded_memory(tmp_path: Path) -> None:
    """A 50 MB file (~65,000 chunks) is chunked, embedded and committed in batches: the build
    process's peak RSS stays far below the file's unstreamed cost (2.4 GB measured before
    chunks were streamed within a document). The transformer is swapped for a free stand-in
    (tests/helpers/fast_encoder.py): the real one would take far longer than the suite allows
    for 65,000 chunks here, at a memory cost per batch that does not grow with the file."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = generated_text(50_000_000, seed=11)
    tail = "The final ledger closes with the quartermaster signing the brass register."
    text += f"\nClosing\n\n{tail}\n"
    (corpus / "export.txt").write_text(text, encoding="utf-8")
    size = (corpus / "export.txt").stat().st_size
    assert size >= 50_000_000
    cmd = [sys.executable, "-c", f"{FAST_ENCODER_BOOT}\nbuild_main()",
           "--corpus", str(corpus), "--index", "index"]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    started = time.perf_counter()
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=o, stderr=e)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    peak_mb = usage.ru_maxrss / 1024
    print(f"\n50 MB build: peak RSS {peak_mb:.0f} MB, {seconds:.0f} s")
    assert proc.returncode == 0, err.read_text()
    assert "Traceback" not in err.read_text()
    summary = json.loads(out.read_text())
    assert summary["chunks_embedded"] > 50_000
    assert peak_mb < MEMORY_BOUND_MB, f"peak RSS {peak_mb:.0f} MB"
    db = next((tmp_path / "index").glob("gen-*/meta.sqlite"))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        stored, complete = conn.execute("SELECT text, complete FROM documents").fetchone()
        assert stored == text and complete == 1
        start, end = conn.execute("SELECT start, end FROM sentences ORDER BY start DESC LIMIT 1"
                                  ).fetchone()
        assert stored[start:end] == tail  # the whole file was read, to its last sentence
        rng = random.Random(3)
        for cid in rng.sample(range(1, summary["chunk_count"]), 50):
            s, e = conn.execute("SELECT start, end FROM chunks WHERE id=?", (cid,)).fetchone()
            assert stored[s:e].strip() == stored[s:e] and stored[s:e]
    finally:
        conn.close()
