"""Fit the answer model (ranker and abstainer) on the gold sets, cross-validated by article.

    python scripts/fit.py                 # cross-validate, print the held-out table
    python scripts/fit.py --ablate        # also: each ranking feature, and each family of
                                          # them, left out, held out
    python scripts/fit.py --write         # and write assistant/qa/model.json

Ranker: LightGBM's LambdaRank (gradient-boosted trees optimising NDCG over each question's
candidates) on ``assistant.qa.features.feature_names``, stored as plain arrays in the model
file and walked with numpy at answer time (``assistant.qa.scorer.TreeModel``), so answering
never imports LightGBM. Chosen over a pairwise logistic regression (``--ranker linear``,
kept for comparison) because the evidence interacts: an answer kind matters only for the
sentence that also holds the question's words.

Data: qa-dev (SQuAD articles), the bundled briefing's questions, the Python reference, and
the four folders of briefings in ``../shared`` (briefings-dev; energy, finance and health
from briefings-train). Each set counts at most ``SET_CAP`` questions' worth (``set_weights``),
so that qa-dev's 4,557 questions weigh about as much as one folder of briefings.

Abstainer (``fit_abstainer``): on out-of-fold ranker scores, a logistic model of "the quote
is right" whose isotonic calibration is the confidence shown, and a logistic model of "the
documents answer the question" (answerable against out-of-scope questions) whose threshold
is the highest that abstains on at most ``MAX_ANSWERABLE_ABSTAINED`` of the answerable
questions of every set separately.

Cross-validation: qa-dev and the briefing folders by their own five folds (by article or
document, ``splits.json``); the Python reference by the document holding the answer (hashed
into the same five folds); the bundled briefing (one document) as a sixth fold. Only
held-out figures are printed, per set and per question kind. The shipped model is then
fitted on everything, its abstainer on out-of-fold scores as in every fold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import pickle
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qualitylib import (
    BRIEFING_FOLD,
    BRIEFING_SETS,
    SHARED,
    WORK,
    Sample,
    load_samples,
)

from assistant import metrics
from assistant.encoder import provenance as encoder_provenance
from assistant.metrics import auroc, contains
from assistant.metrics import share as _mean
from assistant.qa import lang
from assistant.qa.abstain import ABSTAIN_FEATURES, Abstainer, features_hash
from assistant.qa.features import feature_names
from assistant.qa.pipeline import order
from assistant.qa.scorer import (
    MODEL_FILE,
    MODEL_FORMAT,
    AbstainerModel,
    AnswerModel,
    LinearModel,
    TreeModel,
)

MAX_ANSWERABLE_ABSTAINED = 0.025
NEGATIVES_PER_QUESTION = 30
C_RANK = 1.0
C_ABSTAIN = 1.0
SEED = 7
TREE_PARAMS = {"objective": "lambdarank", "num_leaves": 15, "learning_rate": 0.05,
               "min_data_in_leaf": 50, "feature_fraction": 0.8, "bagging_fraction": 0.8,
               "bagging_freq": 1, "lambdarank_truncation_level": 10, "verbose": -1,
               "seed": SEED, "num_threads": 2, "deterministic": True}
TREE_ROUNDS = 200
RANKER = "trees"
COVERAGE = True
"""Abstain by a model of "the documents answer it", not by the chance of being right."""
DIVERSITY = 0.3
"""Citation diversity (MMR): 0 lists the best-scored passages, 1 the most varied."""
FEATURES = feature_names(lang.load("en"))
FAMILIES: dict[str, tuple[str, ...]] = {
    "dense similarity": ("dense", "chunk_dense", "dense_gap"),
    "word overlap": ("lexical", "soft", "lexical_gap", "alignment", "rarest"),
    "search ranks": ("bm25", "bm25_score", "passage_rank"),
    "word pairs and proximity": ("phrase", "proximity"),
    "surroundings": ("context", "window", "inherited"),
    "answer kinds": ("kind_held", "kind_missing", "kind:*"),
    "identifiers": ("identifiers", "identifiers_missing"),
    "shape and position": ("novelty", "section_start", "short", "repeat", "asks"),
}
"""Correlated features, ablated together: leaving out one of a family costs little when the
others carry the same signal (``kind:*`` is every per-kind feature)."""


def family_columns(family: Sequence[str], features: Sequence[str] = FEATURES) -> list[int]:
    return [i for i, f in enumerate(features)
            if f in family or ("kind:*" in family and f.startswith("kind:"))]


def family_problems(features: Sequence[str] = FEATURES,
                    families: dict[str, tuple[str, ...]] = FAMILIES) -> list[str]:
    """What keeps ``families`` from splitting ``features`` into disjoint groups: a feature in
    no family or in two, a family member that is no feature."""
    problems = []
    owners: dict[str, list[str]] = {f: [] for f in features}
    for name, members in families.items():
        for i in family_columns(members, features):
            owners[features[i]].append(name)
        problems += [f"{name}: {m} is no feature" for m in members
                     if m != "kind:*" and m not in owners]
    problems += [f"{f} is in no family" for f, o in owners.items() if not o]
    problems += [f"{f} is in {', '.join(o)}" for f, o in owners.items() if len(o) > 1]
    return problems


SET_CAP = 300.0
"""A set counts at most this many questions' worth in every fit: qa-dev's 4,557 questions
weigh as much as about one folder of briefings, so no corpus dominates by its size."""


def set_weights(samples: Sequence[Sample]) -> dict[str, float]:
    """Each set's weight per question: ``min(n, SET_CAP) / n`` over its scored questions."""
    sizes: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.scored:
            sizes[s.set] += 1
    return {k: min(float(n), SET_CAP) / n for k, n in sizes.items()}


