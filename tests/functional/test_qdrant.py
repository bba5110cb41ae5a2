"""The Qdrant store against the real model and real indexes: answers, agreement with FAISS,
incremental builds, a build killed mid-write, switching stores, and the server-mode code path
(versioned points in one collection) on qdrant-client's in-memory engine.

No Qdrant server binary is available here; ``qdrant_url=":memory:"`` runs every line of the
server path (create, versioned upsert, retire, purge, collection clean-up) against the
in-process engine that speaks the same API.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.build import build_index
from assistant.errors import SettingsError
from assistant.index.layout import IndexLayout
from assistant.index.manifest import read_manifest
from assistant.index.store import open_index
from assistant.index.vectors.faiss import FAISS_FILE, FaissVectors
from assistant.index.vectors.qdrant import (
    MEMORY_URL,
    QDRANT_DIR,
    QdrantVectors,
    _collection_prefix,
    _server_client,
)
from assistant.models import VectorIndexInfo
from assistant.qa.pipeline import Answerer
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data"
VENDORS = "Huawei, Baidu, Cambricon, Biren, MetaX"
VENDOR_QUESTION = "Which Chinese vendors are mentioned?"

_PLACES = ["Tallinn", "Lisbon", "Osaka", "Nairobi", "Quito", "Reykjavik", "Hanoi", "Perth"]
_THINGS = ["lithography tools", "memory chips", "rack servers", "export licences",
           "power contracts", "cooling systems", "fibre links", "design software"]


def generated_doc(seed: int, paragraphs: int = 6) -> str:
    """A deterministic briefing-like text: a title, then paragraphs of plain sentences."""
    rng = random.Random(seed)
    lines = [f"Desk note {seed}: {rng.choice(_THINGS)} in {rng.choice(_PLACES)}"]
    for p in range(paragraphs):
        lines.append(f"Section {p + 1}")
        lines.append(" ".join(
            f"Officials in {rng.choice(_PLACES)} said {rng.choice(_THINGS)} shipments rose "
            f"{rng.randint(2, 90)}% in quarter {rng.randint(1, 4)} of {rng.randint(2019, 2030)}."
            for _ in range(rng.randint(4, 8))))
    return "\n".join(lines) + "\n"


def _settings(corpus: Path, index: Path, **kw: Any) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=index, **{"store": "qdrant", **kw})


def _ask(index: Path, question: str) -> Any:
    idx = open_index(index)
    try:
        return Answerer(idx, Settings(index_dir=index)).ask(question).answer
    finally:
        idx.close()


def _db_ids(gen: Path) -> set[int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        return {int(r[0]) for r in conn.execute("SELECT id FROM chunks")}
    finally:
        conn.close()


def _doc_ids(gen: Path, doc_id: str) -> set[int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        return {int(r[0]) for r in conn.execute("SELECT id FROM chunks WHERE doc_id=?",
                                                (doc_id,))}
    finally:
        conn.close()


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and p.name != ".lock"}


def _vectors_of(layout: IndexLayout, gen: Path) -> QdrantVectors:
    return QdrantVectors.open(layout, read_manifest(gen).vectors, gen)


# --- one corpus, both stores ------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin_indexes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The briefing plus six generated notes, indexed once with FAISS and once with Qdrant."""
    base = tmp_path_factory.mktemp("twins")
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "corpus" / "nvidia-h200-china.txt", corpus)
    for i in range(6):
        (corpus / f"note-{i}.txt").write_text(generated_doc(i), encoding="utf-8")
    build_index(Settings(corpus_dir=corpus, index_dir=base / "faiss"))
    build_index(_settings(corpus, base / "qdrant"))
    return base / "faiss", base / "qdrant"


