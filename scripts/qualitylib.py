"""Shared by ``scripts/fit.py`` and ``scripts/bench.py quality``: the gold sets, their
indexes, the cross-validation folds by article/document, and held-out measurement.

The gold sets:

* ``qa-dev``: ``../shared/qa-dev`` (SQuAD v1.1 dev articles, CC BY-SA 4.0), read from there at
  run time and never copied: ten articles as the corpus, 3,762 answerable questions, and 795
  about three articles that are not in the corpus. Folds: its own ``splits.json`` (by article).
* ``briefing``: ``tests/data/dev_questions.jsonl`` on the bundled briefing. One document, so
  it is a fold of its own: its held-out figures come from a model fitted on the other sets.
* ``pydoc``: ``tests/data/pydoc_questions.jsonl`` on Python's language reference (79
  documents, ``scripts/make_pydoc_corpus.py``). Folds by the document that holds the answer.
* ``briefings-dev``, ``energy``, ``finance``, ``health``: folders of 14 policy briefings each
  with 260 questions worded as analysts word them (``../shared/briefings-dev`` and
  ``../shared/briefings-train/*``), read from there at run time and never copied. Folds: their
  own ``splits.json`` (five, by document). Their conversation turns (``followup_context``)
  are asked, so that follow-ups see their conversation, but neither fitted on nor scored.

Every figure here is held out: a question is scored by models fitted on folds that hold
neither its article/document nor, for the briefing, its corpus.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.build import build_index
from assistant.build.plan import configured_model_sha
from assistant.index.store import open_index
from assistant.metrics import contains
from assistant.qa import lang
from assistant.qa.abstain import features_hash
from assistant.qa.analysis import QuestionAnalysis
from assistant.qa.candidates import Candidate
from assistant.qa.conversation import Conversation
from assistant.qa.pipeline import Answerer
from assistant.qa.scorer import AnswerModel, load_model
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
QA_DEV = Path(os.environ.get("ASSISTANT_QA_DEV", SHARED / "qa-dev"))
BRIEFING_SETS = {"briefings-dev": SHARED / "briefings-dev",
                 **{n: SHARED / "briefings-train" / n for n in ("energy", "finance", "health")}}
"""Folders of briefings with analysts' questions, each with its own ``splits.json``."""
WORK = ROOT / "build" / "quality"
ENCODERS = ROOT / "build" / "encoders"
N_FOLDS = 5
BRIEFING_FOLD = 5
"""The briefing is one document: it is held out as a fold of its own."""


@dataclass
class GoldSet:
    name: str
    questions: Path
    corpus: Path
    splits: Path | None = None
    """Folds by document (``{"folds": [{"question_ids", "context_ids"}, ...]}``)."""

    @property
    def index(self) -> Path:
        return WORK / f"{self.name}-index"

    @property
    def sentences(self) -> Path:
        """Every sentence of the index, in id order, one JSON string a line: what
        ``scripts/bench_peers_quality.py`` reads in ``.bench-venv``, without the assistant."""
        return WORK / f"{self.name}-sentences.jsonl"


def gold_sets(names: Iterable[str] | None = None) -> list[GoldSet]:
    sets = [GoldSet("qa-dev", QA_DEV / "questions.jsonl", QA_DEV / "corpus"),
            GoldSet("briefing", ROOT / "tests" / "data" / "dev_questions.jsonl", ROOT / "corpus"),
            GoldSet("pydoc", ROOT / "tests" / "data" / "pydoc_questions.jsonl",
                    ROOT / "build" / "pydoc_corpus"),
            *(GoldSet(name, d / "questions.jsonl", d / "corpus", d / "splits.json")
              for name, d in BRIEFING_SETS.items() if d.is_dir())]
    wanted = set(names) if names else None
    return [s for s in sets if wanted is None or s.name in wanted]


def held_out_sets() -> list[tuple[GoldSet, str | None]]:
    """Sets never fitted on, written by someone who had not seen the fitting sets: fresh
    standalone questions on each corpus, and two- and three-turn conversations (the lines
    of ``followup_questions.jsonl`` whose ``corpus`` is the one named)."""
    data = ROOT / "tests" / "data"
    pydoc = ROOT / "build" / "pydoc_corpus"
    follow = data / "followup_questions.jsonl"
    return [(GoldSet("briefing-fresh", data / "fresh_briefing_questions.jsonl", ROOT / "corpus"),
             None),
            (GoldSet("pydoc-fresh", data / "fresh_pydoc_questions.jsonl", pydoc), None),
            (GoldSet("briefing-follow-ups", follow, ROOT / "corpus"), "briefing"),
            (GoldSet("pydoc-follow-ups", follow, pydoc), "pydoc")]


def _nan(x: float | None) -> float:
    return float("nan") if x is None else x


