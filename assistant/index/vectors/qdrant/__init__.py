"""The Qdrant vector store: FAISS's seam (``search``, ``count``) on an engine that scales out.

Two placements of the same chunk vectors, chosen by the build's ``VectorTarget.qdrant_url``
(from ``Settings.qdrant_url``):

* **Local mode** (no URL): Qdrant's embedded engine keeps a folder ``qdrant/`` in each
  generation, next to ``meta.sqlite``. A build copies the base generation's folder into
  ``staging/``, deletes the chunk ids that left the database and upserts the new ones; the
  rename that publishes the generation publishes the folder with it.
* **Server mode** (a URL): one collection per index lineage, versioned. Every point carries
  ``born``, the version that added it, and once removed ``dies``; a generation at version V
  searches only points with ``born <= V`` and not ``dies <= V``. A build writes version
  base + 1, which no published generation sees, so a build killed at any instant leaves the
  live index intact, and only the changed chunks travel to the server. The next build
  deletes the points and collections that no generation left on disk can see.

Chunk ids are SQLite AUTOINCREMENT ids, never reused within one database lineage, so "ids
in the database, not in the store" and the reverse are the whole update, and a resumed build
repairs whatever a killed one half-wrote. qdrant-client is optional: only this module
imports it, and only when a Qdrant-backed index is built or opened.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from assistant.errors import AssistantError, IndexCorruptError, IndexWriteError, SettingsError
from assistant.index.layout import IndexLayout, fsync_tree, remove_tree, write_json_atomic
from assistant.index.manifest import read_manifest
from assistant.index.vectors import ChunkSource, VectorTarget
from assistant.models import IndexManifest, VectorIndexInfo

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qm

QDRANT_DIR = "qdrant"
"""The local-mode Qdrant folder inside a generation."""
LOCAL_COLLECTION = "chunks"
SERVER_MARKER = "qdrant_server.json"
"""In staging: which server collection and version this build writes, so a resumed build
keeps what a killed one uploaded and a fresh one forgets it."""
MEMORY_URL = ":memory:"
"""A process-wide in-memory Qdrant standing in for a server (tests, benchmarks)."""
ID_BATCH = 1000
MISSING = ("the qdrant store needs qdrant-client: pip install 'briefing-assistant[qdrant]'")


def require_client() -> None:
    """Raise ``SettingsError`` with the install command when qdrant-client is missing
    (without importing it: a build with nothing to do stays fast)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("qdrant_client") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise SettingsError(MISSING)


def _client_class() -> type[QdrantClient]:
    try:
        from qdrant_client import QdrantClient  # ~1.2 s (its REST models): Qdrant indexes only
    except ImportError as exc:
        raise SettingsError(MISSING) from exc
    return QdrantClient


_CLIENTS: weakref.WeakSet[QdrantClient] = weakref.WeakSet()


def _tracked(client: QdrantClient) -> QdrantClient:
    """Closed at exit if still open: a client left to its ``__del__`` at interpreter
    shutdown prints an ignored-exception traceback on stderr."""
    if not _CLIENTS:
        atexit.register(_close_all)
    _CLIENTS.add(client)
    return client


def _close_all() -> None:
    for client in list(_CLIENTS):
        with suppress(Exception):
            client.close()


