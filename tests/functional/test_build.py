"""Build: the manifest, the vectors, incremental and full rebuilds, kills and concurrent runs.

Real model, real FAISS. A small multi-format corpus is built once per module; tests that
change it work on a copy (corpus and index copied with their timestamps).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from assistant import ingest
from assistant.build import build_index
from assistant.chunk import CHUNKER_VERSION
from assistant.embed import Embedder, OnnxEncoder, Tokenizer
from assistant.index.meta import blob_vector
from assistant.index.store import open_index
from assistant.models import SCHEMA_VERSION, BuildSummary
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"
MIXED = ["chip-policy.html", "chip-report.pdf", "grid-outlook.txt", "market-report.md",
         "release-notes.txt"]


def env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1")


def build(corpus: Path, index: Path, full: bool = False, **settings: object) -> BuildSummary:
    return build_index(Settings(corpus_dir=corpus, index_dir=index, **settings), full=full)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, BuildSummary]:
    """The briefing plus one document of each format, built once (read-only)."""
    root = tmp_path_factory.mktemp("mixed")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy2(BRIEFING, corpus / BRIEFING.name)
    for name in MIXED:
        shutil.copy2(DATA / name, corpus / name)
    summary = build(corpus, root / "index")
    return corpus, root / "index", summary


@pytest.fixture()
def copy(base: tuple[Path, Path, BuildSummary], tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of the base corpus and index, timestamps kept (so it is up to date)."""
    corpus, index, _ = base
    shutil.copytree(corpus, tmp_path / "corpus")
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / "corpus", tmp_path / "index"


def snapshot(index: Path) -> dict[str, object]:
    """Everything the index holds, per document: rows of every table and the FAISS ids."""
    import faiss

    idx = open_index(index)
    try:
        q = idx.conn.execute
        chunks: dict[str, list[tuple[object, ...]]] = {}
        for row in q("SELECT doc_id, id, start, end, vector FROM chunks ORDER BY id"):
            chunks.setdefault(row[0], []).append(tuple(row[1:]))
        stored = faiss.read_index(str(idx.generation_dir / "chunks.faiss"))
        faiss_ids = set(faiss.vector_to_array(stored.id_map).tolist())  # keep `stored` alive
        assert len(faiss_ids) == stored.ntotal
        return {
            "manifest": idx.manifest,
            "documents": {r[0] for r in q("SELECT doc_id FROM documents")},
            "chunks": chunks,
            "chunk_ids": {r[0] for r in q("SELECT id FROM chunks")},
            "sentence_docs": {r[0] for r in q("SELECT DISTINCT doc_id FROM sentences")},
            "sentences": q("SELECT count(*) FROM sentences").fetchone()[0],
            "fts": q("SELECT count(*) FROM sentence_fts").fetchone()[0],
            "faiss_ids": faiss_ids,
            "generation": idx.generation_dir.name,
        }
    finally:
        idx.close()


def assert_consistent(snap: dict[str, object]) -> None:
    """Database, full-text index, FAISS and manifest agree with each other."""
    manifest = snap["manifest"]
    assert snap["faiss_ids"] == snap["chunk_ids"]
    assert snap["fts"] == snap["sentences"] == manifest.sentence_count  # type: ignore[attr-defined]
    assert len(snap["chunk_ids"]) == manifest.chunk_count  # type: ignore[arg-type,attr-defined]
    assert snap["documents"] == set(manifest.documents)  # type: ignore[attr-defined]
    assert snap["sentence_docs"] <= snap["documents"]  # type: ignore[operator]
    for doc_id, rec in manifest.documents.items():  # type: ignore[attr-defined]
        assert len(snap["chunks"].get(doc_id, [])) == rec.chunks  # type: ignore[attr-defined]


def ask(index: Path, question: str) -> object:
    from assistant.qa.pipeline import Answerer

    idx = open_index(index)
    try:
        return Answerer(idx, Settings(index_dir=index)).ask(question).answer
    finally:
        idx.close()


