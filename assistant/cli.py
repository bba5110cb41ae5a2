"""The command line: ``assistant`` (the chat), ``index``, ``info``, ``ask``, ``batch``, ``eval``.

A thin face over the core: it parses flags into ``Settings``, calls one core function,
and prints. Results go to stdout (``_out``); progress, warnings and errors to stderr
(``_err``), both through ``assistant.render``'s sanitiser, never raw. An
``AssistantError`` becomes one line ``error: ...`` and its exit code — never a
traceback. Heavy modules are imported inside the commands that need them, so
``assistant --help`` and ``assistant info`` start in a fraction of a second.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from assistant.errors import AssistantError, InputError, OutputError, SettingsError

if TYPE_CHECKING:
    from assistant.session import Session
    from assistant.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """Exit codes: 0 ok; 1 unexpected; 2 bad settings; 3 corpus problem; 4 index
missing/damaged/incompatible; 5 index busy (another build); 6 cannot write the index;
7 model cannot load; 8 bad question or input file (batch: some lines failed); 130 interrupted."""


def _settings(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from assistant.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(f"setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    except ValueError as exc:  # e.g. a malformed assistant.toml
        raise SettingsError(f"cannot read the settings: {exc}") from exc


def _location_options(f: F) -> F:
    f = click.option("--index", "index_dir", type=click.Path(path_type=Path),
                     help="Index folder (default: ./index or ASSISTANT_INDEX_DIR).")(f)
    f = click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path),
                     help="Corpus folder (default: ./corpus or ASSISTANT_CORPUS_DIR).")(f)
    return f


def _server_option(f: F) -> F:
    return click.option("--server", "server", metavar="URL", default=None,
                        help="A PostgreSQL server holding the index (postgresql://user@host/db;"
                             " default: ASSISTANT_SERVER); no local index folder is used.")(f)


def _only_option(f: F) -> F:
    return click.option("--only", "only", metavar="GLOB", multiple=True,
                        help="Answer from the documents whose name (as `info --documents` "
                             "lists it) matches GLOB, or that lie in the folder GLOB names; "
                             "repeatable.")(f)


def _out(text: str, json: bool = False) -> None:
    """Results on stdout, made safe to show (``assistant.render``: ``json_safe`` for JSON,
    else ``printable``). A write that fails (a full disk, ``/dev/full``) is an
    ``OutputError`` (exit 8), not a bug; a closed pipe stays a quiet end."""
    from assistant.render import json_safe, printable

    try:
        click.echo(json_safe(text) if json else printable(text))
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


def _err(message: str) -> None:
    """A warning or a progress note on stderr, on one line, made safe to show."""
    from assistant.render import one_line

    click.echo(one_line(message), err=True)


def _progress_bar(enabled: bool, say_waiting: bool = False) -> Callable[[str, int, int], None]:
    """A tqdm bar on stderr for the embedding stage, when stderr is a terminal. A wait for
    another build's lock is said in any case (``say_waiting``): a silent pause looks like a
    hang."""
    if not enabled:
        def waiting_only(stage: str, done: int, total: int) -> None:
            if stage == "waiting" and say_waiting:
                _err("another build holds the index; waiting for it to finish…")

        return waiting_only
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    labels = {"export": "exporting the embedding model to ONNX (once per machine, ~15 s)",
              "embed": "embedding chunks",
              "vectors": "writing vectors", "publish": "publishing",
              "send": "sending the changed documents to the server"}

    def report(stage: str, done: int, total: int) -> None:
        if stage == "waiting":
            _err("another build holds the index; waiting for it to finish…")
            return
        if stage != "embed":
            if done == 0 and stage in labels:
                _err(labels[stage] + "…")
            return
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=labels[stage], unit="chunk",
                                     file=sys.stderr, leave=False, dynamic_ncols=True)
        if bar.total != total:  # the total is an estimate until every document is chunked
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return report


class Interrupted(Exception):
    """Ctrl+C, with what the user should know about the work it stopped (exit 130)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _interrupted_build(done: int, total: int) -> str:
    if not done:
        return ("interrupted before any chunk was embedded; the previous index is intact, "
                "and `assistant index` starts again")
    return (f"interrupted with {done:,} of about {total:,} chunks done; the previous index "
            "is intact, and the next `assistant index` resumes from there")


