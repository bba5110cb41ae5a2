"""Build: bring the index up to date with the corpus — incrementally, atomically, resumably.

1. Scan the corpus; compare sizes and mtimes with the live manifest. Nothing changed:
   return at once, without loading the model (well under a second).
2. Otherwise take the build lock, and work in ``staging/``: a copy of the live
   database, minus removed and changed documents, plus the new chunks, embedded in
   batches and committed batch by batch. A killed build leaves ``staging/`` behind;
   the next build with the same plan resumes from what it had embedded.
3. Update the vector store (remove/add ids, or rebuild when its kind must change),
   write the manifest, rename ``staging/`` to a new generation, and replace
   ``CURRENT``. Only that last rename publishes anything.

A changed model, chunk parameters or schema triggers a full rebuild, and the summary
says why. This module never prints: it reports through the ``progress`` callback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from assistant import ingest
from assistant import text as tx
from assistant.chunk import CHUNKER_VERSION, SEGMENTER, chunk_document
from assistant.embed import Embedder, OnnxEncoder, Tokenizer
from assistant.errors import (
    AssistantError,
    CorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexWriteError,
    ModelError,
)
from assistant.model_export import (
    ModelFiles,
    ensure_onnx,
    identify,
    onnx_path,
    onnx_sha256,
    shared_cache_dir,
)
from assistant.models import (
    SCHEMA_VERSION,
    BuildSummary,
    Chunk,
    ChunkParams,
    DocumentRecord,
    IndexManifest,
    IndexStatus,
    ModelIdentity,
    SkippedFile,
    SkippedRecord,
    SourceDocument,
    VectorIndexInfo,
)
from assistant.settings import Settings
from assistant.store import (
    MANIFEST,
    META_DB,
    IndexLayout,
    blob_vector,
    connect_write,
    fsync_dir,
    generation_name,
    iter_rows,
    next_id,
    open_index,
    read_manifest,
    remove_tree,
    sections_json,
    vector_blob,
    write_json_atomic,
)
from assistant.vectors import FAISS_FILE, FaissVectors

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "scan", "export", "embed", "vectors" or "publish"."""

PLAN = "plan.json"
BATCH_CHUNKS = 64
"""Chunks embedded and committed together: an interrupted build resumes from the last
commit, so this is the most a Ctrl+C can lose (about a second of work here); larger batches
were not faster (the embedder batches by a token budget of its own)."""
CHARS_PER_CHUNK = 900
"""A first guess of a document's chunks from its size, for the progress bar's total until
the first document is chunked."""


class _ChunkProgress:
    """The embedding stage's progress in chunks, not documents: one 500-page PDF is most of
    the work. The total is estimated from the files' sizes and the chunks per byte seen so
    far, exact once every document is chunked."""

    def __init__(self, report: Progress, files: list[ingest.CorpusFile]) -> None:
        self.report = report
        self.total_bytes = sum(max(f.size, 1) for f in files)
        self.bytes_seen = 0
        self.chunks_seen = 0
        self.done = 0
        self.current = (0.0, 0)
        """The document being chunked: the share of its bytes and the chunks seen so far."""

    def document(self, f: ingest.CorpusFile, chunks: int) -> None:
        """A document was chunked (or reused, or skipped: 0)."""
        self.bytes_seen += max(f.size, 1)
        self.chunks_seen += chunks
        self.current = (0.0, 0)

    def within(self, f: ingest.CorpusFile, share: float, chunks: int) -> None:
        """``share`` of a long document chunked so far, into ``chunks``."""
        self.current = (share * max(f.size, 1), chunks)

    def embedded(self, chunks: int) -> None:
        self.done += chunks
        self.show()

    def show(self) -> None:
        seen_bytes = self.bytes_seen + self.current[0]
        seen_chunks = self.chunks_seen + self.current[1]
        if seen_chunks:
            rest = (self.total_bytes - seen_bytes) * seen_chunks / seen_bytes
        else:
            rest = (self.total_bytes - seen_bytes) / CHARS_PER_CHUNK
        # below 100% until finish(): the estimate never claims the end early
        self.report("embed", self.done, max(self.done + 1, seen_chunks + round(rest)))

    def finish(self) -> None:
        self.report("embed", self.done, self.done)


def chunk_params(settings: Settings) -> ChunkParams:
    return ChunkParams(max_tokens=settings.chunk_max_tokens,
                       overlap_sentences=settings.chunk_overlap_sentences,
                       segmenter=SEGMENTER, chunker_version=CHUNKER_VERSION,
                       sentence_vectors=settings.sentence_vectors)


@dataclass
class _Plan:
    """What a build will do; saved in staging so an interrupted build can resume it."""

    base_generation: int | None
    weights_sha256: str
    params: ChunkParams
    store: str
    full_reason: str | None
    to_index: list[ingest.CorpusFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[DocumentRecord] = field(default_factory=list)
    known: dict[str, DocumentRecord] = field(default_factory=dict)
    """The live index's documents, even when it is rebuilt in full: what the summary calls
    added, changed, unchanged or removed."""
    still_skipped: dict[str, SkippedRecord] = field(default_factory=dict)
    """Files the live index could not read, unchanged since: not read again."""

    def key(self) -> str:
        return json.dumps({"base": self.base_generation, "model": self.weights_sha256,
                           "params": self.params.model_dump(), "store": self.store,
                           "full": self.full_reason is not None}, sort_keys=True)


def scan(settings: Settings) -> tuple[list[ingest.CorpusFile], list[SkippedFile]]:
    corpus = settings.corpus_dir
    if corpus.exists() and not corpus.is_dir():
        raise CorpusError(f"the corpus {corpus} is a file, not a folder; pass the folder that "
                          "holds the documents (--corpus DIR)")
    if not corpus.is_dir():
        raise CorpusError(f"the corpus folder {corpus} does not exist; create it and put "
                          ".txt, .md, .html or .pdf files in it, or pass --corpus DIR")
    files, skipped = ingest.discover(corpus)
    if not files:
        what = f" ({len(skipped)} other files skipped: unsupported or links)" if skipped else ""
        raise CorpusError(f"the corpus folder {corpus} has no .txt, .md, .html or .pdf "
                          f"documents{what}; add some and run `assistant index` again")
    return files, skipped


def stale_reasons(settings: Settings, manifest: IndexManifest | None,
                  files: list[ingest.CorpusFile]) -> list[str]:
    """Why the index no longer matches the corpus and settings (cheap: stat only, no hashing)."""
    if manifest is None:
        return ["no index has been built"]
    reasons: list[str] = []
    if manifest.chunk_params != chunk_params(settings):
        reasons.append("chunk parameters changed")
    if settings.store != "auto" and manifest.vectors.store != settings.store:
        reasons.append(f"vector store changed ({manifest.vectors.store} → {settings.store})")
    elif _qdrant_moved(settings, manifest):
        reasons.append("Qdrant location changed")
    seen = {f.doc_id for f in files}
    for f in files:
        rec = manifest.documents.get(f.doc_id)
        if rec is None:
            if not _same_file(manifest.skipped.get(f.doc_id), f):
                reasons.append(f"new document {f.doc_id}")
        elif not _same_file(rec, f):
            reasons.append(f"document changed: {f.doc_id}")
    reasons.extend(f"document removed: {d}" for d in manifest.documents if d not in seen)
    return reasons


def _same_file(rec: DocumentRecord | SkippedRecord | None, f: ingest.CorpusFile) -> bool:
    """The file is as the index saw it (size and mtime: cheap, no hashing)."""
    return rec is not None and rec.size == f.size and rec.mtime_ns == f.mtime_ns


def _remembered_skip(f: ingest.CorpusFile, reason: str) -> dict[str, SkippedRecord]:
    """A file that could not be indexed, as the manifest remembers it; a failure to read it
    (permissions, a vanished file) is not remembered: the next build tries again."""
    if reason.startswith("cannot read"):
        return {}
    return {f.doc_id: SkippedRecord(reason=reason, size=f.size, mtime_ns=f.mtime_ns)}


def _qdrant_moved(settings: Settings, manifest: IndexManifest) -> bool:
    """A new --qdrant-url (or none, for local mode): the vectors move, nothing is re-embedded."""
    want = settings.qdrant_url.rstrip("/") if settings.qdrant_url else None
    return settings.store == "qdrant" and manifest.vectors.qdrant_url != want


def resolve_store(settings: Settings) -> Settings:
    """Settings with ``store="auto"`` replaced by the store the live index uses (and its
    Qdrant URL, unless one is given), or FAISS for a new index: a plain `assistant index`
    after `--store qdrant` must not quietly move everything back to FAISS."""
    if settings.store != "auto":
        return settings
    store, url = "faiss", settings.qdrant_url
    try:
        gen = IndexLayout(settings.index_dir).current_generation()
        if gen is not None:
            vectors = read_manifest(gen).vectors
            store = vectors.store
            if url is None:
                url = vectors.qdrant_url
    except AssistantError:
        pass  # a damaged index is rebuilt with the default store
    return settings.model_copy(update={"store": store, "qdrant_url": url})


def resolve_corpus(settings: Settings) -> Settings:
    """Settings whose corpus is the one the index was built from, when none is given (no
    --corpus, ``ASSISTANT_CORPUS_DIR`` or ``corpus_dir`` in assistant.toml) and that folder
    still exists: `assistant info --index DIR` compares DIR with its own corpus, not with
    whatever ./corpus the working directory holds."""
    if "corpus_dir" in settings.model_fields_set:
        return settings
    try:
        gen = IndexLayout(settings.index_dir).current_generation()
        remembered = Path(read_manifest(gen).corpus_dir) if gen is not None else None
    except AssistantError:
        return settings
    if remembered is None or not remembered.is_dir():
        return settings
    return settings.model_copy(update={"corpus_dir": remembered})


def build_index(settings: Settings, full: bool = False, progress: Progress | None = None,
                ) -> BuildSummary:
    """Make the index at ``settings.index_dir`` reflect ``settings.corpus_dir`` (or, when no
    corpus is given, the corpus it was built from: ``resolve_corpus``)."""
    started = time.perf_counter()
    settings = resolve_store(resolve_corpus(settings))
    report = progress or (lambda stage, done, total: None)
    files, skipped = scan(settings)
    if settings.store == "qdrant":  # fail before embedding, not after
        from assistant.qdrant_store import require_client

        require_client()
    layout = IndexLayout(settings.index_dir)
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexWriteError(f"cannot create the index folder {layout.root}: "
                              f"{exc.strerror or exc}") from exc
    from filelock import FileLock, Timeout

    lock = FileLock(str(layout.lock_file))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            report("waiting", 0, 0)
            lock.acquire(timeout=settings.lock_timeout_s)
    except Timeout as exc:
        raise IndexLockedError(
            f"another `assistant index` is building {layout.root} (waited "
            f"{settings.lock_timeout_s:.0f} s); try again when it has finished") from exc
    except OSError as exc:
        raise IndexWriteError(f"cannot write to the index folder {layout.root}: "
                              f"{exc.strerror or exc}; fix its permissions or use --index DIR"
                              ) from exc
    try:
        return _build_locked(settings, layout, files, skipped, full, report, started)
    except OSError as exc:
        raise _write_error(exc, layout) from exc
    except sqlite3.OperationalError as exc:
        if "full" in str(exc) or "disk" in str(exc) or "readonly" in str(exc):
            raise IndexWriteError(f"cannot write the index ({exc}); the previous index is "
                                  "intact — free some space or fix permissions, then run "
                                  "`assistant index` again") from exc
        raise
    finally:
        lock.release()


def _write_error(exc: OSError, layout: IndexLayout) -> AssistantError:
    if exc.errno == errno.ENOSPC:
        return IndexWriteError(f"the disk is full while writing {layout.root}; the previous index "
                               "is intact — free some space and run `assistant index` again")
    return IndexWriteError(f"cannot write the index in {layout.root} ({exc.strerror or exc}); "
                           "the previous index is intact — fix the folder's permissions (or "
                           "use --index DIR) and run `assistant index` again")


def _current_manifest(layout: IndexLayout) -> tuple[IndexManifest | None, str | None]:
    """The live manifest, or None with the reason a full rebuild is needed."""
    try:
        gen = layout.current_generation()
        if gen is None:
            return None, None
        manifest = read_manifest(gen)
        if manifest.vectors.store == "faiss":
            # Every part present and agreeing, not only the manifest: a damaged database or
            # vector file makes even an incremental run rebuild in full (~0.2 s to check).
            open_index(layout.root).close()
        return manifest, None
    except AssistantError as exc:
        return None, f"the existing index is unusable ({exc.message.split(';')[0]})"


def _build_locked(settings: Settings, layout: IndexLayout, files: list[ingest.CorpusFile],
                  skipped: list[SkippedFile], full: bool, report: Progress, started: float
                  ) -> BuildSummary:
    current, broken = _current_manifest(layout)
    model = identify(settings.resolved_model_path(), layout.models_dir)
    params = chunk_params(settings)
    reason: str | None = None
    if full:
        reason = "--full was requested"
    elif broken:
        reason = broken
    elif current is not None:
        if current.model.weights_sha256 != model.weights_sha256:
            reason = (f"the embedding model changed ({current.model.name} "
                      f"{current.model.weights_sha256[:12]} → {settings.model_name} "
                      f"{model.weights_sha256[:12]})")
        elif current.chunk_params != params:
            diffs = [f"{k} {getattr(current.chunk_params, k)} → {getattr(params, k)}"
                     for k in type(params).model_fields if getattr(current.chunk_params, k) !=
                     getattr(params, k)]
            reason = "chunk parameters changed (" + ", ".join(diffs) + ")"
        # Another vector store is not a reason to re-embed: the database holds every vector,
        # and the new store is filled from it (_update_vectors).
    base = None if (reason or current is None) else current
    plan = _Plan(base_generation=base.generation if base else None,
                 weights_sha256=model.weights_sha256, params=params, store=settings.store,
                 full_reason=reason, known=dict(current.documents) if current else {})
    prev_docs = base.documents if base else {}
    prev_skipped = base.skipped if base else {}
    ids = {f.doc_id for f in files}
    for f in files:
        rec = prev_docs.get(f.doc_id)
        if rec is not None and _same_file(rec, f):
            plan.unchanged.append(rec)
        elif _same_file(skip := prev_skipped.get(f.doc_id), f) and skip is not None:
            plan.still_skipped[f.doc_id] = skip
            skipped.append(SkippedFile(path=f.doc_id, reason=skip.reason))
        else:
            plan.to_index.append(f)
    plan.removed = sorted(d for d in prev_docs if d not in ids)
    had_index = current is not None or broken is not None
    summary = BuildSummary(index_dir=str(layout.root), corpus_dir=str(settings.corpus_dir),
                           up_to_date=False, full_rebuild_reason=reason if had_index else None,
                           skipped=list(skipped),
                           removed=sorted(d for d in plan.known if d not in ids))
    if (base is not None and not plan.to_index and not plan.removed
            and base.vectors.store == settings.store and not _qdrant_moved(settings, base)):
        summary.up_to_date = True
        summary.unchanged = len(plan.unchanged)
        summary.documents = len(base.documents)
        summary.chunk_count = base.chunk_count
        summary.generation = base.generation
        summary.seconds = time.perf_counter() - started
        return summary
    return _rebuild(settings, layout, plan, model, base, summary, report, started)


def _open_staging(layout: IndexLayout, plan: _Plan, base: IndexManifest | None
                  ) -> sqlite3.Connection:
    staging = layout.staging
    plan_file = staging / PLAN
    if staging.is_dir():
        try:
            resumable = plan_file.read_text() == plan.key() and (staging / META_DB).is_file()
        except OSError:
            resumable = False
        if resumable:
            try:
                conn = connect_write(staging / META_DB)
                conn.execute("PRAGMA quick_check").fetchone()
                return conn
            except sqlite3.DatabaseError:
                pass
        remove_tree(staging)
    staging.mkdir(parents=True)
    if base is not None:
        shutil.copyfile(layout.generation_dir(base.generation) / META_DB, staging / META_DB)
    conn = connect_write(staging / META_DB)
    write_json_atomic(plan_file, plan.key())
    return conn


def _rebuild(settings: Settings, layout: IndexLayout, plan: _Plan, model: ModelFiles,
             base: IndexManifest | None, summary: BuildSummary, report: Progress,
             started: float) -> BuildSummary:
    exported: list[bool] = []

    def exporting() -> None:
        exported.append(True)
        report("export", 0, 1)

    onnx_file, tokenizer, encoder, onnx_digest = _load_model(layout, model, settings, exporting)
    if exported:
        report("export", 1, 1)
    embedder = Embedder(tokenizer, encoder, batch_size=settings.embed_batch_size,
                        workers=settings.embed_threads or os.cpu_count() or 1)
    conn = _open_staging(layout, plan, base)
    prev_docs = base.documents if base else {}
    try:
        # Which documents the staging database already holds, complete (resumed work).
        held = {str(d): (str(h), int(c)) for d, h, c in
                conn.execute("SELECT doc_id, content_hash, complete FROM documents")}
        conn.execute("BEGIN")
        for doc_id in plan.removed:
            _delete_document(conn, doc_id)
        for doc_id, (_, complete) in held.items():
            if not complete:
                _delete_document(conn, doc_id)
        conn.execute("COMMIT")
        records: dict[str, DocumentRecord] = {r.doc_id: r for r in plan.unchanged}
        not_indexed: dict[str, SkippedRecord] = dict(plan.still_skipped)
        pending: list[_Piece] = []
        pending_chunks = 0
        bar = _ChunkProgress(report, plan.to_index)
        for f in plan.to_index:
            bar.show()
            try:
                raw = ingest.read_raw(f)
                digest = ingest.content_hash(raw)
                after = f.path.stat()
            except (ingest.UnreadableDocument, OSError) as exc:
                summary.skipped.append(SkippedFile(path=f.doc_id, reason=str(exc)))
                if isinstance(exc, ingest.UnreadableDocument):
                    not_indexed.update(_remembered_skip(f, str(exc)))
                _drop_if_held(conn, f.doc_id, held)
                bar.document(f, 0)
                continue
            mtime = f.mtime_ns
            if after.st_mtime_ns != f.mtime_ns or after.st_size != f.size:
                summary.warnings.append(f"{f.doc_id} changed while it was being indexed; the "
                                        "version read is indexed, the next build takes the rest")
                mtime = 0  # forces a re-read next time
            prev = prev_docs.get(f.doc_id)
            if prev is not None and prev.content_hash == digest and held.get(f.doc_id) == (
                    digest, 1):
                records[f.doc_id] = prev.model_copy(update={"size": f.size, "mtime_ns": mtime})
                summary.unchanged += 1
                bar.document(f, prev.chunks)
                bar.embedded(prev.chunks)
                continue
            if f.doc_id in held and held[f.doc_id] == (digest, 1):
                count = conn.execute("SELECT chunk_count FROM documents WHERE doc_id=?",
                                     (f.doc_id,)).fetchone()[0]
                records[f.doc_id] = _record(f, digest, mtime, count, conn)
                summary.chunks_reused += int(count)
                _classify(summary, plan.known, f.doc_id, digest)
                bar.document(f, int(count))
                bar.embedded(int(count))
                continue
            _drop_if_held(conn, f.doc_id, held)
            try:
                doc = ingest.extract(f, raw)
            except ingest.UnreadableDocument as exc:
                summary.skipped.append(SkippedFile(path=f.doc_id, reason=str(exc)))
                not_indexed.update(_remembered_skip(f, str(exc)))
                bar.document(f, 0)
                continue
            summary.warnings.extend(f"{f.doc_id}: {w}" for w in doc.warnings)
            # Chunks are embedded and committed in batches as they come, even inside one
            # document, so a 50 MB file never holds all its chunks and vectors in memory.
            piece = _Piece(doc, f)
            done = 0
            for chunk in chunk_document(doc, tokenizer.count, tokenizer.split_points,
                                        settings.chunk_max_tokens,
                                        settings.chunk_overlap_sentences):
                piece.chunks.append(chunk)
                pending_chunks += 1
                if pending_chunks >= BATCH_CHUNKS:
                    stored = _embed_and_store(conn, embedder, [*pending, piece],
                                              settings.sentence_vectors)
                    summary.chunks_embedded += stored
                    done += len(piece.chunks)
                    pending, pending_chunks = [], 0
                    piece = _Piece(doc, f, first=False)
                    bar.within(f, chunk.end / max(len(doc.text), 1), done)
                    bar.embedded(stored)
            piece.last, piece.total = True, done + len(piece.chunks)
            pending.append(piece)
            bar.document(f, piece.total)
            records[f.doc_id] = DocumentRecord(doc_id=f.doc_id, title=doc.title, format=doc.format,
                                               content_hash=digest, size=f.size, mtime_ns=mtime,
                                               chunks=piece.total)
            _classify(summary, plan.known, f.doc_id, digest)
        if pending:
            stored = _embed_and_store(conn, embedder, pending, settings.sentence_vectors)
            summary.chunks_embedded += stored
            bar.embedded(stored)
        bar.finish()
        if not records:
            why = "; ".join(f"{s.path}: {s.reason}" for s in summary.skipped[:3])
            more = f"; and {len(summary.skipped) - 3} more" if len(summary.skipped) > 3 else ""
            raise CorpusError(f"none of the documents in {settings.corpus_dir} could be read "
                              f"({why}{more}); nothing was changed")
        stale = set(str(r[0]) for r in conn.execute("SELECT doc_id FROM documents")) - set(records)
        if stale:
            conn.execute("BEGIN")
            for doc_id in stale:
                _delete_document(conn, doc_id)
            conn.execute("COMMIT")
        _refresh_term_df(conn)
        report("vectors", 0, 1)
        vectors = _update_vectors(settings, layout, conn, base)
        report("vectors", 1, 1)
        chunk_count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        sentence_count = conn.execute("SELECT count(*) FROM sentences").fetchone()[0]
    finally:
        conn.close()
    report("publish", 0, 1)
    generation = max([base.generation if base else 0] +
                     [int(p.name[4:]) for p in layout.generations() if p.name[4:].isdigit()]) + 1
    manifest = IndexManifest(
        schema_version=SCHEMA_VERSION, generation=generation,
        model=ModelIdentity(name=settings.model_name, path=model.model_path,
                            weights_sha256=model.weights_sha256, dimension=model.dimension,
                            onnx_file=str(onnx_file.relative_to(layout.root)),
                            onnx_sha256=onnx_digest),
        chunk_params=plan.params, vectors=vectors, documents=dict(sorted(records.items())),
        chunk_count=int(chunk_count), sentence_count=int(sentence_count),
        built_at=datetime.now(UTC), build_seconds=round(time.perf_counter() - started, 3),
        corpus_dir=str(settings.corpus_dir.resolve()), skipped=dict(sorted(not_indexed.items())))
    _publish(layout, manifest)
    report("publish", 1, 1)
    summary.unchanged += len(plan.unchanged)
    summary.documents = len(records)
    summary.chunk_count = int(chunk_count)
    summary.generation = generation
    summary.seconds = time.perf_counter() - started
    return summary


def _load_model(layout: IndexLayout, model: ModelFiles, settings: Settings,
                on_export: Callable[[], None] | None = None
                ) -> tuple[Path, Tokenizer, OnnxEncoder, str]:
    """The index's export of the model, loaded. A damaged export is replaced from the shared
    cache, and if that is damaged too, exported again: `assistant index --full` repairs it."""
    for attempt in range(3):
        onnx_file = ensure_onnx(layout.models_dir, model, settings.embed_threads, on_export)
        try:
            digest = onnx_sha256(onnx_file)
            return (onnx_file, Tokenizer(onnx_file.parent / "tokenizer.json"),
                    OnnxEncoder(onnx_file, 1), digest)  # one thread per worker: see _rebuild
        except (ModelError, OSError, ValueError, KeyError):
            if attempt == 2:
                raise
            remove_tree(onnx_file.parent)
            if attempt == 1:
                remove_tree(onnx_path(shared_cache_dir() / "models", model).parent)
    raise AssertionError("unreachable")


def _classify(summary: BuildSummary, known: dict[str, DocumentRecord], doc_id: str,
              digest: str) -> None:
    """Count a document indexed in this build as added, changed, or (its content the same,
    re-embedded by a full rebuild) unchanged."""
    old = known.get(doc_id)
    if old is None:
        summary.added.append(doc_id)
    elif old.content_hash == digest:
        summary.unchanged += 1
    else:
        summary.changed.append(doc_id)


def _record(f: ingest.CorpusFile, digest: str, mtime: int, count: int,
            conn: sqlite3.Connection) -> DocumentRecord:
    title, fmt = conn.execute("SELECT title, format FROM documents WHERE doc_id=?",
                              (f.doc_id,)).fetchone()
    return DocumentRecord(doc_id=f.doc_id, title=title, format=fmt, content_hash=digest,
                          size=f.size, mtime_ns=mtime, chunks=int(count))


def _drop_if_held(conn: sqlite3.Connection, doc_id: str, held: dict[str, tuple[str, int]]
                  ) -> None:
    if doc_id in held:
        conn.execute("BEGIN")
        _delete_document(conn, doc_id)
        conn.execute("COMMIT")
        held.pop(doc_id, None)


def _delete_document(conn: sqlite3.Connection, doc_id: str) -> None:
    conn.execute("DELETE FROM sentence_fts WHERE rowid IN "
                 "(SELECT id FROM sentences WHERE doc_id=?)", (doc_id,))
    conn.execute("DELETE FROM sentences WHERE doc_id=?", (doc_id,))
    conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
    conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))


@dataclass
class _Piece:
    """Consecutive chunks of one document in an embedding batch: the document's first piece
    inserts its row (incomplete until its last piece is committed)."""

    doc: SourceDocument
    file: ingest.CorpusFile
    chunks: list[Chunk] = field(default_factory=list)
    first: bool = True
    last: bool = False
    total: int = 0
    """The document's chunk count, known on its last piece."""


def _embed_and_store(conn: sqlite3.Connection, embedder: Embedder,
                     pending: list[_Piece], sentence_vectors: str = "standalone") -> int:
    """Embed some chunks and commit them; a document is marked complete with its last piece."""
    all_chunks = [c for p in pending for c in p.chunks]
    texts = [c.embed_prefix + c.text for c in all_chunks]
    spans = [[(len(c.embed_prefix) + s.start - c.start, len(c.embed_prefix) + s.end - c.start)
              for s in c.sentences[c.first_owned:]] for c in all_chunks]
    if sentence_vectors == "late":
        chunk_vecs, sentence_vecs = embedder.embed_with_spans(texts, spans)
    else:
        chunk_vecs = embedder.embed(texts)
        owned = [[c.text[s.start - c.start:s.end - c.start] for s in c.sentences[c.first_owned:]]
                 for c in all_chunks]
        # a link's characters say nothing a question could ask about; embed the prose only
        flat = embedder.embed([tx.without_links(t) for group in owned for t in group])
        sentence_vecs, k = [], 0
        for group in owned:
            sentence_vecs.append(flat[k:k + len(group)])
            k += len(group)
    next_chunk = next_id(conn, "chunks")
    next_sentence = next_id(conn, "sentences")
    chunk_rows, sentence_rows, fts_rows = [], [], []
    k = 0
    for p in pending:
        doc = p.doc
        context = ""
        for c in p.chunks:
            cid = next_chunk
            next_chunk += 1
            chunk_rows.append((cid, c.doc_id, c.ordinal, c.section, c.start, c.end, c.first_owned,
                               vector_blob(chunk_vecs[k])))
            context = f"{doc.title}\n{c.section}"
            for s, vec in zip(c.sentences[c.first_owned:], sentence_vecs[k], strict=True):
                sentence_rows.append((next_sentence, cid, c.doc_id, s.start, s.end,
                                      vector_blob(vec)))
                fts_rows.append((next_sentence, doc.text[s.start:s.end], context))
                next_sentence += 1
            k += 1
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO documents(doc_id, title, format, content_hash, size, mtime_ns, text, sections,"
        " chunk_count, complete) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [(p.doc.doc_id, p.doc.title, p.doc.format, p.doc.content_hash, p.file.size,
          p.file.mtime_ns, p.doc.text, sections_json(p.doc.sections), p.total, int(p.last))
         for p in pending if p.first])
    conn.executemany("UPDATE documents SET chunk_count=?, complete=1 WHERE doc_id=?",
                     [(p.total, p.doc.doc_id) for p in pending if p.last and not p.first])
    conn.executemany("INSERT INTO chunks(id, doc_id, ordinal, section, start, end, first_owned, "
                     "vector) VALUES (?,?,?,?,?,?,?,?)", chunk_rows)
    conn.executemany("INSERT INTO sentences(id, chunk_id, doc_id, start, end, vector) "
                     "VALUES (?,?,?,?,?,?)", sentence_rows)
    conn.executemany("INSERT INTO sentence_fts(rowid, body, context) VALUES (?,?,?)", fts_rows)
    _add_term_vectors(conn, embedder, {t for _, body, ctx in fts_rows
                                       for t in tx.content_terms(f"{body} {ctx}")})
    conn.execute("COMMIT")
    return len(all_chunks)