def evaluate_held_out() -> dict[str, dict[str, float]]:
    """The shipped model on the sets it was never fitted on (``assistant eval``'s figures)."""
    from assistant.evaluate import evaluate
    from assistant.models import GoldQuestion

    out: dict[str, dict[str, float]] = {}
    for gs, corpus in held_out_sets():
        if not gs.questions.is_file():
            continue
        index = WORK / ("briefing-index" if gs.corpus == ROOT / "corpus" else "pydoc-index")
        settings = Settings(corpus_dir=gs.corpus, index_dir=index)
        build_index(settings)
        rows = [json.loads(line) for line in gs.questions.read_text(encoding="utf-8")
                .splitlines() if line.strip()]
        gold = [GoldQuestion.model_validate(r) for r in rows
                if corpus is None or r.get("corpus") == corpus]
        r = evaluate(Answerer(open_index(index), settings), gold)
        out[gs.name] = {"answerable": r.answerable, "unanswerable": r.unanswerable,
                        "top1": r.top1_accuracy, "hit3": r.hit_at_3,
                        "abstention_precision": _nan(r.abstention_precision),
                        "abstention_recall": _nan(r.abstention_recall),
                        "answerable_abstained": r.answerable_abstained_rate}
    return out


def held_out_encoder(name: str) -> Path | None:
    """The encoder a set's samples are collected with: the shipped one, except for a set it
    was tuned on, which gets an encoder tuned the same way on the other sets only (made by
    ``scripts/encoder_probe.py`` the first time, under build/encoders/). So the ranker and
    abstainer never learn from an encoder's scores on questions it was trained on, and every
    figure is of an encoder that never saw the corpus, as a user's folder is."""
    from assistant.encoder import provenance

    prov = provenance()
    trained = [str(t) for t in prov["trained_on"]]  # type: ignore[attr-defined]
    if name not in trained:
        return None
    folder = ENCODERS / f"without-{name}"
    if not (folder / "provenance.json").is_file():
        others = [t for t in trained if t != name]
        print(f"{name}: tuning an encoder on {', '.join(others)} only (a few minutes)…",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "encoder_probe.py"),
                        "--train", *others, "--eval", "--save", str(folder),
                        *(f"--{k}={prov[k]}" for k in ("epochs", "lr", "batch", "seed",
                                                        "negatives") if k in prov)],
                       check=True)
    return folder


def ensure_index(gs: GoldSet, encoder: bool = True) -> Settings:
    """Build (or bring up to date) the set's index under build/quality/, with the encoder
    of ``held_out_encoder`` (``encoder=False``: the shipped one)."""
    if gs.name.startswith("pydoc") and not any(gs.corpus.glob("*.txt")):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_pydoc_corpus.py"),
                        str(gs.corpus)], check=True, stdout=subprocess.DEVNULL)
    if not gs.corpus.is_dir():
        raise SystemExit(f"{gs.name}: the corpus {gs.corpus} is missing")
    settings = Settings(corpus_dir=gs.corpus, index_dir=gs.index,
                        model_path=held_out_encoder(gs.name) if encoder else None)
    try:
        build_index(settings)
    except Exception:
        shutil.rmtree(gs.index, ignore_errors=True)
        build_index(settings)
    index = open_index(gs.index)
    try:
        index.local.export_sentences(gs.sentences)
    finally:
        index.close()
    return settings


@dataclass
class Sample:
    """One gold question taken as far as features, with its labels."""

    set: str
    qid: str
    question: str
    answerable: bool
    expect: list[str]
    fold: int
    analysis: QuestionAnalysis
    cands: list[Candidate]
    x: np.ndarray
    labels: np.ndarray
    """Per candidate: does the sentence hold a gold answer (in the question's document)?"""
    docs: builtins.set[str] = field(default_factory=builtins.set)
    """Documents holding a gold answer (document recall of the citations)."""
    conversation: Conversation = field(default_factory=Conversation)
    answerer: Answerer | None = None
    kind: str = ""
    """The question's kind where the set gives one (fact, paraphrase, why_how, list,
    followup, out_of_scope)."""
    subtype: str = ""
    """For an out-of-scope question: near_domain, off_topic or tempting_wrong; for a
    follow-up: ``topic_switch`` when it changes subject."""
    expect_all: list[str] = field(default_factory=list)
    scored: bool = True
    """False for a conversation turn asked only to lead up to a follow-up."""


