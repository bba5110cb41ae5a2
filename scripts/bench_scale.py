"""Scale benchmark: our index against txtai and a naive baseline, at 1,000 to 100,000 chunks.

    scripts/setup-bench                                    # once: the peers in .bench-venv
    .venv/bin/python scripts/bench.py scale --size 1000    # minutes
    .venv/bin/python scripts/bench.py scale --size 100000  # hours: three 100,000-chunk builds
    .venv/bin/python scripts/bench.py scale --size 100000 --workdir W --reuse-index --server \
        --server-seeded --skip-peers           # re-measure answering on W's index, no build

Generates a deterministic briefing-like corpus of about SIZE chunks (scripts/benchlib.py:
~10 chunks a document, sentences from templates with companies, figures, identifiers; no
downloads), then measures, side by side and in the same run:

* build throughput: ours (``assistant index --full``), txtai (same model, the exact chunk
  strings we embedded) and a naive baseline (sentence-transformers + a flat FAISS index,
  nothing stored); peers run in .bench-venv (``--peer-limit`` caps the texts they embed
  at large sizes: their throughput is per chunk and does not depend on corpus size);
* opening the index and warm answer latency p50/p95 (fresh processes, questions in the
  corpus's vocabulary); peak memory of ``assistant ask``; cold start of ``assistant ask``;
* an incremental rebuild after editing one document;
* IVF recall@10 against exact search, with the IVF built by the build's own code
  (``build_faiss``) over the index's vectors, queried with embedded questions;
* resumability: a build killed with SIGKILL mid-embedding, then run again: the second run
  must reuse what the first embedded (``chunks_reused``) and embed only the rest;
* with ``--server``, the PostgreSQL index (a pgserver in the work folder) beside FAISS on the
  same corpus and questions: build throughput, warm p50/p95, answers equal to FAISS's, cold
  ``assistant ask``, 4 concurrent clients, an incremental rebuild (targets: p50 within 2x of
  FAISS at 10,000 chunks, <= 50 ms at 100,000).

Prints a table with each figure's ratio to the peers and its target; writes
docs/bench/scale-SIZE.json.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from assistant import metrics

QUESTIONS = 60
SIZES = (1000, 10000, 100000)


@dataclass(frozen=True)
class Options:
    """``scripts/bench.py scale``'s options (its ``--help`` says what each does)."""

    size: int = 1000
    peer_limit: int | None = None
    documents: int | None = None
    skip_peers: bool = False
    skip_resume: bool = False
    server: bool = False
    server_seeded: bool = False
    reuse_index: bool = False
    probes: int = 3
    cold_runs: int = 5
    workdir: Path | None = None
    out: Path | None = None


def problem(args: Options) -> str | None:
    """Why these options cannot run, if they cannot."""
    if args.reuse_index and not (args.workdir and (args.workdir / "index" / "CURRENT").is_file()
                                 and (args.workdir / "corpus").is_dir()):
        return "--reuse-index needs a --workdir holding corpus/ and index/ from an earlier run"
    return None


def main(args: Options) -> None:
    os.environ.update(bl.bench_env())
    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"bench-{args.size}-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"size": args.size, "load_average_start": os.getloadavg(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        run(args, work, res)
    finally:
        res["load_average_end"] = os.getloadavg()
        bl.save_results(f"scale-{args.size}", res, report(res), args.out,
                        note=load_note(res))
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def load_note(res: dict[str, Any]) -> str:
    end = res.get("load_average_end", [float("nan")])[0]
    return (f"Load average {res['load_average_start'][0]:.1f} at the start, {end:.1f} at the "
            "end (above the core count: other work competed).")


def step(name: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)


