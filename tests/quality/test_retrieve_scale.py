"""Retrieval shortcuts that keep large corpora fast must not change what is answered.

Real model, real index of the briefing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assistant.index.integrity import digest_file
from assistant.index.layout import IndexLayout
from assistant.index.manifest import read_manifest, write_manifest
from assistant.index.store import open_index
from assistant.qa import candidates as retrieve
from assistant.qa import lang
from assistant.qa.pipeline import Answerer
from assistant.settings import Settings

QUESTIONS = {
    "What revenue share does the US get from H200 sales?": "25% revenue",
    "Which Chinese chip vendors does the briefing mention?": "Huawei, Baidu, Cambricon",
    "How did Nvidia respond to the policy change?": "Nvidia welcomed the policy change",
}


def _answers(index: Path) -> dict[str, str]:
    idx = open_index(index)
    try:
        a = Answerer(idx, Settings(index_dir=index))
        out = {}
        for q in QUESTIONS:
            ans = a.ask(q).answer
            out[q] = ans.answer.text if ans.answer else ""
        return out
    finally:
        idx.close()


def test_common_words_left_out_of_lexical_search_keep_the_answers(
        briefing_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every word in more than 30% of the sentences counted as common ("china",
    "nvidia", "export" in the briefing), only the rarer words are searched lexically; the
    answers stay."""
    before = _answers(briefing_index)
    monkeypatch.setattr(retrieve, "COMMON_SHARE", 0.3)
    monkeypatch.setattr(retrieve, "COMMON_FLOOR", 0)
    after = _answers(briefing_index)
    idx = open_index(briefing_index)
    try:  # the setting does leave words out: "nvidia" is in most sentences (it is in the title)
        r = retrieve.Retriever(idx, lang.load("en"))
        stats = r.term_stats(["nvidia", "policy", "change"])
        assert stats.df["nvidia"] > retrieve.COMMON_SHARE * r.sentence_count
        assert stats.df["policy"] < retrieve.COMMON_SHARE * r.sentence_count
    finally:
        idx.close()
    assert after == before
    for q, expect in QUESTIONS.items():
        assert expect in after[q]


def test_index_without_the_term_table_still_answers(briefing_index: Path,
                                                    tmp_path: Path, answerer: Any) -> None:
    """An index written before ``term_df`` existed reads frequencies from the FTS vocabulary."""
    index = tmp_path / "index"
    shutil.copytree(briefing_index, index)
    gen = IndexLayout(index).current_generation()
    assert gen is not None
    with sqlite3.connect(gen / "meta.sqlite") as conn:
        conn.execute("DROP TABLE term_df")
    conn.close()
    # as that older build would have written it: its manifest records the file as it is
    manifest = read_manifest(gen)
    files = {**manifest.files, "meta.sqlite": digest_file(gen / "meta.sqlite")}
    write_manifest(gen, manifest.model_copy(update={"files": files}))
    assert _answers(index) == _answers(briefing_index)