# --- the manifest and the vectors --------------------------------------------------------------

def test_first_build_summary(base: tuple[Path, Path, BuildSummary]) -> None:
    _, _, summary = base
    assert not summary.up_to_date and summary.full_rebuild_reason is None
    assert summary.added == sorted([BRIEFING.name, *MIXED])
    assert summary.changed == summary.removed == [] and summary.skipped == []
    assert summary.chunks_embedded == summary.chunk_count > len(summary.added)
    assert summary.documents == 6 and summary.generation == 1


def test_manifest_describes_the_index(base: tuple[Path, Path, BuildSummary]) -> None:
    corpus, index, summary = base
    snap = snapshot(index)
    m = snap["manifest"]
    assert_consistent(snap)
    assert m.schema_version == SCHEMA_VERSION and m.generation == 1  # type: ignore[attr-defined]
    model_dir = Settings().resolved_model_path()
    weights = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert m.model.weights_sha256 == weights  # type: ignore[attr-defined]
    assert Path(m.model.path) == model_dir and m.model.dimension == 384  # type: ignore[attr-defined]
    onnx = index / m.model.onnx_file  # type: ignore[attr-defined]
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == \
        m.model.files["model.onnx"].sha256  # type: ignore[attr-defined]
    assert onnx.stat().st_nlink == 1  # the index's own copy, not a link into a shared cache
    gen = index / f"gen-{m.generation:06d}"  # type: ignore[attr-defined]
    assert sorted(m.files) == ["chunks.faiss", "meta.sqlite"]  # type: ignore[attr-defined]
    for name, digest in m.files.items():  # type: ignore[attr-defined]
        assert hashlib.sha256((gen / name).read_bytes()).hexdigest() == digest.sha256
    assert "MiniLM-L6" in m.model.name  # type: ignore[attr-defined]
    p = m.chunk_params  # type: ignore[attr-defined]
    assert (p.max_tokens, p.overlap_sentences, p.chunker_version) == (200, 1, CHUNKER_VERSION)
    assert p.segmenter.startswith("sentencex")
    assert m.chunk_count == summary.chunk_count and m.sentence_count > m.chunk_count  # type: ignore[attr-defined]
    assert timedelta(0) <= datetime.now(UTC) - m.built_at < timedelta(hours=1)  # type: ignore[attr-defined]
    assert m.build_seconds > 0 and m.vectors.kind == "flat"  # type: ignore[attr-defined]
    for name, rec in m.documents.items():  # type: ignore[attr-defined]
        path = corpus / name
        assert rec.content_hash == ingest.content_hash(path.read_bytes())
        assert (rec.size, rec.mtime_ns) == (path.stat().st_size, path.stat().st_mtime_ns)
        assert rec.chunks > 0 and rec.title
    assert m.documents["chip-report.pdf"].format == "pdf"  # type: ignore[attr-defined]


def test_every_document_is_stored_with_exact_offsets(base: tuple[Path, Path, BuildSummary]
                                                     ) -> None:
    """Any citation can be shown and verified from the index alone, in every format."""
    corpus, index, _ = base
    idx = open_index(index)
    try:
        for name in [BRIEFING.name, *MIXED]:
            f = next(x for x in ingest.discover(corpus)[0] if x.doc_id == name)
            text = idx.document_text(name)
            assert text == ingest.extract(f, ingest.read_raw(f)).text
            rows = idx.conn.execute("SELECT s.start, s.end, f.body FROM sentences s JOIN "
                                    "sentence_fts f ON f.rowid = s.id WHERE s.doc_id=?",
                                    (name,)).fetchall()
            assert rows
            for start, end, body in rows:
                assert text[start:end] == body
            for start, end in idx.conn.execute("SELECT start, end FROM chunks WHERE doc_id=?",
                                               (name,)):
                assert 0 <= start < end <= len(text)
    finally:
        idx.close()