def trainable(samples: Sequence[Sample]) -> list[Sample]:
    """What is fitted on: scored questions that have a fold (never conversation turns)."""
    return [s for s in samples if s.scored and s.fold >= 0]


def fit_ranker(train: Sequence[Sample], cols: Sequence[int],
               weights: dict[str, float]) -> TreeModel | LinearModel:
    return (fit_trees(train, cols, weights) if RANKER == "trees"
            else fit_linear(train, cols, weights))


def fit_trees(train: Sequence[Sample], cols: Sequence[int],
              weights: dict[str, float]) -> TreeModel:
    import lightgbm as lgb

    xs, ys, ws, groups = [], [], [], []
    for s in trainable(train):
        if not s.answerable or not s.labels.any() or s.labels.all():
            continue
        xs.append(s.x[:, cols])
        ys.append(s.labels.astype(int))
        # LambdaRank scales each row's gradient by its weight: the question's weight
        ws.append(np.full(len(s.x), weights[s.set]))
        groups.append(len(s.x))
    data = lgb.Dataset(np.concatenate(xs), np.concatenate(ys), weight=np.concatenate(ws),
                       group=groups, free_raw_data=True)
    booster = lgb.train(TREE_PARAMS, data, num_boost_round=TREE_ROUNDS)
    return trees_from_lightgbm(booster.dump_model(), [FEATURES[i] for i in cols])


def trees_from_lightgbm(dump: dict[str, Any], names: list[str]) -> TreeModel:
    """LightGBM's JSON dump as the arrays ``TreeModel`` walks."""
    feature, threshold, left, right, leaf = [], [], [], [], []
    depth = 0
    for info in dump["tree_info"]:
        tree = _Tree()
        root = tree.visit(info["tree_structure"], 0)
        if root < 0:  # a tree that is one leaf: a split that always goes left
            tree.f, tree.t, tree.lo, tree.hi = [0], [float("inf")], [root], [root]
        depth = max(depth, tree.depth)
        feature.append(tree.f)
        threshold.append(tree.t)
        left.append(tree.lo)
        right.append(tree.hi)
        leaf.append(tree.values)
    return TreeModel(features=names, feature=feature, threshold=threshold, left=left,
                     right=right, leaf=leaf, depth=depth)