def run(args: Options, work: Path, res: dict[str, Any]) -> None:
    corpus = work / "corpus"
    index = work / "index"
    if args.reuse_index:
        run_reused(args, corpus, index, work, res)
        return
    docs = args.documents or bl.documents_for(args.size)
    step(f"writing {docs} documents")
    bl.write_corpus(corpus, docs)
    res["documents"] = docs

    warm = work / "warm-corpus"
    warm.mkdir(exist_ok=True)
    shutil.copy(bl.doc_path(corpus, 0), warm / "one.txt")
    res["warmup_build_s"], _ = bl.our_build(warm, work / "warm-index", full=True)

    step("our build")
    shutil.rmtree(index, ignore_errors=True)
    wall, summary = bl.our_build(corpus, index, full=True)
    n = int(summary["chunks_embedded"])
    res["chunks"] = n
    res["ours_build"] = {"seconds": summary["seconds"], "wall_s": wall,
                         "chunks_per_s": n / summary["seconds"]}
    step(f"  {n} chunks in {summary['seconds']:.1f} s ({n / summary['seconds']:.1f}/s)")

    texts = bl.chunk_texts(index)
    limit = args.peer_limit or min(len(texts), 10_000)
    sample = texts[:: max(1, len(texts) // limit)][:limit]
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(sample))
    if not args.skip_peers and bl.peers_available():
        step(f"txtai on {len(sample)} texts")
        peer = bl.run_peer({"kind": "txtai_index", "texts_file": str(texts_file),
                            "model_path": bl.model_path(), "out_dir": str(work / "txtai")},
                           work, timeout=86400)
        peer["chunks_per_s"] = peer["count"] / (peer["index_s"] + peer["save_s"])
        res["txtai_build"] = peer
        shutil.rmtree(work / "txtai", ignore_errors=True)
        step(f"  {peer['chunks_per_s']:.1f}/s")
        step(f"naive baseline on {len(sample)} texts")
        naive = bl.run_peer({"kind": "naive_index", "texts_file": str(texts_file),
                             "model_path": bl.model_path(), "batch_size": 32}, work,
                            timeout=86400)
        naive["chunks_per_s"] = naive["count"] / naive["index_s"]
        res["naive_build"] = naive
        step(f"  {naive['chunks_per_s']:.1f}/s")

    answering(args, corpus, index, work, res)


def run_reused(args: Options, corpus: Path, index: Path, work: Path,
               res: dict[str, Any]) -> None:
    """An earlier run's corpus and index: everything but the build, the peers and resuming."""
    from assistant.index.store import open_index

    opened = open_index(index)
    try:
        res["chunks"] = opened.manifest.chunk_count
        res["documents"] = len(opened.manifest.documents)
    finally:
        opened.close()
    res["reused_index"] = True
    step(f"reusing {res['chunks']} chunks in {index} (build figures not measured)")
    answering(args, corpus, index, work, res)


def answering(args: Options, corpus: Path, index: Path, work: Path,
              res: dict[str, Any]) -> None:
    n = int(res["chunks"])
    docs = int(res["documents"])
    # with --reuse-index, edits seeded by this run's start: an edit an earlier run already
    # made to the same document would change nothing and measure no rebuild
    edit = f"-{res['started']}" if args.reuse_index else ""
    questions = bl.generated_questions(args.size, QUESTIONS)
    step("opening and warm latency")
    res["ours_query"] = probe(index, questions, args.probes, work)
    step("peak memory and cold start of `assistant ask`")
    res["ask_peak_rss_mb"] = [bl.peak_rss_isolated(["ask", q, "--index", str(index)])
                              for q in questions[:2]]
    res["ask_cold_start_s"] = cold_start(index, questions, args.cold_runs)

    step("incremental rebuild after editing one document")
    inc = []
    for i in range(3):
        bl.edit_document(bl.doc_path(corpus, (1 + i * 7) % docs), f"edit-{i}{edit}")
        w, s = bl.our_build(corpus, index)
        inc.append({"seconds": s["seconds"], "wall_s": w, "chunks_embedded": s["chunks_embedded"],
                    "changed": len(s["changed"])})
    res["incremental"] = inc

    step("IVF recall against exact search")
    res["ivf"] = ivf_figures(index, questions)

    if not args.skip_resume and not args.reuse_index:
        step("resumability: kill -9 mid-embedding, then run again")
        res["resume"] = resume(corpus, work / "index-resume", n)

    if args.server:
        step("PostgreSQL server beside FAISS")
        res["server"] = server(corpus, index, questions, args.probes, work,
                               seeded=args.server_seeded, edit=edit)


def probe(index: Path, questions: list[str], probes: int, work: Path,
          server_url: str | None = None) -> dict[str, Any]:
    runs = [bl.run_peer({"kind": "our_probe", "index_dir": str(index), "questions": questions,
                         "repeats": 2, "server": server_url}, work, python=bl.OUR_PYTHON)
            for _ in range(probes)]
    lat = [x for r in runs for x in r["latencies_s"]]
    return {"open_s": [r["open_s"] for r in runs], "answerer_s": [r["answerer_s"] for r in runs],
            "import_s": [r["import_s"] for r in runs],
            "first_answer_s": [r["first_answer_s"] for r in runs],
            "latency_p50_ms": metrics.percentile(lat, 50) * 1000,
            "latency_p95_ms": metrics.percentile(lat, 95) * 1000,
            "latency_p50_per_probe_ms": [metrics.percentile(r["latencies_s"], 50) * 1000
                                         for r in runs],
            "qps": [r["batch_n"] / r["batch_s"] for r in runs], "vectors": runs[0]["vectors"],
            "answers": runs[0]["answers"]}


def cold_start(index: Path, questions: list[str], runs: int, server_url: str | None = None
               ) -> list[float]:
    out = []
    where = ["--server", server_url] if server_url else ["--index", str(index)]
    for i in range(runs):
        wall, proc = bl.run_cli(["ask", questions[i], *where])
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"assistant ask failed: {proc.stderr[-2000:]}")
        out.append(wall)
    return out


