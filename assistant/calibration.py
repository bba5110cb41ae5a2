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
    "context": 0.055,
    "identifier": 0.25,
    "identifier_missing": 0.0,
    "type_mismatch": 0.2,
    "soft_min": 0.5,
    "soft_scale": 0.64,
    "bm25": 0.0396,
    "section_start": 0.0495,
    "short": 0.0,
    "names": 0.1,
    "purpose": 0.1,
    "echo": 0.05,
}

CONFIDENCE_BIAS: float = -6.115712720808866
CONFIDENCE_WEIGHTS: list[float] = [0, 3.39573, 0.692394, 1.47115, 2.16, 3.11146, -0.373032]

ABSTAIN_BELOW: float = 0.25
"""Calibrated default for Settings.abstain_below (Brier score 0.158)."""
