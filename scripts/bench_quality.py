"""Answer quality against the peers, in one run, per corpus and per question kind.

    scripts/setup-bench                                   # once: the peers in .bench-venv
    .venv/bin/python scripts/bench.py quality             # every corpus scripts/fit.py fits
    .venv/bin/python scripts/bench.py quality --sets briefings-dev

The corpora are scripts/fit.py's (``qualitylib.gold_sets``): qa-dev, the bundled briefing,
the Python reference, and the folders of briefings briefings-dev, energy, finance and health
(read from ``../shared`` at run time, never copied).

For the assistant: held-out figures, cross-validated by document exactly as scripts/fit.py
fits (every question answered by a model fitted on folds that hold neither its document
nor, for the bundled briefing, its corpus), and the warm answer latency of the shipped
model. For the peers (``.bench-venv``, made by ``scripts/setup-bench``; their half is
``scripts/bench_peers_quality.py``): txtai hybrid search, plain MiniLM dense top sentence and
BM25 (bm25s), over the same sentences and the same scored questions. A peer abstains when
its top score is below a threshold chosen by the assistant's folds and rule: for a question
in fold f, the highest threshold that refuses at most ``fit.MAX_ANSWERABLE_ABSTAINED`` of
the answerable questions of every corpus separately, among the questions of the other folds
(``assistant.metrics.threshold_for_every_group``). Peers ask every question as it stands:
they have no conversation.

Prints a table per corpus and kind (top-1, hit@3, answerable questions refused, out-of-scope
questions refused: the assistant beside each peer), then one per corpus with every system's
figures over all its questions, its warm latency, and the ratio of our top-1 to each peer's.
Writes docs/bench/quality.json.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_peers_quality as peers
import benchlib as bl
import fit
from qualitylib import WORK, Sample, gold_sets, load_samples

from assistant import metrics

KindTable = dict[str, dict[str, dict[str, float]]]
"""corpus -> kind (``all`` first) -> figure -> value, as ``fit.table`` gives."""
PER_KIND = (("top1", "top-1"), ("hit3", "hit@3"), ("answerable_abstained", "answerable refused"),
            ("unanswerable_abstained", "out-of-scope refused"))
"""The figures of the per-kind tables, each with a column per system."""
PEER_BLANK = ("ece", "best_guess")
"""Figures that mean nothing for a peer: its score is no probability, it has no best guess."""


def our_latency(samples: list[Sample], name: str, n: int = 200) -> float:
    """Warm p50 of Answerer.ask (embed, retrieve, rank, quote, cite) over the set's first
    questions, asked as they stand."""
    chosen = [s for s in samples if s.set == name][:n]
    if not chosen or chosen[0].answerer is None:
        return math.nan
    answerer = chosen[0].answerer  # opened with the shipped model
    for s in chosen[:5]:
        answerer.ask(s.question)
    times = []
    for s in chosen:
        t = time.perf_counter()
        answerer.ask(s.question)
        times.append((time.perf_counter() - t) * 1000)
    return metrics.median(times)


def scored(samples: list[Sample]) -> list[Sample]:
    """The questions every system is scored on: the assistant's held-out ones."""
    return [s for s in samples if s.scored and s.fold >= 0]


def peer_job(samples: list[Sample], names: list[str], systems: list[str]) -> dict[str, Any]:
    by_set: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scored(samples):
        by_set[s.set].append({"qid": s.qid, "question": s.question, "expect": s.expect,
                              "expect_all": s.expect_all})
    sets = {gs.name: gs for gs in gold_sets(names)}
    return {"peers": systems,
            "sets": {name: {"index": str(sets[name].index), "sentences": str(sets[name].sentences),
                            "questions": qs} for name, qs in by_set.items()}}


