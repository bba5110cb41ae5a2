"""BM25 as SQLite's FTS5 computes it, from stored term statistics: the server's lexical search.

The local index ranks sentences with FTS5's ``bm25(sentence_fts, 1.0, 0.2)``; the server holds
each sentence's term frequencies per column and its length in tokens (written at publish
time from the very tokenizer FTS5 uses), and this module applies FTS5's formula to them, in
FTS5's order of operations, so both give the same scores and the same answers:

    score = Σ_phrase idf · f·(k1+1) / (f + k1·(1 − b + b·|D|/avgdl)),   k1 = 1.2, b = 0.75
    idf   = ln((N − n + 0.5) / (n + 0.5)), at least 1e-6
    f     = body hits · 1.0 + context hits · 0.2 (added one hit at a time, as FTS5 does)

(``fts5_aux.c``: ``fts5Bm25Function``; |D| counts the tokens of both columns, avgdl is the
table's tokens over its rows.) Text is split by an in-memory FTS5 table with the same
tokenizer, never by a second implementation of it.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assistant.errors import IndexCorruptError

TOKENIZER = "unicode61 remove_diacritics 2"
"""The local index's FTS5 tokenizer (``assistant.index.sqlite.schema.SCHEMA_SQL``)."""

K1 = 1.2
B = 0.75
BODY_WEIGHT = 1.0
CONTEXT_WEIGHT = 0.2


@dataclass(frozen=True)
class Posting:
    """One term in one sentence: its hits in the body and context columns, and the
    sentence's length in tokens (both columns)."""

    sentence_id: int
    body_tf: int
    context_tf: int
    tokens: int


PACKED = np.dtype([("sentence_id", ">i8"), ("body_tf", ">i4"), ("context_tf", ">i4"),
                   ("tokens", ">i4")])
"""One posting as the server packs it (``int8send(sentence_id) || int4send(body_tf) || …``:
network byte order, 20 bytes)."""


@dataclass(frozen=True)
class PackedPostings:
    """The postings of several phrases in columns: phrase index, sentence, hits, length."""

    phrase: npt.NDArray[np.int64]
    sentence_id: npt.NDArray[np.int64]
    body_tf: npt.NDArray[np.int64]
    context_tf: npt.NDArray[np.int64]
    tokens: npt.NDArray[np.int64]

    @classmethod
    def join(cls, parts: Iterable[tuple[int, bytes]]) -> PackedPostings:
        """From (phrase index, packed postings) pairs."""
        cols: list[npt.NDArray[np.void]] = []
        which: list[npt.NDArray[np.int64]] = []
        for i, blob in parts:
            if len(blob) % PACKED.itemsize:
                raise IndexCorruptError(f"the server sent {len(blob)} bytes of postings, not a "
                                        f"multiple of {PACKED.itemsize}")
            rows = np.frombuffer(blob, dtype=PACKED)
            cols.append(rows)
            which.append(np.full(len(rows), i, dtype=np.int64))
        rows = np.concatenate(cols) if cols else np.zeros(0, dtype=PACKED)
        return cls(np.concatenate(which) if which else np.zeros(0, dtype=np.int64),
                   rows["sentence_id"].astype(np.int64), rows["body_tf"].astype(np.int64),
                   rows["context_tf"].astype(np.int64), rows["tokens"].astype(np.int64))

    def shortlist(self, idfs: Sequence[float], rows: int, tokens_total: int, n: int
                  ) -> list[tuple[int, Posting]]:
        """The postings of the ``n`` sentences with the best BM25 (ties by sentence id), as
        (phrase index, posting): the same formula as ``bm25``, summed in another order, so
        the caller keeps a margin beyond the sentences it needs and scores those exactly."""
        if not len(self.sentence_id):
            return []
        avgdl = float(tokens_total) / float(rows) if rows else 1.0
        f = self.body_tf * BODY_WEIGHT + self.context_tf * CONTEXT_WEIGHT
        norm = K1 * (1 - B + B * self.tokens / avgdl)
        score = np.asarray(idfs, dtype=np.float64)[self.phrase] * (f * (K1 + 1.0)) / (f + norm)
        ids, where = np.unique(self.sentence_id, return_inverse=True)
        totals = np.bincount(where, weights=score)
        pick = np.arange(len(ids))
        if len(ids) > n:  # every sentence scoring at least the n-th best (ties kept), in order
            nth = np.partition(-totals, n - 1)[n - 1]
            pick = np.nonzero(-totals <= nth)[0]
        best = pick[np.lexsort((ids[pick], -totals[pick]))][:n]
        chosen = np.zeros(len(ids), dtype=bool)
        chosen[best] = True
        return [(int(self.phrase[j]), Posting(int(self.sentence_id[j]), int(self.body_tf[j]),
                                              int(self.context_tf[j]), int(self.tokens[j])))
                for j in np.nonzero(chosen[where])[0]]


