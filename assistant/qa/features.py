"""Features: every candidate sentence turned into one row of named numbers.

This is the only place where evidence becomes features. The scorer ranks candidates by
these rows; the abstainer reads the best candidate's row and the question's own evidence.
Adding a feature is adding a name to ``FEATURES`` and a column here, then refitting
(``scripts/fit.py``), which measures whether it helps held-out questions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from assistant import text as tx
from assistant.qa.analysis import QuestionAnalysis, bigrams
from assistant.qa.candidates import SOFT_MIN, Candidate
from assistant.qa.lang import Language

Matrix = npt.NDArray[np.float64]

FEATURES: tuple[str, ...] = (
    "dense",            # cosine of the question with the sentence
    "chunk_dense",      # cosine of the question with the passage around it
    "dense_gap",        # dense minus the best dense of all candidates
    "lexical",          # IDF-weighted share of the question's terms in the sentence
    "soft",             # the same share for words found only by word-vector similarity
    "lexical_gap",      # lexical + soft minus the best of all candidates
    "bm25",             # 1 / (1 + rank) in the BM25 sentence search
    "bm25_score",       # its BM25 score over the best of all candidates
    "passage_rank",     # 1 / (1 + rank) of its passage in the dense search
    "context",          # share of the terms in its section heading or document title
    "window",           # share found in the sentences before or after, not in it
    "inherited",        # share its referent holds, for a sentence opening with a pronoun
    "phrase",           # share of the question's word pairs it holds
    "proximity",        # how close together the question's terms stand in it
    "alignment",        # mean over question terms of the best match (exact 1, else soft)
    "rarest",           # it holds the question's rarest term
    "identifiers",      # share of the question's identifiers ("H200", "25%") it holds
    "identifiers_missing",
    "kind_held",        # it holds an answer of the kind asked (a date for "when")
    "kind_missing",     # a kind is asked and it holds none
    "novelty",          # log of its content words the question does not hold
    "section_start",    # it opens its section
    "short",            # how far under 80 characters it is
    "repeat",           # how close it is to an answer already given in the conversation
    "asks",             # it is itself a question (ends with "?"): an analyst's question
                        # line in call notes is seldom the answer to one
)
INDEX = {name: i for i, name in enumerate(FEATURES)}


def feature_names(language: Language) -> tuple[str, ...]:
    """``FEATURES`` and, per answer kind of the language, ``kind:NAME``: +1 when the kind is
    asked and the sentence holds it, -1 when asked and it does not, 0 when not asked."""
    return FEATURES + tuple(f"kind:{k.name}" for k in language.answer_kinds)


class FeatureExtractor:
    """Turns candidates into the ``FEATURES`` matrix (one row each) and stores each row on
    its candidate, for the scorer and the abstainer."""

    def extract(self, a: QuestionAnalysis, cands: Sequence[Candidate]) -> Matrix:
        kinds = a.language.answer_kinds
        x = np.zeros((len(cands), len(FEATURES) + len(kinds)))
        asked = [i for i, k in enumerate(kinds) if k in a.kinds]
        if not cands:
            return x
        terms = list(a.query.terms)
        weights = cands[0].term_weights
        total = float(weights.sum()) or 1.0
        n_ident = len(a.query.identifiers)
        rarest = int(np.argmax(weights)) if len(weights) else -1
        own = set(a.folded.split()) | set(tx.terms(a.question))
        given = [c.vector for c in cands if (c.doc_id, c.start) in a.query.avoid]
        repeat = (np.stack([c.vector for c in cands]) @ np.stack(given).T).max(axis=1) \
            if given else np.zeros(len(cands))
        # the per-term evidence of all candidates as matrices (candidates x terms), so the
        # IDF-weighted shares are one product each
        exact = np.array([c.exact for c in cands], dtype=bool).reshape(len(cands), -1)
        soft_sim = np.array([c.soft for c in cands], dtype=np.float64).reshape(len(cands), -1)
        in_context = np.array([c.in_context for c in cands], dtype=bool).reshape(len(cands), -1)
        in_window = np.array([c.in_window for c in cands], dtype=bool).reshape(len(cands), -1)
        inherited = np.array([c.inherited for c in cands], dtype=bool).reshape(len(cands), -1)
        soft = np.where(~exact & (soft_sim >= SOFT_MIN), soft_sim, 0.0)
        x[:, INDEX["dense"]] = [c.dense for c in cands]
        x[:, INDEX["chunk_dense"]] = [c.chunk_dense for c in cands]
        x[:, INDEX["lexical"]] = (exact * weights).sum(axis=1) / total
        x[:, INDEX["soft"]] = (soft * weights).sum(axis=1) / total
        x[:, INDEX["context"]] = (in_context * weights).sum(axis=1) / total
        x[:, INDEX["window"]] = ((in_window & ~exact) * weights).sum(axis=1) / total
        x[:, INDEX["inherited"]] = (inherited * weights).sum(axis=1) / total
        if terms:
            x[:, INDEX["alignment"]] = np.where(exact, 1.0, soft_sim).mean(axis=1)
            x[:, INDEX["rarest"]] = exact[:, rarest]
        x[:, INDEX["short"]] = np.maximum(0.0, 1.0 - np.array([len(c.text) for c in cands]) / 80)
        x[:, INDEX["repeat"]] = np.maximum(0.0, repeat - 0.6) / 0.4
        for i, c in enumerate(cands):
            row = x[i]
            row[INDEX["bm25"]] = 1 / (1 + c.lexical_rank) if c.lexical_rank is not None else 0
            row[INDEX["passage_rank"]] = 1 / (1 + c.dense_rank) if c.dense_rank is not None \
                else 0
            row[INDEX["proximity"]] = c.proximity
            row[INDEX["phrase"]] = (len(a.bigrams & bigrams(c.text, a.language.stopwords))
                                    / len(a.bigrams) if a.bigrams else 0.0)
            if n_ident:
                row[INDEX["identifiers"]] = len(c.matched_identifiers) / n_ident
                row[INDEX["identifiers_missing"]] = len(c.missing_identifiers) / n_ident
            if asked:
                held = [kinds[j].held_by(c.text, a.folded) for j in asked]
                row[INDEX["kind_held"]] = float(any(held))
                row[INDEX["kind_missing"]] = float(not all(held))
                for j, h in zip(asked, held, strict=True):
                    row[len(FEATURES) + j] = 1.0 if h else -1.0
            novel = {t for t in tx.content_terms(c.text, a.language.stopwords) if t not in own}
            row[INDEX["novelty"]] = math.log1p(len(novel))
            row[INDEX["section_start"]] = float(c.first_in_section)
            row[INDEX["asks"]] = float(tx.asks(c.text))
        best_bm25 = max(c.bm25 for c in cands)
        if best_bm25 > 0:
            x[:, INDEX["bm25_score"]] = [c.bm25 / best_bm25 for c in cands]
        x[:, INDEX["dense_gap"]] = x[:, INDEX["dense"]] - x[:, INDEX["dense"]].max()
        lex = x[:, INDEX["lexical"]] + x[:, INDEX["soft"]]
        x[:, INDEX["lexical_gap"]] = lex - lex.max()
        for c, r in zip(cands, x, strict=True):
            c.features = r
        return x
