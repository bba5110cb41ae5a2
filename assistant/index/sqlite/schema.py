"""The SQLite database of a generation (``meta.sqlite``): its schema, its connections and the
encodings of its columns. The reader and the writer beside this module hold every statement.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from assistant.errors import IndexCorruptError
from assistant.index.meta import BATCH_PARAMS
from assistant.models import Section, Unit

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    format TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    text TEXT NOT NULL,
    sections TEXT NOT NULL,
    units TEXT NOT NULL DEFAULT '[]',      -- JSON: the units (labels, table rows)
    locations TEXT NOT NULL DEFAULT '[]',  -- JSON: [offset, line, page] map to the source
    chunk_count INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: vector stores key on it
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    section TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    first_owned INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_chunk ON sentences(chunk_id);
CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(doc_id, start);
CREATE VIRTUAL TABLE IF NOT EXISTS sentence_fts USING fts5(
    body, context, tokenize = "unicode61 remove_diacritics 2"
);
CREATE VIRTUAL TABLE IF NOT EXISTS sentence_vocab USING fts5vocab(sentence_fts, 'row');
CREATE TABLE IF NOT EXISTS term_df (  -- sentence_vocab copied at publish: a B-tree lookup
    term TEXT PRIMARY KEY,             -- instead of fts5vocab's scan, slow on a large index
    df INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS term_vectors (  -- one vector per distinct word, for soft matching
    term TEXT PRIMARY KEY,
    vector BLOB NOT NULL
) WITHOUT ROWID;
"""


def connect_write(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA_SQL)
    return conn


def connect_read(path: Path) -> sqlite3.Connection:
    """Read-only and immutable: a published generation never changes, so no locks are needed
    and a read-only index folder works."""
    if not path.is_file():
        raise IndexCorruptError(f"{path} is missing; run `assistant index --full`")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True,
                               check_same_thread=False)
        conn.execute("SELECT count(*) FROM documents").fetchone()
    except sqlite3.Error as exc:
        raise IndexCorruptError(f"{path} is not a readable index database ({exc}); "
                                "run `assistant index --full`") from exc
    return conn


def sections_json(sections: Iterable[Section]) -> str:
    return json.dumps([s.model_dump() for s in sections])


def units_json(units: Iterable[Unit]) -> str:
    """Units as ``[start, end, label, kind]`` rows (their search words are in the FTS table)."""
    return json.dumps([[u.start, u.end, u.label, u.kind] for u in units], ensure_ascii=False)


def iter_rows(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()
              ) -> Iterator[tuple[object, ...]]:
    cur = conn.execute(sql, params)
    while True:
        rows = cur.fetchmany(4096)
        if not rows:
            return
        yield from rows


def marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


def parts(items: Sequence[object]) -> Iterator[list[object]]:
    for i in range(0, len(items), BATCH_PARAMS):
        yield list(items[i:i + BATCH_PARAMS])