class ReaderGone(Exception):
    """stdout's reader closed the pipe (``… | head -1``): a normal end, not an error.
    Click would turn the ``BrokenPipeError`` into exit 1; this passes it to ``main``."""


class DefaultGroup(click.Group):
    """``assistant`` with no command opens the chat (like datasette's default command)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ReaderGone() from exc

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h",
                                                                    "--version")):
            args = ["chat", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="briefing-assistant")
def cli() -> None:
    """Ask questions of a folder of briefings; every answer is a verbatim, cited quote,
    or an honest "the briefing does not cover this".

    With no command, opens the chat."""


@cli.command()
@_location_options
@_server_option
def chat(corpus_dir: Path | None, index_dir: Path | None, server: str | None) -> None:
    """Open the terminal chat (builds or refreshes the index first, inside the app)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError("the chat needs a terminal (standard input or output is a pipe "
                               "or a file); in scripts use `assistant ask QUESTION` or "
                               "`assistant batch FILE`")
    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir, server=server)
    from assistant.tui.app import run_app  # textual: a heavy import, only for the chat

    run_app(settings)


@cli.command("index")
@_location_options
@click.option("--full", is_flag=True, help="Rebuild everything, even unchanged documents.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@_server_option
def index_cmd(corpus_dir: Path | None, index_dir: Path | None, full: bool, as_json: bool,
              server: str | None) -> None:
    """Build or update the index from the corpus (incremental, atomic, resumable)."""
    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir, server=server)
    from assistant.build import build_index

    bar = _progress_bar(sys.stderr.isatty(), say_waiting=settings.lock_timeout_s >= 1)
    embedded = [0, 0]  # chunks committed so far, of about how many

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "embed":
            embedded[:] = [done, total]
        bar(stage, done, total)

    try:
        summary = build_index(settings, full=full, progress=progress)
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            _err("")  # below the progress bar's line
        raise Interrupted(_interrupted_build(*embedded)) from None
    for s in summary.skipped:
        _err(f"warning: skipped {s.path}: {s.reason}")
    for w in summary.warnings:
        _err(f"warning: {w}")
    if as_json:
        _out(summary.model_dump_json(), json=True)
        return
    from assistant.render import count

    if summary.up_to_date:
        _out(f"Index is up to date: {count(summary.documents, 'document')}, "
             f"{count(summary.chunk_count, 'chunk')} ({summary.seconds:.2f} s).")
        return
    if summary.full_rebuild_reason:
        _out(f"Full rebuild: {summary.full_rebuild_reason}.")
    _out(f"Indexed {count(summary.documents, 'document')} into {summary.index_dir} "
         f"(generation {summary.generation}): {len(summary.added)} added, "
         f"{len(summary.changed)} changed, {len(summary.removed)} removed, "
         f"{summary.unchanged} unchanged, {len(summary.skipped)} skipped; "
         f"{summary.chunks_embedded} chunks embedded, {summary.chunk_count} in all; "
         f"{summary.seconds:.1f} s.")


LISTED_DOCUMENTS = 10
"""``info`` lists the documents of an index holding up to this many; beyond, it summarises
them (``--documents`` lists every one)."""


@cli.command()
@_location_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--documents", "list_documents", is_flag=True,
              help=f"List every document (by default only up to {LISTED_DOCUMENTS}).")
