"""Placeholder until the chat lands: prints what ``assistant info`` prints."""

from __future__ import annotations

from assistant.settings import Settings


def run_app(settings: Settings) -> None:
    from assistant.cli import cli

    cli.main(args=["info", "--index", str(settings.index_dir), "--corpus",
                   str(settings.corpus_dir)], prog_name="assistant", standalone_mode=False)
