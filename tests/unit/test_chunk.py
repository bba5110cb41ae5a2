"""Chunking: real sentences, exact offsets, and every chunk inside the model's window.

The token counts are always measured with the model's own tokenizer (the one the
index embeds with), never estimated.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import ingest
from assistant.chunk import chunk_document, regions
from assistant.embed import MAX_SEQ_LENGTH, Tokenizer
from assistant.formats import plain
from assistant.models import Chunk, SourceDocument
from assistant.source import looks_binary

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """The model's own word-piece tokenizer (from the packaged model, no export needed)."""
    from assistant.settings import Settings

    return Tokenizer(Settings().resolved_model_path() / "tokenizer.json")


def make_doc(text: str, name: str = "doc.txt") -> SourceDocument:
    """A document as ingest makes it from these bytes (sections, title, normalised text)."""
    raw = text.encode("utf-8")
    return ingest.extract(ingest.CorpusFile(doc_id=name, path=Path(name), size=len(raw),
                                            mtime_ns=0), raw)


def chunks_of(doc: SourceDocument, tok: Tokenizer, max_tokens: int = 200,
              overlap: int = 1) -> list[Chunk]:
    return list(chunk_document(doc, tok.count, tok.split_points, max_tokens, overlap))


def window_tokens(tok: Tokenizer, chunk: Chunk) -> int:
    """Word pieces the model would read for this chunk: prefix + text + [CLS] and [SEP]."""
    return tok.count([chunk.embed_prefix + chunk.text])[0] + 2


def briefing_sentences(tok: Tokenizer) -> tuple[SourceDocument, list[str]]:
    doc = make_doc(BRIEFING.read_text(encoding="utf-8"), BRIEFING.name)
    seen: dict[tuple[int, int], str] = {}
    for c in chunks_of(doc, tok):
        for s in c.sentences:
            seen[(s.start, s.end)] = doc.text[s.start:s.end]
    return doc, [seen[k] for k in sorted(seen)]


# --- sentences ------------------------------------------------------------------------------

def test_every_key_point_of_the_briefing_is_one_sentence(tokenizer: Tokenizer) -> None:
    doc, sents = briefing_sentences(tokenizer)
    bullets = [line[2:] for line in doc.text.split("\n") if line.startswith("- ")]
    assert len(bullets) == 7
    for bullet in bullets:
        assert bullet in sents, f"split inside: {bullet!r}"
    assert ("Past US efforts (eg. export bans) have often accelerated China’s push for "
            "indigenous tech — history suggests a similar outcome now.") in sents


def test_briefing_sentences_keep_percentages_and_dashes_whole(tokenizer: Tokenizer) -> None:
    _, sents = briefing_sentences(tokenizer)
    assert ("The Trump administration’s reversal to allow Nvidia to sell H200 GPUs to approved "
            "Chinese customers (with a 25% revenue share for the US) is unlikely to change "
            "Beijing’s push for technological independence.") in sents
    assert ("China has already accelerated domestic development — firms such as Huawei and Baidu "
            "are deploying rack-scale systems and new accelerators; other vendors like Biren and "
            "Cambricon are advancing quickly.") in sents
    # Headings and the title are structure, never sentences; no sentence carries a bullet.
    for heading in ("Summary", "Key Points", "Context and relevance", "Author style"):
        assert heading not in sents
    assert not any(s.startswith("- ") for s in sents)
    assert len(sents) == 19


def test_abbreviations_percentages_and_dashes(tokenizer: Tokenizer) -> None:
    text = ("Trade notes\n"
            "The U.S. government imposed rules in 2022. Sales fell 25% last year. "
            "Then they rose — eg. in Q3 — again. Prices rose 3.5% in the U.S. and fell "
            "elsewhere.\n")
    doc = make_doc(text)
    got = [doc.text[s.start:s.end] for c in chunks_of(doc, tokenizer) for s in c.sentences]
    assert got == ["The U.S. government imposed rules in 2022.", "Sales fell 25% last year.",
                   "Then they rose — eg. in Q3 — again.",
                   "Prices rose 3.5% in the U.S. and fell elsewhere."]


