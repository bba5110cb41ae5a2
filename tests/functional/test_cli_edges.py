"""The CLI's edges as a ripgrep or datasette user meets them (issue 14, item 9): standard input
and output as `-`, output folders, binary and empty inputs, a closed pipe, a missing terminal,
strict settings files, an honest `eval` on odd gold sets. Each runs `python -m assistant` in a
temporary folder, so no stray ./index or assistant.toml is used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.hostile import assert_ok, assert_user_error, cli, cli_env

QUESTIONS = ["Which Chinese vendors are mentioned?", "What does Beijing want?",
             "What revenue share does the US get from H200 sales?"]


@pytest.mark.slow
def test_batch_output_into_a_missing_folder_creates_it(briefing_index: Path, tmp_path: Path
                                                       ) -> None:
    (tmp_path / "q.txt").write_text("\n".join(QUESTIONS) + "\n")
    proc = cli("batch", "q.txt", "-o", "out/new/answers.jsonl", "--index", briefing_index,
               cwd=tmp_path)
    assert_ok(proc)
    lines = (tmp_path / "out" / "new" / "answers.jsonl").read_text().splitlines()
    assert [json.loads(line)["question"] for line in lines] == QUESTIONS
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        proc = cli("batch", "q.txt", "-o", "ro/x/answers.jsonl", "--index", briefing_index,
                   cwd=tmp_path)
    finally:
        (tmp_path / "ro").chmod(0o700)
    if proc.returncode != 0 or not (tmp_path / "ro" / "x").exists():  # root may write anyway
        assert_user_error(proc, 8, "cannot write ro/x/answers.jsonl")


@pytest.mark.slow
def test_dash_is_standard_input_and_output(briefing_index: Path, tmp_path: Path) -> None:
    env = cli_env()
    text = "\n".join(QUESTIONS[:2]) + "\n"
    proc = subprocess.run([sys.executable, "-m", "assistant", "batch", "-", "-o", "-",
                           "--index", str(briefing_index)], input=text, capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=300)
    assert_ok(proc)
    assert [json.loads(line)["question"] for line in proc.stdout.splitlines()] == QUESTIONS[:2]
    jsonl = "\n".join(json.dumps({"question": q, "id": f"q{i}", "conversation": "c"})
                      for i, q in enumerate(QUESTIONS[:2])) + "\n"
    proc = subprocess.run([sys.executable, "-m", "assistant", "batch", "-", "--index",
                           str(briefing_index)], input=jsonl, capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert_ok(proc)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in records] == ["q0", "q1"]  # read as JSON Lines, not as text
    assert all(r["conversation"] == "c" for r in records)


def test_a_binary_batch_file_is_refused_not_answered(briefing_index: Path, tmp_path: Path
                                                      ) -> None:
    (tmp_path / "python.txt").write_bytes(Path(sys.executable).resolve().read_bytes()[:20000])
    proc = cli("batch", "python.txt", "--index", briefing_index, cwd=tmp_path)
    assert_user_error(proc, 8, "python.txt is a binary file, not questions")
    assert proc.stdout == ""


@pytest.mark.slow
def test_an_empty_batch_file_is_an_error(briefing_index: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    assert_user_error(cli("batch", "empty.txt", "--index", briefing_index, cwd=tmp_path),
                      8, "empty.txt holds no questions")
    (tmp_path / "blank.jsonl").write_text("\n  \n\n")
    assert_user_error(cli("batch", "blank.jsonl", "--index", briefing_index, cwd=tmp_path),
                      8, "blank.jsonl holds no questions")


def test_a_closed_pipe_ends_a_batch_quietly(briefing_index: Path, tmp_path: Path) -> None:
    """`assistant batch q.txt | head -1`: exit 0, nothing on stderr."""
    (tmp_path / "q.txt").write_text("\n".join(QUESTIONS * 20) + "\n")
    proc = subprocess.run(f"'{sys.executable}' -m assistant batch q.txt --index "
                          f"'{briefing_index}' | head -c 20; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True,
                          cwd=tmp_path, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and len(proc.stdout) == 20


def test_the_chat_without_a_terminal_says_so_and_exits(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "assistant"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                          timeout=60)
    assert_user_error(proc, 2, "the chat needs a terminal", "assistant ask")


def test_unknown_settings_and_bad_toml_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "assistant.toml").write_text("top_kk = 3\n")
    assert_user_error(cli("info", cwd=tmp_path), 2, "assistant.toml", "unknown setting 'top_kk'",
                      "did you mean top_k?")
    (tmp_path / "assistant.toml").write_text("top_k = [3\n")
    assert_user_error(cli("info", cwd=tmp_path), 2, "assistant.toml is not valid TOML")
    (tmp_path / "assistant.toml").write_text("top_k = 3\n")
    assert_user_error(cli("info", cwd=tmp_path), 4, "no index")  # a good file is accepted


def test_eval_refuses_an_answerable_line_without_expected_phrases(
        briefing_index: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"question": QUESTIONS[0], "expect_any": ["Huawei"]}) + "\n"
                    + json.dumps({"question": QUESTIONS[1]}) + "\n")
    assert_user_error(cli("eval", gold, "--index", briefing_index, cwd=tmp_path), 8,
                      "line 2 is answerable but has no \"expect_any\"")


@pytest.mark.slow
def test_eval_without_unanswerable_questions_reports_no_abstention_figures(
        briefing_index: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"question": QUESTIONS[0], "expect_any": ["Huawei"]}) + "\n")
    proc = cli("eval", gold, "--index", briefing_index, cwd=tmp_path)
    assert_ok(proc)
    assert "abstention precision  n/a" in proc.stdout and "100" not in proc.stdout.split(
        "abstention precision")[1].splitlines()[0]
    report = json.loads(cli("eval", gold, "--json", "--index", briefing_index,
                            cwd=tmp_path).stdout)
    assert report["abstention_precision"] is None and report["abstention_recall"] is None
