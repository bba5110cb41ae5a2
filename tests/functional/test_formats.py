"""Documents as analysts keep them, read by format: the units a reader quotes (text, label,
source line), never markup, site furniture or running headers.

The documents are written for these tests (tests/data/formats, tests/data/web-pages); the last
test reads ../shared/briefings-dev at run time when it is there.
"""

from __future__ import annotations

import html
import json
import re
import socket
from pathlib import Path

import pytest
from helpers.pdf import make_pdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import ingest
from assistant.chunk import regions, unit_sentences
from assistant.formats import CELL_SEPARATOR
from assistant.formats.html import read_html
from assistant.formats.markdown import read_markdown
from assistant.formats.pdf import drop_page_furniture, read_pdf
from assistant.formats.plain import read_plain
from assistant.locations import DocumentMap
from assistant.models import SourceDocument, Unit

DATA = Path(__file__).resolve().parents[1] / "data"
FORMATS = DATA / "formats"
PAGES = DATA / "web-pages"
SHARED = Path(__file__).resolve().parents[3] / "shared"
BRIEFINGS = SHARED / "briefings-dev" / "corpus"
# Folders of the same shapes that the document readers were not written against.
FOLDERS = [BRIEFINGS, *(SHARED / "briefings-train" / t / "corpus"
                        for t in ("energy", "finance", "health"))]


def extract(path: Path) -> SourceDocument:
    raw = path.read_bytes()
    return ingest.extract(ingest.CorpusFile(doc_id=path.name, path=path, size=len(raw),
                                            mtime_ns=0), raw)


def units_of(doc: SourceDocument) -> list[tuple[str, str, int]]:
    m = DocumentMap(doc.text, doc.units, doc.locations)
    return [(doc.text[u.start:u.end], u.label, m.place(u.start)[0]) for u in doc.units]


_WORDS = re.compile(r"\w+")


def first_words_on_line(source_lines: list[str], text: str, line: int, n: int = 3) -> bool:
    """The unit's first words start on that line of the source (markup aside) and run on
    from there, into the lines after it when that line ends first."""
    want = _WORDS.findall(text)[:n]
    if not want:
        return True
    if not 0 < line <= len(source_lines):
        return False

    def words(ln: str) -> list[str]:
        return _WORDS.findall(re.sub(r"\]\([^)]*\)", " ", ln))

    on_line = len(words(source_lines[line - 1]))
    run = [w for ln in source_lines[line - 1:line + n] for w in words(ln)]
    return any(run[i:i + len(want)] == want for i in range(on_line))


# --- Markdown ---------------------------------------------------------------------------------

def test_markdown_units_are_the_rendered_text_with_labels_and_lines() -> None:
    doc = extract(FORMATS / "memo.md")
    assert units_of(doc) == [
        ("Energy desk", "To", 3),
        ("Networks analyst", "From", 4),
        ("3 March 2026", "Date", 5),
        ("In October the queue lost 14 projects to withdrawals. Most were solar farms in the "
         "west.", "Leakage", 9),
        ("Queue times are long: a typical project waits 46 months, see the report.", "", 12),
        ("12 July 2024: the regulator opens a consultation.", "", 15),
        ("3 February 2025 — the new rules take effect.", "", 16),
        ("Cluster studies replace serial studies.", "", 18),
        ("Deposits rise with project size.", "", 19),
        ("Westmoor Solar · North · 240 MW", "", 25),
        ("Fenby Storage · East · 100 MW", "", 26),
        ("Connection reform is the one lever that works fast.", "", 28),
        ('queue = load("2026")', "", 31),
    ]
    assert [(s.level, s.title) for s in doc.sections] == [
        (1, "Grid connection memo"), (2, "Findings"), (2, "Projects")]
    rows = [u for u in doc.units if u.kind == "row"]
    assert rows[0].search == "Project: Westmoor Solar; Region: North; Capacity: 240 MW"
    for mark in ("**", "#", "`", "](", "<!--", "internal", "|", "---"):
        assert mark not in doc.text
    # the header row is shown, not quoted; a heading is never the start of a unit
    assert "Project · Region · Capacity" in doc.text
    assert all(not doc.text[u.start:u.end].startswith(("Findings", "Projects", "Project ·"))
               for u in doc.units)


def test_markdown_sentences_never_cross_list_items_or_rows() -> None:
    doc = extract(FORMATS / "memo.md")
    spans = [sp for r in regions(doc) for sp in unit_sentences(doc.text, doc.units, r)]
    quotes = [doc.text[sp.start:sp.end] for sp in spans]
    assert "12 July 2024: the regulator opens a consultation." in quotes
    assert "Westmoor Solar · North · 240 MW" in quotes
    assert all("\n" not in q for q in quotes)  # never two items, rows or lines merged


