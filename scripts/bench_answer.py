"""Answer speed on the bundled briefing: warm latency, batch throughput, cold start — vs txtai.

    scripts/setup-bench                         # once: txtai in .bench-venv
    .venv/bin/python scripts/bench.py answer    # minutes

Ours (targets from Issue 3):
* warm latency p50 / p95 of ``Answerer.ask`` (embed, retrieve, rank, cite) over the dev
  questions (tests/data/dev_questions.jsonl, else a built-in list), in fresh processes,
  several rounds each — target p50 <= 30 ms;
* batch throughput: ``assistant batch FILE`` end to end (process start included) on the
  questions repeated to ``--batch-lines`` lines, and in-process — target >= 30 questions/s;
* cold start: ``assistant ask "..."`` from process start to printed answer, median of
  ``--cold-runs`` — target <= 2 s.

txtai, in .bench-venv, on the same chunk texts with the same model (hybrid: dense + BM25,
content stored): search latency (retrieval only: txtai has no answer stage), batchsearch
throughput, and cold start (process start, import, load the index, first query).
Writes docs/bench/answer.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from assistant import metrics

TXTAI_CONFIG = {"content": True, "hybrid": True}
CORPUS = bl.ROOT / "corpus"


@dataclass(frozen=True)
class Options:
    """``scripts/bench.py answer``'s options (its ``--help`` says what each does)."""

    corpus: Path = CORPUS
    probes: int = 3
    rounds: int = 5
    cold_runs: int = 5
    batch_lines: int = 300
    workdir: Path | None = None
    out: Path | None = None


def main(args: Options) -> None:
    os.environ.update(bl.bench_env())
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-answer-"))
    index = work / "index"
    questions = bl.questions_for_briefing()
    res: dict[str, Any] = {"load_average_start": os.getloadavg(), "questions": len(questions)}

    _, summary = bl.our_build(args.corpus, index, full=True)
    res["chunks"] = summary["chunk_count"]
    print(f"briefing index: {summary['documents']} document(s), {summary['chunk_count']} chunks;"
          f" {len(questions)} questions")

    probes = [bl.run_peer({"kind": "our_probe", "index_dir": str(index), "questions": questions,
                           "repeats": args.rounds}, work, python=bl.OUR_PYTHON)
              for _ in range(args.probes)]
    lat = [x for p in probes for x in p["latencies_s"]]
    res["ours"] = {
        "latency_p50_ms": metrics.percentile(lat, 50) * 1000,
        "latency_p95_ms": metrics.percentile(lat, 95) * 1000,
        "latency_p50_per_probe_ms": [metrics.percentile(p["latencies_s"], 50) * 1000
                                     for p in probes],
        "in_process_qps": [p["batch_n"] / p["batch_s"] for p in probes],
        "open_s": [p["open_s"] for p in probes], "answerer_s": [p["answerer_s"] for p in probes],
        "import_s": [p["import_s"] for p in probes],
        "abstained_share": probes[0]["abstained_share"],
    }

    batch_file = work / "questions.txt"
    lines = (questions * (args.batch_lines // len(questions) + 1))[: args.batch_lines]
    batch_file.write_text("\n".join(lines) + "\n")
    batch_runs = []
    for _ in range(3):
        wall, proc = bl.run_cli(["batch", str(batch_file), "-o", str(work / "answers.jsonl"),
                                 "--index", str(index)])
        if proc.returncode != 0:
            raise RuntimeError(f"assistant batch failed: {proc.stderr[-2000:]}")
        batch_runs.append(len(lines) / wall)
    res["ours"]["batch_cli_qps"] = batch_runs

    cold = []
    for i in range(args.cold_runs):
        wall, proc = bl.run_cli(["ask", questions[i % len(questions)], "--index", str(index)])
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"assistant ask failed: {proc.stderr[-2000:]}")
        cold.append(wall)
    res["ours"]["cold_start_s"] = cold

    if bl.peers_available():
        texts_file = work / "texts.json"
        texts_file.write_text(json.dumps(bl.chunk_texts(index)))
        built = bl.run_peer({"kind": "txtai_index", "texts_file": str(texts_file),
                             "model_path": bl.model_path(), "out_dir": str(work / "txtai"),
                             "config": TXTAI_CONFIG}, work)
        runs = [bl.run_peer({"kind": "txtai_query", "index_dir": str(work / "txtai"),
                             "questions": questions, "repeats": args.rounds}, work)
                for _ in range(args.cold_runs)]
        tl = [x for r in runs for x in r["latencies_s"]]
        res["txtai"] = {
            "index_s": built["index_s"],
            "latency_p50_ms": metrics.percentile(tl, 50) * 1000,
            "latency_p95_ms": metrics.percentile(tl, 95) * 1000,
            "batch_qps": [r["batch_n"] / r["batch_s"] for r in runs],
            "sequential_qps": [len(questions) * args.rounds / sum(r["latencies_s"]) for r in runs],
            "cold_start_s": [r["cold_start_s"] for r in runs],
            "load_s": [r["load_s"] for r in runs],
        }
    res["load_average_end"] = os.getloadavg()
    bl.save_results("answer", res, report(res), args.out,
                    note=f"Load average {res['load_average_start'][0]:.1f} at the start, "
                         f"{res['load_average_end'][0]:.1f} at the end.")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def report(res: dict[str, Any]) -> list[bl.Table]:
    o = res["ours"]
    x = res.get("txtai")
    t = bl.Table("figure", "ours", "txtai", "ratio (>1: ours better)", "target", "noise (ours)",
                 title=f"answers on the briefing ({res['chunks']} chunks, {res['questions']} "
                       "questions; ours = full answer, txtai = hybrid search only)")

    def peer(key: str, agg: bool = False) -> float:
        if x is None:
            return float("nan")
        return metrics.median(x[key]) if agg else float(x[key])

    p50, p95 = o["latency_p50_ms"], o["latency_p95_ms"]
    t.add("warm latency p50 ms", p50, peer("latency_p50_ms"),
          bl.times_better(p50, peer('latency_p50_ms'), False),
          f"<=30 {bl.verdict(p50, 30, False)}",
          "per probe: " + ", ".join(f"{v:.1f}" for v in o["latency_p50_per_probe_ms"]))
    t.add("warm latency p95 ms", p95, peer("latency_p95_ms"),
          bl.times_better(p95, peer('latency_p95_ms'), False), "", "")
    qps = metrics.median(o["in_process_qps"])
    t.add("questions/s, in process", qps, peer("batch_qps", True),
          bl.times_better(qps, peer('batch_qps', True)), f">=30 {bl.verdict(qps, 30)}",
          bl.spread(o["in_process_qps"]))
    cq = metrics.median(o["batch_cli_qps"])
    t.add("questions/s, `assistant batch` incl. start", cq, "", "",
          f">=30 {bl.verdict(cq, 30)}", bl.spread(o["batch_cli_qps"]))
    cold = metrics.median(o["cold_start_s"])
    t.add("cold start s (process start to answer)", cold, peer("cold_start_s", True),
          bl.times_better(cold, peer('cold_start_s', True), False),
          f"<=2 {bl.verdict(cold, 2, False)}", bl.spread(o["cold_start_s"]))
    t.add("  of which: imports s", metrics.median(o["import_s"]), "", "", "", "")
    t.add("  open index s", metrics.median(o["open_s"]), peer("load_s", True), "", "", "")
    t.add("  load query model s", metrics.median(o["answerer_s"]), "", "", "", "")
    return [t]
