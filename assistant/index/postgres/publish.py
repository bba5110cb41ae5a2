"""Publishing a locally built generation to the server, in one transaction.

The build runs as it does for a local index, into a staging folder of this machine (so it
is incremental and resumes after a kill), then ``publish`` copies what changed: a document
whose rows on the server were made from the same content, chunk parameters, model and
chunk ids is kept; every other document's rows are marked as leaving (``dies``) and the
local rows are added (``born``) under the new generation, whose ``current`` row is set in
the same transaction. A builder killed before the commit leaves the server as it was
(PostgreSQL rolls the transaction back); the next build publishes again. Rows no reader of
the live generation, the one before it, or one an open reader holds can see are deleted
first. ``ServerLock`` (a
PostgreSQL advisory lock, released when its connection drops) serialises builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assistant.errors import IndexCorruptError, IndexIncompatibleError, IndexLockedError
from assistant.index.layout import META_DB
from assistant.index.meta import blob_vector
from assistant.index.postgres import check_schema, read_current
from assistant.index.postgres.connection import connect, public_url, unreachable
from assistant.index.postgres.lexical import Tokenizer
from assistant.index.postgres.reader import PgConnection
from assistant.index.postgres.schema import (
    ALL_TABLES,
    DOCUMENT_TABLES,
    LOCK_KEY,
    NEVER,
    READER_KEY,
    SCHEMA,
    create_sql,
)
from assistant.index.sqlite.schema import connect_read, iter_rows
from assistant.models import IndexManifest, VectorIndexInfo

S = SCHEMA
Report = Callable[[str, int, int], None]


class ServerLock:
    """The one build allowed at a time on a server: a session-level advisory lock, held on
    its own connection for the whole build (a killed builder's connection drops, and the
    lock with it)."""

    def __init__(self, url: str, timeout_s: float, waiting: Callable[[], None]) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.waiting = waiting
        self.conn: Any = None

    def __enter__(self) -> ServerLock:
        self.conn = connect(self.url)
        deadline = time.monotonic() + self.timeout_s
        said = False
        while not self.conn.execute("SELECT pg_try_advisory_lock(%s)",
                                    (LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                self.conn.close()
                raise IndexLockedError(
                    f"another `assistant index` is building on {public_url(self.url)} (waited "
                    f"{self.timeout_s:.0f} s); try again when it has finished")
            if not said:
                self.waiting()
                said = True
            time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()  # releases the lock


def signature(content_hash: str, model_sha: str, params: str, chunk_ids: list[int]) -> str:
    """What a document's rows on the server were made from: equal signatures, equal rows."""
    ids = ",".join(str(i) for i in sorted(chunk_ids))
    return hashlib.sha256(f"{content_hash}|{model_sha}|{params}|{ids}".encode()).hexdigest()


def _vector_text(blob: bytes) -> str:
    return "[" + ",".join(repr(float(x)) for x in blob_vector(blob)) + "]"


def publish(url: str, local_generation: Path, local: IndexManifest, ann_threshold: int,
            full: bool, report: Report) -> tuple[IndexManifest | None, int, int]:
    """Bring the server to the local generation. Returns the published manifest (None when
    the server already held it), and how many documents were sent and kept."""
    check = PgConnection(url)
    try:
        has_schema = check_schema(check)
        found = read_current(check, older_ok=True) if has_schema else None
    except IndexIncompatibleError:
        if not full or not _ours_to_replace(check):
            raise
        has_schema, found = False, None
        _drop_schema(url)
    finally:
        check.close()
    conn = connect(url)
    try:
        import psycopg

        try:
            with conn.transaction():
                result = _publish(conn, has_schema, found, local_generation, local, url,
                                  ann_threshold, report)
            if result[0] is not None:
                _tidy(conn)
            return result
        except psycopg.OperationalError as exc:
            raise unreachable(url, exc) from exc
    finally:
        conn.close()


def _tidy(conn: Any) -> None:
    """Statistics and the visibility map for what was just published, before the build says
    it is done: without them the first questions after a large build are planned blind and
    read every posting's heap row, and autovacuum later does the same work while they wait.
    (Pages not changed since the last build are skipped, so an edit costs little.)"""
    for table in ALL_TABLES:
        conn.execute(f"VACUUM (ANALYZE) {S}.{table}")


