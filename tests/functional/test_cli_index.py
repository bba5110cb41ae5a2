"""`assistant index` and `assistant info` as a user runs them: outputs, messages, exit codes.

Every command runs as a subprocess (``python -m assistant``) with HF_HUB_OFFLINE=1 and its
corpus and index in temporary folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.models import BuildSummary, IndexStatus

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"


def run(*args: str, cwd: Path | None = None, **extra_env: str
        ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", **extra_env)
    env.pop("ASSISTANT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True,
                          text=True, env=env, timeout=600, cwd=cwd)


def where(corpus: Path, index: Path) -> list[str]:
    return ["--corpus", str(corpus), "--index", str(index)]


def assert_one_line_error(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in r.stderr, r.stderr
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The briefing indexed once by `assistant index` (its stdout kept); copied before writes."""
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy2(BRIEFING, corpus / BRIEFING.name)
    r = run("index", *where(corpus, root / "index"))
    assert r.returncode == 0, r.stderr
    return corpus, root / "index", r.stdout


@pytest.fixture()
def copy(built: tuple[Path, Path, str], tmp_path: Path) -> tuple[Path, Path]:
    corpus, index, _ = built
    shutil.copytree(corpus, tmp_path / "corpus")
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / "corpus", tmp_path / "index"


# --- index -------------------------------------------------------------------------------------

def test_index_prints_a_summary_then_up_to_date(built: tuple[Path, Path, str]) -> None:
    corpus, index, first = built
    assert first.startswith(f"Indexed 1 document into {index} (generation 1): 1 added, "
                            "0 changed, 0 removed, 0 unchanged, 0 skipped; 7 chunks embedded, "
                            "7 in all;")
    r = run("index", *where(corpus, index))
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("Index is up to date: 1 document, 7 chunks (")