class Tokenizer:
    """FTS5's own tokenizer, run on an in-memory table (thread-safe)."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, context, "
                           f"tokenize = '{TOKENIZER}')")
        self._conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, ...]] = {}

    def tokens(self, text: str) -> tuple[str, ...]:
        """The tokens FTS5 makes of a text (a query phrase), in order."""
        found = self._cache.get(text)
        if found is not None:
            return found
        with self._lock:
            self._conn.execute("INSERT INTO t(rowid, body, context) VALUES (1, ?, '')", (text,))
            found = tuple(str(r[0]) for r in self._conn.execute(
                "SELECT term FROM v ORDER BY \"offset\""))
            self._conn.execute("DELETE FROM t")
        if len(self._cache) < 100_000:
            self._cache[text] = found
        return found

    def postings(self, rows: Iterable[tuple[int, str, str]]
                 ) -> list[tuple[str, int, int, int, int]]:
        """(term, sentence id, body hits, context hits, sentence tokens) for sentences given
        as (id, body, context): what the server stores for its lexical search."""
        with self._lock:
            self._conn.execute("DELETE FROM t")
            self._conn.executemany("INSERT INTO t(rowid, body, context) VALUES (?, ?, ?)", rows)
            sizes = {int(d): int(n) for d, n in self._conn.execute(
                "SELECT doc, count(*) FROM v GROUP BY doc")}
            counts: dict[tuple[str, int], list[int]] = {}
            for term, doc, col, n in self._conn.execute(
                    "SELECT term, doc, col, count(*) FROM v GROUP BY term, doc, col"):
                tf = counts.setdefault((str(term), int(doc)), [0, 0])
                tf[0 if col == "body" else 1] += int(n)
            self._conn.execute("DELETE FROM t")
        return [(t, d, tf[0], tf[1], sizes[d]) for (t, d), tf in counts.items()]

    def close(self) -> None:
        self._conn.close()


def idf(rows: int, hits: int) -> float:
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return value if value > 0.0 else 1e-6


def bm25(phrases: Sequence[Sequence[Posting]], rows: int, tokens_total: int, limit: int,
         hits: Sequence[int] | None = None) -> list[tuple[int, float]]:
    """The best ``limit`` sentences for an OR of single-token phrases (each given as its
    postings), with FTS5's scores negated (higher is better), ties by sentence id.

    ``hits`` gives each phrase's number of sentences when ``phrases`` holds only some of its
    postings (the server's shortlist); by default it is their count."""
    avgdl = float(tokens_total) / float(rows) if rows else 1.0
    idfs = [idf(rows, n) for n in (hits if hits is not None else [len(p) for p in phrases])]
    # (sentence id) -> weighted frequency of each phrase, and the sentence's length
    freq: dict[int, list[float]] = {}
    length: dict[int, int] = {}
    for i, postings in enumerate(phrases):
        for p in postings:
            f = freq.get(p.sentence_id)
            if f is None:
                f = freq[p.sentence_id] = [0.0] * len(phrases)
                length[p.sentence_id] = p.tokens
            # FTS5 adds a hit's column weight once per hit, body (column 0) hits first
            for _ in range(p.body_tf):
                f[i] += BODY_WEIGHT
            for _ in range(p.context_tf):
                f[i] += CONTEXT_WEIGHT
    scored: list[tuple[float, int]] = []
    for sid, f in freq.items():
        d = float(length[sid])
        score = 0.0
        for i in range(len(phrases)):
            score += idfs[i] * ((f[i] * (K1 + 1.0)) / (f[i] + K1 * (1 - B + B * d / avgdl)))
        scored.append((-1.0 * score, sid))
    scored.sort()
    return [(sid, -s) for s, sid in scored[:limit]]
