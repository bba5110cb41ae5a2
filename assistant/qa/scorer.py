"""The scorer seam: candidates in, one score each out (higher is better).

``Scorer`` is the protocol every ranking model meets. The shipped ranker is a LambdaRank
ensemble of small regression trees fitted by LightGBM in ``scripts/fit.py`` and stored as
plain arrays in ``model.json``: ``TreeScorer`` walks them with numpy (all trees at once, a
few hundred microseconds for 150 candidates), so answering never imports LightGBM.
A ``LinearModel`` over the same features can stand in its place (the pairwise logistic
regression that fit.py compares against). Another model -- a cross-encoder, say -- plugs in
by meeting the protocol.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from assistant.errors import AnswerModelError, SettingsError
from assistant.qa.analysis import QuestionAnalysis
from assistant.qa.candidates import Candidate
from assistant.qa.features import feature_names

MODEL_FILE = Path(__file__).with_name("model.json")
MODEL_FORMAT = 2
"""The model file's layout: 2 added the abstainer's calibration and best-guess cut, and the
hash of the features the model was fitted on."""


class Scorer(Protocol):
    def score(self, analysis: QuestionAnalysis, candidates: Sequence[Candidate]
              ) -> npt.NDArray[np.float64]: ...


class FeatureModel(BaseModel):
    """A model over named features (columns picked by name, so adding a feature to the
    extractor never breaks a model fitted before it)."""

    features: list[str]

    def columns(self, all_names: Sequence[str]) -> list[int]:
        index = {n: i for i, n in enumerate(all_names)}
        missing = [f for f in self.features if f not in index]
        if missing:
            raise SettingsError(f"the answer model uses unknown features: {missing}")
        return [index[f] for f in self.features]


class LinearModel(FeatureModel):
    """A linear model over named features, on standardised inputs."""

    kind: Literal["linear"] = "linear"
    weights: list[float]
    mean: list[float]
    scale: list[float]
    bias: float = 0.0

    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return np.asarray(z @ np.array(self.weights) + self.bias, dtype=np.float64)


class TreeModel(FeatureModel):
    """An additive ensemble of binary regression trees over named features.

    Tree ``t``'s internal node ``i`` sends a row left when ``x[feature[t][i]] <=
    threshold[t][i]``; a child ``c >= 0`` is another internal node, ``c < 0`` the leaf
    ``-c - 1``, whose value ``leaf[t][-c - 1]`` the tree contributes."""

    kind: Literal["trees"] = "trees"
    feature: list[list[int]]
    threshold: list[list[float]]
    left: list[list[int]]
    right: list[list[int]]
    leaf: list[list[float]]
    depth: int

    def flat(self) -> FlatTrees:
        """The ensemble as one node table (see ``FlatTrees``)."""
        return FlatTrees.of(self)

    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return self.flat().walk(x)


class FlatTrees:
    """Every tree's nodes in one table, leaves included: a leaf is a node that sends every
    row back to itself (threshold +inf, both children itself) and holds its value, so all
    rows walk all trees in lock-step with three gathers a level and no bookkeeping of which
    walks have ended; the score is the sum of the values of the nodes reached."""

    def __init__(self, feature: npt.NDArray[np.intp], threshold: npt.NDArray[np.float64],
                 left: npt.NDArray[np.intp], right: npt.NDArray[np.intp],
                 value: npt.NDArray[np.float64], roots: npt.NDArray[np.intp],
                 depth: int) -> None:
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.value, self.roots, self.depth = value, roots, depth
        self.children = np.empty(2 * len(left), dtype=np.intp)
        self.children[0::2], self.children[1::2] = left, right

    @classmethod
    def of(cls, model: TreeModel) -> FlatTrees:
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        for feat, thr, lo, hi, leaf in zip(model.feature, model.threshold, model.left,
                                            model.right, model.leaf, strict=True):
            base, leaves = len(feature), len(feature) + len(feat)

            def node(child: int, base: int = base, leaves: int = leaves) -> int:
                return base + child if child >= 0 else leaves + (-child - 1)

            roots.append(base if feat else leaves)  # a tree of one leaf starts on it
            feature += feat
            threshold += thr
            left += [node(c) for c in lo]
            right += [node(c) for c in hi]
            value += [0.0] * len(feat)
            for j, v in enumerate(leaf):
                feature.append(0)
                threshold.append(math.inf)
                left.append(leaves + j)
                right.append(leaves + j)
                value.append(v)
        return cls(np.array(feature, dtype=np.intp), np.array(threshold, dtype=np.float64),
                   np.array(left, dtype=np.intp), np.array(right, dtype=np.intp),
                   np.array(value, dtype=np.float64), np.array(roots, dtype=np.intp),
                   model.depth)

    def walk(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The ensemble's score of each row of ``x``. Row-major: every (row, tree) walk is
        one element of flat arrays, a level is two gathers (the feature's value, the
        threshold) and one look-up of the child in an interleaved (left, right) table:
        faster than gathering along axis 1, with the same sums bit for bit."""
        n, width = x.shape
        trees = len(self.roots)
        values = np.ascontiguousarray(x, dtype=np.float64).ravel()
        node = np.tile(self.roots, n)
        offset = np.repeat(np.arange(n) * width, trees)
        for _ in range(self.depth):  # ``depth``: the most splits on a path to a leaf
            right = ~(values[offset + self.feature[node]] <= self.threshold[node])
            node = self.children[2 * node + right]
        return np.asarray(self.value[node].reshape(n, trees).sum(axis=1), dtype=np.float64)


