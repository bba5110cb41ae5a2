"""Checking an index's files against the sizes and SHA-256 digests its manifest records.

A flipped byte in ``meta.sqlite``, ``chunks.faiss`` or the model's export must be reported
(``IndexCorruptError`` naming the file), never answered from. Hashing the model (90 MB) at
every ``assistant ask`` would cost a good part of its start-up, so a file's full check is
remembered in ``stamps.json`` at the index's root, keyed by the file's device, inode, size,
mtime and ctime: a file written since (in place or replaced, through any hard link) has
another ctime, which no ordinary tool can set back, and is hashed again. A ``thorough``
check (the build, ``assistant info``, ``assistant index``) hashes every file whatever its
stamp. The stamps are only a cache: a missing or unreadable one costs a hash, never a
wrong verdict, and an index folder that cannot be written still opens (hashing each time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from assistant.errors import IndexCorruptError
from assistant.index.layout import REBUILD, STAMPS, write_json_atomic
from assistant.models import FileDigest

Stamp = tuple[int, int, int, int, int]
"""(device, inode, size, mtime_ns, ctime_ns) of a file as it was when hashed."""


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def digest_file(path: Path) -> FileDigest:
    return FileDigest(size=path.stat().st_size, sha256=sha256_file(path))


def digest_folder(folder: Path, leave_out: frozenset[str] = frozenset()) -> dict[str, FileDigest]:
    """The digest of each regular file directly in ``folder`` (sub-folders are not read)."""
    return {p.name: digest_file(p) for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink() and p.name not in leave_out}


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StampBook:
    """The files of one index root found whole, and how they were when checked."""

    def __init__(self, root: Path) -> None:
        self.path = root / STAMPS
        self.root = root
        self.entries: dict[str, tuple[Stamp, str]] = {}
        self.changed = False
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries = {str(k): (tuple(v[0]), str(v[1])) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            self.entries = {}

    def _key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def check(self, folder: Path, expected: Mapping[str, FileDigest], thorough: bool) -> None:
        """Every file of ``expected`` is in ``folder`` as recorded; ``IndexCorruptError``
        naming the first that is missing or differs."""
        for name, want in expected.items():
            path = folder / name
            try:
                st = path.stat()
            except OSError as exc:
                raise IndexCorruptError(f"{path} is missing or unreadable "
                                        f"({exc.strerror or exc}); {REBUILD}") from exc
            if st.st_size != want.size:
                raise IndexCorruptError(f"{path} is damaged ({st.st_size} bytes, the manifest "
                                        f"says {want.size}); {REBUILD}")
            key = self._key(path)
            seen = self.entries.get(key)
            if not thorough and seen is not None and seen == (_stamp(st), want.sha256):
                continue
            try:
                got = sha256_file(path)
            except OSError as exc:
                raise IndexCorruptError(f"{path} is unreadable ({exc.strerror or exc}); "
                                        f"{REBUILD}") from exc
            if got != want.sha256:
                self.entries.pop(key, None)
                self.changed = True
                raise IndexCorruptError(f"{path} is damaged (its checksum differs from the "
                                        f"manifest's); {REBUILD}")
            self.record(path, want.sha256, st)

    def record(self, path: Path, sha256: str, st: os.stat_result | None = None) -> None:
        """``path`` holds ``sha256`` now (hashed by the caller)."""
        stamp = _stamp(st or path.stat())
        key = self._key(path)
        if self.entries.get(key) != (stamp, sha256):
            self.entries[key] = (stamp, sha256)
            self.changed = True

    def save(self) -> None:
        """Write the stamps (of files that still exist) if any changed; a folder that cannot
        be written keeps the old ones."""
        if not self.changed:
            return
        kept = {k: [list(s), h] for k, (s, h) in sorted(self.entries.items())
                if (self.root / k).is_file()}
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, json.dumps(kept))
        self.changed = False


def check_files(root: Path, checks: list[tuple[Path, Mapping[str, FileDigest]]],
                thorough: bool) -> None:
    """Check each (folder, expected digests) pair under the index root ``root``."""
    book = StampBook(root)
    try:
        for folder, expected in checks:
            book.check(folder, expected, thorough)
    finally:
        book.save()
