"""A damaged, foreign, read-only or full index (issue 6): every file of the index truncated,
deleted or replaced with garbage in turn; an index from another model or schema; a folder
that cannot be written; a disk that fills during a build. ``assistant ask`` answers or says
in one line (exit 4) how to fix it, ``assistant index`` repairs it, and a failed build never
touches the index that readers use.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile import (
    BRIEFING_QUESTION,
    ROOT,
    ask,
    assert_ok,
    assert_user_error,
    briefing_corpus,
    build,
    can_mount,
    cli,
    cli_env,
    replace_file,
    write_generated_corpus,
)

from assistant.chunk import CHUNKER_VERSION
from assistant.models import SCHEMA_VERSION

GARBAGE = b"\xff\xfe\x00garbage\x00" * 300


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, index) built once; each test damages its own hard-linked copy."""
    base = tmp_path_factory.mktemp("pristine")
    corpus = briefing_corpus(base / "corpus")
    build(corpus, base / "index")
    return corpus, base / "index"


@pytest.fixture()
def copy(pristine: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the pristine index whose files are hard links (cheap: the model is 90 MB).
    Damage always goes through a new inode (``replace_file``), never into a shared one."""
    corpus, index = pristine
    target = tmp_path / "index"
    shutil.copytree(index, target, copy_function=os.link)
    return corpus, target


def _part(index: Path, name: str) -> Path:
    gen = index / (index / "CURRENT").read_text().strip()
    model = next((index / "models").glob("*/model.onnx")).parent
    return {"CURRENT": index / "CURRENT", "manifest.json": gen / "manifest.json",
            "meta.sqlite": gen / "meta.sqlite", "chunks.faiss": gen / "chunks.faiss",
            "model.onnx": model / "model.onnx", "tokenizer.json": model / "tokenizer.json"}[name]


def _damage(path: Path, mode: str) -> None:
    if mode == "deleted":
        path.unlink()
    elif mode == "truncated":
        replace_file(path, path.read_bytes()[: path.stat().st_size // 2])
    elif mode == "flipped":
        replace_file(path, flipped(path.read_bytes()))
    else:
        replace_file(path, GARBAGE)


def flipped(data: bytes, count: int = 64) -> bytes:
    """``data`` with ``count`` bytes in its middle changed (each bit-flipped): the damage
    a bad disk sector or a stray write does, which leaves the file loadable."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0x5A for b in data[mid:mid + count]) + data[mid + count:]


PARTS = ["CURRENT", "manifest.json", "meta.sqlite", "chunks.faiss", "model.onnx",
         "tokenizer.json"]
MODES = ["truncated", "deleted", "garbage", "flipped"]
# The manifest holds the others' checksums; its own bytes are checked by parsing alone.
NOT_FLIPPED = {"CURRENT", "manifest.json"}
NAMED = {"meta.sqlite", "chunks.faiss", "model.onnx", "tokenizer.json"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("part", PARTS)
def test_damaged_file_is_reported_by_ask_and_info_and_plain_index_repairs_it(
        copy: tuple[Path, Path], part: str, mode: str) -> None:
    if mode == "flipped" and part in NOT_FLIPPED:
        pytest.skip("a text file the manifest does not checksum")
    corpus, index = copy
    _damage(_part(index, part), mode)
    missing = (part, mode) == ("CURRENT", "deleted")
    needle = "`assistant index"  # plain or --full: both rebuild
    named = (part,) if part in NAMED else ()
    assert_user_error(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent), 4,
                      needle, *named)
    assert_user_error(cli("info", "--index", index, "--corpus", corpus, cwd=index.parent), 4,
                      needle, *named)
    proc = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent)
    assert_ok(proc)
    if not missing:
        assert "Full rebuild: the existing index is unusable" in proc.stdout, proc.stdout
        assert (part in proc.stdout) or not named, proc.stdout
    answer = ask(index, BRIEFING_QUESTION)
    assert answer.answer is not None and "25% revenue" in answer.answer.text
    assert_ok(cli("info", "--index", index, "--corpus", corpus, cwd=index.parent))