class _Tree:
    def __init__(self) -> None:
        self.f: list[int] = []
        self.t: list[float] = []
        self.lo: list[int] = []
        self.hi: list[int] = []
        self.values: list[float] = []
        self.depth = 0

    def visit(self, node: dict[str, Any], level: int) -> int:
        """The node's index (a leaf: minus one minus its leaf index), children first."""
        self.depth = max(self.depth, level)
        if "leaf_value" in node:
            self.values.append(float(node["leaf_value"]))
            return -len(self.values)
        if node.get("decision_type", "<=") != "<=":
            raise ValueError(f"unsupported split {node.get('decision_type')}")
        i = len(self.f)
        self.f.append(int(node["split_feature"]))
        self.t.append(float(node["threshold"]))
        self.lo.append(0)
        self.hi.append(0)
        self.lo[i] = self.visit(node["left_child"], level + 1)
        self.hi[i] = self.visit(node["right_child"], level + 1)
        return i


def fit_linear(train: Sequence[Sample], cols: Sequence[int],
               set_weight: dict[str, float]) -> LinearModel:
    rng = np.random.default_rng(SEED)
    train = trainable(train)
    rows = np.concatenate([s.x[:, cols] for s in train if len(s.x)])
    mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-6
    diffs, weights = [], []
    for s in train:
        if not s.answerable or not s.labels.any() or s.labels.all():
            continue
        z = (s.x[:, cols] - mean) / scale
        pos, neg = z[s.labels], z[~s.labels]
        if len(neg) > NEGATIVES_PER_QUESTION:
            neg = neg[rng.choice(len(neg), NEGATIVES_PER_QUESTION, replace=False)]
        d = (pos[:, None, :] - neg[None, :, :]).reshape(-1, len(cols))
        diffs.append(d)
        weights.append(np.full(len(d), set_weight[s.set] / len(d)))
    x = np.concatenate(diffs)
    w = np.concatenate(weights)
    x = np.concatenate([x, -x])  # both orders: no intercept needed, labels balanced
    y = np.concatenate([np.ones(len(w)), np.zeros(len(w))])
    w = np.concatenate([w, w])
    lr = LogisticRegression(C=C_RANK, fit_intercept=False, max_iter=2000)
    lr.fit(x, y, sample_weight=w * len(w) / w.sum())
    return LinearModel(features=[FEATURES[i] for i in cols], weights=lr.coef_[0].tolist(),
                       mean=mean.tolist(), scale=scale.tolist())


def key(s: Sample) -> tuple[str, str]:
    return (s.set, s.qid)


def ranking(s: Sample, model: TreeModel | LinearModel) -> tuple[list[int], np.ndarray]:
    """Candidate indices best first (before duplicates are collapsed), and the scores."""
    if not len(s.x):
        return [], np.zeros(0)
    scores = model.apply(s.x[:, model.columns(FEATURES)])
    return list(np.argsort(-scores, kind="stable")), scores


def ranking_top1(samples: Sequence[Sample], model: TreeModel | LinearModel
                 ) -> dict[str, float]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for s in samples:
        if s.answerable and s.scored:
            idx, _ = ranking(s, model)
            hits[s.set].append(bool(idx) and bool(s.labels[idx[0]]))
    return {k: float(np.mean(v)) for k, v in hits.items()}


Scores = dict[tuple[str, str], np.ndarray]


def abstention_rows(samples: Sequence[Sample], scores: Scores
                    ) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s in samples:
        r = order(s.analysis, s.cands, scores[key(s)])
        xs.append(r.abstention)
        ys.append(bool(r.candidates) and s.answerable and contains(r.candidates[0].text,
                                                                   s.expect))
    return np.array(xs), np.array(ys)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> LinearModel:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    lr = LogisticRegression(C=C_ABSTAIN, max_iter=2000)
    lr.fit((x - mean) / scale, y, sample_weight=w * len(w) / w.sum())
    return LinearModel(features=list(ABSTAIN_FEATURES), weights=lr.coef_[0].tolist(),
                       mean=mean.tolist(), scale=scale.tolist(), bias=float(lr.intercept_[0]))


