"""The faults job's kill -9 trial (issue 29): ``assistant index`` killed with SIGKILL at 20
moments spread over a build — the scan and plan, reading and embedding, writing the vectors
and publishing — then ``assistant index`` run to completion. Every time, the answers to a
fixed set of questions must equal a clean build's (the same quotes at the same offsets, the
same confidence) and ``assistant info`` must report a sound, current index.

Each moment is a function of the build: the killed process stops just after its n-th call
returns, prints a mark and waits; this test sees the mark and sends SIGKILL, so every phase is
hit on every run (a random delay mostly lands in the embedding). Half the trials kill a first
build into an empty folder, half an update of an index of the corpus's previous version (two
documents rewritten, one added, one removed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.corpora import briefing_and_reports
from helpers.hostile import ROOT, assert_ok, cli, cli_env

KILL_AFTER = """
import importlib, sys
_owner = importlib.import_module({module!r})
*_path, _attr = {name!r}.split(".")
for _part in _path:  # a method: "MetaWriter.drop_documents"
    _owner = getattr(_owner, _part)
_real = getattr(_owner, _attr)
_calls = [0]
def _stop_here(*args, **kwargs):
    out = _real(*args, **kwargs)
    _calls[0] += 1
    if _calls[0] == {n}:
        sys.stdout.write("KILL ME\\n")
        sys.stdout.flush()
        import time
        time.sleep(600)
    return out