def test_damage_written_in_place_is_found_though_size_and_mtime_are_kept(
        copy: tuple[Path, Path]) -> None:
    """Bytes changed inside the file itself (same inode, size and mtime), not through a new
    file: the stamp of its last full check no longer matches (its ctime moved), so the next
    `assistant ask` hashes it and refuses it."""
    _, index = copy
    model = _part(index, "model.onnx")
    private = model.with_name("private")
    shutil.copyfile(model, private)  # this test's own inode, so the damage stays here
    private.replace(model)
    assert_ok(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent))
    before = model.stat()
    with open(model, "r+b") as fh:
        fh.seek(before.st_size // 2)
        block = fh.read(64)
        fh.seek(before.st_size // 2)
        fh.write(bytes(b ^ 0x5A for b in block))
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert_user_error(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent), 4,
                      "model.onnx", "is damaged", "run `assistant index`")


def test_flipped_bytes_in_one_index_model_leave_another_index_answering_as_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two indexes of one machine: 64 bytes flipped in place in the first one's model must
    not reach the second (they used to share the file through a hard link into the shared
    export cache, and 18 of 56 answers of the untouched index changed)."""
    from assistant.model_export import shared_cache_dir

    cache = tmp_path / "cache"  # a private copy of the cache: this test damages files
    shutil.copytree(shared_cache_dir() / "models", cache / "models")
    monkeypatch.setenv("ASSISTANT_MODEL_CACHE", str(cache))
    env = cli_env(ASSISTANT_MODEL_CACHE=str(cache))
    corpus = briefing_corpus(tmp_path / "corpus")
    build(corpus, tmp_path / "one")
    build(corpus, tmp_path / "two")
    questions = [json.loads(line)["question"] for line in
                 (ROOT / "tests" / "data" / "dev_questions.jsonl").read_text().splitlines()[:12]]
    (tmp_path / "q.txt").write_text("\n".join(questions) + "\n")

    def answers(index: Path) -> list[Any]:
        proc = cli("batch", tmp_path / "q.txt", "--index", index, cwd=tmp_path, env=env)
        assert_ok(proc)
        return [{k: r.get(k) for k in ("answer", "citations")}
                for r in map(json.loads, proc.stdout.splitlines())]

    before = answers(tmp_path / "two")
    other_model = _part(tmp_path / "two", "model.onnx").read_bytes()
    model = _part(tmp_path / "one", "model.onnx")
    with open(model, "r+b") as fh:  # in place, as a stray write or a bad sector would
        fh.seek(model.stat().st_size // 2)
        block = fh.read(64)
        fh.seek(model.stat().st_size // 2)
        fh.write(bytes(b ^ 0x5A for b in block))
    assert _part(tmp_path / "two", "model.onnx").read_bytes() == other_model
    assert answers(tmp_path / "two") == before
    assert_user_error(cli("ask", "--index", tmp_path / "one", BRIEFING_QUESTION, cwd=tmp_path,
                          env=env), 4, "model.onnx", "is damaged")
    assert_ok(cli("index", "--corpus", corpus, "--index", tmp_path / "one", cwd=tmp_path,
                  env=env))
    assert answers(tmp_path / "one") == before


def test_unreadable_staging_left_by_a_killed_build_is_discarded_with_a_notice(
        copy: tuple[Path, Path]) -> None:
    pristine_corpus, index = copy
    corpus = shutil.copytree(pristine_corpus, index.parent / "corpus-plus")
    (corpus / "ferry.txt").write_text("Ferry notes\n\nThe ferry to Gozo carried 812 "
                                      "bicycles during the August festival.\n")
    staging = index / "staging"
    for flags in ([], ["--full"]):
        staging.mkdir()
        (staging / "plan.json").write_bytes(b'{"base": 1, \xff\xfe\x00 "model": ')
        (staging / "meta.sqlite").write_bytes(GARBAGE)
        proc = cli("index", "--corpus", corpus, "--index", index, *flags, cwd=index.parent)
        assert_ok(proc)
        assert "warning: the work left by an interrupted build was unreadable and was " \
               "discarded" in proc.stderr, proc.stderr
    answer = ask(index, "How many bicycles did the ferry to Gozo carry?")
    assert answer.answer is not None and "812 bicycles" in answer.answer.text


@pytest.mark.slow
def test_damaged_shared_model_cache_is_exported_again(copy: tuple[Path, Path],
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's model files are hard links into the shared export cache, so damage written
    into them in place reaches the cache too: ``--full`` then exports the model afresh."""
    from assistant.model_export import shared_cache_dir

    corpus, index = copy
    cache = tmp_path / "cache"
    shutil.copytree(shared_cache_dir(), cache, copy_function=os.link)
    monkeypatch.setenv("ASSISTANT_MODEL_CACHE", str(cache))
    for onnx in [*cache.glob("models/*/model.onnx"), _part(index, "model.onnx")]:
        replace_file(onnx, GARBAGE)
    for tok in cache.glob("models/*/tokenizer.json"):
        replace_file(tok, GARBAGE)
    build(corpus, index, full=True)
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote


# --- another model, another schema ----------------------------------------------------------

def _edit_manifest(index: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = _part(index, "manifest.json")
    data = json.loads(path.read_text())
    edit(data)
    replace_file(path, json.dumps(data).encode())


def test_index_from_another_model_is_rebuilt_with_the_reason(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    _edit_manifest(index, lambda m: m["model"].update(weights_sha256="0" * 64))
    # Queries embed with the index's own exported model, so it still answers consistently.
    answer = ask(index, BRIEFING_QUESTION)
    assert answer.answer is not None
    proc = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent)
    assert_ok(proc)
    assert "Full rebuild: the embedding model changed" in proc.stdout
    assert "000000000000 →" in proc.stdout
    manifest = json.loads(_part(index, "manifest.json").read_text())
    assert manifest["model"]["weights_sha256"] != "0" * 64


def test_index_from_another_schema_is_refused_then_rebuilt(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    _edit_manifest(index, lambda m: m.update(schema_version=999))
    assert_user_error(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent), 4,
                      "schema version 999", f"reads version {SCHEMA_VERSION}",
                      "assistant index --full")
    assert_user_error(cli("info", "--index", index, cwd=index.parent), 4, "schema version 999")
    proc = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent)
    assert_ok(proc)
    assert "Full rebuild: the existing index is unusable" in proc.stdout
    assert "schema version 999" in proc.stdout
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote


def test_index_of_an_older_format_is_refused_then_rebuilt_once(copy: tuple[Path, Path]) -> None:
    """An index whose documents were read the old way (no units, no map to the source's
    lines) is never answered from: one line, then one full rebuild that says why."""
    corpus, index = copy
    _edit_manifest(index, lambda m: m["chunk_params"].update(
        chunker_version=CHUNKER_VERSION - 1))
    assert_user_error(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent), 4,
                      f"index format {CHUNKER_VERSION - 1}", "assistant index")
    proc = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent)
    assert_ok(proc)
    assert (f"Full rebuild: the index format changed ({CHUNKER_VERSION - 1} → "
            f"{CHUNKER_VERSION})") in proc.stdout
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote
    answered = cli("ask", "--json", "--index", index, BRIEFING_QUESTION, cwd=index.parent)
    assert_ok(answered)
    first = json.loads(answered.stdout)["citations"][0]
    source = (corpus / first["doc_id"]).read_text(encoding="utf-8").splitlines()
    assert first["quote"] in source[first["line"] - 1]  # the file's line
    again = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent)
    assert_ok(again)
    assert "Full rebuild" not in again.stdout