# --- notes and transcripts --------------------------------------------------------------------

def test_speakers_label_their_words_and_separators_start_sections() -> None:
    doc = extract(FORMATS / "call-notes.txt")
    assert units_of(doc) == [
        ("Notes are paraphrased, not a transcript.", "", 2),
        ("Jane Roe - Chief Executive Officer", "", 5),
        ("Sam Poe - Chief Financial Officer", "", 6),
        ("Analysts (names not recorded)", "", 7),
        ("Output rose 12% in the quarter. The new turbines ran at full load\nfrom August.",
         "JANE ROE", 11),
        ("Capital spending for the year stays at 2.1 billion dollars.", "SAM POE", 14),
        ("Will the hedging policy change?", "ANALYST", 18),
        ("No. The company keeps hedging 80% of next year's output.", "Sam Poe (CFO)", 20),
        ("Our view: the guidance looks conservative.", "", 24),
    ]
    titles = [s.title for s in doc.sections]
    assert titles == ["ACME POWER Q3 CALL - NOTES", "Participants", "PREPARED REMARKS",
                      "Questions and answers", ""]
    assert not any("Officer" in t or "recorded" in t for t in titles)  # names are not headings


# --- web pages --------------------------------------------------------------------------------

FURNITURE = ["Markets desk", "Houston weather", "We use cookies", "Share on LinkedIn",
             "morning briefing", "Related stories", "Most read", "Refinance your mortgage",
             "reader42", "More from this author", "Filed under", "All rights reserved",
             "Current story", "Subscribe today"]


@pytest.mark.parametrize("page", sorted(PAGES.glob("page-*.html")), ids=lambda p: p.stem)
def test_web_page_is_its_article(page: Path) -> None:
    """Every line a reader expects is a unit of the page, with its words in order; none of
    the site's furniture is; each unit's line in the file holds its first words."""
    source = page.read_text(encoding="utf-8")
    reading = read_html(source)
    expected = page.with_name(page.stem + ".expected.txt").read_text("utf-8").splitlines()
    units = [" ".join(_WORDS.findall(reading.text[u.start:u.end])) for u in reading.units]
    heads = [" ".join(_WORDS.findall(s.title)) for s in reading.sections]
    table_heads = [" ".join(_WORDS.findall(ln)) for ln in reading.text.split("\n")
                   if CELL_SEPARATOR in ln]  # a table's header row is shown, not quoted
    for line in expected:
        assert " ".join(_WORDS.findall(line)) in units + heads + table_heads, line
    for phrase in FURNITURE:
        assert phrase not in reading.text
    m = DocumentMap(reading.text, reading.units, reading.locations)
    # the page's words as a reader sees them: "company&#x27;s" is "company's", no tag names
    lines = [html.unescape(re.sub(r"<[^>]*>", " ", ln)) for ln in source.split("\n")]
    for u in reading.units:
        assert first_words_on_line(lines, reading.text[u.start:u.end], m.place(u.start)[0])


def test_byline_is_a_unit_of_its_own() -> None:
    reading = read_html((PAGES / "page-01.html").read_text(encoding="utf-8"))
    bylines = [reading.text[u.start:u.end] for u in reading.units if u.kind == "byline"]
    assert bylines == ["By Maria Lindqvist · Stockholm · 2 January 2026"]
    first = next(u for u in reading.units if u.kind == "text")
    assert not reading.text[first.start:first.end].startswith("By ")


def test_a_dateline_without_a_byline_is_a_unit_of_its_own() -> None:
    body = "The grid operator signed three supply deals for new data centres this spring. " * 3
    page = ('<html><body><article><h1>Data centres and the grid</h1>'
            '<p class="meta">Analysis | 22 May 2025</p>'
            f'<p>{body}</p><p>{body.replace("three", "four")}</p>'
            '<section class="comments"><span class="date">2 hours ago</span></section>'
            '</article></body></html>')
    reading = read_html(page)
    assert [reading.text[u.start:u.end] for u in reading.units if u.kind == "byline"] == \
        ["Analysis | 22 May 2025"]


def test_web_page_reader_never_goes_to_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        tried.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    page = ('<html><head><link rel="stylesheet" href="http://example.com/s.css"></head><body>'
            '<article><h1>Remote parts</h1><img src="http://example.com/a.png"><p>'
            + "The page names remote files but the reader fetches none of them. " * 4
            + '</p><iframe src="http://example.com/x"></iframe></article></body></html>')
    reading = read_html(page)
    assert "fetches none of them" in reading.text and tried == []


