"""Question analysis: everything about the question itself, worked out once per question.

The analysis is built before retrieval and read by every later stage (features, scorer,
quote builder, abstainer): the cleaned text, how the conversation resolved it, its weighted
terms and identifiers, the kinds of answer it asks for (from the language data), its word
pairs, and -- once the pipeline has embedded it -- its vector and term statistics.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from assistant import text as tx
from assistant.qa.candidates import Query, TermStats
from assistant.qa.conversation import Conversation, Resolution
from assistant.qa.lang import AnswerKind, Language

Vector = npt.NDArray[np.float32]


@dataclass
class QuestionAnalysis:
    question: str
    """The question as typed, cleaned of escapes and control characters."""
    language: Language
    resolution: Resolution
    query: Query
    kinds: tuple[AnswerKind, ...]
    """The kinds of answer asked for ("date" for "When did...?")."""
    folded: str
    """The question lower-cased without diacritics (what a held answer must not repeat)."""
    bigrams: frozenset[tuple[str, str]]
    vector: Vector | None = None
    stats: TermStats | None = None
    term_vectors: dict[str, Vector] = field(default_factory=dict)

    @property
    def asks_for_names(self) -> bool:
        return any(k.name in ("person", "names") for k in self.kinds)

    @property
    def own_terms(self) -> tuple[str, ...]:
        return self.resolution.own_terms


def analyse(question: str, conversation: Conversation, language: Language) -> QuestionAnalysis:
    """The question's analysis, before embedding (``question`` already cleaned)."""
    res = conversation.resolve(question, language)
    query = Query(text=res.text, terms=res.terms, identifiers=res.identifiers,
                  avoid=set(res.avoid))
    return QuestionAnalysis(question=question, language=language, resolution=res, query=query,
                            kinds=language.kinds_asked(question), folded=tx.fold(question),
                            bigrams=bigrams(question, language.stopwords))


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@functools.lru_cache(maxsize=8192)
def bigrams(text: str, stopwords: frozenset[str]) -> frozenset[tuple[str, str]]:
    """Consecutive content words, number folded ("export restrictions")."""
    words = [_stem(w) for w in tx.terms(text) if w not in stopwords]
    return frozenset(itertools.pairwise(words))
