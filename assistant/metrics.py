"""The measures of answer quality and speed, in one place: ``assistant eval``, ``scripts/fit.py``
and every benchmark (``scripts/bench.py``) import them from here.

* ``contains``: is a gold phrase in a text (case-insensitive substring), the one test of
  "right" everywhere;
* ``hit_at``, ``reciprocal_rank``: a ranked list of texts against the gold phrases (top-1 is
  ``hit_at(texts, phrases, 1)``);
* ``share``: the mean of flags (top-1, hit@k, refusal rates over a set of questions);
* ``abstention_precision``, ``abstention_recall``: "abstained" taken as the prediction of
  "the documents do not answer it";
* ``auroc``: how well a score separates two classes (ties count half);
* ``choose_threshold``, ``threshold_for_every_group``: the abstention threshold under a cap
  on the answerable questions it refuses;
* ``expected_calibration_error``, ``reliability_bins``: whether a confidence means what it
  says;
* ``percentile``: latency percentiles, by one definition (linear interpolation).

This module must import nothing but the standard library and numpy: the benchmarks' peer
half runs it in ``.bench-venv``, where the assistant's other dependencies are not installed
(``sys.path`` holding the checkout is enough there).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def contains(text: str | None, phrases: Iterable[str]) -> bool:
    """Does ``text`` hold one of ``phrases`` (case-insensitive)? No text holds nothing."""
    if not text:
        return False
    low = text.lower()
    return any(p.lower() in low for p in phrases)


def hit_at(texts: Sequence[str | None], phrases: Iterable[str], k: int) -> bool:
    """Does one of the first ``k`` texts (best first) hold a gold phrase?"""
    wanted = list(phrases)
    return any(contains(t, wanted) for t in texts[:k])


def reciprocal_rank(texts: Sequence[str | None], phrases: Iterable[str]) -> float:
    """1 / the rank of the first text holding a gold phrase; 0 when none does."""
    wanted = list(phrases)
    for rank, t in enumerate(texts, start=1):
        if contains(t, wanted):
            return 1.0 / rank
    return 0.0


def share(flags: Iterable[bool | float]) -> float:
    """The mean of ``flags`` (the share that hold); NaN for none."""
    values = [float(f) for f in flags]
    return sum(values) / len(values) if values else math.nan


def abstention_precision(abstained: Sequence[bool], answerable: Sequence[bool]
                         ) -> float | None:
    """Of the questions abstained on, the share the documents do not answer. Undefined
    (None), not 100%, when nothing was abstained on or every question is answerable."""
    pairs = list(zip(abstained, answerable, strict=True))
    refused = [not ans for abst, ans in pairs if abst]
    if not refused or all(ans for _, ans in pairs):
        return None
    return share(refused)


def abstention_recall(abstained: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Of the questions the documents do not answer, the share abstained on (None without
    any)."""
    refused = [abst for abst, ans in zip(abstained, answerable, strict=True) if not ans]
    return share(refused) if refused else None


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a positive, drawn at random, scores above
    a negative drawn at random; a tie counts half (the Mann-Whitney U statistic over the
    product of the class sizes). NaN when either class is empty.

    Written here rather than taken from scikit-learn (``roc_auc_score`` gives the same
    figure, tests/unit/test_metrics.py checks it): scikit-learn is a development-only
    dependency, and this module must run in the peers' environment too."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = sorted(s for s, p in zip(scores, positive, strict=True) if not p)
    if not pos or not neg:
        return math.nan
    wins = 0.0
    for s in pos:
        below = bisect.bisect_left(neg, s)
        wins += below + 0.5 * (bisect.bisect_right(neg, s) - below)
    return wins / (len(pos) * len(neg))


def choose_threshold(scores: Sequence[float], max_refused: float) -> float:
    """The highest threshold (abstain when a score is below it) that refuses at most
    ``max_refused`` (a share) of ``scores``, the answerable questions' scores. -inf for no
    scores (refuse nothing)."""
    s = sorted(scores)
    if not s:
        return -math.inf
    k = math.floor(max_refused * len(s))
    return float(s[k]) if k < len(s) else float(s[-1])


def threshold_for_every_group(groups: Mapping[str, Sequence[float]], max_refused: float
                              ) -> float:
    """The highest threshold that refuses at most ``max_refused`` of the answerable scores
    of every group separately (a pooled threshold hides the group it fails): the lowest of
    the groups' own. -inf when no group has a score."""
    cuts = [choose_threshold(v, max_refused) for v in groups.values() if len(v)]
    return min(cuts) if cuts else -math.inf


@dataclass(frozen=True)
class ReliabilityBin:
    """Answers shown with a confidence in [lo, hi): how many, their mean confidence, the
    share that was right."""

    lo: float
    hi: float
    count: int
    confidence: float
    accuracy: float

    @property
    def band(self) -> str:
        return f"{self.lo:.1f}-{min(self.hi, 1.0):.1f}"


def reliability_bins(confidence: Sequence[float], right: Sequence[bool],
                     edges: Sequence[float]) -> list[ReliabilityBin]:
    """Per band of confidence ``[edges[i], edges[i+1])`` that holds an answer: the count,
    the mean confidence and the share right (empty bands are left out)."""
    pairs = list(zip(confidence, right, strict=True))
    out = []
    for lo, hi in itertools.pairwise(edges):
        band = [(c, r) for c, r in pairs if lo <= c < hi]
        if band:
            out.append(ReliabilityBin(lo, hi, len(band), share(c for c, _ in band),
                                      share(r for _, r in band)))
    return out


def expected_calibration_error(confidence: Sequence[float], right: Sequence[bool],
                               bins: int = 10) -> float:
    """The mean gap between confidence and accuracy over ``bins`` equal-width bins of
    [0, 1] (a confidence of 1.0 falls in the last), weighted by each bin's share of the
    answers. NaN for no answers."""
    if not confidence:
        return math.nan
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for c, r in zip(confidence, right, strict=True):
        members[max(0, min(int(c * bins), bins - 1))].append((c, r))
    return sum(len(m) * abs(share(c for c, _ in m) - share(r for _, r in m))
               for m in members if m) / len(confidence)


def calibration_noise(confidence: Sequence[float], bins: int = 10, draws: int = 400,
                      seed: int = 0) -> tuple[float, float]:
    """The expected calibration error a perfectly calibrated model would show on these
    confidences by chance alone: each answer drawn right with its own confidence as the
    chance, ``draws`` times. (mean, 90th percentile); NaN for no answers. On a few hundred
    answers it is several points, so an ECE below it cannot be asked of such a sample."""
    if not confidence:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    conf = np.asarray(confidence, dtype=np.float64)
    errors = [expected_calibration_error(list(conf), list(rng.random(len(conf)) < conf), bins)
              for _ in range(draws)]
    return float(np.mean(errors)), percentile(errors, 90)


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (``q`` in 0..100) by linear interpolation between the closest
    ranks: sorted ``s``, position ``(len(s) - 1) * q / 100``, the values on either side
    weighted by the distance (numpy's default method, "linear", Hyndman and Fan's type 7).
    So the 50th percentile is the median. NaN for no values."""
    data = [float(v) for v in values]
    if not data:
        return math.nan
    return float(np.percentile(data, q, method="linear"))


def median(values: Iterable[float]) -> float:
    """``percentile(values, 50)``."""
    return percentile(values, 50)
