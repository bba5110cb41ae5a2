"""Fitted constants of the answer stage; written by ``scripts/calibrate.py``.

SCORE_WEIGHTS rank candidate sentences (see ``answer.rank_score``); CONFIDENCE maps the
top candidate's features (score, margin over the runner-up, lexical coverage, dense
similarity, answer type present, identifiers present, share of query terms unknown to the
corpus) to a probability that the answer is right, by logistic regression on the gold sets
of two unrelated corpora (the briefing and Python's language reference) together.
"""

from __future__ import annotations

SCORE_WEIGHTS: dict[str, float] = {
    "dense": 0.7487,
    "chunk_dense": 0.5111,
    "lexical": 0.64,
    "context": 0.0,
    "identifier": 0.1,
    "identifier_missing": 0.0,
    "type_mismatch": 0.2,
    "soft_min": 0.5,
    "soft_scale": 0.64,
    "bm25": 0.0396,
    "section_start": 0.025,
    "short": 0.055,
    "names": 0.5,
    "purpose": 0.1,
    "gain": 0.1,
    "echo": 0.05,
    "long_echo": 1.0,
    "phrase": 0.5,
    "inherit": 0.45,
    "given_focus": 0.3,
}

CONFIDENCE_BIAS: float = -5.933888734986304
CONFIDENCE_WEIGHTS: list[float] = [
    1.06996, 2.54509, 0, 0.490748, 4.04648, 1.34798, -0.640277,
]

ABSTAIN_BELOW: float = 0.33
"""Calibrated default for Settings.abstain_below (Brier score 0.117)."""
