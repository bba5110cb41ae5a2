"""Tokenisation: the terms the answer stages match must be the terms the index holds."""

from __future__ import annotations

import sqlite3

import pytest

from assistant import text as tx

# Latin script with diacritics, as the corpora here hold. Not covered, and known to differ:
# compatibility characters (PDF ligatures "ﬁ", fullwidth letters), which FTS5 keeps as they
# are, and accents outside Latin script, which it keeps too (it also folds Greek final sigma).
SAMPLES = [
    "Café naïve Ångström façade — “H200” sales in Zürich; São Paulo, Kraków, Øresund",
    "ŞİRKET çiçek, Dvořák's Škoda in Łódź; Æther and œuvre, Ðà Nẵng",
    "plain ASCII words, 25% and H20 vs H200s",
]


def _fts5_terms(text: str) -> set[str]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    db.execute("INSERT INTO t(body) VALUES (?)", (text,))
    return {row[0] for row in db.execute("SELECT term FROM v")}


@pytest.mark.parametrize("text", SAMPLES)
def test_terms_are_the_index_tokenizers_terms(text: str) -> None:
    assert set(tx.terms(text)) == _fts5_terms(text)


def test_memoised_terms_are_a_fresh_list_each_call() -> None:
    first = tx.terms("Nvidia sells the H200")
    first.append("tampered")
    assert tx.terms("Nvidia sells the H200") == ["nvidia", "sells", "the", "h200"]
