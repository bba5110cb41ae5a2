"""Follow-up questions: understanding "them", "it" or "the company" from earlier turns.

No language model: a question is a follow-up when it leans on something it does not
name (a pronoun, a generic definite noun like "the company", an opening "And", a closing
verb with no object like "react", or too few words of its own). It is then searched
together with the previous turn's subject: the earlier question's content words and the
names and figures of its quoted answer, weighted below the question's own words. An
answer already given in the conversation is ranked down, since a follow-up asks for
something new.
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
_IMPLICIT_OBJECT = re.compile(
    r"\b(?:react|respond|reply|retaliate|adapt|cope|comply|push back|hit back)\W*$", re.I)
"""A question ending on a verb that needs "to what" ("How is Beijing expected to react?")
leans on the earlier turn for it, as a pronoun would."""
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w-]+")
_PLURAL = frozenset("they them their theirs these those".split())  # noqa: SIM905
_SINGULAR = frozenset("it its this that".split())  # noqa: SIM905
_ASKS_FOR_NAMES = re.compile(r"^\W*(?:(?:and|so|but)\s+)?(?:which|who|whom)\b|"
                             r"\b(?:name|list|what are the names)\b", re.I)
"""A question answered by names: a plural pronoun in the next question means those names.
Otherwise it means what the question was about ("What were the restrictions meant to
achieve?" then "Did they work?")."""
CONTEXT_WEIGHT = 0.5
REPEAT_PENALTY = 0.25


def is_follow_up(question: str) -> bool:
    words = tx.terms(question)
    if any(w in _PRONOUNS for w in words):
        return True
    if _GENERIC.search(question) or _OPENERS.search(question) or \
            _IMPLICIT_OBJECT.search(question):
        return True
    return len(tx.content_terms(question)) <= 1


@dataclass
class Turn:
    question: str
    terms: list[str]
    answer_text: str | None
    answer_key: tuple[str, int] | None
    entities: list[str]
    """Names in the quoted answer."""
    question_entities: list[str] = field(default_factory=list)
    """Names in the question (and, for a follow-up, in what it was about)."""


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
        """The question with what it refers to filled in from the previous turn.

        A generic noun ("the company") names one thing: the name the previous question
        asked about last (word vectors proved no help in telling a company from a
        country). A plural pronoun ("them") refers to the names in the previous answer
        when that question asked for names ("Which vendors...?"); otherwise, like "it",
        "this" or an opening "And", to the previous question's subject. The referents join
        the question's own words, weighted less.
        """
        own = tx.content_terms(question)
        terms = dict.fromkeys(own, 1.0)
        idents = tx.identifiers(question)
        avoid = {t.answer_key for t in self.turns if t.answer_key}
        if not self.turns or not is_follow_up(question):
            return Resolution(text=question, terms=terms, identifiers=idents, avoid=avoid,
                              resolved=None)
        prev = self.turns[-1]
        names = list(dict.fromkeys([*prev.question_entities, *prev.entities]))
        words = set(tx.terms(question))
        generic = _GENERIC.search(question)
        referents: list[str] = []
        text = question
        if generic and names:
            # the name the user asked about last is the likeliest referent (recency); it
            # takes the generic noun's place: "how did the company respond" -> "how did
            # Nvidia respond"
            referents = [(prev.question_entities or prev.entities)[-1]]
            text = question[:generic.start()] + referents[0] + question[generic.end():]
            for t in tx.content_terms(generic.group(0)):
                terms.pop(t, None)
            for t in tx.content_terms(referents[0]):
                terms[t] = max(terms.get(t, 0.0), 1.0)
            # the answer must be about the referent, as it must hold a model number asked for
            idents = [*idents, *(t for t in tx.content_terms(referents[0]) if t not in idents)]
        if words & _PLURAL and prev.entities and _ASKS_FOR_NAMES.search(prev.question):
            # "Which vendors...?" then "Which of them...": the names just given
            referents += [e for e in prev.entities if e not in referents]
        if not referents:  # "it", "this", an opening "And": the previous subject
            referents += [t for t in prev.terms if t not in referents]
        for word in referents:
            for t in tx.content_terms(word):
                terms.setdefault(t, CONTEXT_WEIGHT)
        subject = " ".join(dict.fromkeys(referents))
        embed_text = text if text != question else f"{question} ({subject})"
        return Resolution(text=embed_text, terms=terms, identifiers=idents,
                          avoid=avoid, resolved=f"{text} [about: {subject}]")

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
        asked = [m.group(0) for m in _CAPITALISED.finditer(question)
                 if tx.fold(m.group(0)) not in tx.STOPWORDS]
        if resolution.resolved is not None and self.turns:
            asked = list(dict.fromkeys([*asked, *self.turns[-1].question_entities]))
        self.turns.append(Turn(question=question, terms=own, answer_text=answer_text,
                               answer_key=answer_key, entities=entities[:12],
                               question_entities=asked[:8]))

    def reset(self) -> None:
        self.turns.clear()