setattr(_owner, _attr, _stop_here)
import assistant.build.embedding as _embedding
_embedding.BATCH_CHUNKS = 16  # more commits to stop between (the finishing build keeps 64)
"""

MOMENTS: list[tuple[str, str, str, int]] = [
    # phase, module, function (as the build calls it), kill after its n-th call
    ("scan", "assistant.build.local", "scan", 1),
    ("scan", "assistant.build.local", "make_plan", 1),
    ("scan", "assistant.build.local", "load_model", 1),
    ("scan", "assistant.build.local", "open_staging", 1),
    ("embedding", "assistant.source", "read_document", 1),
    ("embedding", "assistant.source", "read_document", 6),
    ("embedding", "assistant.build.embedding", "embed_and_store", 1),
    ("embedding", "assistant.build.embedding", "embed_and_store", 2),
    ("embedding", "assistant.build.embedding", "embed_and_store", 4),
    ("embedding", "assistant.build.embedding", "add_term_vectors", 2),  # before its COMMIT
    ("embedding", "assistant.index.sqlite.writer", "MetaWriter.drop_documents", 2),
    ("embedding", "assistant.index.sqlite.writer", "MetaWriter.refresh_term_df", 1),
    ("publishing", "assistant.build.publish", "update_vectors", 1),
    ("publishing", "assistant.build.publish", "digest_folder", 1),
    ("publishing", "assistant.build.publish", "write_manifest", 1),
    ("publishing", "assistant.build.publish", "fsync_dir", 1),  # staging synced, not renamed
    ("publishing", "assistant.build.publish", "fsync_dir", 2),  # renamed, CURRENT not moved
    ("publishing", "assistant.build.publish", "write_json_atomic", 1),  # CURRENT moved
    ("publishing", "assistant.build.publish", "remove_tree", 1),  # an old generation goes
    ("publishing", "assistant.build.publish", "publish", 1),  # published, not yet reported
]

QUESTIONS = [json.loads(line)["question"] for line in
             (ROOT / "tests" / "data" / "dev_questions.jsonl").read_text().splitlines()[:10]]
QUESTIONS += ["How many containers did the harbour of Valletta handle in March?",
              "What is the recipe for sourdough bread?"]


def _answers(index: Path, cwd: Path) -> list[dict[str, Any]]:
    """What a user sees of each answer (JSON Lines of ``assistant batch``): the answer and
    citations with their text, documents, offsets and confidence."""
    proc = cli("batch", cwd / "questions.txt", "--index", index, cwd=cwd)
    assert_ok(proc)
    out = []
    for line in proc.stdout.splitlines():
        reply = json.loads(line)
        out.append({k: reply.get(k) for k in ("question", "answer", "citations", "abstained",
                                                "confidence", "message")})
    return out


def _link_copy(source: Path, target: Path) -> None:
    """A copy of an index whose files are hard links (a build writes new files, never into
    the ones it finds)."""
    shutil.copytree(source, target, copy_function=os.link)


def _killed_build(corpus: Path, index: Path, cwd: Path, module: str, name: str, n: int
                  ) -> str:
    """Run ``assistant index`` and SIGKILL it once the moment is reached; how it ended."""
    boot = KILL_AFTER.format(module=module, name=name, n=n)
    cmd = [sys.executable, "-c", f"{boot}\nfrom assistant.cli import main\nmain()", "index",
           "--corpus", str(corpus), "--index", str(index)]
    log = cwd / "killed-build.log"
    with open(log, "w") as stderr:  # a file: a pipe nobody reads could fill and block it
        proc = subprocess.Popen(cmd, cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                                stderr=stderr, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line == "KILL ME\n":
                proc.send_signal(signal.SIGKILL)
                break
        proc.communicate(timeout=300)
    if proc.returncode == -signal.SIGKILL:
        return "killed"
    return f"not killed: exit {proc.returncode}: {log.read_text()[-500:]}"


@pytest.mark.slow
def test_kill9_at_20_moments_then_index_answers_as_a_clean_build(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    older = tmp_path / "older"  # an index of version 1 with two generations (one goes)
    briefing_and_reports(corpus, 1)
    assert_ok(cli("index", "--corpus", corpus, "--index", older, cwd=tmp_path))
    assert_ok(cli("index", "--corpus", corpus, "--index", older, "--full", cwd=tmp_path))
    briefing_and_reports(corpus, 2)
    clean = tmp_path / "clean"
    assert_ok(cli("index", "--corpus", corpus, "--index", clean, cwd=tmp_path))
    expected = _answers(clean, tmp_path)
    assert expected != _answers(older, tmp_path)  # a stale index would be seen
    assert any(e["answer"] and "7,300" in e["answer"]["text"] for e in expected), expected

    failures = []
    for trial, (phase, module, name, n) in enumerate(MOMENTS):
        index = tmp_path / f"trial-{trial:02d}"
        update = trial % 2 == 1 or name == "remove_tree"  # only an update removes a generation
        if update:
            _link_copy(older, index)
        where = f"trial {trial} ({phase}: after {name} #{n}, " \
                f"{'update' if update else 'first build'})"
        ended = _killed_build(corpus, index, tmp_path, module, name, n)
        if ended != "killed":
            failures.append(f"{where}: {ended}")
            continue
        finished = cli("index", "--corpus", corpus, "--index", index, cwd=tmp_path)
        if finished.returncode != 0:
            failures.append(f"{where}: the next index exited {finished.returncode}: "
                            f"{finished.stderr[-500:]}")
            continue
        info = cli("info", "--json", "--corpus", corpus, "--index", index, cwd=tmp_path)
        status = json.loads(info.stdout) if info.returncode == 0 else {}
        if info.returncode != 0 or status.get("stale") is not False:
            failures.append(f"{where}: info exited {info.returncode}, stale "
                            f"{status.get('stale_reasons')}: {info.stderr[-300:]}")
        if (index / "staging").exists():
            failures.append(f"{where}: a staging folder is left after the build")
        got = _answers(index, tmp_path)
        for want, have in zip(expected, got, strict=True):
            if want != have:
                failures.append(f"{where}: {want['question']!r}: {have} != clean {want}")
        shutil.rmtree(index)
    print(f"\nkill -9 at {len(MOMENTS)} moments: "
          f"{len(MOMENTS) - len({f.split(':')[0] for f in failures})}/{len(MOMENTS)} "
          "equal to a clean build")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
