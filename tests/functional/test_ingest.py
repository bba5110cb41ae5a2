"""Ingest: documents found, decoded and given structure (title, sections, bullets) in general.

Fixtures in tests/data/ingest/ are small documents of each format with headings other
than the briefing's, so that structure is recognised by its form, never by a list of names.
"""

from __future__ import annotations

import codecs
import os
import shutil
from pathlib import Path

import pytest
from helpers.pdf import make_pdf

from assistant import ingest
from assistant.formats import plain
from assistant.models import SourceDocument

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"


def extract_bytes(raw: bytes, name: str) -> SourceDocument:
    return ingest.extract(ingest.CorpusFile(doc_id=name, path=Path(name), size=len(raw),
                                            mtime_ns=0), raw)


def extract_file(path: Path, base: Path = DATA) -> SourceDocument:
    f = ingest.CorpusFile(doc_id=path.relative_to(base).as_posix(), path=path,
                          size=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns)
    return ingest.extract(f, ingest.read_raw(f))


def section_titles(doc: SourceDocument) -> list[tuple[int, str]]:
    return [(s.level, s.title) for s in doc.sections]


def assert_sections_tile_the_text(doc: SourceDocument) -> None:
    """Sections are in order, do not overlap, and each starts where its heading is."""
    prev_end = 0
    for s in doc.sections:
        assert prev_end <= s.start <= s.end <= len(doc.text)
        prev_end = s.end
    if doc.sections:
        assert doc.sections[-1].end == len(doc.text)


# --- the briefing -----------------------------------------------------------------------------

def test_briefing_title_sections_and_text() -> None:
    doc = extract_file(BRIEFING, BRIEFING.parent)
    raw = BRIEFING.read_bytes()
    assert doc.doc_id == "nvidia-h200-china.txt" and doc.format == "txt"
    assert doc.text == raw.decode("utf-8")  # plain text is kept verbatim: offsets are exact
    assert doc.title == ("Letting Nvidia sell H200s to China is closing the door after the "
                         "horse has bolted")
    assert [t for _, t in section_titles(doc)][1:] == [
        "Summary", "Key Points", "Context and relevance", "Why should I read this?",
        "Author style", "Source"]
    for s in doc.sections:
        assert doc.text[s.start:].startswith(s.title + "\n")
    assert_sections_tile_the_text(doc)
    assert doc.warnings == []


def test_bullets_are_never_headings() -> None:
    text = ("Notes\nFindings\n- Short\n- A much longer bullet line follows the short one.\n"
            "* Star item\nA longer closing line of ordinary prose, ending here.\n")
    doc = extract_bytes(text.encode(), "notes.txt")
    assert [t for _, t in section_titles(doc)] == ["Notes", "Findings"]
    assert plain.BULLET.match("- Cell prices fell.") and plain.BULLET.match("• x")
    assert plain.BULLET.match("12) twelfth") and not plain.BULLET.match("-minus sign")


# --- other formats and headings ---------------------------------------------------------------

def test_plain_text_with_other_headings() -> None:
    doc = extract_file(DATA / "grid-outlook.txt")
    assert doc.title == "Grid storage outlook for 2026"
    assert section_titles(doc) == [(0, "Grid storage outlook for 2026"), (2, "Background"),
                                   (2, "What changed"), (2, "Risks to watch"), (2, "Outlook")]
    assert_sections_tile_the_text(doc)


def test_rest_underlined_headings() -> None:
    doc = extract_file(DATA / "release-notes.txt")
    assert doc.title == "Release Notes"
    assert [t for _, t in section_titles(doc)] == ["Release Notes", "Installation",
                                                    "Known issues"]
    assert all(lvl == 1 for lvl, _ in section_titles(doc)[1:])
    assert_sections_tile_the_text(doc)


def test_markdown_headings() -> None:
    doc = extract_file(DATA / "market-report.md")
    assert doc.format == "md" and "#" not in doc.text and "---" not in doc.text  # rendered
    assert doc.title == "Semiconductor Market Report"
    assert section_titles(doc) == [(1, "Semiconductor Market Report"), (2, "Supply"),
                                   (3, "Equipment"), (2, "Demand")]
    assert doc.text[doc.sections[2].start:].startswith("Equipment\n")
    # the file's hard line break inside a paragraph is a space of the rendered text
    assert "quarter on quarter. Most new capacity" in doc.text
    assert_sections_tile_the_text(doc)


