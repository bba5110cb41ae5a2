"""What benchmarks and tools read of a local index through its reader (``OpenIndex.local``),
instead of SQL of their own: every sentence as it is quoted (exported for the peers'
benchmark, which cannot import the assistant), every chunk's text span and vector, and how
far a build got in its staging database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from assistant.index.sqlite import staged_chunk_count
from assistant.index.store import open_index


def test_the_sentence_export_is_every_sentence_as_quoted(briefing_index: Path,
                                                         tmp_path: Path) -> None:
    idx = open_index(briefing_index)
    try:
        out = tmp_path / "sentences.jsonl"
        count = idx.local.export_sentences(out)
        ((_, _, text),) = idx.meta.documents()
        spans = [(int(s), int(e)) for s, e in
                 idx.conn.execute("SELECT start, end FROM sentences ORDER BY id")]
    finally:
        idx.close()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert count == len(lines) == len(spans) == idx.manifest.sentence_count > 10
    assert [json.loads(line) for line in lines] == [text[s:e] for s, e in spans]


def test_chunks_are_read_in_id_order_with_their_vectors(briefing_index: Path) -> None:
    idx = open_index(briefing_index)
    try:
        ids, vectors = idx.local.all_chunk_vectors(idx.manifest.model.dimension)
        spans = idx.local.chunk_spans()
        text = idx.document_text(spans[0][0])
        hits = idx.vectors.search(vectors[:1], 1)
    finally:
        idx.close()
    assert len(ids) == len(spans) == vectors.shape[0] == idx.manifest.chunk_count
    assert list(ids) == sorted(ids) and vectors.dtype == np.float32
    assert hits[0][0] == int(ids[0])  # the vector store holds the same vectors
    assert all(0 <= start < end <= len(text) for _, _, start, end in spans)


def test_a_staging_database_counts_its_complete_documents_chunks(briefing_index: Path,
                                                                 tmp_path: Path) -> None:
    idx = open_index(briefing_index)
    db, chunks = idx.generation_dir / "meta.sqlite", idx.manifest.chunk_count
    idx.close()
    assert staged_chunk_count(db) == chunks
    assert staged_chunk_count(tmp_path / "missing.sqlite") == 0
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database" * 100)
    assert staged_chunk_count(tmp_path / "garbage.sqlite") == 0