def _hash_fold(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % N_FOLDS


def collect(gs: GoldSet, answerer: Answerer, folds: dict[str, int] | None = None
            ) -> list[Sample]:
    """Every question of the set as a Sample. Conversations advance as a user would see
    them, with the shipped model's answers."""
    rows = [json.loads(line) for line in gs.questions.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    doc_text = {d: answerer.index.document_text(d) for d in answerer.index.manifest.documents}
    convs: dict[str, Conversation] = {}
    out: list[Sample] = []
    for n, row in enumerate(rows):
        qid = str(row.get("id") or n)
        expect = list(row.get("expect_any") or [])
        answerable = bool(row.get("answerable", True))
        docs = {d for d, t in doc_text.items() if answerable and contains(t, expect)}
        if row.get("doc"):
            docs &= {row["doc"]}
        conv_id = row.get("conversation") or ""
        conv = convs.get(conv_id, Conversation(id=conv_id))
        a, cands, _ = answerer.gather(row["question"], conv)
        if conv_id:
            convs[conv_id] = answerer.reply(answerer.rank(row["question"], conv), conv
                                            ).conversation
        labels = np.array([answerable and c.doc_id in docs and contains(c.text, expect)
                           for c in cands], dtype=bool)
        if folds is not None:
            fold = folds.get(qid, -1)
        elif gs.name == "briefing":
            fold = BRIEFING_FOLD
        else:  # by the document holding the answer (the question's id when none does)
            fold = _hash_fold(sorted(docs)[0] if docs else qid)
        x = np.stack([c.features for c in cands]) if cands else np.zeros((0, 0))
        out.append(Sample(set=gs.name, qid=qid, question=row["question"], answerable=answerable,
                          expect=expect, fold=fold, analysis=a, cands=cands, x=x, labels=labels,
                          docs=docs, conversation=conv, answerer=answerer,
                          kind=str(row.get("kind") or ""),
                          subtype=str(row.get("subtype") or
                                      ("topic_switch" if row.get("topic_switch") else "")),
                          expect_all=list(row.get("expect_all") or []),
                          scored=row.get("kind") != "followup_context"))
    return out


def split_folds(splits: Path) -> dict[str, int]:
    """Question id -> fold, from a briefing folder's ``splits.json`` (conversation turns
    in the fold of the follow-up they lead to)."""
    data = json.loads(splits.read_text(encoding="utf-8"))
    return {qid: i for i, f in enumerate(data["folds"])
            for qid in [*f["question_ids"], *f.get("context_ids", [])]}


def qa_dev_folds() -> dict[str, int]:
    splits = json.loads((QA_DEV / "splits.json").read_text(encoding="utf-8"))
    return {qid: int(f["fold"]) for f in splits["folds"]
            for qid in f["answerable_ids"] + f["unanswerable_ids"]}


def _cache_key(gs: GoldSet, settings: Settings) -> str:
    """What the collected features depend on: the code of the stages before scoring, the
    language data, the questions, the corpus and the encoder."""
    h = hashlib.sha256()
    h.update(str(configured_model_sha(settings)).encode())  # the weights' hash, cached
    qa = ROOT / "assistant" / "qa"
    stages = ["analysis.py", "candidates.py", "conversation.py", "features.py", "lang.py"]
    for p in [*(qa / n for n in stages), *sorted((qa / "lang").glob("*.toml")),
              ROOT / "assistant" / "text.py", gs.questions,
              *([gs.splits] if gs.splits else [])]:
        h.update(p.read_bytes())
    for p in sorted(gs.corpus.glob("*")):
        h.update(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def provisional_model() -> AnswerModel:
    """The shipped model, taken for collecting samples even when it was fitted on other
    features than this code computes (a refit after adding one). Its ranker reads its
    features by name, so it ranks as before; only conversation turns use it."""
    model = load_model()
    return model.model_copy(update={"features_hash": features_hash(lang.load("en"))})


def load_samples(names: Iterable[str] | None = None, sets: list[GoldSet] | None = None,
                 cache: bool = True) -> list[Sample]:
    """The sets' samples, collected once and cached under build/quality/ (keyed by the code
    and data they depend on)."""
    samples: list[Sample] = []
    model = provisional_model()  # read once, shared by every set's answerer
    for gs in sets if sets is not None else gold_sets(names):
        settings = ensure_index(gs)
        answerer = Answerer(open_index(gs.index), settings, model=model)
        path = WORK / f"samples-{gs.name}-{_cache_key(gs, settings)}.pkl"
        if cache and path.is_file():
            got: list[Sample] = pickle.loads(path.read_bytes())
        else:
            folds = (qa_dev_folds() if gs.name == "qa-dev"
                     else split_folds(gs.splits) if gs.splits else None)
            got = collect(gs, answerer, folds)
            if cache:
                for s in got:
                    s.answerer = None
                path.write_bytes(pickle.dumps(got, protocol=pickle.HIGHEST_PROTOCOL))
        for s in got:
            s.answerer = answerer
        samples += got
        print(f"{gs.name}: {len(got)} questions", file=sys.stderr)
    return samples