class AbstainerModel(LinearModel):
    """Two logistic models over the same evidence: its own weights, of "the quoted answer
    is right" (the confidence shown, through ``calibration``), and ``coverage``, of "the
    documents answer the question" (whether to answer at all). They differ: a question the
    documents answer in other words than it asks often gets a wrong best passage, and
    refusing it would be the worst failure; a question they do not answer has no right
    passage at all."""

    threshold: float
    """Probability of coverage (or, without ``coverage``, of being right) below which the
    assistant abstains."""
    coverage: LinearModel | None = None
    calibration: list[list[float]] = Field(default_factory=list)
    """(probability, confidence) points, increasing: the model's probability mapped to how
    often an answer at that probability was right held out (isotonic), interpolated
    between points. Empty: the probability is the confidence."""
    guess_below: float = 0.5
    """Confidence below which an answer is shown as a best guess: more likely wrong than
    right."""


class AnswerModel(BaseModel):
    """The fitted ranking and abstention models, with where they came from."""

    format: int = 1
    features_hash: str = ""
    """``assistant.qa.abstain.features_hash`` of the code that computed the features it
    was fitted on: a model fitted on other features would score silently wrong."""
    ranker: TreeModel | LinearModel = Field(discriminator="kind")
    abstainer: AbstainerModel
    citation_diversity: float = Field(default=0.3, ge=0.0, le=1.0)
    provenance: dict[str, object] = Field(default_factory=dict)


def load_model(path: Path = MODEL_FILE) -> AnswerModel:
    try:
        model = AnswerModel.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise AnswerModelError(f"cannot read the answer model {path}: "
                         f"{str(exc).splitlines()[0]}") from exc
    if model.format != MODEL_FORMAT:
        raise AnswerModelError(f"the answer model {path} is of format {model.format}, this version "
                         f"reads format {MODEL_FORMAT}: reinstall, or refit it with "
                         "scripts/fit.py --write")
    return model


class FittedScorer:
    """Scores candidates by a fitted ranker (trees or linear) over their feature rows."""

    def __init__(self, model: TreeModel | LinearModel) -> None:
        self.model = model
        self._cols: dict[str, list[int]] = {}
        if isinstance(model, TreeModel):  # the node table once, not once per question
            self._apply: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]] = \
                model.flat().walk
        else:
            self._apply = model.apply

    def score(self, analysis: QuestionAnalysis, candidates: Sequence[Candidate]
              ) -> npt.NDArray[np.float64]:
        if not candidates:
            return np.zeros(0)
        cols = self._cols.get(analysis.language.code)
        if cols is None:
            cols = self._cols[analysis.language.code] = self.model.columns(
                feature_names(analysis.language))
        x = np.stack([c.features for c in candidates])[:, cols]
        return self._apply(x)

