"""Ingest: find the corpus's documents and extract their text and section structure.

Each supported file becomes a ``SourceDocument`` whose ``text`` is what every
offset in the index points into. Plain text and Markdown keep their text
verbatim (newlines normalised); HTML and PDF are reduced to their visible
text by well-kept extractors (selectolax's Lexbor engine: fast, strict HTML5
parsing; pypdf: pure Python, handles encrypted and broken files gracefully).

This module must never follow a symbolic link, never read a file twice for one
document (so a file that changes while it is read is indexed as one version),
and never raise anything but ``UnreadableDocument`` for a bad file.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assistant.formats import Reading
from assistant.formats.pdf import read_pdf
from assistant.formats.plain import read_plain
from assistant.models import SkippedFile, SourceDocument

Format = Literal["txt", "md", "html", "pdf"]
SUPPORTED_SUFFIXES: dict[str, Format] = {".txt": "txt", ".md": "md", ".markdown": "md",
                                         ".html": "html", ".htm": "html", ".pdf": "pdf"}
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


class UnreadableDocument(Exception):
    """A file that cannot be indexed; the message says why, for the build's warnings."""


@dataclass(frozen=True)
class CorpusFile:
    doc_id: str
    path: Path
    size: int
    mtime_ns: int


def discover(corpus_dir: Path) -> tuple[list[CorpusFile], list[SkippedFile]]:
    """Every supported regular file under ``corpus_dir``, sorted by id; and what was passed over.

    Hidden files and folders are ignored silently; symbolic links are never followed
    (a link may point outside the corpus, or into a loop) and are reported as skipped.
    A folder that cannot be listed is passed over, as ``os.walk`` does.

    ``os.scandir`` rather than ``os.walk`` and ``pathlib``: each entry's type comes with the
    listing and its one ``lstat`` is the size and time, so a 10,000-file corpus is checked in
    about half the time (~115 ms instead of ~210; every start of the chat, cold ``ask`` and
    ``assistant status`` checks it).
    """
    files: list[CorpusFile] = []
    skipped: list[SkippedFile] = []
    folders = [(str(corpus_dir), "")]  # a stack, not recursion: any depth of folders
    while folders:
        folder, prefix = folders.pop()
        kept = _discover(folder, prefix, files, skipped)
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


def _discover(folder: str, prefix: str, files: list[CorpusFile],
              skipped: list[SkippedFile]) -> list[os.DirEntry[str]]:
    """One folder: its folders' links, then its files, each by name; returns the folders to
    go into, in the order ``os.walk`` takes them (so the skipped files are listed as
    before)."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
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
            skipped.append(SkippedFile(path=rel, reason=f"cannot read: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            skipped.append(SkippedFile(path=rel, reason="not a regular file"))
            continue
        files.append(CorpusFile(doc_id=rel, path=Path(e.path), size=st.st_size,
                                mtime_ns=st.st_mtime_ns))
    return kept


def read_raw(file: CorpusFile) -> bytes:
    """The file's bytes, read once; the content hash and the text both come from them."""
    if file.size > MAX_DOCUMENT_BYTES:
        raise UnreadableDocument(
            f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; split it into smaller files")
    try:
        with open(file.path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UnreadableDocument(f"cannot read: {exc.strerror or exc}") from exc


def content_hash(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def extract(file: CorpusFile, raw: bytes) -> SourceDocument:
    """Turn a file's bytes into a ``SourceDocument`` (text, title, sections, units, map)."""
    fmt: Format = SUPPORTED_SUFFIXES[file.path.suffix.lower()]
    warnings: list[str] = []
    if fmt == "pdf":
        reading = _extract_pdf(raw)
    else:
        decoded, note = decode_text(raw)
        if note:
            warnings.append(note)
        reading = read_text(fmt, decoded)
    if not reading.text.strip():
        raise UnreadableDocument("no text to index")
    return SourceDocument(doc_id=file.doc_id, title=reading.title or file.path.stem,
                          format=fmt, text=reading.text, sections=reading.sections,
                          content_hash=content_hash(raw), warnings=warnings,
                          units=reading.units, locations=reading.locations)


def read_text(fmt: Format, decoded: str) -> Reading:
    """A decoded text file read by its format's reader (``assistant.formats``)."""
    if fmt == "html":
        from assistant.formats.html import read_html

        return read_html(decoded)
    if fmt == "md":
        from assistant.formats.markdown import read_markdown  # markdown-it: ~20 ms

        return read_markdown(normalise_newlines(decoded))
    return read_plain(normalise_newlines(decoded))


# --- text decoding ------------------------------------------------------------------------

_BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def looks_binary(head: bytes) -> bool:
    """The first bytes of a file are not text: many NULs or other control characters (a
    stray one, such as a damaged line in a batch file, is tolerated)."""
    return len(_BINARY_CONTROL.findall(head)) > max(8, len(head) // 200)


def decode_text(raw: bytes) -> tuple[str, str | None]:
    """Decode bytes as UTF-8 (or a BOM's encoding); refuse binary; fall back to Windows-1252.

    Returns the text and, when it was not UTF-8, a note saying how it was read.
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
                          (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            try:
                note = (None if encoding == "utf-8"
                        else f"read as {encoding.upper()} (byte-order mark)")
                return raw[len(bom):].decode(encoding), note
            except UnicodeDecodeError as exc:
                raise UnreadableDocument(f"invalid {encoding.upper()} text") from exc
    head = raw[:65536]
    if head.count(b"\x00") > 0:
        guess = _utf16_without_bom(head)
        if guess:
            try:
                return raw.decode(guess), f"read as {guess.upper()} (no byte-order mark)"
            except UnicodeDecodeError:
                pass
        raise UnreadableDocument("binary file, not text")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    if len(_BINARY_CONTROL.findall(head)) > max(8, len(head) // 200):
        raise UnreadableDocument("binary file, not text")
    try:
        return raw.decode("cp1252"), "not UTF-8; read as Windows-1252 (Latin-1)"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "not UTF-8; read as Latin-1"


def _utf16_without_bom(head: bytes) -> str | None:
    even, odd = head[0::2], head[1::2]
    if not even or not odd:
        return None
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")



# --- PDF ----------------------------------------------------------------------------------

def _extract_pdf(raw: bytes) -> Reading:
    import logging

    from pypdf import PdfReader  # ~60 ms
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("encrypted PDF (needs a password)")
        pages = [normalise_newlines(p.extract_text() or "") for p in reader.pages]
        meta_title = str((reader.metadata.title if reader.metadata else None) or "")
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise UnreadableDocument(f"malformed PDF ({type(exc).__name__})") from exc
    except Exception as exc:  # pypdf raises assorted errors on hostile files
        raise UnreadableDocument(f"malformed PDF ({type(exc).__name__})") from exc
    return read_pdf(pages, meta_title)


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
