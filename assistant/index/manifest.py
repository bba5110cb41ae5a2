"""The manifest: what a generation holds and how it was built, read and written here only."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from assistant.errors import REBUILD_WITHOUT_QDRANT, IndexCorruptError, IndexIncompatibleError
from assistant.index.layout import MANIFEST, write_json_atomic
from assistant.models import SCHEMA_VERSION, IndexManifest


def read_manifest(gen_dir: Path) -> IndexManifest:
    """The one place a manifest is read and validated."""
    path = gen_dir / MANIFEST
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path} is missing; run `assistant index --full`") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is unreadable; run `assistant index --full`") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise IndexCorruptError(f"{path} is not valid JSON; run `assistant index --full`") from exc
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise IndexIncompatibleError(
            f"the index in {gen_dir.parent} has schema version {data.get('schema_version')!r}, "
            f"this assistant reads version {SCHEMA_VERSION}; run `assistant index --full`")
    vectors = data.get("vectors") if isinstance(data, dict) else None
    if isinstance(vectors, dict) and vectors.get("store") == "qdrant":
        raise IndexIncompatibleError(
            f"the index in {gen_dir.parent} was built with the Qdrant vector store, which this "
            f"assistant no longer reads; rebuild it with {REBUILD_WITHOUT_QDRANT}")
    try:
        return IndexManifest.model_validate(data)
    except ValidationError as exc:
        raise IndexCorruptError(f"{path} is damaged ({exc.error_count()} invalid fields); "
                                "run `assistant index --full`") from exc


def write_manifest(gen_dir: Path, manifest: IndexManifest) -> None:
    write_json_atomic(gen_dir / MANIFEST, manifest.model_dump_json(indent=2))
