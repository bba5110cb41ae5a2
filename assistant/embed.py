"""Embed: turn texts into normalised vectors with the index's own model.

One tokenizer (the model's ``tokenizer.json`` through the Rust ``tokenizers``
library) feeds one of two runtimes behind the same seam:

* ``OnnxEncoder`` — the model exported once to ONNX (see ``model_export``) and run by
  onnxruntime. It is what queries use: a fraction of the import time of
  ``import sentence_transformers``, and a few milliseconds a query.
* ``TorchEncoder`` — the sentence-transformers model itself, for exporting and checking.

Both return token embeddings; pooling is done here, once: mean over the chunk's tokens
(what sentence-transformers' Pooling + Normalize do), and mean over each sentence's own
tokens inside the chunk ("late chunking"), so every sentence gets a vector that knows
its context at no extra model cost.

Never loads anything from a hub: the model is a local folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from assistant.errors import ModelError

Vectors = npt.NDArray[np.float32]
MAX_SEQ_LENGTH = 256


class Tokenizer:
    """The model's word-piece tokenizer, with offsets, padding and the 256-token window."""

    def __init__(self, tokenizer_json: Path, max_length: int = MAX_SEQ_LENGTH) -> None:
        from tokenizers import Tokenizer as HFTokenizer  # Rust; loaded only here

        try:
            self._tok = HFTokenizer.from_file(str(tokenizer_json))
        except Exception as exc:
            raise ModelError(f"cannot read the tokenizer {tokenizer_json}: {exc}") from exc
        self._tok.enable_truncation(max_length=max_length)
        self._tok.no_padding()
        self._plain = HFTokenizer.from_file(str(tokenizer_json))
        self._plain.no_truncation()
        self._plain.no_padding()

    def count(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without [CLS]/[SEP], never truncated."""
        if not texts:
            return []
        return [len(e.ids) for e in self._plain.encode_batch(list(texts), add_special_tokens=False)]

    def split_points(self, text: str, max_tokens: int) -> list[int]:
        """Character offsets cutting ``text`` into pieces of at most ``max_tokens`` word pieces,
        each cut moved back to a space when one is near."""
        import bisect

        offsets = self._plain.encode(text, add_special_tokens=False).offsets
        token_starts = [o[0] for o in offsets]
        cuts: list[int] = []
        k = max_tokens
        while k < len(offsets):
            cut = offsets[k][0]
            space = text.rfind(" ", offsets[k - max_tokens // 2][0], cut)
            if space > (cuts[-1] if cuts else 0):
                cut = space
            cuts.append(cut)
            k = bisect.bisect_left(token_starts, cut) + max_tokens
        return cuts

    def encode(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                                   list[list[tuple[int, int]]]]:
        """Padded ids and attention mask for a batch, and each token's character offsets."""
        encs = self.encode_each(texts)
        ids, mask = pad([e[0] for e in encs])
        return ids, mask, [e[1] for e in encs]

    def encode_each(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Each text's ids (with [CLS]/[SEP], within the window) and token offsets, unpadded."""
        return [(e.ids, list(e.offsets)) for e in self._tok.encode_batch(list(texts))]


def pad(rows: Sequence[list[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Token id rows padded to the longest, and the attention mask."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


class Encoder(Protocol):
    """The seam to the model runtime: token embeddings for a padded batch."""

    def token_embeddings(self, ids: npt.NDArray[np.int64],
                         mask: npt.NDArray[np.int64]) -> Vectors: ...


class OnnxEncoder:
    def __init__(self, onnx_file: Path, threads: int = 0, spin: bool = True) -> None:
        """``spin=False`` for an encoder that runs now and then between other work (the
        question's embedding): onnxruntime's threads otherwise spin on the cores after each
        run and slow the Python that follows, and other processes."""
        import onnxruntime as ort  # loaded only here

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if not spin:  # idle threads sleep at once instead of spinning on the cores
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(onnx_file), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"cannot load the exported model {onnx_file}: {exc}; "
                             "run `assistant index --full` to export it again") from exc
        self._inputs = {i.name for i in self._session.get_inputs()}

    def token_embeddings(self, ids: npt.NDArray[np.int64],
                         mask: npt.NDArray[np.int64]) -> Vectors:
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        out = self._session.run(None, feed)[0]
        return np.asarray(out, dtype=np.float32)


class TorchEncoder:
    """The sentence-transformers model's transformer, run by torch (slow to import)."""

    def __init__(self, model_path: Path, threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch  # torch and sentence-transformers take seconds to import: only
        from sentence_transformers import SentenceTransformer  # to export or check the model

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True,
                                             model_kwargs={"attn_implementation": "eager"})
        except Exception as exc:
            raise ModelError(f"cannot load the embedding model from {model_path}: {exc}") from exc
        self.model.eval()
        self.transformer = self.model[0].auto_model

    def token_embeddings(self, ids: npt.NDArray[np.int64],
                         mask: npt.NDArray[np.int64]) -> Vectors:
        torch = self._torch
        with torch.inference_mode():
            out = self.transformer(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.zeros_like(torch.from_numpy(ids)))
        hidden: Vectors = np.asarray(out.last_hidden_state.numpy(), dtype=np.float32)
        return hidden


def _normalise(v: Vectors) -> Vectors:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    out: Vectors = (v / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


@dataclass
class Embedder:
    """Tokenizer + encoder + pooling: the only place vectors are made."""

    tokenizer: Tokenizer
    encoder: Encoder
    batch_size: int = 64
    """Most texts in one forward pass."""
    batch_tokens: int = 512
    """Most padded tokens in one forward pass: texts are sorted by token count and cut into
    batches of similar length, so short sentences go many at a time and long chunks few,
    and padding stays a few percent (scripts/bench.py index measured the size)."""
    workers: int = 1
    """Batches run at once, each on its own thread (give the encoder one intra-op thread
    then): as fast as one run on 2 intra-op threads on 2 idle cores, and faster when the
    cores are shared, since no per-operator barrier waits for a descheduled thread."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One normalised vector per text (mean pooling, as the model was trained)."""
        vecs, _ = self.embed_with_spans(texts, [[] for _ in texts])
        return vecs

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                         ) -> tuple[Vectors, list[Vectors]]:
        """Vectors of whole texts and, for each text, of its character spans (late chunking)."""
        whole: list[Vectors | None] = [None] * len(texts)
        parts: list[Vectors | None] = [None] * len(texts)
        encoded = self.tokenizer.encode_each(texts)
        batches = self._batches([len(e[0]) for e in encoded])

        def run(idx: list[int]) -> int:
            ids, mask = pad([encoded[i][0] for i in idx])
            tok = self.encoder.token_embeddings(ids, mask)
            m = mask[..., None].astype(np.float32)
            pooled = (tok * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            for row, i in enumerate(idx):
                whole[i] = pooled[row]
                parts[i] = _pool_spans(tok[row], encoded[i][1], spans[i], tok.shape[-1])
            return int(tok.shape[-1])

        if self.workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            # onnxruntime releases the GIL in run(), so threads give true parallelism
            with ThreadPoolExecutor(min(self.workers, len(batches))) as pool:
                dims = list(pool.map(run, batches))
        else:
            dims = [run(idx) for idx in batches]
        dim = dims[-1] if dims else 0
        if not texts:
            return np.zeros((0, dim or 384), dtype=np.float32), []
        return (_normalise(np.stack([w for w in whole if w is not None])),
                [_normalise(p) for p in parts if p is not None])

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Text indices by token count, cut where the batch would exceed ``batch_tokens``
        padded tokens or ``batch_size`` texts."""
        out: list[list[int]] = []
        current: list[int] = []
        for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            # sorted ascending: this text is the longest of the batch so far
            if current and (len(current) >= self.batch_size
                            or (len(current) + 1) * lengths[i] > self.batch_tokens):
                out.append(current)
                current = []
            current.append(i)
        if current:
            out.append(current)
        return out


def _pool_spans(tok: Vectors, offsets: list[tuple[int, int]], spans: Sequence[tuple[int, int]],
                dim: int) -> Vectors:
    out = np.zeros((len(spans), dim), dtype=np.float32)
    if not spans:
        return out
    tok = tok[: len(offsets)]
    starts = np.array([o[0] for o in offsets])
    ends = np.array([o[1] for o in offsets])
    real = ends > starts  # [CLS], [SEP] and padding have empty offsets
    for k, (s, e) in enumerate(spans):
        sel = real & (starts < e) & (ends > s)
        out[k] = tok[sel].mean(axis=0) if sel.any() else tok[real].mean(axis=0)
    return out
