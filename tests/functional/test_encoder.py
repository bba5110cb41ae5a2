"""The shipped encoder: written once from the packaged float16 weights, checked, and loaded
like any model folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from assistant import encoder
from assistant.errors import ModelError


def test_the_tuned_encoder_is_written_once_and_holds_the_shipped_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = encoder.tuned_model_path(tmp_path)
    assert folder.parent == tmp_path / "encoders"
    for name in ("model.safetensors", "tokenizer.json", "config.json", "modules.json",
                 "1_Pooling/config.json"):
        assert (folder / name).is_file(), name
    shipped = load_file(str(encoder.TUNED_DIR / encoder.WEIGHTS))
    written = load_file(str(folder / "model.safetensors"))
    assert shipped.keys() == written.keys()
    for key, value in shipped.items():
        assert written[key].dtype == (np.float32 if value.dtype == np.float16 else value.dtype)
        assert np.array_equal(written[key], value.astype(written[key].dtype)), key
    base = load_file(str(encoder.base_model_path() / "model.safetensors"))
    # the base's layout (less a buffer transformers rebuilds), so the export and loaders agree
    assert set(written) <= set(base) and set(base) - set(written) <= {"embeddings.position_ids"}
    assert max(float(np.abs(base[k] - written[k]).max()) for k in written) > 5e-4  # tuned
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert encoder.tuned_model_path(tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not written again

    def never(target: Path, sha: str) -> None:
        raise AssertionError("the weights were read and converted again")

    monkeypatch.setattr(encoder, "_materialise", never)  # every later use: a stat, no work
    assert encoder.tuned_model_path(tmp_path) == folder


def test_an_interrupted_first_use_is_written_again(tmp_path: Path) -> None:
    folder = encoder.tuned_model_path(tmp_path)
    (folder / ".complete").unlink()
    (folder / "model.safetensors").write_bytes(b"half written")
    assert encoder.tuned_model_path(tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_size > 80_000_000


def test_weights_that_are_not_the_shipped_ones_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "encoder"
    shutil.copytree(encoder.TUNED_DIR, package)
    with (package / encoder.WEIGHTS).open("r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    monkeypatch.setattr(encoder, "TUNED_DIR", package)
    with pytest.raises(ModelError, match=r"not those its provenance\.json names"):
        encoder.tuned_model_path(tmp_path / "cache")
    assert not (tmp_path / "cache" / "encoders").exists() or not any(
        (tmp_path / "cache" / "encoders").iterdir())


def test_an_unwritable_cache_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="cannot write the tuned encoder") as caught:
        encoder.tuned_model_path(blocker)
    assert "\n" not in str(caught.value)
