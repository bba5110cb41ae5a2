"""Copying where the terminal may not pass OSC 52: the system clipboard tool, else a file.

Textual copies through the terminal (OSC 52), which many terminals (and tmux or ssh
without configuration) silently ignore. So the text also goes to the first clipboard
tool found on the PATH (``wl-copy``, ``xclip``, ``xsel``, ``pbcopy``) and, when none
takes it, into ``clipboard.txt`` in the export folder, whose path the chat names. The
tool lookup and the runner are parameters, so tests can inject them. Never imports
``textual``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

TOOLS: list[list[str]] = [
    ["wl-copy"],
    ["xclip", "-selection", "clipboard"],
    ["xsel", "--clipboard", "--input"],
    ["pbcopy"],
]
"""Clipboard commands that read the text on standard input, in the order tried."""
CLIPBOARD_FILE = "clipboard.txt"
TOOL_SECONDS = 3.0
"""How long a clipboard tool may take (xclip and wl-copy fork to serve the selection and
return at once; a hung one must not freeze the chat)."""

Which = Callable[[str], str | None]


def copy_with_tool(text: str, which: Which = shutil.which) -> str | None:
    """Give ``text`` to the first clipboard tool that is installed and accepts it; the
    tool's name, or None when none did (none installed, or no display to copy to)."""
    for command in TOOLS:
        exe = which(command[0])
        if exe is None:
            continue
        try:
            done = subprocess.run([exe, *command[1:]], input=text.encode("utf-8"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=TOOL_SECONDS, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return command[0]
    return None


def copy_to_file(text: str, folder: Path) -> Path:
    """Write ``text`` to ``folder/clipboard.txt`` (replaced at each copy); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLIPBOARD_FILE
    path.write_text(text, encoding="utf-8")
    return path
