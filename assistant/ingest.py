"""Ingest: find the corpus's documents and extract their text and section structure.

Each supported file becomes a ``SourceDocument`` whose ``text`` is what every
offset in the index points into: the document's readable text, made by its format's
reader (``assistant.formats``), with its units and a map back to the source's lines.

This module must never follow a symbolic link, never read a file twice for one
document (so a file that changes while it is read is indexed as one version),
and never raise anything but ``UnreadableDocument`` for a bad file. Reading, decoding and
the per-document budgets are ``assistant.source``'s.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import unicodedata
from pathlib import Path
from typing import Literal

from assistant.formats import Reading
from assistant.formats.pdf import read_pdf
from assistant.formats.plain import read_plain
from assistant.models import SkippedFile, SourceDocument
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
    listing and its one ``lstat`` is the size and time, so a large corpus is checked in
    about half the time (every start of the chat, cold ``ask`` and ``assistant status``
    checks it).
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
    """Turn a file's bytes into a ``SourceDocument`` (text, title, sections, units, map)."""
    fmt: Format = SUPPORTED_SUFFIXES[file.path.suffix.lower()]
    warnings: list[str] = []
    if fmt == "pdf":
        pdf = pdf_pages(raw)  # the page and content budgets are checked there
        warnings.extend(pdf.warnings)
        reading = read_pdf([normalise_newlines(p) for p in pdf.pages], pdf.title)
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

        check_html_nesting(decoded)
        return read_html(decoded)
    if fmt == "md":
        from assistant.formats.markdown import read_markdown  # markdown-it: only for Markdown

        return read_markdown(normalise_newlines(decoded))
    return read_plain(normalise_newlines(decoded))


# --- text ----------------------------------------------------------------------------------

def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
