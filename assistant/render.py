"""Plain renderings of answers shared by the CLI, batch Markdown and the TUI's export, and
the one sanitiser of everything the assistant writes for a person to see.

The one place a citation is formatted, and the one place text is made safe to show:
``printable`` (terminal text, Markdown, the clipboard), ``one_line`` (a name or a title on
one line) and ``json_safe`` (serialised JSON). Document text, titles and file names are
untrusted: an escape sequence in them could set the terminal's title, write its clipboard
(OSC 52), end a shell's bracketed paste (``ESC[201~``) or reorder what is read (U+202E).
So every control character, C0 and C1, and every bidi embedding, override or isolate is
shown visibly (``␛[201~``, ``\u202e``), never passed through. Markup (``[bold]``) is the
TUI's concern: it shows text through ``rich.text.Text`` or escapes it, never parses it.
This module never imports ``textual``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only named in annotations: every error line is printed through this
    from assistant.models import Answer, Citation  # module, without loading pydantic first

# Written here rather than taken from a library: Rich's ``escape_control_codes`` covers five
# C0 codes (not ESC, not C1), and ``str.isprintable`` also refuses the no-break space and
# the zero-width joiner of emoji sequences, which are safe and common in documents.
_BIDI = "\u202a-\u202e\u2066-\u2069"
"""Bidi embeddings, overrides and isolates: they reorder the text after them on screen."""
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
"""What may not reach a screen or a clipboard as it is: control characters but the line
break and the tab, line and paragraph separators, bidi controls."""
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
"""The same, with line breaks and tabs as well: what may not reach one line."""
_UNSAFE_JSON = re.compile(f"[\x7f-\x9f\u2028\u2029{_BIDI}]")
"""What JSON serialisers leave raw (they escape C0 already): DEL, C1, separators, bidi."""


def _visible(match: re.Match[str]) -> str:
    """A C0 control as its Unicode control picture (ESC as ``␛``, DEL as ``␡``); any
    other as its ``\\uXXXX`` code, as JSON would write it."""
    code = ord(match.group(0))
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """Text safe to show or paste: line breaks and tabs kept, every other control
    character, line separator and bidi control made visible. Idempotent."""
    return _UNSAFE.sub(_visible, text)


def one_line(text: str) -> str:
    """``printable`` for a name, a title or a message that must stay on one line: line
    breaks and tabs are made visible too (``␊``)."""
    return _UNSAFE_LINE.sub(_visible, text)


def json_safe(serialised: str) -> str:
    """Serialised JSON with DEL, C1 controls, line separators and bidi controls written as
    ``\\uXXXX`` escapes: the same JSON value (``quote == document_text[start:end]`` still
    holds once parsed), but nothing in it acts on a terminal that shows it."""
    return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", serialised)


DISPLAY_QUOTE_CHARS = 2_000
"""Longest quote shown by ``ask`` and in Markdown; JSON keeps every character."""
DISPLAY_TITLE_CHARS = 200
"""Longest title or section name shown (a Markdown heading can be a whole file's line)."""


def clipped(text: str, limit: int = DISPLAY_QUOTE_CHARS) -> str:
    """``text`` cut at ``limit`` characters for display, with an ellipsis that says how much
    was left out (a single "sentence" of a document can run to megabytes)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def count(n: int, noun: str) -> str:
    """``1 document``, ``2 documents``: a number with its noun in agreement."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def source_place(line: int | None, page: int | None, start: int, end: int) -> str:
    """``line 12``, ``page 3, line 4``: where a quote starts in its file (character offsets
    only when the line is not known)."""
    if line is None:
        return f"characters {start}–{end}"
    return f"page {page}, line {line}" if page else f"line {line}"


def citation_line(c: Citation) -> str:
    """``[1] Title — Section, report.md line 12 (score 0.71)``, on one line."""
    title, section = clipped(c.title, DISPLAY_TITLE_CHARS), clipped(c.section,
                                                                  DISPLAY_TITLE_CHARS)
    where = f"{title} — {section}" if c.section and c.section != c.title else title
    place = source_place(c.line, c.page, c.start, c.end)
    return one_line(f"[{c.rank}] {where}, {c.doc_id} {place} (score {c.score:.2f})")


def _place(answer: Answer) -> str:
    span = answer.answer
    assert span is not None
    return source_place(span.line, span.page, span.start, span.end)


def _quote_block(text: str) -> str:
    return "\n".join("> " + line for line in text.split("\n"))


def percent(confidence: float) -> str:
    """A calibrated probability as a reader's percentage, never a certain "100%"."""
    return f"{max(1, min(99, round(confidence * 100)))}%"


def confidence_words(answer: Answer) -> str:
    """``confidence 82%`` for a quote shown; nothing for an abstention (a figure beside
    "not covered" would read as how sure the refusal is)."""
    if answer.abstained or answer.outcome == "not_covered":
        return ""
    return f"confidence {percent(answer.confidence)}"


BEST_GUESS = "Best guess, not sure"
"""How a quote shown with little confidence is introduced: the documents seem to cover
the question, but this passage is more likely wrong than right."""


SCOPE_NAMED = 3
"""A scope of up to this many documents is named in full; a larger one is counted."""


def scope_text(scope: list[str] | frozenset[str]) -> str:
    """The documents a question was asked of, in a few words: ``a.txt and b.md only``,
    ``12 documents only (a.txt, b.md, c.pdf, …)``."""
    docs = sorted(scope)
    if len(docs) <= SCOPE_NAMED:
        named = docs[0] if len(docs) == 1 else ", ".join(docs[:-1]) + " and " + docs[-1]
        return f"{named} only" if docs else "no document"
    return f"{count(len(docs), 'document')} only ({', '.join(docs[:SCOPE_NAMED])}, …)"


def answer_markdown(answer: Answer) -> str:
    """One answer as Markdown (``batch --format md``, the chat's export), made printable,
    long quotes clipped."""
    lines = [f"### {answer.question}", ""]
    if answer.resolved_question:
        lines += [f"*Understood as:* {answer.resolved_question}", ""]
    if answer.scope is not None:
        lines += [f"*Asked of:* {scope_text(answer.scope)}", ""]
    if answer.abstained or answer.answer is None:
        lines += [f"**{answer.message}**", "", "Closest passages (not an answer):", ""]
    else:
        if answer.outcome == "best_guess":
            lines += [f"**{BEST_GUESS}** ({confidence_words(answer)}); the next passages "
                      "below may hold the answer instead.", ""]
        lines += [_quote_block(clipped(answer.answer.text)), "",
                  f"— {answer.answer.doc_id}, {_place(answer)} ({confidence_words(answer)})",
                  "", "Citations:", ""]
    for c in answer.citations:
        lines += [f"- {citation_line(c)}", "", _quote_block(clipped(c.quote)), ""]
    return printable("\n".join(lines) + "\n")


def answer_text(answer: Answer) -> str:
    """The terminal rendering of ``assistant ask``, made printable, long quotes clipped."""
    out: list[str] = []
    if answer.resolved_question:
        out.append(f"(understood as: {answer.resolved_question})")
    if answer.scope is not None:
        out.append(f"(asked of {scope_text(answer.scope)})")
    if answer.abstained or answer.answer is None:
        out.append(answer.message)
        if answer.citations:
            out.append("")
            out.append("Closest passages (they do not answer the question):")
    else:
        if answer.outcome == "best_guess":
            out.append(f"{BEST_GUESS} ({confidence_words(answer)}); the next passages below "
                       "may hold the answer instead:")
        out.append(f"“{clipped(answer.answer.text)}”")
        out.append(f"    — {answer.answer.doc_id}, {_place(answer)}  "
                   f"[{confidence_words(answer)}]")
        out.append("")
        out.append("Citations:")
    for c in answer.citations:
        out.append(citation_line(c))
        out.append(f"    “{clipped(c.quote)}”")
        out.append(f"    why: {c.why}")
    return printable("\n".join(out))


def each_text(question: str, answers: list[Answer]) -> str:
    """``assistant ask --each``: each document's best passage, grouped by document, most
    likely first; made printable, long quotes clipped."""
    if not answers:
        return printable(f"No document covers this: {one_line(question)}")
    covers = "covers" if len(answers) == 1 else "cover"
    out = [f"{count(len(answers), 'document')} {covers} this: {one_line(question)}"]
    for a in answers:
        if a.answer is None:
            continue
        title = a.citations[0].title if a.citations else a.answer.doc_id
        out += ["", f"== {a.answer.doc_id} — {clipped(title, DISPLAY_TITLE_CHARS)}",
                f"“{clipped(a.answer.text)}”",
                f"    {_place(a)}  "
                f"[confidence {a.confidence:.2f}"
                + (", best guess]" if a.outcome == "best_guess" else "]")]
    return printable("\n".join(out))


def conversation_markdown(answers: list[Answer], title: str = "Conversation") -> str:
    """A whole chat as Markdown, each turn as ``answer_markdown`` renders it (the TUI's
    export), so an exported chat reads exactly like ``assistant batch --format md``."""
    parts = [f"# {one_line(title)}", ""]
    parts += [answer_markdown(a) for a in answers]
    return "\n".join(parts)
