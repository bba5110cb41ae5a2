"""Build throughput of `assistant index` against txtai, on the same chunk texts, same model.

    scripts/setup-bench                        # once: txtai etc. in .bench-venv
    .venv/bin/python scripts/bench.py index    # minutes

1. Generates a deterministic briefing-like corpus (>= 2,000 chunks; scripts/benchlib.py).
2. Warm-up: a throwaway build, so the one-time ONNX export (reported separately, if it
   happened now) is not part of any timed build.
3. Alternates, ``--repeats`` times: our full build in a fresh process (``assistant index
   --full --json``: the BuildSummary's seconds, everything from scanning to publishing,
   model load included), then txtai indexing the exact strings our build embedded, read
   back from our index (title/section prefix + chunk text), in .bench-venv's python (its
   import and model load reported separately, its index + save timed).
4. Measures the embedding runtimes themselves on a slice of those texts: our onnxruntime
   path by workers x intra-op threads x batch size, and sentence-transformers by torch
   threads, batch size and its multi-process pool (which Issue 5 asks to compare).

Prints every figure with its ratio to txtai from the same run, and writes
docs/bench/index.json. Medians of the repeats; the spread says how noisy it was.
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

NO_BUDGET = 1 << 30
ORT_CONFIGS = ([(w, i, b, NO_BUDGET) for w, i in ((1, 2), (2, 1), (1, 1))
                for b in (16, 32, 64, 128)]
               + [(w, i, 256, t) for w, i in ((1, 2), (2, 1)) for t in (512, 1024, 2048)])
"""(workers, intra-op threads, batch size, padded tokens per batch) of our embedding path;
the default is 2 workers x 1 thread, 64 texts, 512 tokens (assistant.embed.Embedder)."""

ST_MODES: list[dict[str, int]] = [
    {"threads": 2, "batch_size": 32}, {"threads": 2, "batch_size": 64},
    {"threads": 1, "batch_size": 32}, {"threads": 2, "batch_size": 16},
    {"threads": 1, "batch_size": 32, "processes": 2},
    {"threads": 1, "batch_size": 64, "processes": 2},
]
"""sentence-transformers: torch threads vs the multi-process pool (1 torch thread each)."""


@dataclass(frozen=True)
class Options:
    """``scripts/bench.py index``'s options (its ``--help`` says what each does)."""

    chunks: int = 2200
    repeats: int = 3
    mode_texts: int = 384
    mode_repeats: int = 2
    workdir: Path | None = None
    out: Path | None = None


