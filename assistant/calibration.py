"""Fitted constants of the answer stage; written by ``scripts/calibrate.py``.

SCORE_WEIGHTS rank candidate sentences (see ``answer.rank_score``); CONFIDENCE maps the
top candidate's features (score, margin over the runner-up, lexical coverage, dense
similarity, answer type present, identifiers present, share of query terms unknown to the
corpus) to a probability that the answer is right, by logistic regression on the gold sets
of two unrelated corpora (the briefing and Python's language reference) together.
"""

from __future__ import annotations

SCORE_WEIGHTS: dict[str, float] = {
    "dense": 0.495,
    "chunk_dense": 0.2904,
    "lexical": 0.8,
    "context": 0.0,
    "identifier": 0.05,
    "identifier_missing": 0.0,
    "type_mismatch": 0.1,
    "soft_min": 0.5,
    "soft_scale": 0.64,
    "bm25": 0.036,
    "section_start": 0.05,
    "short": 0.045,
}

CONFIDENCE_BIAS: float = -5.0052055254259145
CONFIDENCE_WEIGHTS: list[float] = [1.08638, 3.73303, 0, 2.07648, 1.2856, 1.52546, 0]

ABSTAIN_BELOW: float = 0.2
"""Calibrated default for Settings.abstain_below (Brier score 0.153)."""
