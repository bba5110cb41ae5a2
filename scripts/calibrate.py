"""Fit the answer stage's ranking weights and confidence model on gold question sets.

    python scripts/calibrate.py tests/data/dev_questions.jsonl=INDEX_DIR \
        tests/data/pydoc_questions.jsonl=PYDOC_INDEX_DIR [--write]

1. Ranking: coordinate ascent over ``SCORE_WEIGHTS`` maximising top-1 accuracy (MRR breaks
   ties) over the answerable questions of all sets together, so nothing is tuned to one
   corpus alone.
2. Confidence: logistic regression (L2, gradient descent) of "the top answer is right"
   on the top candidate's features, over all questions (unanswerable ones are negatives).
3. Threshold: the ``abstain_below`` that keeps at most 5% of answerable questions
   abstained while abstaining on as many unanswerable ones as possible.
With ``--write`` the result replaces ``assistant/calibration.py``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from assistant.answer import Analysis, Answerer, forced_abstention, rank
from assistant.calibration import SCORE_WEIGHTS
from assistant.conversation import Conversation
from assistant.evaluate import load_gold
from assistant.models import GoldQuestion
from assistant.settings import Settings
from assistant.store import open_index

Sample = tuple[Analysis, GoldQuestion]


def collect(gold_path: Path, index_dir: Path) -> list[Sample]:
    settings = Settings(index_dir=index_dir)
    answerer = Answerer(open_index(index_dir), settings)
    convs: dict[str, Conversation] = {}
    out: list[Sample] = []
    for g in load_gold(gold_path):
        conv = convs.setdefault(g.conversation, Conversation(id=g.conversation)) \
            if g.conversation else None
        out.append((answerer.analyse(g.question, conv), g))
        answerer.ask(g.question, conv)  # advance the conversation as a user would see it
    return out


def right(text: str, g: GoldQuestion) -> bool:
    return any(p.lower() in text.lower() for p in g.expect_any)


def ranking_quality(samples: list[Sample], w: dict[str, float]) -> tuple[float, float]:
    top1 = mrr = 0.0
    n = 0
    for a, g in samples:
        if not g.answerable:
            continue
        n += 1
        ranked, _ = rank(a, w)
        for r, c in enumerate(ranked[:10], start=1):
            if right(c.text, g):
                mrr += 1 / r
                top1 += r == 1
                break
    return top1 / max(n, 1), mrr / max(n, 1)


def fit_weights(samples: list[Sample]) -> dict[str, float]:
    w = dict(SCORE_WEIGHTS)
    best = ranking_quality(samples, w)
    grid = [0.0, 0.5, 0.8, 0.9, 1.1, 1.25, 2.0]
    for _ in range(3):
        improved = False
        for key, factor in itertools.product(list(w), grid):
            trial = dict(w)
            trial[key] = round(w[key] * factor if w[key] else 0.05 * factor, 4)
            q = ranking_quality(samples, trial)
            if q > best:
                best, w, improved = q, trial, True
        if not improved:
            break
    print(f"ranking: top-1 {best[0]:.1%}, MRR {best[1]:.3f} with {w}")
    return w


def fit_confidence(samples: list[Sample], w: dict[str, float]
                   ) -> tuple[float, list[float], list[tuple[float, bool, bool]]]:
    xs, ys, meta = [], [], []
    for a, g in samples:
        ranked, feats = rank(a, w)
        if feats is None:
            continue
        ok = g.answerable and right(ranked[0].text, g)
        xs.append(feats.vector())
        ys.append(float(ok))
        # abstentions the confidence cannot overrule (nothing relevant; the asked-for kind of
        # answer missing) count as abstained whatever the threshold
        forced, _ = forced_abstention(a.question, ranked[0], feats)
        meta.append((g.answerable, ok, forced))
    x = np.array(xs)
    y = np.array(ys)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mu) / sd
    beta = np.zeros(z.shape[1])
    bias = 0.0
    # Each feature's effect has a known direction (more score, margin, coverage, similarity,
    # right answer type, identifiers present: more likely right; unknown words: less), so
    # the fit is projected onto those signs: a small set cannot then learn a backwards rule.
    sign = np.array([1, 1, 1, 1, 1, 1, -1], dtype=float)
    for _ in range(4000):
        p = 1 / (1 + np.exp(-(z @ beta + bias)))
        grad = z.T @ (p - y) / len(y) + 0.01 * beta
        beta -= 0.5 * grad
        beta = np.where(beta * sign < 0, 0.0, beta)
        bias -= 0.5 * float((p - y).mean())
    weights = (beta / sd).tolist()
    bias = float(bias - (beta * mu / sd).sum())
    probs = 1 / (1 + np.exp(-(x @ np.array(weights) + bias)))
    return bias, weights, [(0.0 if m[2] else float(p), m[0], m[1])
                           for p, m in zip(probs, meta, strict=True)]


def choose_threshold(scored: list[tuple[float, bool, bool]]) -> float:
    answerable = [s for s in scored if s[1]]
    unanswerable = [s for s in scored if not s[1]]
    best_t, best_key = 0.5, (-1.0, -1.0)
    for t in np.linspace(0.02, 0.95, 94):
        abst_ans = sum(p < t for p, _, _ in answerable) / max(len(answerable), 1)
        recall = sum(p < t for p, _, _ in unanswerable) / max(len(unanswerable), 1)
        top1 = sum(ok and p >= t for p, _, ok in answerable) / max(len(answerable), 1)
        if abst_ans > 0.05:
            continue
        key = (recall + top1, -abs(t - 0.5))
        if key > best_key:
            best_key, best_t = key, float(t)
    return round(best_t, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="GOLD.jsonl=INDEX_DIR pairs")
    parser.add_argument("--write", action="store_true", help="rewrite assistant/calibration.py")
    args = parser.parse_args()
    samples: list[Sample] = []
    for pair in args.sets:
        gold, _, index = pair.partition("=")
        samples += collect(Path(gold), Path(index))
    w = fit_weights(samples)
    bias, weights, scored = fit_confidence(samples, w)
    t = choose_threshold(scored)
    brier = sum((p - ok) ** 2 for p, _, ok in scored) / len(scored)
    print(f"confidence: bias {bias:.3f}, weights {[round(v, 3) for v in weights]}, "
          f"Brier {brier:.3f}; abstain below {t}")
    if not args.write:
        return
    target = Path(__file__).resolve().parent.parent / "assistant" / "calibration.py"
    text = target.read_text()
    head = text[: text.index("SCORE_WEIGHTS: dict")]
    body = "SCORE_WEIGHTS: dict[str, float] = {\n" + "".join(
        f'    "{k}": {v!r},\n' for k, v in w.items()) + "}\n\n"
    body += f"CONFIDENCE_BIAS: float = {bias!r}\n"
    body += ("CONFIDENCE_WEIGHTS: list[float] = [\n    " + ", ".join(f"{v:.6g}" for v in weights)
             + ",\n]\n")
    body += f"\nABSTAIN_BELOW: float = {t!r}\n"
    body += f'"""Calibrated default for Settings.abstain_below (Brier score {brier:.3f})."""\n'
    target.write_text(head + body)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
