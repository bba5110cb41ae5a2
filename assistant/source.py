"""Read a scanned corpus file safely: return its bytes and text, or a one-line skip reason.

The scan (``ingest.discover``) decides which files are documents; this module reads each of
them once, by what the scan saw, within fixed budgets, so that no file can make the build
read outside the corpus, hang, or work without end:

- **No swapped reads.** A file is opened folder by folder from the corpus root with
  ``O_NOFOLLOW`` (a link put in place of a file or folder after the scan is refused, not
  followed out of the corpus), ``O_NONBLOCK`` (a FIFO cannot block the build, and with it the
  build lock), and ``fstat`` of the open file must say a regular file on the scan's file
  system. The bytes come from that one open file, at most ``max_bytes`` of them: a file that
  grows, or ``/dev/zero``, cannot exhaust memory.
- **Bounded work.** Each format has a budget checked before the costly step: the size of a
  text, HTML nesting depth (the HTML5 parser's work grows with the square of the depth), a
  PDF's page count and decompressed content size (a small PDF can hold a content stream of
  many megabytes that every page reuses; pypdf's text extraction slows more than linearly
  with a page's content). The budgets count work, not seconds, so one corpus is always
  indexed the same way on a fast or a busy machine.
- **Decoding that keeps the text.** Bytes that are not UTF-8 are decoded where they are
  (a replacement character, or Windows-1252 for the lines of a legacy file), never by
  re-reading the whole file in another encoding.

Everything here raises ``UnreadableDocument`` (with the reason) and nothing else for a bad
file; the build reports the reason as ``warning: skipped NAME: REASON`` and goes on.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024
MAX_TEXT_BYTES = 64 * MB
"""A text, Markdown or HTML file larger than this is skipped: its text, lines, sentences and
chunks are held in memory together (about ten times the file's size at the peak)."""
MAX_PDF_BYTES = 256 * MB
"""PDFs hold images and fonts besides their text: their budgets are pages and content."""
MAX_HTML_DEPTH = 1000
"""Elements nested deeper than this are no web page (browsers stop nesting at 512)."""
MAX_PDF_PAGES = 5000
MAX_PDF_CONTENT_BYTES = 64 * MB
"""Decompressed page content (text and drawing operators) over all pages; a stream that
several pages share counts once per page, as it is extracted once per page."""
MAX_PDF_PAGE_CONTENT_BYTES = 4 * MB
"""One page's decompressed content: above it, the page is left out with a warning (a page of
vector drawing holds little text, and pypdf's extraction of it grows faster than its size)."""


class UnreadableDocument(Exception):
    """A file that cannot be indexed; the message says why, for the build's warnings."""


@dataclass(frozen=True)
class CorpusFile:
    """A document as the scan saw it: its id, where it is, its size and time, and (from the
    scan's ``lstat``) the corpus folder it was found under and its file system."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int
    root: Path | None = None
    """The corpus folder; the file is opened from it folder by folder, following no link.
    None: opened by its path, following no link at its last component only."""
    device: int | None = None


@dataclass(frozen=True)
class FileContents:
    """The bytes of one read of a file, and the size and time of the version read."""

    raw: bytes
    size: int
    mtime_ns: int
    torn: bool
    """The file changed while it was read: the bytes may mix two versions."""


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))


def max_bytes(file: CorpusFile) -> int:
    return MAX_PDF_BYTES if file.path.suffix.lower() == ".pdf" else MAX_TEXT_BYTES


def read_document(file: CorpusFile) -> FileContents:
    """The file's bytes, read once from one open file that is the regular file the scan saw
    (or its replacement at the same place in the corpus, reached through no link)."""
    limit = max_bytes(file)
    too_large = f"larger than {limit // MB} MB; split it into smaller files"
    if file.size > limit:
        raise UnreadableDocument(too_large)
    try:
        fd = _open_in_corpus(file)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and file.root is not None):
            raise UnreadableDocument("replaced by a symbolic link after the scan; not "
                                     "followed") from exc
        raise UnreadableDocument(f"cannot read: {exc.strerror or exc}") from exc
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise UnreadableDocument(f"not a regular file ({_kind(before.st_mode)})")
        if file.device is not None and before.st_dev != file.device:
            raise UnreadableDocument("moved to another file system after the scan")
        if before.st_size > limit:
            raise UnreadableDocument(too_large)
        raw = _read_capped(fd, limit, before.st_size)
        if len(raw) > limit:
            raise UnreadableDocument(too_large)
        after = os.fstat(fd)
    except OSError as exc:
        raise UnreadableDocument(f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    torn = ((before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns)
            or len(raw) != after.st_size)
    return FileContents(raw=raw, size=after.st_size, mtime_ns=after.st_mtime_ns, torn=torn)


def _open_in_corpus(file: CorpusFile) -> int:
    """Open ``file`` for reading without following any link inside the corpus: each folder
    from the root with ``O_NOFOLLOW | O_DIRECTORY``, then the file relative to the last."""
    if file.root is None:
        return os.open(file.path, _OPEN_FLAGS)
    *folders, name = file.path.relative_to(file.root).parts
    fd = os.open(file.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for folder in folders:
            inner = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        # lstat first, so that a device or FIFO put in its place is not even opened
        if not stat.S_ISREG(mode := os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            if stat.S_ISLNK(mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
            raise UnreadableDocument(f"not a regular file ({_kind(mode)})")
        return os.open(name, _OPEN_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def _read_capped(fd: int, limit: int, expected: int) -> bytes:
    """At most ``limit + 1`` bytes (one more than allowed says the file is too large). A
    regular file comes in one read of its size, kept as it is (no copy of a large file)."""
    blocks: list[bytes] = []
    total, want = 0, expected + 1
    while total <= limit:
        block = os.read(fd, min(max(want, 65536), limit + 1 - total))
        if not block:
            break
        blocks.append(block)
        total += len(block)
        want = 4 * MB
    return blocks[0] if len(blocks) == 1 else b"".join(blocks)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"


# --- text decoding ------------------------------------------------------------------------

_BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
"""C0 control bytes that text does not hold (tab, line breaks, form feed and escape aside)."""


def looks_binary(head: bytes) -> bool:
    """The first bytes of a file are not text: more than one byte in 200 (and more than 8) is
    a control character such as NUL. Text may hold a few (a stray NUL from a bad copy, a
    damaged line in a batch file); an executable, an image or a compressed file holds
    thousands (about one byte in ten of random data)."""
    return len(_BINARY_CONTROL.findall(head)) > max(8, len(head) // 200)


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
         (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode_text(raw: bytes) -> tuple[str, str | None]:
    """Decode bytes as UTF-8 (or a byte-order mark's encoding); refuse binary.

    Invalid bytes are decoded where they are, never by reading the whole file again in
    another encoding: in a file that is UTF-8 elsewhere (more valid multi-byte characters
    than invalid bytes) each invalid byte becomes U+FFFD; in a legacy file, each line that is
    not UTF-8 is read as Windows-1252. A NUL becomes U+FFFD (SQLite's text search ends a
    value at it). Returns the text and, when bytes were not UTF-8, a note saying how."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            note = None if encoding == "utf-8" else f"read as {encoding.upper()} (byte-order mark)"
            text, bad = _decode(raw[len(bom):], encoding)
            return _without_nul(text), _join(note, bad)
    head = raw[:65536]
    if b"\x00" in head and (guess := _utf16_without_bom(head)):
        text, bad = _decode(raw, guess)
        return _without_nul(text), _join(f"read as {guess.upper()} (no byte-order mark)", bad)
    if looks_binary(head):
        raise UnreadableDocument("binary file, not text")
    try:
        return _without_nul(raw.decode("utf-8")), None
    except UnicodeDecodeError:
        pass
    replaced = raw.decode("utf-8", "replace")
    invalid = replaced.count("\ufffd") - raw.count("\ufffd".encode())
    valid = sum(1 for ch in replaced if ord(ch) > 0x7F) - invalid
    if valid >= invalid:
        return _without_nul(replaced), (f"{invalid} byte(s) are not UTF-8; shown as "
                                        "\ufffd where they are")
    out, legacy, utf8 = [], 0, 0
    for line in raw.splitlines(keepends=True):
        try:
            out.append(line.decode("utf-8"))
            utf8 += not line.isascii()
        except UnicodeDecodeError:
            out.append(line.decode("cp1252", "latin1_for_undefined"))
            legacy += 1
    return _without_nul("".join(out)), (
        f"{legacy} line(s) not UTF-8; read as Windows-1252 (Latin-1)" if utf8
        else "not UTF-8; read as Windows-1252 (Latin-1)")


def _latin1_for_undefined(exc: UnicodeError) -> tuple[str, int]:
    """The five bytes Windows-1252 leaves undefined, as Latin-1 (their C1 code points)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start:exc.end].decode("latin-1"), exc.end


codecs.register_error("latin1_for_undefined", _latin1_for_undefined)


def _decode(raw: bytes, encoding: str) -> tuple[str, int]:
    """Text in ``encoding``, each invalid sequence a U+FFFD where it is; and how many."""
    try:
        return raw.decode(encoding), 0
    except UnicodeDecodeError:
        text = raw.decode(encoding, "replace")
        return text, text.count("\ufffd")


def _join(note: str | None, invalid: int) -> str | None:
    if not invalid:
        return note
    bad = f"{invalid} invalid byte sequence(s) shown as \ufffd"
    return f"{note}; {bad}" if note else bad


def _without_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _utf16_without_bom(head: bytes) -> str | None:
    even, odd = head[0::2], head[1::2]
    if not even or not odd:
        return None
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


# --- HTML -----------------------------------------------------------------------------------

_MARKUP = re.compile(r"<(?:!--|/?[A-Za-z][^\s/>]*)")
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr", "basefont", "bgsound", "frame", "keygen",
                   "image", "isindex"})
_IMPLIED_END = frozenset({"p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th",
                          "thead", "tbody", "tfoot", "rb", "rt", "rtc", "rp", "colgroup",
                          "caption"})
"""Elements whose end tag may be left out (the next one closes them): they do not nest."""
_FOREIGN = ("svg", "math")
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed",
                       "noframes", "plaintext"})


def check_html_nesting(html: str) -> None:
    """Refuse HTML whose elements nest deeper than ``MAX_HTML_DEPTH``, before it is parsed.

    One pass over the tags (linear in the size): elements that must be closed count one
    level each until their end tag; void elements, elements closed by the next of their kind
    (``<p>``, ``<li>``) and the insides of scripts, styles and comments do not count."""
    depth = 0
    open_tags: list[str] = []
    counts: dict[str, int] = {}
    pos = 0
    while (m := _MARKUP.search(html, pos)) is not None:
        token = m.group()
        if token == "<!--":
            end = html.find("-->", m.end())
            pos = len(html) if end < 0 else end + 3
            continue
        pos = m.end()
        closing = token[1] == "/"
        name = (token[2:] if closing else token[1:]).lower()
        if name in _VOID or name in _IMPLIED_END:
            continue
        if closing:
            if counts.get(name):
                while open_tags:
                    top = open_tags.pop()
                    counts[top] -= 1
                    if top == name:
                        break
                depth = len(open_tags)
            continue
        gt = html.find(">", pos)
        if gt < 0:
            break
        pos = gt + 1
        if html[gt - 1] == "/" and (name in _FOREIGN or any(counts.get(f) for f in _FOREIGN)):
            continue  # <path/> in SVG closes itself (a <div/> does not: HTML ignores the /)
        if name in _RAW_TEXT:
            closer = re.compile(f"</{name}", re.IGNORECASE).search(html, pos)
            pos = len(html) if closer is None else closer.start()
            continue
        open_tags.append(name)
        counts[name] = counts.get(name, 0) + 1
        depth = len(open_tags)
        if depth > MAX_HTML_DEPTH:
            raise UnreadableDocument(f"HTML nested more than {MAX_HTML_DEPTH} elements deep; "
                                     "not a web page that can be read in bounded time")


# --- PDF ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PdfText:
    """A PDF's text page by page (an empty string for a page left out), its metadata title,
    and what the reader should be told (pages left out, and why)."""

    pages: list[str]
    title: str
    warnings: list[str] = field(default_factory=list)


def pdf_pages(raw: bytes) -> PdfText:
    """The text of each page of a PDF, within the page and content budgets: the sizes are
    checked from the decompressed content streams (pypdf keeps them decoded, so the text
    extraction that follows does not decompress them again) before any text is extracted."""
    import logging

    from pypdf import PdfReader  # only when a PDF is read

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("encrypted PDF (needs a password)")
        count = len(reader.pages)
        if count > MAX_PDF_PAGES:
            raise UnreadableDocument(f"a PDF of {count} pages (more than {MAX_PDF_PAGES}); "
                                     "split it into smaller files")
        sizes = [_content_size(page) for page in reader.pages]
        total = sum(sizes)
        if total > MAX_PDF_CONTENT_BYTES:
            raise UnreadableDocument(
                f"PDF page content of {_mb(total)} once decompressed (more than "
                f"{MAX_PDF_CONTENT_BYTES // MB} MB); split it into smaller files")
        pages: list[str] = []
        warnings: list[str] = []
        for n, (page, size) in enumerate(zip(reader.pages, sizes, strict=True), start=1):
            if size > MAX_PDF_PAGE_CONTENT_BYTES:
                warnings.append(f"page {n} left out: its content is {_mb(size)} once "
                                f"decompressed (more than {MAX_PDF_PAGE_CONTENT_BYTES // MB} MB)")
                pages.append("")
                continue
            pages.append(page.extract_text() or "")
        title = str((reader.metadata.title if reader.metadata else None) or "")
    except UnreadableDocument:
        raise
    except Exception as exc:  # pypdf raises assorted errors on hostile files
        if type(exc).__name__ == "LimitReachedError":
            raise UnreadableDocument("a PDF stream decompresses past pypdf's safety limit"
                                     ) from exc
        raise UnreadableDocument(f"malformed PDF ({type(exc).__name__})") from exc
    return PdfText(pages=pages, title=title, warnings=warnings)


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB" if n < 10 * MB else f"{n // MB:,} MB"


def _content_size(page: Any) -> int:
    """Decompressed bytes of a page's content streams and of the form XObjects its
    resources name (those are drawn, and extracted, as part of it)."""
    from pypdf.generic import ArrayObject

    size = 0
    contents = page.get("/Contents")
    if contents is not None:
        contents = contents.get_object()
        streams = contents if isinstance(contents, ArrayObject) else [contents]
        size += sum(len(s.get_object().get_data()) for s in streams)
    return size + _forms_size(page.get("/Resources"), set(), 0)


def _forms_size(resources: Any, seen: set[int], depth: int) -> int:
    from pypdf.generic import DictionaryObject, StreamObject

    if resources is None or depth > 8:
        return 0
    resources = resources.get_object()
    if not isinstance(resources, DictionaryObject):
        return 0
    xobjects = resources.get("/XObject")
    if xobjects is None or not isinstance(xobjects := xobjects.get_object(), DictionaryObject):
        return 0
    size = 0
    for ref in xobjects.values():
        form = ref.get_object()
        if id(form) in seen or not isinstance(form, StreamObject) or \
                form.get("/Subtype") != "/Form":
            continue
        seen.add(id(form))
        size += len(form.get_data())
        size += _forms_size(form.get("/Resources"), seen, depth + 1)
    return size
