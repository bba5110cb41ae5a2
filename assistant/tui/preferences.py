"""What the chat remembers between runs besides the questions: the theme, the side panel.

A small JSON file next to the history (``preferences.json``); unreadable or unwritable,
it is ignored and the defaults apply.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError


class Preferences(BaseModel):
    theme: str | None = None
    side_panel: bool = True

    @classmethod
    def load(cls, path: Path) -> Preferences:
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError):
            return cls()

    def save(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.model_dump()), encoding="utf-8")
        except OSError:
            pass  # a preference not kept is not worth interrupting the user
