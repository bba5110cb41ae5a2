"""Ingest: find the corpus's documents and extract their text and section structure.

Each supported file becomes a ``SourceDocument`` whose ``text`` is what every
offset in the index points into. Plain text and Markdown keep their text
verbatim (newlines normalised); HTML and PDF are reduced to their visible
text by well-kept extractors (selectolax's Lexbor engine: fast, strict HTML5
parsing; pypdf: pure Python, handles encrypted and broken files gracefully).

This module must never follow a symbolic link, never read a file twice for one
document (so a file that changes while it is read is indexed as one version),
and never raise anything but ``UnreadableDocument`` for a bad file. Reading, decoding and
the per-document budgets are ``assistant.source``'s.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from assistant.models import Section, SkippedFile, SourceDocument
from assistant.source import CorpusFile as CorpusFile
from assistant.source import UnreadableDocument as UnreadableDocument
from assistant.source import check_html_nesting, pdf_pages, read_document
from assistant.source import decode_text as decode_text
from assistant.source import looks_binary as looks_binary

Format = Literal["txt", "md", "html", "pdf"]
SUPPORTED_SUFFIXES: dict[str, Format] = {".txt": "txt", ".md": "md", ".markdown": "md",
                                         ".html": "html", ".htm": "html", ".pdf": "pdf"}
UNREADABLE_FOLDER = "cannot read the folder"
"""The reason a sub-folder that cannot be listed is skipped for (its path ends with "/"):
its documents indexed before are kept, not removed."""


def discover(corpus_dir: Path) -> tuple[list[CorpusFile], list[SkippedFile]]:
    """Every supported regular file under ``corpus_dir``, sorted by id; and what was passed over.

    Hidden files and folders are ignored silently; symbolic links are never followed
    (a link may point outside the corpus, or into a loop) and are reported as skipped.
    A sub-folder that cannot be listed is reported as skipped (``UNREADABLE_FOLDER``); the
    corpus folder itself raises the ``OSError``.

    ``os.scandir`` rather than ``os.walk`` and ``pathlib``: each entry's type comes with the
    listing and its one ``lstat`` is the size and time, so a 10,000-file corpus is checked in
    about half the time (~115 ms instead of ~210; every start of the chat, cold ``ask`` and
    ``assistant status`` checks it).
    """
    files: list[CorpusFile] = []
    skipped: list[SkippedFile] = []
    with os.scandir(corpus_dir):  # the corpus folder cannot be listed: the caller says so
        pass
    folders = [(str(corpus_dir), "")]  # a stack, not recursion: any depth of folders
    while folders:
        folder, prefix = folders.pop()
        kept = _discover(corpus_dir, folder, prefix, files, skipped)
        folders += [(d.path, prefix + printable(d.name) + "/") for d in reversed(kept)]
    files.sort(key=lambda f: f.doc_id)
    unique: list[CorpusFile] = []
    for f in files:  # two names the same once made printable: keep the first
        if unique and unique[-1].doc_id == f.doc_id:
            skipped.append(SkippedFile(path=f.doc_id, reason="another file has this name once "
                                       "its unprintable characters are escaped; rename one"))
        else:
            unique.append(f)
    return unique, skipped


def printable(name: str) -> str:
    """A file or folder name as it can be shown on one line, stored and sent as JSON: bytes
    that are not UTF-8 as ``\\xNN``, and control characters and line separators (a line
    break in a name) as their escapes. Other characters stay as they are (a no-break space,
    an emoji joined with zero-width joiners), so such names keep their ids. The file is still
    read by its real name; this is its id."""
    if name.isprintable():
        return name
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch) in _ESCAPED else ch for ch in text)


_ESCAPED = frozenset({"Cc", "Zl", "Zp"})
"""Control characters, line and paragraph separators (undecodable bytes are escaped first)."""


def _discover(root: Path, folder: str, prefix: str, files: list[CorpusFile],
              skipped: list[SkippedFile]) -> list[os.DirEntry[str]]:
    """One folder: its folders' links, then its files, each by name; returns the folders to
    go into, in the order ``os.walk`` takes them (so the skipped files are listed as
    before)."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError as exc:
        if exc.errno != errno.ENOENT:  # a folder removed during the scan is simply gone
            skipped.append(SkippedFile(path=prefix,
                                       reason=f"{UNREADABLE_FOLDER}: {exc.strerror or exc}"))
        return []
    dirs: list[os.DirEntry[str]] = []
    names: list[os.DirEntry[str]] = []
    for e in entries:
        try:
            is_dir = e.is_dir()  # follows a link, as os.walk sorts entries
        except OSError:
            is_dir = False
        (dirs if is_dir else names).append(e)
    kept: list[os.DirEntry[str]] = []
    for d in sorted(dirs, key=lambda e: e.name):
        if d.name.startswith("."):
            continue
        if d.is_symlink():
            skipped.append(SkippedFile(path=prefix + printable(d.name),
                                       reason="symbolic link, not followed"))
            continue
        kept.append(d)
    for e in sorted(names, key=lambda e: e.name):
        name = e.name
        if name.startswith(".") or name == "README.index.md":
            continue
        rel = prefix + printable(name)
        if e.is_symlink():
            skipped.append(SkippedFile(path=rel, reason="symbolic link, not followed"))
            continue
        if os.path.splitext(name)[1].lower() not in SUPPORTED_SUFFIXES:
            skipped.append(SkippedFile(path=rel, reason="unsupported file type"))
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # removed during the scan: gone, not unreadable
                skipped.append(SkippedFile(path=rel, reason=f"cannot read: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            skipped.append(SkippedFile(path=rel, reason="not a regular file"))
            continue
        files.append(CorpusFile(doc_id=rel, path=Path(e.path), size=st.st_size,
                                mtime_ns=st.st_mtime_ns, root=root, device=st.st_dev))
    return kept


def read_raw(file: CorpusFile) -> bytes:
    """The file's bytes, read once (``source.read_document``); the content hash and the
    text both come from them."""
    return read_document(file).raw


def content_hash(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def extract(file: CorpusFile, raw: bytes) -> SourceDocument:
    """Turn a file's bytes into a ``SourceDocument`` (text, title, sections)."""
    fmt: Format = SUPPORTED_SUFFIXES[file.path.suffix.lower()]
    warnings: list[str] = []
    if fmt == "pdf":
        text, sections, title, notes = _extract_pdf(raw)
        warnings.extend(notes)
    else:
        decoded, note = decode_text(raw)
        if note:
            warnings.append(note)
        if fmt == "html":
            check_html_nesting(decoded)
            text, sections, title = _extract_html(decoded)
        elif fmt == "md":
            text = normalise_newlines(decoded)
            sections, title = _markdown_sections(text)
        else:
            text = normalise_newlines(decoded)
            sections, title = plain_text_sections(text)
    if not text.strip():
        raise UnreadableDocument("no text to index")
    return SourceDocument(doc_id=file.doc_id, title=title or file.path.stem, format=fmt,
                          text=text, sections=sections, content_hash=content_hash(raw),
                          warnings=warnings)


# --- text ----------------------------------------------------------------------------------

def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- plain text structure -----------------------------------------------------------------

_UNDERLINE = re.compile(r"^\s*([=\-*~^\"#+_])\1{2,}\s*$")
BULLET = re.compile(r"\s*(?:[-*•‣◦–]|\d{1,3}[.)])\s+")
"""A list-item marker; used with ``match`` (anchored at the position given)."""
_SENTENCE_END = re.compile(r"[.,;:]$")


def is_rule_line(line: str) -> bool:
    """A line of one repeated punctuation character: an underline or a separator."""
    return bool(_UNDERLINE.match(line))


_INNER_SENTENCE_END = re.compile(r"[.!?][\"”’)\]]*\s")
_ENDS_PARAGRAPH = re.compile(r"[.!?:][\"”’)\]]*$")


def _looks_like_heading(line: str, next_line: str | None, prev_line: str | None,
                        blank_before: bool) -> bool:
    """A short capitalised line standing alone: not the first line of a hard-wrapped
    paragraph (no sentence ends inside it, the line before it ends a paragraph, and the
    line after it starts a new sentence or a list)."""
    s = line.strip()
    if not (2 <= len(s) <= 70) or next_line is None or line[:1].isspace():
        return False  # an indented line is code or a quotation, not a heading
    if BULLET.match(line) or _SENTENCE_END.search(s) or "://" in s:
        return False
    if not (s[0].isupper() or s[0].isdigit()) or len(s.split()) > 9:
        return False
    if _INNER_SENTENCE_END.search(s):
        return False
    if prev_line is not None and not blank_before and \
            not _ENDS_PARAGRAPH.search(prev_line.strip()) and not _is_title_like(prev_line):
        return False
    if s.split()[-1].lower() in _CONNECTIVES:  # "… the implementation of" runs on
        return False
    nxt = next_line.strip()
    if BULLET.match(next_line):
        return True
    first_letter = next((ch for ch in nxt if ch.isalpha()), "")
    return len(nxt) > len(s) and not first_letter.islower()


_CONNECTIVES = frozenset("""
a an and as at by for from in into of on or than that the to which with without
""".split())  # noqa: SIM905 - a word list reads best as text


def _is_title_like(line: str) -> bool:
    s = line.strip()
    return bool(s) and len(s) <= 200 and not _SENTENCE_END.search(s) and s[:1].isupper()


def plain_text_sections(text: str) -> tuple[list[Section], str]:
    """Title (first non-blank line) and headings of a plain-text document.

    A heading is a line underlined with a repeated punctuation character (reST style),
    or a short capitalised line with no closing punctuation followed by a longer line
    or a bullet list — never a list of known heading names.
    """
    lines = text.split("\n")
    starts: list[int] = []
    pos = 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    title = ""
    heads: list[tuple[int, int, str]] = []  # (start, level, title)
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    for k, i in enumerate(nonblank):
        line = lines[i]
        nxt_i = nonblank[k + 1] if k + 1 < len(nonblank) else None
        nxt = lines[nxt_i] if nxt_i is not None else None
        if not title and len(line.strip()) <= 200 and not is_rule_line(line):
            title = line.strip()
            # A first line that ends a sentence, or runs on into the next, is prose that
            # names the document, not a heading: it stays content to quote.
            if nxt_i == i + 1 and nxt is not None and nxt.lstrip()[:1].islower():
                continue
            if not _SENTENCE_END.search(title):
                heads.append((starts[i], 0, title))
                continue
        if is_rule_line(line):
            continue
        if nxt is not None and nxt_i == i + 1 and is_rule_line(nxt) and len(line.strip()) <= 120:
            heads.append((starts[i], 1, line.strip()))
        elif _looks_like_heading(line, nxt, lines[nonblank[k - 1]] if k else None,
                                 k > 0 and nonblank[k - 1] < i - 1):
            heads.append((starts[i], 2, line.strip()))
    return _sections_from_heads(heads, len(text)), title


def _sections_from_heads(heads: list[tuple[int, int, str]], length: int) -> list[Section]:
    sections = []
    for j, (start, level, name) in enumerate(heads):
        end = heads[j + 1][0] if j + 1 < len(heads) else length
        sections.append(Section(title=name, level=level, start=start, end=end))
    return sections


def _markdown_sections(text: str) -> tuple[list[Section], str]:
    from markdown_it import MarkdownIt  # ships with rich; ~20 ms

    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    heads: list[tuple[int, int, str]] = []
    tokens = MarkdownIt("commonmark").parse(text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map is not None:
            inline = tokens[i + 1]
            heads.append((starts[tok.map[0]], int(tok.tag[1:]), inline.content.strip()))
    title = next((h[2] for h in heads if h[1] == 1), "")
    if not title:
        title = next((ln.strip() for ln in lines if ln.strip()), "")[:200]
    return _sections_from_heads(heads, len(text)), title


# --- HTML ---------------------------------------------------------------------------------

_BLOCK_TAGS = {"p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
               "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "td", "th", "blockquote",
               "pre", "br", "hr", "figure", "figcaption", "form", "h1", "h2", "h3", "h4", "h5",
               "h6", "address", "details", "summary"}
_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "head", "iframe", "object"]
_CHROME = ("nav, [role=navigation], [role=search], [role=contentinfo], [aria-hidden=true], "
           "footer")
"""Page furniture, not prose: menus, search boxes, the site footer ("© 2025 Example ·
Privacy · Contact"), what is hidden from screen readers. A footer inside an article or
section ("Filed under: export controls") belongs to it and is kept."""
_CONTENT_TAGS = {"article", "main", "section"}
_WS = re.compile(r"\s+")


def _inside(node: Any, tags: set[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _extract_html(html: str) -> tuple[str, list[Section], str]:
    from selectolax.lexbor import LexborHTMLParser  # ~10 ms

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _WS.sub(" ", title_node.text()).strip() if title_node else ""
    for tag in _DROP_TAGS:
        for node in tree.css(tag):
            node.decompose()
    for node in tree.css(_CHROME):
        if node.tag != "footer" or not _inside(node, _CONTENT_TAGS):
            node.decompose()
    root = tree.body or tree.root
    out = io.StringIO()
    heads: list[tuple[int, int, str]] = []
    line: list[str] = []
    length = 0

    def flush() -> None:
        nonlocal length
        s = _WS.sub(" ", "".join(line)).strip()
        line.clear()
        if s:
            out.write(s + "\n")
            length += len(s) + 1

    if root is not None:
        stack = [root]
        while stack:
            node = stack.pop()
            tag = node.tag or ""
            if tag == "-text":
                line.append(node.text_content or "")
                continue
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                flush()
                name = _WS.sub(" ", node.text(deep=True)).strip()
                if name:
                    heads.append((length, int(tag[1]), name))
                    line.append(name)
                    flush()
                continue
            if tag in _BLOCK_TAGS:
                flush()
            children = list(node.iter(include_text=True))
            stack.extend(reversed(children))
        flush()
    text = out.getvalue()
    if not title:
        title = next((h[2] for h in heads), "")
    if heads and heads[0][0] > 0:
        heads.insert(0, (0, 0, title))
    return text, _sections_from_heads(heads, len(text)), title


# --- PDF ----------------------------------------------------------------------------------

def _extract_pdf(raw: bytes) -> tuple[str, list[Section], str, list[str]]:
    pdf = pdf_pages(raw)  # the page and content budgets are checked there
    meta_title = pdf.title
    pages = drop_page_furniture([normalise_newlines(p) for p in pdf.pages])
    out = io.StringIO()
    heads: list[tuple[int, int, str]] = []
    length = 0
    for n, page in enumerate(pages, start=1):
        page = page.strip("\n")
        if not page.strip():
            continue
        heads.append((length, 1, f"Page {n}"))
        # Headings inside the page, found by shape as in plain text, so a heading is not
        # glued to the first sentence under it and chunks carry it as their section.
        inner, _ = plain_text_sections(page)
        heads.extend((length + sec.start, 2, sec.title) for sec in inner)
        out.write(page + "\n\n")
        length += len(page) + 2
    text = out.getvalue()
    title = meta_title.strip() or next((ln.strip() for ln in text.split("\n") if ln.strip()), "")
    return text, _sections_from_heads(heads, len(text)), title[:200], pdf.warnings


_PAGE_NUMBER = re.compile(r"(?i)^\W*(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\W*$")


def drop_page_furniture(pages: list[str]) -> list[str]:
    """Pages without their running headers and footers: a line among the first or last two of
    at least half the pages (three or more), the same but for its numbers ("Chapter 3:
    Utilities 6"), and bare page numbers ("6", "Page 6 of 12") at a page's top or bottom."""
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", " ".join(line.split())).casefold()

    def edges(page: str) -> list[int]:
        lines = page.split("\n")
        filled = [i for i, ln in enumerate(lines) if ln.strip()]
        return sorted(set(filled[:2] + filled[-2:]))

    counts: dict[str, int] = {}
    for page in pages:
        lines = page.split("\n")
        for k in {key(lines[i]) for i in edges(page)}:
            counts[k] = counts.get(k, 0) + 1
    filled_pages = sum(1 for p in pages if p.strip())
    repeated = {k for k, n in counts.items() if filled_pages >= 3 and n >= max(3, filled_pages / 2)}
    out = []
    for page in pages:
        lines = page.split("\n")
        drop = {i for i in edges(page)
                if key(lines[i]) in repeated or _PAGE_NUMBER.match(lines[i].strip())}
        out.append("\n".join(ln for i, ln in enumerate(lines) if i not in drop))
    return out


def iter_lines_with_offsets(text: str, start: int = 0, end: int | None = None
                            ) -> Iterator[tuple[int, str]]:
    """(offset, line) for each line of ``text[start:end]``, without the newline."""
    end = len(text) if end is None else end
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        if nl == -1:
            nl = end
        yield pos, text[pos:nl]
        pos = nl + 1
