"""Evaluate: measure answer quality on a gold question set (``assistant eval``).

A gold line is ``{question, expect_any: [phrases], conversation?, answerable?, id?}``.
An answer is right at top-1 when the quoted answer contains one of the phrases
(case-insensitive); hit@3 when the answer or one of the next two citations does; the
reciprocal rank is that of the first citation that does. An abstention offers no answer,
so it is a miss for all three (reciprocal rank 0, however its closest passages rank): MRR
is the mean over every answerable question, abstained ones included. Abstention
precision and recall treat "abstained" as the prediction of "unanswerable".
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import ValidationError

from assistant import metrics
from assistant.errors import InputError
from assistant.models import Answer, EvalItem, EvalReport, GoldQuestion
from assistant.qa.conversation import Conversation
from assistant.qa.pipeline import Answerer


def load_gold(path: Path) -> list[GoldQuestion]:
    if not path.is_file():
        raise InputError(f"the gold file {path} does not exist")
    gold: list[GoldQuestion] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                g = GoldQuestion.model_validate(json.loads(line))
            except (ValueError, ValidationError) as exc:
                raise InputError(f"{path} line {n} is not a gold question "
                                 f"({str(exc).splitlines()[0]})") from exc
            if g.answerable and not g.expect_any:
                raise InputError(f"{path} line {n} is answerable but has no \"expect_any\" "
                                 "(the phrases a right answer contains); add them, or "
                                 "\"answerable\": false for a question the documents do not "
                                 "answer")
            gold.append(g)
    if not gold:
        raise InputError(f"the gold file {path} has no questions")
    return gold


def score_answer(g: GoldQuestion, a: Answer, latency_ms: float, qid: str) -> EvalItem:
    # the quote, then the citations after the answer's own: three texts in all; an
    # abstention offers no answer, so its closest passages are no hit
    texts = [a.answer.text if a.answer else None] + [c.quote for c in a.citations
                                                       if not c.is_answer]
    offered = g.answerable and not a.abstained
    top1 = offered and metrics.hit_at(texts, g.expect_any, 1)
    hit3 = offered and metrics.hit_at(texts, g.expect_any, 3)
    rr = metrics.reciprocal_rank([c.quote for c in a.citations], g.expect_any) if offered else 0.0
    return EvalItem(id=qid, question=g.question, answerable=g.answerable, abstained=a.abstained,
                    correct_top1=top1, hit_at_3=hit3, reciprocal_rank=rr,
                    confidence=a.confidence, answer=a.answer.text if a.answer else None,
                    latency_ms=round(latency_ms, 2))


def evaluate(answerer: Answerer, gold: list[GoldQuestion]) -> EvalReport:
    conversations: dict[str, Conversation] = {}
    items: list[EvalItem] = []
    for n, g in enumerate(gold, start=1):
        conv = conversations.get(g.conversation or "", Conversation(id=g.conversation or ""))
        t = time.perf_counter()
        reply = answerer.ask(g.question, conv, qid=g.id or str(n))
        if g.conversation:
            conversations[g.conversation] = reply.conversation
        a = reply.answer
        items.append(score_answer(g, a, (time.perf_counter() - t) * 1000, g.id or str(n)))
    return report(items)


def report(items: list[EvalItem]) -> EvalReport:
    ans = [i for i in items if i.answerable]
    una = [i for i in items if not i.answerable]
    abstained = [i.abstained for i in items]
    answerable = [i.answerable for i in items]
    precision = metrics.abstention_precision(abstained, answerable)
    recall = metrics.abstention_recall(abstained, answerable)
    lat = [i.latency_ms for i in items]
    return EvalReport(
        questions=len(items), answerable=len(ans), unanswerable=len(una),
        top1_accuracy=_ratio([i.correct_top1 for i in ans]),
        hit_at_3=_ratio([i.hit_at_3 for i in ans]),
        mrr=_ratio([i.reciprocal_rank for i in ans]),
        # Undefined (None), not 100%, with no unanswerable question (or no abstention).
        abstention_precision=None if precision is None else round(precision, 4),
        abstention_recall=None if recall is None else round(recall, 4),
        answerable_abstained_rate=_ratio([i.abstained for i in ans]),
        latency_p50_ms=_latency(lat, 50), latency_p95_ms=_latency(lat, 95),
        items=items)


def _latency(values: list[float], q: float) -> float:
    return round(metrics.percentile(values, q), 2) if values else 0.0


def _ratio(flags: list[bool] | list[float]) -> float:
    """The share, rounded for the report; 1.0 over no question (nothing was missed)."""
    return round(metrics.share(flags), 4) if flags else 1.0


def _percent(value: float | None) -> str:
    return "n/a (no unanswerable questions in the set)" if value is None else f"{value:.1%}"


def report_text(r: EvalReport) -> str:
    rows = [
        ("questions", f"{r.questions} ({r.answerable} answerable, {r.unanswerable} not)"),
        ("top-1 accuracy", f"{r.top1_accuracy:.1%}"),
        ("hit@3", f"{r.hit_at_3:.1%}"),
        ("MRR", f"{r.mrr:.3f}"),
        ("abstention precision", _percent(r.abstention_precision)),
        ("abstention recall", _percent(r.abstention_recall)),
        ("answerable abstained", f"{r.answerable_abstained_rate:.1%}"),
        ("latency p50 / p95", f"{r.latency_p50_ms:.1f} ms / {r.latency_p95_ms:.1f} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    misses = [i for i in r.items if (i.answerable and not i.correct_top1) or
              (not i.answerable and not i.abstained)]
    if misses:
        out.append("")
        out.append("misses:")
        for i in misses:
            got = "abstained" if i.abstained else repr((i.answer or "")[:80])
            out.append(f"  {i.id}: {i.question[:70]!r} -> {got}")
    return "\n".join(out)
