"""The server's lexical shortlist (numpy over packed postings) against the exact BM25 of every
posting: the sentences it keeps must hold the exact top ones, ties broken by sentence id."""

from __future__ import annotations

import random

import numpy as np
import pytest

from assistant.errors import IndexCorruptError
from assistant.index.postgres.lexical import PACKED, PackedPostings, Posting, bm25, idf


def pack(postings: list[Posting]) -> bytes:
    rows = np.array([(p.sentence_id, p.body_tf, p.context_tf, p.tokens) for p in postings],
                    dtype=PACKED)
    return rows.tobytes()


def corpus(seed: int, sentences: int, phrases: int) -> list[list[Posting]]:
    """Postings of ``phrases`` terms over sentences of a few lengths, many of them alike
    (equal scores, so the tie-break by id decides the cut)."""
    rng = random.Random(seed)
    out: list[list[Posting]] = [[] for _ in range(phrases)]
    for sid in range(1, sentences + 1):
        tokens = rng.choice([8, 12, 12, 20, 31])
        for i in range(phrases):
            if rng.random() < 0.3 / (i + 1):
                out[i].append(Posting(sid, rng.choice([1, 1, 1, 2]), rng.choice([0, 0, 1]),
                                      tokens))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("limit", [1, 5, 40])
def test_the_shortlist_holds_the_exact_top_sentences(seed: int, limit: int) -> None:
    rows, total = 5_000, 5_000 * 16
    phrases = corpus(seed, rows, 4)
    hits = [len(p) for p in phrases]
    exact = bm25(phrases, rows, total, limit, hits=hits)
    found = PackedPostings.join((i, pack(p)) for i, p in enumerate(phrases))
    # no margin: the shortlist alone must already give the exact cut
    keep = found.shortlist([idf(rows, n) for n in hits], rows, total, limit)
    short: list[list[Posting]] = [[] for _ in phrases]
    for i, posting in keep:
        short[i].append(posting)
    assert {p.sentence_id for _, p in keep} == {sid for sid, _ in exact}
    assert bm25(short, rows, total, limit, hits=hits) == pytest.approx(exact, rel=1e-12)


def test_a_sentence_keeps_all_its_phrases_postings() -> None:
    a = [Posting(7, 1, 0, 10), Posting(9, 1, 0, 10)]
    b = [Posting(7, 2, 1, 10)]
    found = PackedPostings.join([(0, pack(a)), (1, pack(b))])
    keep = found.shortlist([2.0, 3.0], 100, 1000, 1)
    assert sorted(keep, key=lambda x: x[0]) == [(0, a[0]), (1, b[0])]


def test_no_postings_and_a_truncated_blob() -> None:
    assert PackedPostings.join([]).shortlist([1.0], 10, 100, 5) == []
    with pytest.raises(IndexCorruptError):
        PackedPostings.join([(0, pack([Posting(1, 1, 0, 3)])[:-1])])
