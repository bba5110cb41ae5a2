"""The benchmarks, one command with a subcommand each.

    scripts/setup-bench                          # once: the peers (txtai, ...) in .bench-venv
    .venv/bin/python scripts/bench.py --help     # the benchmarks and what each measures
    .venv/bin/python scripts/bench.py answer     # then: index, scale, quality, server, tui, web
    .venv/bin/python scripts/bench.py docs       # docs/benchmarks.md from docs/bench/*.json

Each benchmark prints its figures with their ratios against the peers measured in the same
run (where it has peers) and writes docs/bench/<benchmark>.json; ``docs`` makes
docs/benchmarks.md from those files alone (tests/unit/test_bench_docs.py fails when the page
and the JSON disagree). The benchmarks live in scripts/bench_<name>.py and share
scripts/benchlib.py; every figure is computed by the measurement kit, assistant/metrics.py.
click, as for the assistant's own CLI: one option parser, --help for every subcommand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                   help="Write the results here instead of docs/bench/<benchmark>.json.")
WORKDIR = click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                       default=None, help="Keep the corpus and indexes here (default: a "
                                          "temporary folder, removed afterwards).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Benchmarks of the assistant against its peers, each writing docs/bench/<name>.json."""


@cli.command()
@click.option("--corpus", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="The corpus to answer on (default: the bundled corpus/).")
@click.option("--probes", type=click.IntRange(1), default=3, show_default=True,
              help="Fresh processes measuring warm latency.")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True,
              help="Rounds over the questions per probe.")
@click.option("--cold-runs", type=click.IntRange(1), default=5, show_default=True)
@click.option("--batch-lines", type=click.IntRange(1), default=300, show_default=True,
              help="Lines of the file `assistant batch` answers.")
@WORKDIR
@OUT
def answer(corpus: Path | None, probes: int, rounds: int, cold_runs: int, batch_lines: int,
           workdir: Path | None, out: Path | None) -> None:
    """Answer speed on the bundled briefing (warm latency, questions/s, cold start) vs txtai."""
    import bench_answer

    bench_answer.main(bench_answer.Options(
        corpus=corpus or bench_answer.CORPUS, probes=probes, rounds=rounds, cold_runs=cold_runs,
        batch_lines=batch_lines, workdir=workdir, out=out))


@cli.command()
@click.option("--chunks", type=click.IntRange(2000), default=2200, show_default=True,
              help="Corpus size in chunks.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
              help="Alternated build pairs (ours, then txtai's).")
@click.option("--mode-texts", type=click.IntRange(0), default=384, show_default=True,
              help="Texts for the embedding runtimes' comparison (0 skips it).")
@click.option("--mode-repeats", type=click.IntRange(1), default=2, show_default=True)
@WORKDIR
@OUT
def index(chunks: int, repeats: int, mode_texts: int, mode_repeats: int,
          workdir: Path | None, out: Path | None) -> None:
    """Build throughput of `assistant index` vs txtai, on the same chunk texts and model."""
    import bench_index

    bench_index.main(bench_index.Options(chunks=chunks, repeats=repeats, mode_texts=mode_texts,
                                         mode_repeats=mode_repeats, workdir=workdir, out=out))


@cli.command()
@click.option("--size", type=click.Choice(["1000", "10000", "100000"]), default="1000",
              show_default=True, help="Corpus size in chunks (100000 takes hours: three "
                                      "100,000-chunk builds).")
@click.option("--peer-limit", type=click.IntRange(1), default=None,
              help="Chunk texts the peers embed (default: all up to 10,000).")
@click.option("--documents", type=click.IntRange(1), default=None,
              help="Override the document count (to try the benchmark out).")
@click.option("--skip-peers", is_flag=True)
@click.option("--skip-resume", is_flag=True)
@click.option("--server", is_flag=True, help="Also the PostgreSQL index (a pgserver started in "
                                             "the work folder) beside FAISS.")
@click.option("--server-seeded", is_flag=True,
              help="The server's build starts from a copy of the FAISS index (publish only).")
@click.option("--reuse-index", is_flag=True,
              help="Reuse the corpus and index an earlier run left in --workdir (answering and "
                   "the server only).")
@click.option("--probes", type=click.IntRange(1), default=3, show_default=True,
              help="Fresh processes for latency and opening.")
