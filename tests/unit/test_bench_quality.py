"""`scripts/bench.py quality` holds the peers to the assistant's rule: a peer's threshold for a
question is chosen on the other folds only, refusing at most the allowed share of the
answerable questions of every corpus separately, and an abstention is no right answer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_quality
import fit
from qualitylib import Sample


def _sample(corpus: str, qid: str, fold: int, answerable: bool = True,
            kind: str = "fact") -> Sample:
    # a narrow fake: the peers' figures read only the question's identity and labels
    return Sample(set=corpus, qid=qid, question=f"question {qid}", answerable=answerable,
                  expect=["gold"], fold=fold, analysis=None,  # type: ignore[arg-type]
                  cands=[], x=np.zeros((0, 0)), labels=np.zeros(0, dtype=bool), kind=kind)


def _answer(qid: str, score: float, right: bool = True) -> dict[str, Any]:
    return {"qid": qid, "score": score, "seconds": 0.001, "rank_top1": right,
            "rank_hit3": right, "rank_list": False}


def test_a_peer_abstains_below_the_threshold_of_the_other_folds(monkeypatch: Any) -> None:
    monkeypatch.setattr(fit, "MAX_ANSWERABLE_ABSTAINED", 0.0)  # refuse no answerable one
    samples = [_sample("a", "a0", 0), _sample("a", "a1", 0), _sample("a", "a2", 1),
               _sample("a", "a3", 1), _sample("a", "out", 1, answerable=False,
                                               kind="out_of_scope")]
    # fold 1's threshold comes from fold 0 (lowest answerable score 0.6), and fold 0's
    # from fold 1 (0.3: the out-of-scope question's score does not count)
    answers = {"a": [_answer("a0", 0.6), _answer("a1", 0.9), _answer("a2", 0.5),
                     _answer("a3", 0.3), _answer("out", 0.1, right=False)]}
    rows = {r["qid"]: r for r in bench_quality.peer_results(samples, answers)}
    assert not rows["a0"]["abstained"] and not rows["a1"]["abstained"]  # >= 0.3
    assert rows["a2"]["abstained"] and rows["a3"]["abstained"]  # < 0.6
    assert rows["out"]["abstained"]
    # an abstention is no answer: right by ranking, not at top-1
    assert rows["a2"]["rank_top1"] and not rows["a2"]["top1"]
    assert rows["a0"]["top1"]


def test_the_threshold_holds_on_every_corpus_separately(monkeypatch: Any) -> None:
    monkeypatch.setattr(fit, "MAX_ANSWERABLE_ABSTAINED", 0.5)
    samples = [_sample("high", "h0", 0), _sample("low", "l0", 0),
               _sample("high", "h1", 1), _sample("low", "l1", 1)]
    # trained on fold 0: corpus "high" alone would allow 0.9, and so would both pooled
    # (refusing one of two); "low" needs 0.2 or less, so fold 1 gets 0.2
    answers = {"high": [_answer("h0", 0.9), _answer("h1", 0.5)],
               "low": [_answer("l0", 0.2), _answer("l1", 0.25)]}
    rows = {r["qid"]: r for r in bench_quality.peer_results(samples, answers)}
    assert not rows["h1"]["abstained"] and not rows["l1"]["abstained"]