@pytest.mark.slow
def test_qdrant_index_answers_with_the_quoted_sentence(twin_indexes: tuple[Path, Path]) -> None:
    _, index = twin_indexes
    gen = IndexLayout(index).current_generation()
    assert gen is not None
    manifest = read_manifest(gen)
    assert (manifest.vectors.store, manifest.vectors.kind) == ("qdrant", "flat")
    assert (gen / QDRANT_DIR / "meta.json").is_file() and not (gen / FAISS_FILE).exists()
    before = _tree_state(gen / QDRANT_DIR)
    idx = open_index(index)
    try:
        assert isinstance(idx.vectors, QdrantVectors)
        assert idx.vectors.count == manifest.chunk_count
        answer = Answerer(idx, Settings(index_dir=index)).ask(VENDOR_QUESTION).answer
    finally:
        idx.close()
    assert _tree_state(gen / QDRANT_DIR) == before  # reading never writes a published folder
    assert not answer.abstained
    assert answer.answer is not None and VENDORS in answer.answer.text


@pytest.mark.slow
def test_qdrant_search_agrees_with_faiss(twin_indexes: tuple[Path, Path]) -> None:
    """Same chunk ids, same ranking, same cosine scores (to float16 rounding), same answers."""
    faiss_dir, qdrant_dir = twin_indexes
    questions = [json.loads(line)["question"]
                 for line in (DATA / "dev_questions.jsonl").read_text().splitlines() if line]
    questions += [f"What happened to {t} in {p}?" for t, p in zip(_THINGS, _PLACES, strict=True)]
    f_idx, q_idx = open_index(faiss_dir), open_index(qdrant_dir)
    try:
        assert isinstance(f_idx.vectors, FaissVectors) and isinstance(q_idx.vectors, QdrantVectors)
        assert q_idx.vectors.ids() == set(f_idx.vectors.ids().tolist())
        f_ans, q_ans = Answerer(f_idx, Settings()), Answerer(q_idx, Settings())
        vecs = f_ans.embedder.embed(questions)
        for v in vecs:
            f_hits = f_idx.vectors.search(v, 10)
            q_hits = q_idx.vectors.search(v, 10)
            assert [i for i, _ in q_hits][:3] == [i for i, _ in f_hits][:3]
            assert len({i for i, _ in q_hits} & {i for i, _ in f_hits}) >= 9
            f_scores = dict(f_hits)
            for i, s in q_hits:
                if i in f_scores:
                    assert abs(s - f_scores[i]) < 5e-3
        for q in questions:
            a, b = f_ans.ask(q).answer, q_ans.ask(q).answer
            assert (a.abstained, a.answer) == (b.abstained, b.answer), q
    finally:
        f_idx.close()
        q_idx.close()


# --- incremental, killed, switched ------------------------------------------------------------


@pytest.mark.slow
def test_incremental_rebuild_embeds_only_changed_documents(workspace: tuple[Path, Path]) -> None:
    corpus, index = workspace
    (corpus / "a.txt").write_text(generated_doc(101), encoding="utf-8")
    (corpus / "b.txt").write_text(generated_doc(102), encoding="utf-8")
    settings = _settings(corpus, index)
    first = build_index(settings)
    layout = IndexLayout(index)
    gen1 = layout.current_generation()
    assert gen1 is not None
    gone_ids = _doc_ids(gen1, "b.txt")
    assert gone_ids

    (corpus / "a.txt").write_text(generated_doc(103), encoding="utf-8")  # edited
    (corpus / "b.txt").unlink()  # removed
    (corpus / "c.txt").write_text(generated_doc(104) + "The Zorblax accord on cooling systems "
                                  "was signed in Reykjavik by nine ministers.\n",
                                  encoding="utf-8")  # added
    second = build_index(settings)
    assert second.full_rebuild_reason is None and second.generation == first.generation + 1
    assert sorted(second.changed) == ["a.txt"] and sorted(second.added) == ["c.txt"]
    assert second.removed == ["b.txt"]
    gen2 = layout.current_generation()
    assert gen2 is not None
    manifest = read_manifest(gen2)
    assert second.chunks_embedded == (manifest.documents["a.txt"].chunks
                                      + manifest.documents["c.txt"].chunks)

    new = _vectors_of(layout, gen2)
    old = _vectors_of(layout, gen1)  # the base generation's folder is untouched
    try:
        assert new.ids() == _db_ids(gen2) and new.count == manifest.chunk_count
        assert not new.ids() & gone_ids
        assert old.ids() == _db_ids(gen1) and gone_ids <= old.ids()
    finally:
        new.close()
        old.close()
    answer = _ask(index, "Where was the Zorblax accord signed?")
    assert answer.answer is not None and "Zorblax accord" in answer.answer.text
    assert VENDORS in _ask(index, VENDOR_QUESTION).answer.text


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import assistant.index.vectors.qdrant as qs
from assistant.build import build_index
from assistant.index.meta import ChunkVectors
from assistant.settings import Settings