def fit_abstainer(train: Sequence[Sample], scores: Scores, weights: dict[str, float]
                  ) -> AbstainerModel:
    """On out-of-fold scores, two logistic models over the same evidence: of "the quoted
    answer is right", calibrated (isotonic, so that a confidence of 0.8 is right four times
    in five), and of "the documents answer the question" (answerable against out-of-scope
    questions), whose threshold is the highest that abstains on at most
    ``MAX_ANSWERABLE_ABSTAINED`` of the answerable questions of every training set
    separately (a pooled threshold hides the set it fails)."""
    from sklearn.isotonic import IsotonicRegression

    fitted = trainable(train)
    x, y = abstention_rows(fitted, scores)
    w = np.array([weights[s.set] for s in fitted])
    right = fit_logistic(x, y, w)
    model = AbstainerModel(**right.model_dump(), threshold=0.0)
    ab = Abstainer(model)
    probs = np.array([ab.probability(row) for row in x])
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(probs, y.astype(float), sample_weight=w)
    model.calibration = [[float(a), float(b)] for a, b in
                         zip(iso.X_thresholds_, iso.y_thresholds_, strict=True)]
    if COVERAGE:
        answerable = np.array([s.answerable for s in fitted])
        model.coverage = fit_logistic(x, answerable, w)
        ab = Abstainer(model)
    model.threshold = choose_threshold(np.array([ab.covered(row) for row in x]), fitted)
    return model


def choose_threshold(probs: np.ndarray, samples: Sequence[Sample]) -> float:
    """The highest threshold that abstains on at most ``MAX_ANSWERABLE_ABSTAINED`` of each
    set's answerable questions."""
    by_set: dict[str, list[float]] = defaultdict(list)
    for p, s in zip(probs, samples, strict=True):
        if s.answerable:
            by_set[s.set].append(float(p))
    return (metrics.threshold_for_every_group(by_set, MAX_ANSWERABLE_ABSTAINED) if by_set
            else 0.5)


def evaluate(s: Sample, scores: np.ndarray, abstainer: AbstainerModel,
             diversity: float) -> dict[str, Any]:
    assert s.answerer is not None
    s.answerer.model.citation_diversity = diversity
    r = order(s.analysis, s.cands, scores)
    a = s.answerer.reply(r, s.conversation, abstainer=Abstainer(abstainer), top_k=5).answer
    quote = a.answer.text if a.answer else None
    texts = [quote] + [c.quote for c in a.citations[1:3]]
    rank_texts = [c.text for c in r.candidates[:3]]
    answered = a.answer is not None
    shown = " ".join([quote or "", *(c.quote for c in a.citations)]).lower()
    return {"set": s.set, "qid": s.qid, "kind": s.kind or "all", "subtype": s.subtype,
            "answerable": s.answerable, "p": a.confidence, "outcome": a.outcome,
            "question": s.question, "quote": quote or (a.citations[0].quote if a.citations
                                                       else None),
            "abstained": a.abstained,
            "top1": s.answerable and answered and contains(quote, s.expect),
            "hit3": s.answerable and answered and any(contains(t, s.expect) for t in texts),
            "rank_top1": s.answerable and bool(rank_texts) and contains(rank_texts[0], s.expect),
            "rank_hit3": s.answerable and any(contains(t, s.expect) for t in rank_texts),
            "list_complete": bool(s.expect_all) and answered
            and all(item.lower() in shown for item in s.expect_all),
            "doc_recall5": bool(s.docs & {c.doc_id for c in a.citations[:5]}) if s.docs
            else None}


def folds_of(samples: Sequence[Sample]) -> list[int]:
    return sorted({s.fold for s in samples if s.fold >= 0})


