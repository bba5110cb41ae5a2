"""Word-level text handling shared by retrieval, answering and follow-ups.

Terms are lower-cased, diacritics removed and split on anything that is not a letter
or digit — exactly what the index's FTS5 ``unicode61 remove_diacritics 2`` tokenizer
does — so a term found here is a term the index can look up. Identifiers (tokens with a
digit, like "H200" or "25%", or all-capital acronyms) are kept whole and compared
exactly: "H20" never matches "H200".

The bottom layer: it imports nothing of the assistant. What is language-specific (the stop
words) is passed in by the caller, from its ``assistant.qa.lang.Language``; tokenisation
itself is the index's, the same for every language.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_TERM = re.compile(r"[^\W_]+", re.UNICODE)
_IDENT = re.compile(r"(?<![\w.])(?:[A-Za-z]*\d[\w.]*%?|\d+(?:[.,]\d+)*%?|[A-Z]{2,}[a-z]?s?"
                    # dotted code names ("json.dumps", "os.path.join"); not "e.g."
                    r"|[A-Za-z_][A-Za-z0-9_]+(?:\.[A-Za-z_][A-Za-z0-9_]+)+)(?!\w)")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _StripMarks(dict[int, int | None]):
    """A ``str.translate`` table, filled as characters are met: combining marks map to
    None (removed), every other character to itself."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.combining(chr(code)) else code
        self[code] = value
        return value


_STRIP_MARKS = _StripMarks()


def fold(text: str) -> str:
    """Lower case without diacritics, as the index's tokenizer sees it."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text.lower()).translate(_STRIP_MARKS)


@functools.lru_cache(maxsize=1 << 16)
def _terms(text: str) -> tuple[str, ...]:
    return tuple(_TERM.findall(fold(text)))


def terms(text: str) -> list[str]:
    """All word tokens of ``text`` (folded), in order, repeats kept. Memoised: the same
    sentences are read by several stages of an answer, and again by later questions."""
    return list(_terms(text))


def content_terms(text: str, stopwords: frozenset[str]) -> list[str]:
    """Distinct terms that carry meaning (not in ``stopwords``, no single letters), in order."""
    return list(_content_terms(text, stopwords))


@functools.lru_cache(maxsize=1 << 16)
def _content_terms(text: str, stopwords: frozenset[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for t in _terms(text):
        if t not in stopwords and (len(t) > 1 or t.isdigit()):
            seen.setdefault(t, None)
    return tuple(seen)


def identifiers(text: str, stopwords: frozenset[str]) -> list[str]:
    """Model numbers, figures, acronyms and dotted code names as written ("H200", "25%", "US",
    "str.join"), folded, distinct; an all-capital stop word ("IT", "US" where it is one) is
    not one."""
    return list(_identifiers(text, stopwords))


@functools.lru_cache(maxsize=1 << 16)
def _identifiers(text: str, stopwords: frozenset[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for m in _IDENT.finditer(text):
        tok = fold(m.group(0)).rstrip(".")
        if tok and tok not in stopwords:
            seen.setdefault(tok, None)
    return tuple(seen)


def identifier_present(ident: str, text_identifiers: set[str]) -> bool:
    """Exact match, allowing a plural "s" either way ("H200" ~ "H200s"), never a prefix."""
    if ident in text_identifiers:
        return True
    if ident.endswith("s") and ident[:-1] in text_identifiers:
        return True
    return ident + "s" in text_identifiers


_ASKS = re.compile(r"\?[\s\"'’”)\]]*$")


def asks(text: str) -> bool:
    """The text is a question: it ends with a question mark (before closing quotes or
    brackets)."""
    return _ASKS.search(text) is not None


_LINK = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+", re.I)


def without_links(text: str) -> str:
    """Text with web addresses blanked: words inside a link are not prose to match."""
    return _LINK.sub(" ", text)


@functools.lru_cache(maxsize=1 << 16)
def prose_terms(text: str) -> tuple[str, ...]:
    """``terms(without_links(text))``, memoised: the words of a sentence as matched against
    a question (every sentence read for an answer is read this way, often again)."""
    return _terms(without_links(text))


def without_terminal_codes(text: str) -> str:
    """Text pasted from a terminal with its escape sequences (colours, titles) removed and
    every other control character, newlines included, made a space: what a one-line
    question box should receive."""
    return _CONTROL.sub(" ", _ANSI.sub("", text).replace("\n", " ").replace("\t", " "))


def clean_question(text: str) -> str:
    """The question with terminal escapes and control characters removed, spaces folded."""
    text = _ANSI.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates crash the tokenizer
    return re.sub(r"\s+", " ", text).strip()