def test_html_headings_and_visible_text_only() -> None:
    doc = extract_file(DATA / "chip-policy.html")
    assert doc.format == "html" and doc.title == "Chip Policy Explained"
    assert [(lvl, t) for lvl, t in section_titles(doc) if lvl] == [
        (1, "Chip Policy Explained"), (2, "Who is affected"), (3, "Exemptions")]
    for secret in ("SECRET", "tracking", "font-family", "console.log", "<", "&amp;"):
        assert secret not in doc.text
    assert "Export rules changed twice in 2024 & again in 2025." in doc.text
    items = [doc.text[u.start:u.end] for u in doc.units if u.kind == "item"]
    assert items == ["Makers of high-end accelerators.", "Cloud providers renting them abroad."]
    for s in doc.sections[1:]:
        assert doc.text[s.start:].startswith(s.title + "\n")
    assert_sections_tile_the_text(doc)


def test_html_page_furniture_is_not_indexed() -> None:
    """Menus, search boxes, breadcrumbs, hidden icons, the site footer and the aside of
    related links are not the article; its paragraphs are."""
    doc = extract_file(DATA / "news-page.html")
    for chrome in ("MENU-", "SEARCH-", "BREADCRUMB-", "ICON-", "FOOTER-", "Huawei", "Related"):
        assert chrome not in doc.text
    assert "Washington will let Nvidia ship H200 GPUs to approved buyers in China." in doc.text
    assert "A quarter of the revenue goes to the US Treasury." in doc.text
    assert [t for lvl, t in section_titles(doc) if lvl] == ["H200 exports resume"]
    assert_sections_tile_the_text(doc)


def test_pdf_pages_are_sections() -> None:
    raw = make_pdf([["Quarterly Chip Report", "Exports fell by 25% in the U.S. market."],
                    [], ["Outlook", "Capacity in Arizona will double by 2027."]],
                   title="Chip Report Q3")
    doc = extract_bytes(raw, "q3.pdf")
    assert doc.format == "pdf" and doc.title == "Chip Report Q3"
    pages = [s for s in doc.sections if s.level == 1]
    assert [s.title for s in pages] == ["Page 1", "Page 3"]  # the blank page: none
    page1 = doc.text[pages[0].start:pages[1].start]
    page3 = doc.text[pages[1].start:]
    assert "Exports fell by 25% in the U.S. market." in page1 and "Arizona" not in page1
    assert "Capacity in Arizona will double by 2027." in page3
    assert_sections_tile_the_text(doc)
    untitled = extract_bytes(make_pdf([["First line names it", "Body text."]]), "x.pdf")
    assert untitled.title == "First line names it"


def test_pdf_running_headers_footers_and_page_numbers_are_dropped() -> None:
    """Issue 14, item 7: "Chapter 3: Utilities 6" on every page is not text to quote, and a
    heading inside a page is a section, not the start of the first sentence under it."""
    topics = [("Parking", "The new building has 40 spaces for bicycles."),
              ("Lighting", "Every office has daylight sensors."),
              ("Heating", "A heat pump warms the ground floor."),
              ("Water", "Rain water flushes the toilets.")]
    body = [[f"Chapter 3: Utilities {n}", head, sentence, f"More about {head.lower()} follows.",
             f"{n}"] for n, (head, sentence) in enumerate(topics, start=4)]
    doc = extract_bytes(make_pdf(body), "guide.pdf")
    assert "Chapter 3" not in doc.text
    assert not any(line.strip().isdigit() for line in doc.text.split("\n"))
    assert "The new building has 40 spaces for bicycles." in doc.text
    headings = [s.title for s in doc.sections if s.level == 2]
    assert headings == [head for head, _ in topics]
    from assistant.chunk import blocks, regions, sentences

    firsts = [doc.text[sp.start:sp.end] for region in regions(doc)
              for b in blocks(doc.text, region) for sp in sentences(doc.text, *b)]
    assert "The new building has 40 spaces for bicycles." in firsts
    assert not any(s.startswith(("Parking", "Chapter")) for s in firsts), firsts
    # two pages are too few to call a line "running": a real first line is kept
    two = extract_bytes(make_pdf([["Intro", "Body one."], ["Intro", "Body two."]]), "t.pdf")
    assert two.text.count("Intro") == 2