def ivf_figures(index: Path, questions: list[str]) -> dict[str, Any]:
    """Recall@10 of the IVF index the build would make over these vectors, against exact
    search, for embedded questions; and the search time of each."""

    from assistant.embed import Embedder, OnnxEncoder, Tokenizer
    from assistant.index.store import open_index
    from assistant.index.vectors.faiss import FAISS_FILE, FaissVectors, build_faiss, ivf_recall
    from assistant.settings import Settings

    idx = open_index(index)
    try:
        ids, vecs = idx.local.all_chunk_vectors(idx.manifest.model.dimension)
        manifest_vectors = idx.manifest.vectors
        onnx = idx.onnx_file
        gen = idx.generation_dir
    finally:
        idx.close()
    emb = Embedder(Tokenizer(onnx.parent / "tokenizer.json"), OnnxEncoder(onnx))
    qv = emb.embed(bl.generated_questions(7, 200) + questions)
    t = time.perf_counter()
    ivf = build_faiss(ids, vecs, vecs.shape[1], ann_threshold=0)
    build_s = time.perf_counter() - t
    flat = build_faiss(ids, vecs, vecs.shape[1], ann_threshold=len(ids) + 1)
    import faiss

    faiss.omp_set_num_threads(1)  # as the query path searches
    out: dict[str, Any] = {
        "threshold": Settings().ann_threshold, "built_kind": manifest_vectors.kind,
        "nlist": ivf.info.nlist, "nprobe": ivf.info.nprobe, "build_s": build_s,
        "recall_at_10": ivf_recall(ivf, vecs, ids, qv, 10),
        "ivf_search_ms": _search_ms(ivf, qv), "flat_search_ms": _search_ms(flat, qv)}
    if manifest_vectors.kind == "ivf":
        live = FaissVectors.open(gen / FAISS_FILE, manifest_vectors)
        out["live_recall_at_10"] = ivf_recall(live, vecs, ids, qv, 10)
    return out


def _search_ms(store: Any, queries: Any) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        store.search(q, 40)
        times.append(time.perf_counter() - t)
    return metrics.median(times) * 1000


