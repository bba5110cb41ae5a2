"""The CLI as a newcomer meets it (issue 27, item 5), each command run as a subprocess:
`ask` from another folder says where it looked and how to point elsewhere, `info` summarises
a large index, Ctrl+C during `index` says the next run resumes, `batch --format` is explained.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.corpora import briefing_copies
from helpers.hostile import assert_user_error, cli, cli_env

from assistant.build import build_index
from assistant.settings import Settings


def test_ask_without_an_index_names_the_absolute_folder_and_index_flag(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("ask", "Which vendors are mentioned?", cwd=elsewhere)
    line = assert_user_error(proc, 4, f"no index in {elsewhere / 'index'};", "--index")
    assert "run `assistant index` to build it (with --corpus DIR" in line, line
    proc = cli("batch", "-", cwd=elsewhere)
    assert_user_error(proc, 4, f"no index in {elsewhere / 'index'};", "--index")


def test_info_summarises_many_documents_and_lists_them_on_request(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for k in range(12):
        (corpus / f"note-{k:02d}.txt").write_text(f"Note {k}\n\nThe budget rose by {k}%.\n")
    (corpus / "page.md").write_text("# Page\n\nThe plan covers water.\n")
    build_index(Settings(corpus_dir=corpus, index_dir=index))
    short = cli("info", "--corpus", corpus, "--index", index, cwd=tmp_path)
    assert short.returncode == 0, short.stderr
    assert "13 documents" in short.stdout
    assert "12 .txt, 1 .md; `assistant info --documents` lists them" in short.stdout
    assert "note-05.txt" not in short.stdout
    full = cli("info", "--documents", "--corpus", corpus, "--index", index, cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert all(f"  - note-{k:02d}.txt: Note {k}" in full.stdout for k in range(12))


def test_batch_format_is_explained() -> None:
    proc = subprocess.run([sys.executable, "-m", "assistant", "batch", "--help"],
                          capture_output=True, text=True, env=cli_env(), timeout=60)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "--format [jsonl|md]" in text
    assert "md: each answer as Markdown" in text and "jsonl: one Answer" in text


@pytest.mark.slow
def test_ctrl_c_during_index_says_it_resumes_and_how_far_it_got(tmp_path: Path) -> None:
    corpus = briefing_copies(tmp_path / "corpus", 40)
    index = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "index", "--corpus",
                             str(corpus), "--index", str(index)], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = index / "staging" / "meta.sqlite"
    deadline = time.monotonic() + 300
    committed = 0
    while committed == 0:  # interrupt once a first batch of chunks is committed
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
        if staging.is_file():
            try:
                with sqlite3.connect(f"file:{staging}?mode=ro", uri=True) as db:
                    committed = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            except sqlite3.Error:
                committed = 0
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    line = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert line.startswith("error: interrupted with "), line
    assert "chunks done" in line and "the next `assistant index` resumes from there" in line
    done = int(line.split("interrupted with ")[1].split(" of")[0].replace(",", ""))
    assert done >= committed
    # and it does resume: the documents committed whole are not embedded again
    again = cli("index", "--json", "--corpus", corpus, "--index", index, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["chunks_reused"] > 0


def test_only_asks_the_documents_a_glob_or_a_folder_names(tmp_path: Path,
                                                          briefing_index: Path) -> None:
    """Issue 27, "Ask a part of the folder": `ask --only GLOB` and `batch --only GLOB` answer
    from the matching documents (a folder name takes what lies in it); the answer and its
    JSON say which; a GLOB matching nothing is a one-line error (exit 8)."""
    import shutil

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(briefing_index.parent / "corpus", corpus)
    (corpus / "grid").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "ingest" / "grid-outlook.txt",
                corpus / "grid" / "grid-outlook.txt")
    build_index(Settings(corpus_dir=corpus, index_dir=index))
    question = "Which Chinese vendors are mentioned?"
    full = json.loads(cli("ask", question, "--json", "--index", index, cwd=tmp_path).stdout)
    assert "nvidia-h200-china.txt" in {c["doc_id"] for c in full["citations"]}
    assert full["scope"] is None
    for only in ("grid", "grid/", "*outlook*"):
        proc = cli("ask", question, "--json", "--only", only, "--index", index, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert {c["doc_id"] for c in answer["citations"]} == {"grid/grid-outlook.txt"}, only
        assert answer["scope"] == ["grid/grid-outlook.txt"]
    text = cli("ask", question, "--only", "grid", "--index", index, cwd=tmp_path).stdout
    assert "(asked of grid/grid-outlook.txt only)" in text
    questions = tmp_path / "q.txt"
    questions.write_text(f"{question}\n", encoding="utf-8")
    proc = cli("batch", questions, "--only", "nvidia*", "--only", "nothing*", "--index", index,
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert {c["doc_id"] for c in record["citations"]} == {"nvidia-h200-china.txt"}
    proc = cli("ask", question, "--only", "reports/*", "--index", index, cwd=tmp_path)
    assert_user_error(proc, 8, "--only reports/* matches none of the 2 documents",
                      "info --documents")
    proc = cli("batch", questions, "--only", "*.pdf", "--index", index, cwd=tmp_path)
    assert_user_error(proc, 8, "--only *.pdf matches none")


def test_ask_each_shows_the_best_passage_of_every_document_that_covers_it(
        tmp_path: Path, briefing_index: Path) -> None:
    """Issue 27, "Answers from every document": `ask --each` lists, grouped by document, the
    best passage of each document that covers the question, and none of those that do not;
    `--json` gives one Answer per document; nothing covered says so (exit 0)."""
    import shutil

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(briefing_index.parent / "corpus", corpus)
    data = Path(__file__).resolve().parents[1] / "data" / "ingest"
    for name in ("chip-policy.html", "grid-outlook.txt"):
        shutil.copy(data / name, corpus / name)
    build_index(Settings(corpus_dir=corpus, index_dir=index))

    def each(question: str, *more: str) -> subprocess.CompletedProcess[str]:
        proc = cli("ask", question, "--each", *more, "--index", index, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc

    # a question two documents answer, each in its own words
    question = "What are vendors doing?"
    got = json.loads(each(question, "--json").stdout)
    assert got["question"] == question
    docs = [a["answer"]["doc_id"] for a in got["answers"]]
    assert sorted(docs) == ["chip-policy.html", "nvidia-h200-china.txt"], docs
    assert all(len(a["citations"]) == 1 and a["citations"][0]["doc_id"] == d
               for a, d in zip(got["answers"], docs, strict=True))
    text = each(question).stdout
    assert text.startswith(f"2 documents cover this: {question}")
    assert "== chip-policy.html — Chip Policy Explained" in text
    assert "Vendors adapted quickly." in text and "grid-outlook.txt" not in text
    # the likeliest first, in the text as in the JSON
    likeliest = [a["confidence"] for a in got["answers"]]
    assert likeliest == sorted(likeliest, reverse=True), likeliest
    assert text.index(f"== {docs[0]}") < text.index(f"== {docs[1]}")
    assert each(question, "--only", "chip*").stdout.startswith("1 document covers this")
    assert each("How do I bake sourdough bread?").stdout.startswith("No document covers this")
