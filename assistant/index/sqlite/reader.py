"""Reading a generation's SQLite database: ``MetaReader``, what the answer stages and the
document viewer read (both read protocols of ``assistant.index.meta``), and the reads of
benchmarks and tools that go further (every chunk's vector, every sentence).

A damaged database surfaces as ``IndexCorruptError`` with its fix, never as a quietly
weaker answer (dense only, or no soft matches).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from assistant.errors import IndexCorruptError
from assistant.index.layout import REBUILD
from assistant.index.meta import SentenceRow, Span, Vector, blob_vector, map_from_json
from assistant.index.sqlite.schema import iter_rows, marks, parts
from assistant.models import Location, Section, Unit


class ChunkVectors:
    """The chunk ids and vectors of a database, as a vector store's build reads them."""

    BATCH = 512

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def ids(self) -> set[int]:
        return {int(r[0]) for r in self._conn.execute("SELECT id FROM chunks")}

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def all(self, dim: int) -> tuple[npt.NDArray[np.int64], Vector]:
        ids: list[int] = []
        rows: list[Vector] = []
        for cid, blob in iter_rows(self._conn, "SELECT id, vector FROM chunks ORDER BY id"):
            ids.append(int(cid))  # type: ignore[call-overload]
            rows.append(blob_vector(blob))  # type: ignore[arg-type]
        arr = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        return np.asarray(ids, dtype=np.int64), arr.astype(np.float32)

    def batches(self, ids: list[int]) -> Iterator[tuple[list[int], Vector]]:
        """The vectors of ``ids`` in batches: by scanning when most are wanted (a full
        build), by id lookups when few are (an incremental one)."""
        if not ids:
            return
        rows: Iterator[tuple[object, ...]]
        if len(ids) * 4 > self.count():
            wanted = set(ids)
            rows = (r for r in iter_rows(self._conn, "SELECT id, vector FROM chunks ORDER BY id")
                    if int(r[0]) in wanted)  # type: ignore[call-overload]
        else:
            rows = (r for part in parts(ids) for r in self._conn.execute(
                f"SELECT id, vector FROM chunks WHERE id IN ({marks(part)}) ORDER BY id", part))
        batch_ids: list[int] = []
        batch_vecs: list[Vector] = []
        for cid, blob in rows:
            batch_ids.append(int(cid))  # type: ignore[call-overload]
            batch_vecs.append(blob_vector(blob))  # type: ignore[arg-type]
            if len(batch_ids) == self.BATCH:
                yield batch_ids, np.stack(batch_vecs)
                batch_ids, batch_vecs = [], []
        if batch_ids:
            yield batch_ids, np.stack(batch_vecs)


