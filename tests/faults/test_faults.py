"""Faults (issue 6): ``kill -9`` of a build at random moments, readers (``ask``, ``batch``)
running while rebuilds swap the index in, and two builds at once. The index a reader
opens is always one complete, consistent generation; a killed build leaves the previous
one usable and the next build completes (resuming what the killed one had embedded).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile import (
    BRIEFING,
    BRIEFING_QUESTION,
    ask,
    assert_ok,
    assert_user_error,
    briefing_corpus,
    build,
    cli,
    cli_env,
    generated_document,
    quote_problems,
    write_generated_corpus,
)

SEED = 20_240_606
KILL_QUESTION = "What revenue share does the US get from H200 sales?"
TRIALS = 20


def _index_cmd(corpus: Path, index: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "assistant", "index", "--corpus", str(corpus), "--index",
            str(index), *flags]


def _corpus_state(corpus: Path) -> dict[str, str]:
    from assistant.ingest import content_hash

    return {p.name: content_hash(p.read_bytes()) for p in sorted(corpus.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _check_index(index: Path, states: list[dict[str, str]], answer: bool = True) -> str | None:
    """None if the live index opens, answers with exact quotes and holds exactly one of the
    corpus ``states``; else what is wrong."""
    from assistant.index.store import open_index
    from assistant.ingest import content_hash

    try:
        idx = open_index(index)
    except Exception as exc:  # any failure to open is a failed trial
        return f"open_index: {type(exc).__name__}: {exc}"
    try:
        held = {d: r.content_hash for d, r in idx.manifest.documents.items()}
        if held not in states:
            return f"index holds neither corpus version: {sorted(held)}"
        for doc_id, digest in held.items():  # text and manifest from the same version
            if content_hash(idx.document_text(doc_id).encode()) != digest:
                return f"{doc_id}: stored text does not match the manifest's hash"
    finally:
        idx.close()
    if not answer:
        return None
    try:
        reply = ask(index, KILL_QUESTION)  # quotes checked against the stored text
    except Exception as exc:
        return f"ask: {type(exc).__name__}: {exc}"
    quotes = [c.quote for c in reply.citations] + ([reply.answer.text] if reply.answer else [])
    if not any("25% revenue" in q for q in quotes):  # retrieval works (answer or citation)
        return f"the revenue sentence is not found: {reply.message}"
    return None


def _edit(corpus: Path, rng: random.Random, trial: int) -> str:
    """One random change to the corpus between trials."""
    docs = sorted(p for p in corpus.glob("report*.txt"))
    action = rng.choice(["change", "change", "add", "remove", "touch"])
    if action != "touch" and docs:  # more than one document changes: a build worth killing
        rng.choice(docs).write_text(generated_document(rng, 36, tag=f"t{trial}b"))
    if action == "remove" and len(docs) > 3:
        rng.choice(docs).unlink()
    elif action == "add" or not docs:
        (corpus / f"report{100 + trial:03d}.txt").write_text(
            generated_document(rng, rng.randint(20, 50), tag=f"t{trial}"))
    elif action == "touch":
        path = rng.choice(docs)
        os.utime(path, ns=(time.time_ns(), time.time_ns()))
    else:
        action = "change"
        rng.choice(docs).write_text(generated_document(rng, rng.randint(20, 50),
                                                       tag=f"t{trial}"))
    return action


@pytest.mark.slow
def test_kill9_build_at_random_moments(tmp_path: Path) -> None:
    """At least 20 seeded trials: edit the corpus, start ``assistant index`` (a third of them
    ``--full``), SIGKILL it after a random delay spanning its whole run, then check the live
    index opens and answers and holds exactly the old or the new corpus, and that the next
    build completes and matches the corpus."""
    from assistant.build import index_status
    from assistant.index.layout import IndexLayout
    from assistant.settings import Settings

    rng = random.Random(SEED)
    corpus = briefing_corpus(tmp_path / "corpus")
    write_generated_corpus(corpus, documents=6, sentences=36, seed=SEED)
    index = tmp_path / "index"
    started = time.perf_counter()
    assert_ok(cli("index", "--corpus", corpus, "--index", index, "--full", cwd=tmp_path))
    full_seconds = time.perf_counter() - started
    incremental_seconds = full_seconds / 2  # refined as incremental builds are seen to finish
    stats: Counter[str] = Counter()
    failures: list[str] = []
    resumed_chunks = 0
    for trial in range(TRIALS):
        before = _corpus_state(corpus)
        stats["edit " + _edit(corpus, rng, trial)] += 1
        after = _corpus_state(corpus)
        full = rng.random() < 0.4
        delay = rng.uniform(0.0, full_seconds if full else incremental_seconds)
        live = IndexLayout(index).current_generation()
        started = time.perf_counter()
        proc = subprocess.Popen(_index_cmd(corpus, index, *(["--full"] if full else [])),
                                cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=delay)
            if not full:
                incremental_seconds = (incremental_seconds + time.perf_counter() - started) / 2
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
        if proc.returncode == -signal.SIGKILL:
            published = IndexLayout(index).current_generation() != live
            stats["killed after publishing" if published else "killed before publishing"] += 1
            stats["left staging behind"] += (index / "staging").is_dir()
        else:
            stats["finished before the kill"] += 1
            if proc.returncode != 0:
                failures.append(f"trial {trial}: build exited {proc.returncode}: {stderr!r}")
        problem = _check_index(index, [before, after])
        if problem:
            failures.append(f"trial {trial} (delay {delay:.2f} s, full={full}): {problem}")
        try:
            summary = build(corpus, index)
            resumed_chunks += summary.chunks_reused
            status = index_status(Settings(corpus_dir=corpus, index_dir=index))
            if status.stale:
                failures.append(f"trial {trial}: after the next build, still stale: "
                                f"{status.stale_reasons}")
            problem = _check_index(index, [after], answer=False)
            if problem:
                failures.append(f"trial {trial}: after the next build: {problem}")
        except Exception as exc:
            failures.append(f"trial {trial}: next build failed: {type(exc).__name__}: {exc}")
    print(f"\nkill -9 trials: {TRIALS}, seed {SEED}, full build {full_seconds:.1f} s, "
          f"incremental ~{incremental_seconds:.1f} s; "
          f"{dict(stats)}; chunks resumed from killed builds: {resumed_chunks}; "
          f"failures: {len(failures)}")
    assert not failures, "\n".join(failures)
    killed = stats["killed before publishing"] + stats["killed after publishing"]
    assert killed >= TRIALS // 2, stats  # the kills really landed inside builds


# --- readers while the index is swapped ---------------------------------------------------

QUESTION = "How many containers did the harbour of Valletta handle in March?"
V1 = "Harbour log\n\nThe harbour of Valletta handled 4,100 containers in March.\n"
V2 = ("Harbour log\n\nRevised figures after the audit follow below.\n\n"
      "The harbour of Valletta handled 7,300 containers in March.\n")
FIGURE = {1: "4,100", 2: "7,300"}


def _versions(answer: Any) -> set[int]:
    """Which harbour.txt versions every quote of the answer agrees with, at its offsets."""
    texts = {1: V1, 2: V2}
    spans = [(c.doc_id, c.start, c.end, c.quote) for c in answer.citations]
    if answer.answer is not None:
        a = answer.answer
        spans.append((a.doc_id, a.start, a.end, a.text))
    return {v for v, text in texts.items()
            if all(text[s:e] == q for d, s, e, q in spans if d == "harbour.txt")}


@pytest.mark.slow
def test_ask_and_batch_during_index_swaps(tmp_path: Path) -> None:
    """A rebuild loop flips harbour.txt between two versions whose answers and offsets
    differ, while ``assistant ask``, ``assistant batch`` and in-process readers keep going:
    every answer agrees with exactly one version, and nothing fails."""
    from assistant.index.store import open_index
    from assistant.models import Answer, BatchErrorRecord

    corpus = briefing_corpus(tmp_path / "corpus")
    (corpus / "harbour.txt").write_text(V1)
    index = tmp_path / "index"
    build(corpus, index)
    stop = threading.Event()
    swaps: list[int] = []
    errors: list[str] = []

    def swapper() -> None:
        version = 1
        while not stop.is_set():
            version = 3 - version
            (corpus / "harbour.txt").write_text(V2 if version == 2 else V1)
            proc = cli("index", "--corpus", corpus, "--index", index, cwd=tmp_path)
            if proc.returncode != 0:
                errors.append(f"index: {proc.stderr}")
            swaps.append(version)

    opened: Counter[int] = Counter()

    def opener() -> None:
        """open_index in a tight loop: it must never see a half-swapped index."""
        from assistant.ingest import content_hash

        while not stop.is_set():
            try:
                idx = open_index(index)
            except Exception as exc:
                errors.append(f"open_index: {type(exc).__name__}: {exc}")
                continue
            try:
                text = idx.document_text("harbour.txt")
                record = idx.manifest.documents["harbour.txt"]
                if text not in (V1, V2) or record.content_hash != content_hash(text.encode()):
                    errors.append(f"inconsistent generation {idx.generation_dir.name}")
                opened[1 if text == V1 else 2] += 1
            finally:
                idx.close()
            time.sleep(0.02)

    batch_file = tmp_path / "questions.txt"
    batch_file.write_text((QUESTION + "\n") * 5000)
    out = tmp_path / "answers.jsonl"
    threads = [threading.Thread(target=swapper), threading.Thread(target=opener)]
    for t in threads:
        t.start()
    asked: list[Any] = []
    try:
        batch = subprocess.Popen([sys.executable, "-m", "assistant", "batch", str(batch_file),
                                  "-o", str(out), "--index", str(index)], cwd=tmp_path,
                                 env=cli_env(), stderr=subprocess.PIPE, text=True)
        deadline = time.perf_counter() + 25
        while time.perf_counter() < deadline or len(swaps) < 4:
            proc = cli("ask", "--json", "--index", index, QUESTION, cwd=tmp_path)
            if proc.returncode != 0 or "Traceback" in proc.stderr:
                errors.append(f"ask: {proc.stderr}")
            else:
                asked.append(Answer.model_validate_json(proc.stdout))
            assert time.perf_counter() < deadline + 120
        batch.send_signal(signal.SIGINT)  # enough: it has run through several swaps
        _, batch_err = batch.communicate(timeout=60)
        assert "Traceback" not in batch_err
    finally:
        stop.set()
        for t in threads:
            t.join()
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    batch_answers = [Answer.model_validate(a) for a in answers if "line" not in a]
    assert not [a for a in answers if "line" in a], [BatchErrorRecord.model_validate(a)
                                                     for a in answers if "line" in a][:3]
    seen: Counter[int] = Counter()
    for answer in [*asked, *batch_answers]:
        versions = _versions(answer)
        assert len(versions) == 1, (versions, answer)
        version = versions.pop()
        seen[version] += 1
        assert answer.answer is not None, answer.message
        assert FIGURE[version] in answer.answer.text
        texts = {"harbour.txt": V1 if version == 1 else V2, BRIEFING.name: BRIEFING.read_text()}
        assert not quote_problems(answer, texts.__getitem__)
    print(f"\nswaps: {len(swaps)}; answers by version: {dict(seen)} "
          f"({len(asked)} ask, {len(batch_answers)} batch); open_index by version: "
          f"{dict(opened)}")
    assert not errors, errors[:5]
    assert len(swaps) >= 4 and len(seen) == 2 and len(opened) == 2


# --- two builds at once ------------------------------------------------------------------------

def test_two_builds_at_once_one_waits(tmp_path: Path) -> None:
    corpus = briefing_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index)
    write_generated_corpus(corpus, documents=3, sentences=24, seed=3)
    procs = [subprocess.Popen(_index_cmd(corpus, index), cwd=tmp_path, env=cli_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "Traceback" not in err, err
    stdouts = sorted(o for o, _ in outs)
    assert stdouts[0].startswith("Index is up to date: 4 documents"), stdouts
    assert stdouts[1].startswith("Indexed 4 documents"), stdouts
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote


def test_second_build_gives_up_clearly_when_told_not_to_wait(tmp_path: Path) -> None:
    corpus = briefing_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index)
    write_generated_corpus(corpus, documents=4, sentences=36, seed=4)
    first = subprocess.Popen(_index_cmd(corpus, index), cwd=tmp_path, env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.perf_counter() + 120
    while not (index / "staging").is_dir():  # the first build holds the lock
        assert first.poll() is None and time.perf_counter() < deadline, first.communicate()
        time.sleep(0.01)
    second = cli("index", "--corpus", corpus, "--index", index, cwd=tmp_path,
                 env=cli_env(ASSISTANT_LOCK_TIMEOUT_S="0"))
    assert_user_error(second, 5, "another `assistant index` is building",
                      "try again when it has finished")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert out.startswith("Indexed 5 documents")
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote


def test_staging_left_by_a_killed_build_is_resumed(tmp_path: Path) -> None:
    """Kill a build once it has committed its first batches: the next build reuses them."""
    corpus = briefing_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build(corpus, index)
    write_generated_corpus(corpus, documents=8, sentences=40, seed=8)
    env = cli_env()
    boot = "import assistant.build.embedding as b\nb.BATCH_CHUNKS = 4"
    cmd = [sys.executable, "-c", f"{boot}\nfrom assistant.cli import main\nmain()",
           "index", "--corpus", str(corpus), "--index", str(index)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = index / "staging" / "meta.sqlite"
    deadline = time.perf_counter() + 120
    import sqlite3

    while True:
        assert proc.poll() is None and time.perf_counter() < deadline
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
            n = conn.execute("SELECT count(*) FROM documents WHERE complete=1 AND doc_id "
                             "LIKE 'report%'").fetchone()[0]
            conn.close()
            if n >= 2:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    summary = build(corpus, index)
    assert summary.chunks_reused > 0
    assert len(summary.added) == 8
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote


def test_open_index_survives_two_swaps_between_current_and_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The narrowest race, made deterministic: a reader reads CURRENT, then two builds publish
    and remove that generation before the reader opens its files. It opens the new one."""
    import assistant.index.store as store

    corpus = briefing_corpus(tmp_path / "corpus")
    (corpus / "harbour.txt").write_text(V1)
    index = tmp_path / "index"
    build(corpus, index)
    real = store.read_manifest
    raced: list[Path] = []

    def read_manifest_after_two_builds(gen_dir: Path) -> Any:
        if not raced:
            raced.append(gen_dir)
            for text in (V2, V1 + "\nA later note.\n"):
                (corpus / "harbour.txt").write_text(text)
                build(corpus, index)
        return real(gen_dir)

    monkeypatch.setattr(store, "read_manifest", read_manifest_after_two_builds)
    idx = store.open_index(index)
    try:
        assert not raced[0].exists()  # the generation it first read is gone
        assert idx.document_text("harbour.txt") == V1 + "\nA later note.\n"
    finally:
        idx.close()