def test_index_json_is_one_build_summary(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    (corpus / "more.md").write_text("# More\n\nA second document about tariffs.\n")
    r = run("index", "--json", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    assert r.stdout.count("\n") == 1
    s = BuildSummary.model_validate_json(r.stdout)
    assert s.added == ["more.md"] and s.unchanged == 1 and s.chunks_embedded == 1
    assert s.documents == 2 and s.chunk_count == 8 and s.generation == 2
    again = BuildSummary.model_validate(json.loads(run("index", "--json",
                                                       *where(corpus, index)).stdout))
    assert again.up_to_date and again.documents == 2


@pytest.mark.slow
def test_full_and_changed_parameters_say_why(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    r = run("index", "--full", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Full rebuild: --full was requested.\n")
    assert "0 added, 0 changed, 0 removed, 1 unchanged, 0 skipped; 7 chunks embedded" in r.stdout
    r = run("index", *where(corpus, index), ASSISTANT_CHUNK_MAX_TOKENS="120")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Full rebuild: chunk parameters changed (max_tokens 200 → 120).")


def test_an_index_of_another_model_is_rebuilt_and_the_output_says_why(
        copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    manifest = index / "gen-000001" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["model"]["weights_sha256"] = "f" * 64
    manifest.write_text(json.dumps(data))
    r = run("index", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Full rebuild: the embedding model changed "
                               "(MiniLM-L6-tuned ffffffffffff → "
                               "MiniLM-L6-tuned ebb7db6dd206).")
    assert "7 chunks embedded" in r.stdout


def test_progress_bar_on_a_terminal(copy: tuple[Path, Path]) -> None:
    """On a terminal, stderr shows what the build is doing; stdout still holds the summary."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    corpus, index = copy
    (corpus / "more.txt").write_text("More notes\nTariffs rose again in March.\n")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:  # read as it comes: a full pty buffer would block the build
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "assistant", "index", *where(corpus, index)],
                              stdout=subprocess.PIPE, stderr=slave, text=True, timeout=600,
                              env=dict(os.environ, HF_HUB_OFFLINE="1"))
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "embedding chunks" in shown and "publishing" in shown
    assert "chunk/s" in shown or "s/chunk" in shown  # counts chunks, not documents
    assert "exporting" not in shown  # the index already holds the model's export
    assert proc.stdout.startswith("Indexed 2 documents")


# --- info --------------------------------------------------------------------------------------

def test_info_says_what_the_index_holds(built: tuple[Path, Path, str]) -> None:
    corpus, index, _ = built
    r = run("info", *where(corpus, index))
    assert r.returncode == 0 and r.stderr == ""
    out = r.stdout
    assert f"Index:     {index} (generation 1)" in out
    assert "Built at:  20" in out
    assert "Model:     MiniLM-L6-tuned (ebb7db6dd206)" in out
    assert "Contents:  1 document, 7 chunks, 19 sentences" in out
    assert ("  - nvidia-h200-china.txt: Letting Nvidia sell H200s to China is closing the door "
            "after the horse has bolted (7 chunks)") in out
    assert "Stale:     no" in out
    st = IndexStatus.model_validate_json(run("info", "--json", *where(corpus, index)).stdout)
    assert st.exists and not st.stale and st.chunk_count == 7 and st.generation == 1
    assert [d.doc_id for d in st.documents] == ["nvidia-h200-china.txt"]
    assert st.model and st.built_at is not None


@pytest.mark.slow
def test_info_reports_a_stale_index(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    path = corpus / BRIEFING.name
    path.write_text(path.read_text() + "\nA late addendum.\n")
    (corpus / "new.txt").write_text("New\nA new document.\n")
    r = run("info", *where(corpus, index))
    assert r.returncode == 0
    assert ("Stale:     yes — new document new.txt; document changed: nvidia-h200-china.txt; "
            "run `assistant index`") in r.stdout
    st = IndexStatus.model_validate_json(run("info", "--json", *where(corpus, index)).stdout)
    assert st.stale and len(st.stale_reasons) == 2
    path.unlink()
    st = IndexStatus.model_validate_json(run("info", "--json", *where(corpus, index)).stdout)
    assert "document removed: nvidia-h200-china.txt" in st.stale_reasons
    assert run("index", *where(corpus, index)).returncode == 0
    st = IndexStatus.model_validate_json(run("info", "--json", *where(corpus, index)).stdout)
    assert not st.stale and [d.doc_id for d in st.documents] == ["new.txt"]


def test_info_without_an_index_exits_4(tmp_path: Path) -> None:
    r = run("info", *where(tmp_path, tmp_path / "none"))
    assert_one_line_error(r, 4, f"no index in {tmp_path / 'none'}", "run `assistant index`")
    assert r.stdout == ""


def test_json_errors_are_json(tmp_path: Path) -> None:
    """With --json a script reads the error as JSON too (on stderr; stdout stays empty)."""
    r = run("info", "--json", *where(tmp_path, tmp_path / "none"))
    assert r.returncode == 4 and r.stdout == ""
    error = json.loads(r.stderr)
    assert error["exit_code"] == 4 and error["title"] == "No index"
    assert error["error"].startswith(f"no index in {tmp_path / 'none'}")
    r = run("index", "--json", *where(tmp_path / "nowhere", tmp_path / "index"))
    assert r.returncode == 3 and json.loads(r.stderr)["exit_code"] == 3


@pytest.mark.slow
def test_skipped_files_are_remembered_so_an_unchanged_corpus_is_not_stale(
        copy: tuple[Path, Path]) -> None:
    """An empty or binary file is skipped once; it does not make the index stale forever nor
    make every build publish a new generation."""
    corpus, index = copy
    (corpus / "empty.txt").write_text("")
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    r = run("index", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert "(generation 2)" in r.stdout
    assert "warning: skipped empty.txt: no text to index" in r.stderr.splitlines()
    info = run("info", *where(corpus, index))
    assert "Stale:     no" in info.stdout, info.stdout
    again = run("index", *where(corpus, index))
    assert again.stdout.startswith("Index is up to date: 1 document"), again.stdout
    assert "warning: skipped image.txt: binary file, not text" in again.stderr.splitlines()
    assert (index / "CURRENT").read_text().strip() == "gen-000002"
    ask = run("ask", "Which vendors deploy rack-scale systems?", "--index", str(index))
    assert ask.returncode == 0 and "stale" not in ask.stderr, ask.stderr
    (corpus / "empty.txt").write_text("Late news\nTariffs rose again in March.\n")
    st = IndexStatus.model_validate_json(run("info", "--json", *where(corpus, index)).stdout)
    assert st.stale and st.stale_reasons == ["new document empty.txt"]
    s = BuildSummary.model_validate_json(run("index", "--json", *where(corpus, index)).stdout)
    assert s.added == ["empty.txt"] and [k.path for k in s.skipped] == ["image.txt"]


def test_info_compares_with_the_corpus_the_index_was_built_from(
        copy: tuple[Path, Path], tmp_path: Path) -> None:
    """Without --corpus, `info` uses the index's own corpus, not ./corpus of the cwd."""
    _, index = copy
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "corpus").mkdir(parents=True)
    (elsewhere / "corpus" / "other.txt").write_text("Other\nSomething else entirely.\n")
    built_from = json.loads((index / "gen-000001" / "manifest.json").read_text())["corpus_dir"]
    r = run("info", "--index", str(index), cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert f"Corpus:    {built_from}\n" in r.stdout
    assert "Stale:     no" in r.stdout, r.stdout
    r = run("index", "--index", str(index), cwd=elsewhere)
    assert r.stdout.startswith("Index is up to date: 1 document"), r.stdout
    r = run("info", "--index", str(index), "--corpus", "corpus", cwd=elsewhere)
    assert "Stale:     yes" in r.stdout and "new document other.txt" in r.stdout


def test_a_corpus_that_is_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Notes\nA file, not a folder.\n")
    r = run("index", *where(tmp_path / "notes.txt", tmp_path / "index"))
    assert_one_line_error(r, 3, "is a file, not a folder", "--corpus DIR")


# --- bad input ---------------------------------------------------------------------------------

def test_empty_corpus_exits_3_with_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "picture.png").write_bytes(b"\x89PNG")
    r = run("index", *where(corpus, tmp_path / "index"))
    assert_one_line_error(r, 3, "has no .txt, .md, .html or .pdf documents",
                          "1 other files skipped", "assistant index")
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_missing_corpus_exits_3(tmp_path: Path) -> None:
    r = run("index", *where(tmp_path / "nowhere", tmp_path / "index"))
    assert_one_line_error(r, 3, f"the corpus folder {tmp_path / 'nowhere'} does not exist",
                          "--corpus DIR")


def test_a_corpus_of_only_unreadable_files_exits_3(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "blank.txt").write_text("\n\n")
    (corpus / "scan.pdf").write_bytes(b"%PDF-1.7 garbage")
    r = run("index", *where(corpus, tmp_path / "index"))
    assert r.returncode == 3, r.stderr
    assert "none of the documents" in r.stderr and "Traceback" not in r.stderr


def test_bad_files_are_skipped_with_a_warning_and_the_build_goes_on(copy: tuple[Path, Path]
                                                                     ) -> None:
    corpus, index = copy
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(256))
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (corpus / "empty.md").write_text("")
    (corpus / "folder.html").mkdir()  # a folder, whatever its name: searched, not read
    os.mkfifo(corpus / "pipe.txt")  # reading it would block forever
    (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
    shutil.copy(DATA / "cafe-cp1252.txt", corpus / "cafe.txt")
    r = run("index", "--json", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    s = BuildSummary.model_validate_json(r.stdout)
    assert s.added == ["cafe.txt"] and s.documents == 2
    assert {k.path for k in s.skipped} == {"image.txt", "broken.pdf", "empty.md", "pipe.txt",
                                           "dangling.txt"}
    warnings = r.stderr.splitlines()
    assert "warning: skipped image.txt: binary file, not text" in warnings
    assert any(w.startswith("warning: skipped broken.pdf: malformed PDF") for w in warnings)
    assert "warning: skipped empty.md: no text to index" in warnings
    assert "warning: skipped pipe.txt: not a regular file" in warnings
    assert "warning: skipped dangling.txt: symbolic link, not followed" in warnings
    assert "warning: cafe.txt: not UTF-8; read as Windows-1252 (Latin-1)" in warnings
    assert all(w.startswith("warning: ") for w in warnings)
    from assistant.index.store import open_index

    idx = open_index(index)
    try:
        assert "The café sold crème brûlée for €10 – a bargain." in idx.document_text("cafe.txt")
    finally:
        idx.close()


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    r = run("index", *where(tmp_path, tmp_path / "index"), ASSISTANT_CHUNK_MAX_TOKENS="999")
    assert_one_line_error(r, 2, "chunk_max_tokens")


@pytest.mark.parametrize("damage", ["garbage CURRENT", "CURRENT names nothing",
                                    "manifest not JSON", "manifest fields missing",
                                    "database garbage"])
@pytest.mark.slow
def test_a_corrupt_index_gets_a_clear_message_and_a_rebuild_recovers(
        copy: tuple[Path, Path], damage: str) -> None:
    corpus, index = copy
    gen = index / "gen-000001"
    if damage == "garbage CURRENT":
        (index / "CURRENT").write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "CURRENT names nothing":
        (index / "CURRENT").write_text("gen-000042\n")
    elif damage == "manifest not JSON":
        (gen / "manifest.json").write_text("{ not json")
    elif damage == "manifest fields missing":
        (gen / "manifest.json").write_text(json.dumps({"schema_version": 1, "generation": 1}))
    else:
        (gen / "meta.sqlite").write_bytes(b"this is not a database" * 100)
    for cmd in ("info", "ask"):
        args = [cmd, *where(corpus, index)] if cmd == "info" else [
            cmd, "What revenue share does the US get?", "--index", str(index)]
        assert_one_line_error(run(*args), 4, "run `assistant index")  # plain or --full
    r = run("index", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Full rebuild: the existing index is unusable (")
    assert "Stale:     no" in run("info", *where(corpus, index)).stdout
    if damage == "database garbage":  # once: the rebuilt index answers again
        answer = run("ask", "What revenue share does the US get?", "--index", str(index))
        assert answer.returncode == 0 and "25%" in answer.stdout


@pytest.mark.slow
def test_full_rebuild_recovers_a_corrupt_index(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    (index / "CURRENT").write_text("garbage")
    r = run("index", "--full", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Full rebuild: --full was requested.")
    assert "Stale:     no" in run("info", *where(corpus, index)).stdout


@pytest.mark.slow
def test_an_index_from_another_schema_version(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    manifest = index / "gen-000001" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 999
    manifest.write_text(json.dumps(data))
    assert_one_line_error(run("info", *where(corpus, index)), 4, "schema version 999",
                          "this assistant reads version 2", "run `assistant index --full`")
    r = run("index", "--json", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    s = BuildSummary.model_validate_json(r.stdout)
    assert s.full_rebuild_reason and "schema version 999" in s.full_rebuild_reason
    assert s.chunks_embedded == 7


def _as_built_with_qdrant(index: Path) -> None:
    """The index made to look as the retired Qdrant store left it: its manifest names the
    store, its vectors are in a ``qdrant/`` folder instead of ``chunks.faiss``."""
    gen = index / "gen-000001"
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["vectors"] = {"store": "qdrant", "kind": "flat", "nlist": 0, "nprobe": 0,
                           "qdrant_url": None, "qdrant_collection": None, "qdrant_version": 0}
    del manifest["files"]["chunks.faiss"]
    (gen / "chunks.faiss").unlink()
    (gen / "qdrant").mkdir()
    (gen / "manifest.json").write_text(json.dumps(manifest))


def test_an_index_built_with_qdrant_says_how_to_rebuild(copy: tuple[Path, Path]) -> None:
    """The Qdrant store is retired: an index it built is refused in one line (exit 4) with
    both ways to rebuild it."""
    corpus, index = copy
    _as_built_with_qdrant(index)
    for args in (["info", *where(corpus, index)],
                 ["ask", "What revenue share does the US get?", "--index", str(index)]):
        assert_one_line_error(run(*args), 4, "built with the Qdrant vector store",
                              "`assistant index --full` (the embedded FAISS index)",
                              "`assistant index --full --server postgresql://")


@pytest.mark.slow
def test_a_plain_index_rebuilds_a_qdrant_index_with_faiss(copy: tuple[Path, Path]) -> None:
    corpus, index = copy
    _as_built_with_qdrant(index)
    r = run("index", *where(corpus, index))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Full rebuild: the existing index is unusable (the index in")
    answer = run("ask", "What revenue share does the US get?", "--index", str(index))
    assert answer.returncode == 0 and "25%" in answer.stdout, answer.stderr


@pytest.mark.parametrize("set_in", ["assistant.toml", "environment"])
def test_a_leftover_qdrant_setting_exits_2(tmp_path: Path, set_in: str) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text('store = "qdrant"\n' if set_in == "assistant.toml" else "")
    env = {"ASSISTANT_CONFIG": str(config)}
    if set_in == "environment":
        env["ASSISTANT_QDRANT_URL"] = "http://qdrant.internal:6333"
    r = run("index", *where(tmp_path / "corpus", tmp_path / "index"), **env)
    assert_one_line_error(r, 2, "setting of the retired Qdrant vector store; remove it",
                          "`assistant index --full --server postgresql://")


def test_a_held_lock_makes_a_second_build_exit_5(copy: tuple[Path, Path]) -> None:
    """Another build holds the lock: with a short timeout the second gives up clearly and
    touches nothing."""
    from filelock import FileLock

    corpus, index = copy
    (corpus / "new.txt").write_text("New\nA new document.\n")
    before = sorted(p.name for p in index.iterdir())
    with FileLock(str(index / ".lock")):
        r = run("index", *where(corpus, index), ASSISTANT_LOCK_TIMEOUT_S="0.3")
    assert_one_line_error(r, 5, "another `assistant index` is building",
                          "try again when it has finished")
    assert r.stdout == ""
    assert sorted(p.name for p in index.iterdir()) == before
    assert run("index", *where(corpus, index)).returncode == 0