def resume(corpus: Path, index: Path, total: int) -> dict[str, Any]:
    """Start a full build, SIGKILL it once about 40% of the chunks sit committed in staging,
    run it again, and read what the second run reused and embedded."""
    shutil.rmtree(index, ignore_errors=True)
    exe = bl.ROOT / ".venv" / "bin" / "assistant"
    t = time.perf_counter()
    from assistant.index.sqlite import staged_chunk_count

    proc = subprocess.Popen([str(exe), "index", "--corpus", str(corpus), "--index", str(index),
                             "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=bl.bench_env())
    staged = 0
    db = index / "staging" / "meta.sqlite"
    while proc.poll() is None:
        time.sleep(0.5)
        staged = staged_chunk_count(db)
        if staged >= 0.4 * total:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
    killed_after = time.perf_counter() - t
    killed = proc.returncode == -signal.SIGKILL
    staged = staged_chunk_count(db)
    wall, summary = bl.our_build(corpus, index)
    return {"killed": killed, "killed_after_s": killed_after, "chunks_committed_at_kill": staged,
            "second_run_chunks_reused": summary["chunks_reused"],
            "second_run_chunks_embedded": summary["chunks_embedded"],
            "second_run_s": summary["seconds"], "second_run_wall_s": wall,
            "chunk_count": summary["chunk_count"],
            "resumed": killed and summary["chunks_reused"] >= staged > 0
            and summary["chunks_embedded"] + summary["chunks_reused"] == summary["chunk_count"]}


def server(corpus: Path, index: Path, questions: list[str], probes: int, work: Path,
           seeded: bool = False, edit: str = "") -> dict[str, Any]:
    """The PostgreSQL index on the same corpus as FAISS, measured the same way: a build from
    nothing (its own staging folder: embedding included), warm latency in fresh processes,
    cold `assistant ask`, 4 concurrent clients against each, an incremental rebuild of each
    after one edit, and how many answers equal FAISS's."""
    from pgserver.postgres_server import get_server

    from assistant.build.server import staging_dir

    pg = get_server(work / "pg", cleanup_mode="delete")
    try:
        pg.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        url = str(pg.get_uri())
        shutil.rmtree(staging_dir(url), ignore_errors=True)
        if seeded:
            shutil.copytree(index, staging_dir(url), symlinks=True)
        wall, proc = bl.run_cli(["index", "--corpus", str(corpus), "--server", url,
                                 *([] if seeded else ["--full"]), "--json"], timeout=86400)
        if proc.returncode != 0:
            return {"error": proc.stderr[-500:]}
        summary = json.loads(proc.stdout)
        sent = summary["chunk_count"] if seeded else summary["chunks_embedded"]
        out: dict[str, Any] = {"build_s": summary["seconds"], "wall_s": wall, "seeded": seeded,
                               "chunks_per_s": sent / summary["seconds"]}
        step(f"  {'published' if seeded else 'built'} {sent} chunks in "
             f"{summary['seconds']:.1f} s")
        out["faiss_query"] = probe(index, questions, probes, work)
        out["query"] = probe(index, questions, probes, work, server_url=url)
        out["same_answers"] = sum(a == b for a, b in zip(out["faiss_query"]["answers"],
                                                         out["query"]["answers"], strict=True))
        out["questions"] = len(questions)
        step(f"  p50 {out['query']['latency_p50_ms']:.1f} ms (FAISS "
             f"{out['faiss_query']['latency_p50_ms']:.1f}); same answer "
             f"{out['same_answers']}/{len(questions)}")
        out["ask_cold_start_s"] = cold_start(index, questions, 3, server_url=url)
        out["clients4"] = bl.concurrent_clients(index, url, questions)
        out["faiss_clients4"] = bl.concurrent_clients(index, None, questions)
        bl.edit_document(bl.doc_path(corpus, 2), f"server-edit{edit}")
        _, local = bl.our_build(corpus, index)
        _, proc = bl.run_cli(["index", "--corpus", str(corpus), "--server", url, "--json"])
        if proc.returncode == 0:
            out["rebuild_one_edit_s"] = json.loads(proc.stdout)["seconds"]
            out["faiss_rebuild_one_edit_s"] = local["seconds"]
        return out
    finally:
        shutil.rmtree(staging_dir(str(pg.get_uri())), ignore_errors=True)
        pg.cleanup()


def report(res: dict[str, Any]) -> list[bl.Table]:
    size = res["size"]
    title = (f"scale: --size {size}: {res.get('chunks', '?')} chunks in "
             f"{res.get('documents', '?')} documents")
    if res.get("reused_index"):
        title += " (--reuse-index: an earlier run's index; its build was not measured here)"
    t = bl.Table("figure", "ours", "txtai", "naive", "vs txtai", "vs naive", "target",
                 "noise / note", title=title)
    ob = res.get("ours_build")
    if ob:
        tx = res.get("txtai_build", {}).get("chunks_per_s", float("nan"))
        nv = res.get("naive_build", {}).get("chunks_per_s", float("nan"))
        r = bl.ratio(ob["chunks_per_s"], tx)
        t.add("build chunks/s", ob["chunks_per_s"], tx, nv, bl.times_better(ob["chunks_per_s"], tx),
              bl.times_better(ob["chunks_per_s"], nv), f">=1.2x txtai {bl.verdict(r, 1.2)}",
              f"peers on {res.get('txtai_build', {}).get('count', '-')} texts; 1 run each")
    q = res.get("ours_query")
    if q:
        op = metrics.median(q["open_s"])
        t.add("open index s", op, "", "", "", "", f"<=1 {bl.verdict(op, 1, False)}",
              bl.spread(q["open_s"]))
        t.add("load query model s", metrics.median(q["answerer_s"]), "", "", "", "", "", "")
        p50 = q["latency_p50_ms"]
        t.add("answer latency p50 ms (warm)", p50, "", "", "", "",
              f"<=50 {bl.verdict(p50, 50, False)}",
              "per probe " + ", ".join(f"{x:.1f}" for x in q["latency_p50_per_probe_ms"]))
        t.add("answer latency p95 ms (warm)", q["latency_p95_ms"], "", "", "", "", "", "")
    if "ask_peak_rss_mb" in res:
        rss = max(res["ask_peak_rss_mb"])
        t.add("peak RSS of `assistant ask` MB", rss, "", "", "", "",
              f"<=1536 {bl.verdict(rss, 1536, False)}", "max of runs")
    if "ask_cold_start_s" in res:
        c = metrics.median(res["ask_cold_start_s"])
        t.add("cold start `assistant ask` s", c, "", "", "", "", f"<=2 {bl.verdict(c, 2, False)}",
              bl.spread(res["ask_cold_start_s"]))
    if "incremental" in res:
        secs = [x["seconds"] for x in res["incremental"]]
        t.add("incremental rebuild, 1 doc edited, s", metrics.median(secs), "", "", "", "",
              f"<=5 {bl.verdict(metrics.median(secs), 5, False)}",
              f"{bl.spread(secs)}; re-embedded "
              f"{[x['chunks_embedded'] for x in res['incremental']]} chunks")
    iv = res.get("ivf")
    if iv:
        t.add("IVF recall@10 vs exact", iv["recall_at_10"], "", "", "", "",
              f">=0.95 {bl.verdict(iv['recall_at_10'], 0.95)}",
              f"nlist {iv['nlist']} nprobe {iv['nprobe']}; live index: {iv['built_kind']} "
              f"(threshold {iv['threshold']})")
        if "live_recall_at_10" in iv:
            t.add("live IVF index recall@10 (after the edits)", iv["live_recall_at_10"], "", "",
                  "", "", f">=0.95 {bl.verdict(iv['live_recall_at_10'], 0.95)}",
                  "the index the build published and updated incrementally")
        t.add("search ms: IVF / flat (k=40)", f"{iv['ivf_search_ms']:.2f} / "
              f"{iv['flat_search_ms']:.2f}", "", "", "", "", "", "")
    rs = res.get("resume")
    if rs:
        t.add("resume after kill -9", "yes" if rs["resumed"] else "NO", "", "", "", "",
              "reuses", f"killed after {rs['killed_after_s']:.0f} s with "
              f"{rs['chunks_committed_at_kill']} chunks committed; 2nd run reused "
              f"{rs['second_run_chunks_reused']}, embedded {rs['second_run_chunks_embedded']}")
    sv = res.get("server")
    if sv and "error" not in sv:
        fq, sq = sv["faiss_query"], sv["query"]
        ratio = sq["latency_p50_ms"] / fq["latency_p50_ms"]
        t.add("server: publish chunks/s (seeded)" if sv.get("seeded") else
              "server: build chunks/s", sv["chunks_per_s"], "", "", "", "", "",
              "from a copy of the FAISS index: no embedding" if sv.get("seeded") else
              f"faiss {ob['chunks_per_s']:.1f}" if ob else "")
        target = (f"<=2x faiss {bl.verdict(ratio, 2, False)}" if size <= 10000 else
                  f"<=50 {bl.verdict(sq['latency_p50_ms'], 50, False)}")
        t.add("server: answer p50 ms (warm)", sq["latency_p50_ms"], "", "", "", "", target,
              f"faiss {fq['latency_p50_ms']:.1f} in the same step: {ratio:.2f}x; "
              f"{sq['vectors']['kind']} search")
        t.add("server: answer p95 ms (warm)", sq["latency_p95_ms"], "", "", "", "", "",
              f"faiss {fq['latency_p95_ms']:.1f}")
        t.add("server: same answer as faiss", f"{sv['same_answers']}/{sv['questions']}", "",
              "", "", "", "", "exact below server_ann_threshold, HNSW above")
        t.add("server: cold start `ask` s", metrics.median(sv["ask_cold_start_s"]), "", "", "", "",
              "", bl.spread(sv["ask_cold_start_s"]))
        t.add("server: 4 clients answers/s", sv["clients4"]["answers_per_s"], "", "", "", "",
              "", f"faiss {sv['faiss_clients4']['answers_per_s']:.1f}")
        if "rebuild_one_edit_s" in sv:
            t.add("server: rebuild, 1 doc edited, s", sv["rebuild_one_edit_s"], "", "", "", "",
                  "", f"faiss {sv['faiss_rebuild_one_edit_s']:.2f}")
    elif sv:
        t.add("server", "failed", "", "", "", "", "", sv["error"][:80])
    return [t]
