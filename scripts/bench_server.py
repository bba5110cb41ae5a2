"""The PostgreSQL index beside the local FAISS one, measured in the same run.

    .venv/bin/python scripts/bench.py server --size 1000     # minutes
    .venv/bin/python scripts/bench.py server --size 10000

Starts a pgserver (PostgreSQL with pgvector) in a temporary folder (Unix socket only),
generates the benchmark corpus (scripts/benchlib.py), builds it into a local index and into
the server (each from nothing: the server build embeds in its own staging folder, then
publishes), and measures for both: build throughput, warm answer latency p50/p95 (one
process, questions in the corpus's vocabulary), cold `assistant ask`, and answers per second
from 4 concurrent client processes, each with the ratio of the server's figure to FAISS's
(FAISS is the peer here). Writes docs/bench/server-SIZE.json.

This is the quick pairing, in one process per figure; ``scripts/bench.py scale --server`` measures
the server beside FAISS inside the scale benchmark (fresh processes for latency, answers
compared with FAISS's, ``--server-seeded`` for 100,000 chunks).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from assistant import metrics

FIGURES = (("chunks", "chunks", True), ("build chunks/s", "chunks_per_s", True),
           ("warm answer p50 ms", "p50_ms", False), ("warm answer p95 ms", "p95_ms", False),
           ("cold `assistant ask` s", "cold_ask_s", False),
           ("4 clients answers/s", "clients4_answers_per_s", True),
           ("rebuild after 1 edit s", "rebuild_one_edit_s", False))
"""(label, key, higher is better) of each figure in the table."""


def main(size: int = 1000, questions_n: int = 60, out: Path | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pgserver.postgres_server import get_server

    from assistant.build import build_index
    from assistant.build.server import staging_dir
    from assistant.session import Session
    from assistant.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    server = get_server(work / "pg", cleanup_mode="delete")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    url = str(server.get_uri())
    corpus = work / "corpus"
    bl.write_corpus(corpus, bl.documents_for(size))
    questions = bl.generated_questions(1, questions_n)
    res: dict[str, Any] = {"size": size}
    try:
        targets = {"faiss": Settings(corpus_dir=corpus, index_dir=work / "index"),
                   "postgres": Settings(corpus_dir=corpus, index_dir=work / "unused",
                                        server=url)}
        for name, settings in targets.items():
            print(f"building {name}…", file=sys.stderr)
            seconds, summary = bl.timed(partial(build_index, settings, full=True))
            fig: dict[str, Any] = {"chunks": summary.chunk_count, "build_s": seconds,
                                   "chunks_per_s": summary.chunk_count / seconds}
            session = Session.open(settings)
            try:
                session.ask(questions[0])
                lat = []
                for q in questions:
                    t = time.perf_counter()
                    session.ask(q)
                    lat.append(time.perf_counter() - t)
            finally:
                session.close()
            fig["p50_ms"] = metrics.percentile(lat, 50) * 1000
            fig["p95_ms"] = metrics.percentile(lat, 95) * 1000
            where = ["--server", url] if settings.server else ["--index", str(work / "index")]
            fig["cold_ask_s"] = sorted(bl.run_cli(["ask", questions[i], *where])[0]
                                       for i in range(3))[1]
            clients = bl.concurrent_clients(settings.index_dir, settings.server, questions)
            fig["clients4_answers_per_s"] = clients["answers_per_s"]
            fig["clients4_wall_s"] = clients["wall_s"]
            res[name] = fig
            print(name, json.dumps(fig), file=sys.stderr)
        edited = bl.doc_path(corpus, 0)
        bl.edit_document(edited, "bench-edit")
        for name, settings in targets.items():
            seconds, _ = bl.timed(partial(build_index, settings))
            res[name]["rebuild_one_edit_s"] = seconds
    finally:
        import shutil

        shutil.rmtree(staging_dir(url), ignore_errors=True)
        server.cleanup()
    bl.save_results(f"server-{size}", res, [report(res)], out)


def report(res: dict[str, Any]) -> bl.Table:
    t = bl.Table("figure", "postgres", "faiss", "postgres vs faiss (>1: server better)",
                 title=f"PostgreSQL index beside local FAISS, --size {res['size']}")
    for label, key, higher in FIGURES:
        pg, local = res["postgres"][key], res["faiss"][key]
        t.add(label, pg, local,
              "" if key == "chunks" else bl.times_better(pg, local, higher))
    return t
