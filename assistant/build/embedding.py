"""Embedding: chunks in batches into the staging database, with the progress in chunks."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from assistant import ingest, source
from assistant import text as tx
from assistant.build.plan import Plan, remembered_skip
from assistant.build.staging import drop_if_held, record
from assistant.chunk import chunk_document
from assistant.embed import Embedder, Encoder, OnnxEncoder, Tokenizer
from assistant.errors import ModelError
from assistant.index.layout import IndexLayout, remove_tree
from assistant.index.sqlite import MetaWriter, NewChunk, NewDocument, NewSentence
from assistant.model_export import (
    ModelFiles,
    ensure_onnx,
    export_digests,
    onnx_path,
    shared_cache_dir,
)
from assistant.models import (
    BuildSummary,
    Chunk,
    DocumentRecord,
    FileDigest,
    SkippedFile,
    SkippedRecord,
    SourceDocument,
    Unit,
)
from assistant.qa import lang
from assistant.settings import Settings

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "scan", "export", "embed", "vectors" or "publish"."""

EncoderFactory = Callable[[Path, int], Encoder]
"""Makes the transformer from the exported ONNX file and a thread count: ``OnnxEncoder``,
or a stand-in passed to ``build_index`` (tests/helpers/fast_encoder.py)."""

BATCH_CHUNKS = 64
"""Chunks embedded and committed together: an interrupted build resumes from the last
commit, so this is the most a Ctrl+C can lose (about a second of work here); larger batches
were not faster (the embedder batches by a token budget of its own)."""
CHARS_PER_CHUNK = 900
"""A first guess of a document's chunks from its size, for the progress bar's total until
the first document is chunked."""


class ChunkProgress:
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


def load_model(layout: IndexLayout, model: ModelFiles, settings: Settings,
               on_export: Callable[[], None] | None = None,
               encoder: EncoderFactory = OnnxEncoder
               ) -> tuple[Path, Tokenizer, Encoder, dict[str, FileDigest]]:
    """The index's export of the model, loaded, and its files' digests for the manifest. A
    damaged export is replaced from the shared cache (``ensure_onnx`` checks both), and one
    that still fails to load is exported again."""
    for attempt in range(3):
        onnx_file = ensure_onnx(layout.models_dir, model, settings.embed_threads, on_export)
        try:
            digests = export_digests(onnx_file, model)
            return (onnx_file, Tokenizer(onnx_file.parent / "tokenizer.json"),
                    encoder(onnx_file, 1), digests)  # one thread per worker (Embedder)
        except (ModelError, OSError, ValueError, KeyError):
            if attempt == 2:
                raise
            remove_tree(onnx_file.parent)
            if attempt == 1:
                remove_tree(onnx_path(shared_cache_dir() / "models", model).parent)
    raise AssertionError("unreachable")


@dataclass
class Piece:
    """Consecutive chunks of one document in an embedding batch: the document's first piece
    inserts its row (incomplete until its last piece is committed)."""

    doc: SourceDocument
    file: ingest.CorpusFile
    words: UnitWords
    """The document's labels and search words, made once for all its pieces."""
    chunks: list[Chunk] = field(default_factory=list)
    first: bool = True
    last: bool = False
    total: int = 0
    """The document's chunk count, known on its last piece."""


