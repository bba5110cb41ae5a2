"""The CLI reference, docs/cli.md, is what the commands' ``--help`` prints: an option added or
reworded without regenerating the page (``python scripts/make_docs.py``) fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import make_docs

from assistant.cli import cli


def _page() -> str:
    return make_docs.CLI_DOCS.read_text(encoding="utf-8")


def test_the_cli_reference_is_what_help_prints() -> None:
    assert _page() == make_docs.cli_reference(), (
        "docs/cli.md differs from --help: run python scripts/make_docs.py")


def test_the_cli_reference_has_every_command_and_option() -> None:
    page = _page()
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        heading = f"## `assistant {name}`"
        assert heading in page, name
        section = page.split(heading, 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert any(opt in section for opt in param.opts), (name, param.opts)


def test_the_check_reports_a_page_that_drifted(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    stale = tmp_path / "cli.md"
    stale.write_text(_page().replace("--top-k", "--top-n"), encoding="utf-8")
    monkeypatch.setattr(make_docs, "CLI_DOCS", stale)
    assert make_docs.main(["--check"]) == 1
    assert make_docs.main([]) == 0
    assert make_docs.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == make_docs.cli_reference()
