"""The index folder on disk: where each part lives, and the atomic-file helpers.

    index/
      CURRENT            name of the live generation, replaced atomically (rename)
      gen-000007/        one published generation, never modified once named in CURRENT
        manifest.json    IndexManifest, written last
        meta.sqlite      documents (with extracted text), chunks, sentences, FTS5, vectors
        chunks.faiss     the chunk vectors
      staging/           the build in progress; resumed if a build was interrupted
      models/<sha>/      this index's own copy of the ONNX export of the model + its tokenizer
      stamps.json        files found whole by a full check, and their inode and times then
      .lock              held by the one build allowed at a time

Readers only ever open a generation named by CURRENT, so a build killed at any instant
leaves the previous index complete; at most the two newest generations are kept, so a
reader that has just read CURRENT still finds its files.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import IndexCorruptError, IndexMissingError

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
META_DB = "meta.sqlite"
STAGING = "staging"
MODELS = "models"
LOCK = ".lock"
STAMPS = "stamps.json"
REBUILD = "run `assistant index` to rebuild it"
"""The fix for a damaged part: a plain build finds the damage and rebuilds in full."""


def generation_name(n: int) -> str:
    return f"gen-{n:06d}"


def not_utf8(path: Path) -> str | None:
    """The full path, printable, when it is not UTF-8 (a Latin-1 folder name from an old
    archive or share): a manifest cannot store it, nor FAISS or the model's tokenizer open it.
    None for every other path."""
    full = str(path.absolute())
    if full.isascii():
        return None
    try:
        full.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(full).decode("utf-8", "backslashreplace")
    return None


@dataclass(frozen=True)
class IndexLayout:
    root: Path

    @property
    def current_file(self) -> Path:
        return self.root / CURRENT

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK

    def generation_dir(self, n: int) -> Path:
        return self.root / generation_name(n)

    def current_generation(self) -> Path | None:
        """The live generation's folder, or None when no index was ever published."""
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"{self.current_file} is unreadable; "
                                    "run `assistant index --full` to rebuild") from exc
        if not name.startswith("gen-") or "/" in name or not (self.root / name).is_dir():
            raise IndexCorruptError(f"{self.current_file} names no generation ({name[:40]!r}); "
                                    "run `assistant index --full` to rebuild")
        return self.root / name

    def require_current(self) -> Path:
        """The live generation's folder; ``IndexMissingError`` when there is none."""
        gen = self.current_generation()
        if gen is None:
            raise IndexMissingError(f"no index in {self.root}; run `assistant index` to build it")
        return gen

    def generations(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("gen-"))


def write_json_atomic(path: Path, text: str) -> None:
    """Write a small file so that readers see the old content or the new, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk (before a rename publishes it)."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(folder))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
