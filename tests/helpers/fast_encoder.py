"""A stand-in for the ONNX encoder that costs nothing, for the one test whose question is
the build pipeline's memory on a 50 MB file, not the model (which would need ~20 minutes
for its 60,000 chunks here, at a cost per batch that does not grow with the file).

It keeps the real tokenizer, chunker, database and vector store; only the transformer is
replaced by a fixed random lookup table of token embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt


class FastEncoder:
    """Token embeddings from a small seeded table: deterministic, shaped like the model's."""

    def __init__(self, onnx_file: Path | None = None, threads: int = 0) -> None:
        self._table = np.random.default_rng(7).standard_normal((4096, 384)).astype(np.float32)

    def token_embeddings(self, ids: npt.NDArray[np.int64],
                         mask: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self._table[ids % len(self._table)]
        return out


def install() -> None:
    """Make the build use ``FastEncoder`` (call before ``assistant.cli.main``)."""
    import assistant.build

    setattr(assistant.build, "OnnxEncoder", FastEncoder)  # noqa: B010 - a test seam
