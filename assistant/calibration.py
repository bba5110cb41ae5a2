"""Fitted constants of the answer stage; written by ``scripts/calibrate.py``.

SCORE_WEIGHTS rank candidate sentences; CONFIDENCE maps the top candidate's features
(score, margin over the runner-up, lexical coverage, dense similarity, answer type
present, identifiers present, share of query terms unknown to the corpus) to a
probability that the answer is right, by logistic regression on the dev sets.
"""

from __future__ import annotations

SCORE_WEIGHTS: dict[str, float] = {
    "dense": 0.45,
    "chunk_dense": 0.15,
    "lexical": 0.40,
    "context": 0.05,
    "identifier": 0.10,
    "identifier_missing": 0.25,
    "type_mismatch": 0.10,
}

CONFIDENCE_BIAS: float = -6.0
CONFIDENCE_WEIGHTS: list[float] = [6.0, 4.0, 3.0, 2.0, 1.5, 1.5, -4.0]

ABSTAIN_BELOW: float = 0.5
"""Calibrated default for Settings.abstain_below."""
