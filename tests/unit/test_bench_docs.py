"""The benchmark command (scripts/bench.py): one command with a subcommand per benchmark, each
run kept as docs/bench/<benchmark>.json, and docs/benchmarks.md made from those files alone,
so the page cannot drift from the figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402
import benchlib as bl  # noqa: E402

SUBCOMMANDS = {"ab", "answer", "index", "scale", "quality", "server", "tui", "web", "docs"}


def test_the_page_is_what_the_json_gives() -> None:
    """Run `scripts/bench.py docs` after a benchmark (or after editing docs/bench/*.json)."""
    assert (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8") == \
        bl.benchmarks_page(ROOT / "docs" / "bench")


def test_one_command_with_a_subcommand_per_benchmark() -> None:
    result = CliRunner().invoke(bench.cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == SUBCOMMANDS
    for name in SUBCOMMANDS:
        assert CliRunner().invoke(bench.cli, [name, "--help"]).exit_code == 0


def test_a_run_is_saved_as_json_and_shown_on_the_page(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    table = bl.Table("figure", "ours", "txtai", "ratio", title="answers on the briefing")
    table.add("warm latency p50 ms", 12.5, 25.0, bl.times_better(12.5, 25.0, False))
    table.add("questions/s", 80.0, float("nan"), bl.times_better(80.0, float("nan")))
    out = bl.save_results("answer", {"p50_ms": 12.5, "txtai": float("nan")}, [table],
                          tmp_path / "answer.json")
    printed = capsys.readouterr().out
    assert "warm latency p50 ms  12.5  25" in printed and "2.00x" in printed
    saved = json.loads(out.read_text(encoding="utf-8"))  # strict JSON: NaN is null
    assert saved["benchmark"] == "answer" and saved["results"]["txtai"] is None
    page = bl.benchmarks_page(tmp_path)
    assert "## answer" in page
    assert "| warm latency p50 ms | 12.5 | 25 | 2.00x |" in page
    assert "| questions/s | 80 | - | - |" in page


def test_a_file_that_is_not_a_run_is_left_off_the_page(tmp_path: Path) -> None:
    """The A/B of commits once wrote its bare figures there, and `bench.py docs` stopped on a
    KeyError; a run names its benchmark, command, date and tables."""
    (tmp_path / "ab.json").write_text(json.dumps({"commits": {}, "ratios": {}}))
    bl.save_results("index", {}, [bl.Table("figure", "ours")], tmp_path / "index.json")
    page = bl.benchmarks_page(tmp_path)
    assert "## index" in page and "## ab" not in page


def test_docs_check_fails_when_the_page_drifts(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "benchmarks.md"
    monkeypatch.setattr(bl, "BENCH_DIR", tmp_path / "bench")
    monkeypatch.setattr(bl, "BENCHMARKS_PAGE", page)
    assert CliRunner().invoke(bench.cli, ["docs"]).exit_code == 0
    assert CliRunner().invoke(bench.cli, ["docs", "--check"]).exit_code == 0
    page.write_text(page.read_text(encoding="utf-8") + "a figure typed in by hand\n",
                    encoding="utf-8")
    drifted = CliRunner().invoke(bench.cli, ["docs", "--check"])
    assert drifted.exit_code == 1 and "scripts/bench.py docs" in drifted.output


def test_a_bad_option_is_a_one_line_error() -> None:
    result = CliRunner().invoke(bench.cli, ["scale", "--reuse-index"])
    assert result.exit_code == 2
    assert "--reuse-index needs a --workdir" in result.output
    assert "Traceback" not in result.output


def test_the_peers_half_imports_without_the_assistant_engine() -> None:
    """scripts/bench_peers_quality.py and scripts/benchlib.py run in .bench-venv, where the
    assistant's dependencies are not installed: only the measurement kit comes along."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); "
            "import bench_peers_quality, benchlib; "
            "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before} "
            "- set(sys.stdlib_module_names))))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert set(out) == {"assistant", "numpy", "bench_peers_quality", "benchlib"}, out
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import bench_peers_quality; print(sorted(m for m in sys.modules "
         "if m.startswith('assistant')))", str(ROOT / "scripts")],
        capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['assistant', 'assistant.metrics']"
