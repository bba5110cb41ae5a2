"""Build: bring the index up to date with the corpus — incrementally, atomically, resumably.

``build_index`` and ``index_status`` are the faces: an index folder is built by ``local``
(plan, staging, embedding, publish), a PostgreSQL server's index by ``server`` (a local
build into this machine's cache, then a publish). This package never prints: it reports
through the ``progress`` callback.
"""

from __future__ import annotations

from assistant.build.embedding import EncoderFactory, Progress
from assistant.build.local import build_local_index
from assistant.build.plan import (
    documents_changed,
    local_status,
    resolve_corpus,
    scan,
    stale_reasons,
)
from assistant.embed import OnnxEncoder
from assistant.models import BuildSummary, IndexStatus
from assistant.settings import Settings

__all__ = ["EncoderFactory", "Progress", "build_index", "documents_changed", "index_status",
           "resolve_corpus", "scan", "stale_reasons"]


def build_index(settings: Settings, full: bool = False, progress: Progress | None = None,
                encoder: EncoderFactory = OnnxEncoder) -> BuildSummary:
    """Make the index reflect ``settings.corpus_dir`` (or, when no corpus is given, the corpus
    it was built from): the folder ``settings.index_dir``, or with ``settings.server`` the
    index on that PostgreSQL server."""
    if settings.server is not None:
        # imported here: a local index never loads the PostgreSQL code or its driver
        from assistant.build.server import build_server_index

        return build_server_index(settings, full, progress, encoder)
    return build_local_index(settings, full, progress, encoder)


def index_status(settings: Settings, thorough: bool = True) -> IndexStatus:
    """What the index holds and whether it is stale against the corpus (the corpus is only
    stat-ed, never read). ``thorough`` (`assistant info`): every file of a local index hashed
    and checked, not only by its stamp (``assistant.index.store.verify_index``)."""
    if settings.server is not None:
        from assistant.build.server import server_status  # as in build_index

        return server_status(settings)
    return local_status(settings, thorough)
