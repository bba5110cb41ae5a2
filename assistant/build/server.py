"""Building into a PostgreSQL server (``settings.server``): a local build, then a publish.

The build itself is the local one (``build_index`` into a staging index in this machine's
cache, keyed by the server's password-free URL), so it is incremental and a killed build
resumes from the batches it had committed; ``assistant.index.postgres.publish`` then sends
the documents that changed, in one transaction. The server's advisory lock is held from
before the local build until the publish has committed, so two builders never interleave.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from assistant.build.embedding import EncoderFactory, Progress
from assistant.build.local import build_local_index
from assistant.build.plan import describe
from assistant.embed import OnnxEncoder
from assistant.errors import IndexCorruptError, IndexIncompatibleError
from assistant.index.layout import IndexLayout
from assistant.index.manifest import read_manifest
from assistant.index.postgres import read_server_manifest
from assistant.index.postgres.connection import (
    check_url,
    database_identity,
    public_url,
    require_driver,
)
from assistant.model_export import shared_cache_dir
from assistant.models import BuildSummary, IndexManifest, IndexStatus
from assistant.settings import Settings


def staging_dir(url: str) -> Path:
    """This machine's working index for a server (no password in its name or contents).

    Keyed by which database it is (user, host, port, database), not by the URL's spelling, so
    that adding ``sslmode=require`` or a timeout to the URL does not re-embed the corpus. A
    folder under the key of earlier versions (the whole password-free URL) is taken over.
    """
    servers = shared_cache_dir() / "servers"
    folder = servers / hashlib.sha256(database_identity(url).encode()).hexdigest()[:16]
    earlier = servers / hashlib.sha256(public_url(url).encode()).hexdigest()[:16]
    if not folder.exists() and earlier.is_dir():
        try:
            earlier.rename(folder)
        except OSError:
            return earlier
    return folder


def with_server_corpus(settings: Settings, manifest: IndexManifest | None) -> Settings:
    """The corpus the server's index was built from, when none is given and it exists here."""
    if "corpus_dir" in settings.model_fields_set or manifest is None:
        return settings
    remembered = Path(manifest.corpus_dir)
    if not remembered.is_dir():
        return settings
    return settings.model_copy(update={"corpus_dir": remembered})


def build_server_index(settings: Settings, full: bool = False, progress: Progress | None = None,
                       encoder: EncoderFactory = OnnxEncoder) -> BuildSummary:
    from assistant.index.postgres.publish import ServerLock, publish

    assert settings.server is not None
    url = settings.server
    check_url(url)
    require_driver()
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    with ServerLock(url, settings.lock_timeout_s, lambda: report("waiting", 0, 0)):
        try:
            remembered = read_server_manifest(url)
        except (IndexCorruptError, IndexIncompatibleError):
            remembered = None  # publish decides: replaced under --full, else the error
        settings = with_server_corpus(settings, remembered)
        local = settings.model_copy(update={"index_dir": staging_dir(url), "server": None})
        summary = build_local_index(local, full=full, progress=progress, encoder=encoder)
        gen = IndexLayout(local.index_dir).require_current()
        manifest = read_manifest(gen)
        report("publish", 0, 1)
        published, sent, kept = publish(url, gen, manifest, settings.server_ann_threshold, full,
                                        report)
        report("publish", 1, 1)
    summary.index_dir = public_url(url)
    summary.documents_sent = sent
    del kept
    if published is None:
        summary.up_to_date = True
        current = read_server_manifest(url)
        summary.generation = current.generation if current else summary.generation
    else:
        summary.up_to_date = False
        summary.generation = published.generation
    summary.seconds = time.perf_counter() - started
    return summary


def server_status(settings: Settings) -> IndexStatus:
    """`assistant info` for a server index (the corpus is only stat-ed)."""
    assert settings.server is not None
    url = settings.server
    manifest = read_server_manifest(url)
    settings = with_server_corpus(settings, manifest)
    status = IndexStatus(index_dir=public_url(url),
                         corpus_dir=str(settings.corpus_dir), exists=manifest is not None)
    if manifest is None:
        status.stale_reasons = ["no index has been built"]
        return status
    return describe(status, settings, manifest)