def embed_and_store(db: MetaWriter, embedder: Embedder, pending: list[Piece],
                    sentence_vectors: str, stopwords: frozenset[str]) -> int:
    """Embed some chunks and commit them; a document is marked complete with its last piece."""
    all_chunks = [c for p in pending for c in p.chunks]
    texts = [c.embed_prefix + c.text for c in all_chunks]
    # a unit's label and search words (a speaker, a row's "Header: value" pairs) are found
    # with its sentences: in the lexical context, and in a row's or labelled unit's vector
    extra = [p.words for p in pending for _ in p.chunks]
    spans = [[(len(c.embed_prefix) + s.start - c.start, len(c.embed_prefix) + s.end - c.start)
              for s in c.sentences[c.first_owned:]] for c in all_chunks]
    if sentence_vectors == "late":
        chunk_vecs, sentence_vecs = embedder.embed_with_spans(texts, spans)
    else:
        chunk_vecs = embedder.embed(texts)
        owned = [[words.embedded(c.text[s.start - c.start:s.end - c.start], s.start)
                  for s in c.sentences[c.first_owned:]]
                 for c, words in zip(all_chunks, extra, strict=True)]
        # a link's characters say nothing a question could ask about; embed the prose only
        flat = embedder.embed([tx.without_links(t) for group in owned for t in group])
        sentence_vecs, k = [], 0
        for group in owned:
            sentence_vecs.append(flat[k:k + len(group)])
            k += len(group)
    next_chunk, next_sentence = db.next_ids()
    chunks: list[NewChunk] = []
    sentences: list[NewSentence] = []
    k = 0
    for p in pending:
        doc = p.doc
        context = ""
        for c in p.chunks:
            cid = next_chunk
            next_chunk += 1
            chunks.append(NewChunk(cid, c, chunk_vecs[k]))
            context = f"{doc.title}\n{c.section}"
            for s, vec in zip(c.sentences[c.first_owned:], sentence_vecs[k], strict=True):
                words = extra[k].context(s.start)
                sentences.append(NewSentence(
                    next_sentence, cid, c.doc_id, s.start, s.end, vec, doc.text[s.start:s.end],
                    f"{context}\n{words}" if words else context))
                next_sentence += 1
            k += 1
    with db.batch():
        db.add_documents([NewDocument(p.doc, p.file.size, p.file.mtime_ns, p.total, p.last)
                          for p in pending if p.first])
        db.complete_documents([(p.doc.doc_id, p.total) for p in pending
                               if p.last and not p.first])
        db.add_chunks(chunks)
        db.add_sentences(sentences)
        add_term_vectors(db, embedder, {t for s in sentences
                                        for t in tx.content_terms(f"{s.body} {s.context}",
                                                                  stopwords)})
    return len(all_chunks)


class UnitWords:
    """What a unit adds to the search of its sentences: its label (a speaker, a lead-in) and
    its search words (a table row's "Header: value" pairs)."""

    def __init__(self, doc: SourceDocument) -> None:
        self.units = [u for u in doc.units if u.label or u.search]
        self.starts = [u.start for u in self.units]

    def _unit(self, start: int) -> Unit | None:
        k = bisect.bisect_right(self.starts, start) - 1
        return self.units[k] if k >= 0 and start < self.units[k].end else None

    def context(self, start: int) -> str:
        """Added to the sentence's lexical context."""
        u = self._unit(start)
        return " ".join(filter(None, (u.label, u.search))) if u else ""

    def embedded(self, sentence: str, start: int) -> str:
        """The text the sentence's vector is made from: a table row by its pairs, a speaker's
        words with their name."""
        u = self._unit(start)
        if u is None:
            return sentence
        if u.search:
            return u.search
        return f"{u.label}: {sentence}"


def add_term_vectors(db: MetaWriter, embedder: Embedder, words: set[str]) -> None:
    """Embed the words the index has not seen yet (single words are a few word pieces, so
    this costs little); the answer stage uses them to match "money" with "revenue"."""
    words = {w for w in words if not w.isdigit()}
    if not words:
        return
    todo = sorted(words)
    known = db.known_terms(todo)
    new = [w for w in todo if w not in known]
    if not new:
        return
    db.add_term_vectors(new, embedder.embed(new))