@_server_option
def info(corpus_dir: Path | None, index_dir: Path | None, as_json: bool,
         list_documents: bool, server: str | None) -> None:
    """Say what the index holds and whether it is stale against the corpus."""
    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir, server=server)
    from assistant.build import index_status

    st = index_status(settings)
    if not st.exists:
        from assistant.errors import IndexMissingError

        raise IndexMissingError(_no_index(Path(st.index_dir), settings.server,
                                          f"from {Path(st.corpus_dir).resolve()}"))
    if as_json:
        _out(st.model_dump_json(), json=True)
        return
    from assistant.render import DISPLAY_TITLE_CHARS, clipped, count, one_line

    lines = [f"Index:     {st.index_dir} (generation {st.generation})",
             f"Corpus:    {st.corpus_dir}",
             f"Built at:  {st.built_at:%Y-%m-%d %H:%M:%S %Z}" if st.built_at else "",
             f"Model:     {st.model}",
             f"Vectors:   {st.vectors.store} {st.vectors.kind}" if st.vectors else "Vectors:   ?",
             f"Contents:  {count(len(st.documents), 'document')}, "
             f"{count(st.chunk_count, 'chunk')}, {count(st.sentence_count, 'sentence')}"]
    if list_documents or len(st.documents) <= LISTED_DOCUMENTS:
        lines += [f"  - {d.doc_id}: {clipped(d.title, DISPLAY_TITLE_CHARS)} "
                  f"({count(d.chunks, 'chunk')})" for d in st.documents]
    else:
        from collections import Counter

        kinds = Counter(Path(d.doc_id).suffix.lower() or "no extension" for d in st.documents)
        lines.append("  " + ", ".join(f"{n:,} {kind}" for kind, n in kinds.most_common())
                     + "; `assistant info --documents` lists them")
    if st.stale:
        lines.append(f"Stale:     yes — {'; '.join(st.stale_reasons[:5])}"
                     + (" …" if len(st.stale_reasons) > 5 else "") + "; run `assistant index`")
    else:
        lines.append("Stale:     no (matches the corpus)")
    _out("\n".join(one_line(line) for line in lines))


def _no_index(index_dir: Path, server: str | None,
              source: str = "(with --corpus DIR for the documents)") -> str:
    """What to say when there is no index: where it was looked for (an absolute path: the
    command may run from another folder) and how to build one or point to one."""
    if server is not None:
        return "no index on the server yet; run `assistant index --server URL` to build it"
    return (f"no index in {index_dir.resolve()}; run `assistant index` to build it {source}, "
            "or pass --index DIR to use an index elsewhere")


def _open_session(settings: Settings) -> Session:
    from assistant.errors import IndexMissingError
    from assistant.preload import preload_embedder

    # started before the answer stages are imported, so the two overlap
    preload = preload_embedder(settings)
    from assistant.session import Session

    try:
        return Session.open(settings, preload)
    except IndexMissingError as exc:
        if settings.server is not None:
            raise
        raise IndexMissingError(_no_index(settings.index_dir, None)) from exc


