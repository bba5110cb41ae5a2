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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from assistant.errors import SettingsError
from assistant.qa.analysis import QuestionAnalysis
from assistant.qa.candidates import Candidate
from assistant.qa.features import feature_names

MODEL_FILE = Path(__file__).with_name("model.json")


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

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64],
                              npt.NDArray[np.int64], npt.NDArray[np.int64],
                              npt.NDArray[np.float64]]:
        width = max(len(f) for f in self.feature)
        leaves = max(len(v) for v in self.leaf)

        def pad(rows: list[list[int]] | list[list[float]], n: int, fill: float
                ) -> npt.NDArray[np.float64]:
            return np.array([list(r) + [fill] * (n - len(r)) for r in rows], dtype=np.float64)

        return (pad(self.feature, width, 0).astype(np.int64), pad(self.threshold, width, 0.0),
                pad(self.left, width, -1).astype(np.int64),
                pad(self.right, width, -1).astype(np.int64), pad(self.leaf, leaves, 0.0))

    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        feat, thr, left, right, leaf = self.arrays()
        return walk_trees(x, feat, thr, left, right, leaf, self.depth)


def walk_trees(x: npt.NDArray[np.float64], feat: npt.NDArray[np.int64],
               thr: npt.NDArray[np.float64], left: npt.NDArray[np.int64],
               right: npt.NDArray[np.int64], leaf: npt.NDArray[np.float64], depth: int
               ) -> npt.NDArray[np.float64]:
    """Every row through every tree at once, one level a step; the sum of the leaves."""
    rows, trees = len(x), len(feat)
    t = np.broadcast_to(np.arange(trees), (rows, trees))
    r = np.broadcast_to(np.arange(rows)[:, None], (rows, trees))
    node = np.zeros((rows, trees), dtype=np.int64)
    out = np.zeros((rows, trees))
    active = np.ones((rows, trees), dtype=bool)
    for _ in range(depth + 1):
        f = feat[t, node]
        nxt = np.where(x[r, f] <= thr[t, node], left[t, node], right[t, node])
        done = active & (nxt < 0)
        out[done] = leaf[t[done], -nxt[done] - 1]
        active &= ~done
        if not active.any():
            break
        node = np.where(active, nxt, 0)
    return np.asarray(out.sum(axis=1), dtype=np.float64)


class AbstainerModel(LinearModel):
    threshold: float
    """Probability below which the assistant abstains."""


class AnswerModel(BaseModel):
    """The fitted ranking and abstention models, with where they came from."""

    ranker: TreeModel | LinearModel = Field(discriminator="kind")
    abstainer: AbstainerModel
    citation_diversity: float = Field(default=0.3, ge=0.0, le=1.0)
    provenance: dict[str, object] = Field(default_factory=dict)


def load_model(path: Path = MODEL_FILE) -> AnswerModel:
    try:
        return AnswerModel.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read the answer model {path}: {exc}") from exc


class FittedScorer:
    """Scores candidates by a fitted ranker (trees or linear) over their feature rows."""

    def __init__(self, model: TreeModel | LinearModel) -> None:
        self.model = model
        self._cols: dict[str, list[int]] = {}
        if isinstance(model, TreeModel):  # the arrays once, not once per question
            arrays = model.arrays()
            depth = model.depth

            def walk(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
                return walk_trees(x, *arrays, depth)

            self._apply: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]] = walk
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

