"""The index owns storage: no module outside ``assistant/index/`` imports ``sqlite3``, in the
package or in the scripts, wherever the import stands (module level, inside a function,
under ``TYPE_CHECKING``, or by name through ``importlib``). The build writes through
``assistant.index.sqlite.MetaWriter``; everything else reads through the index's readers.

Read from the source with ``ast``, as ``test_import_graph.py`` reads the import graph: the
tests themselves are left out (they open the database to damage it or to look inside).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWNER = Path("assistant") / "index"
FORBIDDEN = {"sqlite3", "_sqlite3"}


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level:
        return [node.module or ""]
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                 or (isinstance(node.func, ast.Attribute)
                     and node.func.attr == "import_module"))):
        return [node.args[0].value]
    return []


def sqlite_imports(root: Path = ROOT) -> list[str]:
    """``path:line`` of every import of sqlite3 outside ``assistant/index/``."""
    found = []
    for folder in ("assistant", "scripts"):
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            if rel.is_relative_to(OWNER):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if any(name.split(".")[0] in FORBIDDEN for name in _imported(node)):
                    found.append(f"{rel.as_posix()}:{getattr(node, 'lineno', 0)}")
    return found


def test_only_the_index_imports_sqlite3() -> None:
    assert (ROOT / OWNER / "sqlite").is_dir()  # the owner is where this test looks for it
    assert sqlite_imports() == [], (
        "SQL belongs to assistant/index/ (the sqlite package's reader and writer): call "
        "MetaWriter from the build, MetaReader (OpenIndex.local) from scripts")


def test_an_import_anywhere_else_is_found(tmp_path: Path) -> None:
    (tmp_path / "assistant" / "index" / "sqlite").mkdir(parents=True)
    (tmp_path / "assistant" / "build").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "assistant" / "index" / "sqlite" / "reader.py").write_text("import sqlite3\n")
    (tmp_path / "assistant" / "build" / "local.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlite3 import Row\n"
        "def f():\n    import sqlite3.dbapi2\n")
    (tmp_path / "scripts" / "bench.py").write_text(
        "import importlib\nconn = importlib.import_module('sqlite3')\n"
        "from assistant.index import sqlite\n")
    assert sqlite_imports(tmp_path) == ["assistant/build/local.py:3",
                                        "assistant/build/local.py:5", "scripts/bench.py:2"]
