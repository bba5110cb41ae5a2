"""scripts/setup as a newcomer runs it (issue 14, item 4): it says that it is installing, and
keeps setuptools' editable-install warning out of the terminal; a second run is silent.

pip is replaced by a stand-in ``.venv/bin/python`` that records how it was called, so the
test needs no network and no minute of installing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fake_repo(tmp_path: Path, pip_body: str) -> Path:
    """A copy of scripts/setup whose ``.venv/bin/python`` is a shell script: ``pip_body``."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    fake = repo / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n" + pip_body)
    fake.chmod(0o755)
    return repo


def test_setup_says_it_installs_and_silences_the_editable_warning(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    repo = fake_repo(tmp_path, f'echo "$PYTHONWARNINGS|$*" >> "{log}"\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    first = subprocess.run([str(repo / "scripts" / "setup")], capture_output=True, text=True,
                           env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stderr.startswith("Installing the dependencies into .venv (first run only")
    assert "Installed in" in first.stderr
    calls = log.read_text().splitlines()
    install = [c for c in calls if "-e .[dev]" in c]
    assert install, calls
    warnings, _ = install[0].split("|", 1)
    assert "ignore:Editable installation" in warnings.split(",")
    second = subprocess.run([str(repo / "scripts" / "setup")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert second.returncode == 0 and second.stderr == ""
    assert len(log.read_text().splitlines()) == len(calls)  # nothing installed again


def test_pip_chatter_goes_to_the_log_and_a_failure_shows_its_end(tmp_path: Path) -> None:
    chatter = ("echo \"WARNING: Location 'file:///opt/x/simple/torch/' is ignored\" >&2\n"
               "echo 'Collecting torch==2.13.0'\n")
    quiet = fake_repo(tmp_path / "ok", chatter)
    ok = subprocess.run([str(quiet / "scripts" / "setup")], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "WARNING" not in ok.stderr and "Collecting" not in ok.stderr + ok.stdout
    assert "Collecting torch==2.13.0" in (quiet / ".venv" / "install.log").read_text()

    failing = fake_repo(tmp_path / "bad", chatter + "case \"$*\" in *-e*) "
                        "echo 'ERROR: No matching distribution found for torch==2.13.0' >&2; "
                        "exit 1;; esac\n")
    bad = subprocess.run([str(failing / "scripts" / "setup")], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1
    assert "failed" in bad.stderr and "No matching distribution found" in bad.stderr
    assert "WARNING: Location" not in bad.stderr  # the machine's noise is left in the log
    assert not list((failing / ".venv").glob(".installed-*"))  # the next run tries again
