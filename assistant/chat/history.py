"""The question history of the chat's input: up/down recall, kept across runs, clearable.

Stored as JSON lines (one JSON string per question, so a question with a newline stays
one entry) in ``ASSISTANT_HISTORY_FILE``, or ``$XDG_DATA_HOME/briefing-assistant/history``
(``~/.local/share/...`` by default). A history that cannot be read or written never
stops the chat: it then lives in memory only and ``problem`` says why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HISTORY_LIMIT = 500


def user_data_dir() -> Path:
    """The chat's folder in the user's data folder (XDG: ``~/.local/share/briefing-assistant``):
    the history, preferences, saved conversations and exports."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "briefing-assistant"


def default_history_path() -> Path:
    env = os.environ.get("ASSISTANT_HISTORY_FILE")
    if env:
        return Path(env)
    return user_data_dir() / "history"


class InputHistory:
    """Past questions, oldest first, with a cursor for up/down browsing."""

    def __init__(self, path: Path | None, limit: int = HISTORY_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.entries: list[str] = []
        self.problem: str | None = None
        self._cursor: int | None = None
        self._draft = ""
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            self.problem = f"cannot read the history {self.path}: {exc.strerror or exc}"
            return
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a damaged line costs that line only
            if isinstance(entry, str) and entry.strip():
                self.entries.append(entry)
        del self.entries[:-self.limit]

    def add(self, question: str) -> None:
        """Remember a question (a repeat of the last one is not stored twice)."""
        self.reset()
        if not question.strip() or (self.entries and self.entries[-1] == question):
            return
        self.entries.append(question)
        trimmed = len(self.entries) > self.limit
        del self.entries[:-self.limit]
        if trimmed:
            self._rewrite()
        else:
            self._write("a", [question])

    def clear(self) -> None:
        self.entries.clear()
        self.reset()
        self._rewrite()

    def previous(self, draft: str) -> str | None:
        """The entry before the current one (the draft being typed is kept for ``next``)."""
        if not self.entries:
            return None
        if self._cursor is None:
            self._draft = draft
            self._cursor = len(self.entries)
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.entries[self._cursor]

    def next(self) -> str | None:
        """The entry after the current one; past the newest, the draft again."""
        if self._cursor is None:
            return None
        self._cursor += 1
        if self._cursor >= len(self.entries):
            self._cursor = None
            return self._draft
        return self.entries[self._cursor]

    def reset(self) -> None:
        self._cursor = None
        self._draft = ""

    def _rewrite(self) -> None:
        self._write("w", self.entries)

    def _write(self, mode: str, entries: list[str]) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, mode, encoding="utf-8") as fh:
                fh.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        except OSError as exc:
            self.problem = f"cannot write the history {self.path}: {exc.strerror or exc}"
