"""Follow-up questions: understanding "them", "it" or "the company" from earlier turns.

No language model: a question is a follow-up when it leans on something it does not
name (a pronoun, a generic definite noun like "the company", an opening "And", or too
few words of its own). It is then searched together with the previous turn's subject:
the earlier question's content words and the names and figures of its quoted answer,
weighted below the question's own words. An answer already given in the conversation
is ranked down, since a follow-up asks for something new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant import text as tx

_PRONOUNS = frozenset("""
it its they them their theirs this that these those he she him his her hers there such former
latter
""".split())  # noqa: SIM905 - a word list reads best as text
_GENERIC = re.compile(
    r"\b(?:the|that|this|these|those)\s+(?:company|companies|firm|firms|country|countries|"
    r"government|administration|vendor|vendors|chip|chips|policy|decision|move|deal|article|"
    r"author|piece|report|story|product|products|plan|ban|bans|rule|rules|change|restriction|"
    r"restrictions|one|ones|latter|former|same|group|organisation|organization|agency|"
    r"statement|function|method|statement|class|object|value|values|feature)\b", re.I)
_OPENERS = re.compile(r"^\s*(?:and|but|so|also|then|what about|how about|and what|why not)\b",
                      re.I)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w-]+")
CONTEXT_WEIGHT = 0.5
REPEAT_PENALTY = 0.12


def is_follow_up(question: str) -> bool:
    words = tx.terms(question)
    if any(w in _PRONOUNS for w in words):
        return True
    if _GENERIC.search(question) or _OPENERS.search(question):
        return True
    return len(tx.content_terms(question)) <= 1


@dataclass
class Turn:
    question: str
    terms: list[str]
    answer_text: str | None
    answer_key: tuple[str, int] | None
    entities: list[str]


@dataclass
class Resolution:
    """A question as understood in its conversation."""

    text: str
    """What to embed."""
    terms: dict[str, float]
    identifiers: list[str]
    avoid: set[tuple[str, int]]
    resolved: str | None
    """A readable form of the question with its context, when it is a follow-up."""


@dataclass
class Conversation:
    id: str
    turns: list[Turn] = field(default_factory=list)

    def resolve(self, question: str) -> Resolution:
        own = tx.content_terms(question)
        terms = dict.fromkeys(own, 1.0)
        idents = tx.identifiers(question)
        avoid = {t.answer_key for t in self.turns if t.answer_key}
        if not self.turns or not is_follow_up(question):
            return Resolution(text=question, terms=terms, identifiers=idents, avoid=avoid,
                              resolved=None)
        prev = self.turns[-1]
        context_words = [t for t in prev.terms if t not in terms]
        context_words += [e for e in prev.entities if tx.fold(e) not in terms and
                          tx.fold(e) not in context_words]
        for word in context_words:
            for t in tx.content_terms(word):
                terms.setdefault(t, CONTEXT_WEIGHT)
        subject = " ".join(dict.fromkeys([*prev.terms, *prev.entities]))
        return Resolution(text=f"{question} ({subject})", terms=terms, identifiers=idents,
                          avoid=avoid, resolved=f"{question} [about: {subject}]")

    def record(self, question: str, resolution: Resolution, answer_text: str | None,
               answer_key: tuple[str, int] | None) -> None:
        own = tx.content_terms(question)
        if resolution.resolved is not None and self.turns:
            # a follow-up keeps the earlier subject alive for the next follow-up
            own = list(dict.fromkeys([*own, *self.turns[-1].terms]))
        entities: list[str] = []
        if answer_text:
            entities = list(dict.fromkeys(m.group(0) for m in _CAPITALISED.finditer(answer_text)
                                          if tx.fold(m.group(0)) not in tx.STOPWORDS))
        self.turns.append(Turn(question=question, terms=own, answer_text=answer_text,
                               answer_key=answer_key, entities=entities[:12]))

    def reset(self) -> None:
        self.turns.clear()