@contextmanager
def _quiet() -> Iterator[None]:
    """Local mode warns about sizes and payload indexes it documents anyway; the CLI's
    stderr is for the user's problems, not the library's advice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


# --- reading ----------------------------------------------------------------------------------


class QdrantVectors:
    """One generation's vectors in Qdrant: a local folder, or a version of a server collection."""

    def __init__(self, client: QdrantClient, collection: str, info: VectorIndexInfo,
                 count: int, release: Any = None) -> None:
        self._client = client
        self._collection = collection
        self.info = info
        self._count = count
        self._release = release
        self._filter = _visible(info.qdrant_version) if info.qdrant_url else None

    @classmethod
    def open(cls, layout: IndexLayout, info: VectorIndexInfo, generation_dir: Path
             ) -> QdrantVectors:
        """Open the vectors of the generation in ``generation_dir`` (described by ``info``)."""
        _client_class()
        if info.qdrant_url:
            return cls._open_server(info)
        folder = generation_dir / QDRANT_DIR
        collection = info.qdrant_collection or LOCAL_COLLECTION
        if not (folder / "meta.json").is_file():
            raise IndexCorruptError(f"the Qdrant folder {folder} is missing; "
                                    "run `assistant index --full`")
        key, client = _acquire_local(folder)
        try:
            count = int(client.count(collection, exact=True).count)
        except (ValueError, KeyError) as exc:  # local mode: "Collection chunks not found"
            _release_local(key)
            raise IndexCorruptError(f"the Qdrant folder {folder} holds no collection "
                                    f"{collection!r}; run `assistant index --full`") from exc
        return cls(client, collection, info, count, release=lambda: _release_local(key))

    @classmethod
    def _open_server(cls, info: VectorIndexInfo) -> QdrantVectors:
        url = info.qdrant_url or ""
        collection = info.qdrant_collection or ""
        client = _server_client(url)
        with _server_errors(url, "reading"):
            if not client.collection_exists(collection):
                raise IndexCorruptError(f"the Qdrant server at {url} has no collection "
                                        f"{collection!r} (deleted?); run `assistant index --full`")
            count = int(client.count(collection, count_filter=_visible(info.qdrant_version),
                                     exact=True).count)
        return cls(client, collection, info, count,
                   release=None if url == MEMORY_URL else client.close)

    @property
    def count(self) -> int:
        return self._count

    def search(self, query: npt.NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids with cosine scores (Qdrant normalises both sides)."""
        if self._count == 0 or k <= 0:
            return []
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        with _server_errors(self.info.qdrant_url, "searching"):
            points = self._client.query_points(
                self._collection, query=vector, limit=min(k, self._count),
                query_filter=self._filter, with_payload=False, with_vectors=False).points
        return [(int(p.id), float(p.score)) for p in points]

    def ids(self) -> set[int]:
        """Every chunk id this generation sees (for checks and tests)."""
        with _server_errors(self.info.qdrant_url, "reading"):
            return set(_present(self._client, self._collection, self._filter))

    def close(self) -> None:
        """Release the local folder (its lock) once the last user in the process is done."""
        release, self._release = self._release, None
        if release is not None:
            release()


@dataclass
class _SharedLocal:
    client: QdrantClient
    refs: int = 0


_LOCAL_LOCK = threading.Lock()
_LOCAL: dict[tuple[str, int, int], _SharedLocal] = {}


def _local_key(folder: Path) -> tuple[str, int, int]:
    """A folder path and the identity of its contents: a later index in the same place
    (same path, new files) is a different store."""
    meta = (folder / "meta.json").stat()
    return str(folder.resolve()), meta.st_ino, meta.st_mtime_ns


def _acquire_local(folder: Path) -> tuple[tuple[str, int, int], QdrantClient]:
    """One client per folder per process: local mode locks its folder exclusively, even
    against a second client in the same process."""
    key = _local_key(folder)
    with _LOCAL_LOCK:
        shared = _LOCAL.get(key)
        if shared is None:
            shared = _LOCAL[key] = _SharedLocal(_open_local_reader(folder))
        shared.refs += 1
        return key, shared.client


def _release_local(key: tuple[str, int, int]) -> None:
    with _LOCAL_LOCK:
        shared = _LOCAL.get(key)
        if shared is None:
            return
        shared.refs -= 1
        if shared.refs <= 0:
            del _LOCAL[key]
            shared.client.close()


def _open_local_reader(folder: Path) -> QdrantClient:
    """The generation's folder itself; when another process holds it (a chat open while
    `assistant ask` runs) or it is read-only, a private copy, removed when done."""
    client_class = _client_class()
    try:
        with _quiet():
            return _tracked(client_class(path=str(folder), force_disable_check_same_thread=True))
    except (RuntimeError, OSError, sqlite3.Error):
        pass
    scratch = Path(tempfile.mkdtemp(prefix="briefing-qdrant-"))
    try:
        shutil.copytree(folder, scratch / QDRANT_DIR, ignore=shutil.ignore_patterns(".lock"))
        with _quiet():
            client = _tracked(client_class(path=str(scratch / QDRANT_DIR),
                                           force_disable_check_same_thread=True))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    weakref.finalize(client, shutil.rmtree, scratch, True)
    return client


_MEMORY: QdrantClient | None = None


def _server_client(url: str) -> QdrantClient:
    """A client for the server at ``url`` (API key from QDRANT_API_KEY, never stored)."""
    global _MEMORY
    client_class = _client_class()
    if url == MEMORY_URL:
        with _LOCAL_LOCK:
            if _MEMORY is None:
                _MEMORY = _tracked(client_class(location=MEMORY_URL,
                                                force_disable_check_same_thread=True))
            return _MEMORY
    try:
        return _tracked(client_class(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None,
                                     timeout=60, check_compatibility=False))
    except ValueError as exc:
        raise SettingsError(f"the Qdrant URL {url!r} is not valid ({exc}); "
                            "pass --qdrant-url http://HOST:6333") from exc


@contextmanager
def _server_errors(url: str | None, doing: str) -> Iterator[None]:
    """A server that is down or refuses becomes one line the user can act on."""
    if not url or url == MEMORY_URL:
        yield
        return
    from qdrant_client.http.exceptions import ApiException

    try:
        yield
    except ApiException as exc:
        cause = getattr(exc, "source", None) or exc  # a connection error, wrapped
        text = str(cause).strip()
        reason = text.splitlines()[0][:200] if text else cause.__class__.__name__
        if doing == "building":
            raise IndexWriteError(f"the Qdrant server at {url} failed while {doing} ({reason}); "
                                  "the previous index is intact — check the server and run "
                                  "`assistant index` again") from exc
        raise SettingsError(f"the Qdrant server at {url} failed while {doing} ({reason}); "
                            "check that it is running and reachable") from exc


# --- building ---------------------------------------------------------------------------------


def update_qdrant(layout: IndexLayout, chunks: ChunkSource, base: IndexManifest | None,
                  target: VectorTarget) -> VectorIndexInfo:
    """Bring the staging generation's Qdrant vectors in line with the staging database."""
    _client_class()
    if target.qdrant_url:
        remove_tree(layout.staging / QDRANT_DIR)
        url = target.qdrant_url.rstrip("/")
        with _server_errors(url, "building"):
            return _update_server(url, layout, chunks, base, target.dimension)
    (layout.staging / SERVER_MARKER).unlink(missing_ok=True)
    return _update_local(layout, chunks, base, target.dimension)


