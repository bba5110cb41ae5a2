"""Import contracts: the core never pulls in the TUI or torch, and the CLI starts light.

Each check imports in a fresh interpreter, so what this test process already imported
(pytest plugins, other tests) cannot hide a violation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def imported_after(statement: str, watch: list[str]) -> list[str]:
    """Which of ``watch`` are in sys.modules after running ``statement`` in a new interpreter."""
    code = (f"import json, sys\n{statement}\n"
            f"print(json.dumps([m for m in {watch!r} if m in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    found: list[str] = json.loads(r.stdout)
    return found


def test_core_and_cli_never_import_the_tui_or_torch() -> None:
    found = imported_after("import assistant.qa.pipeline, assistant.build, assistant.cli",
                           ["textual", "torch", "sentence_transformers", "transformers"])
    assert found == []


@pytest.mark.parametrize("module", ["assistant.cli", "assistant.errors", "assistant.settings"])
def test_the_cli_module_starts_without_heavy_imports(module: str) -> None:
    """`assistant --help` and `assistant info` start fast: heavy libraries load in commands."""
    found = imported_after(f"import {module}",
                           ["textual", "torch", "onnxruntime", "faiss", "tokenizers",
                            "sentencex", "selectolax", "pypdf", "numpy"])
    assert found == []


def test_help_lists_the_index_commands() -> None:
    r = subprocess.run([sys.executable, "-m", "assistant", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0
    for command in ("index", "info", "ask", "batch", "eval", "chat"):
        assert f"  {command}" in r.stdout
    r = subprocess.run([sys.executable, "-m", "assistant", "index", "--help"],
                       capture_output=True, text=True, timeout=120)
    for option in ("--corpus", "--index", "--full", "--json"):
        assert option in r.stdout


def test_a_local_index_never_loads_the_postgresql_driver() -> None:
    """psycopg is imported only when a server is configured (``assistant.index.postgres``)."""
    found = imported_after("import assistant.session, assistant.build, assistant.cli",
                           ["psycopg", "assistant.index.postgres"])
    assert found == []