ChunkVectors.BATCH = 8
real = qs._upsert
calls = []

def upsert_then_die(*args, **kwargs):
    real(*args, **kwargs)
    calls.append(1)
    if len(calls) == 2:  # mid-way through writing the new generation's points
        os.kill(os.getpid(), signal.SIGKILL)

qs._upsert = upsert_then_die
build_index(Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), store="qdrant"))
print("not killed")
"""


@pytest.mark.slow
def test_build_killed_while_writing_qdrant_leaves_the_old_generation(
        workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = workspace
    settings = _settings(corpus, index)
    build_index(settings)
    layout = IndexLayout(index)
    gen1 = layout.current_generation()
    for i in range(3):
        (corpus / f"late-{i}.txt").write_text(generated_doc(200 + i, paragraphs=8),
                                              encoding="utf-8")
    (corpus / "late-0.txt").write_text(generated_doc(200, paragraphs=8) + "The Zorblax accord "
                                       "on cooling systems was signed in Reykjavik.\n",
                                       encoding="utf-8")
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), str(corpus), str(index)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (layout.staging / QDRANT_DIR).is_dir()  # it died inside the Qdrant write
    assert layout.current_generation() == gen1  # nothing was published

    answer = _ask(index, VENDOR_QUESTION)  # the old generation answers as before
    assert answer.answer is not None and VENDORS in answer.answer.text
    idx = open_index(index)
    try:
        assert idx.vectors.count == read_manifest(gen1).chunk_count  # type: ignore[union-attr]
    finally:
        idx.close()

    resumed = build_index(settings)  # resumes: everything was embedded before the kill
    assert resumed.chunks_embedded == 0 and resumed.chunks_reused > 0
    gen2 = layout.current_generation()
    assert gen2 is not None and gen2 != gen1
    vectors = _vectors_of(layout, gen2)
    try:
        assert vectors.ids() == _db_ids(gen2)
    finally:
        vectors.close()
    answer = _ask(index, "Where was the Zorblax accord signed?")
    assert answer.answer is not None and "Reykjavik" in answer.answer.text


@pytest.mark.slow
def test_switching_stores_both_ways(workspace: tuple[Path, Path]) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    corpus, index = workspace
    runner = CliRunner()
    args = ["index", "--corpus", str(corpus), "--index", str(index), "--json"]
    result = runner.invoke(cli, [*args, "--store", "qdrant"])
    assert result.exit_code == 0, result.output
    gen = IndexLayout(index).current_generation()
    assert gen is not None and read_manifest(gen).vectors.store == "qdrant"

    result = runner.invoke(cli, [*args, "--store", "faiss"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    # the stored embeddings are re-used both ways: nothing is re-embedded (README)
    assert summary["full_rebuild_reason"] is None and summary["chunks_embedded"] == 0
    assert not summary["up_to_date"]
    idx = open_index(index)
    try:
        assert isinstance(idx.vectors, FaissVectors)
        answer = Answerer(idx, Settings(index_dir=index)).ask(VENDOR_QUESTION).answer
    finally:
        idx.close()
    assert answer.answer is not None and VENDORS in answer.answer.text

    result = runner.invoke(cli, [*args, "--store", "qdrant"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["chunks_embedded"] == 0
    assert VENDORS in _ask(index, VENDOR_QUESTION).answer.text


@pytest.mark.slow
def test_a_second_process_reads_while_the_first_holds_the_folder(
        twin_indexes: tuple[Path, Path]) -> None:
    """Local mode locks its folder; a chat holding the index open must not stop `ask`."""
    import tempfile

    _, index = twin_indexes
    scratch = set(Path(tempfile.gettempdir()).glob("briefing-qdrant-*"))
    idx = open_index(index)  # holds the generation's Qdrant folder in this process
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run([sys.executable, "-m", "assistant", "ask", VENDOR_QUESTION,
                               "--index", str(index), "--json"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
        assert VENDORS in json.loads(proc.stdout)["answer"]["text"]
        again = open_index(index)  # and a second open in this process shares the client
        assert again.vectors.count == idx.vectors.count
        again.close()
    finally:
        idx.close()
    # the other process read a private copy, and removed it on exit
    assert set(Path(tempfile.gettempdir()).glob("briefing-qdrant-*")) == scratch


# --- server mode on the in-memory engine ------------------------------------------------------


def _collection_points(collection: str) -> dict[int, Any]:
    client = _server_client(MEMORY_URL)
    points, _ = client.scroll(collection, limit=100_000, with_payload=False, with_vectors=True)
    return {int(p.id): np.asarray(p.vector, dtype=np.float32) for p in points}


def _chunk_vector(gen: Path, chunk_id: int) -> Any:
    import sqlite3

    from assistant.index.meta import blob_vector

    conn = sqlite3.connect(f"file:{gen / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        blob = conn.execute("SELECT vector FROM chunks WHERE id=?", (chunk_id,)).fetchone()[0]
    finally:
        conn.close()
    return np.asarray(blob_vector(blob))


def _assert_generation_exact(layout: IndexLayout, gen: Path) -> None:
    """The generation sees exactly its database's chunks, each with its database vector."""
    vectors = _vectors_of(layout, gen)
    points = _collection_points(vectors.info.qdrant_collection or "")
    ids = _db_ids(gen)
    assert vectors.ids() == ids and vectors.count == len(ids)
    for i in ids:
        v = _chunk_vector(gen, i)
        assert np.allclose(points[i], v / np.linalg.norm(v), atol=1e-3), i
    vectors.close()


