"""The objects that cross a boundary: documents, chunks, citations, answers, the manifest.

Every one is a pydantic model so that the CLI's ``--json``, the batch JSONL, the
manifest on disk and the TUI all read and write the same validated shapes.
Offsets are always character offsets into a document's extracted ``text``
(``text[start:end]`` is the quoted span, exactly).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2
"""2: the manifest holds the size and SHA-256 of every file of the generation and of the
model's export (``FileDigest``), checked when the index is opened."""


class Section(BaseModel):
    """A heading and the span of text it governs (up to the next heading of any level)."""

    title: str
    level: int = 1
    start: int
    end: int


UnitKind = Literal["text", "item", "row", "code", "byline"]


class Unit(BaseModel):
    """A piece of a document that is quoted on its own and never merged with the next: a
    paragraph, a list item, a timeline entry, a table row, a speaker's turn, a byline.
    ``text[start:end]`` is its readable text; sentences are cut inside it (a table row or a
    code block is one piece)."""

    model_config = ConfigDict(frozen=True)

    start: int
    end: int
    label: str = ""
    """Who or what the unit is about, as the document says it outside the quote: the
    speaker of ``WEI: ...``, the bold lead-in of ``**Leakage.** In October...``."""
    kind: UnitKind = "text"
    search: str = ""
    """Words to find the unit by beside its own (a table row: "Header: value" pairs)."""


Location = tuple[int, int, int]
"""``(offset, line, page)``: from ``offset`` of a document's text on, the source file's line is
``line`` plus the newlines of the text since ``offset``; ``page`` is 0 outside a PDF."""


class SourceDocument(BaseModel):
    """A document as extracted from the corpus: its text is what every offset points into."""

    doc_id: str
    title: str
    format: Literal["txt", "md", "html", "pdf"]
    text: str
    sections: list[Section] = Field(default_factory=list)
    content_hash: str
    warnings: list[str] = Field(default_factory=list)
    units: list[Unit] = Field(default_factory=list)
    """What is indexed, in order; text outside every unit (headings, list markers, a table's
    header row, a speaker's name) is shown but never quoted."""
    locations: list[Location] = Field(default_factory=lambda: [(0, 1, 0)])
    """The map from the text back to the source file's lines (and a PDF's pages), sorted by
    offset: ``assistant.locations``."""


