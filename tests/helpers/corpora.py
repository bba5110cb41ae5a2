"""Corpora made for a test: many distinct documents from the bundled briefing's text."""

from __future__ import annotations

import random
from pathlib import Path

from helpers.hostile import generated_document

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"


def briefing_copies(folder: Path, n: int) -> Path:
    """``n`` documents, each the briefing under a heading of its own (so each is embedded,
    not recognised as a copy): a corpus whose build takes long enough to interrupt."""
    folder.mkdir(parents=True, exist_ok=True)
    text = BRIEFING.read_text(encoding="utf-8")
    for k in range(n):
        (folder / f"briefing-{k:03d}.txt").write_text(f"Copy {k} of the briefing\n\n{text}",
                                                      encoding="utf-8")
    return folder


HARBOUR = {1: "Harbour log\n\nThe harbour of Valletta handled 4,100 containers in March.\n",
           2: "Harbour log\n\nRevised figures after the audit follow below.\n\n"
              "The harbour of Valletta handled 7,300 containers in March.\n"}


def briefing_and_reports(folder: Path, version: int, reports: int = 8) -> Path:
    """The briefing, a harbour log and ``reports`` generated reports, in two versions: version
    2 rewrites the harbour log and two reports, adds a report and removes one, so an index of
    version 1 answers some questions differently."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / BRIEFING.name).write_text(BRIEFING.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "harbour.txt").write_text(HARBOUR[version], encoding="utf-8")
    rng = random.Random(29)
    for i in range(reports + 1):
        text = generated_document(rng, 36)
        if version == 2 and i in (2, 5):
            text = generated_document(random.Random(1000 + i), 36, tag="revised")
        if (version, i) in ((1, reports), (2, 0)):
            continue  # report 0 only in version 1, the last one only in version 2
        (folder / f"report{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder
