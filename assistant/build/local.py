"""The build into an index folder: brought up to date with the corpus — incrementally,
atomically, resumably.

1. ``plan``: scan the corpus; compare sizes and mtimes with the live manifest. Nothing
   changed: return at once, without loading the model (well under a second).
2. Otherwise take the build lock, and work in ``staging``: a copy of the live database,
   minus removed and changed documents, plus the new chunks, embedded in batches and
   committed batch by batch (``embedding``). A killed build leaves ``staging/`` behind; the
   next build with the same plan resumes from what it had embedded.
3. ``publish``: update the vector store through its adapter (remove/add ids, or rebuild when
   its kind must change), write the manifest, rename ``staging/`` to a new generation, and
   replace ``CURRENT``. Only that last rename publishes anything.

A changed model, chunk parameters or schema triggers a full rebuild, and the summary says
why. The transformer is made by ``encoder`` (``OnnxEncoder`` unless a stand-in is passed in).
"""

from __future__ import annotations

import errno
import os
import time
from datetime import UTC, datetime

from assistant import ingest
from assistant.build import publish as publishing
from assistant.build.embedding import (
    EncoderFactory,
    Progress,
    embed_documents,
    load_model,
)
from assistant.build.plan import (
    Plan,
    current_manifest,
    make_plan,
    resolve_corpus,
    scan,
    up_to_date,
)
from assistant.build.staging import open_staging
from assistant.embed import Embedder, OnnxEncoder
from assistant.errors import AssistantError, CorpusError, IndexLockedError, IndexWriteError
from assistant.index.layout import IndexLayout, not_utf8
from assistant.index.sqlite import refused_writes
from assistant.model_export import ModelFiles, identify
from assistant.models import (
    SCHEMA_VERSION,
    BuildSummary,
    IndexManifest,
    ModelIdentity,
    SkippedFile,
)
from assistant.settings import Settings


def build_local_index(settings: Settings, full: bool = False, progress: Progress | None = None,
                      encoder: EncoderFactory = OnnxEncoder) -> BuildSummary:
    """Make the index at ``settings.index_dir`` reflect ``settings.corpus_dir`` (or, when no
    corpus is given, the corpus it was built from: ``resolve_corpus``)."""
    started = time.perf_counter()
    settings = resolve_corpus(settings)
    report = progress or (lambda stage, done, total: None)
    files, skipped = scan(settings)
    layout = IndexLayout(settings.index_dir)
    if (odd := not_utf8(layout.root)) is not None:
        raise IndexWriteError(f"the index path {odd} is not valid UTF-8; rename the folder "
                              "with the odd bytes, or pass another folder (--index DIR)")
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
        # A folder this process may not write to (read-only, another user's) can still be up
        # to date: then there is nothing to write, and saying so is the right answer.
        if not full:
            plan, base, _, summary = _plan(settings, layout, files, skipped, False, started)
            if base is not None and up_to_date(plan, base):
                return summary
        raise IndexWriteError(f"cannot write to the index folder {layout.root}: "
                              f"{exc.strerror or exc}; fix its permissions or use --index DIR"
                              ) from exc
    try:
        with refused_writes(lambda why: IndexWriteError(
                f"cannot write the index ({why}); the previous index is intact — free some "
                "space or fix permissions, then run `assistant index` again")):
            return _build_locked(settings, layout, files, skipped, full, report, started,
                                 encoder)
    except OSError as exc:
        raise _write_error(exc, layout) from exc
    finally:
        lock.release()


def _write_error(exc: OSError, layout: IndexLayout) -> AssistantError:
    if exc.errno == errno.ENOSPC:
        return IndexWriteError(f"the disk is full while writing {layout.root}; the previous index "
                               "is intact — free some space and run `assistant index` again")
    return IndexWriteError(f"cannot write the index in {layout.root} ({exc.strerror or exc}); "
                           "the previous index is intact — fix the folder's permissions (or "
                           "use --index DIR) and run `assistant index` again")


def _build_locked(settings: Settings, layout: IndexLayout, files: list[ingest.CorpusFile],
                  skipped: list[SkippedFile], full: bool, report: Progress, started: float,
                  encoder: EncoderFactory) -> BuildSummary:
    plan, base, model, summary = _plan(settings, layout, files, skipped, full, started)
    if base is not None and up_to_date(plan, base):
        return summary
    return _rebuild(settings, layout, plan, model, base, summary, report, started, encoder)