# --- PDF --------------------------------------------------------------------------------------

def test_pdf_running_headers_footers_and_hyphens() -> None:
    pages = [["ACME ANNUAL REPORT 2026", "Capacity", "Storage capacity grew by a third",
              "under the new regu-", "lation of 2025.", "Page 1 of 3"],
             ["ACME ANNUAL REPORT 2026", "Prices", "Prices fell in every region.", "Page 2 of 3"],
             ["ACME ANNUAL REPORT 2026", "Outlook", "Demand is set to rise.", "Page 3 of 3"]]
    doc = ingest.extract(ingest.CorpusFile(doc_id="r.pdf", path=Path("r.pdf"), size=1,
                                           mtime_ns=0), make_pdf(pages))
    assert "ACME ANNUAL REPORT" not in doc.text and "Page 1 of 3" not in doc.text
    m = DocumentMap(doc.text, doc.units, doc.locations)
    got = [(doc.text[u.start:u.end], m.place(u.start)) for u in doc.units]
    assert got == [("Storage capacity grew by a third\nunder the new regulation of 2025.", (3, 1)),
                   ("Prices fell in every region.", (3, 2)),
                   ("Demand is set to rise.", (3, 3))]
    at = doc.text.index("of 2025")
    assert m.place(at) == (5, 1)  # the joined word's second half is on the file's next line


def test_page_furniture_is_a_function_of_page_texts() -> None:
    pages = [f"Report\nBody {n} text.\n{n}" for n in range(1, 5)]
    assert drop_page_furniture(pages) == [f"Body {n} text." for n in range(1, 5)]
    assert read_pdf(pages).text.count("Report") == 0


# --- every format: the map holds ----------------------------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFG0123456789", min_size=1, max_size=8)
_PHRASE = st.lists(_WORD, min_size=1, max_size=6).map(" ".join)
_INLINE = st.one_of(_PHRASE, _PHRASE.map(lambda p: f"**{p}**"), _PHRASE.map(lambda p: f"*{p}*"),
                    _PHRASE.map(lambda p: f"`{p}`"), _PHRASE.map(lambda p: f"[{p}](http://x.y/z)"))