def embed_documents(db: MetaWriter, embedder: Embedder, tokenizer: Tokenizer,
                    settings: Settings, plan: Plan, prev_docs: dict[str, DocumentRecord],
                    held: dict[str, tuple[str, int]], summary: BuildSummary, report: Progress
                    ) -> tuple[dict[str, DocumentRecord], dict[str, SkippedRecord]]:
    """Read, chunk, embed and commit every document the plan indexes, reusing what a killed
    build committed; returns the records of the documents now held and of those skipped."""
    records: dict[str, DocumentRecord] = {r.doc_id: r for r in plan.unchanged}
    not_indexed: dict[str, SkippedRecord] = dict(plan.still_skipped)
    pending: list[Piece] = []
    pending_chunks = 0
    stopwords = lang.load(settings.language).stopwords  # no term vectors for stop words
    bar = ChunkProgress(report, plan.to_index)
    for f in plan.to_index:
        bar.show()
        try:
            got = source.read_document(f)
        except ingest.UnreadableDocument as exc:
            prev = prev_docs.get(f.doc_id)
            if str(exc).startswith("cannot read") and prev is not None:
                # unreadable now (permissions): the version indexed before stays, as it was
                records[f.doc_id] = prev
                summary.skipped.append(SkippedFile(
                    path=f.doc_id, reason=f"{exc}; the version indexed before is kept"))
            else:
                summary.skipped.append(SkippedFile(path=f.doc_id, reason=str(exc)))
                not_indexed.update(remembered_skip(f, str(exc)))
                drop_if_held(db, f.doc_id, held)
            bar.document(f, 0)
            continue
        raw = got.raw
        digest = ingest.content_hash(raw)
        # the size and time of the version read (it may have been saved again since the scan)
        f = replace(f, size=got.size, mtime_ns=got.mtime_ns)
        mtime = f.mtime_ns
        if got.torn:
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
            count = db.chunk_count_of(f.doc_id)
            records[f.doc_id] = record(f, digest, mtime, count, db)
            summary.chunks_reused += int(count)
            classify(summary, plan.known, f.doc_id, digest)
            bar.document(f, int(count))
            bar.embedded(int(count))
            continue
        # A killed build committed the first chunks of this very version: embed the rest.
        resumed = db.committed_chunks(f.doc_id) if held.get(f.doc_id) == (digest, 0) else 0
        if not resumed:
            drop_if_held(db, f.doc_id, held)
        try:
            doc = ingest.extract(f, raw)
        except ingest.UnreadableDocument as exc:
            summary.skipped.append(SkippedFile(path=f.doc_id, reason=str(exc)))
            not_indexed.update(remembered_skip(f, str(exc)))
            drop_if_held(db, f.doc_id, held)
            bar.document(f, 0)
            continue
        summary.warnings.extend(f"{f.doc_id}: {w}" for w in doc.warnings)
        if resumed:
            summary.chunks_reused += resumed
            bar.embedded(resumed)
        # Chunks are embedded and committed in batches as they come, even inside one
        # document, so a 50 MB file never holds all its chunks and vectors in memory.
        piece = Piece(doc, f, UnitWords(doc), first=not resumed)
        done = resumed
        for chunk in chunk_document(doc, tokenizer.count, tokenizer.split_points,
                                    settings.chunk_max_tokens,
                                    settings.chunk_overlap_sentences):
            if chunk.ordinal < resumed:  # chunking is deterministic: these are committed
                continue
            piece.chunks.append(chunk)
            pending_chunks += 1
            if pending_chunks >= BATCH_CHUNKS:
                stored = embed_and_store(db, embedder, [*pending, piece],
                                         settings.sentence_vectors, stopwords)
                summary.chunks_embedded += stored
                done += len(piece.chunks)
                pending, pending_chunks = [], 0
                piece = Piece(doc, f, piece.words, first=False)
                bar.within(f, chunk.end / max(len(doc.text), 1), done)
                bar.embedded(stored)
        piece.last, piece.total = True, done + len(piece.chunks)
        pending.append(piece)
        bar.document(f, piece.total)
        records[f.doc_id] = DocumentRecord(doc_id=f.doc_id, title=doc.title, format=doc.format,
                                           content_hash=digest, size=f.size, mtime_ns=mtime,
                                           chunks=piece.total)
        classify(summary, plan.known, f.doc_id, digest)
    if pending:
        stored = embed_and_store(db, embedder, pending, settings.sentence_vectors, stopwords)
        summary.chunks_embedded += stored
        bar.embedded(stored)
    bar.finish()
    return records, not_indexed


def classify(summary: BuildSummary, known: dict[str, DocumentRecord], doc_id: str,
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