def test_bullet_lines_are_sentences_and_wrapped_lines_are_joined(tokenizer: Tokenizer) -> None:
    text = ("Field notes\n"
            "Findings\n"
            "The survey ran for a month and its\n"
            "results were clear.\n"
            "- first finding without a full stop\n"
            "- second finding. It has two sentences.\n"
            "* third finding\n"
            "1. numbered finding\n"
            "• bullet-dot finding\n")
    doc = make_doc(text)
    got = [doc.text[s.start:s.end] for c in chunks_of(doc, tokenizer, overlap=0)
           for s in c.sentences]
    assert got == ["The survey ran for a month and its\nresults were clear.",
                   "first finding without a full stop", "second finding.",
                   "It has two sentences.", "third finding", "numbered finding",
                   "bullet-dot finding"]


# --- chunks ----------------------------------------------------------------------------------

def test_briefing_chunks_follow_sections_with_exact_offsets(tokenizer: Tokenizer) -> None:
    doc = make_doc(BRIEFING.read_text(encoding="utf-8"), BRIEFING.name)
    chunks = chunks_of(doc, tokenizer)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    sections = {c.section for c in chunks}
    assert sections == {"Summary", "Key Points", "Context and relevance",
                        "Why should I read this?", "Author style", "Source"}
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        sec = next(s for s in doc.sections if s.title == c.section)
        assert sec.start <= c.start < c.end <= sec.end
        assert c.embed_prefix.startswith(doc.title + "\n" + c.section)
        assert window_tokens(tokenizer, c) <= 200 + 2


def test_overlap_repeats_the_previous_chunks_last_sentence(tokenizer: Tokenizer) -> None:
    body = " ".join(f"Sentence number {i} talks about export rules and chips." for i in range(60))
    doc = make_doc(f"Long note\nBody\n{body}\n")
    chunks = chunks_of(doc, tokenizer, max_tokens=64, overlap=1)
    assert len(chunks) > 3
    for prev, cur in itertools.pairwise(chunks):
        assert cur.first_owned == 1
        assert cur.sentences[0] == prev.sentences[-1]
    owned = [s for c in chunks for s in c.sentences[c.first_owned:]]
    assert len(owned) == 60 and len(set(owned)) == 60  # every sentence owned exactly once


def _max_window(tok: Tokenizer, doc: SourceDocument, max_tokens: int) -> int:
    return max(window_tokens(tok, c) for c in chunks_of(doc, tok, max_tokens=max_tokens))


@pytest.mark.parametrize("max_tokens", [200, 250])
@pytest.mark.parametrize("body", [
    "\n".join(f"- item {i} fits." for i in range(400)),
    "\n".join(f"{i}) a b" for i in range(400)),
    "Intro line that is long enough here.\n" + "🚀 " * 300 + "\nWord after.",
    "Intro line that is long enough here.\n" + "x. " * 10 + "\n" + "— " * 300 + "\nWord after.",
    " ".join(["antidisestablishmentarianism"] * 600) + ".",
], ids=["bullets", "numbered-short-bullets", "emoji-line", "dash-line", "long-sentence"])
def test_chunks_stay_inside_the_model_window(tokenizer: Tokenizer, body: str,
                                             max_tokens: int) -> None:
    """Bullet markers and word-less lines between sentences count too: the model reads them."""
    doc = make_doc("Stress test\nBody\n" + body + "\n")
    assert _max_window(tokenizer, doc, max_tokens) <= max_tokens + 2 <= MAX_SEQ_LENGTH


def test_a_very_long_title_and_heading_still_fit_the_window(tokenizer: Tokenizer) -> None:
    title = " ".join(["Titleword"] * 150)
    heading = " ".join(["Headingword"] * 150)
    md = f"# {title}\n\nSome body text here. More of it.\n\n## {heading}\n\nSecond body.\n"
    doc = make_doc(md, "long.md")
    chunks = chunks_of(doc, tokenizer)
    assert [doc.text[s.start:s.end] for c in chunks for s in c.sentences] == [
        "Some body text here.", "More of it.", "Second body."]
    assert _max_window(tokenizer, doc, 200) <= 202