def _update_local(layout: IndexLayout, chunks: ChunkSource, base: IndexManifest | None,
                  dim: int) -> VectorIndexInfo:
    """Copy the base generation's folder (or start empty), then apply the id difference."""
    from qdrant_client.http import models as qm

    in_db = chunks.ids()
    target = layout.staging / QDRANT_DIR
    # A folder already in staging is a killed build's work on the same plan: keep it.
    client = _open_local_writer(target) if target.is_dir() else None
    if client is None:
        remove_tree(target)
        source = (layout.generation_dir(base.generation) / QDRANT_DIR
                  if base is not None and base.vectors.store == "qdrant"
                  and not base.vectors.qdrant_url else None)
        if source is not None and (source / "meta.json").is_file():
            partial = target.with_name(QDRANT_DIR + ".partial")
            remove_tree(partial)
            shutil.copytree(source, partial, ignore=shutil.ignore_patterns(".lock"))
            partial.rename(target)
            client = _open_local_writer(target)
        if client is None:  # no base, or its folder is damaged: rebuild from the database
            remove_tree(target)
            client = _open_local_writer(target)
        if client is None:
            raise IndexWriteError(f"cannot create the Qdrant folder {target}")
    try:
        with _quiet():
            if not client.collection_exists(LOCAL_COLLECTION):
                client.create_collection(LOCAL_COLLECTION, vectors_config=qm.VectorParams(
                    size=dim, distance=qm.Distance.COSINE))
            _fast_local_writes(client)
            _sync(client, LOCAL_COLLECTION, chunks, in_db, version=None)
            count = int(client.count(LOCAL_COLLECTION, exact=True).count)
    finally:
        client.close()
    if count != len(in_db):
        raise IndexCorruptError(f"the Qdrant folder holds {count} vectors, the database "
                                f"{len(in_db)}; run `assistant index --full`")
    fsync_tree(target)
    return VectorIndexInfo(store="qdrant", kind="flat", qdrant_collection=LOCAL_COLLECTION)