def _plan(settings: Settings, layout: IndexLayout, files: list[ingest.CorpusFile],
          skipped: list[SkippedFile], full: bool, started: float
          ) -> tuple[Plan, IndexManifest | None, ModelFiles, BuildSummary]:
    """What the build must do, and the summary so far (complete when it is up to date)."""
    current, broken = current_manifest(layout)
    model = identify(settings.resolved_model_path(), layout.models_dir)
    plan, base = make_plan(settings, current, broken, model.weights_sha256, settings.model_name,
                           files, skipped, full)
    ids = {f.doc_id for f in files}
    kept = {r.doc_id for r in plan.unchanged}
    had_index = current is not None or broken is not None
    summary = BuildSummary(index_dir=str(layout.root), corpus_dir=str(settings.corpus_dir),
                           up_to_date=False,
                           full_rebuild_reason=plan.full_reason if had_index else None,
                           skipped=list(skipped),
                           removed=sorted(d for d in plan.known if d not in ids
                                          and d not in kept))
    if base is not None and up_to_date(plan, base):
        summary.up_to_date = True
        summary.unchanged = len(plan.unchanged)
        summary.documents = len(base.documents)
        summary.chunk_count = base.chunk_count
        summary.generation = base.generation
        summary.seconds = time.perf_counter() - started
    return plan, base, model, summary


def _rebuild(settings: Settings, layout: IndexLayout, plan: Plan, model: ModelFiles,
             base: IndexManifest | None, summary: BuildSummary, report: Progress,
             started: float, encoder: EncoderFactory) -> BuildSummary:
    exported: list[bool] = []

    def exporting() -> None:
        exported.append(True)
        report("export", 0, 1)

    onnx_file, tokenizer, model_encoder, model_digests = load_model(layout, model, settings,
                                                                    exporting, encoder)
    if exported:
        report("export", 1, 1)
    embedder = Embedder(tokenizer, model_encoder, batch_size=settings.embed_batch_size,
                        workers=settings.embed_threads or os.cpu_count() or 1)
    db, notice = open_staging(layout, plan, base)
    if notice is not None:
        summary.warnings.append(notice)
    try:
        held = db.held_documents()
        # a document a killed build left half-embedded is resumed if it is to be indexed
        indexing = {f.doc_id for f in plan.to_index}
        db.drop_documents(plan.removed + [d for d, (_, done) in held.items()
                                          if not done and d not in indexing])
        records, not_indexed = embed_documents(db, embedder, tokenizer, settings, plan,
                                               base.documents if base else {}, held, summary,
                                               report)
        if not records:
            why = "; ".join(f"{s.path}: {s.reason}" for s in summary.skipped[:3])
            more = f"; and {len(summary.skipped) - 3} more" if len(summary.skipped) > 3 else ""
            raise CorpusError(f"none of the documents in {settings.corpus_dir} could be read "
                              f"({why}{more}); nothing was changed")
        db.drop_documents(sorted(db.document_ids() - set(records)))
        db.refresh_term_df()
        report("vectors", 0, 1)
        vectors = publishing.update_vectors(settings, layout, db, base, model.dimension)
        report("vectors", 1, 1)
        chunk_count, sentence_count = db.counts()
    finally:
        db.close()
    report("publish", 0, 1)
    generation = max([base.generation if base else 0] +
                     [int(p.name[4:]) for p in layout.generations() if p.name[4:].isdigit()]) + 1
    manifest = IndexManifest(
        schema_version=SCHEMA_VERSION, generation=generation,
        model=ModelIdentity(name=settings.model_name, path=model.model_path,
                            weights_sha256=model.weights_sha256, dimension=model.dimension,
                            onnx_file=str(onnx_file.relative_to(layout.root)),
                            files=model_digests),
        chunk_params=plan.params, vectors=vectors, documents=dict(sorted(records.items())),
        chunk_count=chunk_count, sentence_count=sentence_count,
        built_at=datetime.now(UTC), build_seconds=round(time.perf_counter() - started, 3),
        corpus_dir=str(settings.corpus_dir.resolve()), skipped=dict(sorted(not_indexed.items())))
    publishing.publish(layout, manifest)
    report("publish", 1, 1)
    summary.unchanged += len(plan.unchanged)
    summary.documents = len(records)
    summary.chunk_count = chunk_count
    summary.generation = generation
    summary.seconds = time.perf_counter() - started
    return summary