def test_an_overlong_sentence_is_cut_at_word_boundaries_only(tokenizer: Tokenizer) -> None:
    words = [f"token{i}" for i in range(900)]
    doc = make_doc("Run-on\nBody\nThe " + " ".join(words) + " ends here.\n")
    chunks = chunks_of(doc, tokenizer, max_tokens=120, overlap=0)
    pieces = [s for c in chunks for s in c.sentences]
    assert len(pieces) > 4
    text = doc.text
    for s in pieces:
        assert not text[s.start - 1].isalnum() and not text[s.end].isalnum(), \
            f"cut inside a word: {text[s.start - 5:s.start + 5]!r} / {text[s.end - 5:s.end + 5]!r}"
    assert " ".join(text[s.start:s.end] for s in pieces) == "The " + " ".join(words) + " ends here."
    assert max(window_tokens(tokenizer, c) for c in chunks) <= 122


def test_markdown_heading_markup_is_not_a_sentence(tokenizer: Tokenizer) -> None:
    md = ("# Market Report\n\nIntro text. It explains.\n\n## Supply chain ##\n\n"
          "Chips come from Taiwan.\n")
    doc = make_doc(md, "report.md")
    got = [doc.text[s.start:s.end] for c in chunks_of(doc, tokenizer) for s in c.sentences]
    assert got == ["Intro text.", "It explains.", "Chips come from Taiwan."]
    assert [c.section for c in chunks_of(doc, tokenizer)] == ["Market Report", "Supply chain"]


def test_a_sentence_too_long_to_sit_beside_the_overlap_is_not_lost(tokenizer: Tokenizer) -> None:
    """A long sentence that does not fit beside the carried overlap sentence, followed by one
    that does not fit beside it, once vanished from every chunk (found by the property test)."""
    long = "The agency " + " ".join(["audited shipments"] * 65) + " in May."
    text = (f"Minutes\nDecisions\nThe meeting opened at nine. The chair spoke. {long} "
            "The meeting closed after a long debate on many topics.\n")
    doc = make_doc(text)
    chunks = chunks_of(doc, tokenizer)
    owned = " ".join(doc.text[s.start:s.end] for c in chunks for s in c.sentences[c.first_owned:])
    assert owned == ("The meeting opened at nine. The chair spoke. " + long
                     + " The meeting closed after a long debate on many topics.")


@pytest.mark.parametrize("space", ["\u00a0", "\u2029", "\u2003", "\u3000", "\x85"])
def test_unicode_spaces_before_a_full_stop_do_not_crash_the_segmenter(
        tokenizer: Tokenizer, space: str) -> None:
    """sentencex panics (a BaseException from Rust) on "B<non-ASCII space>."; one such
    document must not fail the whole build."""
    doc = make_doc(f"Plans\nWe chose Plan B{space}. It worked well.\n")
    got = [doc.text[s.start:s.end] for c in chunks_of(doc, tokenizer) for s in c.sentences]
    assert "".join(got).replace(space, " ") == "We chose Plan B .It worked well."


# --- the invariant, on arbitrary documents ---------------------------------------------------

_FRAGMENTS = ["\n", "\r\n", "\r", "\n\n", "- ", "\n- ", "\n* ", "\n• ", "\n1. ", "eg. ", "U.S. ",
              "25% ", " — ", "–", "...", "…", "?", "!", ". ", ".\n", "“quoted.” ", "(aside) ",
              "中文句子。", "日本語。", "🚀", "👍🏽", "e\u0301", "Ünïcödé ", "\t", "\u00a0",
              "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "# ", "## Heading\n", "\n=====\n",
              "\n-----\n", "Title line\n", "Short heading\nA longer line follows it here.\n",
              "https://example.org/x.y ", "3.5 ", "Mr. ", "A", " "]
_ALPHABET = st.characters(codec="utf-8", exclude_categories=["Cs"],
                          exclude_characters="\x00")
_TEXT = st.lists(st.one_of(st.text(alphabet=_ALPHABET, max_size=12), st.sampled_from(_FRAGMENTS),
                           st.text(alphabet="abc XYZ.,-\n", max_size=30)),
                 max_size=60).map("".join)


def _check_invariants(doc: SourceDocument, chunks: list[Chunk], tok: Tokenizer,
                      max_tokens: int) -> None:
    text = doc.text
    last_owned_end = 0
    for k, c in enumerate(chunks):
        assert c.ordinal == k
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start:c.end] == c.text
        assert c.sentences, "a chunk without sentences"
        assert c.sentences[0].start == c.start and c.sentences[-1].end == c.end
        prev_end = c.start
        for s in c.sentences:
            assert c.start <= s.start < s.end <= c.end
            assert s.start >= prev_end, "sentences overlap or are out of order"
            prev_end = s.end
            piece = text[s.start:s.end]
            assert piece == piece.strip() and re.search(r"\w", piece)
        for s in c.sentences[c.first_owned:]:
            assert s.start >= last_owned_end, "owned sentences overlap across chunks"
            last_owned_end = s.end
        assert 0 <= c.first_owned < len(c.sentences)
        assert tok.count([c.embed_prefix + c.text])[0] <= max_tokens


