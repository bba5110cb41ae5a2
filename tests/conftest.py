"""Shared fixtures: real model, real FAISS, real index of the bundled briefing.

The ONNX export of the model is made once per machine (shared cache) and copied into
each index folder, so building a small index in a test costs well under a second.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests run from the repository root, whose assistant.toml is the bundled chat's: read an
# empty one instead. Tests of the file itself set their own.
os.environ.setdefault("ASSISTANT_CONFIG",
                      str(Path(__file__).resolve().parent / "data" / "no-settings.toml"))

ROOT = Path(__file__).resolve().parent.parent
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def briefing_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the bundled corpus, built once for the session (read-only use)."""
    from assistant.build import build_index
    from assistant.settings import Settings

    base = tmp_path_factory.mktemp("briefing")
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(BRIEFING, corpus / BRIEFING.name)
    index = base / "index"
    build_index(Settings(corpus_dir=corpus, index_dir=index))
    return index


@pytest.fixture(scope="session")
def answerer(briefing_index: Path) -> Iterator[object]:
    from assistant.index.store import open_index
    from assistant.qa.pipeline import Answerer
    from assistant.settings import Settings

    idx = open_index(briefing_index)
    yield Answerer(idx, Settings(index_dir=briefing_index))
    idx.close()


@pytest.fixture()
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh (corpus, index) pair with a copy of the briefing, for tests that write."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(BRIEFING, corpus / BRIEFING.name)
    return corpus, tmp_path / "index"