def _refresh_term_df(conn: sqlite3.Connection) -> None:
    """Copy each word's sentence frequency out of the FTS vocabulary into a plain table."""
    conn.execute("BEGIN")
    conn.execute("DELETE FROM term_df")
    conn.execute("INSERT INTO term_df(term, df) SELECT term, doc FROM sentence_vocab")
    conn.execute("COMMIT")


def _add_term_vectors(conn: sqlite3.Connection, embedder: Embedder, words: set[str]) -> None:
    """Embed the words the index has not seen yet (single words are a few word pieces, so
    this costs little); the answer stage uses them to match "money" with "revenue"."""
    words = {w for w in words if not w.isdigit()}
    if not words:
        return
    todo = sorted(words)
    known: set[str] = set()
    for i in range(0, len(todo), 500):
        part = todo[i:i + 500]
        marks = ",".join("?" * len(part))
        known.update(str(r[0]) for r in conn.execute(
            f"SELECT term FROM term_vectors WHERE term IN ({marks})", part))
    new = [w for w in todo if w not in known]
    if not new:
        return
    vecs = embedder.embed(new)
    conn.executemany("INSERT INTO term_vectors(term, vector) VALUES (?, ?)",
                     [(w, vector_blob(v)) for w, v in zip(new, vecs, strict=True)])


