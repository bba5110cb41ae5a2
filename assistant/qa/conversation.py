"""Follow-up questions: what "them", "it" or an opening "And" refer to.

No language model. A question is read in the context of the conversation only when it
leans on something it does not name: a pronoun ("Did they work?"), an elliptical opener
("And for loops?", "What about Cambricon?"), or too few words of its own. A question that
stands alone ("Who welcomed the policy change?", "When was the article published?") is
asked as it is. The context comes from the previous turn only, never accumulated: for
"them"/"they" after a question that asked for names, the names its answer gave; otherwise
the previous question's own subject. Context words weigh less than the question's own.

The conversation is a value: ``resolve`` reads it, ``after`` returns a new one with the
turn added. Nothing here mutates the caller's state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant import text as tx
from assistant.qa.lang import Language

CONTEXT_WEIGHT = 0.5
"""Weight of a word taken from the previous turn, against 1 for the question's own."""
MAX_NAMES = 12

_NAME = re.compile(r"\b[A-Z][\w-]+")
_WORD = re.compile(r"[^\W_][\w'’-]*")


def _dangling_pronoun(question: str, language: Language) -> bool:
    """Does a pronoun of the question refer outside it? Not when a name or identifier
    stands before it in the question ("Did the UK explain its thresholds?"), nor for a
    "that" right after a noun, which opens a relative clause ("firms that make chips")."""
    words = _WORD.findall(question)
    folded = [tx.fold(w) for w in words]
    for i, w in enumerate(folded):
        if w not in language.pronouns:
            continue
        before = words[1:i]  # the first word is capitalised by the sentence, not a name
        if any(b[0].isupper() or any(ch.isdigit() for ch in b) for b in before):
            continue
        if w in language.relative_pronouns and i > 0 and folded[i - 1] not in \
                language.stopwords and folded[i - 1] not in language.question_words:
            continue
        return True
    return False


@dataclass(frozen=True)
class Turn:
    question: str
    subject: tuple[str, ...]
    """The content words the question was about (its own, or, for a follow-up, its own and
    what it referred to)."""
    asked_for_names: bool
    names: tuple[str, ...]
    """Names in the quoted answer."""
    answer_key: tuple[str, int] | None


@dataclass(frozen=True)
class Resolution:
    """A question as understood in its conversation."""

    text: str
    """What to embed."""
    terms: dict[str, float]
    own_terms: tuple[str, ...]
    identifiers: list[str]
    avoid: frozenset[tuple[str, int]]
    resolved: str | None
    """A readable form of the question with its context, when it is a follow-up."""


@dataclass(frozen=True)
class Conversation:
    id: str = ""
    turns: tuple[Turn, ...] = field(default=())

    def leans_on_context(self, question: str, language: Language) -> bool:
        """Does the question need the previous turn to be understood? Only a turn that was
        answered gives context (after "not covered" there is nothing to refer to), and only
        a question that does not resolve on its own needs it: one whose pronoun has no
        antecedent in the question itself, that opens elliptically ("And MetaX?"), or that
        has hardly a word of its own."""
        if not self.turns or self.turns[-1].answer_key is None:
            return False
        if _dangling_pronoun(question, language):
            return True
        low = question.lower().lstrip(" \t\"'“‘(")
        if any(re.match(rf"{re.escape(o)}\b", low) for o in language.follow_up_openers):
            return True
        return len(tx.content_terms(question, language.stopwords)) <= 1

    def resolve(self, question: str, language: Language) -> Resolution:
        if self.turns and tx.fold(question) == tx.fold(self.turns[-1].question):
            # asked again: understood as it was the first time, so answered the same
            return Conversation(self.id, self.turns[:-1]).resolve(question, language)
        own = tx.content_terms(question, language.stopwords)
        terms = dict.fromkeys(own, 1.0)
        idents = tx.identifiers(question, language.stopwords)
        if not self.leans_on_context(question, language):
            return Resolution(text=question, terms=terms, own_terms=tuple(own),
                              identifiers=idents, avoid=frozenset(), resolved=None)
        # a follow-up asks for something new: what the conversation quoted goes last
        avoid = frozenset(t.answer_key for t in self.turns if t.answer_key)
        prev = self.turns[-1]
        plural = any(w in language.pronouns_plural for w in tx.terms(question))
        if plural and prev.asked_for_names and prev.names:
            referents = list(prev.names)  # "Which vendors...?" then "Which of them...?"
        else:
            referents = list(prev.subject)
        for word in referents:
            for t in tx.content_terms(word, language.stopwords):
                terms.setdefault(t, CONTEXT_WEIGHT)
        subject = " ".join(dict.fromkeys(referents))
        return Resolution(text=f"{question} ({subject})", terms=terms, own_terms=tuple(own),
                          identifiers=idents, avoid=avoid,
                          resolved=f"{question} [about: {subject}]")

    def after(self, question: str, resolution: Resolution, asked_for_names: bool,
              answer_text: str | None, answer_key: tuple[str, int] | None,
              language: Language) -> Conversation:
        """The conversation with this turn added."""
        # what the turn was about: its own words, or, when it had hardly any ("And MetaX?"),
        # what it referred to as well -- so the subject does not grow turn after turn
        own = resolution.own_terms
        subject = own if len(own) >= 2 else tuple(resolution.terms)
        names: tuple[str, ...] = ()
        if answer_text:
            names = tuple(dict.fromkeys(
                m.group(0) for m in _NAME.finditer(answer_text)
                if tx.fold(m.group(0)) not in language.stopwords))[:MAX_NAMES]
        turn = Turn(question=question, subject=subject, asked_for_names=asked_for_names,
                    names=names, answer_key=answer_key)
        return Conversation(id=self.id, turns=(*self.turns, turn))

    def reset(self) -> Conversation:
        return Conversation(id=self.id)