def _ours_to_replace(db: PgConnection) -> bool:
    """A stale schema of ours may be replaced by `--full`; a foreign one never is."""
    try:
        rows = db.rows(f"SELECT value FROM {S}.info WHERE key = 'owner'", {})
    except Exception:
        return False
    return bool(rows) and rows[0][0] == "briefing-assistant"


def _drop_schema(url: str) -> None:
    conn = connect(url)
    try:
        conn.execute(f"DROP SCHEMA {S} CASCADE")
    finally:
        conn.close()


def _publish(conn: Any, has_schema: bool, found: tuple[IndexManifest, int, int] | None,
             local_generation: Path, local: IndexManifest, url: str, ann_threshold: int,
             report: Report) -> tuple[IndexManifest | None, int, int]:
    dim = local.model.dimension
    if not has_schema:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for statement in create_sql(dim):
            conn.execute(statement)
    else:
        stored = conn.execute(f"SELECT value FROM {S}.info WHERE key = 'dimension'").fetchone()
        if stored is None or int(stored[0]) != dim:
            raise IndexIncompatibleError(
                f"the index on {public_url(url)} holds {stored[0] if stored else '?'}-dimension "
                f"vectors, this model makes {dim}; run `assistant index --server URL --full`")
    current = found[0] if found else None
    g0 = current.generation if current else 0
    generations = [int(r[0]) for r in conn.execute(
        f"SELECT generation FROM {S}.generations ORDER BY generation")]
    g = max([g0, *generations]) + 1
    # Rows no reader of the live generation (g0), the one before it, or one a reader still
    # holds can see any more
    before = max([x for x in generations if x < g0], default=0)
    held = held_generations(conn)
    for table in ALL_TABLES:
        conn.execute(f"DELETE FROM {S}.{table} t WHERE (coalesce(t.dies, {NEVER}) <= %(b)s "
                     "OR t.born > %(g0)s) AND NOT EXISTS (SELECT 1 FROM unnest(%(held)s::int[]) "
                     f"h(g) WHERE t.born <= h.g AND h.g < coalesce(t.dies, {NEVER}))",
                     {"b": before, "g0": g0, "held": held})
    conn.execute(f"DELETE FROM {S}.generations WHERE generation < %s AND "
                 "generation <> ALL(%s::int[])", (before, held))

    db = connect_read(local_generation / META_DB)
    try:
        params = local.chunk_params.model_dump_json()
        model_sha = local.model.weights_sha256
        local_ids: dict[str, list[int]] = {}
        for doc_id, cid in iter_rows(db, "SELECT doc_id, id FROM chunks"):
            local_ids.setdefault(str(doc_id), []).append(int(cid))  # type: ignore[call-overload]
        local_sigs = {d: signature(r.content_hash, model_sha, params, local_ids.get(d, []))
                      for d, r in local.documents.items()}
        server_sigs = {str(d): str(s) for d, s in conn.execute(
            f"SELECT doc_id, signature FROM {S}.documents WHERE born <= %s AND "
            f"coalesce(dies, {NEVER}) > %s", (g0, g0))}
        keep = {d for d, s in local_sigs.items() if server_sigs.get(d) == s}
        leaving = sorted(set(server_sigs) - keep)
        sending = sorted(set(local_sigs) - keep)
        same_model = current is not None and current.model.weights_sha256 == model_sha
        terms_changed = _terms(conn, db, g0, g, same_model)
        if not leaving and not sending and not terms_changed and current is not None and \
                _same(current, local):
            return None, 0, len(keep)
        for table in DOCUMENT_TABLES:
            conn.execute(f"UPDATE {S}.{table} SET dies = %s WHERE doc_id = ANY(%s) AND "
                         f"born <= %s AND dies IS NULL", (g, leaving, g0))
        for i, doc_id in enumerate(sending):
            report("send", i, len(sending))
            _send_document(conn, db, doc_id, g, local_sigs[doc_id])
        report("send", len(sending), len(sending))
        changed = sorted(set(leaving) | set(sending))
        _term_counts(conn, g0, g, changed)
    finally:
        db.close()
    # The new generation's totals: the live one's, plus what arrived, less what left (a
    # count over every row would read the whole of each table on every rebuild)
    before_chunks, before_rows, before_tokens = (
        (current.chunk_count, found[1], found[2]) if current is not None and found else (0, 0, 0))
    chunks_delta, rows_delta, tokens_delta = _deltas(conn, g, changed)
    chunk_count = before_chunks + chunks_delta
    sentence_rows = before_rows + rows_delta
    if chunk_count != local.chunk_count or sentence_rows != local.sentence_count:
        raise IndexCorruptError(f"the server would hold {chunk_count} chunks and {sentence_rows}"
                                f" sentences, the local build {local.chunk_count} and "
                                f"{local.sentence_count}; run `assistant index --server URL "
                                "--full`")
    token_total = before_tokens + tokens_delta
    hnsw = chunk_count > ann_threshold
    if hnsw:
        conn.execute(f"CREATE INDEX IF NOT EXISTS chunks_hnsw ON {S}.chunks USING hnsw "
                     "(embedding vector_ip_ops)")
    else:
        conn.execute(f"DROP INDEX IF EXISTS {S}.chunks_hnsw")
    manifest = local.model_copy(update={
        "generation": g, "files": {},  # the local generation's files: none on the server
        "vectors": VectorIndexInfo(store="postgres", kind="hnsw" if hnsw else "flat",
                                   server_url=public_url(url))})
    conn.execute(f"INSERT INTO {S}.generations (generation, manifest, sentence_rows, "
                 "token_total) VALUES (%s, %s, %s, %s)",
                 (g, manifest.model_dump_json(), sentence_rows, token_total))
    conn.execute(f"INSERT INTO {S}.current (one, generation) VALUES (true, %s) "
                 "ON CONFLICT (one) DO UPDATE SET generation = excluded.generation", (g,))
    return manifest, len(sending), len(keep)


