"""Writing a generation's SQLite database: ``MetaWriter``, every write a build makes to its
staging copy (documents, chunks, sentences with their lexical entries, word vectors, and the
removal of documents), committed batch by batch so that an interrupted build resumes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

from assistant.index.meta import Vector, vector_blob
from assistant.index.sqlite.reader import ChunkVectors
from assistant.index.sqlite.schema import connect_write, marks, sections_json, units_json
from assistant.models import Chunk, SourceDocument

TERM_BATCH = 500
"""Words looked up in one statement when checking which have a vector already."""


class NewDocument(NamedTuple):
    """A document as its first batch stores it; ``complete`` when that batch holds its last
    chunk too."""

    doc: SourceDocument
    size: int
    mtime_ns: int
    chunk_count: int
    complete: bool


class NewChunk(NamedTuple):
    chunk_id: int
    chunk: Chunk
    vector: Vector


class NewSentence(NamedTuple):
    """A sentence: its row, and its lexical entry (its text, and the context it is found
    with: title, section, its unit's words)."""

    sentence_id: int
    chunk_id: int
    doc_id: str
    start: int
    end: int
    vector: Vector
    body: str
    context: str


class MetaWriter:
    """The build's connection to a staging database (autocommit: each batch is one explicit
    transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def create(cls, path: Path) -> MetaWriter:
        """Open (or make) the database at ``path`` with the schema."""
        return cls(connect_write(path))

    @classmethod
    def resume(cls, path: Path) -> MetaWriter | None:
        """Reopen the database an interrupted build left, or None when SQLite finds it
        damaged (then the build starts afresh)."""
        try:
            conn = connect_write(path)
            if conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]:
                return cls(conn)
            conn.close()
        except sqlite3.DatabaseError:
            pass
        return None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction: all of it is committed, or none."""
        self.conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- what the staging database holds --------------------------------------------------

    def held_documents(self) -> dict[str, tuple[str, int]]:
        """Which documents the database already holds: content hash, and whether all their
        chunks were committed (resumed work)."""
        return {str(d): (str(h), int(c)) for d, h, c in
                self.conn.execute("SELECT doc_id, content_hash, complete FROM documents")}

    def document_ids(self) -> set[str]:
        return {str(r[0]) for r in self.conn.execute("SELECT doc_id FROM documents")}

    def title_and_format(self, doc_id: str) -> tuple[str, str]:
        title, fmt = self.conn.execute("SELECT title, format FROM documents WHERE doc_id=?",
                                       (doc_id,)).fetchone()
        return str(title), str(fmt)

    def chunk_count_of(self, doc_id: str) -> int:
        """The chunk count a document's record holds (its last batch's)."""
        return int(self.conn.execute("SELECT chunk_count FROM documents WHERE doc_id=?",
                                     (doc_id,)).fetchone()[0])

    def committed_chunks(self, doc_id: str) -> int:
        """How many chunks of a document an interrupted build committed (its first ones:
        each batch commits a document's chunks in order)."""
        return int(self.conn.execute("SELECT count(*) FROM chunks WHERE doc_id=?", (doc_id,)
                                     ).fetchone()[0])

    def counts(self) -> tuple[int, int]:
        """(chunks, sentences) in the database."""
        return (int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]),
                int(self.conn.execute("SELECT count(*) FROM sentences").fetchone()[0]))

    def next_ids(self) -> tuple[int, int]:
        """The next never-used chunk and sentence ids (AUTOINCREMENT: never reused, as the
        vector stores key on them)."""
        return self._next_id("chunks"), self._next_id("sentences")

    def _next_id(self, table: str) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name=?",
                                (table,)).fetchone()
        return (int(row[0]) if row else 0) + 1

    def known_terms(self, words: Sequence[str]) -> set[str]:
        """Those of ``words`` that have a vector already."""
        known: set[str] = set()
        for i in range(0, len(words), TERM_BATCH):
            part = list(words[i:i + TERM_BATCH])
            known.update(str(r[0]) for r in self.conn.execute(
                f"SELECT term FROM term_vectors WHERE term IN ({marks(part)})", part))
        return known

    def chunk_vectors(self) -> ChunkVectors:
        """The chunks' ids and vectors, as the vector store's build reads them."""
        return ChunkVectors(self.conn)

    # --- writes (inside ``batch``, except where said) -------------------------------------

    def add_documents(self, documents: Sequence[NewDocument]) -> None:
        self.conn.executemany(
            "INSERT INTO documents(doc_id, title, format, content_hash, size, mtime_ns, text, "
            "sections, units, locations, chunk_count, complete) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(d.doc.doc_id, d.doc.title, d.doc.format, d.doc.content_hash, d.size, d.mtime_ns,
              d.doc.text, sections_json(d.doc.sections), units_json(d.doc.units),
              json.dumps(d.doc.locations), d.chunk_count, int(d.complete))
             for d in documents])

    def complete_documents(self, chunk_counts: Sequence[tuple[str, int]]) -> None:
        """Mark documents whose last chunks arrived complete, with their (doc_id, chunk
        count)."""
        self.conn.executemany("UPDATE documents SET chunk_count=?, complete=1 WHERE doc_id=?",
                              [(n, doc_id) for doc_id, n in chunk_counts])

    def add_chunks(self, chunks: Sequence[NewChunk]) -> None:
        self.conn.executemany(
            "INSERT INTO chunks(id, doc_id, ordinal, section, start, end, first_owned, vector) "
            "VALUES (?,?,?,?,?,?,?,?)",
            [(n.chunk_id, n.chunk.doc_id, n.chunk.ordinal, n.chunk.section, n.chunk.start,
              n.chunk.end, n.chunk.first_owned, vector_blob(n.vector)) for n in chunks])

    def add_sentences(self, sentences: Sequence[NewSentence]) -> None:
        """The sentences' rows, then their lexical entries (the FTS rowid is the sentence's
        id)."""
        self.conn.executemany(
            "INSERT INTO sentences(id, chunk_id, doc_id, start, end, vector) "
            "VALUES (?,?,?,?,?,?)",
            [(s.sentence_id, s.chunk_id, s.doc_id, s.start, s.end, vector_blob(s.vector))
             for s in sentences])
        self.conn.executemany("INSERT INTO sentence_fts(rowid, body, context) VALUES (?,?,?)",
                              [(s.sentence_id, s.body, s.context) for s in sentences])

    def add_term_vectors(self, terms: Sequence[str], vectors: Vector) -> None:
        """Each term with its vector (a row of ``vectors``)."""
        self.conn.executemany("INSERT INTO term_vectors(term, vector) VALUES (?, ?)",
                              [(w, vector_blob(v)) for w, v in zip(terms, vectors, strict=True)])

    def drop_documents(self, doc_ids: Sequence[str]) -> None:
        """Delete documents and everything of theirs, in one transaction of its own."""
        if not doc_ids:
            return
        with self.batch():
            for doc_id in doc_ids:
                self._delete_document(doc_id)

    def _delete_document(self, doc_id: str) -> None:
        self.conn.execute("DELETE FROM sentence_fts WHERE rowid IN "
                          "(SELECT id FROM sentences WHERE doc_id=?)", (doc_id,))
        self.conn.execute("DELETE FROM sentences WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def refresh_term_df(self) -> None:
        """Copy each word's sentence frequency out of the FTS vocabulary into a plain table,
        in one transaction of its own."""
        with self.batch():
            self.conn.execute("DELETE FROM term_df")
            self.conn.execute("INSERT INTO term_df(term, df) SELECT term, doc FROM sentence_vocab")

    def close(self) -> None:
        self.conn.close()


@contextmanager
def refused_writes(error: Callable[[str], Exception]) -> Iterator[None]:
    """SQLite refusing a write (the disk full, a read-only file) raised as ``error(reason)``;
    any other error as it is."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "full" in str(exc) or "disk" in str(exc) or "readonly" in str(exc):
            raise error(str(exc)) from exc
        raise