def _open_local_writer(folder: Path) -> QdrantClient | None:
    """A client on a staging folder, or None when the folder is unreadable."""
    client_class = _client_class()
    try:
        with _quiet():
            return _tracked(client_class(path=str(folder)))
    except (ValueError, KeyError, OSError, sqlite3.Error, json.JSONDecodeError):
        return None


def _fast_local_writes(client: QdrantClient) -> None:
    """Local mode commits every point on its own, and SQLite syncs each commit to disk:
    10,000 points took 177 s here, 3.8 s without the sync. A killed process loses nothing
    either way; the whole folder is synced once before it is published (``fsync_tree``).
    Reaches into qdrant-client's internals, so any change there only costs speed."""
    collections = getattr(getattr(client, "_client", None), "collections", None) or {}
    for collection in collections.values():
        with suppress(AttributeError, sqlite3.Error):
            collection.storage.storage.execute("PRAGMA synchronous=OFF")


def _update_server(url: str, layout: IndexLayout, chunks: ChunkSource,
                   base: IndexManifest | None, dim: int) -> VectorIndexInfo:
    """Write version base + 1 of the lineage's collection (or version 1 of a new one)."""
    from qdrant_client.http import models as qm

    in_db = chunks.ids()
    client = _server_client(url)
    prefix = _collection_prefix(layout)
    marker_file = layout.staging / SERVER_MARKER
    marker = _read_marker(marker_file)
    resumed = marker is not None and marker.get("url") == url
    base_collection = (base.vectors.qdrant_collection if base is not None
                       and base.vectors.store == "qdrant" and base.vectors.qdrant_url == url
                       else None)
    if base_collection and not base_collection.startswith(prefix):
        # The index folder was copied or moved: the collection belongs to the original,
        # which may write the same versions. Start this folder's own lineage.
        base_collection = None
    if base is not None and base_collection and client.collection_exists(base_collection):
        collection, version = base_collection, base.vectors.qdrant_version + 1
        if not (resumed and marker == _marker(url, collection, version)):
            write_json_atomic(marker_file, json.dumps(_marker(url, collection, version)))
            # Forget what an abandoned attempt at this version wrote: its ids may since
            # have been given to other chunks.
            client.delete(collection, qm.FilterSelector(filter=qm.Filter(must=[
                qm.FieldCondition(key="born", range=qm.Range(gte=version))])))
            client.delete_payload(collection, ["dies"], qm.FilterSelector(filter=qm.Filter(
                must=[qm.FieldCondition(key="dies", range=qm.Range(gte=version))])))
        oldest = min([version - 1, *_versions_on_disk(layout, url, collection)])
        client.delete(collection, qm.FilterSelector(filter=qm.Filter(must=[
            qm.FieldCondition(key="dies", range=qm.Range(lte=oldest))])))
    else:
        version = 1
        if resumed and marker is not None and str(marker.get("collection", "")).startswith(
                prefix) and marker.get("version") == 1:
            collection = str(marker["collection"])
        else:
            collection = prefix + uuid.uuid4().hex[:8]
            write_json_atomic(marker_file, json.dumps(_marker(url, collection, version)))
        if not client.collection_exists(collection):
            with _quiet():
                client.create_collection(collection, vectors_config=qm.VectorParams(
                    size=dim, distance=qm.Distance.COSINE))
                for key in ("born", "dies"):
                    client.create_payload_index(collection, key,
                                                field_schema=qm.PayloadSchemaType.INTEGER)
    with _quiet():
        _sync(client, collection, chunks, in_db, version=version)
    count = int(client.count(collection, count_filter=_visible(version), exact=True).count)
    if count != len(in_db):
        raise IndexCorruptError(f"the Qdrant collection {collection} holds {count} vectors "
                                f"for this build, the database {len(in_db)}; "
                                "run `assistant index --full`")
    _drop_unused_collections(client, layout, url, prefix, keep=collection)
    return VectorIndexInfo(store="qdrant", kind="hnsw", qdrant_url=url,
                           qdrant_collection=collection, qdrant_version=version)


