"""Language data for the answer engine: one TOML file per language in ``qa/lang/``.

Stop words, question words, pronouns, plural folding, the segmenter's language code and
the answer kinds (what a question asks for, what a sentence must hold) are data, read
once per process. Code never lists English words itself; it asks the ``Language``.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import SettingsError

_DIR = Path(__file__).with_name("lang")


@dataclass(frozen=True)
class AnswerKind:
    """A kind of answer a question can ask for (a date, a count, a person...)."""

    name: str
    asks: re.Pattern[str]
    holds: re.Pattern[str]
    says: str
    """How an abstention names what the closest passage lacks ("gives no date")."""

    def held_by(self, sentence: str, question_folded: str) -> bool:
        """Does the sentence hold an answer of this kind that the question does not already
        state? ("What happened in 1957?" is not answered by the sentence's "1957".)"""
        return any(m.group(0).strip().lower() not in question_folded
                   for m in self.holds.finditer(sentence))


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    segmenter: str
    stopwords: frozenset[str]
    question_words: frozenset[str]
    pronouns_singular: frozenset[str]
    pronouns_plural: frozenset[str]
    referring_determiners: frozenset[str]
    relative_pronouns: frozenset[str]
    """Pronouns that, right after a noun, open a relative clause ("firms that make chips")
    instead of referring back."""
    follow_up_openers: tuple[str, ...]
    leaning_openers: re.Pattern[str]
    reason_openers: re.Pattern[str]
    fold_min_length: int
    plural_to_singular: tuple[tuple[re.Pattern[str], str], ...]
    singular_to_plural: tuple[tuple[re.Pattern[str], str], ...]
    answer_kinds: tuple[AnswerKind, ...]

    @property
    def pronouns(self) -> frozenset[str]:
        return self.pronouns_singular | self.pronouns_plural

    def kinds_asked(self, question: str) -> tuple[AnswerKind, ...]:
        return tuple(k for k in self.answer_kinds if k.asks.search(question))

    def variants(self, term: str) -> list[str]:
        """The term and its other number ("chips" ~ "chip", "policy" ~ "policies")."""
        if term.isdigit() or len(term) < self.fold_min_length:
            return [term]
        for rule, repl in self.plural_to_singular:
            if rule.search(term):
                return [term, rule.sub(repl, term, count=1)]
        for rule, repl in self.singular_to_plural:
            if rule.search(term):
                return [term, rule.sub(repl, term, count=1)]
        return [term]


def _words(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    raise SettingsError("language file: a word list must be text or a list")


@functools.cache
def load(code: str = "en") -> Language:
    """The language's data, parsed and compiled once per process."""
    path = _DIR / f"{code}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in _DIR.glob("*.toml")))
        raise SettingsError(f"no language data for {code!r} (known: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        kinds = tuple(AnswerKind(name=k["name"], asks=re.compile(k["asks"], re.I),
                                 holds=re.compile(k["holds"]), says=k["says"])
                      for k in data.get("answer_kinds", []))
        return Language(
            code=data["code"], name=data.get("name", data["code"]),
            segmenter=data.get("segmenter", data["code"]),
            stopwords=_words(data["stopwords"]),
            question_words=_words(data["question_words"]),
            pronouns_singular=_words(data["pronouns_singular"]),
            pronouns_plural=_words(data["pronouns_plural"]),
            referring_determiners=_words(data["referring_determiners"]),
            relative_pronouns=_words(data.get("relative_pronouns", [])),
            follow_up_openers=tuple(data["follow_up_openers"]),
            leaning_openers=re.compile(data["leaning_openers"]),
            reason_openers=re.compile(data["reason_openers"]),
            fold_min_length=int(data.get("fold_min_length", 4)),
            plural_to_singular=tuple((re.compile(r), str(s)) for r, s in
                                     data["plural_to_singular"]),
            singular_to_plural=tuple((re.compile(r), str(s)) for r, s in
                                     data["singular_to_plural"]),
            answer_kinds=kinds)
    except (KeyError, ValueError, re.error, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"language file {path} is malformed: {exc}") from exc