class MetaReader:
    """Every read the answer stages and the readers of documents make of a generation's
    database. The connection is read-only and the generation immutable."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        """For tests and diagnostics only: the answer stages go through the methods."""
        self.path = path
        has_df = self._run(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='term_df'").fetchone()
        self._df_source = "df FROM term_df" if has_df else "doc FROM sentence_vocab"

    def _damaged(self, exc: sqlite3.Error) -> IndexCorruptError:
        return IndexCorruptError(f"{self.path} is damaged ({exc}); run `assistant index --full`")

    def _run(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc

    def check(self, chunk_count: int) -> None:
        """The tables a generation needs are there and hold as many chunks as it says."""
        try:
            n = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            self.conn.execute("SELECT count(*) FROM sentence_fts").fetchone()
            self.conn.execute("SELECT 1 FROM term_vectors LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc
        if n != chunk_count:
            raise IndexCorruptError(f"{self.path} holds {n} chunks, the manifest says "
                                    f"{chunk_count}; run `assistant index --full`")

    def quick_check(self) -> None:
        """SQLite's own check of the file's structure (every page read once): damage the
        queries of a few questions would not meet yet."""
        try:
            rows = self.conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        if rows != [("ok",)]:
            raise IndexCorruptError(f"{self.path} is damaged (SQLite's quick_check: "
                                    f"{' '.join(str(rows[0][0]).split())[:160]}); {REBUILD}")

    # --- term statistics ------------------------------------------------------------------

    def document_frequencies(self, words: Sequence[str]) -> dict[str, int]:
        """Sentences holding each word, for the words that occur (from ``term_df``; an index
        built before that table existed falls back to the FTS vocabulary, slower)."""
        out: dict[str, int] = {}
        for part in parts(words):
            out.update((str(t), int(d)) for t, d in self._all(  # type: ignore[call-overload]
                f"SELECT term, {self._df_source} WHERE term IN ({marks(part)})", part))
        return out

    def word_vectors(self, words: Sequence[str]) -> dict[str, Vector]:
        """The vectors the index holds for these words (embedded at build time)."""
        found: dict[str, Vector] = {}
        for part in parts(words):
            for term, blob in self._all(
                    f"SELECT term, vector FROM term_vectors WHERE term IN ({marks(part)})", part):
                found[str(term)] = blob_vector(blob)  # type: ignore[arg-type]
        return found

    # --- candidates -----------------------------------------------------------------------

    def lexical(self, forms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """Sentences holding any of the word forms, best BM25 first, with their scores
        (higher is better); the context column (title, section) weighs a fifth."""
        if not forms:
            return []
        match = " OR ".join('"' + f.replace('"', '""') + '"' for f in forms)
        rows = self._all(
            "SELECT rowid, bm25(sentence_fts, 1.0, 0.2) AS score FROM sentence_fts "
            "WHERE sentence_fts MATCH ? ORDER BY score LIMIT ?", (match, limit))
        return [(int(r[0]), -float(r[1])) for r in rows]  # type: ignore[call-overload, arg-type]

    _SENTENCE_SQL = (
        "SELECT s.id, s.chunk_id, s.doc_id, s.start, s.end, s.vector, c.section, d.title, "
        "f.body FROM sentences s JOIN chunks c ON c.id = s.chunk_id "
        "JOIN documents d ON d.doc_id = s.doc_id JOIN sentence_fts f ON f.rowid = s.id WHERE ")

    def sentences(self, chunk_ids: Sequence[int], sentence_ids: Sequence[int]
                  ) -> list[SentenceRow]:
        """Every sentence of the chunks, and the other sentences asked for."""
        rows: dict[int, SentenceRow] = {}
        for part in parts(chunk_ids):
            for r in self._all(self._SENTENCE_SQL + f"s.chunk_id IN ({marks(part)})", part):
                rows[int(r[0])] = SentenceRow(*r)  # type: ignore[call-overload, arg-type]
        missing = [s for s in sentence_ids if s not in rows]
        for part in parts(missing):
            for r in self._all(self._SENTENCE_SQL + f"s.id IN ({marks(part)})", part):
                rows[int(r[0])] = SentenceRow(*r)  # type: ignore[call-overload, arg-type]
        return list(rows.values())

    def chunk_vectors(self, chunk_ids: Iterable[int]) -> dict[int, Vector]:
        ids = list(chunk_ids)
        out: dict[int, Vector] = {}
        for part in parts(ids):
            for cid, blob in self._all(
                    f"SELECT id, vector FROM chunks WHERE id IN ({marks(part)})", part):
                out[int(cid)] = blob_vector(blob)  # type: ignore[call-overload, arg-type]
        return out

    def adjacent_ids(self, sentence_ids: Sequence[int]
                     ) -> dict[int, tuple[int | None, int | None]]:
        """Each sentence's previous and next sentence in its document (ids, or None)."""
        out: dict[int, tuple[int | None, int | None]] = {}
        for part in parts(sentence_ids):
            for sid, pid, nid in self._all(
                    "SELECT s.id, (SELECT p.id FROM sentences p WHERE p.doc_id = s.doc_id AND "
                    "p.start < s.start ORDER BY p.start DESC LIMIT 1), (SELECT n.id FROM "
                    "sentences n WHERE n.doc_id = s.doc_id AND n.start > s.start ORDER BY "
                    f"n.start LIMIT 1) FROM sentences s WHERE s.id IN ({marks(part)})", part):
                out[int(sid)] = (None if pid is None else int(pid),  # type: ignore[call-overload]
                                 None if nid is None else int(nid))  # type: ignore[call-overload]
        return out

    def sections_and_bodies(self, sentence_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """Each sentence's section heading and text."""
        out: dict[int, tuple[str, str]] = {}
        for part in parts(sentence_ids):
            for sid, section, body in self._all(
                    "SELECT s.id, c.section, f.body FROM sentences s JOIN chunks c ON "
                    "c.id = s.chunk_id JOIN sentence_fts f ON f.rowid = s.id "
                    f"WHERE s.id IN ({marks(part)})", part):
                out[int(sid)] = (str(section), str(body))  # type: ignore[call-overload]
        return out

    # --- documents ------------------------------------------------------------------------

    def neighbours(self, doc_id: str, start: int, end: int) -> tuple[Span | None, Span | None]:
        """The sentences just before and after a span in its document."""
        prev = self._run(
            "SELECT s.start, s.end, f.body FROM sentences s JOIN sentence_fts f ON f.rowid = s.id "
            "WHERE s.doc_id=? AND s.start < ? ORDER BY s.start DESC LIMIT 1",
            (doc_id, start)).fetchone()
        nxt = self._run(
            "SELECT s.start, s.end, f.body FROM sentences s JOIN sentence_fts f ON f.rowid = s.id "
            "WHERE s.doc_id=? AND s.start >= ? ORDER BY s.start LIMIT 1",
            (doc_id, end)).fetchone()
        return (_span(prev), _span(nxt))

    def document_slice(self, doc_id: str, start: int, end: int) -> str:
        """``document_text[start:end]``, read without loading the whole document."""
        row = self._run("SELECT substr(text, ?, ?) FROM documents WHERE doc_id=?",
                        (start + 1, end - start, doc_id)).fetchone()
        return str(row[0]) if row else ""

    def document_text(self, doc_id: str) -> str:
        row = self._run("SELECT text FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            raise IndexCorruptError(f"document {doc_id} is missing from the index")
        return str(row[0])

    def document_sections(self, doc_id: str) -> list[Section]:
        row = self._run("SELECT sections FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return [Section.model_validate(s) for s in json.loads(row[0])] if row else []

    def document_map(self, doc_id: str) -> tuple[list[Unit], list[Location]]:
        """A document's units and the map of its text to the source's lines
        (``assistant.locations``)."""
        row = self._run("SELECT units, locations FROM documents WHERE doc_id=?",
                        (doc_id,)).fetchone()
        return map_from_json(str(row[0]), str(row[1])) if row else ([], [(0, 1, 0)])

    def documents(self) -> list[tuple[str, str, str]]:
        """(doc_id, title, text) of every document (benchmarks, gold-set tools)."""
        return [(str(d), str(t), str(x))
                for d, t, x in self._all("SELECT doc_id, title, text FROM documents")]

    def sentence_spans(self, doc_id: str) -> list[tuple[int, int]]:
        return [(int(s), int(e)) for s, e in self._all(  # type: ignore[call-overload]
            "SELECT start, end FROM sentences WHERE doc_id=? ORDER BY start", (doc_id,))]

    # --- benchmarks and tools -------------------------------------------------------------

    def all_chunk_vectors(self, dim: int) -> tuple[npt.NDArray[np.int64], Vector]:
        """Every chunk's id and vector, in id order."""
        return ChunkVectors(self.conn).all(dim)

    def chunk_spans(self) -> list[tuple[str, str, int, int]]:
        """(doc_id, section, start, end) of every chunk, in id order."""
        return [(str(d), str(s), int(a), int(b))  # type: ignore[call-overload]
                for d, s, a, b in self._all(
                    "SELECT doc_id, section, start, end FROM chunks ORDER BY id")]

    def sentence_texts(self) -> list[str]:
        """Every sentence, in id order, as the answer stages quote it."""
        return [str(r[0]) for r in self._all(
            "SELECT f.body FROM sentences s JOIN sentence_fts f ON f.rowid = s.id ORDER BY s.id")]

    def export_sentences(self, out: Path) -> int:
        """``sentence_texts`` written to ``out``, one JSON string a line, for tools that
        cannot import the assistant (``scripts/bench_peers_quality.py`` in ``.bench-venv``);
        the count."""
        texts = self.sentence_texts()
        out.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts),
                       encoding="utf-8")
        return len(texts)

    def close(self) -> None:
        self.conn.close()


def _span(row: tuple[object, ...] | None) -> Span | None:
    if row is None:
        return None
    return int(row[0]), int(row[1]), str(row[2])  # type: ignore[call-overload]


def staged_chunk_count(db: Path) -> int:
    """Chunks of the complete documents in a staging database a build is writing (0 while it
    cannot be read): how far a build got, for a benchmark that interrupts it."""
    if not db.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return int(conn.execute(
                "SELECT count(*) FROM chunks WHERE doc_id IN "
                "(SELECT doc_id FROM documents WHERE complete=1)").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
