"""Opening a source in the user's own editor or pager: the command line to run.

``$EDITOR`` first, then ``$PAGER``, then ``less`` if installed. Editors and pagers that
take ``+N`` (vi, vim, nvim, nano, emacs, micro, hx, kak, less, most) open at the quote's
line. The line is found in the file itself (the extracted text of an HTML or Markdown
file has other line numbers than the file), else counted in the extracted text. The
chat runs the command with ``App.suspend()``. Never imports ``textual``.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

TAKES_LINE = frozenset({"vi", "vim", "nvim", "gvim", "view", "nano", "emacs", "emacsclient",
                        "micro", "hx", "helix", "kak", "less", "most", "mg", "joe", "ne"})
"""Programs that accept ``+N`` before the file to start at line N."""


def outside_command(path: Path, line: int | None, env: Mapping[str, str],
                    which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The command that shows ``path`` (at ``line``): ``$EDITOR``, else ``$PAGER``, else
    ``less``; None when there is none."""
    for name in ("EDITOR", "PAGER"):
        value = env.get(name, "").strip()
        if not value:
            continue
        try:
            argv = shlex.split(value)
        except ValueError:
            continue  # an unbalanced quote: try the next one
        if argv:
            return _with_file(argv, path, line)
    less = which("less")
    return _with_file([less], path, line) if less else None


def _with_file(argv: list[str], path: Path, line: int | None) -> list[str]:
    program = Path(argv[0]).name
    if line is not None and program in TAKES_LINE:
        return [*argv, f"+{line}", str(path)]
    return [*argv, str(path)]


def line_in_file(path: Path, text: str, offset: int, quote: str = "") -> int:
    """The line of ``path`` where the quote (at ``offset`` of the extracted ``text``)
    starts: where the quote's first words occur in the file, else the line counted in
    the extracted text."""
    counted = text.count("\n", 0, max(0, min(offset, len(text)))) + 1
    probe = " ".join(quote.split()[:6])
    if not probe:
        return counted
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return counted
    lines = _lines_holding(raw, probe)
    if not lines:  # the words may wrap in the file: its first three words
        lines = _lines_holding(raw, " ".join(quote.split()[:3]))
    # the quote may occur more than once: the occurrence nearest where the text has it
    return min(lines, key=lambda n: abs(n - counted)) if lines else counted


def _lines_holding(raw: str, probe: str, limit: int = 1000) -> list[int]:
    out: list[int] = []
    at = raw.find(probe) if probe else -1
    while at != -1 and len(out) < limit:
        out.append(raw.count("\n", 0, at) + 1)
        at = raw.find(probe, at + 1)
    return out
