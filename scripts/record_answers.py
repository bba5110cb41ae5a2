"""Record the shipped model's answers to the in-repo question sets, so that a change meant to
leave answers alone (a refactor) can show it did: ``tests/quality/test_answers_unchanged.py``
answers them again and compares.

    python scripts/record_answers.py [--out tests/data/answers-recorded.json] [--work DIR]

The sets: ``dev_questions.jsonl``, ``fresh_briefing_questions.jsonl`` and the briefing's
follow-ups on ``corpus/``; ``pydoc_questions.jsonl``, ``fresh_pydoc_questions.jsonl`` and the
Python reference's follow-ups on the corpus ``scripts/make_pydoc_corpus.py`` writes from this
Python's ``pydoc_data`` (its hash is recorded: another Python's topics differ, and the test
then leaves those sets out). Per question: the outcome, the quoted text, its document and
offsets, and the confidence rounded to 2 decimals. Conversations advance with the answers,
as a user sees them.

Re-record (and commit the file with the change) only when a change is meant to alter answers,
such as a refit of the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RECORDED = DATA / "answers-recorded.json"

# the repository's assistant.toml configures the bundled chat: answer with no settings, as
# the tests do, so that the recording does not depend on where it is run from
os.environ["ASSISTANT_CONFIG"] = str(DATA / "no-settings.toml")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.build import build_index  # noqa: E402
from assistant.index.store import open_index  # noqa: E402
from assistant.qa.conversation import Conversation  # noqa: E402
from assistant.qa.pipeline import Answerer  # noqa: E402
from assistant.settings import Settings  # noqa: E402

SETS: dict[str, tuple[str, Path, str | None]] = {
    "briefing-dev": ("briefing", DATA / "dev_questions.jsonl", None),
    "briefing-fresh": ("briefing", DATA / "fresh_briefing_questions.jsonl", None),
    "briefing-follow-ups": ("briefing", DATA / "followup_questions.jsonl", "briefing"),
    "pydoc-dev": ("pydoc", DATA / "pydoc_questions.jsonl", None),
    "pydoc-fresh": ("pydoc", DATA / "fresh_pydoc_questions.jsonl", None),
    "pydoc-follow-ups": ("pydoc", DATA / "followup_questions.jsonl", "pydoc"),
}
"""Set name → (corpus, questions, the ``corpus`` field a line must have, if any)."""


def corpus_hash(corpus: Path) -> str:
    """The corpus's files (names and bytes) as one digest."""
    h = hashlib.sha256()
    for path in sorted(corpus.glob("*.txt")):
        h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def make_corpora(work: Path) -> dict[str, Path]:
    pydoc = work / "pydoc-corpus"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_pydoc_corpus.py"), str(pydoc)],
                   check=True, stdout=subprocess.DEVNULL)
    return {"briefing": ROOT / "corpus", "pydoc": pydoc}


def answer_set(answerer: Answerer, questions: Path, corpus_field: str | None
               ) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    convs: dict[str, Conversation] = {}
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows):
        if corpus_field is not None and row.get("corpus") != corpus_field:
            continue
        conv_id = row.get("conversation") or ""
        reply = answerer.ask(row["question"], convs.get(conv_id, Conversation(id=conv_id)))
        convs[conv_id] = reply.conversation
        a, span = reply.answer, reply.answer.answer
        out[str(row.get("id") or n)] = {
            "outcome": a.outcome,
            "quote": span.text if span else None,
            "doc": span.doc_id if span else None,
            "start": span.start if span else None,
            "end": span.end if span else None,
            "confidence": round(a.confidence, 2),
        }
    return out


def record(work: Path) -> dict[str, Any]:
    """Every set's answers, with the pydoc corpus's hash: ``{"pydoc_corpus": hash, "sets":
    {set: {question id: answer}}}``."""
    corpora = make_corpora(work)
    sets: dict[str, dict[str, dict[str, Any]]] = {}
    for corpus_name, corpus in corpora.items():
        settings = Settings(corpus_dir=corpus, index_dir=work / f"{corpus_name}-index")
        build_index(settings)
        index = open_index(settings.index_dir)
        try:
            answerer = Answerer(index, settings)
            for name, (on, questions, field) in SETS.items():
                if on == corpus_name:
                    sets[name] = answer_set(answerer, questions, field)
        finally:
            index.close()
    return {"pydoc_corpus": corpus_hash(corpora["pydoc"]), "sets": sets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RECORDED,
                        help="where to write the answers (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "recorded-answers",
                        help="where the corpora's indexes are built (default: %(default)s)")
    args = parser.parse_args(argv)
    recorded = record(args.work)
    args.out.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    count = sum(len(s) for s in recorded["sets"].values())
    print(f"{count} answers in {len(recorded['sets'])} sets written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
