"""The FAISS vector store, the embedded default: chunk vectors in ``chunks.faiss`` per generation.

``FaissVectors`` is the embedded default: exact inner-product search (``IndexFlatIP``)
up to ``ann_threshold`` chunks, and above it an IVF index whose ``nprobe`` is tuned at
build time to reach recall@10 >= 0.98 against exact search for question-like queries
made from the index's own vectors (measured by scripts/bench.py scale at 100,000 chunks: 0.98
on those gives ~0.97 for real questions). Both are keyed by chunk id (the flat index
inside an ``IndexIDMap2``, the IVF storing ids itself), so an incremental build removes
and adds ids instead of rebuilding.

A published index file is opened memory-mapped: the vectors are not read in, pages come
from the OS cache as searches touch them (a large index opens many times faster, and its
pages stay shared with other readers). A build that modifies the index
reads its own copy first.
"""

from __future__ import annotations

import errno
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.errors import IndexCorruptError
from assistant.index.layout import IndexLayout
from assistant.index.vectors import ChunkSource, Ids, Vectors, VectorTarget
from assistant.models import IndexManifest, VectorIndexInfo

if TYPE_CHECKING:
    import faiss


FAISS_FILE = "chunks.faiss"


class FaissVectors:
    def __init__(self, index: faiss.Index, info: VectorIndexInfo,
                 path: Path | None = None) -> None:
        self._index = index
        self.info = info
        self._mapped_from = path
        """Set while the index is a read-only memory map of this file."""
        if info.kind == "ivf":
            import faiss

            faiss.extract_index_ivf(index).nprobe = max(1, info.nprobe)

    @classmethod
    def open(cls, path: Path, info: VectorIndexInfo) -> FaissVectors:
        """Open for searching, memory-mapped; ``remove``/``add`` read a private copy first."""
        import faiss  # loaded only here

        # the flat codes and the IVF lists are mapped by different flags; they do not combine
        flags = faiss.IO_FLAG_MMAP if info.kind == "ivf" else faiss.IO_FLAG_MMAP_IFC
        try:
            index = faiss.read_index(str(path), flags)
        except Exception:  # not mappable (another layout, an odd filesystem): read it all
            index = _read(path, 0)
        # One query at a time: OpenMP's thread hand-off costs more than it saves (measured
        # on 2 cores); builds that train IVF set their own thread count.
        faiss.omp_set_num_threads(1)
        return cls(index, info, path)

    def _writable(self) -> faiss.Index:
        if self._mapped_from is not None:
            self._index = _read(self._mapped_from, 0)
            self._mapped_from = None
            if self.info.kind == "ivf":
                import faiss

                self._index = _native_ivf(self._index)
                faiss.extract_index_ivf(self._index).nprobe = max(1, self.info.nprobe)
        return self._index

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> Ids:
        import faiss

        if self.count == 0:
            return np.zeros(0, dtype=np.int64)
        index = faiss.downcast_index(self._index)
        if isinstance(index, faiss.IndexIVF):  # the chunk ids sit in the inverted lists
            lists = index.invlists
            assert lists is not None
            parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                     for i in range(index.nlist) if lists.list_size(i)]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        id_map = index.id_map  # type: ignore[attr-defined]
        return np.asarray(faiss.vector_to_array(id_map), dtype=np.int64)

    def close(self) -> None:
        """Nothing to release: the memory map goes with the object."""

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        if self.count == 0:
            return []
        scores, ids = self._index.search(query.reshape(1, -1).astype(np.float32),
                                         min(k, self.count))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # --- building ---------------------------------------------------------------------------

    def remove(self, ids: Ids) -> None:
        if len(ids):
            self._writable().remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids):
            self._writable().add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                          np.asarray(ids, dtype=np.int64))

    def save(self, path: Path) -> None:
        if self._mapped_from is not None:
            # Unchanged since it was opened: copy the file. FAISS writes a memory-mapped IVF
            # as a reference to its mapped lists (not the lists), and the next build that
            # read that reference crashed (found by scripts/bench.py scale: a document saved again
            # with the same text makes a new generation with no vector changes).
            shutil.copyfile(self._mapped_from, path)
            return
        import faiss

        faiss.write_index(self._index, str(path))


def _read(path: Path, flags: int) -> faiss.Index:
    import faiss

    try:
        return faiss.read_index(str(path), flags)
    except Exception as exc:
        raise IndexCorruptError(f"the vector index {path} is unreadable ({exc.__class__.__name__});"
                                " run `assistant index --full` to rebuild it") from exc


def _native_ivf(index: faiss.Index) -> faiss.Index:
    """An IVF index that stores the chunk ids itself. Indexes written before this held the
    IVF inside an IndexIDMap2, whose remove_ids compacts its id map while the IVF keeps its
    internal numbers, so after a removal every later id was shifted (found by
    scripts/bench.py scale: recall 0.0004 after one incremental build). Such an index is
    converted before it is modified; one already modified cannot be repaired."""
    import faiss

    outer = faiss.downcast_index(index)
    if not isinstance(outer, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return index
    ivf = faiss.extract_index_ivf(outer)
    chunk_ids = faiss.vector_to_array(outer.id_map).astype(np.int64)
    try:
        ivf.make_direct_map()
        vectors = ivf.reconstruct_n(0, ivf.ntotal)
    except RuntimeError as exc:
        raise IndexCorruptError("the approximate vector index was damaged by an earlier update;"
                                " run `assistant index --full` to rebuild it") from exc
    ivf.reset()
    ivf.make_direct_map(False)
    ivf.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), chunk_ids)
    outer.own_fields = False  # keep ivf alive once the wrapper goes
    return ivf