def test_the_fixture_pdf_reads() -> None:
    doc = extract_file(DATA / "chip-report.pdf")
    assert doc.title == "Quarterly Chip Report"
    assert "Foundry capacity in Arizona will double by 2027." in doc.text


@pytest.mark.parametrize("raw", [b"%PDF-1.4\nthis is not a pdf at all", b"",
                                 make_pdf([["x"]])[:200]], ids=["garbage", "empty", "truncated"])
def test_a_broken_pdf_is_unreadable_not_a_crash(raw: bytes) -> None:
    with pytest.raises(ingest.UnreadableDocument):
        extract_bytes(raw, "broken.pdf")


def test_a_first_line_that_is_a_sentence_stays_content() -> None:
    """A document with no title line must not lose its first sentence to the title."""
    doc = extract_bytes(b"The board met on Monday.\nIt approved the budget.\n", "minutes.txt")
    assert doc.title == "The board met on Monday."
    assert all(s.level != 0 for s in doc.sections)
    wrapped = extract_bytes(b"The board met on Monday to discuss\nthe budget for next year.\n",
                            "wrapped.txt")
    assert all(s.level != 0 for s in wrapped.sections)


# --- decoding ---------------------------------------------------------------------------------

def test_non_utf8_text_is_read_as_windows_1252_with_a_note() -> None:
    doc = extract_file(DATA / "cafe-cp1252.txt")
    assert "The café sold crème brûlée for €10 – a bargain." in doc.text
    assert doc.warnings and "not UTF-8" in doc.warnings[0]


@pytest.mark.parametrize("codec,bom", [("utf-16-le", codecs.BOM_UTF16_LE),
                                       ("utf-16-be", codecs.BOM_UTF16_BE),
                                       ("utf-8", codecs.BOM_UTF8)])
def test_byte_order_marks(codec: str, bom: bytes) -> None:
    doc = extract_bytes(bom + "Título\nEl café — 25% más.\n".encode(codec), "bom.txt")
    assert doc.title == "Título" and "El café — 25% más." in doc.text
    assert not doc.text.startswith("\ufeff")


def test_crlf_and_cr_newlines_are_normalised() -> None:
    doc = extract_bytes(b"Title\r\nBody line one.\r\nBody line two.\rEnd.\r\n", "crlf.txt")
    assert "\r" not in doc.text and doc.text == "Title\nBody line one.\nBody line two.\nEnd.\n"


@pytest.mark.parametrize("raw,why", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
    ((bytes(range(1, 9)) + bytes(range(0x80, 0x100))) * 20, "binary"),  # no NUL, not UTF-8
    (b"", "no text"),
    (b"  \n\n\t \n", "no text"),
], ids=["png", "control-bytes", "empty", "blank"])
def test_binary_and_empty_files_are_unreadable(raw: bytes, why: str) -> None:
    with pytest.raises(ingest.UnreadableDocument, match=why):
        extract_bytes(raw, "bad.txt")


# --- discovery, ids and hashes ----------------------------------------------------------------

def _corpus(tmp: Path) -> Path:
    corpus = tmp / "corpus"
    (corpus / "policy" / "2025").mkdir(parents=True)
    (corpus / ".hidden").mkdir()
    shutil.copy(BRIEFING, corpus / BRIEFING.name)
    shutil.copy(DATA / "market-report.md", corpus / "policy" / "market-report.md")
    shutil.copy(DATA / "chip-policy.html", corpus / "policy" / "2025" / "Chip Policy.HTML")
    (corpus / ".hidden" / "secret.txt").write_text("Hidden.\n")
    (corpus / ".draft.txt").write_text("Hidden too.\n")
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")
    (corpus / "link.txt").symlink_to(corpus / BRIEFING.name)
    return corpus


