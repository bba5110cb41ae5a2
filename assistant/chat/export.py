"""Exporting a conversation: Markdown into the export folder (Ctrl+S), or Markdown or JSON
to a path the user chose (Ctrl+E)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.chat.history import user_data_dir

if TYPE_CHECKING:
    from assistant.models import Answer


def export_dir() -> Path:
    """Where exports and ``clipboard.txt`` go, as an absolute path (the notices show it):
    ``ASSISTANT_EXPORT_DIR``, else ``exports/`` in the user's data folder, never the folder
    the chat happened to be started from (a git checkout)."""
    configured = os.environ.get("ASSISTANT_EXPORT_DIR")
    folder = Path(configured).expanduser() if configured else user_data_dir() / "exports"
    return folder.absolute()


def export_conversation(answers: list[Answer], directory: Path) -> Path:
    """Write the conversation as Markdown to a new file in ``directory``; its path."""
    from assistant.render import conversation_markdown

    stamp = datetime.now()
    body = conversation_markdown(answers, f"Conversation of {stamp:%Y-%m-%d %H:%M}")
    directory.mkdir(parents=True, exist_ok=True)
    base = f"conversation-{stamp:%Y%m%d-%H%M%S}"
    path = directory / f"{base}.md"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{base}-{n}.md"
    with open(path, "x", encoding="utf-8") as fh:
        fh.write(body)
    return path


def export_to(answers: list[Answer], path: Path) -> Path:
    """Write the conversation to ``path``: JSON (``{"title", "answers": [Answer…]}``) for a
    ``.json`` path, else Markdown; its folder is created. Overwrites: the user chose it."""
    import json

    from assistant.render import conversation_markdown

    title = f"Conversation of {datetime.now():%Y-%m-%d %H:%M}"
    if path.suffix.lower() == ".json":
        from assistant.render import json_safe

        body = json_safe(json.dumps({"title": title, "answers": [a.model_dump(mode="json")
                                                                 for a in answers]},
                                    ensure_ascii=False, indent=2)) + "\n"
    else:
        body = conversation_markdown(answers, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path