def _all_chunk_vectors(conn: sqlite3.Connection, dim: int
                       ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    ids: list[int] = []
    rows: list[npt.NDArray[np.float32]] = []
    for cid, blob in iter_rows(conn, "SELECT id, vector FROM chunks ORDER BY id"):
        ids.append(int(cid))  # type: ignore[call-overload]
        rows.append(blob_vector(blob))  # type: ignore[arg-type]
    arr = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return np.asarray(ids, dtype=np.int64), arr.astype(np.float32)


def _update_vectors(settings: Settings, layout: IndexLayout, conn: sqlite3.Connection,
                    base: IndexManifest | None) -> VectorIndexInfo:
    """Write the staging generation's vector store: the base's, with ids that left the
    database removed and new ones added (ids are never reused); or a fresh one."""
    from assistant.vectors import build_faiss

    if settings.store == "qdrant":
        from assistant.qdrant_store import update_qdrant

        info: VectorIndexInfo = update_qdrant(settings, layout, conn, base)
        return info
    dim = 384
    count = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
    want_kind = "ivf" if count > settings.ann_threshold else "flat"
    target = layout.staging / FAISS_FILE
    if base is not None and base.vectors.store == "faiss" and base.vectors.kind == want_kind:
        store = FaissVectors.open(layout.generation_dir(base.generation) / FAISS_FILE,
                                  base.vectors)
        stored = set(store.ids().tolist())
        in_db = {int(r[0]) for r in conn.execute("SELECT id FROM chunks")}
        store.remove(np.asarray(sorted(stored - in_db), dtype=np.int64))
        new_ids = sorted(in_db - stored)
        if new_ids:
            vecs = [blob_vector(conn.execute("SELECT vector FROM chunks WHERE id=?",
                                             (i,)).fetchone()[0]) for i in new_ids]
            store.add(np.asarray(new_ids, dtype=np.int64), np.stack(vecs))
        if store.count != count:
            raise IndexCorruptError("the vector index disagrees with the database; "
                                    "run `assistant index --full`")
        _save_vectors(store, target)
        return store.info
    all_ids, all_vecs = _all_chunk_vectors(conn, dim)
    store = build_faiss(all_ids, all_vecs, dim, settings.ann_threshold)
    _save_vectors(store, target)
    return store.info


def _save_vectors(store: FaissVectors, target: Path) -> None:
    """FAISS reports a failed write (a full disk) as a RuntimeError; make it an OSError."""
    try:
        store.save(target)
    except RuntimeError as exc:
        err = OSError(errno.ENOSPC if "No space" in str(exc) else errno.EIO,
                      f"cannot write {target.name}")
        raise err from exc


def _publish(layout: IndexLayout, manifest: IndexManifest) -> None:
    """Name the staging folder a generation and point CURRENT at it; keep two generations."""
    staging = layout.staging
    (staging / PLAN).unlink(missing_ok=True)
    write_json_atomic(staging / MANIFEST, manifest.model_dump_json(indent=2))
    for p in staging.iterdir():
        if p.is_file():
            with open(p, "rb+") as fh:
                import os

                os.fsync(fh.fileno())
    fsync_dir(staging)
    name = generation_name(manifest.generation)
    target = layout.root / name
    if target.exists():
        remove_tree(target)
    staging.rename(target)
    fsync_dir(layout.root)
    write_json_atomic(layout.current_file, name + "\n")
    keep = {name}
    gens = [p for p in layout.generations() if p.name != name]
    if gens:
        keep.add(gens[-1].name)
    for p in layout.generations():
        if p.name not in keep:
            remove_tree(p)


def index_status(settings: Settings) -> IndexStatus:
    """What the index holds and whether it is stale against the corpus (the corpus is only
    stat-ed, never read: fast)."""
    settings = resolve_store(resolve_corpus(settings))
    layout = IndexLayout(settings.index_dir)
    status = IndexStatus(index_dir=str(settings.index_dir), corpus_dir=str(settings.corpus_dir),
                         exists=False)
    gen = layout.current_generation() if settings.index_dir.is_dir() else None
    if gen is None:
        status.stale_reasons = ["no index has been built"]
        return status
    manifest = read_manifest(gen)
    if manifest.vectors.store == "faiss":
        # The database and vectors too, not only the manifest: a damaged index is reported
        # with its fix rather than described as fine (~0.2 s).
        open_index(layout.root).close()
    status.exists = True
    status.documents = list(manifest.documents.values())
    status.chunk_count = manifest.chunk_count
    status.sentence_count = manifest.sentence_count
    status.model = f"{manifest.model.name} ({manifest.model.weights_sha256[:12]})"
    status.built_at = manifest.built_at
    status.generation = manifest.generation
    status.vectors = manifest.vectors
    try:
        files, _ = scan(settings)
    except CorpusError as exc:
        status.stale_reasons = [exc.message.split(";")[0]]
        status.stale = True
        return status
    status.stale_reasons = stale_reasons(settings, manifest, files)
    status.stale = bool(status.stale_reasons)
    return status


def documents_changed(manifest: IndexManifest) -> list[str]:
    """Documents of the corpus an index was built from that changed since (stat only)."""
    corpus = Path(manifest.corpus_dir)
    if not corpus.is_dir():
        return []
    files, _ = ingest.discover(corpus)
    changed = [f.doc_id for f in files if not _same_file(
        manifest.documents.get(f.doc_id) or manifest.skipped.get(f.doc_id), f)]
    seen = {f.doc_id for f in files}
    return changed + [d for d in manifest.documents if d not in seen]