def _crash_before_publish(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.build.publish

    def crash(*_: object) -> None:
        raise RuntimeError("killed before publish")

    monkeypatch.setattr(assistant.build.publish, "publish", crash)
    with pytest.raises(RuntimeError):
        build_index(settings)
    monkeypatch.undo()


@pytest.mark.slow
def test_server_mode_versions_keep_every_generation_exact(
        workspace: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index = workspace
    (corpus / "b.txt").write_text(generated_doc(302), encoding="utf-8")
    settings = _settings(corpus, index, qdrant_url=MEMORY_URL)
    layout = IndexLayout(index)
    seen: list[set[int]] = []  # each generation's chunk ids, oldest first

    def built() -> Path:
        build_index(settings)
        gen = layout.current_generation()
        assert gen is not None
        seen.append(_db_ids(gen))
        _assert_generation_exact(layout, gen)
        return gen

    gen1 = built()
    info1 = read_manifest(gen1).vectors
    collection = info1.qdrant_collection or ""
    assert (info1.kind, info1.qdrant_url, info1.qdrant_version) == ("hnsw", MEMORY_URL, 1)
    assert not (gen1 / QDRANT_DIR).exists()
    assert VENDORS in _ask(index, VENDOR_QUESTION).answer.text

    # Version 2 dies before publishing: generation 1 sees none of what it wrote.
    (corpus / "b.txt").unlink()
    (corpus / "c.txt").write_text(generated_doc(303), encoding="utf-8")
    _crash_before_publish(settings, monkeypatch)
    _assert_generation_exact(layout, gen1)
    assert len(_collection_points(collection)) > len(seen[0])  # version 2 was written
    gen2 = built()  # resumes the same attempt
    assert read_manifest(gen2).vectors.qdrant_version == 2
    _assert_generation_exact(layout, gen1)  # still exact, although b.txt left generation 2
    gone = _doc_ids(gen1, "b.txt")
    probe = _chunk_vector(gen1, min(gone))
    old, new = _vectors_of(layout, gen1), _vectors_of(layout, gen2)
    assert old.search(probe, 1)[0][0] == min(gone)
    assert not {i for i, _ in new.search(probe, 10)} & gone
    old.close()
    new.close()
    assert set(_collection_points(collection)) == seen[0] | seen[1]

    # Version 3 dies, its staging is thrown away (a changed plan), and the retry gives the
    # same chunk ids to other text: nothing of the abandoned attempt may survive.
    (corpus / "c.txt").write_text(generated_doc(310), encoding="utf-8")
    _crash_before_publish(settings, monkeypatch)
    shutil.rmtree(layout.staging)
    (corpus / "c.txt").write_text(generated_doc(311), encoding="utf-8")
    built()
    assert not gen1.exists()
    assert set(_collection_points(collection)) == seen[0] | seen[1] | seen[2]

    # Version 4: points only generation 1 could see are purged.
    (corpus / "d.txt").write_text(generated_doc(305), encoding="utf-8")
    built()
    assert set(_collection_points(collection)) == seen[1] | seen[2] | seen[3]

    # A full rebuild starts a new collection; the old one goes once no generation names it.
    prefix = _collection_prefix(layout)

    def ours() -> set[str]:
        return {c.name for c in _server_client(MEMORY_URL).get_collections().collections
                if c.name.startswith(prefix)}

    build_index(settings, full=True)
    assert len(ours()) == 2
    (corpus / "d.txt").unlink()
    built()  # the generation before the full rebuild was on disk while this one was built
    assert len(ours()) == 2
    (corpus / "e.txt").write_text(generated_doc(306), encoding="utf-8")
    gen = built()
    assert ours() == {read_manifest(gen).vectors.qdrant_collection}
    assert VENDORS in _ask(index, VENDOR_QUESTION).answer.text


def test_moving_to_a_server_uploads_without_re_embedding(workspace: tuple[Path, Path]) -> None:
    corpus, index = workspace
    build_index(_settings(corpus, index))
    moved = build_index(_settings(corpus, index, qdrant_url=MEMORY_URL))
    assert not moved.up_to_date and moved.chunks_embedded == 0
    gen = IndexLayout(index).current_generation()
    assert gen is not None and read_manifest(gen).vectors.qdrant_url == MEMORY_URL
    assert not (gen / QDRANT_DIR).exists()
    assert VENDORS in _ask(index, VENDOR_QUESTION).answer.text


def test_an_unreachable_server_is_one_clear_error(workspace: tuple[Path, Path]) -> None:
    from assistant.errors import IndexWriteError

    corpus, index = workspace
    build_index(_settings(corpus, index))
    layout = IndexLayout(index)
    gen = layout.current_generation()
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens
    with pytest.raises(IndexWriteError, match=r"Qdrant server at http://127\.0\.0\.1:9 failed "
                       r"while building \(.*refused.*\); the previous index is intact"):
        build_index(_settings(corpus, index, qdrant_url=dead))
    assert layout.current_generation() == gen
    assert VENDORS in _ask(index, VENDOR_QUESTION).answer.text
    info = VectorIndexInfo(store="qdrant", kind="hnsw", qdrant_url=dead,
                           qdrant_collection="briefing_x", qdrant_version=1)
    with pytest.raises(SettingsError, match=r"failed while reading .*running and reachable"):
        QdrantVectors.open(layout, info, gen or index)


def test_missing_qdrant_client_is_one_clear_error(workspace: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    corpus, index = workspace
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "qdrant_client" else real(name, *a))
    with pytest.raises(SettingsError, match=r"pip install 'briefing-assistant\[qdrant\]'"):
        build_index(_settings(corpus, index))
    assert not index.exists() or not list(index.glob("gen-*"))
