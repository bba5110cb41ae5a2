"""Saved conversations: every answered turn kept on disk, so a chat can be listed and resumed
after a restart (Ctrl+L), follow-ups and all.

One JSON file per conversation (``SavedConversation``, the format a later version must
read) in a ``conversations`` folder next to the question history
(``$XDG_DATA_HOME/briefing-assistant/conversations`` by default). Each save writes a
temporary file and renames it over the old one, so a crash leaves the previous version
whole. A file that cannot be read as a conversation is never deleted: it is renamed
``*.json.corrupt`` (set aside, for the user to inspect) and reported in one line. This
module never imports ``textual``.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from assistant.chat.passage import Passage
from assistant.models import Answer
from assistant.qa.conversation import Conversation

FORMAT: Literal[1] = 1


class SavedTurn(BaseModel):
    """One question answered: what its card shows again when the conversation is resumed."""

    answer: Answer
    passage: Passage | None = None
    """The passage the quote sits in (None for an abstention)."""
    places: dict[int, str] = Field(default_factory=dict)
    """Each citation's place in its document, by rank (``passage.place_of``)."""


class SavedConversation(BaseModel):
    """A conversation as written to ``<id>.json``."""

    format: Literal[1] = FORMAT
    id: str
    created: datetime
    updated: datetime
    turns: list[SavedTurn] = Field(default_factory=list)
    context: Conversation
    """What follow-up questions are read against (``assistant.qa.conversation``)."""
    name: str | None = None
    """The name the user gave it (Ctrl+L, F2), if any."""

    @property
    def title(self) -> str:
        """The name given, else the first question, which is how people remember a
        conversation."""
        if self.name:
            return self.name
        return self.turns[0].answer.question if self.turns else "(no questions)"


class ConversationStore:
    """The folder of saved conversations. Every method reports trouble through ``problem``
    (one line) instead of raising: a conversation not kept never stops the chat."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.problem: str | None = None

    def path_of(self, conversation_id: str) -> Path | None:
        if self.folder is None or not conversation_id.isalnum():
            return None  # ids are hex: anything else must not become a path
        return self.folder / f"{conversation_id}.json"

    def save(self, saved: SavedConversation) -> bool:
        """Write ``saved`` atomically (a temporary file renamed over the old one)."""
        path = self.path_of(saved.id)
        if path is None:
            return False
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(saved.model_dump_json(indent=1))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            self.problem = (f"cannot save the conversation to {path}: {exc.strerror or exc}"
                            " (it is kept until the chat closes)")
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return False
        return True

    def rename(self, conversation_id: str, name: str | None) -> SavedConversation | None:
        """Give a saved conversation a name (None: back to its first question); the
        conversation as saved then, or None (``problem`` says why, if anything went
        wrong)."""
        saved = self.load(conversation_id)
        if saved is None:
            return None
        renamed = saved.model_copy(update={"name": name})
        return renamed if self.save(renamed) else None

    def delete(self, conversation_id: str) -> bool:
        """Remove a saved conversation's file."""
        path = self.path_of(conversation_id)
        if path is None:
            return False
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            self.problem = f"cannot delete {path}: {exc.strerror or exc}"
            return False
        return True

    def load(self, conversation_id: str) -> SavedConversation | None:
        path = self.path_of(conversation_id)
        return self._read(path) if path is not None else None

    def list(self) -> list[SavedConversation]:
        """Every saved conversation, the most recently continued first. A damaged file is
        set aside (renamed ``.corrupt``) and said in ``problem``."""
        if self.folder is None or not self.folder.is_dir():
            return []
        out: list[SavedConversation] = []
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError as exc:
            self.problem = f"cannot list {self.folder}: {exc.strerror or exc}"
            return []
        for path in paths:
            saved = self._read(path)
            if saved is not None:
                out.append(saved)
        out.sort(key=lambda s: s.updated, reverse=True)
        return out

    def _read(self, path: Path) -> SavedConversation | None:
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            if isinstance(exc, OSError):
                self.problem = f"cannot read {path}: {exc.strerror or exc}"
                return None
            raw = None
        try:
            if raw is None:
                raise ValueError("not UTF-8")
            saved = SavedConversation.model_validate_json(raw)
            if saved.id != path.stem:
                raise ValueError("its id is not its file name")
            return saved
        except (ValueError, ValidationError):
            self._set_aside(path)
            return None

    def _set_aside(self, path: Path) -> None:
        target = path.with_name(path.name + ".corrupt")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.corrupt-{n}")
        try:
            path.rename(target)
        except OSError as exc:
            self.problem = (f"{path} is not a readable saved conversation and cannot be set "
                            f"aside ({exc.strerror or exc}); it is skipped")
            return
        self.problem = (f"{path.name} is not a readable saved conversation; set aside as "
                        f"{target}")
