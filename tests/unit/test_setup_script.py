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


def test_setup_says_it_installs_and_silences_the_editable_warning(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    fake = repo / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    log = tmp_path / "calls.log"
    fake.write_text(f'#!/bin/sh\necho "$PYTHONWARNINGS|$*" >> "{log}"\n')
    fake.chmod(0o755)
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
