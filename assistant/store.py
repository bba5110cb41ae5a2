"""Store: the index folder on disk — generations, the metadata database, the manifest.

    index/
      CURRENT            name of the live generation, replaced atomically (rename)
      gen-000007/        one published generation, never modified once named in CURRENT
        manifest.json    IndexManifest, written last
        meta.sqlite      documents (with extracted text), chunks, sentences, FTS5, vectors
        chunks.faiss     the chunk vectors (FAISS store only)
        qdrant/          the chunk vectors (Qdrant local mode only; see qdrant_store.py)
      staging/           the build in progress; resumed if a build was interrupted
      models/<sha>/      ONNX export of the embedding model + its tokenizer
      .lock              held by the one build allowed at a time

Readers only ever open a generation named by CURRENT, so a build killed at any
instant leaves the previous index complete; at most the two newest generations
are kept, so a reader that has just read CURRENT still finds its files.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from assistant.errors import (
    IndexCorruptError,
    IndexIncompatibleError,
    IndexMissingError,
)
from assistant.models import SCHEMA_VERSION, IndexManifest, Section

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
META_DB = "meta.sqlite"
STAGING = "staging"
MODELS = "models"
LOCK = ".lock"

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
    term TEXT PRIMARY KEY,             -- instead of fts5vocab's (~0.1 ms a term at 100k chunks)
    df INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS term_vectors (  -- one vector per distinct word, for soft matching
    term TEXT PRIMARY KEY,
    vector BLOB NOT NULL
) WITHOUT ROWID;
"""


def generation_name(n: int) -> str:
    return f"gen-{n:06d}"


@dataclass(frozen=True)
class IndexLayout:
    root: Path

    @property
    def current_file(self) -> Path:
        return self.root / CURRENT

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK

    def generation_dir(self, n: int) -> Path:
        return self.root / generation_name(n)

    def current_generation(self) -> Path | None:
        """The live generation's folder, or None when no index was ever published."""
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"{self.current_file} is unreadable; "
                                    "run `assistant index --full` to rebuild") from exc
        if not name.startswith("gen-") or "/" in name or not (self.root / name).is_dir():
            raise IndexCorruptError(f"{self.current_file} names no generation ({name[:40]!r}); "
                                    "run `assistant index --full` to rebuild")
        return self.root / name

    def generations(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("gen-"))


def read_manifest(gen_dir: Path) -> IndexManifest:
    """The one place a manifest is read and validated."""
    path = gen_dir / MANIFEST
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path} is missing; run `assistant index --full`") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is unreadable; run `assistant index --full`") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise IndexCorruptError(f"{path} is not valid JSON; run `assistant index --full`") from exc
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise IndexIncompatibleError(
            f"the index in {gen_dir.parent} has schema version {data.get('schema_version')!r}, "
            f"this assistant reads version {SCHEMA_VERSION}; run `assistant index --full`")
    try:
        return IndexManifest.model_validate(data)
    except ValidationError as exc:
        raise IndexCorruptError(f"{path} is damaged ({exc.error_count()} invalid fields); "
                                "run `assistant index --full`") from exc