def held_generations(conn: Any) -> list[int]:
    """The generations open readers hold (``PgConnection.hold``: a shared advisory lock
    each, which PostgreSQL drops with the reader's connection, so a reader that died holds
    nothing)."""
    return sorted({int(r[0]) for r in conn.execute(
        "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
        "AND classid = %s::bigint::oid AND database = (SELECT oid FROM pg_database WHERE "
        "datname = current_database())", (READER_KEY,))})


def _same(current: IndexManifest, local: IndexManifest) -> bool:
    """The live generation already is what this build would publish."""
    return (current.documents == local.documents and current.skipped == local.skipped
            and current.chunk_params == local.chunk_params
            and current.model.weights_sha256 == local.model.weights_sha256)


def _deltas(conn: Any, g: int, documents: list[str]) -> tuple[int, int, int]:
    """What generation ``g`` adds to the live one's chunks, sentences and sentence tokens
    (both columns, each sentence counted once: FTS5's column total), from the rows of the
    documents that arrive (born at ``g``) or leave (dying at ``g``)."""
    if not documents:
        return 0, 0, 0
    life = "count(*) FILTER (WHERE born = %(g)s) - count(*) FILTER (WHERE dies = %(g)s)"
    row = conn.execute(
        f"SELECT (SELECT {life} FROM {S}.chunks WHERE doc_id = ANY(%(d)s)), "
        f"(SELECT {life} FROM {S}.sentences WHERE doc_id = ANY(%(d)s)), "
        "(SELECT coalesce(sum(CASE WHEN born = %(g)s THEN tokens ELSE -tokens END), 0) FROM "
        f"(SELECT DISTINCT ON (sentence_id, born) born, tokens FROM {S}.postings "
        "WHERE doc_id = ANY(%(d)s) AND (born = %(g)s OR dies = %(g)s) "
        "ORDER BY sentence_id, born) t)", {"g": g, "d": documents}).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def _terms(conn: Any, db: sqlite3.Connection, g0: int, g: int, same_model: bool) -> bool:
    """Bring the word vectors to the local ones; whether any changed."""
    server = {str(r[0]) for r in conn.execute(
        f"SELECT term FROM {S}.term_vectors WHERE born <= %s AND coalesce(dies, {NEVER}) > %s",
        (g0, g0))} if same_model else set()
    local = {str(r[0]) for r in db.execute("SELECT term FROM term_vectors")}
    leaving = sorted(server - local) if same_model else None
    adding = sorted(local - server)
    if leaving is None:
        conn.execute(f"UPDATE {S}.term_vectors SET dies = %s WHERE dies IS NULL AND born <= %s",
                     (g, g0))
    elif leaving:
        conn.execute(f"UPDATE {S}.term_vectors SET dies = %s WHERE term = ANY(%s) AND "
                     "dies IS NULL AND born <= %s", (g, leaving, g0))
    if adding:
        wanted = set(adding)
        with conn.cursor().copy(f"COPY {S}.term_vectors (term, born, vector) FROM STDIN") as cp:
            for term, blob in iter_rows(db, "SELECT term, vector FROM term_vectors"):
                if term in wanted:
                    cp.write_row((term, g, blob))
    return bool(adding) or leaving is None or bool(leaving)


