"""Reading one generation from the server: ``PgMeta`` (the ``MetaSource`` the answer stages
read through) and ``PgVectors`` (pgvector search: exact, or HNSW above ``ann_threshold``).

Every statement names the generation it reads, so a reader sees one generation whatever a
build does meanwhile (a build only adds rows, marks rows as leaving, and deletes rows no
generation since the previous one can see). The connection is in autocommit mode: a
reader never holds a transaction open between questions, and holds its generation (a shared
advisory lock) so that builds keep that generation's rows. A lost connection is retried
for a while, a statement that takes too long is stopped (``PgConnection``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from assistant.errors import AssistantError, IndexCorruptError, IndexMissingError, ServerError
from assistant.index.meta import (
    BATCH_PARAMS,
    SentenceRow,
    Span,
    Vector,
    blob_vector,
    map_from_json,
    read_through,
)
from assistant.index.postgres.connection import (
    Patience,
    connect_raw,
    no_answer,
    public_url,
    refused,
    unreachable,
)
from assistant.index.postgres.lexical import (
    PackedPostings,
    Posting,
    Tokenizer,
    bm25,
    idf,
)
from assistant.index.postgres.schema import READER_KEY, SCHEMA, visible
from assistant.models import Location, Section, Unit

S = SCHEMA


SHORTLIST_MARGIN = 50
"""Sentences the numpy shortlist keeps beyond twice the lexical limit, so that its order of
floating-point additions (not FTS5's) can never move a sentence across the exact cut."""


def _parts(items: Sequence[Any]) -> list[list[Any]]:
    return [list(items[i:i + BATCH_PARAMS]) for i in range(0, len(items), BATCH_PARAMS)]


class PgConnection:
    """One connection, re-made when the server drops it; every query passes through ``rows``.

    A lost connection (a server restarting, a network blip) is retried with growing pauses
    for ``patience.retry_s``; after that the question fails with one line, and so do later
    ones at once, but for a fresh attempt every ``PROBE_EVERY_S`` (a server back up answers
    again). A statement the server does not finish within ``patience.timeout_s`` fails with
    its own error: the server cancels it (``statement_timeout``), and a server too frozen to
    do even that has the connection cut under it by a watchdog a little later.

    ``hold(generation)``: this connection holds a shared advisory lock on that generation
    for as long as it lives (taken again after a reconnection), so that a build leaves the
    generation's rows in place while a reader answers from it (``publish.held_generations``).
    """

    PROBE_EVERY_S = 3.0
    FIRST_PAUSE_S = 0.1
    LONGEST_PAUSE_S = 2.0
    GRACE_S = 2.0
    """The watchdog cuts a connection this long after ``statement_timeout`` should have."""

    def __init__(self, url: str, patience: Patience | None = None) -> None:
        self.url = url
        self.patience = patience or Patience()
        self.settings: list[str] = [
            f"SET statement_timeout = {int(self.patience.timeout_s * 1000)}"]
        """Statements run on every new connection (``SET hnsw.ef_search``)."""
        self.held: int | None = None
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_try = 0.0
        self._fresh = True
        import psycopg

        try:  # opening is not retried: a server down at the start is said at once
            self._conn: Any = self._connect()
        except psycopg.OperationalError as exc:
            raise unreachable(url, exc) from exc

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = connect_raw(self.url, patience=self.patience)
        except psycopg.OperationalError as exc:
            if refused(exc):
                raise unreachable(self.url, exc) from exc
            raise
        self._fresh = True
        return conn

    def _first_statements(self) -> None:
        for setting in self.settings:
            self._conn.execute(setting)
        if self.held is not None:
            row = self._conn.execute(
                "SELECT pg_advisory_lock_shared(%(k)s, %(g)s), EXISTS (SELECT 1 FROM "
                f"{S}.generations WHERE generation = %(g)s)",
                {"k": READER_KEY, "g": self.held}).fetchone()
            if not row[1]:
                raise IndexMissingError(
                    f"the index on {public_url(self.url)} was rebuilt while this session was "
                    f"cut off from it, and its generation {self.held} is gone; open it again")
        self._fresh = False

    def hold(self, generation: int) -> bool:
        """Hold ``generation`` (see the class); False when it is gone already."""
        with self._lock:
            self.held = generation
            self._fresh = True
        try:
            self.rows("SELECT 1", {})
        except IndexMissingError:
            self.held = None
            self._drop()
            return False
        return True

    def rows(self, sql: str, params: dict[str, Any], fetch: bool = True, binary: bool = False
             ) -> list[tuple[Any, ...]]:
        import psycopg

        with self._lock:
            now = time.monotonic()
            if self._down_since is not None and now - self._last_try < self.PROBE_EVERY_S:
                raise ServerError(f"cannot reach the index server {public_url(self.url)} (no "
                                  f"answer for {now - self._down_since:.0f} s); check that it "
                                  "is running, then try again")
            deadline = now + (0.0 if self._down_since is not None else self.patience.retry_s)
            pause = self.FIRST_PAUSE_S
            while True:
                self._last_try = time.monotonic()
                try:
                    result = self._run(sql, params, fetch, binary)
                    self._down_since = None
                    return result
                except _TimedOut as exc:
                    self._drop()  # down since the statement began: later ones fail at once
                    raise no_answer(self.url, self.patience) from exc.__cause__
                except psycopg.errors.QueryCanceled as exc:
                    raise no_answer(self.url, self.patience) from exc
                except psycopg.OperationalError as exc:
                    self._drop()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        if self._down_since is None:
                            self._down_since = self._last_try
                        raise unreachable(self.url, exc) from exc
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, self.LONGEST_PAUSE_S)
                except AssistantError:
                    raise
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise ServerError(
                        f"the index server {public_url(self.url)} does not let this user read "
                        f"the index ({' '.join(str(exc).split())[:160]}); grant it USAGE on "
                        "schema briefing_assistant and SELECT on its tables") from exc
                except psycopg.Error as exc:
                    raise IndexCorruptError(
                        f"the index on the server is damaged ({' '.join(str(exc).split())[:160]});"
                        " run `assistant index --server URL --full`") from exc

    def _run(self, sql: str, params: dict[str, Any], fetch: bool, binary: bool
             ) -> list[tuple[Any, ...]]:
        """One statement, under the watchdog."""
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        conn = self._conn
        watch = WATCHDOG.arm(conn, self.patience.timeout_s + self.GRACE_S)
        try:
            if self._fresh:
                self._first_statements()
            cur = conn.execute(sql, params, binary=binary)
            return list(cur.fetchall()) if fetch else []
        except Exception as exc:
            if watch.is_set():
                self._down_since = time.monotonic()
                raise _TimedOut() from exc
            raise
        finally:
            WATCHDOG.disarm(watch)

    def on_connect(self, statement: str) -> None:
        """Run ``statement`` now and on every new connection."""
        self.settings.append(statement)
        self._fresh = True

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:
            pass
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()


