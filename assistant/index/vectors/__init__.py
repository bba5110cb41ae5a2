"""The vector store seam: chunk vectors in, nearest chunk ids out, behind a registry.

A generation's manifest names its store (``VectorIndexInfo.store``); ``backend(name)`` imports
that adapter only then, so ``assistant info`` does not load FAISS. The one local store is FAISS
(a team's index lives whole in PostgreSQL, ``assistant.index.postgres``, not behind this seam;
the Qdrant adapter was retired). Adapters import only ``assistant.index.layout``,
``assistant.models`` and ``assistant.errors``: what they need of the database comes in as a
``ChunkSource`` and what they need of the settings as a ``VectorTarget``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from assistant.errors import IndexIncompatibleError
from assistant.index.layout import IndexLayout
from assistant.models import IndexManifest, VectorIndexInfo

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


class VectorSearch(Protocol):
    """What the query path needs of a vector store."""

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids to one normalised query vector, with cosine scores."""
        ...

    @property
    def count(self) -> int: ...

    def close(self) -> None: ...


class ChunkSource(Protocol):
    """The staging database's chunks, as a store's build reads them
    (``assistant.index.sqlite.ChunkVectors``)."""

    def ids(self) -> set[int]: ...

    def count(self) -> int: ...

    def all(self, dim: int) -> tuple[Ids, Vectors]: ...

    def batches(self, ids: list[int]) -> Iterator[tuple[list[int], Vectors]]: ...


@dataclass(frozen=True)
class VectorTarget:
    """What a build asks of the store, from the settings (adapters never read settings)."""

    dimension: int
    ann_threshold: int


class VectorBackend(Protocol):
    name: str

    def open(self, layout: IndexLayout, info: VectorIndexInfo, generation_dir: Path
             ) -> VectorSearch: ...

    def update(self, layout: IndexLayout, chunks: ChunkSource, base: IndexManifest | None,
               target: VectorTarget) -> VectorIndexInfo:
        """Write the staging generation's store so it holds exactly ``chunks``: the base's,
        with ids that left removed and new ones added, or a fresh one."""
        ...


BACKENDS = {
    "faiss": "assistant.index.vectors.faiss",
}


def backend(name: str) -> VectorBackend:
    """The adapter for a store name, imported on first use."""
    module = BACKENDS.get(name)
    if module is None:
        raise IndexIncompatibleError(f"this assistant has no vector store {name!r} (it knows "
                                     f"{', '.join(BACKENDS)}); run `assistant index --full`")
    found: VectorBackend = importlib.import_module(module).BACKEND
    return found