def main(args: Options) -> None:
    os.environ.update(bl.bench_env())
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-index-"))
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "cpus": os.cpu_count()}

    corpus = work / "corpus"
    docs = bl.documents_for(args.chunks)
    bl.write_corpus(corpus, docs)
    print(f"corpus: {docs} generated documents in {corpus}")

    # 2. warm-up: makes the shared ONNX export if it is missing, outside any timed build
    warm_corpus = work / "warm-corpus"
    warm_corpus.mkdir(exist_ok=True)
    shutil.copy(bl.doc_path(corpus, 0), warm_corpus / "one.txt")
    warm_s, _ = bl.our_build(warm_corpus, work / "warm-index", full=True)
    results["warmup_build_s"] = warm_s
    print(f"warm-up build (1 document; includes the ONNX export if none was cached): "
          f"{warm_s:.1f} s")

    # 3. alternate our build and txtai's
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    texts_file = work / "texts.json"
    for r in range(args.repeats):
        index = work / f"index-{r}"
        shutil.rmtree(index, ignore_errors=True)
        wall, summary = bl.our_build(corpus, index, full=True)
        n = int(summary["chunks_embedded"])
        ours.append({"seconds": summary["seconds"], "wall_s": wall, "chunks": n,
                     "chunks_per_s": n / summary["seconds"]})
        print(f"[{r + 1}/{args.repeats}] ours:  {n} chunks in {summary['seconds']:.1f} s "
              f"({n / summary['seconds']:.1f} chunks/s; process {wall:.1f} s)", flush=True)
        if not texts_file.exists():
            texts = bl.chunk_texts(index)
            texts_file.write_text(json.dumps(texts))
        if bl.peers_available():
            peer = bl.run_peer({"kind": "txtai_index", "texts_file": str(texts_file),
                                "model_path": bl.model_path(),
                                "out_dir": str(work / f"txtai-{r}")}, work)
            secs = peer["index_s"] + peer["save_s"]
            peer["chunks_per_s"] = peer["count"] / secs
            theirs.append(peer)
            print(f"[{r + 1}/{args.repeats}] txtai: {peer['count']} chunks in {secs:.1f} s "
                  f"({peer['chunks_per_s']:.1f} chunks/s; import {peer['import_s']:.1f} s, "
                  f"model load {peer['load_s']:.1f} s, not counted)", flush=True)
        shutil.rmtree(work / f"txtai-{r}", ignore_errors=True)
    results["ours"] = ours
    results["txtai"] = theirs
    texts = json.loads(texts_file.read_text())
    results["chunks"] = len(texts)
    results["mean_tokens_per_chunk"] = _mean_tokens(work / "index-0", texts)

    # 4. the runtimes themselves
    if args.mode_texts:
        sample = texts[:: max(1, len(texts) // args.mode_texts)][: args.mode_texts]
        print(f"\nembedding runtimes on {len(sample)} chunk texts ...", flush=True)
        results["ort_modes"] = bl.ort_modes(bl.onnx_file(work / "index-0"), sample,
                                            ORT_CONFIGS, args.mode_repeats)
        if bl.peers_available():
            sample_file = work / "sample.json"
            sample_file.write_text(json.dumps(sample))
            # OMP_NUM_THREADS=1 reaches the pool's worker processes: one torch thread each
            try:
                st = bl.run_peer({"kind": "st_modes", "texts_file": str(sample_file),
                                  "model_path": bl.model_path(), "modes": ST_MODES,
                                  "repeats": args.mode_repeats}, work,
                                 env=bl.bench_env(OMP_NUM_THREADS="1"))
                results["st_modes"] = st["modes"]
            except RuntimeError as exc:
                print(f"sentence-transformers modes failed: {exc}", file=sys.stderr)
    results["load_average_end"] = os.getloadavg()
    bl.save_results("index", results, report(results), args.out,
                    note=f"Load average {results['load_average_start'][0]:.1f} at the start, "
                         f"{results['load_average_end'][0]:.1f} at the end.")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def _mean_tokens(index: Path, texts: list[str]) -> float:
    from assistant.embed import Tokenizer

    tok = Tokenizer(bl.onnx_file(index).parent / "tokenizer.json")
    counts = tok.count(texts)
    return sum(counts) / max(1, len(counts))


def report(results: dict[str, Any]) -> list[bl.Table]:
    ours = [r["chunks_per_s"] for r in results["ours"]]
    theirs = [r["chunks_per_s"] for r in results["txtai"]]
    t = bl.Table("figure", "ours", "txtai", "ratio", "target", "noise (ours / txtai)",
                 title=f"build throughput: {results['chunks']} chunks, "
                       f"{results['mean_tokens_per_chunk']:.0f} word pieces each on average")
    tables = [t]
    r = bl.ratio(metrics.median(ours), metrics.median(theirs))
    pair = [o / x for o, x in zip(ours, theirs, strict=False)]
    results["ratio_median"] = r
    results["ratio_per_pair"] = pair
    t.add("chunks/s (median)", metrics.median(ours), metrics.median(theirs),
          bl.times_better(metrics.median(ours), metrics.median(theirs)),
          f">=1.2x {bl.verdict(r, 1.2)}", f"{bl.spread(ours)} / {bl.spread(theirs)}")
    if pair:
        t.add("ratio per alternated pair", "", "", ", ".join(f"{p:.2f}x" for p in pair))
    if results["txtai"]:
        t.add("model import + load s (not timed)", "-",
              metrics.median([x["import_s"] + x["load_s"] for x in results["txtai"]]))
    t.add("process wall s", metrics.median([x["wall_s"] for x in results["ours"]]),
          metrics.median([x["wall_s"] for x in results["txtai"]]))
    if "ort_modes" in results:
        mt = bl.Table("workers", "intra-op", "batch", "tokens/batch", "chunks/s", "runs",
                      title="our runtime (onnxruntime): chunks/s by workers x intra-op "
                            "threads, batch (texts; padded tokens)")
        tables.append(mt)
        for m in sorted(results["ort_modes"], key=lambda m: -m["chunks_per_s"]):
            budget = m.get("batch_tokens", NO_BUDGET)
            mt.add(m["workers"], m["intra_threads"], m["batch_size"],
                   "-" if budget >= NO_BUDGET else budget, m["chunks_per_s"],
                   ", ".join(f"{x:.1f}" for x in m["runs"]))
    if "st_modes" in results:
        st = bl.Table("torch threads", "processes", "batch", "chunks/s", "runs (s)",
                      title="sentence-transformers (torch): chunks/s by threads, batch, "
                            "processes")
        tables.append(st)
        for m in sorted(results["st_modes"], key=lambda m: -m["chunks_per_s"]):
            st.add(m["threads"], m.get("processes", 1), m["batch_size"], m["chunks_per_s"],
                   ", ".join(f"{x:.1f}" for x in m["seconds"]))
    return tables
