"""Planning a build: scan the corpus, compare it with the live index, decide what to do.

Cheap by design (stat only, no hashing, no model): an unchanged corpus is recognised in well
under a second, and ``local_status`` answers `assistant info` without loading the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from assistant import ingest
from assistant.chunk import CHUNKER_VERSION, SEGMENTER
from assistant.errors import AssistantError, CorpusError
from assistant.index.layout import IndexLayout, not_utf8
from assistant.index.manifest import read_manifest
from assistant.index.store import open_index, verify_index
from assistant.models import (
    ChunkParams,
    DocumentRecord,
    IndexManifest,
    IndexStatus,
    SkippedFile,
    SkippedRecord,
)
from assistant.settings import Settings


def chunk_params(settings: Settings) -> ChunkParams:
    return ChunkParams(max_tokens=settings.chunk_max_tokens,
                       overlap_sentences=settings.chunk_overlap_sentences,
                       segmenter=SEGMENTER, chunker_version=CHUNKER_VERSION,
                       sentence_vectors=settings.sentence_vectors)


@dataclass
class Plan:
    """What a build will do; saved in staging so an interrupted build can resume it."""

    base_generation: int | None
    weights_sha256: str
    params: ChunkParams
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
                           "params": self.params.model_dump(),
                           "full": self.full_reason is not None}, sort_keys=True)


def scan(settings: Settings) -> tuple[list[ingest.CorpusFile], list[SkippedFile]]:
    corpus = settings.corpus_dir
    if (odd := not_utf8(corpus)) is not None:
        raise CorpusError(f"the corpus path {odd} is not valid UTF-8; rename the folder with "
                          "the odd bytes, or pass another folder (--corpus DIR)")
    if corpus.exists() and not corpus.is_dir():
        raise CorpusError(f"the corpus {corpus} is a file, not a folder; pass the folder that "
                          "holds the documents (--corpus DIR)")
    try:
        if not corpus.is_dir():
            raise CorpusError(f"the corpus folder {corpus} does not exist; create it and put "
                              ".txt, .md, .html or .pdf files in it, or pass --corpus DIR")
        files, skipped = ingest.discover(corpus)
    except OSError as exc:
        raise CorpusError(f"cannot read the corpus folder {corpus} ({exc.strerror or exc}); "
                          "fix its permissions, or pass another folder (--corpus DIR)") from exc
    if not files:
        what = f" ({len(skipped)} other files skipped: unsupported or links)" if skipped else ""
        raise CorpusError(f"the corpus folder {corpus} has no .txt, .md, .html or .pdf "
                          f"documents{what}; add some and run `assistant index` again")
    return files, skipped


def stale_reasons(settings: Settings, manifest: IndexManifest | None,
                  files: list[ingest.CorpusFile], skipped: list[SkippedFile] | None = None
                  ) -> list[str]:
    """Why the index no longer matches the corpus and settings (cheap: stat only, no hashing).
    Documents in folders or files the scan could not read (``skipped``) are not removed."""
    if manifest is None:
        return ["no index has been built"]
    reasons: list[str] = []
    if manifest.chunk_params != chunk_params(settings):
        reasons.append("chunk parameters changed")
    model = configured_model_sha(settings)
    if model is not None and model != manifest.model.weights_sha256:
        reasons.append("the embedding model changed")
    seen = {f.doc_id for f in files} | unreadable_documents(manifest.documents, skipped)
    for f in files:
        rec = manifest.documents.get(f.doc_id)
        if rec is None:
            if not same_file(manifest.skipped.get(f.doc_id), f):
                reasons.append(f"new document {f.doc_id}")
        elif not same_file(rec, f):
            reasons.append(f"document changed: {f.doc_id}")
    reasons.extend(f"document removed: {d}" for d in manifest.documents if d not in seen)
    return reasons


def configured_model_sha(settings: Settings) -> str | None:
    """The configured model's weights hash (cached by the file's size and mtime, so no
    hashing after the first time); None when the model cannot be read, which the build
    reports. An index of another model answers with evidence the answer model was not
    fitted on: it is stale (after an upgrade that changed the encoder, too)."""
    from assistant.model_export import identify, shared_cache_dir

    try:
        return identify(settings.resolved_model_path(),
                        shared_cache_dir() / "models").weights_sha256
    except AssistantError:
        return None


def unreadable_documents(documents: dict[str, DocumentRecord] | list[str],
                         skipped: list[SkippedFile] | None) -> set[str]:
    """The indexed documents the scan could not see because their file, or a folder above it,
    could not be read (not because they are gone): they are kept as they were."""
    paths = [s.path for s in skipped or () if s.reason.startswith("cannot read")]
    if not paths:
        return set()
    files = {p for p in paths if not p.endswith("/")}
    folders = tuple(p for p in paths if p.endswith("/"))
    return {d for d in documents if d in files or d.startswith(folders)}


def same_file(rec: DocumentRecord | SkippedRecord | None, f: ingest.CorpusFile) -> bool:
    """The file is as the index saw it (size and mtime: cheap, no hashing)."""
    return rec is not None and rec.size == f.size and rec.mtime_ns == f.mtime_ns


def remembered_skip(f: ingest.CorpusFile, reason: str) -> dict[str, SkippedRecord]:
    """A file that could not be indexed, as the manifest remembers it; a failure to read it
    (permissions, a vanished file) is not remembered: the next build tries again."""
    if reason.startswith("cannot read"):
        return {}
    return {f.doc_id: SkippedRecord(reason=reason, size=f.size, mtime_ns=f.mtime_ns)}


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


def current_manifest(layout: IndexLayout) -> tuple[IndexManifest | None, str | None]:
    """The live manifest, or None with the reason a full rebuild is needed."""
    try:
        gen = layout.current_generation()
        if gen is None:
            return None, None
        # Every part present and whole, not only the manifest: a damaged database, vector
        # file or model export makes even an incremental run rebuild in full.
        return verify_index(layout.root), None
    except AssistantError as exc:
        return None, f"the existing index is unusable ({exc.message.split(';')[0]})"


def local_status(settings: Settings, thorough: bool = True) -> IndexStatus:
    """``assistant.build.index_status`` for an index folder."""
    settings = resolve_corpus(settings)
    layout = IndexLayout(settings.index_dir)
    status = IndexStatus(index_dir=str(settings.index_dir), corpus_dir=str(settings.corpus_dir),
                         exists=False)
    gen = layout.current_generation() if settings.index_dir.is_dir() else None
    if gen is None:
        status.stale_reasons = ["no index has been built"]
        return status
    # The database, vectors and model too, not only the manifest: a damaged index is
    # reported with its fix rather than described as fine.
    if thorough:
        manifest = verify_index(layout.root)
    else:
        manifest = read_manifest(gen)
        if manifest.vectors.store == "faiss":
            open_index(layout.root).close()  # each file by its stamp
    return describe(status, settings, manifest)


def describe(status: IndexStatus, settings: Settings, manifest: IndexManifest) -> IndexStatus:
    """``status`` filled in from a live manifest, and whether it is stale against the corpus
    (stat only): shared by the local index and the server's."""
    status.exists = True
    status.documents = list(manifest.documents.values())
    status.chunk_count = manifest.chunk_count
    status.sentence_count = manifest.sentence_count
    status.model = f"{manifest.model.name} ({manifest.model.weights_sha256[:12]})"
    status.built_at = manifest.built_at
    status.generation = manifest.generation
    status.vectors = manifest.vectors
    try:
        files, skipped = scan(settings)
    except CorpusError as exc:
        status.stale_reasons = [exc.message.split(";")[0]]
        status.stale = True
        return status
    status.stale_reasons = stale_reasons(settings, manifest, files, skipped)
    status.stale = bool(status.stale_reasons)
    return status


