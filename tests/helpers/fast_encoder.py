"""A stand-in for the ONNX encoder that costs nothing, for the one test whose question is
the build pipeline's memory on a 50 MB file, not the model (which would take far longer than
the suite allows for its 60,000 chunks here, at a cost per batch that does not grow with the file).

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


def build_main() -> None:
    """`assistant index` with ``FastEncoder`` passed in as the build's encoder, as a script:
    ``python -c "...; build_main()" --corpus C --index I``; prints the summary as JSON."""
    import argparse

    from assistant.build import build_index
    from assistant.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    summary = build_index(Settings(corpus_dir=args.corpus, index_dir=args.index),
                          encoder=FastEncoder)
    print(summary.model_dump_json())
