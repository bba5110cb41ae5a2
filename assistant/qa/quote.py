"""The quote builder: the answer as a verbatim span of the document.

The best sentence, joined with its neighbour when the runner-up is that neighbour and
scores almost as well (the answer is split across both); with the next sentence when it
cannot stand alone (it ends on a colon, or is a fragment); with the reply that follows it
when it is itself a question (an analyst's question line in call notes, a question a memo
asks and then answers: a question never answers one); with the next one when a reason
is asked for and it is the next sentence that gives one; with the sentence before it when
it opens with a pronoun, so the reader knows what "it" is; cut to its best clauses when
over ``MAX_ANSWER_CHARS``. Every span is cut from the stored text by offsets, never retyped.
"""

from __future__ import annotations

import bisect
import re

from assistant import text as tx
from assistant.models import AnswerSpan
from assistant.qa.analysis import QuestionAnalysis
from assistant.qa.candidates import Candidate, Retriever

MAX_ANSWER_CHARS = 400
MAX_ANSWER_SENTENCES = 3
JOIN_MARGIN = 0.1
"""A neighbour within this share of the candidates' score spread is quoted with the best."""
_ADJACENT_GAP = re.compile(r"\s*")
"""Only space between two sentences joined into one quote: a list item's or a timeline
entry's marker between them means two units, each quoted on its own (issue 26)."""


class QuoteBuilder:
    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever

    def build(self, a: QuestionAnalysis, best: Candidate, runner_up: Candidate | None,
              spread: float) -> AnswerSpan:
        start, end, text = best.start, best.end, best.text
        sentences = 1
        if (runner_up is not None and runner_up.doc_id == best.doc_id
                and runner_up.score >= best.score - JOIN_MARGIN * spread):
            lo, hi = min(start, runner_up.start), max(end, runner_up.end)
            first, second = (best, runner_up) if best.start < runner_up.start else (runner_up, best)
            if hi - lo <= MAX_ANSWER_CHARS and self._adjacent(best.doc_id, first.end,
                                                              second.start):
                start, end, text, sentences = lo, hi, self._text(best.doc_id, lo, hi), 2
        while sentences < MAX_ANSWER_SENTENCES and (text.rstrip().endswith(":")
                                                    or len(text) < 40):
            _, nxt = self.retriever.neighbours(best.doc_id, start, end)
            if nxt is None or nxt[1] - start > MAX_ANSWER_CHARS:
                break
            # a short list item or row stands alone; a line ending on a colon leads into the
            # list under it
            if not text.rstrip().endswith(":") and not self._adjacent(best.doc_id, end, nxt[0]):
                break
            end, sentences = nxt[1], sentences + 1
            text = self._text(best.doc_id, start, end)
        while sentences < MAX_ANSWER_SENTENCES and tx.asks(text):
            _, nxt = self.retriever.neighbours(best.doc_id, start, end)
            # within one quote's length: a question line in notes is short, while a long
            # sentence ending on "?" often reports a question (`Thesis 86 asks: "Why…?"`)
            # and what follows it is not its reply
            if (nxt is None or nxt[1] - start > MAX_ANSWER_CHARS
                    or not self._replies(best.doc_id, end, nxt[0])):
                break
            end, sentences = nxt[1], sentences + 1
            if len(nxt[2]) < 40 and sentences < MAX_ANSWER_SENTENCES:
                # a reply of a word or two ("No.") goes on to say why
                _, more = self.retriever.neighbours(best.doc_id, start, end)
                if (more is not None and more[1] - start <= MAX_ANSWER_CHARS
                        and self._adjacent(best.doc_id, end, more[0])):
                    end, sentences = more[1], sentences + 1
            text = self._text(best.doc_id, start, end)
        reason = next((k for k in a.kinds if k.name == "reason"), None)
        if reason is not None and sentences < MAX_ANSWER_SENTENCES \
                and not reason.held_by(text, a.folded):
            _, nxt = self.retriever.neighbours(best.doc_id, start, end)
            if (nxt is not None and nxt[1] - start <= MAX_ANSWER_CHARS
                    and a.language.reason_openers.match(nxt[2])
                    and self._adjacent(best.doc_id, end, nxt[0])):
                end, sentences = nxt[1], sentences + 1
                text = self._text(best.doc_id, start, end)
        if sentences < MAX_ANSWER_SENTENCES and a.language.leaning_openers.match(text):
            prev, _ = self.retriever.neighbours(best.doc_id, start, end)
            if (prev is not None and end - prev[0] <= MAX_ANSWER_CHARS
                    and self._adjacent(best.doc_id, prev[1], start)):
                start = prev[0]
                text = self._text(best.doc_id, start, end)
        if len(text) > MAX_ANSWER_CHARS:
            s, e = _best_clause(text, a)
            start, end, text = start + s, start + e, text[s:e]
        return AnswerSpan(text=text, doc_id=best.doc_id, start=start, end=end)

    def _text(self, doc_id: str, start: int, end: int) -> str:
        return self.retriever.document_slice(doc_id, start, end)

    def _adjacent(self, doc_id: str, gap_start: int, gap_end: int) -> bool:
        """Two sentences either side of ``text[gap_start:gap_end]`` may be one quote: only
        space between them, and, across a line break, one unit holds both (two participants'
        lines, two table rows or two paragraphs are each quoted on their own)."""
        gap = self._text(doc_id, gap_start, gap_end)
        if not _ADJACENT_GAP.fullmatch(gap):
            return False
        if "\n" not in gap:
            return True
        units, _ = self.retriever.meta.document_map(doc_id)  # read only for a line break
        k = bisect.bisect_right(units, gap_start - 1, key=lambda u: u.start) - 1
        return not units or (k >= 0 and units[k].end >= gap_end)

    def _replies(self, doc_id: str, gap_start: int, gap_end: int) -> bool:
        """The sentence after ``text[gap_start:gap_end]`` replies to the question before
        it: nothing but space between them, or, on the reply's own line, only the speaker
        who gives it (``MARA LIND: ...``); a heading or a separator line between them starts
        something else."""
        gap = self._text(doc_id, gap_start, gap_end)
        if _ADJACENT_GAP.fullmatch(gap):
            return True
        between = gap.split("\n")[:-1]
        if not between or any(line.strip() for line in between):
            return False
        units, _ = self.retriever.meta.document_map(doc_id)
        k = bisect.bisect_right(units, gap_end, key=lambda u: u.start) - 1
        return k >= 0 and units[k].start == gap_end and bool(units[k].label)


def _best_clause(text: str, a: QuestionAnalysis) -> tuple[int, int]:
    """Within an over-long span, the window of clauses (at most MAX_ANSWER_CHARS) that holds
    most of the query's weighted terms; offsets relative to ``text``."""
    cuts = [0] + [m.end() for m in re.finditer(r"[;:—–]\s+|,\s+|(?<=[.!?])\s+", text)]
    cuts.append(len(text))
    best, best_hits = (0, min(len(text), MAX_ANSWER_CHARS)), -1.0
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > MAX_ANSWER_CHARS:
                break
            piece = set(tx.terms(text[cuts[i]:cuts[j]]))
            hits = float(sum(w for t, w in a.query.terms.items()
                             if any(v in piece for v in a.language.variants(t))))
            if hits > best_hits:
                best_hits, best = hits, (cuts[i], cuts[j])
    s, e = best
    while e > s and text[e - 1] in " ,;:—–\n":
        e -= 1
    return s, e
