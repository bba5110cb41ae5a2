"""The abstainer: is the best candidate an answer, or does the corpus not cover this?

A logistic model of "the quoted sentence answers the question", on evidence that tells an
answered question from an unanswered one: how much of the question's own wording the best
sentence and its neighbours hold, how much of it the corpus does not know at all, whether
the kind of answer asked for is there, the identifiers asked for, the similarity of the best
sentence and the best passage, and the best candidate's lead over the runner-up. Fitted by
``scripts/fit.py`` on held-out folds; below its threshold the assistant abstains.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from assistant import text as tx
from assistant.errors import AnswerModelError
from assistant.qa.analysis import QuestionAnalysis
from assistant.qa.candidates import SOFT_MIN, Candidate
from assistant.qa.features import INDEX, feature_names
from assistant.qa.lang import Language
from assistant.qa.scorer import AbstainerModel, AnswerModel

ABSTAIN_FEATURES: tuple[str, ...] = (
    "top_score",        # the ranker's score of the best candidate
    "margin",           # its lead over the runner-up
    "top_dense",
    "top_chunk_dense",
    "best_chunk_dense",  # the best passage similarity among all candidates
    "top_lexical",      # share of the question's terms it holds exactly
    "top_alignment",
    "unmatched",        # share of the question's own terms found neither in it, its
                        # neighbours nor its heading, exactly or softly
    "unknown",          # share of the question's terms the corpus never uses
    "kind_missing",
    "identifiers_missing",
    "own_terms",        # log of the question's own content terms
    "names_missing",    # share of what the question pins down -- its names (capitalised
                        # words after the first), figures, years and model numbers --
                        # that the best sentence, its neighbours and its heading lack
    "dense_lead",       # the best passage similarity over the median of the candidates'
    "top5_dense",       # the mean sentence similarity of the five best candidates
    "rivalled",         # share of what the question pins down that the best sentence
                        # replaces by another of the same kind (another year or model
                        # number: 2023 for 2021, H20 for H200) and that none of the 20 best
                        # candidates holds: the documents give another year's figure
)


def features_hash(language: Language) -> str:
    """What a fitted model depends on: the names, in order, of the ranking features and of
    the abstainer's evidence."""
    names = "\n".join([*feature_names(language), "--", *ABSTAIN_FEATURES])
    return hashlib.sha256(names.encode("utf-8")).hexdigest()[:16]


def check_model(model: AnswerModel, language: Language) -> None:
    """A model fitted on other features than this code computes is refused, never used."""
    if model.features_hash != features_hash(language):
        raise AnswerModelError("the answer model was fitted on other features than this version "
                         "computes: reinstall, or refit it with scripts/fit.py --write")


def abstention_features(a: QuestionAnalysis, ranked: Sequence[Candidate],
                        scores: Sequence[float]) -> npt.NDArray[np.float64]:
    """The abstainer's inputs for a ranked candidate list (best first)."""
    f = np.zeros(len(ABSTAIN_FEATURES))
    if not ranked or a.stats is None:
        return f
    best = ranked[0]
    terms = list(a.query.terms)
    own_set = set(a.own_terms)
    own = [i for i, t in enumerate(terms) if t in own_set]
    idf = np.array([a.stats.idf.get(t, 0.0) for t in terms])
    found = best.exact | (best.soft >= SOFT_MIN) | best.in_window | best.in_context
    own_idf = float(idf[own].sum()) if own else 0.0
    unknown = set(a.stats.unknown)
    softly = np.zeros(len(terms), dtype=bool)
    for c in ranked[:20]:
        softly |= c.exact | (c.soft >= SOFT_MIN)
    f[0] = scores[0]
    f[1] = scores[0] - scores[1] if len(scores) > 1 else 1.0
    f[2] = best.dense
    f[3] = best.chunk_dense
    f[4] = max(c.chunk_dense for c in ranked)
    f[5] = best.features[INDEX["lexical"]]
    f[6] = best.features[INDEX["alignment"]]
    if own and own_idf > 0:
        f[7] = float(idf[own][~found[own]].sum()) / own_idf
        # a word the corpus never uses has no IDF of its own: count it as the rarest
        rare = max(float(idf.max()), 1.0)
        n_unknown = sum(1 for i in own if terms[i] in unknown and not softly[i])
        f[8] = n_unknown * rare / (own_idf + n_unknown * rare)
    f[9] = best.features[INDEX["kind_missing"]]
    f[10] = best.features[INDEX["identifiers_missing"]]
    f[11] = math.log1p(len(a.own_terms))
    pinned = pinned_down(a)
    if pinned:
        missing = missing_pins(a, best, pinned)
        f[12] = len(missing) / len(pinned)
        f[RIVALLED] = len(rivalled(a, ranked, missing)) / len(pinned)
    chunk = [c.chunk_dense for c in ranked[:20]]
    f[13] = max(chunk) - float(np.median(chunk))
    f[14] = float(np.mean([c.dense for c in ranked[:5]]))
    return f


def pinned_down(a: QuestionAnalysis) -> list[str]:
    """What the question pins down (folded): its identifiers ("H20", "2023", "25%") and the
    names it capitalises after its first word ("Japan", "Samsung"). Each word is split
    into its terms as written ("Act's" gives "act" and "s"): a cleaner split that dropped
    the possessive "s" and compounds' lower-case halves refused fewer out-of-scope
    questions on every folder, held out (docs/answer-engine-history.md)."""
    names = [t for w in a.question.split()[1:] if w[:1].isupper() for t in tx.terms(w)]
    return list(dict.fromkeys([*a.query.identifiers, *names]))