def test_discover_gives_stable_ids_relative_to_the_corpus(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    files, skipped = ingest.discover(corpus)
    ids = [f.doc_id for f in files]
    assert ids == ["nvidia-h200-china.txt", "policy/2025/Chip Policy.HTML",
                   "policy/market-report.md"]
    assert {s.path: s.reason for s in skipped} == {
        "notes.docx": "unsupported file type", "link.txt": "symbolic link, not followed"}
    # The same corpus elsewhere (moved, or checked out on another machine): the same ids.
    moved = tmp_path / "elsewhere"
    shutil.copytree(corpus, moved, symlinks=True)
    assert [f.doc_id for f in ingest.discover(moved)[0]] == ids
    assert [f.doc_id for f in ingest.discover(corpus)[0]] == ids


@pytest.mark.parametrize(("name", "doc_id"), [
    ("café.txt", "café.txt"),
    ("nb\u00a0space.txt", "nb\u00a0space.txt"),  # kept: no-break spaces, joined emoji
    ("\U0001F468\u200d\U0001F469.txt", "\U0001F468\u200d\U0001F469.txt"),
    (os.fsdecode(b"caf\xe9.txt"), "caf\\xe9.txt"),  # escaped: not UTF-8, line breaks, controls
    ("line\nbreak.txt", "line\\nbreak.txt"),
    ("tab\there.txt", "tab\\there.txt"),
    ("para\u2029graph.txt", "para\\u2029graph.txt"),
])
def test_document_ids_escape_only_what_cannot_be_stored_or_shown_on_one_line(
        tmp_path: Path, name: str, doc_id: str) -> None:
    (tmp_path / name).write_text("Some text.\n", encoding="utf-8")
    files, skipped = ingest.discover(tmp_path)
    assert [f.doc_id for f in files] == [doc_id] and not skipped
    assert ingest.read_raw(files[0]) == b"Some text.\n"  # read by its real name


def test_two_names_the_same_once_escaped_keep_the_first_and_skip_the_other(
        tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / os.fsdecode(b"caf\xe9.txt")).write_text("Undecodable name.\n")
    (corpus / "caf\\xe9.txt").write_text("A backslash in the name.\n")
    files, skipped = ingest.discover(corpus)
    assert [f.doc_id for f in files] == ["caf\\xe9.txt"]
    assert [s.path for s in skipped] == ["caf\\xe9.txt"]
    assert "rename one" in skipped[0].reason


def test_content_hash_follows_the_bytes(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    files = {f.doc_id: f for f in ingest.discover(corpus)[0]}
    f = files["nvidia-h200-china.txt"]
    doc = ingest.extract(f, ingest.read_raw(f))
    assert doc.content_hash == ingest.content_hash(BRIEFING.read_bytes())
    assert len(doc.content_hash) >= 32
    # Touching a file does not change its hash; one changed byte does.
    os.utime(f.path, ns=(1, 1))
    assert ingest.extract(f, ingest.read_raw(f)).content_hash == doc.content_hash
    f.path.write_bytes(BRIEFING.read_bytes().replace(b"25%", b"26%"))
    f2 = next(x for x in ingest.discover(corpus)[0] if x.doc_id == f.doc_id)
    assert ingest.extract(f2, ingest.read_raw(f2)).content_hash != doc.content_hash


def test_extracted_text_is_stored_in_the_index(briefing_index: Path) -> None:
    """Citations are shown and verified from the index alone, without the source file."""
    from assistant.index.store import open_index

    doc = extract_file(BRIEFING, BRIEFING.parent)
    idx = open_index(briefing_index)
    try:
        assert idx.document_text(doc.doc_id) == doc.text
        assert idx.document_sections(doc.doc_id) == doc.sections
        rec = idx.manifest.documents[doc.doc_id]
        assert rec.content_hash == doc.content_hash and rec.title == doc.title
        rows = idx.conn.execute("SELECT s.start, s.end, f.body FROM sentences s JOIN "
                                "sentence_fts f ON f.rowid = s.id WHERE s.doc_id=?",
                                (doc.doc_id,)).fetchall()
        assert len(rows) == idx.manifest.sentence_count == 19
        for start, end, body in rows:
            assert doc.text[start:end] == body
    finally:
        idx.close()
