"""Staging: the build's working copy of the database, resumed after an interruption.

Every write a build makes to the metadata database is here (and in ``embedding``, which
inserts the embedded batches); the schema itself is ``assistant.index.meta``'s.
"""

from __future__ import annotations

import shutil
import sqlite3

from assistant import ingest
from assistant.build.plan import Plan
from assistant.index.layout import META_DB, IndexLayout, remove_tree, write_json_atomic
from assistant.index.meta import connect_write
from assistant.models import DocumentRecord, IndexManifest

PLAN = "plan.json"


def open_staging(layout: IndexLayout, plan: Plan, base: IndexManifest | None
                  ) -> tuple[sqlite3.Connection, str | None]:
    """The staging database (resumed when a build of the same plan left it), and a notice
    when a staging folder left behind was unreadable and had to be discarded."""
    staging = layout.staging
    plan_file = staging / PLAN
    notice = None
    if staging.is_dir():
        try:
            resumable = (plan_file.read_text(encoding="utf-8") == plan.key()
                         and (staging / META_DB).is_file())
        except FileNotFoundError:
            resumable = False
        except (OSError, ValueError):  # garbled by a crash or a disk fault
            resumable = False
            notice = UNREADABLE
        if resumable:
            try:
                conn = connect_write(staging / META_DB)
                if conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]:
                    return conn, None
                conn.close()
            except sqlite3.DatabaseError:
                pass
            notice = UNREADABLE
        remove_tree(staging)
    staging.mkdir(parents=True)
    if base is not None:
        shutil.copyfile(layout.generation_dir(base.generation) / META_DB, staging / META_DB)
    conn = connect_write(staging / META_DB)
    write_json_atomic(plan_file, plan.key())
    return conn, notice


UNREADABLE = ("the work left by an interrupted build was unreadable and was discarded; "
              "this build starts afresh")


def record(f: ingest.CorpusFile, digest: str, mtime: int, count: int,
            conn: sqlite3.Connection) -> DocumentRecord:
    title, fmt = conn.execute("SELECT title, format FROM documents WHERE doc_id=?",
                              (f.doc_id,)).fetchone()
    return DocumentRecord(doc_id=f.doc_id, title=title, format=fmt, content_hash=digest,
                          size=f.size, mtime_ns=mtime, chunks=int(count))


def drop_if_held(conn: sqlite3.Connection, doc_id: str, held: dict[str, tuple[str, int]]
                  ) -> None:
    if doc_id in held:
        conn.execute("BEGIN")
        delete_document(conn, doc_id)
        conn.execute("COMMIT")
        held.pop(doc_id, None)


def delete_document(conn: sqlite3.Connection, doc_id: str) -> None:
    conn.execute("DELETE FROM sentence_fts WHERE rowid IN "
                 "(SELECT id FROM sentences WHERE doc_id=?)", (doc_id,))
    conn.execute("DELETE FROM sentences WHERE doc_id=?", (doc_id,))
    conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
    conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))


def refresh_term_df(conn: sqlite3.Connection) -> None:
    """Copy each word's sentence frequency out of the FTS vocabulary into a plain table."""
    conn.execute("BEGIN")
    conn.execute("DELETE FROM term_df")
    conn.execute("INSERT INTO term_df(term, df) SELECT term, doc FROM sentence_vocab")
    conn.execute("COMMIT")




def held_documents(conn: sqlite3.Connection) -> dict[str, tuple[str, int]]:
    """Which documents the staging database already holds: content hash, and whether all
    their chunks were committed (resumed work)."""
    return {str(d): (str(h), int(c)) for d, h, c in
            conn.execute("SELECT doc_id, content_hash, complete FROM documents")}


def drop_documents(conn: sqlite3.Connection, doc_ids: list[str]) -> None:
    """Delete documents and everything of theirs, in one transaction."""
    if not doc_ids:
        return
    conn.execute("BEGIN")
    for doc_id in doc_ids:
        delete_document(conn, doc_id)
    conn.execute("COMMIT")


def chunk_count_of(conn: sqlite3.Connection, doc_id: str) -> int:
    return int(conn.execute("SELECT chunk_count FROM documents WHERE doc_id=?",
                            (doc_id,)).fetchone()[0])


def committed_chunks(conn: sqlite3.Connection, doc_id: str) -> int:
    """How many chunks of a document an interrupted build committed (its first ones: each
    batch commits a document's chunks in order)."""
    return int(conn.execute("SELECT count(*) FROM chunks WHERE doc_id=?", (doc_id,)
                            ).fetchone()[0])


def document_ids(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT doc_id FROM documents")}


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(chunks, sentences) in the staging database."""
    return (int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0]),
            int(conn.execute("SELECT count(*) FROM sentences").fetchone()[0]))