_EDGES = ".,;:?!()[]\"'“”‘’"


def missing_pins(a: QuestionAnalysis, best: Candidate, pinned: Sequence[str]) -> list[str]:
    """The pinned-down words that neither the best sentence, its neighbours nor its heading
    and title hold."""
    terms = list(a.query.terms)
    found = best.exact | best.in_window | best.in_context
    held = {t for t, f in zip(terms, found, strict=True) if f}
    held |= {tx.fold(i) for i in best.matched_identifiers}
    around = set(tx.identifiers(f"{best.title} {best.section}", a.language.stopwords))
    return [p for p in pinned if p not in held and not tx.identifier_present(p, around)]


def pin_kind(pin: str) -> str:
    """A year ("year"), a model or period code by its letters ("code:h" for H200 and H20,
    "code:q" for Q2), a bare figure ("figure") or a name."""
    if _YEAR.fullmatch(pin):
        return "year"
    code = _CODE.fullmatch(pin)
    if code:
        return f"code:{code.group(1)}"
    return "figure" if any(ch.isdigit() for ch in pin) else "name"


_YEAR = re.compile(r"(?:1[89]|20)\d\d")
_CODE = re.compile(r"([a-z]+)\d+[a-z]*")
_RIVALLED = re.compile(r"year|code:.*")


def rivalled(a: QuestionAnalysis, ranked: Sequence[Candidate], missing: Sequence[str]
             ) -> list[str]:
    """The missing pins for which the best sentence names a rival of the same kind, one
    the question does not name -- another year ("2023" where the question asks about
    2021), another model or period of the same series ("H20" for "H200", "Q3" for "Q2")
    -- and that none of the 20 best candidates holds: the documents state the figure for
    something else. (Names are left out: "Brussels" for the Commission, "Geneva" for the
    WHO are how analysts write, and a sentence names another country for other reasons.)"""
    if not ranked:
        return []
    kinds = {pin_kind(r) for r in rivals(a, ranked[0])}
    pins = [p for p in missing if _RIVALLED.fullmatch(k := pin_kind(p)) and k in kinds]
    if not pins:
        return []
    held: set[str] = set()
    for c in ranked[1:RIVAL_DEPTH]:
        held.update(tx.identifiers(c.text, a.language.stopwords))
    return [p for p in pins if not tx.identifier_present(p, held)]


RIVAL_DEPTH = 20
RIVALLED = ABSTAIN_FEATURES.index("rivalled")


def rivals(a: QuestionAnalysis, best: Candidate) -> dict[str, str]:
    """What the best sentence pins down that the question does not (folded -> as written):
    its years, figures, model numbers and names after its first word."""
    asked = set(pinned_down(a)) | set(a.query.terms)
    out: dict[str, str] = {}
    for i, word in enumerate(best.text.split()):
        shown = word.strip(_EDGES)
        folded = tx.fold(shown).rstrip(".")
        if not folded or folded in asked or folded in out:
            continue
        if tx.identifiers(shown, a.language.stopwords) or (i and shown[:1].isupper()):
            out[folded] = shown
    return out


Outcome = Literal["answer", "best_guess", "not_covered"]


class Abstainer:
    def __init__(self, model: AbstainerModel, threshold: float | None = None) -> None:
        self.model = model
        self.cols = model.columns(ABSTAIN_FEATURES)
        self.coverage_cols = (model.coverage.columns(ABSTAIN_FEATURES)
                              if model.coverage is not None else self.cols)
        self.threshold = model.threshold if threshold is None else threshold
        points = np.array(model.calibration, dtype=np.float64).reshape(-1, 2)
        self._cal_x, self._cal_y = points[:, 0], points[:, 1]

    def probability(self, features: npt.NDArray[np.float64]) -> float:
        """The model's probability that the best passage is right (uncalibrated)."""
        return _logistic(float(self.model.apply(features[self.cols][None, :])[0]))

    def covered(self, features: npt.NDArray[np.float64]) -> float:
        """The probability that the documents answer the question at all."""
        if self.model.coverage is None:
            return self.probability(features)
        return _logistic(float(self.model.coverage.apply(
            features[self.coverage_cols][None, :])[0]))

    def abstains(self, features: npt.NDArray[np.float64]) -> bool:
        """Below the threshold, or when the best sentence answers for another year or model
        than the one asked about and no other candidate names it (a rule, not a weight;
        what it costs held out is in docs/answer-engine-history.md)."""
        return bool(features[RIVALLED] > 0) or self.covered(features) < self.threshold

    def confidence(self, features: npt.NDArray[np.float64]) -> float:
        """How often an answer with this evidence was right, held out."""
        p = self.probability(features)
        if not len(self._cal_x):
            return p
        return float(np.interp(p, self._cal_x, self._cal_y))

    def outcome(self, features: npt.NDArray[np.float64]) -> Outcome:
        if self.abstains(features):
            return "not_covered"
        return "best_guess" if self.confidence(features) < self.model.guess_below \
            else "answer"


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
