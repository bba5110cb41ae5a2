"""Chunk: cut a document's text into sentences, and sentences into model-sized chunks.

Sentences come from sentencex (Wikimedia's rule-based segmenter: knows "e.g."/"eg.",
"U.S.", decimals and percentages, keeps every character so offsets are exact, and
is orders of magnitude faster than pysbd). Before segmenting, the text is cut into
blocks at blank lines, bullets, headings and lines that end a sentence, so a sentence
never spans a bullet or a heading; hard-wrapped lines are joined into one block.

A chunk is consecutive whole sentences of one section whose word pieces, with the
title/section prefix used for embedding, fit ``max_tokens`` of the model's own
tokenizer. Only a single sentence longer than the window is cut, at word boundaries.

Invariant (property-tested): for every chunk and sentence, ``text[start:end]`` is
exactly the chunk's or sentence's text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence

import sentencex

from assistant.formats.plain import BULLET, Region, blocks, regions
from assistant.models import Chunk, Section, SourceDocument, Span, Unit

CHUNKER_VERSION = 5
"""The index format: bumped when the text chunks are cut from changes, so older indexes
rebuild (and are never answered from before): 2, bullet markers and long prefixes count
against the window; 3, HTML page furniture (menus, search boxes, site footers) is no longer
extracted; 4, PDF running headers, footers and page numbers are dropped, and headings inside
PDF pages are sections; 5, documents are read by format into units (Markdown rendered, web
pages by their article, speakers and table rows), with a map to the source's lines."""

def _segmenter_id() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sentencex {version('sentencex')}"
    except PackageNotFoundError:
        return "sentencex"


SEGMENTER = _segmenter_id()

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Word-piece counts of texts, by the embedding model's tokenizer (no special tokens)."""

TokenSplitter = Callable[[str, int], list[int]]
"""Character offsets at which to cut a text so each piece has at most N word pieces."""

_HAS_WORD = re.compile(r"\w")
_ODD_SPACE = re.compile(r"[^\S\n\t ]")


def sentences(text: str, start: int, end: int, strip_bullet: bool = True) -> list[Span]:
    """Sentence spans of one block, stripped of surrounding space and a leading bullet."""
    m = BULLET.match(text, start, end) if strip_bullet else None
    if m:
        start = m.end()
    out: list[Span] = []
    pos = start
    for piece in _segment(text[start:end]):
        s, e = pos, pos + len(piece)
        pos = e
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e and _HAS_WORD.search(text, s, e):
            out.append(Span(start=s, end=e))
    return out


def unit_sentences(text: str, units: list[Unit], region: Region) -> list[Span]:
    """The sentences of the units that start in a region: a table row or a code block is one,
    a paragraph is cut by the segmenter; a unit's leading characters are never a bullet (its
    reader left the marker out)."""
    out: list[Span] = []
    # by index from a bisection: a document of 400,000 units and 60,000 sections is read
    # in one pass, never a copy of the units a region
    for k in range(bisect.bisect_left(units, region.start, key=lambda u: u.start), len(units)):
        u = units[k]
        if u.start >= region.end:
            break
        if u.kind in ("row", "code"):
            if _HAS_WORD.search(text, u.start, u.end):
                out.append(Span(start=u.start, end=u.end))
        else:
            out.extend(sentences(text, u.start, u.end, strip_bullet=False))
    return out


def _segment(block: str) -> list[str]:
    """sentencex's pieces of a block (their lengths add up to the block's).

    sentencex panics (a Rust panic, a ``BaseException``) on a capital letter followed by a
    non-ASCII space and a full stop ("Plan B\u00a0."): such spaces are read as ASCII spaces,
    one character for one, so offsets are unchanged; should it still panic, or not give back
    every character, the block is one sentence rather than a failed build.
    """
    try:
        pieces = list(sentencex.segment("en", _ODD_SPACE.sub(" ", block)))
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        return [block]
    return pieces if sum(map(len, pieces)) == len(block) else [block]


def embed_prefix(title: str, section: str) -> str:
    if section and section != title:
        return f"{title}\n{section}\n"
    return f"{title}\n" if title else ""


