"""Plain renderings of answers shared by the CLI, batch Markdown and the TUI's export.

The one place a citation is formatted. Document text is inserted literally: Markdown
output escapes nothing away from the quote, it fences it as a block quote.
"""

from __future__ import annotations

import re

from assistant.models import Answer, Citation

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (escape sequences included) are shown
    as visible ``\\xNN`` codes instead of acting on the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


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
    """``[1] Title — Section, report.md line 12 (score 0.71)``"""
    where = f"{c.title} — {c.section}" if c.section and c.section != c.title else c.title
    place = source_place(c.line, c.page, c.start, c.end)
    return f"[{c.rank}] {where}, {c.doc_id} {place} (score {c.score:.2f})"


def _place(answer: Answer) -> str:
    span = answer.answer
    assert span is not None
    return source_place(span.line, span.page, span.start, span.end)


def _quote_block(text: str) -> str:
    return "\n".join("> " + line for line in text.split("\n"))


def answer_markdown(answer: Answer) -> str:
    lines = [f"### {answer.question}", ""]
    if answer.resolved_question:
        lines += [f"*Understood as:* {answer.resolved_question}", ""]
    if answer.abstained or answer.answer is None:
        lines += [f"**{answer.message}** (confidence {answer.confidence:.2f})", "",
                  "Closest passages (not an answer):", ""]
    else:
        lines += [_quote_block(answer.answer.text), "",
                  f"— {answer.answer.doc_id}, {_place(answer)} "
                  f"(confidence {answer.confidence:.2f})", "", "Citations:", ""]
    for c in answer.citations:
        lines += [f"- {citation_line(c)}", "", _quote_block(c.quote), ""]
    return "\n".join(lines) + "\n"


def answer_text(answer: Answer) -> str:
    """The terminal rendering of ``assistant ask``."""
    out: list[str] = []
    if answer.resolved_question:
        out.append(f"(understood as: {answer.resolved_question})")
    if answer.abstained or answer.answer is None:
        out.append(f"{answer.message}  [confidence {answer.confidence:.2f}]")
        if answer.citations:
            out.append("")
            out.append("Closest passages (they do not answer the question):")
    else:
        out.append(f"“{answer.answer.text}”")
        out.append(f"    — {answer.answer.doc_id}, {_place(answer)}  "
                   f"[confidence {answer.confidence:.2f}]")
        out.append("")
        out.append("Citations:")
    for c in answer.citations:
        out.append(citation_line(c))
        out.append(f"    “{c.quote}”")
        out.append(f"    why: {c.why}")
    return printable("\n".join(out))


def conversation_markdown(answers: list[Answer], title: str = "Conversation") -> str:
    """A whole chat as Markdown, each turn as ``answer_markdown`` renders it (the TUI's
    export), so an exported chat reads exactly like ``assistant batch --format md``."""
    parts = [f"# {title}", ""]
    parts += [answer_markdown(a) for a in answers]
    return "\n".join(parts)
