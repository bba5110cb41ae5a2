"""Publishing: fill the vector store from the staging database, then make the staging
folder the live generation in one rename."""

from __future__ import annotations

import os

from assistant.build.staging import PLAN
from assistant.index.integrity import StampBook, digest_folder
from assistant.index.layout import (
    MANIFEST,
    IndexLayout,
    fsync_dir,
    generation_name,
    remove_tree,
    write_json_atomic,
)
from assistant.index.manifest import write_manifest
from assistant.index.sqlite import MetaWriter
from assistant.index.vectors import VectorTarget, backend
from assistant.models import IndexManifest, VectorIndexInfo
from assistant.settings import Settings


def update_vectors(settings: Settings, layout: IndexLayout, db: MetaWriter,
                   base: IndexManifest | None, dimension: int) -> VectorIndexInfo:
    """Write the staging generation's vector store (FAISS) through its adapter."""
    target = VectorTarget(dimension=dimension, ann_threshold=settings.ann_threshold)
    return backend("faiss").update(layout, db.chunk_vectors(), base, target)


def publish(layout: IndexLayout, manifest: IndexManifest) -> IndexManifest:
    """Name the staging folder a generation and point CURRENT at it; keep two generations.
    The manifest published records the size and SHA-256 of each file of the generation."""
    staging = layout.staging
    (staging / PLAN).unlink(missing_ok=True)
    manifest = manifest.model_copy(update={
        "files": digest_folder(staging, leave_out=frozenset({MANIFEST}))})
    write_manifest(staging, manifest)
    for p in staging.iterdir():
        if p.is_file():
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
    fsync_dir(staging)
    name = generation_name(manifest.generation)
    target = layout.root / name
    if target.exists():
        remove_tree(target)
    staging.rename(target)
    fsync_dir(layout.root)
    write_json_atomic(layout.current_file, name + "\n")
    stamps = StampBook(layout.root)  # hashed just now: the first reader need not hash again
    for file, digest in manifest.files.items():
        stamps.record(target / file, digest.sha256)
    stamps.save()
    keep = {name}
    gens = [p for p in layout.generations() if p.name != name]
    if gens:
        keep.add(gens[-1].name)
    for p in layout.generations():
        if p.name not in keep:
            remove_tree(p)
    return manifest


