"""`assistant ask`, `batch` and `eval` as a user runs them: outputs, files and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.models import Answer, BatchErrorRecord, EvalReport

DATA = Path(__file__).resolve().parents[1] / "data"


def run(*args: str, cwd: Path | None = None, buffered: bool = False
        ) -> subprocess.CompletedProcess[str]:
    """``buffered``: stdout block-buffered, as a user's pipe is (this machine's environment
    sets PYTHONUNBUFFERED, which would hide output never flushed)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if buffered:
        env.pop("PYTHONUNBUFFERED", None)
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_ask_prints_quote_and_citations(briefing_index: Path) -> None:
    r = run("ask", "Which Chinese vendors are mentioned?", "--index", str(briefing_index))
    assert r.returncode == 0, r.stderr
    assert "Huawei, Baidu, Cambricon, Biren, MetaX" in r.stdout
    assert "[1]" in r.stdout and " line " in r.stdout
    assert r.stderr == ""


def test_ask_json_is_an_answer(briefing_index: Path) -> None:
    r = run("ask", "What revenue share does the US get?", "--json", "--top-k", "2",
            "--index", str(briefing_index))
    assert r.returncode == 0, r.stderr
    a = Answer.model_validate_json(r.stdout)
    assert a.answer is not None and "25%" in a.answer.text
    assert len(a.citations) == 2


def test_ask_abstains_plainly(briefing_index: Path) -> None:
    r = run("ask", "What's the weather in Paris tomorrow?", "--index", str(briefing_index))
    assert r.returncode == 0
    assert "does not cover this" in r.stdout
    assert "do not answer" in r.stdout
    assert "confidence" not in r.stdout, "a refusal shows no confidence figure"


def test_ask_without_index_is_one_clear_line(tmp_path: Path) -> None:
    r = run("ask", "anything", "--index", str(tmp_path / "none"))
    assert r.returncode == 4
    assert r.stderr.strip().count("\n") == 0
    assert "assistant index" in r.stderr and "Traceback" not in r.stderr


def test_ask_empty_question_exits_8(briefing_index: Path) -> None:
    r = run("ask", "  ", "--index", str(briefing_index))
    assert r.returncode == 8
    assert r.stderr.startswith("error: the question is empty")


def test_batch_jsonl_conversations_and_bad_lines(briefing_index: Path, tmp_path: Path) -> None:
    src = tmp_path / "q.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": "a", "question": "Which Chinese vendors are mentioned?",
                    "conversation": "c1"}),
        "{not json",
        json.dumps({"id": "b", "question": "Which of them are deploying rack-scale systems?",
                    "conversation": "c1"}),
        "",
        json.dumps({"id": "c", "text": "missing question field"}),
        json.dumps({"question": "What's the weather in Paris tomorrow?"}),
    ]) + "\n")
    out = tmp_path / "out.jsonl"
    r = run("batch", str(src), "-o", str(out), "--index", str(briefing_index))
    assert r.returncode == 8, r.stderr
    assert "2 line(s)" in r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    first, bad, follow, missing, unanswerable = (json.loads(x) for x in lines)
    assert Answer.model_validate(first).id == "a"
    assert BatchErrorRecord.model_validate(bad).line == 2
    fa = Answer.model_validate(follow)
    assert fa.answer is not None and "Huawei and Baidu are deploying" in fa.answer.text
    assert BatchErrorRecord.model_validate(missing).line == 5
    un = Answer.model_validate(unanswerable)
    assert un.abstained and un.id == "6"


def test_batch_txt_markdown(briefing_index: Path, tmp_path: Path) -> None:
    src = tmp_path / "q.txt"
    src.write_text("Which Chinese vendors are mentioned?\n\n"
                   "What's the weather in Paris tomorrow?\n")
    r = run("batch", str(src), "--format", "md", "--index", str(briefing_index))
    assert r.returncode == 0, r.stderr
    assert "### Which Chinese vendors are mentioned?" in r.stdout
    assert "> Chinese vendors (Huawei" in r.stdout
    assert "does not cover this" in r.stdout


def test_batch_missing_file(briefing_index: Path, tmp_path: Path) -> None:
    r = run("batch", str(tmp_path / "nope.jsonl"), "--index", str(briefing_index))
    assert r.returncode == 8 and "does not exist" in r.stderr


@pytest.mark.slow
def test_eval_reports_metrics(briefing_index: Path) -> None:
    r = run("eval", str(DATA / "dev_questions.jsonl"), "--json", "--index", str(briefing_index))
    assert r.returncode == 0, r.stderr
    rep = EvalReport.model_validate_json(r.stdout)
    assert rep.questions >= 40
    assert rep.top1_accuracy >= 0.63
    text = run("eval", str(DATA / "dev_questions.jsonl"), "--index", str(briefing_index))
    assert "top-1 accuracy" in text.stdout and "latency p50" in text.stdout


def test_ask_on_a_stale_index_answers_and_says_so(workspace: tuple[Path, Path]) -> None:
    """`ask` ends without the interpreter's teardown: the answer on stdout and the stale note
    on stderr must both be written out before it goes."""
    corpus, index = workspace
    assert run("index", "--corpus", str(corpus), "--index", str(index)).returncode == 0
    doc = next(p for p in corpus.iterdir() if p.is_file())
    doc.write_text(doc.read_text(encoding="utf-8") + "\nA sentence added later.\n",
                   encoding="utf-8")
    r = run("ask", "What revenue share does the US get?", "--json", "--index", str(index),
            buffered=True)
    assert r.returncode == 0, r.stderr
    assert "25%" in Answer.model_validate_json(r.stdout).answer.text  # type: ignore[union-attr]
    assert "the index is stale (1 document(s) changed" in r.stderr
    assert r.stderr.endswith("run `assistant index` to update it\n")


def test_a_question_asked_like_an_analysts_line_gets_the_reply(tmp_path: Path) -> None:
    """Issue 26: asked as the analyst asked it on the call, the answer quoted the analyst's
    own question line; it is quoted with the reply that follows it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "call-notes.txt").write_bytes((DATA / "formats" / "call-notes.txt").read_bytes())
    index = str(tmp_path / "index")
    assert run("index", "--corpus", str(corpus), "--index", index).returncode == 0
    r = run("ask", "Will the hedging policy change?", "--json", "--index", index)
    assert r.returncode == 0, r.stderr
    a = Answer.model_validate_json(r.stdout)
    assert a.answer is not None and "keeps hedging 80% of next year's output" in a.answer.text
