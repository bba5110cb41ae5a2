"""The team server: a whole index (documents, sentences, term statistics, vectors) in PostgreSQL.

    schema.py      the tables (schema ``briefing_assistant``), generation-tagged rows
    connection.py  connecting, password-free URLs, what a failure means to the user
    lexical.py     FTS5's BM25 over stored term statistics (the local index's scores)
    reader.py      ``PgMeta`` (the ``MetaSource`` the answer stages read) and ``PgVectors``
    publish.py     a locally built generation copied in: changed documents only, one
                   transaction, under an advisory lock

``open_server_index`` gives the answer stages the same ``OpenIndex`` a local index does; the
only local files an answering machine needs are the model's ONNX export in its shared cache.
Nothing here imports the answer stages, the build or the settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assistant.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError
from assistant.index.layout import IndexLayout
from assistant.index.postgres.connection import Patience, public_url
from assistant.index.postgres.reader import PgConnection, PgMeta, PgVectors
from assistant.index.postgres.schema import OWNER, SCHEMA, SERVER_SCHEMA_VERSION
from assistant.index.store import OpenIndex
from assistant.models import SCHEMA_VERSION, IndexManifest

__all__ = ["Patience", "open_server_index", "public_url", "read_server_manifest"]


def _fix(url: str) -> str:
    return f"run `assistant index --server {public_url(url)} --full`"


def check_schema(db: PgConnection) -> bool:
    """Whether the server holds our schema (False: none yet); a foreign or stale one is an
    ``IndexIncompatibleError``."""
    has = db.rows("SELECT to_regclass(%(t)s) IS NOT NULL, to_regnamespace(%(s)s) IS NOT NULL",
                  {"t": f"{SCHEMA}.info", "s": SCHEMA})[0]
    if not has[1]:
        return False
    if not has[0]:
        raise IndexIncompatibleError(f"the server {public_url(db.url)} has a schema {SCHEMA} "
                                     "that this assistant did not make; drop it or use another "
                                     "database")
    info = dict(db.rows(f"SELECT key, value FROM {SCHEMA}.info", {}))
    if info.get("owner") != OWNER:
        raise IndexIncompatibleError(f"the server {public_url(db.url)} has a schema {SCHEMA} "
                                     "that this assistant did not make; drop it or use another "
                                     "database")
    if info.get("version") != str(SERVER_SCHEMA_VERSION):
        raise IndexIncompatibleError(
            f"the index on {public_url(db.url)} has schema version {info.get('version')!r}, "
            f"this assistant reads version {SERVER_SCHEMA_VERSION}; {_fix(db.url)}")
    return True


def read_current(db: PgConnection, older_ok: bool = False
                 ) -> tuple[IndexManifest, int, int] | None:
    """The live generation's manifest, sentence rows and token total (None: never built; or,
    ``older_ok``, built by an earlier version: the build then publishes everything again)."""
    if not check_schema(db):
        return None
    rows = db.rows(f"SELECT g.manifest, g.sentence_rows, g.token_total FROM {SCHEMA}.current c "
                   f"JOIN {SCHEMA}.generations g ON g.generation = c.generation", {})
    if not rows:
        return None
    raw, sentence_rows, token_total = rows[0]
    try:
        version = json.loads(raw).get("schema_version")
    except (ValueError, AttributeError):
        version = SCHEMA_VERSION  # reported as damaged below
    if version != SCHEMA_VERSION:
        if older_ok:
            return None
        raise IndexIncompatibleError(
            f"the index on {public_url(db.url)} was built by another version of the assistant "
            f"(manifest version {version!r}, this one reads {SCHEMA_VERSION}); "
            f"run `assistant index --server {public_url(db.url)}` to rebuild it")
    try:
        manifest = IndexManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise IndexCorruptError(f"the manifest on {public_url(db.url)} is damaged "
                                f"({exc.error_count()} invalid fields); {_fix(db.url)}") from exc
    return manifest, int(sentence_rows), int(token_total)


def read_server_manifest(url: str) -> IndexManifest | None:
    db = PgConnection(url)
    try:
        found = read_current(db)
        return found[0] if found else None
    finally:
        db.close()


def open_server_index(url: str, model_root: Path, patience: Patience | None = None
                      ) -> OpenIndex:
    """The server's live generation, opened for reading and held (builds keep its rows while
    this reader lives: ``PgConnection.hold``); ``model_root`` holds the model's export
    (``manifest.model.onnx_file`` is relative to it)."""
    db = PgConnection(url, patience)
    try:
        for _ in range(3):
            found = read_current(db)
            if found is None:
                raise IndexMissingError(f"the server {public_url(url)} holds no index yet; run "
                                        f"`assistant index --server {public_url(url)}` to "
                                        "build it")
            if db.hold(found[0].generation):
                break
        else:  # replaced three times between reading it and holding it
            raise IndexMissingError(f"the index on {public_url(url)} keeps being rebuilt; "
                                    "try again")
        manifest, sentence_rows, token_total = found
        meta = PgMeta(db, manifest.generation, sentence_rows, token_total)
        meta.check(manifest.chunk_count)
        # a connection of its own: the vector search runs beside the lexical one
        vectors = PgVectors(_holding(url, patience, manifest.generation), manifest.generation,
                            manifest.chunk_count, manifest.vectors.kind == "hnsw")
    except BaseException:
        db.close()
        raise

    def second_reader() -> Any:
        return PgMeta(_holding(url, patience, manifest.generation), manifest.generation,
                      sentence_rows, token_total)

    return OpenIndex(layout=IndexLayout(model_root), generation_dir=model_root,
                     manifest=manifest, meta=meta, vectors=vectors, new_reader=second_reader)


def _holding(url: str, patience: Patience | None, generation: int) -> PgConnection:
    """A further connection of a reader that holds ``generation`` already."""
    db = PgConnection(url, patience)
    if not db.hold(generation):
        db.close()
        raise IndexMissingError(f"the index on {public_url(url)} was rebuilt since this session "
                                f"opened it, and its generation {generation} is gone; open it "
                                "again")
    return db