_LINE = st.lists(_INLINE, min_size=1, max_size=4).map(" ".join)
_PARA = st.lists(_LINE, min_size=1, max_size=3).map(lambda ls: ". ".join(ls) + ".")
_BLOCK = st.one_of(
    _PHRASE.map(lambda p: f"## {p}"),
    st.lists(_LINE, min_size=1, max_size=3).map(lambda ls: "\n".join(ls) + "."),
    st.tuples(_PHRASE, _PARA).map(lambda t: f"**{t[0]}.** {t[1]}"),
    st.lists(_PARA, min_size=1, max_size=4).map(lambda ps: "\n".join(f"- {p}" for p in ps)),
    st.lists(_PARA, min_size=1, max_size=4).map(
        lambda ps: "\n".join(f"{k + 1}. {p}" for k, p in enumerate(ps))),
    st.lists(st.tuples(_PHRASE, _PHRASE), min_size=1, max_size=3).map(
        lambda rows: "| A | B |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)),
    st.tuples(_WORD, _PARA).map(lambda t: f"{t[0].upper()}X: {t[1]}"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=st.lists(_BLOCK, min_size=1, max_size=8))
def test_every_unit_and_sentence_maps_to_its_source_line(blocks: list[str]) -> None:
    source = "\n\n".join(blocks) + "\n"
    reading = read_markdown(source)
    lines = source.split("\n")
    m = DocumentMap(reading.text, reading.units, reading.locations)
    doc = SourceDocument(doc_id="d.md", title="", format="md", text=reading.text,
                         sections=reading.sections, content_hash="", units=reading.units,
                         locations=reading.locations)
    for u in reading.units:
        text = reading.text[u.start:u.end]
        assert text == text.strip() and text
        assert not re.search(r"\*\*|`|\]\(|^#|\|", text)
        assert first_words_on_line(lines, text, m.place(u.start)[0])
    for r in regions(doc):
        for sp in unit_sentences(reading.text, reading.units, r):
            assert first_words_on_line(lines, reading.text[sp.start:sp.end],
                                       m.place(sp.start)[0], n=1)


# --- the briefings folder ---------------------------------------------------------------------

_MARKUP_EDGE = re.compile(r"^(?:\*|_|#|`|\||>|\[|=|-{2,})|(?:\*|_|`|\||\]|\)\]|={2,})$")
_SEPARATOR_ROW = re.compile(r"\|\s*:?-{3,}")


@pytest.mark.slow  # indexes a whole folder of briefings each: several seconds apiece
@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.parent.name)
def test_briefings_index_quotes_read_like_the_documents(tmp_path: Path, folder: Path) -> None:
    from assistant.build import build_index
    from assistant.index.sqlite import connect_read
    from assistant.index.store import open_index
    from assistant.settings import Settings

    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    index = tmp_path / "index"
    build_index(Settings(corpus_dir=folder, index_dir=index))
    idx = open_index(index)
    try:
        conn = connect_read(idx.generation_dir / "meta.sqlite")
        quotes = [str(r[0]) for r in conn.execute("SELECT body FROM sentence_fts")]
        docs = conn.execute("SELECT doc_id, text, units, locations, sections FROM documents"
                            ).fetchall()
    finally:
        idx.close()
    assert len(quotes) > 300
    for q in quotes:
        assert not _MARKUP_EDGE.search(q.strip()), q
        assert not _SEPARATOR_ROW.search(q), q
    speakers = 0
    for doc_id, text, units, locations, sections in docs:
        source = (folder / doc_id).read_text(encoding="utf-8").split("\n")
        m = DocumentMap(text, [], [tuple(loc) for loc in json.loads(locations)])
        for start, _end, label, _kind in json.loads(units):
            if label:  # a real speaker or lead-in: written on the unit's line, before it
                line = source[m.place(start)[0] - 1]
                assert label in line.replace("**", ""), (doc_id, label, line)
                speakers += 1
        for s in json.loads(sections):
            if s["title"] and not s["title"].startswith("Page "):  # a real heading
                assert any(s["title"] in ln.replace("**", "") for ln in source), s["title"]
                assert not re.search(r" - (?:Chief|Director|President)", s["title"])
    assert speakers >= 20


# --- the chat's passage -------------------------------------------------------------------------

def test_a_quoted_table_row_is_shown_as_a_small_table_under_its_header() -> None:
    from rich.console import Console
    from rich.table import Table

    from assistant.chat.passage import passage_around, section_of
    from assistant.tui.passage import passage_text

    doc = extract(FORMATS / "memo.md")
    row = next(u for u in doc.units if doc.text[u.start:u.end].startswith("Fenby"))
    p = passage_around(doc.doc_id, doc.text, row.start, row.end,
                       section_of(doc.sections, row.start), sections=doc.sections,
                       units=doc.units)
    assert doc.text[p.start:p.end] == p.text and doc.text[p.quote_start:p.quote_end] == \
        "Fenby Storage · East · 100 MW"
    shown = passage_text(p, "reverse")
    assert isinstance(shown, Table)
    console = Console(width=80, record=True, color_system=None)
    console.print(shown)
    lines = [" ".join(ln.split()) for ln in console.export_text().splitlines() if ln.strip()]
    assert lines == ["Project Region Capacity", "Westmoor Solar North 240 MW",
                     "Fenby Storage East 100 MW"]
    assert [r.style for r in shown.rows] == [None, "reverse"]  # the quoted row is marked


def test_a_passage_shows_headings_bold_and_a_paragraph_as_text() -> None:
    from rich.text import Text

    from assistant.chat.passage import passage_around
    from assistant.tui.passage import passage_text

    doc = extract(FORMATS / "memo.md")
    start = doc.text.index("In October")
    p = passage_around(doc.doc_id, doc.text, start, start + 10, None, radius=10_000,
                       sections=doc.sections, units=doc.units)
    shown = passage_text(p, "reverse")
    assert isinstance(shown, Text) and "**" not in shown.plain and "#" not in shown.plain
    bold = [shown.plain[s.start:s.end] for s in shown.spans if s.style == "bold"]
    assert bold == ["Grid connection memo", "Findings", "Projects"]


def _quote_of_two(reading_text: str, units: list[Unit], first: tuple[int, int],
                  second: tuple[int, int], question: str) -> str:
    """The quote the builder makes when the best sentence and the runner-up, its neighbour,
    score alike."""
    import numpy as np

    from assistant.qa.analysis import analyse
    from assistant.qa.candidates import Candidate
    from assistant.qa.conversation import Conversation
    from assistant.qa.lang import load
    from assistant.qa.quote import QuoteBuilder

    class Meta:
        def document_map(self, doc_id: str) -> tuple[list[Unit], list[tuple[int, int, int]]]:
            return units, [(0, 1, 0)]

    class Document:
        meta = Meta()

        def document_slice(self, doc_id: str, start: int, end: int) -> str:
            return reading_text[start:end]

        def neighbours(self, doc_id: str, start: int, end: int
                       ) -> tuple[tuple[int, int, str] | None, tuple[int, int, str] | None]:
            after = next((u for u in units if u.start >= end), None)
            return None, (after.start, after.end, reading_text[after.start:after.end]) \
                if after else None

    def candidate(n: int, span: tuple[int, int]) -> Candidate:
        return Candidate(sentence_id=n, chunk_id=0, doc_id="d", start=span[0], end=span[1],
                         section="", title="", text=reading_text[span[0]:span[1]],
                         vector=np.ones(2, dtype=np.float32), score=1.0)

    a = analyse(question, Conversation(), load("en"))
    span = QuoteBuilder(Document()).build(  # type: ignore[arg-type]
        a, candidate(0, first), candidate(1, second), spread=1.0)
    assert span.text == reading_text[span.start:span.end]
    return span.text


def test_a_quote_never_joins_two_list_items_or_timeline_entries() -> None:
    """The runner-up is the next timeline entry and scores as well: each entry is still
    quoted on its own (the quote of "2 May.\n7. 2 August 2025: ..." read like raw source)."""
    source = ("# Timeline\n\n1. **10 July 2025**: the Code of Practice is published, well behind "
              "the target of 2 May.\n2. **2 August 2025**: obligations for GPAI providers take "
              "effect.\n")
    r = read_markdown(source)
    one, two = r.units
    assert _quote_of_two(r.text, r.units, (one.start, one.end), (two.start, two.end),
                         "When was the Code of Practice published?") == \
        "10 July 2025: the Code of Practice is published, well behind the target of 2 May."


def test_a_short_list_item_is_quoted_alone() -> None:
    """A quote under 40 characters takes the next sentence when it is a fragment, but never
    the next list item ("2 May.\n7." merged two timeline entries)."""
    doc = extract(FORMATS / "memo.md")
    item = next(u for u in doc.units if doc.text[u.start:u.end].startswith("Cluster"))
    assert _quote_of_two(doc.text, doc.units, (item.start, item.end), (item.start, item.end),
                         "What replaces serial studies?") == \
        "Cluster studies replace serial studies."


def test_a_quote_never_joins_two_lines_of_a_list_but_joins_a_wrapped_paragraph() -> None:
    doc = extract(FORMATS / "call-notes.txt")
    jane, sam = doc.units[1], doc.units[2]  # two participants' lines
    assert _quote_of_two(doc.text, doc.units, (jane.start, jane.end), (sam.start, sam.end),
                         "Who is the chief financial officer?") == \
        "Jane Roe - Chief Executive Officer"
    turn = doc.units[4]  # "Output rose 12% in the quarter. The new turbines ran at full…"
    cut = doc.text.index("The new turbines")
    wrapped = "Output rose 12% in the quarter.\nThe new turbines ran at full load"
    text = doc.text[:turn.start] + wrapped + doc.text[turn.start + len(wrapped):]
    assert _quote_of_two(text, doc.units, (turn.start, cut - 1), (cut, turn.end),
                         "How much did output rise?") == text[turn.start:turn.end]


def test_a_question_line_is_quoted_with_the_reply_that_follows_it() -> None:
    """Issue 26: the analyst's question line ("ANALYST: Why does it cost more…?") was quoted
    as the answer to the same question; a question is quoted with its reply, and a reply of
    one word with the sentence that says why."""
    doc = extract(FORMATS / "call-notes.txt")
    question = next(u for u in doc.units if doc.text[u.start:u.end].startswith("Will the"))
    assert _quote_of_two(doc.text, doc.units, (question.start, question.end),
                         (question.start, question.end), "Will the hedging policy change?") == \
        ("Will the hedging policy change?\n\nSam Poe (CFO): No. The company keeps hedging 80% "
         "of next year's output.")


def test_a_question_is_not_joined_to_what_follows_a_separator() -> None:
    r = read_plain("NOTES\n\nANALYST: Any more questions?\n\n---\n\n"
                  "Our view: the guidance looks conservative.\n")
    asked = next(u for u in r.units if r.text[u.start:u.end].startswith("Any more"))
    assert _quote_of_two(r.text, r.units, (asked.start, asked.end), (asked.start, asked.end),
                         "Are there any more questions?") == "Any more questions?"
