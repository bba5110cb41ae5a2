"""Fuzzing with hypothesis (issue 6): ingest and chunking of arbitrary text and bytes
(offsets always round-trip), batch line parsing (never raises), and question handling
(an Answer whose quotes are the stored text at their offsets, or an ``InputError``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile import assert_quotes_match
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
"""Multiplies every example count: FUZZ_SCALE=20 for a long bug hunt."""

# Text with the structure the ingest and chunker look for: headings, underlines, bullets,
# blank lines, sentence ends, abbreviations, CRLF, tabs, odd Unicode.
_PIECES = st.sampled_from([
    "\n", "\n\n", "\r\n", "\r", "\t", " ", "- ", "* ", "• ", "1. ", "2) ", "# ", "## ", "===",
    "---", "Summary", "Key Points", "U.S.", "e.g.", "eg.", "25%", "H200", "—", "–", "...", "…",
    ". ", "? ", "! ", ": ", "; ", "\"", "”", "’", "(", ")", "[bold]", "<p>", "</p>", "<h1>",
    "é", "ß", "İ", "ﬁ", "Ⅻ", "中文", "🚀", "\u200b", "\u202e", "\x00", "\x1b[31m", "\ufeff",
    "The chips were sold.", "Beijing said no", "A very long sentence without any end " * 3,
])
TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=30)), max_size=60).map("".join)


@pytest.fixture(scope="module")
def tokenizer(briefing_index: Path) -> Any:
    from assistant.embed import Tokenizer

    return Tokenizer(next((briefing_index / "models").glob("*/tokenizer.json")))


def _check_document(doc: Any, tokenizer: Any, max_tokens: int, overlap: int) -> None:
    from assistant.chunk import chunk_document

    text = doc.text
    for s in doc.sections:
        assert 0 <= s.start <= s.end <= len(text)
    previous_end = -1
    for chunk in chunk_document(doc, tokenizer.count, tokenizer.split_points, max_tokens,
                                overlap):
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.sentences and 0 <= chunk.first_owned <= len(chunk.sentences)
        for sentence in chunk.sentences:
            assert chunk.start <= sentence.start < sentence.end <= chunk.end
            assert text[sentence.start:sentence.end].strip() == text[sentence.start:sentence.end]
        owned = chunk.sentences[chunk.first_owned:]
        assert owned, chunk
        assert owned[0].start >= previous_end  # owned sentences never repeat or go back
        previous_end = owned[-1].end
        budget = max(8, max_tokens - tokenizer.count([chunk.embed_prefix])[0])
        assert tokenizer.count([chunk.text])[0] <= budget + 2  # fits the model's window


@settings(max_examples=150 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, fmt=st.sampled_from(["txt", "md", "html"]),
       max_tokens=st.sampled_from([16, 40, 200]), overlap=st.integers(0, 2))
def test_ingest_and_chunking_round_trip(tokenizer: Any, text: str, fmt: str, max_tokens: int,
                                        overlap: int) -> None:
    from assistant import ingest

    raw = text.encode("utf-8", "surrogatepass")
    file = ingest.CorpusFile(doc_id=f"doc.{fmt}", path=Path(f"doc.{fmt}"), size=len(raw),
                             mtime_ns=0)
    try:
        doc = ingest.extract(file, raw)
    except ingest.UnreadableDocument:
        return
    if fmt == "txt":  # Markdown and HTML are read as they render (README, "What is indexed")
        assert doc.text == ingest.normalise_newlines(ingest.decode_text(raw)[0])
    _check_document(doc, tokenizer, max_tokens, overlap)


@settings(max_examples=150 * SCALE, deadline=None)
@given(raw=st.binary(max_size=400), fmt=st.sampled_from(["txt", "md", "html", "pdf"]))
def test_ingest_of_arbitrary_bytes_raises_only_unreadable(tokenizer: Any, raw: bytes,
                                                          fmt: str) -> None:
    from assistant import ingest

    if fmt == "pdf":
        raw = b"%PDF-1.4\n" + raw
    file = ingest.CorpusFile(doc_id=f"doc.{fmt}", path=Path(f"doc.{fmt}"), size=len(raw),
                             mtime_ns=0)
    try:
        doc = ingest.extract(file, raw)
    except ingest.UnreadableDocument:
        return
    _check_document(doc, tokenizer, 40, 1)


# --- batch line parsing ----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["question", "id", "conversation", "x"]) | st.text(),
                      children, max_size=4),
    max_leaves=12)


@settings(max_examples=400 * SCALE, deadline=None)
@given(line=st.one_of(st.text(), JSON_VALUES.map(json.dumps),
                      JSON_VALUES.map(lambda v: json.dumps(v)[:-1] if json.dumps(v) else "")),
       line_no=st.integers(1, 10**9), jsonl=st.booleans())
def test_batch_line_parsing_never_raises(line: str, line_no: int, jsonl: bool) -> None:
    from assistant.batch import parse_line
    from assistant.models import BatchErrorRecord, BatchQuestion

    item = parse_line(line, line_no, jsonl)
    if not line.strip():
        assert item is None
    elif isinstance(item, BatchErrorRecord):
        assert item.line == line_no and item.error
        item.model_dump_json()
    else:
        assert isinstance(item, BatchQuestion) and item.id is not None
        item.model_dump_json()


def test_batch_line_parsing_of_pathological_json() -> None:
    from assistant.batch import parse_line
    from assistant.models import BatchErrorRecord

    for line in ["[" * 100_000, '{"question": 1' + "0" * 5000 + "}", "1" * 5000,
                 '{"question": "\\ud800"}', '{"question": NaN}', "\x00"]:
        item = parse_line(line, 7, True)
        assert item is None or isinstance(item, BatchErrorRecord) or item.question


# --- question handling ----------------------------------------------------------------------

QUESTIONS = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(["H200", "H20", "China", "25%", "revenue", "US", "Nvidia", "?",
                              "what", "how much", "\x1b[1m", "[bold]", "中国", "\ud800",
                              "price", "Beijing", "  ", "\n", "Huawei", "export", "it", "they"]),
             max_size=12).map(" ".join),
)


@settings(max_examples=200 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@pytest.mark.slow
@given(question=QUESTIONS)
def test_any_question_gives_an_answer_with_exact_quotes_or_an_input_error(
        answerer: Any, question: str) -> None:
    from assistant.errors import InputError
    from assistant.models import Answer

    try:
        answer = answerer.ask(question).answer
    except InputError as exc:
        assert exc.exit_code == 8 and exc.message
        return
    assert isinstance(answer, Answer)
    assert_quotes_match(answer, answerer.index.document_text)
    assert 0.0 <= answer.confidence <= 1.0
    json.loads(answer.model_dump_json())


@settings(max_examples=40 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@pytest.mark.slow
@given(turns=st.lists(QUESTIONS, min_size=2, max_size=4))
def test_any_conversation_keeps_exact_quotes(answerer: Any, turns: list[str]) -> None:
    from assistant.errors import InputError
    from assistant.qa.conversation import Conversation

    conv = Conversation(id="fuzz")
    for question in turns:
        try:
            reply = answerer.ask(question, conv)
        except InputError:
            continue
        conv = reply.conversation
        assert_quotes_match(reply.answer, answerer.index.document_text)
