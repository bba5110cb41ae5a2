"""Corpora made for a test: many distinct documents from the bundled briefing's text."""

from __future__ import annotations

from pathlib import Path

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
