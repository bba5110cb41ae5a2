"""Hostile batch files (issue 6): malformed JSON, missing fields, wrong types, blank lines,
bytes that are not UTF-8 — each bad line becomes an error record naming its line number
while the rest are answered, and the exit code (8) says some lines failed. A 100,000-line
file is streamed: answers are written as they come, whole lines only, so an interrupted
batch keeps everything it answered.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile import assert_ok, assert_user_error, cli, cli_env

GOOD = [
    "What revenue share does the US get from H200 sales?",
    "Which Chinese vendors are mentioned?",
    "What does Beijing want?",
]

# (raw line, expected: "answer" | "blank" | an error fragment)
JSONL_LINES: list[tuple[bytes, str]] = [
    (json.dumps({"question": GOOD[0], "id": "first"}).encode(), "answer"),
    (b'{"question": "unterminated', "not valid JSON"),
    (b"", "blank"),
    (b'{"id": "no-question"}', "question: field required"),
    (b'{"question": 42}', "question: input should be a valid string"),
    (b'{"question": null, "id": "null-q"}', "question: input should be a valid string"),
    (b'["a", "list"]', "expected a JSON object"),
    (b'"just a string"', "expected a JSON object"),
    (json.dumps({"question": GOOD[1], "conversation": 7}).encode(),
     "conversation: input should be a valid string"),
    (b'{"question": "caf\xe9 au lait?"}', "not UTF-8 text"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (b"   \t  ", "blank"),
    (json.dumps({"question": GOOD[2], "extra": "ignored"}).encode(), "answer"),
    (b"[" * 50_000, "not valid JSON"),
    (b'{"question": "   "}', "the question is empty"),
    (json.dumps({"question": "x" * 5000}).encode(), "the limit is 2,000"),
    (json.dumps({"question": GOOD[1], "id": "last"}).encode(), "answer"),
    (json.dumps({"question": "\x1b[31mWhat does Beijing want?\x1b[0m"}).encode(), "answer"),
]


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_malformed_jsonl_lines_become_error_records(briefing_index: Path, tmp_path: Path
                                                    ) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_bytes(b"\n".join(raw for raw, _ in JSONL_LINES) + b"\n")
    proc = cli("batch", batch, "-o", tmp_path / "out.jsonl", "--index", briefing_index,
               cwd=tmp_path)
    failing = sum(1 for _, want in JSONL_LINES if want not in ("answer", "blank"))
    assert_user_error(proc, 8, f"{failing} line(s) of", "see the error records")
    records = _records(tmp_path / "out.jsonl")
    expected = [(n, want) for n, (_, want) in enumerate(JSONL_LINES, start=1) if want != "blank"]
    assert len(records) == len(expected)  # one record per non-blank line, in input order
    for rec, (line_no, want) in zip(records, expected, strict=True):
        if want == "answer":
            assert "error" not in rec and "abstained" in rec, (line_no, rec)
        else:
            assert rec["line"] == line_no, (rec, line_no)
            assert want in rec["error"], (want, rec)
    assert records[0]["id"] == "first" and records[-2]["id"] == "last"
    assert records[-1]["question"] == "What does Beijing want?"


def test_txt_batch_with_blank_and_non_utf8_lines(briefing_index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.txt"
    batch.write_bytes(b"\xef\xbb\xbf" + GOOD[0].encode() + b"\r\n\r\n   \n"
                      + b"Qu\xe9 pasa?\n" + GOOD[1].encode() + b"\n\n")
    proc = cli("batch", batch, "-o", tmp_path / "out.jsonl", "--index", briefing_index,
               cwd=tmp_path)
    assert_user_error(proc, 8, "1 line(s) of")
    records = _records(tmp_path / "out.jsonl")
    assert [r.get("line") for r in records] == [None, 4, None]
    assert records[0]["question"] == GOOD[0] and records[0]["id"] == "1"  # BOM dropped
    assert records[1]["error"].startswith("not UTF-8 text")
    assert records[2]["id"] == "5" and records[2]["question"] == GOOD[1]


@pytest.mark.slow
def test_all_good_batch_exits_zero_and_markdown_too(briefing_index: Path, tmp_path: Path
                                                    ) -> None:
    batch = tmp_path / "q.txt"
    batch.write_text("\n".join(GOOD) + "\n", encoding="utf-8")
    proc = cli("batch", batch, "--index", briefing_index, cwd=tmp_path)
    assert_ok(proc)
    assert len(proc.stdout.splitlines()) == 3
    proc = cli("batch", batch, "--format", "md", "--index", briefing_index, cwd=tmp_path)
    assert_ok(proc)
    assert proc.stdout.count("### ") >= 3


def test_unusable_batch_files_are_clear_errors(briefing_index: Path, tmp_path: Path) -> None:
    assert_user_error(cli("batch", "missing.jsonl", "--index", briefing_index, cwd=tmp_path),
                      8, "does not exist")
    (tmp_path / "q.csv").write_text("question\nwhat?\n")
    assert_user_error(cli("batch", "q.csv", "--index", briefing_index, cwd=tmp_path),
                      8, "must be .txt")
    (tmp_path / "dir.txt").mkdir()
    assert_user_error(cli("batch", "dir.txt", "--index", briefing_index, cwd=tmp_path),
                      8, "does not exist")


# --- a 100,000-line batch: streamed, and whole lines only -----------------------------------

BIG_LINES = 100_000


def _big_batch(path: Path) -> None:
    questions = [*GOOD, "Who are the Chinese GPU vendors?", "What is the price of an H200?",
                 "How did the company respond?", "Why did the export controls fail?"]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(BIG_LINES):
            conv = f', "conversation": "c{i // 3}"' if i % 7 == 0 else ""
            fh.write(json.dumps({"question": questions[i % len(questions)],
                                 "id": f"q{i}"})[:-1] + conv + "}\n")


WITH_CTRL_C = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "runpy.run_module('assistant', run_name='__main__', alter_sys=True)")
"""``python -m assistant`` with Python's own Ctrl+C handler. A suite started as a background
job of a shell without job control runs with SIGINT ignored, which its children inherit,
and Python then installs no handler at all: the batch never sees the Ctrl+C this sends."""


def _interrupted_batch(index: Path, tmp_path: Path, sig: int, seconds: float
                       ) -> tuple[subprocess.CompletedProcess[bytes], list[str], float]:
    batch = tmp_path / "big.jsonl"
    if not batch.exists():
        _big_batch(batch)
    out = tmp_path / f"out-{sig}.jsonl"
    cmd = [sys.executable, "-c", WITH_CTRL_C, "batch", str(batch), "-o", str(out),
           "--index", str(index)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    started = time.perf_counter()
    while not out.exists() or out.stat().st_size == 0:  # the first answer is out
        assert proc.poll() is None, proc.communicate()
        assert time.perf_counter() - started < 60
        time.sleep(0.05)
    first = time.perf_counter()
    time.sleep(seconds)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    elapsed = time.perf_counter() - first
    done = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    return done, out.read_bytes().decode("utf-8").split("\n"), elapsed


@pytest.mark.slow
def test_huge_batch_streams_and_a_kill_keeps_whole_lines(briefing_index: Path,
                                                         tmp_path: Path) -> None:
    """``kill -9`` a few seconds into a 100,000-line batch: every line written is a whole
    JSON record (the writer issues one write per record), in input order. The throughput
    measured here is printed for the issue's note."""
    proc, lines, elapsed = _interrupted_batch(briefing_index, tmp_path, signal.SIGKILL, 5.0)
    assert proc.returncode == -signal.SIGKILL
    assert lines[-1] == ""  # ends with a newline: no partial last line either
    records = [json.loads(line) for line in lines[:-1]]
    assert len(records) > 10
    assert [r["id"] for r in records] == [f"q{i}" for i in range(len(records))]
    assert all("error" not in r for r in records)
    rate = len(records) / elapsed
    print(f"\nbatch throughput: {len(records)} answers in {elapsed:.1f} s = {rate:.0f} q/s; "
          f"100,000 lines would take ~{BIG_LINES / rate / 60:.0f} min")


@pytest.mark.slow
def test_ctrl_c_stops_a_huge_batch_cleanly(briefing_index: Path, tmp_path: Path) -> None:
    proc, lines, _ = _interrupted_batch(briefing_index, tmp_path, signal.SIGINT, 2.0)
    assert proc.returncode == 130
    stderr = proc.stderr.decode()
    assert "Traceback" not in stderr and stderr.strip() == "interrupted", stderr
    assert lines[-1] == ""
    assert all(json.loads(line)["id"] for line in lines[:-1])
