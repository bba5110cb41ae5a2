"""Start loading the question embedder while the rest of the assistant is still importing.

A cold ``assistant ask`` spends much of its time building the onnxruntime session of the
index's model and loading its tokenizer, and about as long importing faiss and the answer
stages and opening the index. onnxruntime and the Rust tokenizer do most of their loading without
holding the GIL, so started on threads the moment the settings say where the index is, they
are ready (or nearly) by the time the ``Answerer`` wants them.

Only a hint: anything unexpected (no index yet, a damaged manifest, a server index) means
no preload, and opening the index then reports the problem as it always does.
"""

from __future__ import annotations

from pathlib import Path

from assistant.background import Background
from assistant.embed import Embedder, OnnxEncoder, Tokenizer
from assistant.models import IndexManifest
from assistant.settings import Settings


class EmbedderPreload:
    """The question embedder of one exported model, its two parts loading on threads."""

    def __init__(self, onnx_file: Path, threads: int,
                 known: tuple[Path, IndexManifest] | None = None) -> None:
        """``known``: the generation folder and manifest ``onnx_file`` was read from, for
        ``open_index`` to reuse instead of reading the manifest again."""
        self.known = known
        # imported here, on the caller's thread, before the threads start: two threads
        # importing numpy's extension modules at once can fail
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

        self.onnx_file = onnx_file
        self._encoder = Background(lambda: OnnxEncoder(onnx_file, threads=threads, spin=False),
                                   name="encoder-preload")
        self._tokenizer = Background(lambda: Tokenizer(onnx_file.parent / "tokenizer.json"),
                                     name="tokenizer-preload")

    def wait(self) -> None:
        """Until both parts have loaded or failed; before leaving without ``take``."""
        self._encoder.settle()
        self._tokenizer.settle()

    def take(self, onnx_file: Path) -> Embedder | None:
        """The embedder, once loaded, if it is of ``onnx_file`` (None otherwise: the live
        generation changed in between). A failed load raises its error here."""
        self.wait()
        if self.onnx_file != onnx_file:
            return None
        return Embedder(self._tokenizer.result(), self._encoder.result())


def preload_embedder(settings: Settings) -> EmbedderPreload | None:
    """Start loading the embedder of the local index ``settings`` name (None: no preload).
    Never raises: it is only a head start."""
    if settings.server:
        return None
    from assistant.index.layout import IndexLayout
    from assistant.index.manifest import read_manifest

    try:
        layout = IndexLayout(settings.index_dir)
        gen = layout.current_generation()
        if gen is None:
            return None
        manifest = read_manifest(gen)
        onnx = layout.root / manifest.model.onnx_file
        if not onnx.is_file():
            return None
        return EmbedderPreload(onnx, settings.embed_threads, known=(gen, manifest))
    except Exception:  # reported properly when the index is opened
        return None
