"""The PostgreSQL index beside the local FAISS one, measured in the same run.

    .venv/bin/python scripts/bench_server.py --size 1000     # a few minutes on 2 cores
    .venv/bin/python scripts/bench_server.py --size 10000    # ~15 minutes

Starts a pgserver (PostgreSQL with pgvector) in a temporary folder (Unix socket only),
generates the benchmark corpus (scripts/benchlib.py), builds it into a local index and into
the server (each from nothing: the server build embeds in its own staging folder, then
publishes), and measures for both: build throughput, warm answer latency p50/p95 (one
process, questions in the corpus's vocabulary), cold `assistant ask`, and answers per second
from 4 concurrent client processes. Writes bench-server-SIZE.json.

This is the quick pairing, in one process per figure; ``scripts/bench.py --server`` measures
the server beside FAISS inside the scale benchmark (fresh processes for latency, answers
compared with FAISS's, ``--server-seeded`` for 100,000 chunks).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description="PostgreSQL index beside local FAISS.")
    ap.add_argument("--size", type=int, default=1000, help="corpus size in chunks (approx.)")
    ap.add_argument("--questions", type=int, default=60)
    args = ap.parse_args()
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
    bl.write_corpus(corpus, bl.documents_for(args.size))
    questions = bl.generated_questions(1, args.questions)
    res: dict[str, Any] = {"size": args.size}
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
            fig["p50_ms"] = bl.percentile(lat, 50) * 1000
            fig["p95_ms"] = bl.percentile(lat, 95) * 1000
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
    out = Path(f"bench-server-{args.size}.json")
    bl.write_json(out, res)
    for key in ("chunks", "chunks_per_s", "p50_ms", "p95_ms", "cold_ask_s",
                "clients4_answers_per_s", "rebuild_one_edit_s"):
        print(f"{key:24} faiss {res['faiss'][key]:10.2f}   postgres {res['postgres'][key]:10.2f}")


if __name__ == "__main__":
    main()