def test_unknown_generation_or_missing_generation_folder(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    gen = _part(index, "manifest.json").parent
    shutil.rmtree(gen)
    assert_user_error(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent), 4,
                      "names no generation", "assistant index --full")
    build(corpus, index)
    assert "25%" in ask(index, BRIEFING_QUESTION).citations[0].quote


# --- read-only index folder -----------------------------------------------------------------

@pytest.fixture()
def read_only(copy: tuple[Path, Path]) -> Iterator[tuple[Path, Path]]:
    """The copy, bind-mounted read-only onto itself (a real EROFS, even for root)."""
    if not can_mount():
        pytest.skip("needs root with CAP_SYS_ADMIN to mount; the simulated tests cover it")
    _, index = copy
    subprocess.run(["mount", "--bind", str(index), str(index)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(index)], check=True)
        yield copy
    finally:
        subprocess.run(["umount", str(index)], check=True)


def test_read_only_index_still_answers_and_build_says_why(read_only: tuple[Path, Path]
                                                          ) -> None:
    corpus, index = read_only
    with pytest.raises(OSError):
        (index / "probe").write_text("x")
    proc = cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent)
    assert_ok(proc)
    assert "25% revenue" in proc.stdout
    proc = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent)
    assert_ok(proc)  # up to date: nothing to write
    assert proc.stdout.startswith("Index is up to date")
    extra = index.parent / "corpus-plus"
    shutil.copytree(corpus, extra)
    (extra / "new.txt").write_text("Notes\n\nThe ferry timetable changes in October.\n")
    proc = cli("index", "--corpus", extra, "--index", index, cwd=index.parent)
    assert_user_error(proc, 6, "cannot write to the index folder", "Read-only file system",
                      "fix its permissions or use --index DIR")