def write_json_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def vector_blob(v: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(v, dtype=np.float16).tobytes()


def blob_vector(b: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(b, dtype=np.float16).astype(np.float32)


def sections_json(sections: Iterable[Section]) -> str:
    return json.dumps([s.model_dump() for s in sections])


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def iter_rows(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()
              ) -> Iterator[tuple[object, ...]]:
    cur = conn.execute(sql, params)
    while True:
        rows = cur.fetchmany(4096)
        if not rows:
            return
        yield from rows


def next_id(conn: sqlite3.Connection, table: str) -> int:
    """The next never-used id of an AUTOINCREMENT table."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name=?", (table,)).fetchone()
    return (int(row[0]) if row else 0) + 1


def require_index(layout: IndexLayout) -> Path:
    gen = layout.current_generation()
    if gen is None:
        raise IndexMissingError(f"no index in {layout.root}; run `assistant index` to build it")
    return gen


@dataclass
class OpenIndex:
    """A published generation opened for reading: manifest, database, vectors, model files."""

    layout: IndexLayout
    generation_dir: Path
    manifest: IndexManifest
    conn: sqlite3.Connection
    vectors: VectorSearchLike

    @property
    def onnx_file(self) -> Path:
        return self.layout.root / self.manifest.model.onnx_file

    def document_text(self, doc_id: str) -> str:
        row = self.conn.execute("SELECT text FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            raise IndexCorruptError(f"document {doc_id} is missing from the index")
        return str(row[0])

    def document_sections(self, doc_id: str) -> list[Section]:
        row = self.conn.execute("SELECT sections FROM documents WHERE doc_id=?",
                                (doc_id,)).fetchone()
        return [Section.model_validate(s) for s in json.loads(row[0])] if row else []

    def close(self) -> None:
        self.conn.close()
        release = getattr(self.vectors, "close", None)  # Qdrant's local mode holds a lock
        if release is not None:
            release()


class VectorSearchLike:  # a structural stand-in; see assistant.vectors.VectorSearch
    count: int

    def search(self, query: npt.NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        raise NotImplementedError


def open_index(index_dir: Path) -> OpenIndex:
    """Open the live generation, checking that its parts exist and agree with the manifest."""
    layout = IndexLayout(index_dir)
    if not index_dir.is_dir():
        raise IndexMissingError(f"no index in {index_dir}; run `assistant index` to build it")
    for _ in range(3):
        gen = require_index(layout)
        try:
            return _open_generation(layout, gen)
        except IndexCorruptError:
            # A build published twice between reading CURRENT and opening the files, and
            # removed this generation: open the new one instead of reporting damage.
            if layout.current_generation() == gen:
                raise
    return _open_generation(layout, require_index(layout))


def _open_generation(layout: IndexLayout, gen: Path) -> OpenIndex:
    manifest = read_manifest(gen)
    conn = connect_read(gen / META_DB)
    try:
        return _check_generation(layout, gen, manifest, conn)
    except BaseException:
        conn.close()
        raise


def _check_generation(layout: IndexLayout, gen: Path, manifest: IndexManifest,
                      conn: sqlite3.Connection) -> OpenIndex:
    try:
        n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        conn.execute("SELECT count(*) FROM sentence_fts").fetchone()
    except sqlite3.Error as exc:
        raise IndexCorruptError(f"{gen / META_DB} is damaged ({exc}); "
                                "run `assistant index --full`") from exc
    if n != manifest.chunk_count:
        raise IndexCorruptError(f"{gen / META_DB} holds {n} chunks, the manifest says "
                                f"{manifest.chunk_count}; run `assistant index --full`")
    onnx = layout.root / manifest.model.onnx_file
    for part in (onnx, onnx.parent / "tokenizer.json"):
        if not part.is_file():
            raise IndexCorruptError(f"the exported model file {part} is missing; "
                                    "run `assistant index --full`")
    vectors: VectorSearchLike
    if manifest.vectors.store == "qdrant":
        from assistant.qdrant_store import QdrantVectors

        vectors = QdrantVectors.open(layout, manifest.vectors, gen)  # type: ignore[assignment]
    else:
        from assistant.vectors import FAISS_FILE, FaissVectors

        vectors = FaissVectors.open(gen / FAISS_FILE, manifest.vectors)  # type: ignore[assignment]
    if vectors.count != manifest.chunk_count:
        raise IndexCorruptError(f"the vector index holds {vectors.count} vectors, the manifest "
                                f"says {manifest.chunk_count}; run `assistant index --full`")
    return OpenIndex(layout=layout, generation_dir=gen, manifest=manifest, conn=conn,
                     vectors=vectors)