def _words_outside_sentences(doc: SourceDocument, chunks: list[Chunk]) -> str:
    """Word characters of the text that no sentence holds (headings and rule lines such as
    "___" excepted: the chunker skips those by design): lost content."""
    covered = bytearray(len(doc.text))
    for c in chunks:
        for s in c.sentences:
            covered[s.start:s.end] = b"\x01" * (s.end - s.start)
    pos = 0
    for line in doc.text.split("\n"):  # list markers ("1." "-") are structure, not content
        m = plain.BULLET.match(line)
        if m:
            covered[pos:pos + m.end()] = b"\x01" * m.end()
        if plain.is_rule_line(line):
            covered[pos:pos + len(line)] = b"\x01" * len(line)
        pos += len(line) + 1
    for r in regions(doc):
        if r.heading_in_text:
            nl = doc.text.find("\n", r.start, r.end)
            line_end = r.end if nl == -1 else nl
            covered[r.start:line_end] = b"\x01" * (line_end - r.start)
    return "".join(ch for i, ch in enumerate(doc.text)
                   if not covered[i] and re.match(r"\w", ch))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, fmt=st.sampled_from(["txt", "md"]), max_tokens=st.sampled_from([16, 40, 200]),
       overlap=st.integers(0, 2))
def test_offsets_round_trip_on_arbitrary_unicode(tokenizer: Tokenizer, text: str, fmt: str,
                                                 max_tokens: int, overlap: int) -> None:
    try:
        doc = make_doc(text, f"doc.{fmt}")
    except ingest.UnreadableDocument:
        from assistant.formats.markdown import read_markdown

        # refused only when empty (a Markdown file of markup alone, "#", reads as nothing),
        # or as binary by the one rule the reader applies
        assert not text.strip() or looks_binary(text.encode("utf-8")[:65536]) or (
            fmt == "md" and not read_markdown(text).text.strip())
        return
    chunks = list(chunk_document(doc, tokenizer.count, tokenizer.split_points, max_tokens,
                                 overlap))
    _check_invariants(doc, chunks, tokenizer, max_tokens)
    assert _words_outside_sentences(doc, chunks) == ""
    prev_end = 0
    for sec in doc.sections:  # in order, not overlapping, inside the text
        assert prev_end <= sec.start <= sec.end <= len(doc.text)
        prev_end = sec.end


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "Heading", "Intro", "Point"]),
                          st.text(alphabet=_ALPHABET, max_size=40)), max_size=8),
       st.integers(0, 2))
def test_offsets_round_trip_with_arbitrary_sections(tokenizer: Tokenizer,
                                                    parts: list[tuple[str, str]],
                                                    overlap: int) -> None:
    """Sections placed anywhere (as an extractor might produce them) keep the invariant."""
    from assistant.models import Section

    text, sections = "", []
    for title, body in parts:
        start = len(text)
        text += (title + "\n" if title else "") + body + "\n"
        if title:
            sections.append(Section(title=title, level=2, start=start, end=len(text)))
    doc = SourceDocument(doc_id="x", title="Doc", format="txt", text=text, sections=sections,
                         content_hash="0")
    chunks = list(chunk_document(doc, tokenizer.count, tokenizer.split_points, 40, overlap))
    _check_invariants(doc, chunks, tokenizer, 40)


def test_a_rule_line_is_skipped_and_the_text_around_it_kept(tokenizer: Tokenizer) -> None:
    """Found by the fuzz test: "___" alone in a paragraph is a separator, not content (the
    fuzz test counted its underscores as lost words)."""
    doc = make_doc("Title\n\nFirst part here.\n\n___\n\nSecond part here.\n", "doc.txt")
    chunks = list(chunk_document(doc, tokenizer.count, tokenizer.split_points, 40, 0))
    assert [doc.text[s.start:s.end] for c in chunks for s in c.sentences] == [
        "First part here.", "Second part here."]
    assert _words_outside_sentences(doc, chunks) == ""