def _term_counts(conn: Any, g0: int, g: int, documents: list[str]) -> None:
    """Bring ``term_df`` to generation ``g``: each term of a leaving or arriving document
    gets its new sentence count (the live count, plus the postings born at ``g``, less those
    dying at ``g``), as a row born at ``g``; the row it replaces dies at ``g``."""
    if not documents:
        return
    conn.execute(
        f"WITH delta AS (SELECT term, sum(CASE WHEN born = %(g)s THEN 1 ELSE -1 END) AS d "
        f"FROM {S}.postings WHERE doc_id = ANY(%(docs)s) AND (born = %(g)s OR dies = %(g)s) "
        "GROUP BY term HAVING sum(CASE WHEN born = %(g)s THEN 1 ELSE -1 END) <> 0), "
        f"ended AS (UPDATE {S}.term_df t SET dies = %(g)s FROM delta WHERE t.term = delta.term "
        "AND t.born <= %(g0)s AND t.dies IS NULL RETURNING t.term, t.sentences) "
        f"INSERT INTO {S}.term_df (term, born, sentences) SELECT delta.term, %(g)s, "
        "coalesce(ended.sentences, 0) + delta.d FROM delta LEFT JOIN ended USING (term) "
        "WHERE coalesce(ended.sentences, 0) + delta.d > 0",
        {"g": g, "g0": g0, "docs": documents})


def _rows(db: sqlite3.Connection, sql: str, doc_id: str) -> Iterator[tuple[Any, ...]]:
    return iter_rows(db, sql, (doc_id,))


def _send_document(conn: Any, db: sqlite3.Connection, doc_id: str, g: int, sig: str) -> None:
    cur = conn.cursor()
    for row in _rows(db, "SELECT doc_id, title, format, content_hash, size, mtime_ns, text, "
                         "sections, units, locations FROM documents WHERE doc_id = ?", doc_id):
        cur.execute(f"INSERT INTO {S}.documents (doc_id, born, title, format, content_hash, "
                    "size, mtime_ns, text, sections, units, locations, signature) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (row[0], g, *row[1:], sig))
    with cur.copy(f"COPY {S}.chunks (id, born, doc_id, ordinal, section, start, \"end\", "
                  "first_owned, vector, embedding) FROM STDIN") as cp:
        for cid, d, ordinal, section, start, end, owned, blob in _rows(
                db, "SELECT id, doc_id, ordinal, section, start, end, first_owned, vector "
                    "FROM chunks WHERE doc_id = ? ORDER BY id", doc_id):
            cp.write_row((cid, g, d, ordinal, section, start, end, owned, bytes(blob),
                          _vector_text(bytes(blob))))
    sentences = list(_rows(
        db, "SELECT s.id, s.chunk_id, s.doc_id, s.start, s.end, s.vector, f.body, f.context "
            "FROM sentences s JOIN sentence_fts f ON f.rowid = s.id WHERE s.doc_id = ? "
            "ORDER BY s.id", doc_id))
    with cur.copy(f"COPY {S}.sentences (id, born, chunk_id, doc_id, start, \"end\", vector, "
                  "body) FROM STDIN") as cp:
        for sid, cid, d, start, end, blob, body, _ in sentences:
            cp.write_row((sid, g, cid, d, start, end, bytes(blob), body))
    tokenizer = Tokenizer()
    try:
        postings = tokenizer.postings((int(s[0]), str(s[6]), str(s[7])) for s in sentences)
    finally:
        tokenizer.close()
    with cur.copy(f"COPY {S}.postings (term, sentence_id, born, doc_id, body_tf, context_tf, "
                  "tokens) FROM STDIN") as cp:
        for term, sid, body_tf, context_tf, tokens in postings:
            cp.write_row((term, sid, g, doc_id, body_tf, context_tf, tokens))