class _TimedOut(Exception):
    """The watchdog cut the connection under a statement the server did not finish."""


class _Watchdog:
    """One thread for every connection of the process: cuts the connection of a statement
    still running at its deadline (a thread a statement would cost more than the statement
    on a fast server)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[threading.Event, tuple[float, Any]] = {}
        self._thread: threading.Thread | None = None

    def arm(self, conn: Any, seconds: float) -> threading.Event:
        """Watch ``conn`` for ``seconds``; the event is set if it was cut."""
        fired = threading.Event()
        with self._cond:
            self._armed[fired] = (time.monotonic() + seconds, conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pg-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return fired

    def disarm(self, fired: threading.Event) -> None:
        with self._cond:
            self._armed.pop(fired, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for fired, (deadline, conn) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[fired]
                        fired.set()
                        _cut(conn)
                soonest = min((d for d, _ in self._armed.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - now))


WATCHDOG = _Watchdog()


def _cut(conn: Any) -> None:
    """Shut the connection's socket down, so that a read blocked on a server that no longer
    answers at all (stopped with SIGSTOP, a dead network path) returns at once."""
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, ValueError):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class PgMeta:
    """Every read of one server generation (the same surface as ``MetaReader``)."""

    def __init__(self, db: PgConnection, generation: int, sentence_rows: int,
                 token_total: int) -> None:
        self.db = db
        self.generation = generation
        self.sentence_rows = sentence_rows
        self.token_total = token_total
        self._tokenizer: Tokenizer | None = None
        self._hits: dict[str, int] = {}  # sentences holding each term (a generation is fixed)

    TERM_CACHE = 50_000
    """Terms whose sentence counts are kept between questions."""

    def _rows(self, sql: str, binary: bool = False, **params: Any) -> list[tuple[Any, ...]]:
        return self.db.rows(sql, {"g": self.generation, **params}, binary=binary)

    def check(self, chunk_count: int) -> None:
        n = self._rows(f"SELECT count(*) FROM {S}.chunks c WHERE {visible('c')}")[0][0]
        if int(n) != chunk_count:
            raise IndexCorruptError(f"the server's generation {self.generation} holds {n} "
                                    f"chunks, its manifest says {chunk_count}; run "
                                    "`assistant index --server URL --full`")

    # --- term statistics ------------------------------------------------------------------

    def document_frequencies(self, words: Sequence[str]) -> dict[str, int]:
        """Sentences holding each word, for the words that occur. Kept between questions
        (a generation is fixed), and shared by the IDF of the answer stages and the
        lexical search, which ask for the same words."""
        counts = read_through(self._hits, sorted(set(words)), self.TERM_CACHE,
                              self._term_df, 0)
        return {w: n for w, n in counts.items() if n}

    def _term_df(self, words: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for part in _parts(list(words)):
            out.update((str(t), int(n)) for t, n in self._rows(
                f"SELECT t.term, t.sentences FROM {S}.term_df t WHERE t.term = ANY(%(w)s) "
                f"AND {visible('t')}", w=part))
        return out

    def word_vectors(self, words: Sequence[str]) -> dict[str, Vector]:
        found: dict[str, Vector] = {}
        for part in _parts(list(words)):
            for term, blob in self._rows(
                    f"SELECT t.term, t.vector FROM {S}.term_vectors t WHERE t.term = ANY(%(w)s) "
                    f"AND {visible('t')}", w=part):
                found[str(term)] = blob_vector(bytes(blob))
        return found

    # --- candidates -----------------------------------------------------------------------

    def lexical(self, forms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """FTS5's BM25 over the stored term statistics (``lexical``): the local index's
        scores. A form FTS5 would split into several tokens (none of the question's words,
        which are runs of letters and digits) is searched by its first token."""
        if not forms:
            return []
        if self._tokenizer is None:
            self._tokenizer = Tokenizer()
        terms = [toks[0] if toks else "" for toks in map(self._tokenizer.tokens, forms)]
        wanted = sorted({t for t in terms if t})
        counts = self.document_frequencies(wanted)
        hits = [counts.get(t, 0) for t in terms]
        if not any(hits):
            return []
        # Each term's postings come as one packed bytea (20 bytes a posting, built by the
        # server from the covering primary key alone); numpy ranks the sentences by the same
        # formula and keeps a shortlist, on which the exact scores (FTS5's order of
        # additions) and the cut are made. PostgreSQL's own GROUP BY over the postings of a
        # common word cost 2-3 times as much at 100,000 chunks.
        rows, total = self.sentence_rows, self.token_total
        packed = self._rows(
            "SELECT q.ord, string_agg(int8send(p.sentence_id) || int4send(p.body_tf) || "
            "int4send(p.context_tf) || int4send(p.tokens), ''::bytea) FROM "
            f"{S}.postings p JOIN unnest(%(t)s::text[]) WITH ORDINALITY AS q(term, ord) "
            f"ON p.term = q.term WHERE {visible('p')} GROUP BY q.ord", binary=True, t=terms)
        found = PackedPostings.join((int(i) - 1, bytes(blob)) for i, blob in packed)
        weights = [idf(rows, n) for n in hits]
        keep = found.shortlist(weights, rows, total, 2 * limit + SHORTLIST_MARGIN)
        phrases: list[list[Posting]] = [[] for _ in terms]
        for i, posting in keep:
            phrases[i].append(posting)
        return bm25(phrases, rows, total, limit, hits=hits)

    def _sentence_sql(self, where: str, order: str) -> str:
        return (f"SELECT s.id, s.chunk_id, s.doc_id, s.start, s.\"end\", s.vector, c.section, "
                f"d.title, s.body FROM {S}.sentences s "
                f"JOIN {S}.chunks c ON c.id = s.chunk_id AND {visible('c')} "
                f"JOIN {S}.documents d ON d.doc_id = s.doc_id AND {visible('d')} "
                f"WHERE {visible('s')} AND {where} ORDER BY {order}")

    @staticmethod
    def _row(r: tuple[Any, ...]) -> SentenceRow:
        return SentenceRow(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), bytes(r[5]),
                           str(r[6]), str(r[7]), str(r[8]))

    def sentences(self, chunk_ids: Sequence[int], sentence_ids: Sequence[int]
                  ) -> list[SentenceRow]:
        """In the local index's order (SQLite walks an IN list sorted, each part of it)."""
        if len(chunk_ids) <= BATCH_PARAMS and len(sentence_ids) <= BATCH_PARAMS:
            # one round trip: the chunks' sentences (by chunk, then id), then the others by id
            wanted = set(chunk_ids)
            found = [self._row(r) for r in self._rows(self._sentence_sql(
                "(s.chunk_id = ANY(%(c)s) OR s.id = ANY(%(s)s))", "s.id"),
                c=list(chunk_ids), s=list(sentence_ids))]
            return sorted(found, key=lambda r: (r.chunk_id not in wanted,
                                                r.chunk_id if r.chunk_id in wanted else 0,
                                                r.sentence_id))
        rows: dict[int, SentenceRow] = {}
        for part in _parts(list(chunk_ids)):
            for r in self._rows(self._sentence_sql("s.chunk_id = ANY(%(ids)s)",
                                                   "s.chunk_id, s.id"), ids=part):
                rows[int(r[0])] = self._row(r)
        missing = [s for s in sentence_ids if s not in rows]
        for part in _parts(missing):
            for r in self._rows(self._sentence_sql("s.id = ANY(%(ids)s)", "s.id"), ids=part):
                rows[int(r[0])] = self._row(r)
        return list(rows.values())

    def chunk_vectors(self, chunk_ids: Iterable[int]) -> dict[int, Vector]:
        out: dict[int, Vector] = {}
        for part in _parts(list(chunk_ids)):
            for cid, blob in self._rows(
                    f"SELECT c.id, c.vector FROM {S}.chunks c WHERE c.id = ANY(%(ids)s) "
                    f"AND {visible('c')}", ids=part):
                out[int(cid)] = blob_vector(bytes(blob))
        return out

    def adjacent_ids(self, sentence_ids: Sequence[int]
                     ) -> dict[int, tuple[int | None, int | None]]:
        out: dict[int, tuple[int | None, int | None]] = {}
        for part in _parts(list(sentence_ids)):
            for sid, pid, nid in self._rows(
                    f"SELECT s.id, (SELECT p.id FROM {S}.sentences p WHERE p.doc_id = s.doc_id "
                    f"AND p.start < s.start AND {visible('p')} ORDER BY p.start DESC LIMIT 1), "
                    f"(SELECT n.id FROM {S}.sentences n WHERE n.doc_id = s.doc_id AND "
                    f"n.start > s.start AND {visible('n')} ORDER BY n.start LIMIT 1) "
                    f"FROM {S}.sentences s WHERE s.id = ANY(%(ids)s) AND {visible('s')}",
                    ids=part):
                out[int(sid)] = (None if pid is None else int(pid),
                                 None if nid is None else int(nid))
        return out

    def sections_and_bodies(self, sentence_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        for part in _parts(list(sentence_ids)):
            for sid, section, body in self._rows(
                    f"SELECT s.id, c.section, s.body FROM {S}.sentences s JOIN {S}.chunks c "
                    f"ON c.id = s.chunk_id AND {visible('c')} WHERE s.id = ANY(%(ids)s) "
                    f"AND {visible('s')}", ids=part):
                out[int(sid)] = (str(section), str(body))
        return out

    # --- documents ------------------------------------------------------------------------

    def neighbours(self, doc_id: str, start: int, end: int) -> tuple[Span | None, Span | None]:
        prev = self._rows(
            f"SELECT s.start, s.\"end\", s.body FROM {S}.sentences s WHERE s.doc_id = %(d)s "
            f"AND s.start < %(x)s AND {visible('s')} ORDER BY s.start DESC LIMIT 1",
            d=doc_id, x=start)
        nxt = self._rows(
            f"SELECT s.start, s.\"end\", s.body FROM {S}.sentences s WHERE s.doc_id = %(d)s "
            f"AND s.start >= %(x)s AND {visible('s')} ORDER BY s.start LIMIT 1",
            d=doc_id, x=end)
        return (_span(prev), _span(nxt))

    def _document(self, column: str, doc_id: str) -> Any:
        rows = self._rows(f"SELECT {column} FROM {S}.documents d WHERE d.doc_id = %(d)s "
                          f"AND {visible('d')}", d=doc_id)
        return rows[0][0] if rows else None

    def document_slice(self, doc_id: str, start: int, end: int) -> str:
        # substr counts characters (code points), as Python's slicing does
        found = self._document(f"substr(d.text, {int(start) + 1}, {max(0, int(end - start))})",
                               doc_id)
        return str(found) if found is not None else ""

    def document_text(self, doc_id: str) -> str:
        found = self._document("d.text", doc_id)
        if found is None:
            raise IndexCorruptError(f"document {doc_id} is missing from the index")
        return str(found)

    def document_sections(self, doc_id: str) -> list[Section]:
        found = self._document("d.sections", doc_id)
        return [Section.model_validate(s) for s in json.loads(found)] if found else []

    def document_map(self, doc_id: str) -> tuple[list[Unit], list[Location]]:
        """A document's units and the map of its text to the source's lines, as the local
        index keeps them (``assistant.locations``)."""
        rows = self._rows(f"SELECT d.units, d.locations FROM {S}.documents d WHERE "
                          f"d.doc_id = %(d)s AND {visible('d')}", d=doc_id)
        return map_from_json(str(rows[0][0]), str(rows[0][1])) if rows else ([], [(0, 1, 0)])

    def documents(self) -> list[tuple[str, str, str]]:
        return [(str(d), str(t), str(x)) for d, t, x in self._rows(
            f"SELECT d.doc_id, d.title, d.text FROM {S}.documents d WHERE {visible('d')}")]

    def sentence_spans(self, doc_id: str) -> list[tuple[int, int]]:
        return [(int(s), int(e)) for s, e in self._rows(
            f"SELECT s.start, s.\"end\" FROM {S}.sentences s WHERE s.doc_id = %(d)s AND "
            f"{visible('s')} ORDER BY s.start", d=doc_id)]

    def close(self) -> None:
        if self._tokenizer is not None:
            self._tokenizer.close()
        self.db.close()


def _span(rows: list[tuple[Any, ...]]) -> Span | None:
    if not rows:
        return None
    r = rows[0]
    return int(r[0]), int(r[1]), str(r[2])


class PgVectors:
    """Nearest chunks of one generation by pgvector's inner product (vectors are normalised:
    cosine). Exact below the build's ``ann_threshold``; above it the HNSW index answers,
    asked for enough candidates that the generation filter leaves ``k``."""

    def __init__(self, db: PgConnection, generation: int, count: int, hnsw: bool) -> None:
        self.db = db
        self.generation = generation
        self._count = count
        if hnsw:  # the generation filter runs after the graph search: ask it for more
            db.on_connect("SET hnsw.ef_search = 200")

    @property
    def count(self) -> int:
        return self._count

    def search(self, query: Vector, k: int) -> list[tuple[int, float]]:
        if self._count == 0:
            return []
        q = "[" + ",".join(repr(float(x)) for x in np.asarray(query, np.float32).ravel()) + "]"
        sql = (f"SELECT c.id, -(c.embedding <#> %(q)s::vector) FROM {S}.chunks c "
               f"WHERE {visible('c')} AND EXISTS (SELECT 1 FROM {S}.generations "
               "WHERE generation = %(g)s) ORDER BY c.embedding <#> %(q)s::vector LIMIT %(k)s")
        rows = self.db.rows(sql, {"g": self.generation, "q": q, "k": min(k, self._count)})
        if not rows and not self.db.rows(f"SELECT 1 FROM {S}.generations WHERE generation = "
                                         "%(g)s", {"g": self.generation}):
            raise IndexMissingError(
                f"the index on {public_url(self.db.url)} was rebuilt three times since this "
                f"session opened it, and its generation {self.generation} is gone; open it again")
        return [(int(cid), float(score)) for cid, score in rows]

    def close(self) -> None:
        self.db.close()


Opener = Callable[[], PgMeta]
