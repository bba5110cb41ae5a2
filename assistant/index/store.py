"""Opening a published generation for reading: manifest, database, vectors, model files.

Every part is checked against the manifest before a reader gets it, so a damaged or
half-copied index is reported with its fix (``IndexCorruptError``) at open, not as a
wrong answer later: each file's size and SHA-256 (``integrity``: by its stamp when
opening, hashed in full by ``verify_index``, with SQLite's ``quick_check``). The vector
store is opened through the registry by the name the manifest records
(``assistant.index.vectors.backend``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from assistant.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError
from assistant.index.integrity import check_files
from assistant.index.layout import META_DB, IndexLayout, not_utf8
from assistant.index.manifest import read_manifest
from assistant.index.meta import DocumentSource, MetaSource
from assistant.index.sqlite import MetaReader, connect_read
from assistant.index.vectors import VectorSearch, backend
from assistant.models import FileDigest, IndexManifest, Section


@dataclass
class OpenIndex:
    """A published generation opened for reading: a local one, or one on a server
    (``assistant.index.postgres.open_server_index``; then ``layout`` is the machine's model
    cache, the only local files it needs, and ``new_reader`` opens a second connection)."""

    layout: IndexLayout
    generation_dir: Path
    manifest: IndexManifest
    meta: MetaSource
    vectors: VectorSearch
    new_reader: Callable[[], MetaSource] | None = field(default=None, repr=False)

    @property
    def local(self) -> MetaReader:
        """The local database's reader, for benchmarks and tools that read more than the
        answer stages and the viewer do (``MetaReader``'s own methods)."""
        if not isinstance(self.meta, MetaReader):
            raise TypeError("a server index has no local database")
        return self.meta

    @property
    def conn(self) -> sqlite3.Connection:
        """The database connection, for tests and diagnostics: code reads through ``meta``."""
        return self.local.conn

    @property
    def onnx_file(self) -> Path:
        return self.layout.root / self.manifest.model.onnx_file

    def document_text(self, doc_id: str) -> str:
        return self.meta.document_text(doc_id)

    def document_sections(self, doc_id: str) -> list[Section]:
        return self.meta.document_sections(doc_id)

    def reader(self) -> DocumentSource:
        """A second, independent reader of the same database (the generation never changes):
        for a thread that must not wait on the one answering."""
        if self.new_reader is not None:
            return self.new_reader()
        path = self.generation_dir / META_DB
        return MetaReader(connect_read(path), path)

    def close(self) -> None:
        self.meta.close()
        self.vectors.close()


def open_index(index_dir: Path, known: tuple[Path, IndexManifest] | None = None) -> OpenIndex:
    """Open the live generation, checking that its parts exist and agree with the manifest
    (each file by its stamp: ``assistant.index.integrity``). ``known``: a generation folder
    and its manifest the caller has read already (reused if that generation is still the
    live one: a published generation never changes, and a large index's manifest is slow
    to read)."""

    def opening(layout: IndexLayout, gen: Path) -> OpenIndex:
        manifest = known[1] if known is not None and known[0] == gen else read_manifest(gen)
        meta = _checked_meta(layout, gen, manifest, thorough=False)
        try:
            vectors = _checked_vectors(layout, gen, manifest)
        except BaseException:
            meta.close()
            raise
        return OpenIndex(layout=layout, generation_dir=gen, manifest=manifest, meta=meta,
                         vectors=vectors)

    return _live(index_dir, opening)


def verify_index(index_dir: Path) -> IndexManifest:
    """The thorough check of the live generation (`assistant info`, and `assistant index`
    before it decides the index is up to date): every file hashed whatever its stamp, SQLite's
    ``quick_check``, and the FAISS vectors opened and counted. Its manifest, or
    ``IndexCorruptError`` naming the damage."""

    def checking(layout: IndexLayout, gen: Path) -> IndexManifest:
        manifest = read_manifest(gen)
        _checked_meta(layout, gen, manifest, thorough=True).close()
        if manifest.vectors.store == "faiss":
            _checked_vectors(layout, gen, manifest).close()
        return manifest

    return _live(index_dir, checking)


T = TypeVar("T")


def _live(index_dir: Path, use: Callable[[IndexLayout, Path], T]) -> T:
    """``use`` applied to the live generation (again to a newer one if a build replaced it
    meanwhile)."""
    layout = IndexLayout(index_dir)
    if not index_dir.is_dir():
        raise IndexMissingError(f"no index in {index_dir}; run `assistant index` to build it")
    if (odd := not_utf8(index_dir)) is not None:
        raise IndexIncompatibleError(
            f"the index path {odd} is not valid UTF-8, so its files cannot be opened; "
            "move the index to a folder whose name is UTF-8")
    for _ in range(3):
        gen = layout.require_current()
        try:
            return use(layout, gen)
        except IndexCorruptError:
            # A build published twice between reading CURRENT and opening the files, and
            # removed this generation: open the new one instead of reporting damage.
            if layout.current_generation() == gen:
                raise
    return use(layout, layout.require_current())


def check_model(layout: IndexLayout, manifest: IndexManifest) -> None:
    """The model's export under ``layout`` is the one the manifest records (for a server
    index, whose export is in this machine's shared cache and whose generation has no files
    here)."""
    check_files(layout.root, [_model_part(layout, manifest)], thorough=False)


def _model_part(layout: IndexLayout, manifest: IndexManifest
                ) -> tuple[Path, Mapping[str, FileDigest]]:
    return (layout.root / manifest.model.onnx_file).parent, manifest.model.files


def _checked_meta(layout: IndexLayout, gen: Path, manifest: IndexManifest, thorough: bool
                  ) -> MetaReader:
    # the checksums before SQLite reads the database: a damaged file is named as such
    check_files(layout.root, [(gen, manifest.files), _model_part(layout, manifest)], thorough)
    path = gen / META_DB
    meta = MetaReader(connect_read(path), path)
    try:
        meta.check(manifest.chunk_count)
        if thorough:
            meta.quick_check()
    except BaseException:
        meta.close()
        raise
    return meta


def _checked_vectors(layout: IndexLayout, gen: Path, manifest: IndexManifest) -> VectorSearch:
    vectors = backend(manifest.vectors.store).open(layout, manifest.vectors, gen)
    if vectors.count != manifest.chunk_count:
        vectors.close()
        raise IndexCorruptError(f"the vector index holds {vectors.count} vectors, the manifest "
                                f"says {manifest.chunk_count}; run `assistant index --full`")
    return vectors