def _open_output(path: Path) -> Any:
    """``batch -o PATH`` opened for unbuffered writing, its folder created if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb", buffering=0)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _warn_if_stale(session: Session) -> None:
    """A note on stderr when the corpus the index was built from has changed since."""
    changed = session.stale_documents()
    if changed:
        _err(f"note: the index is stale ({len(changed)} document(s) changed since it was built, "
             f"e.g. {changed[0]}); run `assistant index` to update it")


@cli.command()
@click.argument("question")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Citations to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as JSON.")
@_only_option
@click.option("--each", is_flag=True,
              help="What does each document say: the best passage of every document that "
                   "covers the question, grouped by document (JSON: {question, answers}).")
@_server_option
def ask(question: str, index_dir: Path | None, top_k: int | None, as_json: bool,
        only: tuple[str, ...], each: bool, server: str | None) -> None:
    """Answer one QUESTION with a verbatim quote and its citations."""
    settings = _settings(index_dir=index_dir, server=server)
    session = _open_session(settings)
    try:  # closed here, not at the interpreter's exit, which `main` skips after `ask`
        documents = session.documents_matching(only) if only else None
        if each:
            answers = session.ask_each(question, documents)
        else:
            answer = session.ask(question, top_k=top_k, documents=documents).answer
        _warn_if_stale(session)
    finally:
        session.close()
    if each:
        if as_json:
            import json

            _out(json.dumps({"question": question, "answers": [
                a.model_dump(mode="json") for a in answers]}, ensure_ascii=False), json=True)
            return
        from assistant.render import each_text

        _out(each_text(question, answers))
        return
    if as_json:
        _out(answer.model_dump_json(), json=True)
        return
    from assistant.render import answer_text

    _out(answer_text(answer))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write here instead of stdout (written as answers come; missing folders "
                   "are created; - is stdout).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "md"]), default="jsonl",
              show_default=True, help="jsonl: one Answer (or error record) as JSON a line; "
                                      "md: each answer as Markdown with its citations.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Citations per answer.")
@_only_option
@_server_option
def batch(file: Path, output: Path | None, fmt: str, index_dir: Path | None,
          top_k: int | None, only: tuple[str, ...], server: str | None) -> None:
    """Answer every question in FILE (.txt: one a line; .jsonl: {"question", "id",
    "conversation"}; - reads standard input), one record out per line in. Lines that share a
    "conversation" form one chat, asked in file order, so follow-ups are understood."""
    settings = _settings(index_dir=index_dir, server=server)
    from assistant.batch import count_lines, open_questions, output_line, run_batch
    from assistant.models import BatchErrorRecord

    source = open_questions(file)  # fail early on a missing, unreadable or binary file
    try:
        session = _open_session(settings)
        documents = session.documents_matching(only) if only else None
    except BaseException:
        source[0].close()
        raise
    if output is not None and str(output) == "-":
        output = None
    # One unbuffered write per record: an interrupted batch leaves whole lines behind.
    out = _open_output(output) if output else None
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=count_lines(file), unit="q", file=sys.stderr, leave=False)
    failures = 0
    try:
        for record in run_batch(session.answerer, file, top_k=top_k, source=source,
                                documents=documents):
            if isinstance(record, BatchErrorRecord):
                failures += 1
            else:
                record = session.locate(record)
            line = output_line(record, fmt)
            try:
                if out is not None:
                    data = memoryview(line.encode("utf-8"))
                    while data:  # a regular file takes it in one write; loop on a short one
                        data = data[out.write(data) or 0:]
                else:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            except BrokenPipeError:
                raise
            except OSError as exc:  # a full disk: what was written stays, whole lines
                where = output or "standard output"
                raise OutputError(f"cannot write to {where}: {exc.strerror or exc}; the "
                                  "answers before this one were written") from exc
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if out is not None:
            out.close()
    if failures:
        raise InputError(f"{failures} line(s) of {file} could not be answered; "
                         "see the error records in the output")


@cli.command("eval")
@click.argument("gold", type=click.Path(path_type=Path))
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_server_option
def eval_cmd(gold: Path, index_dir: Path | None, as_json: bool, server: str | None) -> None:
    """Measure answer quality on a GOLD.jsonl question set."""
    settings = _settings(index_dir=index_dir, server=server)
    from assistant.evaluate import evaluate, load_gold, report_text

    questions = load_gold(gold)
    rep = evaluate(_open_session(settings).answerer, questions)
    _out(rep.model_dump_json() if as_json else report_text(rep), json=as_json)


def _fail(message: str, exit_code: int, title: str, as_json: bool) -> None:
    """Report an error as one line on stderr (a JSON object with ``--json``), and exit."""
    message = " ".join(message.split())  # always one line
    if as_json:
        import json

        from assistant.render import json_safe

        click.echo(json_safe(json.dumps({"error": message, "title": title,
                                         "exit_code": exit_code}, ensure_ascii=False)),
                   err=True)
    else:
        _err("error: " + message)
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every user error into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args[:args.index("--")] if "--" in args else "--json" in args
    try:
        cli.main(args=argv, prog_name="assistant", standalone_mode=False)
        if args[:1] == ["ask"]:
            _exit_at_once()
    except AssistantError as exc:
        _fail(exc.message, exc.exit_code, exc.title, as_json)
    except Interrupted as exc:
        _fail(exc.message, 130, "Interrupted", as_json)
    except (click.exceptions.Abort, KeyboardInterrupt):
        if as_json:
            _fail("interrupted", 130, "Interrupted", as_json)
        _err("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code, "Usage", as_json)
    except (BrokenPipeError, ReaderGone):
        _quiet_broken_pipe()
    except Exception as exc:  # a bug: still one line for the user, the traceback on request
        import os

        if os.environ.get("ASSISTANT_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
              "(a bug; set ASSISTANT_DEBUG=1 to see where)", 1, "Unexpected error", as_json)


def _exit_at_once() -> None:
    """End a finished ``assistant ask`` without the interpreter's teardown (freeing modules,
    the model's session and the index's handles), a good share of a cold answer. Nothing
    is lost: the answer is flushed first, and the index was only read."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc
    os._exit(0)


def _quiet_broken_pipe() -> None:
    """The reader went away (``assistant batch … | head -1``): that is a normal end, exit 0.
    stdout is pointed at /dev/null so Python's flush at exit cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
