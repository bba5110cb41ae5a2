"""What a generation's readers ask of it, whatever holds it: the read protocols, split by
caller, the rows they return, and the vectors' encoding.

* ``RetrievalSource``: what the answer stages read (term statistics, candidates, neighbours,
  the slices and maps of documents a quote is cut from);
* ``DocumentSource``: what the readers of documents read (the viewer, export, gold-set tools);
* ``MetaSource``: both, with the checks at open; implemented by the local database
  (``assistant.index.sqlite.MetaReader``) and by a server
  (``assistant.index.postgres.PgMeta``).

Nothing here knows a database: the statements are in ``sqlite/`` and ``postgres/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from assistant.models import Location, Section, Unit

K = TypeVar("K")
V = TypeVar("V")

Vector = npt.NDArray[np.float32]

BATCH_PARAMS = 900
"""Most ``?`` parameters in one statement (SQLite's limit was 999 for a long time)."""


def vector_blob(v: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(v, dtype=np.float16).tobytes()


def blob_vector(b: bytes) -> Vector:
    return np.frombuffer(b, dtype=np.float16).astype(np.float32)


def map_from_json(units: str, locations: str) -> tuple[list[Unit], list[Location]]:
    return ([Unit(start=a, end=b, label=label, kind=kind) for a, b, label, kind in
             json.loads(units)],
            [(int(o), int(ln), int(pg)) for o, ln, pg in json.loads(locations)] or [(0, 1, 0)])


class SentenceRow(NamedTuple):
    """One sentence as the answer stages read it: its text is the FTS table's copy, written
    at build time as ``document_text[start:end]`` (cutting it out of the document with
    substr() costs the whole document's length for every sentence)."""

    sentence_id: int
    chunk_id: int
    doc_id: str
    start: int
    end: int
    vector: bytes
    section: str
    title: str
    body: str


Span = tuple[int, int, str]
"""(start, end, text) of a sentence in its document."""


class RetrievalSource(Protocol):
    """What the answer stages read of a generation (``assistant.qa``)."""

    def document_frequencies(self, words: Sequence[str]) -> dict[str, int]: ...

    def word_vectors(self, words: Sequence[str]) -> dict[str, Vector]: ...

    def lexical(self, forms: Sequence[str], limit: int) -> list[tuple[int, float]]: ...

    def sentences(self, chunk_ids: Sequence[int], sentence_ids: Sequence[int]
                  ) -> list[SentenceRow]: ...

    def chunk_vectors(self, chunk_ids: Iterable[int]) -> dict[int, Vector]: ...

    def adjacent_ids(self, sentence_ids: Sequence[int]
                     ) -> dict[int, tuple[int | None, int | None]]: ...

    def sections_and_bodies(self, sentence_ids: Sequence[int]
                            ) -> dict[int, tuple[str, str]]: ...

    def neighbours(self, doc_id: str, start: int, end: int
                   ) -> tuple[Span | None, Span | None]: ...

    def document_slice(self, doc_id: str, start: int, end: int) -> str: ...

    def document_map(self, doc_id: str) -> tuple[list[Unit], list[Location]]: ...


class DocumentSource(Protocol):
    """What the readers of whole documents read of a generation: the document viewer
    (``assistant.session``), the export, the gold-set tools."""

    def document_text(self, doc_id: str) -> str: ...

    def document_sections(self, doc_id: str) -> list[Section]: ...

    def document_map(self, doc_id: str) -> tuple[list[Unit], list[Location]]: ...

    def documents(self) -> list[tuple[str, str, str]]: ...

    def sentence_spans(self, doc_id: str) -> list[tuple[int, int]]: ...

    def close(self) -> None: ...


class MetaSource(RetrievalSource, DocumentSource, Protocol):
    """Both reads, and the check of a generation's tables when it is opened
    (``assistant.index.store``)."""

    def check(self, chunk_count: int) -> None: ...


def read_through(cache: dict[K, V], keys: Sequence[K], limit: int,
                   load: Callable[[list[K]], dict[K, V]], absent: V) -> dict[K, V]:
    """``keys``' values, read through ``cache``: only the keys it lacks are loaded (``absent``
    kept for a key ``load`` does not return); a cache that would pass ``limit`` entries is
    emptied first, and then every key is loaded, so none is lost on the way."""
    wanted = list(dict.fromkeys(keys))
    missing = [k for k in wanted if k not in cache]
    if missing:
        if len(cache) + len(missing) > limit:
            cache.clear()
            missing = wanted
        found = load(missing)
        for k in missing:
            cache[k] = found.get(k, absent)
    return {k: cache[k] for k in wanted}