_RO_BOOT = """
import errno, os
INDEX = {index!r}
_real = os.{fn}
def _refuse(path, *args, **kwargs):
    if os.fspath(path).startswith(INDEX){cond}:
        raise OSError(errno.{err}, os.strerror(errno.{err}), os.fspath(path))
    return _real(path, *args, **kwargs)
os.{fn} = _refuse
"""


@pytest.mark.parametrize(("fn", "cond", "err", "needles"), [
    ("open", " and args[0] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)", "EROFS",
     ("cannot write to the index folder", "Read-only file system", "fix its permissions")),
    ("mkdir", "", "EACCES",
     ("cannot write the index in", "Permission denied", "the previous index is intact",
      "fix the folder's permissions")),
])
def test_unwritable_index_folder_simulated(copy: tuple[Path, Path], fn: str, cond: str,
                                           err: str, needles: tuple[str, ...]) -> None:
    """Portable stand-in for a read-only folder (tests may run as root, where chmod does not
    stop writes): the first write the build makes — the lock, or its staging folder — fails."""
    corpus, index = copy
    extra = index.parent / "corpus-plus"
    shutil.copytree(corpus, extra)
    (extra / "new.txt").write_text("Notes\n\nThe ferry timetable changes in October.\n")
    boot = _RO_BOOT.format(index=str(index), fn=fn, cond=cond, err=err)
    proc = cli("index", "--corpus", extra, "--index", index, cwd=index.parent, boot=boot)
    assert_user_error(proc, 6, *needles)
    assert_ok(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent))


# --- disk full during a build ---------------------------------------------------------------

NEW_FACT = "The ferry to Gozo carried 812 bicycles during the August festival."


@pytest.fixture()
def grown(tmp_path: Path) -> tuple[Path, Path, Any]:
    """An index of the briefing and generated reports, then a corpus that has grown."""
    corpus = briefing_corpus(tmp_path / "corpus")
    write_generated_corpus(corpus, documents=3, sentences=40, seed=5)
    build(corpus, tmp_path / "index")
    before = ask(tmp_path / "index", BRIEFING_QUESTION)
    (corpus / "ferry.txt").write_text(f"Ferry notes\n\n{NEW_FACT}\n")
    (corpus / "report001.txt").write_text("Report on the harbour\n\nThe cargo volume fell.\n")
    return corpus, tmp_path / "index", before


