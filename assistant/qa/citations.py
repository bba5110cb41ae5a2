"""Citations: the passages listed with an answer, diverse where the best ones are close.

Maximal marginal relevance over the ranked candidates: each next citation maximises
``(1 - diversity) * relevance - diversity * redundancy``, where relevance is the ranker's
score scaled to [0, 1] over the candidates, and redundancy is the highest similarity to a
citation already chosen -- raised for a passage of a document already cited, so that
alternatives from other documents come up when they score close. The answer's own
sentence always comes first; sentences inside the quoted answer are not listed again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from assistant.models import AnswerSpan
from assistant.qa.candidates import Candidate

POOL = 30
SAME_DOCUMENT = 0.2
"""Added to a candidate's redundancy for each citation already taken from its document."""


def choose_citations(ranked: Sequence[Candidate], k: int, diversity: float,
                     answer: AnswerSpan | None = None) -> list[Candidate]:
    if not ranked:
        return []
    pool = [c for c in ranked[:POOL] if c is ranked[0] or answer is None
            or not (c.doc_id == answer.doc_id and answer.start <= c.start < answer.end)]
    scores = np.array([c.score for c in pool])
    spread = float(scores.max() - scores.min()) or 1.0
    relevance = (scores - scores.min()) / spread
    chosen = [0]
    vectors = np.stack([c.vector for c in pool])
    while len(chosen) < min(k, len(pool)):
        sims = vectors @ vectors[chosen].T
        redundancy = sims.max(axis=1)
        for j in chosen:
            redundancy += SAME_DOCUMENT * np.array([c.doc_id == pool[j].doc_id for c in pool])
        value = (1 - diversity) * relevance - diversity * redundancy
        value[chosen] = -np.inf
        chosen.append(int(value.argmax()))
    return [pool[i] for i in chosen]