def documents_changed(manifest: IndexManifest) -> list[str]:
    """Documents of the corpus an index was built from that changed since (stat only)."""
    corpus = Path(manifest.corpus_dir)
    if not corpus.is_dir():
        return []
    try:
        files, skipped = ingest.discover(corpus)
    except OSError:
        return []
    changed = [f.doc_id for f in files if not same_file(
        manifest.documents.get(f.doc_id) or manifest.skipped.get(f.doc_id), f)]
    seen = {f.doc_id for f in files} | unreadable_documents(manifest.documents, skipped)
    return changed + [d for d in manifest.documents if d not in seen]


def make_plan(settings: Settings, current: IndexManifest | None, broken: str | None,
              weights_sha256: str, model_name: str, files: list[ingest.CorpusFile],
              skipped: list[SkippedFile], full: bool) -> tuple[Plan, IndexManifest | None]:
    """What this build must do, and the generation it starts from (None: from nothing).
    Files the live index skipped and that have not changed since are added to ``skipped``."""
    params = chunk_params(settings)
    reason: str | None = None
    if full:
        reason = "--full was requested"
    elif broken:
        reason = broken
    elif current is not None:
        if current.model.weights_sha256 != weights_sha256:
            reason = (f"the embedding model changed ({current.model.name} "
                      f"{current.model.weights_sha256[:12]} → {model_name} "
                      f"{weights_sha256[:12]})")
        elif current.chunk_params.chunker_version != params.chunker_version:
            # documents are read another way (formats, units, the map to the source)
            reason = (f"the index format changed ({current.chunk_params.chunker_version} → "
                      f"{params.chunker_version}): documents are read again")
        elif current.chunk_params != params:
            diffs = [f"{k} {getattr(current.chunk_params, k)} → {getattr(params, k)}"
                     for k in type(params).model_fields if getattr(current.chunk_params, k) !=
                     getattr(params, k)]
            reason = "chunk parameters changed (" + ", ".join(diffs) + ")"
    base = None if (reason or current is None) else current
    plan = Plan(base_generation=base.generation if base else None,
                weights_sha256=weights_sha256, params=params,
                full_reason=reason, known=dict(current.documents) if current else {})
    prev_docs = base.documents if base else {}
    prev_skipped = base.skipped if base else {}
    ids = {f.doc_id for f in files}
    for f in files:
        rec = prev_docs.get(f.doc_id)
        if rec is not None and same_file(rec, f):
            plan.unchanged.append(rec)
        elif same_file(skip := prev_skipped.get(f.doc_id), f) and skip is not None:
            plan.still_skipped[f.doc_id] = skip
            skipped.append(SkippedFile(path=f.doc_id, reason=skip.reason))
        else:
            plan.to_index.append(f)
    kept = unreadable_documents(prev_docs, skipped)
    plan.unchanged.extend(prev_docs[d] for d in sorted(kept) if d not in ids)
    plan.removed = sorted(d for d in prev_docs if d not in ids and d not in kept)
    for i, s in enumerate(skipped):
        if s.reason.startswith(ingest.UNREADABLE_FOLDER) and \
                (n := sum(1 for d in kept if d.startswith(s.path))):
            skipped[i] = SkippedFile(path=s.path, reason=f"{s.reason}; its {n} document(s) "
                                     "indexed before are kept as they were")
        elif s.reason.startswith("cannot read") and s.path in kept:
            skipped[i] = SkippedFile(path=s.path, reason=f"{s.reason}; the version indexed "
                                     "before is kept")
    return plan, base


def up_to_date(plan: Plan, base: IndexManifest | None) -> bool:
    """Nothing to do: the live generation already is what this build would publish."""
    return base is not None and not plan.to_index and not plan.removed