def chunk_document(doc: SourceDocument, count_tokens: TokenCounter, split_tokens: TokenSplitter,
                   max_tokens: int, overlap: int) -> Iterator[Chunk]:
    """The chunks of a document, in order, each within ``max_tokens`` including its prefix."""
    text = doc.text
    ordinal = 0
    for region in regions(doc):
        prefix = _fit_prefix(embed_prefix(doc.title, region.title), count_tokens, split_tokens,
                             max_tokens // 2)
        budget = max_tokens - count_tokens([prefix])[0]
        spans = unit_sentences(text, doc.units, region) if doc.units else \
            [sp for b0, b1 in blocks(text, region) for sp in sentences(text, b0, b1)]
        spans = _cut_overlong(text, spans, count_tokens, split_tokens, budget)
        if not spans:
            continue
        # A sentence costs its own word pieces and those of what precedes it since the last
        # sentence (bullet markers, word-less lines): a chunk's text holds them too.
        counts = count_tokens([text[spans[k - 1].end if k else sp.start:sp.end]
                               for k, sp in enumerate(spans)])
        i = 0
        carried: list[int] = []  # indices of overlap sentences at the head of the next chunk
        while i < len(spans):
            members = list(carried)
            used = sum(counts[j] for j in members)
            fresh = 0  # sentences this chunk owns; it owns at least one
            while i < len(spans) and (used + counts[i] <= budget or fresh == 0):
                if used + counts[i] > budget:
                    members = []  # overlap does not fit beside this sentence: drop it
                    used = 0
                members.append(i)
                used += counts[i]
                i += 1
                fresh += 1
            # The sum of parts may miss a few pieces (a word cut in two): measure the chunk
            # as the model will read it, and hand back sentences until it fits.
            while len(members) > 1 and count_tokens(
                    [prefix + text[spans[members[0]].start:spans[members[-1]].end]]
                    )[0] > max_tokens:
                if members[-2] in carried:
                    members = members[-1:]  # the overlap does not fit: drop it
                else:
                    members.pop()
                    i -= 1
            first_owned = len([j for j in members if j in carried])
            s0, s1 = spans[members[0]].start, spans[members[-1]].end
            yield Chunk(doc_id=doc.doc_id, ordinal=ordinal, section=region.title, start=s0,
                        end=s1, text=text[s0:s1], sentences=[spans[j] for j in members],
                        first_owned=first_owned, embed_prefix=prefix)
            ordinal += 1
            owned = members[first_owned:]
            carried = owned[-overlap:] if overlap and len(owned) > overlap else []


def _fit_prefix(prefix: str, count_tokens: TokenCounter, split_tokens: TokenSplitter,
                limit: int) -> str:
    """The embedding prefix, cut to ``limit`` word pieces: a very long title or heading must
    leave room for the chunk's own text."""
    if not prefix or count_tokens([prefix])[0] <= limit:
        return prefix
    cuts = split_tokens(prefix, limit)
    return prefix[:cuts[0]].rstrip() + "\n" if cuts else prefix


def _cut_overlong(text: str, spans: list[Span], count_tokens: TokenCounter,
                  split_tokens: TokenSplitter, budget: int) -> list[Span]:
    """Cut any sentence longer than the budget at word boundaries (the only split allowed)."""
    counts = count_tokens([text[sp.start:sp.end] for sp in spans]) if spans else []
    out: list[Span] = []
    for sp, n in zip(spans, counts, strict=True):
        if n <= budget:
            out.append(sp)
            continue
        # A cut inside a run without spaces (a URL, CJK) can give a piece more word pieces
        # alone than it had in the run: cut again with a lower limit until every piece fits.
        limit = budget
        while True:
            pieces = _pieces(text, sp, split_tokens(text[sp.start:sp.end], limit))
            worst = max(count_tokens([text[p.start:p.end] for p in pieces]), default=0)
            if worst <= budget or limit == 1:
                break
            limit = max(1, limit - (worst - budget))
        out.extend(pieces)
    return out


def _pieces(text: str, sp: Span, cuts: list[int]) -> list[Span]:
    """The pieces of a sentence between cuts, stripped of space; word-less pieces dropped."""
    out: list[Span] = []
    s = sp.start
    for cut in [*cuts, sp.end - sp.start]:
        e = sp.start + cut
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s and _HAS_WORD.search(text, s, e):
            out.append(Span(start=s, end=e))
        s = sp.start + cut
        while s < sp.end and text[s].isspace():
            s += 1
    return out


__all__ = ["CHUNKER_VERSION", "SEGMENTER", "Section", "chunk_document", "regions", "sentences"]
