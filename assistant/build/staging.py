"""Staging: the build's working copy of the database, resumed after an interruption.

The database is written through ``assistant.index.sqlite.MetaWriter`` (its schema and every
statement are the index's); here is the staging folder around it, and the build's view of
what it holds.
"""

from __future__ import annotations

import shutil

from assistant import ingest
from assistant.build.plan import Plan
from assistant.index.layout import META_DB, IndexLayout, remove_tree, write_json_atomic
from assistant.index.sqlite import MetaWriter
from assistant.models import DocumentRecord, IndexManifest

PLAN = "plan.json"


def open_staging(layout: IndexLayout, plan: Plan, base: IndexManifest | None
                  ) -> tuple[MetaWriter, str | None]:
    """The staging database (resumed when a build of the same plan left it), and a notice
    when a staging folder left behind was unreadable and had to be discarded."""
    staging = layout.staging
    plan_file = staging / PLAN
    notice = None
    if staging.is_dir():
        try:
            resumable = (plan_file.read_text(encoding="utf-8") == plan.key()
                         and (staging / META_DB).is_file())
        except FileNotFoundError:
            resumable = False
        except (OSError, ValueError):  # garbled by a crash or a disk fault
            resumable = False
            notice = UNREADABLE
        if resumable:
            resumed = MetaWriter.resume(staging / META_DB)
            if resumed is not None:
                return resumed, None
            notice = UNREADABLE
        remove_tree(staging)
    staging.mkdir(parents=True)
    if base is not None:
        shutil.copyfile(layout.generation_dir(base.generation) / META_DB, staging / META_DB)
    writer = MetaWriter.create(staging / META_DB)
    write_json_atomic(plan_file, plan.key())
    return writer, notice


UNREADABLE = ("the work left by an interrupted build was unreadable and was discarded; "
              "this build starts afresh")


def record(f: ingest.CorpusFile, digest: str, mtime: int, count: int,
            db: MetaWriter) -> DocumentRecord:
    title, fmt = db.title_and_format(f.doc_id)
    return DocumentRecord(doc_id=f.doc_id, title=title, format=fmt, content_hash=digest,
                          size=f.size, mtime_ns=mtime, chunks=int(count))


def drop_if_held(db: MetaWriter, doc_id: str, held: dict[str, tuple[str, int]]) -> None:
    if doc_id in held:
        db.drop_documents([doc_id])
        held.pop(doc_id, None)