def build_faiss(ids: Ids, vectors: Vectors, dim: int, ann_threshold: int, seed: int = 7
                ) -> FaissVectors:
    """A fresh FAISS index over all vectors: exact below the threshold, tuned IVF above."""
    import faiss

    n = len(ids)
    if n <= ann_threshold:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        store = FaissVectors(index, VectorIndexInfo(kind="flat"))
        store.add(ids, vectors)
        return store
    import os

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training uses every core
    nlist = int(min(4096, max(16, 2 * math.sqrt(n)), max(1, n // 8)))  # >= 8 points a list
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    # IVF stores the chunk ids itself: no IndexIDMap2 around it (see _native_ivf)
    ivf.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))
    nprobe, _ = tune_nprobe(ivf, vectors, rng, ids)
    return FaissVectors(ivf, VectorIndexInfo(kind="ivf", nlist=nlist, nprobe=nprobe))


_NPROBES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def tuning_queries(vectors: Vectors, rng: np.random.Generator, n: int = 200) -> Vectors:
    """Stand-ins for questions, made from the index's own vectors: half are chunks moved
    well away from themselves (cosine ~0.7, about where a question sits from its passage),
    half are midpoints of two random chunks (queries between topics). Both are harder for
    IVF than near-copies of stored vectors, so the tuned nprobe holds for real questions."""
    m = min(n, len(vectors))
    q = vectors[rng.choice(len(vectors), size=m, replace=False)].copy()
    half = m // 2
    q[:half] += rng.normal(scale=0.05, size=(half, q.shape[1])).astype(np.float32)
    q[half:] += vectors[rng.choice(len(vectors), size=m - half, replace=True)]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q, dtype=np.float32)


def tune_nprobe(index: faiss.Index, vectors: Vectors, rng: np.random.Generator, ids: Ids,
                target: float = 0.98, queries: int = 200) -> tuple[int, float]:
    """Smallest nprobe whose recall@10 against exact search reaches ``target``."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    q = tuning_queries(vectors, rng, queries)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, exact = flat.search(q, 10)
    # ids in the IDMap are chunk ids; map exact row numbers to ids through the id map
    exact_ids = np.asarray(ids)[exact]
    recall = 0.0
    nprobe = 1
    for nprobe in (p for p in _NPROBES if p <= ivf.nlist):
        ivf.nprobe = nprobe
        _, got = index.search(q, 10)
        recall = float(np.mean([len(set(a) & set(b)) / 10
                                for a, b in zip(got, exact_ids, strict=True)]))
        if recall >= target:
            break
    return nprobe, recall


def ivf_recall(store: FaissVectors, vectors: Vectors, ids: Ids, queries: Vectors, k: int = 10
               ) -> float:
    """Recall@k of the store against exact search over the same vectors (for benchmarks)."""
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, exact = flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    total = 0.0
    for qi in range(len(queries)):
        got = {i for i, _ in store.search(queries[qi], k)}
        total += len(got & set(ids[exact[qi]].tolist())) / k
    return total / max(1, len(queries))


def save(store: FaissVectors, target: Path) -> None:
    """FAISS reports a failed write (a full disk) as a RuntimeError; make it an OSError."""
    try:
        store.save(target)
    except RuntimeError as exc:
        err = OSError(errno.ENOSPC if "No space" in str(exc) else errno.EIO,
                      f"cannot write {target.name}")
        raise err from exc


class FaissBackend:
    name = "faiss"

    def open(self, layout: IndexLayout, info: VectorIndexInfo, generation_dir: Path
             ) -> FaissVectors:
        return FaissVectors.open(generation_dir / FAISS_FILE, info)

    def update(self, layout: IndexLayout, chunks: ChunkSource, base: IndexManifest | None,
               target: VectorTarget) -> VectorIndexInfo:
        """The base generation's index with the ids that left removed and the new ones added
        (ids are never reused), or a fresh one when there is no FAISS base of the right kind."""
        count = chunks.count()
        want_kind = "ivf" if count > target.ann_threshold else "flat"
        out = layout.staging / FAISS_FILE
        if base is not None and base.vectors.store == "faiss" and base.vectors.kind == want_kind:
            store = FaissVectors.open(layout.generation_dir(base.generation) / FAISS_FILE,
                                      base.vectors)
            stored = set(store.ids().tolist())
            in_db = chunks.ids()
            store.remove(np.asarray(sorted(stored - in_db), dtype=np.int64))
            for ids, vecs in chunks.batches(sorted(in_db - stored)):
                store.add(np.asarray(ids, dtype=np.int64), vecs)
            if store.count != count:
                raise IndexCorruptError("the vector index disagrees with the database; "
                                        "run `assistant index --full`")
            save(store, out)
            return store.info
        all_ids, all_vecs = chunks.all(target.dimension)
        store = build_faiss(all_ids, all_vecs, target.dimension, target.ann_threshold)
        save(store, out)
        return store.info


BACKEND = FaissBackend()