def test_vectors_are_normalised_and_embed_the_chunk(base: tuple[Path, Path, BuildSummary]
                                                    ) -> None:
    import faiss

    _, index, _ = base
    idx = open_index(index)
    try:
        embedder = Embedder(Tokenizer(idx.onnx_file.parent / "tokenizer.json"),
                            OnnxEncoder(idx.onnx_file))
        stored = faiss.read_index(str(idx.generation_dir / "chunks.faiss"))
        rows = idx.conn.execute("SELECT id, doc_id, start, end, section, vector FROM chunks "
                                "ORDER BY id").fetchall()
        for cid, _, _, _, _, blob in rows:
            v = blob_vector(blob)
            assert abs(float(np.linalg.norm(v)) - 1) < 2e-3
            assert np.allclose(stored.reconstruct(int(cid)), v, atol=1e-6)
        for (blob,) in idx.conn.execute("SELECT vector FROM sentences"):
            assert abs(float(np.linalg.norm(blob_vector(blob))) - 1) < 2e-3
        # The stored vector is the model's embedding of title + section + the chunk's text.
        from assistant.chunk import embed_prefix

        for cid, doc_id, start, end, section, blob in rows[:12]:
            title = idx.manifest.documents[doc_id].title
            text = idx.document_text(doc_id)[start:end]
            fresh = embedder.embed([embed_prefix(title, section) + text])[0]
            assert float(fresh @ blob_vector(blob)) > 0.999, (cid, doc_id)
    finally:
        idx.close()


@pytest.mark.slow
def test_onnx_export_matches_sentence_transformers(briefing_index: Path) -> None:
    """The exported model embeds exactly as sentence-transformers' own encode."""
    from sentence_transformers import SentenceTransformer  # with torch: why it is slow

    idx = open_index(briefing_index)
    try:
        ours = Embedder(Tokenizer(idx.onnx_file.parent / "tokenizer.json"),
                        OnnxEncoder(idx.onnx_file))
    finally:
        idx.close()
    texts = ["What revenue share does the US get?",
             "Past US efforts (eg. export bans) have often accelerated China’s push for "
             "indigenous tech — history suggests a similar outcome now.",
             "中文 text, émojis 🚀 and U.S. abbreviations.",
             "x",
             " ".join(["A very long input that runs past the model's window."] * 40)]
    model = SentenceTransformer(str(Settings().resolved_model_path()), device="cpu",
                                local_files_only=True)
    reference = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    got = ours.embed(texts)
    assert got.shape == reference.shape == (5, 384)
    assert float(np.abs(got - reference).max()) < 1e-4


# --- incremental rebuilds ----------------------------------------------------------------------

