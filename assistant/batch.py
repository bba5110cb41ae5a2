"""Batch: answer a file of questions, streaming, one record out per line in.

Input is ``.txt`` (one question a line) or ``.jsonl`` (``{"question", "id"?,
"conversation"?}``); lines sharing a conversation form one chat, asked in file order.
A malformed line yields a ``BatchErrorRecord`` naming its line number and the rest go
on. Records are yielded as they are answered, so a caller that writes them as they come
keeps everything answered before an interruption.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from assistant.errors import AssistantError, InputError
from assistant.models import Answer, BatchErrorRecord, BatchQuestion
from assistant.qa.conversation import Conversation
from assistant.qa.pipeline import Answerer


def parse_line(raw: str, line_no: int, jsonl: bool) -> BatchQuestion | BatchErrorRecord | None:
    """One input line as a question, an error record, or None for a blank line."""
    text = raw.strip()
    if not text:
        return None
    if not jsonl:
        return BatchQuestion(question=text, id=str(line_no))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return BatchErrorRecord(line=line_no, error=f"not valid JSON ({exc.msg})")
    except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep
        return BatchErrorRecord(line=line_no, error=f"not valid JSON ({type(exc).__name__})")
    if not isinstance(data, dict):
        return BatchErrorRecord(line=line_no, error="expected a JSON object with a \"question\"")
    try:
        q = BatchQuestion.model_validate(
            {k: v for k, v in data.items() if k in {"question", "id", "conversation"}})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        return BatchErrorRecord(line=line_no, id=_maybe_id(data),
                                error=f"{where}: {first['msg'].lower()}")
    if q.id is None:
        q.id = str(line_no)
    return q


def _maybe_id(data: dict[str, object]) -> str | None:
    value = data.get("id")
    return value if isinstance(value, str) else None


STDIN = Path("-")
"""``assistant batch -``: the questions come from standard input (JSON Lines when the first
line that is not blank opens with ``{``, else a question a line)."""


def open_questions(path: Path) -> tuple[BinaryIO, bool]:
    """The batch file opened as bytes (each line is decoded alone, so one bad line cannot
    cost the others), and whether it is JSON Lines. A binary file is refused here, before
    any of its "lines" is answered."""
    if path == STDIN:
        stdin = sys.stdin.buffer
        if not isinstance(stdin, io.BufferedReader):  # a test's or a wrapper's stream
            stdin = io.BufferedReader(io.BytesIO(stdin.read()))
        head = stdin.peek(65536)[:65536]
        _refuse_binary(head, "standard input")
        first = next((line for line in head.splitlines() if line.strip()), b"")
        return stdin, first.lstrip(b"\xef\xbb\xbf \t").startswith(b"{")
    try:
        found = path.is_file()
    except OSError as exc:  # a folder on the way that may not be read
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not found:
        raise InputError(f"the batch file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".jsonl"):
        raise InputError(f"the batch file {path} must be .txt (a question a line) or .jsonl")
    try:
        fh = open(path, "rb")  # noqa: SIM115
        head = fh.read(65536)
        fh.seek(0)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        _refuse_binary(head, str(path))
    except InputError:
        fh.close()
        raise
    return fh, suffix == ".jsonl"


def _refuse_binary(head: bytes, name: str) -> None:
    from assistant.ingest import looks_binary

    if looks_binary(head):
        raise InputError(f"{name} is a binary file, not questions (a .txt file holds a question "
                         "a line, a .jsonl file one JSON object a line, in UTF-8)")


def run_batch(answerer: Answerer, path: Path, top_k: int | None = None,
              source: tuple[BinaryIO, bool] | None = None,
              documents: frozenset[str] | None = None,
              ) -> Iterator[Answer | BatchErrorRecord]:
    """Answers and error records, one per non-blank input line, in input order
    (``source``: the file already opened by ``open_questions``; ``documents``: doc ids to
    answer from, None for all). A file with no question at all is an ``InputError``: an
    empty batch is almost always a mistake."""
    fh, jsonl = source or open_questions(path)
    conversations: dict[str, Conversation] = {}
    records = 0
    with fh:
        for line_no, data in enumerate(_lines(fh, path), start=1):
            records += 1
            try:
                raw = data.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield BatchErrorRecord(line=line_no, error=f"not UTF-8 text (byte {exc.start + 1})")
                continue
            item = parse_line(raw, line_no, jsonl)
            if item is None:
                records -= 1
                continue
            if isinstance(item, BatchErrorRecord):
                yield item
                continue
            conv = conversations.get(item.conversation or "", Conversation(id=item.conversation
                                                                         or ""))
            try:
                reply = answerer.ask(item.question, conv, qid=item.id, top_k=top_k,
                                     documents=documents)
                if item.conversation:
                    conversations[item.conversation] = reply.conversation
                yield reply.answer
            except AssistantError as exc:
                yield BatchErrorRecord(line=line_no, id=item.id, error=exc.message)
    if not records:
        name = "standard input" if path == STDIN else str(path)
        raise InputError(f"{name} holds no questions (it is empty or blank)")


def _lines(fh: BinaryIO, path: Path) -> Iterator[bytes]:
    """The file's lines; a read that fails midway (an I/O error, a file made unreadable) is
    an ``InputError`` after the lines before it were answered."""
    try:
        yield from fh
    except OSError as exc:
        name = "standard input" if path == STDIN else str(path)
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from exc


def count_lines(path: Path) -> int | None:
    """The progress bar's total: the file's lines (None for standard input)."""
    if path == STDIN:
        return None
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def markdown_record(record: Answer | BatchErrorRecord) -> str:
    """One record as Markdown, for ``--format md`` (made printable)."""
    from assistant.render import answer_markdown, printable

    if isinstance(record, BatchErrorRecord):
        return printable(f"### Line {record.line}: error\n\n{record.error}\n")
    return answer_markdown(record)


def output_line(record: Answer | BatchErrorRecord, fmt: str) -> str:
    """One record as written out, newline included: Markdown (``md``) or one JSON line
    (``jsonl``), either made safe to show (``assistant.render``)."""
    from assistant.render import json_safe

    if fmt == "md":
        return markdown_record(record) + "\n"
    return json_safe(record.model_dump_json()) + "\n"
