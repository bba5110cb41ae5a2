"""A damaged lexical index or word-vector table is the index-damaged error (exit 4, with its
fix), never a quietly weaker answer: the answer stages used to catch every exception around
the FTS query and the word-vector read and go on dense-only."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers.hostile import assert_user_error, cli

from assistant.build import build_index
from assistant.errors import IndexCorruptError
from assistant.index.integrity import digest_file
from assistant.index.layout import IndexLayout
from assistant.index.manifest import read_manifest, write_manifest
from assistant.session import Session
from assistant.settings import Settings

QUESTION = "What revenue share does the US get from H200 sales?"


def _damaged_copy(briefing_index: Path, tmp_path: Path, sql: str) -> Path:
    index = tmp_path / "index"
    shutil.copytree(briefing_index, index)
    gen = IndexLayout(index).current_generation()
    assert gen is not None
    conn = sqlite3.connect(gen / "meta.sqlite")
    conn.executescript(sql)
    conn.close()
    # damage its checksum cannot tell (as if the build itself had written it so): the
    # answer stages must still report it rather than answer around it
    manifest = read_manifest(gen)
    manifest.files["meta.sqlite"] = digest_file(gen / "meta.sqlite")
    write_manifest(gen, manifest)
    return index


def test_a_damaged_lexical_index_is_reported_not_skipped(briefing_index: Path,
                                                         tmp_path: Path) -> None:
    # the FTS5 index's segment pages gone: the table opens and counts, a MATCH cannot run
    index = _damaged_copy(briefing_index, tmp_path, "DELETE FROM sentence_fts_data WHERE id > 10;")
    session = Session.open(Settings(index_dir=index))
    try:
        with pytest.raises(IndexCorruptError) as caught:
            session.ask(QUESTION)
    finally:
        session.close()
    assert "assistant index --full" in caught.value.message


def test_a_missing_word_vector_table_is_reported_through_the_cli(briefing_index: Path,
                                                                 tmp_path: Path) -> None:
    index = _damaged_copy(briefing_index, tmp_path, "DROP TABLE term_vectors;")
    proc = cli("ask", "--index", index, QUESTION, cwd=tmp_path)
    assert_user_error(proc, 4, "damaged", "assistant index --full")


def test_the_index_is_rebuilt_over_such_damage(briefing_index: Path, tmp_path: Path) -> None:
    index = _damaged_copy(briefing_index, tmp_path, "DROP TABLE term_vectors;")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "corpus" / "nvidia-h200-china.txt", corpus)
    summary = build_index(Settings(corpus_dir=corpus, index_dir=index))
    assert summary.full_rebuild_reason and "unusable" in summary.full_rebuild_reason
    session = Session.open(Settings(index_dir=index))
    try:
        assert "25%" in session.ask(QUESTION).answer.citations[0].quote
    finally:
        session.close()