def test_editing_one_document_re_embeds_only_its_chunks(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    before = snapshot(index)
    path = corpus / "grid-outlook.txt"
    path.write_text(path.read_text().replace(
        "Analysts expect another record year",
        "Analysts expect another record year for storage in Europe"), encoding="utf-8")
    s = build(corpus, index)
    after = snapshot(index)
    assert_consistent(after)
    assert (s.changed, s.added, s.removed, s.unchanged) == (["grid-outlook.txt"], [], [], 5)
    assert s.full_rebuild_reason is None and not s.up_to_date
    new_count = after["manifest"].documents["grid-outlook.txt"].chunks  # type: ignore[attr-defined]
    assert s.chunks_embedded == new_count and s.chunks_reused == 0
    for doc_id, rows in before["chunks"].items():  # type: ignore[attr-defined]
        if doc_id != "grid-outlook.txt":  # untouched: the very same rows and vectors
            assert after["chunks"][doc_id] == rows  # type: ignore[index]
    old_ids = {r[0] for r in before["chunks"]["grid-outlook.txt"]}  # type: ignore[index]
    new_ids = {r[0] for r in after["chunks"]["grid-outlook.txt"]}  # type: ignore[index]
    assert not old_ids & new_ids and min(new_ids) > max(before["chunk_ids"])  # type: ignore[arg-type]
    assert after["generation"] != before["generation"]
    assert "for storage in Europe" in open_index(index).document_text("grid-outlook.txt")
    assert build(corpus, index).up_to_date


def test_deleting_a_document_removes_it_everywhere(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    question = "How much did wafer starts rise quarter on quarter?"
    answer = ask(index, question)
    assert answer.citations[0].doc_id == "market-report.md"  # type: ignore[attr-defined]
    (corpus / "market-report.md").unlink()
    s = build(corpus, index)
    assert (s.removed, s.added, s.changed, s.chunks_embedded) == (["market-report.md"], [], [], 0)
    snap = snapshot(index)
    assert_consistent(snap)
    assert "market-report.md" not in snap["documents"]  # type: ignore[operator]
    assert "market-report.md" not in snap["chunks"]  # type: ignore[operator]
    assert "market-report.md" not in snap["sentence_docs"]  # type: ignore[operator]
    idx = open_index(index)
    try:
        hits = idx.conn.execute("SELECT count(*) FROM sentence_fts WHERE sentence_fts "
                                "MATCH 'wafer OR lithography OR HBM'").fetchone()[0]
        assert hits == 0
    finally:
        idx.close()
    after = ask(index, question)
    assert all(c.doc_id != "market-report.md" for c in after.citations)  # type: ignore[attr-defined]


def test_adding_a_document_embeds_only_it(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    before = snapshot(index)
    (corpus / "notes").mkdir()
    (corpus / "notes" / "ports.md").write_text(
        "# Port traffic\n\nThe port of Rotterdam handled 14 million containers in 2024.\n")
    s = build(corpus, index)
    after = snapshot(index)
    assert_consistent(after)
    assert (s.added, s.changed, s.removed, s.unchanged) == (["notes/ports.md"], [], [], 6)
    assert s.chunks_embedded == after["manifest"].documents["notes/ports.md"].chunks == 1  # type: ignore[attr-defined]
    for doc_id, rows in before["chunks"].items():  # type: ignore[attr-defined]
        assert after["chunks"][doc_id] == rows  # type: ignore[index]
    answer = ask(index, "How many containers did Rotterdam handle?")
    assert answer.answer is not None and answer.answer.doc_id == "notes/ports.md"  # type: ignore[attr-defined]


def test_touching_a_file_re_embeds_nothing(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    os.utime(corpus / "release-notes.txt", ns=(1_000_000_000, 1_000_000_000))
    s = build(corpus, index)
    assert (s.added, s.changed, s.removed, s.chunks_embedded) == ([], [], [], 0)
    assert s.unchanged == 6
    assert build(corpus, index).up_to_date


def test_no_change_is_up_to_date_without_loading_the_model(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    code = f"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from assistant.build import build_index
from assistant.settings import Settings
t1 = time.perf_counter()
s = build_index(Settings(corpus_dir=Path({str(corpus)!r}), index_dir=Path({str(index)!r})))
t2 = time.perf_counter()
heavy = [m for m in ("onnxruntime", "torch", "sentence_transformers", "transformers")
         if m in sys.modules]
print(json.dumps({{"summary": s.model_dump(mode="json"), "build_s": t2 - t1,
                   "import_s": t1 - t0, "heavy": heavy}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    s = BuildSummary.model_validate(out["summary"])
    assert s.up_to_date and s.unchanged == 6 and s.chunks_embedded == 0
    assert out["heavy"] == []
    assert out["build_s"] < 1.0, out
    assert out["import_s"] + out["build_s"] < 3.0, out  # generous: a shared, loaded machine
    assert snapshot(index)["generation"] == "gen-000001"  # nothing was published


# --- full rebuilds -----------------------------------------------------------------------------

def test_changed_chunk_parameters_rebuild_everything(copy: tuple[Path, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index = copy
    (corpus / "market-report.md").unlink()
    monkeypatch.setenv("ASSISTANT_CHUNK_MAX_TOKENS", "150")
    s = build(corpus, index)
    assert s.full_rebuild_reason is not None
    assert "chunk parameters changed" in s.full_rebuild_reason
    assert "max_tokens 200 → 150" in s.full_rebuild_reason
    assert s.chunks_embedded == s.chunk_count
    assert s.removed == ["market-report.md"] and s.added == [] and s.unchanged == 5
    snap = snapshot(index)
    assert_consistent(snap)
    assert snap["manifest"].chunk_params.max_tokens == 150  # type: ignore[attr-defined]
    assert build(corpus, index).up_to_date


def test_a_different_model_rebuilds_everything(copy: tuple[Path, Path]) -> None:
    """An index made by other weights (its manifest names another hash) is not mixed with
    vectors of this model."""
    corpus, index = copy
    gen = index / (index / "CURRENT").read_text().strip()
    data = json.loads((gen / "manifest.json").read_text())
    data["model"]["weights_sha256"] = "0" * 64
    (gen / "manifest.json").write_text(json.dumps(data))
    s = build(corpus, index)
    assert s.full_rebuild_reason is not None and "embedding model changed" in s.full_rebuild_reason
    assert "000000000000 →" in s.full_rebuild_reason
    assert s.chunks_embedded == s.chunk_count
    snap = snapshot(index)
    assert_consistent(snap)
    assert snap["manifest"].model.weights_sha256 != "0" * 64  # type: ignore[attr-defined]


def test_model_identity_is_the_hash_of_its_weights(tmp_path: Path) -> None:
    """Other weights (here: one byte changed) are another model, even at the same path with
    the same size: the cached hash is keyed by size and mtime, and the mtime moves."""
    from assistant.model_export import identify

    src = Settings().resolved_model_path()
    model = tmp_path / "model"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("model.safetensors"))
    weights = bytearray((src / "model.safetensors").read_bytes())
    (model / "model.safetensors").write_bytes(weights)
    cache = tmp_path / "cache"
    original = identify(model, cache)
    assert original.weights_sha256 == hashlib.sha256(weights).hexdigest()
    assert identify(model, cache).weights_sha256 == original.weights_sha256  # from the cache
    weights[-1] ^= 0xFF
    (model / "model.safetensors").write_bytes(weights)
    os.utime(model / "model.safetensors", ns=(1, 1))
    other = identify(model, cache)
    assert other.weights_sha256 == hashlib.sha256(weights).hexdigest() != original.weights_sha256
    assert other.dimension == 384


def test_full_flag_re_embeds_everything(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    before = snapshot(index)
    s = build(corpus, index, full=True)
    assert s.full_rebuild_reason == "--full was requested"
    assert s.chunks_embedded == s.chunk_count == before["manifest"].chunk_count  # type: ignore[attr-defined]
    assert (s.added, s.changed, s.removed, s.unchanged) == ([], [], [], 6)
    after = snapshot(index)
    assert_consistent(after)
    assert after["generation"] != before["generation"]


# --- kills and concurrent builds ---------------------------------------------------------------

def generate_corpus(corpus: Path, n: int) -> None:
    """n short deterministic documents of three one-sentence sections: ~3n small chunks."""
    import random

    words = ["policy", "export", "market", "chip", "supply", "tariff", "factory", "harbour",
             "railway", "energy", "grid", "budget", "council", "treaty", "vendor", "memory",
             "wafer", "license", "audit", "subsidy", "port", "shipment", "revenue", "region"]
    rng = random.Random(11)
    for i in range(n):
        lines = [f"Trade note {i}"]
        for part in range(3):
            lines.append(f"Part {part + 1}")
            lines.append(" ".join(rng.choices(words, k=10)).capitalize() + ".")
        lines[2] = f"The codeword of note {i} is zq{i:04d}x. " + lines[2]
        (corpus / f"note{i:04d}.txt").write_text("\n".join(lines) + "\n")


def staging_chunks(index: Path) -> int:
    """Chunks committed in the staging database so far (0 if it cannot be read right now)."""
    db = index / "staging" / "meta.sqlite"
    if not db.is_file():
        return -1
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def start_build(corpus: Path, index: Path, log: Path, **extra_env: str
                ) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "assistant", "index", "--json",
                                 "--corpus", str(corpus), "--index", str(index)],
                                stdout=out, stderr=subprocess.STDOUT,
                                env=dict(env(), **extra_env))


def wait_for(condition: object, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, "the build finished before the moment to interrupt it"
        assert time.monotonic() < deadline, "timed out waiting for the build"
        time.sleep(0.02)


@pytest.fixture()
def briefing_and_notes(workspace: tuple[Path, Path]) -> tuple[Path, Path]:
    """The briefing indexed; then 300 generated notes added to the corpus (not yet indexed)."""
    corpus, index = workspace
    build(corpus, index)
    generate_corpus(corpus, 300)
    return corpus, index


def assert_briefing_index_intact(index: Path, generation: str) -> None:
    assert (index / "CURRENT").read_text().strip() == generation
    snap = snapshot(index)
    assert_consistent(snap)
    assert snap["documents"] == {BRIEFING.name}
    answer = ask(index, "What revenue share does the US get?")
    assert answer.answer is not None and "25%" in answer.answer.text  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_killed_build_leaves_the_old_index_and_the_next_build_resumes(
        briefing_and_notes: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = briefing_and_notes
    live = (index / "CURRENT").read_text().strip()
    # 1. Killed as soon as it has started writing.
    proc = start_build(corpus, index, tmp_path / "1.log")
    try:
        wait_for(lambda: (index / "staging").is_dir(), proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert_briefing_index_intact(index, live)
    # 2. Killed after some batches of chunks were committed to staging.
    proc = start_build(corpus, index, tmp_path / "2.log")
    try:
        wait_for(lambda: staging_chunks(index) > 7, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert_briefing_index_intact(index, live)
    assert (index / "staging").is_dir()
    # 3. The next build finishes the job, reusing what the killed one had embedded.
    s = build(corpus, index)
    assert s.chunks_reused > 0, s
    assert s.chunks_embedded + s.chunks_reused == s.chunk_count - 7
    assert s.documents == 301 and len(s.added) == 300 and s.unchanged == 1
    snap = snapshot(index)
    assert_consistent(snap)
    assert not (index / "staging").exists()
    idx = open_index(index)
    try:
        rows = idx.conn.execute("SELECT s.doc_id FROM sentence_fts f JOIN sentences s "
                                "ON s.id = f.rowid WHERE sentence_fts MATCH 'zq0299x'").fetchall()
        assert rows == [("note0299.txt",)]
    finally:
        idx.close()
    assert build(corpus, index).up_to_date


@pytest.mark.slow
def test_a_second_build_waits_for_the_lock_or_gives_up_clearly(
        briefing_and_notes: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = briefing_and_notes
    first = start_build(corpus, index, tmp_path / "first.log")
    waiter: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: (index / "staging").is_dir(), first)
        impatient = subprocess.run(
            [sys.executable, "-m", "assistant", "index", "--corpus", str(corpus),
             "--index", str(index)], capture_output=True, text=True, timeout=120,
            env=dict(env(), ASSISTANT_LOCK_TIMEOUT_S="0.2"))
        waiter = start_build(corpus, index, tmp_path / "waiter.log",
                             ASSISTANT_LOCK_TIMEOUT_S="600")
        assert impatient.returncode == 5, (impatient.stderr, first.poll())
        assert impatient.stdout == ""
        line = impatient.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert line.startswith("error: another `assistant index` is building")
        assert "try again" in line
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()
        assert waiter.wait(timeout=600) == 0, (tmp_path / "waiter.log").read_text()
    finally:
        for p in (first, waiter):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    first_summary = BuildSummary.model_validate_json((tmp_path / "first.log").read_text()
                                                     .strip().splitlines()[-1])
    waiter_summary = BuildSummary.model_validate_json((tmp_path / "waiter.log").read_text()
                                                      .strip().splitlines()[-1])
    assert first_summary.documents == 301 and not first_summary.up_to_date
    assert waiter_summary.up_to_date and waiter_summary.documents == 301
    assert "another build holds the index; waiting for it to finish" in (
        tmp_path / "waiter.log").read_text()
    snap = snapshot(index)
    assert_consistent(snap)
    assert len(snap["documents"]) == 301  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_resumed_build_does_not_keep_a_version_reverted_since(
        workspace: tuple[Path, Path], tmp_path: Path) -> None:
    """Edit a document, kill the build after it was embedded, put the old text back: the
    resumed build must index the old text again, not keep the killed build's version."""
    corpus, index = workspace
    first = corpus / "a-first.txt"
    first.write_text("Budget memo\nThe budget grew by four percent.\n")
    v1 = first.read_bytes()
    build(corpus, index)
    first.write_text("Budget memo\nThe budget shrank by nine percent in spring.\n")
    generate_corpus(corpus, 300)  # indexed after a-first.txt: time to interrupt the build
    proc = start_build(corpus, index, tmp_path / "killed.log")
    try:
        wait_for(lambda: staging_chunks(index) > 0 and _staging_has(index, "a-first.txt"), proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    first.write_bytes(v1)
    build(corpus, index)
    idx = open_index(index)
    try:
        assert idx.document_text("a-first.txt") == v1.decode()
        assert idx.manifest.documents["a-first.txt"].content_hash == ingest.content_hash(v1)
        hits = idx.conn.execute("SELECT count(*) FROM sentence_fts WHERE sentence_fts "
                                "MATCH 'shrank'").fetchone()[0]
        assert hits == 0
    finally:
        idx.close()
    assert_consistent(snapshot(index))


def _staging_has(index: Path, doc_id: str) -> bool:
    """The staging database holds this document's new version, complete."""
    db = index / "staging" / "meta.sqlite"
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            row = conn.execute("SELECT text, complete FROM documents WHERE doc_id=?",
                               (doc_id,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None and "shrank" in row[0] and row[1] == 1


def test_ctrl_c_in_a_small_build_keeps_what_was_embedded(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A build of far fewer chunks than 512 commits as it goes too: after Ctrl+C, the next
    build reuses the documents already embedded (issue 14: it used to resume nothing)."""
    from helpers.fast_encoder import FastEncoder

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    text = BRIEFING.read_text(encoding="utf-8")
    for n in range(12):
        (corpus / f"copy{n:02}.txt").write_text(f"{text}\nCopy number {n}.\n", encoding="utf-8")
    calls: list[tuple[int, int]] = []

    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "embed":
            calls.append((done, total))
            if len(calls) == 14:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(Settings(corpus_dir=corpus, index_dir=index), progress=interrupt,
                    encoder=FastEncoder)
    assert not (index / "CURRENT").exists()
    seen: list[tuple[int, int]] = []
    s = build_index(Settings(corpus_dir=corpus, index_dir=index),
                    progress=lambda stage, done, total: seen.append((done, total))
                    if stage == "embed" else None, encoder=FastEncoder)
    assert s.chunks_reused > 0, s
    assert s.chunks_reused + s.chunks_embedded == s.chunk_count and s.documents == 12
    # the progress counts chunks and ends exactly at the total
    assert seen[-1] == (s.chunk_count, s.chunk_count)
    assert all(done < total for done, total in seen[:-1])