def fold_scores(samples: Sequence[Sample], cols: Sequence[int]) -> dict[int, Scores]:
    """For each fold, every question's candidate scores from the ranker fitted on the other
    folds. A fold's held-out figures use its own; its abstainer is fitted on the other
    folds' (each from a ranker that never saw that question, though it saw the fold under
    test: a nested split would fit six times as many rankers for the same abstainer).
    Cached under build/quality/ by what they depend on (the samples, the feature columns
    and the ranker's settings), so that the abstainer can be studied without refitting."""
    h = hashlib.sha256(json.dumps([list(cols), RANKER, TREE_PARAMS, TREE_ROUNDS, C_RANK,
                                   SET_CAP, NEGATIVES_PER_QUESTION, FEATURES]).encode())
    for s in samples:
        h.update(f"{s.set}/{s.qid}/{s.fold}/{len(s.cands)}/".encode())
        if s.cands:
            h.update(np.ascontiguousarray(s.x[0]).tobytes())
    path = WORK / f"scores-{h.hexdigest()[:16]}.pkl"
    if path.is_file():
        cached: dict[int, Scores] = pickle.loads(path.read_bytes())
        return cached
    weights = set_weights(samples)
    out: dict[int, Scores] = {}
    for fold in folds_of(samples):
        ranker = fit_ranker([s for s in samples if s.fold != fold], cols, weights)
        out[fold] = {key(s): ranking(s, ranker)[1] for s in samples if s.fold == fold}
        print(f"fold {fold}: ranker fitted", file=sys.stderr)
    path.write_bytes(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def cross_validate(samples: Sequence[Sample], cols: Sequence[int], diversity: float,
                   full: bool = True) -> list[dict[str, Any]]:
    """Held-out results: for each fold, the ranker and the abstainer fitted on the others
    (the abstainer on the others' held-out scores, ``fold_scores``), then every question of
    the fold answered; conversation turns are asked but not reported."""
    weights = set_weights(samples)
    results: list[dict[str, Any]] = []
    if not full:
        for fold in folds_of(samples):
            train = [s for s in samples if s.fold != fold]
            test = [s for s in samples if s.fold == fold and s.scored]
            top1 = ranking_top1(test, fit_ranker(train, cols, weights))
            results += [{"set": k, "fold": fold, "rank_top1_mean": v,
                         "n": sum(t.set == k and t.answerable for t in test)}
                        for k, v in top1.items()]
        return results
    scores = fold_scores(samples, cols)
    for fold, held in scores.items():
        train = [s for s in samples if s.fold != fold]
        others = {k: v for f, sc in scores.items() if f != fold for k, v in sc.items()}
        abstainer = fit_abstainer(train, others, weights)
        results += [{**evaluate(s, held[key(s)], abstainer, diversity), "fold": fold}
                    for s in samples if s.fold == fold and s.scored]
    return results


def calibration_error(rs: Sequence[dict[str, Any]], bins: int = 10) -> float:
    """Expected calibration error of the confidence shown with answers and best guesses
    (right = the quote holds a gold phrase): the mean gap between confidence and accuracy
    over equal-width bins, weighted by their share of the answers."""
    shown = [r for r in rs if r["outcome"] != "not_covered"]
    return metrics.expected_calibration_error([float(r["p"]) for r in shown],
                                              [bool(r["top1"]) for r in shown], bins)


def reliability(rs: Sequence[dict[str, Any]], edges: Sequence[float] = (0.0, 0.2, 0.4, 0.6,
                                                                         0.8, 0.9, 1.01)
                ) -> list[tuple[str, int, float, float]]:
    """(confidence band, answers shown, mean confidence, share right) per band."""
    shown = [r for r in rs if r["outcome"] != "not_covered"]
    return [(b.band, b.count, b.confidence, b.accuracy) for b in metrics.reliability_bins(
        [float(r["p"]) for r in shown], [bool(r["top1"]) for r in shown], edges)]


def summary(rs: Sequence[dict[str, Any]]) -> dict[str, float]:
    ans = [r for r in rs if r["answerable"]]
    una = [r for r in rs if not r["answerable"]]
    lists = [r for r in ans if r["kind"] == "list"]
    return {
        "n": float(len(rs)),
        "top1": _mean([r["top1"] for r in ans]), "hit3": _mean([r["hit3"] for r in ans]),
        "rank_top1": _mean([r["rank_top1"] for r in ans]),
        "rank_hit3": _mean([r["rank_hit3"] for r in ans]),
        "answerable_abstained": _mean([r["abstained"] for r in ans]),
        "best_guess": _mean([r["outcome"] == "best_guess" for r in rs]),
        "unanswerable_abstained": _mean([r["abstained"] for r in una]),
        "list_complete": _mean([r["list_complete"] for r in lists]),
        "auroc_correct": auroc([float(r["p"]) for r in rs], [bool(r["top1"]) for r in rs]),
        "ece": calibration_error(rs),
        "ece_noise": metrics.calibration_noise(
            [float(r["p"]) for r in rs if r["outcome"] != "not_covered"])[1],
    }


def table(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per set: ``all`` and each kind (an out-of-scope question by its subtype, a follow-up
    split by whether it switches topic)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in sorted({str(r["set"]) for r in results}):
        rs = [r for r in results if r["set"] == name]
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            if r["kind"] == "all":
                continue
            groups[r["kind"]].append(r)
            if r["subtype"]:
                groups[f"{r['kind']}:{r['subtype']}"].append(r)
        out[name] = {"all": summary(rs), **{k: summary(v) for k, v in sorted(groups.items())}}
    return out


COLUMNS = ["n", "top1", "hit3", "rank_top1", "rank_hit3", "answerable_abstained",
           "unanswerable_abstained", "best_guess", "list_complete", "auroc_correct", "ece",
           "ece_noise"]


def print_table(t: dict[str, dict[str, dict[str, float]]], title: str) -> None:
    print(f"\n{title}")
    print("set / kind".ljust(36) + "".join(c[:11].rjust(12) for c in COLUMNS))
    for name, kinds in t.items():
        for kind, row in kinds.items():
            cells = ["—" if c not in row or row[c] != row[c]
                     else f"{row[c]:.0f}" if c == "n" else f"{row[c]:.3f}" for c in COLUMNS]
            print(f"{name} / {kind}"[:35].ljust(36) + "".join(x.rjust(12) for x in cells))


def print_reliability(results: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    print("\nreliability (held out): confidence band, answers shown, mean confidence, right")
    for name in sorted({str(r["set"]) for r in results}):
        rows = reliability([r for r in results if r["set"] == name])
        out[name] = rows
        print(name + ": " + "; ".join(f"{b} n={n} conf={c:.2f} right={a:.2f}"
                                      for b, n, c, a in rows))
    return out


DOCS = Path(__file__).resolve().parents[1] / "docs" / "answer-quality.md"
README = Path(__file__).resolve().parents[1] / "README.md"
README_BLOCK = ("<!-- reliability: generated by scripts/fit.py --write -->",
                "<!-- end of reliability -->")
PERCENT = {"top1", "hit3", "rank_top1", "rank_hit3", "answerable_abstained",
           "unanswerable_abstained", "best_guess", "list_complete"}
HEADS = {"n": "questions", "top1": "top-1", "hit3": "hit@3", "rank_top1": "ranking top-1",
         "rank_hit3": "ranking hit@3", "answerable_abstained": "answerable refused",
         "unanswerable_abstained": "out-of-scope refused", "best_guess": "shown as best guess",
         "list_complete": "list complete", "auroc_correct": "AUROC right/wrong",
         "ece": "calibration error", "ece_noise": "calibration error by chance"}


def _cell(column: str, value: float | None) -> str:
    if value is None or value != value:
        return "—"
    if column == "n":
        return f"{value:.0f}"
    return f"{100 * value:.1f}%" if column in PERCENT else f"{value:.3f}"


def reliability_markdown(curves: dict[str, list[Any]]) -> str:
    """Per corpus: of the answers shown in each confidence band, how many were right."""
    bands = sorted({b for rows in curves.values() for b, *_ in rows})
    lines = ["| corpus | " + " | ".join(f"shown at {b}" for b in bands) + " |",
             "| --- |" + " --- |" * len(bands)]
    for name, rows in curves.items():
        by = {b: (n, c, a) for b, n, c, a in rows}
        cells = [f"{100 * by[b][2]:.0f}% right of {by[b][0]} (mean {100 * by[b][1]:.0f}%)"
                 if b in by else "—" for b in bands]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_docs(held: dict[str, dict[str, dict[str, float]]],
               curves: dict[str, list[Any]]) -> None:
    """docs/answer-quality.md (every held-out figure, per corpus and kind) and the README's
    reliability table, from this run: figures are never typed in by hand."""
    tuned = ", ".join(str(t) for t in encoder_provenance()["trained_on"])  # type: ignore[attr-defined]
    lines = ["# Answer quality, held out", "",
             f"Generated by `scripts/fit.py --write` on {dt.date.today().isoformat()}; do not "
             "edit. Every figure comes from questions whose document (or article) the model "
             "was not fitted on: five folds by document on each corpus, the bundled briefing "
             "as a sixth fold of its own. Nor was the encoder tuned on the corpus: the shipped "
             f"one is tuned on {tuned}, and each of those is measured with an encoder tuned "
             "on the others only (`assistant/encoder/provenance.json`). A best guess counts "
             "as an answer everywhere: right "
             "or wrong for top-1, answered for an out-of-scope question. Top-1: the quote "
             "holds a gold answer; hit@3: the quote or the next two citations do; ranking "
             "columns ignore abstention; list complete: every item of a list question is in "
             "the answer or its citations; calibration error: the expected calibration error "
             "of the confidence shown (ten bins); calibration error by chance: the 90th "
             "percentile of the calibration error a perfectly calibrated model would show on "
             "the same confidences by chance (each answer drawn right with its confidence as "
             "the chance): a calibration error under it is indistinguishable from perfect on "
             "that many questions.", "",
             "| corpus / kind | " + " | ".join(HEADS[c] for c in COLUMNS) + " |",
             "| --- |" + " ---: |" * len(COLUMNS)]
    for name, kinds in held.items():
        for kind, row in kinds.items():
            label = name if kind == "all" else f"{name} / {kind.replace('_', ' ')}"
            lines.append(f"| {label} | " + " | ".join(_cell(c, row.get(c)) for c in COLUMNS)
                         + " |")
    lines += ["", "## Reliability of the confidence shown", "",
              "Of the answers and best guesses shown in each band of confidence, the share "
              "that was right.", "", reliability_markdown(curves), ""]
    DOCS.write_text("\n".join(lines), encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    begin, end = README_BLOCK
    if begin in readme and end in readme:
        head, rest = readme.split(begin, 1)
        README.write_text(head + begin + "\n" + reliability_markdown(curves) + "\n"
                          + end + rest.split(end, 1)[1], encoding="utf-8")


def ablate(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """Held-out ranking top-1 per set with each feature left out, against all features."""
    all_cols = list(range(len(FEATURES)))

    def run(cols: Sequence[int]) -> dict[str, float]:
        res = cross_validate(samples, cols, 0.0, full=False)
        out: dict[str, float] = {}
        for name in {str(r["set"]) for r in res}:
            rs = [r for r in res if r["set"] == name]
            n = sum(int(r["n"]) for r in rs)
            out[name] = sum(float(r["rank_top1_mean"]) * int(r["n"])
                            for r in rs) / max(n, 1)
        return out

    if problems := family_problems():  # before half an hour of fitting, not after
        raise SystemExit("fit.py: FAMILIES: " + "; ".join(problems))
    kinds = family_columns(("kind:*",))  # the per-kind features are one group
    groups = {**{FEATURES[i]: [i] for i in all_cols if i not in kinds}, "kind:*": kinds}
    families = {f"family: {name}": family_columns(members)
                for name, members in FAMILIES.items()}
    base = run(all_cols)
    report = {"(all features)": base}
    print("\nablation: held-out ranking top-1 without each feature (change in points)")
    print("feature".ljust(30) + "".join(k.rjust(12) for k in sorted(base)))
    print("(all)".ljust(30) + "".join(f"{base[k]:.3f}".rjust(12) for k in sorted(base)))
    for name, drop in {**groups, **families}.items():
        r = run([c for c in all_cols if c not in drop])
        report[name] = r
        print(name[:30].ljust(30) + "".join(f"{100 * (base[k] - r[k]):+.1f}".rjust(12)
                                            for k in sorted(base)))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ablate", action="store_true")
    parser.add_argument("--write", action="store_true", help="write assistant/qa/model.json")
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--drop", nargs="*", default=[], help="features to leave out")
    parser.add_argument("--drop-family", nargs="*", default=[], choices=sorted(FAMILIES),
                        help="families of features to leave out")
    parser.add_argument("--diversity", type=float, default=DIVERSITY)
    parser.add_argument("--ranker", choices=["trees", "linear"], default="trees")
    parser.add_argument("--no-coverage", action="store_true",
                        help="abstain by the chance of being right (no coverage model)")
    parser.add_argument("--json", type=Path, help="also write the held-out results here")
    args = parser.parse_args()
    global RANKER, COVERAGE
    RANKER = args.ranker
    COVERAGE = not args.no_coverage
    samples = load_samples(args.sets)
    dropped = set(args.drop) | {FEATURES[i] for name in args.drop_family
                                for i in family_columns(FAMILIES[name])}
    cols = [i for i, f in enumerate(FEATURES) if f not in dropped]
    results = cross_validate(samples, cols, args.diversity)
    held = table(results)
    print_table(held, "held-out figures (cross-validated by document), per set and kind")
    curves = print_reliability(results)
    if args.json:
        args.json.write_text(json.dumps({"table": held, "reliability": curves,
                                         "results": results}, default=str), encoding="utf-8")
    ablation = ablate(samples) if args.ablate else None
    if not args.write:
        return
    write_docs(held, curves)
    weights = set_weights(samples)
    ranker = fit_ranker(samples, cols, weights)
    # every question's held-out scores are its out-of-fold scores over all the sets
    held_out = {k: v for held in fold_scores(samples, cols).values() for k, v in held.items()}
    abstainer = fit_abstainer(samples, held_out, weights)
    model = AnswerModel(format=MODEL_FORMAT, features_hash=features_hash(lang.load("en")),
                        ranker=ranker, abstainer=abstainer, citation_diversity=args.diversity,
                        provenance={
        "fitted": dt.date.today().isoformat(),
        "script": "scripts/fit.py",
        "data": {"qa-dev": "../shared/qa-dev (SQuAD v1.1 dev, 13 articles, CC BY-SA 4.0)",
                 **{name: f"../shared/{d.relative_to(SHARED)}"
                    for name, d in BRIEFING_SETS.items()},
                 "briefing": "tests/data/dev_questions.jsonl",
                 "pydoc": "tests/data/pydoc_questions.jsonl"},
        "split": "qa-dev and the briefing folders: their own splits.json (5 folds by article "
                 "or document); pydoc: by answer document, hashed into the same folds; the "
                 f"bundled briefing: fold {BRIEFING_FOLD} alone",
        "weights": f"each set counts at most {SET_CAP:.0f} questions' worth",
        "encoder": {"shipped": "assistant/encoder (weights sha256 "
                               f"{encoder_provenance()['weights_sha256']})",
                    "held_out": "each set the shipped encoder was tuned on: evidence from an "
                                "encoder tuned on the other sets only (build/encoders/)"},
        "threshold": f"highest probability abstaining on <= {MAX_ANSWERABLE_ABSTAINED:.0%} of "
                     "the answerable questions of every set, on out-of-fold ranker scores",
        "held_out": {name: kinds["all"] for name, kinds in held.items()},
        "ablation_rank_top1": ablation,
        "ranker": {"kind": args.ranker, "params": TREE_PARAMS, "rounds": TREE_ROUNDS}
        if args.ranker == "trees" else {"kind": "linear", "C": C_RANK}})
    MODEL_FILE.write_text(model.model_dump_json(indent=1) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