def _full_disk(point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.build.embedding as b
    import assistant.build.publish as publish
    import assistant.index.manifest as manifest
    from assistant.index.vectors.faiss import FaissVectors

    def enospc(*_: object) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if point == "embedding":
        monkeypatch.setattr(b, "BATCH_CHUNKS", 1)
        real = b.embed_and_store
        calls = {"n": 0}

        def embed_then_fill(*args: Any) -> int:
            calls["n"] += 1
            if calls["n"] == 2:
                raise sqlite3.OperationalError("database or disk is full")
            return real(*args)

        monkeypatch.setattr(b, "embed_and_store", embed_then_fill)
    elif point == "vectors":
        def save(self: Any, path: Path) -> None:
            raise RuntimeError(f"write error in {path}: 0 != 3072 (No space left on device)")

        monkeypatch.setattr(FaissVectors, "save", save)
    elif point in ("manifest.json", "CURRENT"):
        real_write = getattr(publish, "write_json_atomic")  # noqa: B009 - patched below

        def write(path: Path, text: str) -> None:
            if path.name == point:
                raise enospc()
            real_write(path, text)

        monkeypatch.setattr(publish, "write_json_atomic", write)  # CURRENT
        monkeypatch.setattr(manifest, "write_json_atomic", write)  # manifest.json
    elif point == "staging":
        def copyfile(*_: object, **__: object) -> None:
            raise enospc()

        monkeypatch.setattr(shutil, "copyfile", copyfile)


@pytest.mark.parametrize("point", ["staging", "embedding", "vectors", "manifest.json",
                                   "CURRENT"])
def test_disk_full_during_build_keeps_the_previous_index(
        grown: tuple[Path, Path, Any], point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import IndexWriteError
    from assistant.index.layout import IndexLayout

    corpus, index, before = grown
    live = IndexLayout(index).current_generation()
    _full_disk(point, monkeypatch)
    with pytest.raises(IndexWriteError) as caught:
        build(corpus, index)
    monkeypatch.undo()
    assert caught.value.exit_code == 6
    assert "the previous index is intact" in caught.value.message
    assert "free some space" in caught.value.message
    assert "run `assistant index` again" in caught.value.message
    assert IndexLayout(index).current_generation() == live
    after = ask(index, BRIEFING_QUESTION)  # still usable, still the same answer
    assert after.answer == before.answer
    from assistant.index.store import open_index

    idx = open_index(index)
    assert "ferry.txt" not in idx.manifest.documents  # nothing of the failed build shows
    idx.close()
    summary = build(corpus, index)  # space freed: the next build completes
    assert "ferry.txt" in summary.added
    answer = ask(index, "How many bicycles did the ferry to Gozo carry?")
    assert answer.answer is not None and answer.answer.text == NEW_FACT


def test_disk_full_message_through_the_cli(grown: tuple[Path, Path, Any]) -> None:
    corpus, index, _ = grown
    boot = ("import assistant.build.embedding as b, sqlite3\n"
            "def full(*a, **k):\n    raise sqlite3.OperationalError('database or disk is full')\n"
            "b.embed_and_store = full")
    proc = cli("index", "--corpus", corpus, "--index", index, cwd=index.parent, boot=boot)
    assert_user_error(proc, 6, "database or disk is full", "the previous index is intact",
                      "free some space", "assistant index")
    assert_ok(cli("ask", "--index", index, BRIEFING_QUESTION, cwd=index.parent))


def test_real_full_disk(tmp_path: Path) -> None:
    """A real tmpfs that fills up mid-build (root only): clear message, old index serves."""
    if not can_mount():
        pytest.skip("needs root with CAP_SYS_ADMIN to mount a tmpfs")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=110m", "tmpfs", str(mnt)], check=True)
    try:
        corpus = briefing_corpus(tmp_path / "corpus")
        index = mnt / "index"
        assert_ok(cli("index", "--corpus", corpus, "--index", index, cwd=tmp_path))
        filler = mnt / "filler"
        with open(filler, "wb") as fh:  # fill the disk, then give back a sliver
            try:
                while True:
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
            except OSError:
                pass
        with open(filler, "r+b") as fh:
            fh.truncate(max(0, filler.stat().st_size - 96 * 1024))
        write_generated_corpus(corpus, documents=4, sentences=60, seed=9)
        proc = cli("index", "--corpus", corpus, "--index", index, cwd=tmp_path)
        assert_user_error(proc, 6, "the previous index is intact")
        assert "free some space" in proc.stderr or "No space left" in proc.stderr
        proc = cli("ask", "--index", index, BRIEFING_QUESTION, cwd=tmp_path)
        assert_ok(proc)
        assert "25% revenue" in proc.stdout
        filler.unlink()
        assert_ok(cli("index", "--corpus", corpus, "--index", index, cwd=tmp_path))
        assert len(json.loads(cli("info", "--json", "--index", index, "--corpus", corpus,
                                  cwd=tmp_path).stdout)["documents"]) == 5
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)
