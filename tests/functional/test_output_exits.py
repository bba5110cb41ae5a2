"""Exit codes and messages where output, input files and settings go wrong, as a user meets
them: a full disk behind stdout or ``batch -o`` (``/dev/full``), a batch file that cannot
be read, settings that would silently do the wrong thing, a server URL that would print its
password, a heading of many kilobytes printed with every citation.

Each runs the CLI in a subprocess in a temporary folder (``helpers.hostile.cli``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.hostile import (
    BRIEFING_QUESTION,
    assert_ok,
    assert_user_error,
    briefing_corpus,
    build,
    cli,
    cli_env,
)


def to_dev_full(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with its standard output on ``/dev/full``: every write fails, ENOSPC."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "assistant", *map(str, args)], cwd=cwd,
                              env=cli_env(), stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=300)
    proc.stdout = ""  # nothing could be written there
    return proc


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["ask", BRIEFING_QUESTION],
                                     ["batch", "q.txt"], ["batch", "q.txt", "--format", "md"]])
def test_stdout_on_a_full_disk_exits_8(briefing_index: Path, tmp_path: Path,
                                       command: list[str]) -> None:
    (tmp_path / "q.txt").write_text(BRIEFING_QUESTION + "\n")
    proc = to_dev_full(*command, "--index", briefing_index, cwd=tmp_path)
    if "--json" in command:  # the error as a JSON object
        assert proc.returncode == 8, proc.stderr
        assert json.loads(proc.stderr) == {"exit_code": 8, "title": "Output", "error":
                                           "cannot write to standard output: No space left "
                                           "on device"}
        return
    assert_user_error(proc, 8, "cannot write to standard output", "No space left on device")


def test_batch_output_on_a_full_disk_exits_8(briefing_index: Path, tmp_path: Path) -> None:
    (tmp_path / "q.txt").write_text(BRIEFING_QUESTION + "\n")
    proc = cli("batch", "q.txt", "-o", "/dev/full", "--index", briefing_index, cwd=tmp_path)
    assert_user_error(proc, 8, "cannot write to /dev/full", "No space left on device")


_LOCKED_BOOT = """
import errno, os
_stat = os.stat
def _locked(path, *args, **kwargs):  # root reads any folder: deny this one as a user's would
    if not isinstance(path, int) and "locked" in os.fsdecode(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
    return _stat(path, *args, **kwargs)
os.stat = _locked
"""

_EIO_BOOT = """
import builtins, errno, io, os
_open = builtins.open
class _Failing(io.BytesIO):  # a disk that fails after the first line
    def __iter__(self):
        yield self.readline()
        raise OSError(errno.EIO, os.strerror(errno.EIO))
def _open_failing(file, mode="r", *args, **kwargs):
    if str(file).endswith("q.txt") and "b" in mode:
        with _open(file, "rb") as fh:
            return _Failing(fh.read())
    return _open(file, mode, *args, **kwargs)
builtins.open = _open_failing
"""


@pytest.mark.parametrize(("boot", "where", "needle"), [
    (_LOCKED_BOOT, "locked/q.txt", "Permission denied"),
    (_EIO_BOOT, "q.txt", "Input/output error"),
])
def test_an_unreadable_batch_file_exits_8(briefing_index: Path, tmp_path: Path, boot: str,
                                          where: str, needle: str) -> None:
    (tmp_path / "locked").mkdir()
    for name in ("q.txt", "locked/q.txt"):
        (tmp_path / name).write_text(BRIEFING_QUESTION + "\n" + BRIEFING_QUESTION + "\n")
    proc = cli("batch", where, "--index", briefing_index, cwd=tmp_path, boot=boot)
    assert_user_error(proc, 8, f"cannot read {where}", needle)


# ---- settings that would silently do the wrong thing ---------------------------------------


def test_assistant_config_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    proc = cli("info", cwd=tmp_path, env=cli_env(ASSISTANT_CONFIG="setings.toml"))
    assert_user_error(proc, 2, "ASSISTANT_CONFIG", "setings.toml", "does not exist")
    proc = cli("info", cwd=tmp_path, env=cli_env(ASSISTANT_CONFIG=""))
    assert_user_error(proc, 2, "ASSISTANT_CONFIG is set but empty")


def test_an_empty_index_dir_is_an_error_not_the_current_folder(tmp_path: Path) -> None:
    briefing_corpus(tmp_path / "corpus")
    proc = cli("index", cwd=tmp_path, env=cli_env(ASSISTANT_INDEX_DIR=""))
    assert_user_error(proc, 2, "index_dir", "ASSISTANT_INDEX_DIR", "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # nothing built here


@pytest.mark.parametrize(("line", "needle"), [("top_k = true", "top_k: must be a number"),
                                              ("abstain_below = false", "must be a number"),
                                              ("top_k = 2.0", "must be a whole number")])
def test_a_number_setting_refuses_true_and_fractions(tmp_path: Path, line: str,
                                                    needle: str) -> None:
    (tmp_path / "assistant.toml").write_text(line + "\n")
    assert_user_error(cli("info", cwd=tmp_path), 2, needle)


@pytest.mark.parametrize("url", [
    "postgresql://analyst:s3cr%zzet@127.0.0.1:1/briefings",
    "postgresql://analyst@127.0.0.1:1/briefings?password=s3cr%zzet",
    "postgresql://analyst:s3cr%zzet@[::1:1/briefings",
])
def test_a_malformed_server_url_never_prints_its_password(tmp_path: Path, url: str) -> None:
    for command in (["info"], ["ask", BRIEFING_QUESTION], ["index"]):
        proc = cli(*command, "--server", url, cwd=tmp_path)
        line = assert_user_error(proc, 2, "the server URL", "cannot be read")
        assert "s3cr" not in proc.stderr + proc.stdout, line


# ---- display caps --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_huge_heading_is_clipped_on_screen_and_whole_in_json(tmp_path: Path) -> None:
    """A Markdown heading of 60 KB is every citation's title: ``ask`` shows 200 characters
    of it and says how many more there are; ``--json`` keeps all of it."""
    heading = "Herd " + " ".join(f"pasture{i}" for i in range(6000))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "herd.md").write_text(f"# {heading}\n\nCattle graze in the northern meadow for "
                                    "nine hours a day.\n\nThe meadow covers forty hectares.\n")
    build(corpus, tmp_path / "index")
    question = "How long do cattle graze?"
    proc = cli("ask", "--index", "index", question, cwd=tmp_path)
    assert_ok(proc)
    assert "nine hours a day" in proc.stdout
    assert len(proc.stdout) < 5_000, len(proc.stdout)
    assert f"… [{len(heading) - 200:,} more characters]" in proc.stdout
    proc = cli("info", "--index", "index", cwd=tmp_path)
    assert len(proc.stdout) < 2_000, len(proc.stdout)
    proc = cli("ask", "--json", "--index", "index", question, cwd=tmp_path)
    assert json.loads(proc.stdout)["citations"][0]["title"] == heading
