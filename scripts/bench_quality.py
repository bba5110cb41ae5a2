"""Answer quality against the peers, in one run, on the same corpora and questions.

    python scripts/bench_quality.py [--sets qa-dev briefing pydoc] [--no-peers]

For the assistant: held-out figures, cross-validated by article/document exactly as
``scripts/fit.py`` fits (every question answered by a model that never saw its article),
and the warm answer latency of the shipped model. For the peers (``.bench-venv``, made by
``scripts/setup-bench``): txtai hybrid search, plain MiniLM dense top sentence and BM25
(bm25s), over the same sentences, their abstention thresholds chosen by the same folds
(``scripts/bench_peers_quality.py``). Prints one table per set, then the ratios of our
top-1 against each peer's, and the JSON of everything on the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_peers_quality as peers
import fit
from qualitylib import Sample, gold_sets, load_samples

COLUMNS = ["top1", "hit3", "rank_top1", "rank_hit3", "answerable_abstained",
           "unanswerable_abstained", "latency_p50_ms"]


def our_latency(samples: list[Sample], name: str, n: int = 200) -> float:
    """Warm p50 of Answerer.ask (embed, retrieve, rank, quote, cite) over the set's first
    questions, asked as they stand."""
    chosen = [s for s in samples if s.set == name][:n]
    if not chosen or chosen[0].answerer is None:
        return float("nan")
    answerer = chosen[0].answerer  # opened with the shipped model
    for s in chosen[:5]:
        answerer.ask(s.question)
    times = []
    for s in chosen:
        t = time.perf_counter()
        answerer.ask(s.question)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=[g.name for g in gold_sets()])
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    samples = load_samples(args.sets)
    cols = list(range(len(fit.FEATURES)))
    by_kind = fit.table(fit.cross_validate(samples, cols, fit.DIVERSITY))
    fit.print_table(by_kind, "assistant, held out, per set and kind")
    ours = {name: dict(kinds["all"]) for name, kinds in by_kind.items()}
    for name in ours:
        ours[name]["latency_p50_ms"] = our_latency(samples, name)
    report: dict[str, Any] = {"assistant": ours}
    if not args.no_peers:
        report.update(peers.run_in_bench_venv(sets=args.sets))
        for by_set in report.values():  # the peers name it by what it measures
            for row in by_set.values():
                row.setdefault("unanswerable_abstained", row.get("abstention_recall"))
    for name in args.sets:
        print(f"\n{name} (held out; peers' thresholds by the same folds)")
        print("system".ljust(11) + "".join(c[:12].rjust(13) for c in COLUMNS))
        for system, by_set in report.items():
            row = by_set.get(name, {})
            cells = [(f"{row[c]:.3f}" if isinstance(row.get(c), float) else "—") for c in COLUMNS]
            print(system.ljust(11) + "".join(x.rjust(13) for x in cells))
        for system, by_set in report.items():
            if system == "assistant" or name not in by_set:
                continue
            theirs = by_set[name].get("top1") or float("nan")
            print(f"  top-1 ours / {system}: {ours[name]['top1'] / theirs:.2f}x "
                  f"({100 * (ours[name]['top1'] - theirs):+.1f} points)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