def peer_results(samples: list[Sample], answers: dict[str, list[dict[str, Any]]]
                 ) -> list[dict[str, Any]]:
    """One peer's answers as scripts/fit.py's result rows, each question abstaining below the
    threshold chosen on the other folds (see the module's docstring)."""
    by_key = {(s.set, s.qid): s for s in scored(samples)}
    rows = [(by_key[(name, str(a["qid"]))], a) for name, got in answers.items() for a in got]
    thresholds = {}
    for fold in {s.fold for s, _ in rows}:
        train: dict[str, list[float]] = defaultdict(list)
        for s, a in rows:
            if s.fold != fold and s.answerable:
                train[s.set].append(float(a["score"]))
        thresholds[fold] = metrics.threshold_for_every_group(train, fit.MAX_ANSWERABLE_ABSTAINED)
    out = []
    for s, a in rows:
        abstained = float(a["score"]) < thresholds[s.fold]
        answered = not abstained
        out.append({"set": s.set, "qid": s.qid, "kind": s.kind or "all", "subtype": s.subtype,
                    "answerable": s.answerable, "p": float(a["score"]),
                    "outcome": "not_covered" if abstained else "answer",
                    "abstained": abstained, "fold": s.fold, "seconds": float(a["seconds"]),
                    "top1": s.answerable and answered and bool(a["rank_top1"]),
                    "hit3": s.answerable and answered and bool(a["rank_hit3"]),
                    "rank_top1": s.answerable and bool(a["rank_top1"]),
                    "rank_hit3": s.answerable and bool(a["rank_hit3"]),
                    "list_complete": answered and bool(a["rank_list"])})
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}"


def kind_tables(systems: dict[str, KindTable]) -> list[bl.Table]:
    """Per corpus: a row per kind, for each figure a column per system (percentages)."""
    names = list(systems)
    ours = systems["assistant"]
    out = []
    for corpus, kinds in ours.items():
        header = ["kind", "questions"] + [f"{label}: {system}" for _, label in PER_KIND
                                          for system in names]
        t = bl.Table(*header, title=f"{corpus}: held out, per kind (%; peers' thresholds by "
                                    "the same folds)")
        for kind, row in kinds.items():
            cells: list[object] = [kind.replace("_", " "), f"{row['n']:.0f}"]
            for key, _ in PER_KIND:
                cells += [_pct(systems[s].get(corpus, {}).get(kind, {}).get(key)) for s in names]
            t.add(*cells)
        out.append(t)
    return out


def summary_table(systems: dict[str, KindTable], latency: dict[str, dict[str, float]]) -> bl.Table:
    """Per corpus and system, over all its questions, with our top-1 against each peer's."""
    t = bl.Table("corpus", "system", "top-1 %", "hit@3 %", "answerable refused %",
                 "out-of-scope refused %", "AUROC right/wrong", "calibration error", "p50 ms",
                 "top-1 ours / theirs",
                 title="per corpus, all questions, held out (ratio above 1: ours better)")
    ours = systems["assistant"]
    for corpus in ours:
        for system, table in systems.items():
            row = table.get(corpus, {}).get("all")
            if row is None:
                continue
            t.add(corpus, system, _pct(row["top1"]), _pct(row["hit3"]),
                  _pct(row["answerable_abstained"]), _pct(row["unanswerable_abstained"]),
                  row["auroc_correct"], row["ece"], latency[system].get(corpus, math.nan),
                  "" if system == "assistant"
                  else bl.times_better(ours[corpus]["all"]["top1"], row["top1"]))
    return t


def main(sets: list[str] | None = None, with_peers: bool = True, out: Path | None = None
         ) -> None:
    names = sets or [g.name for g in gold_sets()]
    samples = load_samples(names)
    cols = list(range(len(fit.FEATURES)))
    systems: dict[str, KindTable] = {
        "assistant": fit.table(fit.cross_validate(samples, cols, fit.DIVERSITY))}
    latency: dict[str, dict[str, float]] = {
        "assistant": {name: our_latency(samples, name) for name in systems["assistant"]}}
    if with_peers:
        answers = peers.run_in_bench_venv(peer_job(samples, names, list(peers.PEERS)), WORK)
        for system, by_set in answers.items():
            results = peer_results(samples, by_set)
            table = fit.table(results)
            for kinds in table.values():
                for row in kinds.values():
                    row.update({k: math.nan for k in PEER_BLANK})
            systems[system] = table
            latency[system] = {name: 1000 * metrics.median(r["seconds"] for r in results
                                                           if r["set"] == name)
                               for name in table}
    tables = [*kind_tables(systems), summary_table(systems, latency)]
    everything = [g.name for g in gold_sets()]
    note = ("The assistant's held-out figures come from models fitted, fold by fold, on the "
            f"corpora of this run ({', '.join(names)})"
            + ("." if sorted(names) == sorted(everything) else
               f", not on all that scripts/fit.py fits ({', '.join(everything)}).")
            + f" Load average at the end: {os.getloadavg()[0]:.1f} (latency is warm, per "
            "question, on the same machine in the same run).")
    bl.save_results("quality", {"systems": systems, "latency_p50_ms": latency,
                                "max_answerable_abstained": fit.MAX_ANSWERABLE_ABSTAINED},
                    tables, out, note=note)