def _marker(url: str, collection: str, version: int) -> dict[str, Any]:
    return {"url": url, "collection": collection, "version": version}


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _collection_prefix(layout: IndexLayout) -> str:
    """Collections of this index folder, told apart from other indexes on the same server."""
    digest = hashlib.sha1(str(layout.root.resolve()).encode()).hexdigest()[:10]
    return f"briefing_{digest}_"


def _server_generations(layout: IndexLayout, url: str) -> list[VectorIndexInfo]:
    infos: list[VectorIndexInfo] = []
    for gen in layout.generations():
        try:
            info = read_manifest(gen).vectors
        except AssistantError:  # a damaged generation names nothing worth keeping
            continue
        if info.store == "qdrant" and info.qdrant_url == url and info.qdrant_collection:
            infos.append(info)
    return infos


def _versions_on_disk(layout: IndexLayout, url: str, collection: str) -> list[int]:
    return [i.qdrant_version for i in _server_generations(layout, url)
            if i.qdrant_collection == collection]


def _drop_unused_collections(client: QdrantClient, layout: IndexLayout, url: str, prefix: str,
                             keep: str) -> None:
    """Collections of this index that no generation on disk names: left by a full rebuild
    (now two builds old) or by a killed one."""
    named = {i.qdrant_collection for i in _server_generations(layout, url)} | {keep}
    for c in client.get_collections().collections:
        if c.name.startswith(prefix) and c.name not in named:
            client.delete_collection(c.name)


def _visible(version: int) -> qm.Filter:
    """The points generation ``version`` sees: born by then, not dead by then."""
    from qdrant_client.http import models as qm

    return qm.Filter(must=[qm.FieldCondition(key="born", range=qm.Range(lte=version))],
                     must_not=[qm.FieldCondition(key="dies", range=qm.Range(lte=version))])


def _present(client: QdrantClient, collection: str, flt: qm.Filter | None,
             with_born: bool = False) -> dict[int, int]:
    """Point ids (with their ``born`` version when asked) matching ``flt``."""
    found: dict[int, int] = {}
    offset: Any = None
    while True:
        points, offset = client.scroll(collection, scroll_filter=flt, limit=10_000,
                                       offset=offset, with_payload=["born"] if with_born
                                       else False, with_vectors=False)
        for p in points:
            found[int(p.id)] = int((p.payload or {}).get("born", 0))
        if offset is None:
            return found


def _sync(client: QdrantClient, collection: str, chunks: ChunkSource, in_db: set[int],
          version: int | None) -> None:
    """Make the store's ids (as ``version`` sees them) exactly the database's chunk ids."""
    from qdrant_client.http import models as qm

    present = _present(client, collection, _visible(version) if version else None,
                       with_born=version is not None)
    gone = sorted(set(present) - in_db)
    new = sorted(in_db - set(present))
    # Points this very build added can go at once; older ones stay for older generations.
    drop = [i for i in gone if version is None or present[i] == version]
    retire = [i for i in gone if version is not None and present[i] != version]
    for part in _batches(drop, ID_BATCH):
        client.delete(collection, qm.PointIdsList(points=part))
    for part in _batches(retire, ID_BATCH):
        client.set_payload(collection, {"dies": version}, qm.PointIdsList(points=part))
    for ids, vectors in chunks.batches(new):
        payload = None if version is None else [{"born": version}] * len(ids)
        _upsert(client, collection, ids, vectors, payload)


def _upsert(client: QdrantClient, collection: str, ids: list[int],
            vectors: npt.NDArray[np.float32], payload: list[dict[str, int]] | None) -> None:
    """One batch of points (a seam the kill tests interrupt)."""
    from qdrant_client.http import models as qm

    client.upsert(collection, qm.Batch(ids=ids, vectors=vectors.tolist(), payloads=payload),
                  wait=True)


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class QdrantBackend:
    name = "qdrant"

    def require(self) -> None:
        require_client()

    def open(self, layout: IndexLayout, info: VectorIndexInfo, generation_dir: Path
             ) -> QdrantVectors:
        return QdrantVectors.open(layout, info, generation_dir)

    def update(self, layout: IndexLayout, chunks: ChunkSource, base: IndexManifest | None,
               target: VectorTarget) -> VectorIndexInfo:
        return update_qdrant(layout, chunks, base, target)


BACKEND = QdrantBackend()