@click.option("--cold-runs", type=click.IntRange(1), default=5, show_default=True)
@WORKDIR
@OUT
def scale(size: str, peer_limit: int | None, documents: int | None, skip_peers: bool,
          skip_resume: bool, server: bool, server_seeded: bool, reuse_index: bool, probes: int,
          cold_runs: int, workdir: Path | None, out: Path | None) -> None:
    """The index at 1,000 to 100,000 chunks vs txtai and a naive baseline (scale-SIZE.json)."""
    import bench_scale

    opts = bench_scale.Options(size=int(size), peer_limit=peer_limit, documents=documents,
                               skip_peers=skip_peers, skip_resume=skip_resume, server=server,
                               server_seeded=server_seeded, reuse_index=reuse_index,
                               probes=probes, cold_runs=cold_runs, workdir=workdir, out=out)
    if problem := bench_scale.problem(opts):
        raise click.UsageError(problem)
    bench_scale.main(opts)


@cli.command()
@click.option("--sets", "sets", multiple=True, metavar="CORPUS",
              help="A corpus to measure (repeatable; default: every corpus scripts/fit.py fits: "
                   "qa-dev, briefing, pydoc, briefings-dev, energy, finance, health).")
@click.option("--no-peers", is_flag=True, help="Only the assistant's held-out figures.")
@OUT
def quality(sets: tuple[str, ...], no_peers: bool, out: Path | None) -> None:
    """Held-out answer quality per corpus and kind, beside txtai hybrid, MiniLM dense and BM25."""
    from qualitylib import gold_sets

    known = [g.name for g in gold_sets()]
    if unknown := [s for s in sets if s not in known]:
        raise click.UsageError(f"no corpus named {', '.join(unknown)} (known: "
                               f"{', '.join(known)}; the briefing folders need ../shared)")
    import bench_quality

    bench_quality.main(list(sets) or None, with_peers=not no_peers, out=out)


@cli.command()
@click.option("--size", type=click.IntRange(100), default=1000, show_default=True,
              help="Corpus size in chunks (approximate).")
@click.option("--questions", type=click.IntRange(1), default=60, show_default=True)
@OUT
def server(size: int, questions: int, out: Path | None) -> None:
    """The PostgreSQL index beside the local FAISS one (docs/bench/server-SIZE.json)."""
    import bench_server

    bench_server.main(size, questions, out)


@cli.command()
@click.option("--repeats", type=click.IntRange(1), default=7, show_default=True)
@OUT
def tui(repeats: int, out: Path | None) -> None:
    """The chat's first frame, from process start, warm (no peer)."""
    import bench_tui

    bench_tui.main(repeats, out)


@cli.command()
@OUT
def web(out: Path | None) -> None:
    """Main-content extraction on the saved web pages, vs the other extractors installed."""
    import bench_web

    bench_web.main(out)


@cli.command()
@click.argument("commits", nargs=-1)
@click.option("--pairs", type=click.IntRange(1), default=5, show_default=True,
              help="Alternating passes over all commits.")
@click.option("--rounds", type=click.IntRange(1), default=8, show_default=True,
              help="Answer rounds per probe process.")
@click.option("--documents", type=click.IntRange(1), default=60, show_default=True,
              help="Generated documents built by `index --full`.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("/tmp/bench-ab"), show_default=True,
              help="The commits' worktrees and venvs, kept between runs.")
@OUT
def ab(commits: tuple[str, ...], pairs: int, rounds: int, documents: int, workdir: Path,
       out: Path | None) -> None:
    """What a change costs: answering and building of two or more commits, alternating in
    one run (default: before the security work, right after it, and HEAD)."""
    import bench_ab

    chosen = list(commits) or bench_ab.DEFAULT_COMMITS
    if len(chosen) < 2:
        raise click.UsageError("name at least two commits")
    bench_ab.main(bench_ab.Options(commits=chosen, pairs=pairs, rounds=rounds,
                                   documents=documents, workdir=workdir, out=out))


@cli.command()
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when docs/benchmarks.md differs from the JSON.")
def docs(check: bool) -> None:
    """Write docs/benchmarks.md from the last run of each benchmark (docs/bench/*.json)."""
    import benchlib as bl

    page = bl.benchmarks_page(bl.BENCH_DIR)
    current = (bl.BENCHMARKS_PAGE.read_text(encoding="utf-8")
               if bl.BENCHMARKS_PAGE.is_file() else None)
    if check:
        if current != page:
            raise click.ClickException(f"{bl.BENCHMARKS_PAGE} is not what docs/bench/*.json "
                                       "gives; run scripts/bench.py docs")
        return
    bl.BENCHMARKS_PAGE.write_text(page, encoding="utf-8")
    click.echo(f"wrote {bl.BENCHMARKS_PAGE}")


if __name__ == "__main__":
    cli()