class Span(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: int
    end: int


class Chunk(BaseModel):
    """Consecutive whole sentences of one section, small enough for the model's window."""

    doc_id: str
    ordinal: int
    section: str
    start: int
    end: int
    text: str
    sentences: list[Span]
    first_owned: int = 0
    """Sentences before this index repeat the previous chunk's end (overlap, for context);
    a sentence's vector comes from the chunk that owns it."""
    embed_prefix: str = ""
    """Title and section prepended for embedding only; never part of a quote."""


class SkippedFile(BaseModel):
    path: str
    reason: str


class SkippedRecord(BaseModel):
    """A supported file the build could not index (empty, binary, broken), remembered with its
    size and mtime so that an unchanged corpus is recognised as unchanged."""

    reason: str
    size: int
    mtime_ns: int


class DocumentRecord(BaseModel):
    """What the manifest remembers of one indexed document, to detect change cheaply."""

    doc_id: str
    title: str
    format: str
    content_hash: str
    size: int
    mtime_ns: int
    chunks: int


class FileDigest(BaseModel):
    """What a file of the index must be: its size and SHA-256 (``assistant.index.integrity``)."""

    size: int
    sha256: str


class ModelIdentity(BaseModel):
    name: str
    path: str
    weights_sha256: str
    dimension: int
    onnx_file: str
    files: dict[str, FileDigest]
    """The export's files (``model.onnx``, ``tokenizer.json``), by name in its folder."""


class ChunkParams(BaseModel):
    max_tokens: int
    overlap_sentences: int
    segmenter: str
    chunker_version: int
    sentence_vectors: Literal["standalone", "late"] = "standalone"


class VectorIndexInfo(BaseModel):
    store: Literal["faiss", "postgres"] = "faiss"
    kind: Literal["flat", "ivf", "hnsw"] = "flat"
    nlist: int = 0
    nprobe: int = 0
    server_url: str | None = None
    """PostgreSQL index: the server's URL without its password (assistant.index.postgres)."""


class IndexManifest(BaseModel):
    """The description of one published index generation, written last, read first."""

    schema_version: int = SCHEMA_VERSION
    generation: int
    model: ModelIdentity
    chunk_params: ChunkParams
    vectors: VectorIndexInfo
    documents: dict[str, DocumentRecord]
    chunk_count: int
    sentence_count: int
    built_at: datetime
    build_seconds: float
    corpus_dir: str
    skipped: dict[str, SkippedRecord] = Field(default_factory=dict)
    """Files of the corpus passed over by this build, by path (older manifests: none)."""
    files: dict[str, FileDigest] = Field(default_factory=dict)
    """The generation's own files (``meta.sqlite``, ``chunks.faiss``), by name in its folder
    (none for a server's generation: its rows are on the server)."""


class BuildSummary(BaseModel):
    """What ``assistant index`` did."""

    index_dir: str
    corpus_dir: str
    up_to_date: bool
    full_rebuild_reason: str | None = None
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    unchanged: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunk_count: int = 0
    documents: int = 0
    generation: int = 0
    seconds: float = 0.0
    documents_sent: int | None = None
    """A server build: documents whose rows were sent (the others were kept as they were)."""


class IndexStatus(BaseModel):
    """What ``assistant info`` reports."""

    index_dir: str
    corpus_dir: str
    exists: bool
    documents: list[DocumentRecord] = Field(default_factory=list)
    chunk_count: int = 0
    sentence_count: int = 0
    model: str | None = None
    built_at: datetime | None = None
    generation: int | None = None
    vectors: VectorIndexInfo | None = None
    stale: bool = True
    stale_reasons: list[str] = Field(default_factory=list)


class Citation(BaseModel):
    """A quoted passage and where it stands, ranked; ``quote == text[start:end]``."""

    rank: int
    doc_id: str
    title: str
    section: str
    quote: str
    start: int
    end: int
    score: float
    why: str
    is_answer: bool = False
    """True for the passage the answer was quoted from; false for context or, on abstention,
    for the closest passages that do not answer."""
    line: int | None = None
    """The source file's line where the quote starts (from the document's map)."""
    page: int | None = None
    """A PDF's page holding the quote's start."""
    label: str = ""
    """The quoted unit's speaker or lead-in (``Unit.label``)."""


class AnswerSpan(BaseModel):
    text: str
    doc_id: str
    start: int
    end: int
    line: int | None = None
    """The source file's line where the quote starts."""
    page: int | None = None


class Answer(BaseModel):
    """The reply to one question: a verbatim quote with citations, or an abstention."""

    id: str
    question: str
    conversation: str | None = None
    resolved_question: str | None = None
    """For a follow-up: the question as understood from the conversation."""
    scope: list[str] | None = None
    """The documents (doc ids) it was asked of, when not every document (``--only``, the
    chat's marked documents)."""
    abstained: bool
    """True when the outcome is ``not_covered``."""
    outcome: Literal["answer", "best_guess", "not_covered"] = "answer"
    """``answer``: the quote answers, as sure as ``confidence`` says; ``best_guess``: the
    closest passage, quoted, with the engine more likely wrong than right; ``not_covered``:
    the documents do not answer (no quote)."""
    message: str
    answer: AnswerSpan | None = None
    confidence: float
    """How often answers shown with this confidence were right on held-out questions."""
    citations: list[Citation] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class BatchQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    id: str | None = None
    conversation: str | None = None


class BatchErrorRecord(BaseModel):
    line: int
    id: str | None = None
    error: str


class GoldQuestion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: str
    expect_any: list[str] = Field(default_factory=list)
    conversation: str | None = None
    answerable: bool = True
    id: str | None = None


class EvalItem(BaseModel):
    id: str
    question: str
    answerable: bool
    abstained: bool
    correct_top1: bool
    hit_at_3: bool
    reciprocal_rank: float
    confidence: float
    answer: str | None
    latency_ms: float


class EvalReport(BaseModel):
    questions: int
    answerable: int
    unanswerable: int
    top1_accuracy: float
    hit_at_3: float
    mrr: float
    abstention_precision: float | None
    abstention_recall: float | None
    """Both None when the set holds no unanswerable question (they would be meaningless)."""
    answerable_abstained_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    items: list[EvalItem]
