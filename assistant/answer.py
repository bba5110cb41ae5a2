"""Answer: pick the sentence(s) that answer a question, quote them exactly, cite, or abstain.

The precision stage ranks candidate sentences by a linear score of the retrieval
features (sentence and chunk dense similarity, IDF-weighted term coverage, heading
context, exact identifiers, the expected kind of answer), with weights fitted on the
dev question sets by ``scripts/calibrate.py``. A logistic model of the top candidate's
features, fitted the same way, gives the confidence (the probability that the quoted
answer is right); below ``Settings.abstain_below`` the assistant abstains and lists the
closest passages as not answering.

Every quote is cut from the stored document text by its offsets, never retyped.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from assistant import text as tx
from assistant.calibration import CONFIDENCE_BIAS, CONFIDENCE_WEIGHTS, SCORE_WEIGHTS
from assistant.conversation import REPEAT_PENALTY, Conversation, Resolution
from assistant.embed import Embedder, OnnxEncoder, Tokenizer
from assistant.errors import InputError
from assistant.models import Answer, AnswerSpan, Citation
from assistant.retrieve import Candidate, Query, Retriever, TermStats
from assistant.settings import Settings
from assistant.store import OpenIndex

MAX_ANSWER_CHARS = 400
MAX_ANSWER_SENTENCES = 3
MIN_RELEVANCE = 0.12
"""When the best candidate's dense similarity and lexical coverage are both below this,
nothing in the corpus is about the question ("a recipe for banana bread"): abstain whatever
the confidence model says. The lowest answerable question of both gold sets is at 0.16."""
JOIN_MARGIN = 0.03
"""A neighbouring sentence this close to the best one's score is quoted with it."""
_ADJACENT_GAP = re.compile(r"\s*(?:\n\s*(?:[-*•‣◦–]|\d{1,3}[.)])\s+)?")
_WANTS_NUMBER = re.compile(
    r"\b(how (much|many|large|big|high|long|fast)|what (percentage|percent|share|proportion|"
    r"fraction|cut|amount|number|figure))\b", re.I)
_WANTS_MONEY = re.compile(r"\b(price[sd]?|pricing|cost[s]?|how much (does|do|did|is|are|was|"
                          r"were) .{0,40}(cost|sell for|charge|pay))\b", re.I)
_MONEY = re.compile(r"[$€£¥]\s?\d|\b\d[\d.,]*\s?(dollars?|usd|eur|euros?|yuan|rmb|pounds?|"
                    r"bn|billion|million|m|k)\b", re.I)
_WANTS_DATE = re.compile(
    # "when" asks for a time only as the question word ("When did...", "And since when..."),
    # not inside a clause ("What happens when...?"), and not in the present tense ("When does
    # str.join raise...?" asks as often for a condition as for a date);
    # "tomorrow's AI" is no time either
    r"^\W*(?:(?:and|so|but)\s+)?(?:since\s+|until\s+)?when\b"
    r"(?!\s+(?:does|do|is|are|can|should|must|may)\b)|"
    r"\b((what|which|on what) (year|date|day|month|time)|last (year|month|week|quarter)|"
    r"this (year|month|week|quarter)|next (year|month|week)|yesterday|today|tomorrow|"
    r"in (19|20)\d\d)\b(?!['’]s)", re.I)
_WANTS_COUNT = re.compile(r"\bhow many\b", re.I)
_COUNT = re.compile(r"\b\d[\d,.]*\b(?!\s?%)|\b(one|two|three|four|five|six|seven|eight|nine|ten|"
                    r"dozens?|hundreds?|thousands?|millions?|billions?)\b", re.I)
_WANTS_MEASURE = re.compile(
    r"\b(how (much|many) (memory|bandwidth|power|energy|storage|ram|flops|tflops|watts|cores|"
    r"transistors)|memory|bandwidth|flops|tflops|clock speed|process node|nanomet(er|re)s?|"
    r"wattage|tdp)\b", re.I)
_MEASURE = re.compile(r"\d[\d.,]*\s?(gb|tb|mb|gb/s|tb/s|w|kw|nm|ghz|mhz|flops|tflops|pflops|"
                      r"cores|transistors|watts|gigabytes|terabytes)\b", re.I)
_TIME_WORD = (r"(?:nano|micro|milli)?seconds?|minutes?|hours?|days?|weeks?|months?|years?"
              r"|decades?")
_WANTS_DURATION = re.compile(
    rf"\bhow (?:many|much) (?:{_TIME_WORD})\b|\bhow long (?:does|do|did|will|would|can|could)"
    rf"\b.{{0,80}}\b(?:take|last|run)\b", re.I)
_DURATION = re.compile(  # "20 ns", "3.5 seconds", "three years", "a few weeks"
    rf"\b\d[\d.,]*\s?(?:{_TIME_WORD}|ns|µs|us|ms|s|secs?|mins?|hrs?)\b|\b(?:an?|one|two|three"
    rf"|four|five|six|seven|eight|nine|ten|several|a few|dozens of|hundreds of|thousands of)"
    rf"\s+(?:{_TIME_WORD})\b", re.I)
_WANTS_REASON = re.compile(r"^\W*(and\s+|so\s+|but\s+)?(why|how come)\b|\bwhat is the reason\b",
                           re.I)
_REASON = re.compile(r"\b(because|since|due to|so that|in order to|to avoid|to prevent|"
                     r"reason|for (disambiguation|compatibility|consistency|safety))\b", re.I)
_OPENS_WITH_REASON = re.compile(
    r"\W*(because|since|this is (because|for|to|so|why)|that is (because|why)|the reason|"
    r"this (avoids|prevents|allows|ensures|makes)|it is (done )?(so|to|for))\b", re.I)
_LEANS_ON_PREVIOUS = re.compile(
    r"\W*(it|they|he|she)\b|\W*(this|these)\s+(is|was|are|were|has|have|means|allows|makes"
    r"|can|will|would)\b", re.I)
_WANTS_MODEL = re.compile(r"\b(model|part|serial|product)\s+(numbers?|codes?)\b", re.I)
_MODEL = re.compile(r"\b[A-Za-z]*\d+[A-Za-z\d-]*\b")
_NAME_OF = re.compile(r"\bnames? of (?:the |a |an |its |their |his |her )?"
                      r"((?:[\w-]+\s+){0,2}?[\w-]+)"
                      r"(?=\s+(?:who|that|which|whose|in|at|of|for|on|to|from|with)\b|\W*$)",
                      re.I)
_WANTS_PERSON = re.compile(
    r"^\W*(and\s+|so\s+|but\s+)?(who|whom|whose)\b|\b(what is the name of|name the)\b", re.I)

_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|"
                     r"million|billion|half|quarter|dozen)\b", re.I)
_DATE = re.compile(r"\b(1[89]\d\d|20\d\d|January|February|March|April|May|June|July|August|"
                   r"September|October|November|December|Q[1-4])\b")


@dataclass
class Features:
    score: float
    margin: float
    lexical: float
    dense: float
    type_ok: float
    identifiers_ok: float
    unknown_share: float

    def vector(self) -> list[float]:
        return [self.score, self.margin, self.lexical, self.dense, self.type_ok,
                self.identifiers_ok, self.unknown_share]


_KINDS: tuple[tuple[str, re.Pattern[str], re.Pattern[str], bool, bool], ...] = (
    # (name, the question asks for it, a sentence holds it, ranks down without it,
    #  abstains without it) -- in the order a missing kind is reported
    ("date", _WANTS_DATE, _DATE, True, True),
    ("duration", _WANTS_DURATION, _DURATION, True, True),
    ("count", _WANTS_COUNT, _COUNT, True, True),
    ("measurement", _WANTS_MEASURE, _MEASURE, True, True),
    ("price", _WANTS_MONEY, _MONEY, True, True),
    ("model number", _WANTS_MODEL, _MODEL, False, True),
    ("number", _WANTS_NUMBER, _NUMBER, True, False),
)


@functools.lru_cache(maxsize=256)
def _asked_kinds(question: str) -> tuple[tuple[str, re.Pattern[str], bool, bool], ...]:
    """The kinds of answer the question asks for (read once per question, not once per
    candidate): name, the pattern a sentence must hold, whether it ranks and abstains."""
    return tuple((name, has, ranks, abstains) for name, ask, has, ranks, abstains in _KINDS
                 if ask.search(question))


def missing_answer_kind(question: str, sentence: str) -> str | None:
    """What the question asks for that the sentence plainly lacks ("gives no price", "names
    no commerce secretary"), or None. Such a sentence cannot be the answer, however close
    its other words are: the assistant abstains rather than quote it."""
    sentence = tx.without_links(sentence)
    for name, has, _, abstains in _asked_kinds(question):
        if abstains and not has.search(sentence):
            return f"gives no {name}"
    named = _NAME_OF.search(question)
    if named:  # "the name of the Commerce Secretary": a sentence that names no secretary
        wanted = tx.content_terms(named.group(1))
        words = set(tx.terms(sentence))
        if wanted and not any(v in words for t in wanted for v in tx.variants(t)):
            return f"names no {' '.join(wanted)}"
    return None


def answer_type_missing(question: str, sentence: str) -> bool:
    """Does the question ask for a date, a count, a measurement, a price or a model number
    that the sentence does not hold, or for "the name of the X" where it names no X?"""
    return missing_answer_kind(question, sentence) is not None


def forced_abstention(question: str, best: Candidate, feats: Features
                      ) -> tuple[bool, str | None]:
    """Whether to abstain whatever the confidence says, and what the best sentence lacks:
    nothing in it is about the question, or it lacks the kind of answer asked for."""
    lacking = missing_answer_kind(question, best.text)
    return lacking is not None or max(feats.dense, feats.lexical) < MIN_RELEVANCE, lacking


def answer_type_ok(question: str, sentence: str) -> bool:
    """Does the sentence hold the kind of thing asked for (a figure, a count, a date)?"""
    wanted = [has for _, has, ranks, _ in _asked_kinds(question) if ranks]
    person = _wants_person(question)
    if not wanted and not person:
        return True
    sentence = tx.without_links(sentence)  # a link's digits are not a date or a figure
    if any(not has.search(sentence) for has in wanted):
        return False
    return not (person and not _names_new(question, sentence))


@functools.lru_cache(maxsize=256)
def _wants_person(question: str) -> bool:
    return bool(_WANTS_PERSON.search(question))


_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][\w&'’-]*[A-Za-z]\w*|\b[A-Z]{2,}\w*")


def _names_new(question: str, sentence: str) -> bool:
    """Does the sentence name someone the question does not (a capitalised word that does
    not open the sentence, or an acronym)? The answer to "who" is a name."""
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    return any(m.group().lower() not in asked for m in _NAME.finditer(sentence.strip()))


_WANTS_NAMES = re.compile(
    r"^\W*(and\s+|so\s+|but\s+)?(who|whom|whose|which\s+of\s+(them|these|those)\b"
    r"|which\s+(\w+\s+){0,3}?\w+s\b(?! of\b))"
    r"|\b(what is the name of|name the|list the|what are the names)\b", re.I)
_WANTS_PURPOSE = re.compile(
    r"\b(meant|intended|designed|supposed) to\b|\b(aim|aims|goal|goals|purpose|point|objective"
    r"|intent|intention)\b|\bwhy (did|do|does|was|were|is|are)\b.{0,60}\b(impose|introduce"
    r"|adopt|create|restrict|ban|use)", re.I)
_PURPOSE = re.compile(
    r"\b(aim(s|ed|ing)?|goal|purpose|intend(s|ed)?|designed to|meant to|in order to|so that"
    r"|so as to|used to|serves? to|to (deny|prevent|stop|ensure|allow|enable|protect|limit))\b",
    re.I)
_WANTS_GAIN = re.compile(
    # what someone gets out of a deal ("What does the US get out of it?", "Who benefits?"),
    # not what a call gives back ("What do you get back from a function...?")
    r"\bwhat\s+(?:does|do|did|will|would|can|could|should)\s+(?:[\w'’-]+\s+){1,4}?"
    r"(?:get|gain|earn|receive|win)\b(?!\s+(?:back|rid|used|to)\b)|\bin it for\b"
    r"|\bwho (?:benefits|gains|profits)\b|\b(?:benefit|payoff|upside)s?\s+(?:for|to|of)\b", re.I)
_GAIN = re.compile(
    r"\b(revenue|profits?|share|cut|fees?|royalt(y|ies)|payments?|income|proceeds|taxe?s?|levy"
    r"|gains?|benefits?|earn(s|ed|ings)?)\b|%|\bper ?cent\b", re.I)
_RANK_UP_KINDS: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    # (weight name, the question asks for it, a sentence holds it): a sentence holding what
    # is asked ranks up by that weight; one without it is not ruled out
    ("purpose", _WANTS_PURPOSE, _PURPOSE),
    ("gain", _WANTS_GAIN, _GAIN),
)
_FOCUS = re.compile(r"^\W*(?:(?:and|so|but)\s+)?(?:what|which)\s+((?:[\w-]+\s+){0,2}?[\w-]+)"
                    r"\s+(?:does|do|did|is|are|was|were|has|have|had|can|could|will|would|"
                    r"should|may|might|must|concerning|about|of|for|in|on)\b", re.I)
_WH_START = re.compile(r"^\W*(?:and\s+|so\s+|but\s+)?(who|what|which|why|how|when|where)\s+"
                       r"(\w+)", re.I)


@dataclass(frozen=True)
class QuestionShape:
    """What the question's form says about its answer, beyond its words."""

    wants_names: bool = False
    rank_up: tuple[tuple[str, re.Pattern[str]], ...] = ()
    """The kinds of answer asked for that rank a sentence holding them up (weight name,
    pattern): an aim for "what was it meant to achieve", a gain for "what does X get"."""
    echo: re.Pattern[str] | None = None
    """The question's opening ("who makes"): a sentence holding it restates the question
    ("if you care who makes the gear...") rather than answering it."""
    asked: frozenset[str] = frozenset()
    long_echo: re.Pattern[str] | None = None
    """The question's wh-clause, four words long ("who makes the gear"): a sentence holding it
    embeds the question itself ("if you care who makes the gear...")."""
    bigrams: frozenset[tuple[str, str]] = frozenset()
    """Consecutive content words of the question ("export restrictions")."""
    given_focus: re.Pattern[str] | None = None
    """What a "what/which X" question asks about, referred to as already known ("the policy
    change" not followed by a name or a colon): a sentence saying "Nvidia welcomed the policy
    change" takes the change as given instead of saying what it was. "the base class
    'object'" names it, and is not matched."""

    @classmethod
    def of(cls, question: str) -> QuestionShape:
        m = _WH_START.search(question)
        echo = re.compile(rf"\b{m.group(1)}\s+{re.escape(m.group(2))}\b", re.I) if m else None
        long_echo = None
        if m:
            words = tx.terms(question[m.start(1):])[:4]
            if len(words) == 4:
                long_echo = re.compile(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", re.I)
        given_focus = None
        f = _FOCUS.search(question)
        if f:
            words = [w for w in tx.terms(f.group(1))[:2] if w not in tx.STOPWORDS]
            if words:
                given_focus = re.compile(  # the name that may follow is case-sensitive
                    r"(?i:\b(?:the|this|that|these|those)\s+" + r"\W+".join(map(re.escape, words))
                    + r"\b)(?!\s*(?:[:\"“'‘(]|[A-Z]))")
        return cls(wants_names=bool(_WANTS_NAMES.search(question)),
                   rank_up=tuple((name, has) for name, asks, has in _RANK_UP_KINDS
                                 if asks.search(question)), echo=echo,
                   asked=frozenset(w.lower() for w in re.findall(r"\w+", question)),
                   long_echo=long_echo, bigrams=_bigrams(question), given_focus=given_focus)

    @property
    def wants_gain(self) -> bool:
        return any(name == "gain" for name, _ in self.rank_up)

    def phrase_share(self, sentence: str) -> float:
        """Share of the question's consecutive word pairs that the sentence also holds."""
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & _bigrams(sentence)) / len(self.bigrams)

    def new_names(self, sentence: str) -> int:
        """Names in the sentence that the question does not hold."""
        return len({m.group().lower() for m in _NAME.finditer(sentence.strip())} - self.asked)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@functools.lru_cache(maxsize=8192)
def _bigrams(text: str) -> frozenset[tuple[str, str]]:
    words = [_stem(w) for w in tx.terms(text) if w not in tx.STOPWORDS]
    return frozenset(itertools.pairwise(words))


def rank_score(c: Candidate, query: Query, type_ok: bool,
               w: dict[str, float] = SCORE_WEIGHTS, shape: QuestionShape | None = None
               ) -> float:
    n_ident = len(query.identifiers)
    lexical = c.lexical_score(w["soft_min"], w["soft_scale"])
    score = (w["dense"] * c.dense + w["chunk_dense"] * c.chunk_dense + w["lexical"] * lexical
             + w["context"] * c.context)
    score += w["bm25"] / (1 + c.lexical_rank) if c.lexical_rank is not None else 0.0
    score += w["section_start"] * c.first_in_section
    score -= w["short"] * max(0.0, 1.0 - len(c.text) / 80)
    if n_ident:
        score += w["identifier"] * len(c.matched_identifiers) / n_ident
        score -= w["identifier_missing"] * len(c.missing_identifiers) / n_ident
    if not type_ok:
        score -= w["type_mismatch"]
    if shape is not None:
        if shape.wants_names:
            score += w["names"] * min(shape.new_names(c.text), 3) / 3
        for name, has in shape.rank_up:
            if has.search(c.text):
                score += w[name]
        if shape.echo is not None and shape.echo.search(c.text):
            score -= w["echo"]
        if shape.long_echo is not None and shape.long_echo.search(c.text):
            score -= w["long_echo"]
        score += w["phrase"] * shape.phrase_share(c.text)
        if shape.given_focus is not None and shape.given_focus.search(c.text):
            score -= w["given_focus"]
    score += w["inherit"] * c.inherited
    return score


def _novelty_penalties(cands: list[Candidate], avoid: set[tuple[str, int]]) -> list[float]:
    """A follow-up asks for something new: rank down what was already quoted in this
    conversation, and sentences that say nearly the same thing."""
    given = [c.vector for c in cands if (c.doc_id, c.start) in avoid]
    if not given:
        return [0.0] * len(cands)
    sims = np.stack([c.vector for c in cands]) @ np.stack(given).T
    closest = sims.max(axis=1)
    return [REPEAT_PENALTY * float(np.clip((s - 0.6) / 0.4, 0.0, 1.0)) for s in closest]


def confidence(f: Features) -> float:
    z = CONFIDENCE_BIAS + sum(b * x for b, x in zip(CONFIDENCE_WEIGHTS, f.vector(), strict=True))
    return 1.0 / (1.0 + math.exp(-z))


@dataclass
class Analysis:
    """A question taken as far as retrieval: what ranking works on."""

    question: str
    resolution: Resolution
    query: Query
    stats: TermStats | None = None
    candidates: list[Candidate] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def rank(a: Analysis, weights: dict[str, float]) -> tuple[list[Candidate], Features | None]:
    """Candidates best first (duplicates collapsed), and the features of the best one."""
    penalties = _novelty_penalties(a.candidates, a.query.avoid)
    shape = QuestionShape.of(a.question)
    for c, penalty in zip(a.candidates, penalties, strict=True):
        c.score = rank_score(c, a.query, answer_type_ok(a.question, c.text), weights,
                             shape) - penalty
    ranked = _collapse_duplicates(sorted(a.candidates, key=lambda c: c.score, reverse=True))
    if not ranked or a.stats is None:
        return ranked, None
    best = ranked[0]
    second = ranked[1].score if len(ranked) > 1 else 0.0
    terms = a.query.terms
    total_idf = sum(a.stats.idf.get(t, 0.0) * w for t, w in terms.items()) or 1.0
    qterms = list(terms)
    softly_found = {qterms[i] for c in ranked[:20] for i in range(len(qterms))
                    if c.exact[i] or c.soft[i] >= weights["soft_min"]}
    unknown = sum(a.stats.idf.get(t, 0.0) * terms[t] for t in a.stats.unknown
                  if t in terms and t not in softly_found)
    return ranked, Features(score=best.score, margin=best.score - second, lexical=best.lexical,
                            dense=best.dense,
                            type_ok=float(answer_type_ok(a.question, best.text)),
                            identifiers_ok=float(not best.missing_identifiers),
                            unknown_share=unknown / total_idf)


class Answerer:
    """Answers questions from one open index. Thread-compatible: one ``ask`` at a time."""

    def __init__(self, index: OpenIndex, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        onnx = index.onnx_file
        self.embedder = Embedder(Tokenizer(onnx.parent / "tokenizer.json"),
                                 OnnxEncoder(onnx, threads=settings.embed_threads))
        self.retriever = Retriever(index)
        titles = {d.title for d in index.manifest.documents.values()}
        self.not_covered = ("The briefing does not cover this." if len(titles) == 1
                            else "The indexed documents do not cover this.")

    def analyse(self, question: str, conversation: Conversation | None = None
                ) -> Analysis:
        """Validate, resolve in the conversation, embed and retrieve: everything but ranking."""
        cleaned = tx.clean_question(question)
        if not cleaned:
            raise InputError("the question is empty; type a question about the documents")
        if len(cleaned) > self.settings.max_question_chars:
            raise InputError(f"the question is {len(cleaned):,} characters long; the limit is "
                             f"{self.settings.max_question_chars:,} (ASSISTANT_MAX_QUESTION_CHARS)")
        conv = conversation or Conversation(id="")
        res = conv.resolve(cleaned)
        query = Query(text=res.text, terms=res.terms, identifiers=res.identifiers,
                      avoid=res.avoid)
        analysis = Analysis(question=cleaned, resolution=res, query=query)
        if not query.terms and not query.identifiers:
            return analysis
        t = time.perf_counter()
        qterms = list(query.terms)
        qvec = self.embedder.embed([query.text])[0]
        term_vectors = self.retriever.stored_term_vectors(qterms)
        missing = [w for w in qterms if w not in term_vectors]
        if missing:  # words the corpus never uses: embed them (short: one small batch)
            term_vectors.update(zip(missing, self.embedder.embed(missing), strict=True))
        analysis.timings["embed"] = _ms(t)
        t = time.perf_counter()
        analysis.stats = self.retriever.term_stats(qterms)
        analysis.candidates = self.retriever.candidates(
            query, qvec, analysis.stats, self.settings.candidates, term_vectors)
        analysis.timings["retrieve"] = _ms(t)
        return analysis

    def ask(self, question: str, conversation: Conversation | None = None,
            qid: str | None = None, top_k: int | None = None) -> Answer:
        t0 = time.perf_counter()
        a = self.analyse(question, conversation)
        answer = Answer(id=qid or uuid.uuid4().hex[:12], question=a.question,
                        conversation=conversation.id if conversation else None,
                        resolved_question=a.resolution.resolved, abstained=True,
                        message=self.not_covered, confidence=0.0)
        conv = conversation or Conversation(id="")
        if a.stats is None:
            answer.message = f"{self.not_covered} (The question has no words to search for.)"
            conv.record(a.question, a.resolution, None, None)
            answer.timings_ms = {"total": _ms(t0)}
            return answer
        t = time.perf_counter()
        ranked, feats = rank(a, SCORE_WEIGHTS)
        if feats is not None:
            answer.confidence = round(confidence(feats), 4)
            forced, lacking = forced_abstention(a.question, ranked[0], feats)
            answer.abstained = answer.confidence < self.settings.abstain_below or forced
            if answer.abstained and lacking is not None:
                answer.message = f"{self.not_covered} (The closest passage {lacking}.)"
        if not answer.abstained:
            span = self._answer_span(ranked[0], a.query, ranked[1] if len(ranked) > 1 else None)
            answer.answer = span
            answer.message = span.text
        k = top_k or self.settings.top_k
        answer.citations = [self._cite(i + 1, c, is_answer=(i == 0 and not answer.abstained))
                            for i, c in enumerate(ranked[:k])]
        a.timings["rank"] = _ms(t)
        conv.record(a.question, a.resolution, answer.answer.text if answer.answer else None,
                    (answer.answer.doc_id, ranked[0].start) if answer.answer else None)
        a.timings["total"] = _ms(t0)
        answer.timings_ms = a.timings
        return answer

    def _answer_span(self, best: Candidate, query: Query,
                     runner_up: Candidate | None = None) -> AnswerSpan:
        """The best sentence; joined with its neighbour when that scores almost as well (the
        answer is split across both), or with the next one(s) when it cannot stand alone."""
        start, end, text = best.start, best.end, best.text
        sentences = 1
        if (runner_up is not None and runner_up.doc_id == best.doc_id
                and runner_up.score >= best.score - JOIN_MARGIN):
            lo, hi = min(start, runner_up.start), max(end, runner_up.end)
            joined = self._text(best.doc_id, lo, hi)
            first, second = (best, runner_up) if best.start < runner_up.start else (runner_up, best)
            gap = joined[first.end - lo: second.start - lo]
            if hi - lo <= MAX_ANSWER_CHARS and _ADJACENT_GAP.fullmatch(gap):
                start, end, text, sentences = lo, hi, joined, 2
        while (sentences < MAX_ANSWER_SENTENCES and (text.rstrip().endswith(":")
                                                     or len(text) < 40)):
            _, nxt = self.retriever.neighbours(best.doc_id, start, end)
            if nxt is None or nxt[1] - start > MAX_ANSWER_CHARS:
                break
            end = nxt[1]
            text = self._text(best.doc_id, start, end)
            sentences += 1
        if (sentences < MAX_ANSWER_SENTENCES and _WANTS_REASON.search(query.text)
                and not _REASON.search(text)):
            # "Why...?" answered by a sentence that states the fact and not its reason: the
            # reason is the next sentence when it opens like one ("This is for...")
            _, nxt = self.retriever.neighbours(best.doc_id, start, end)
            if (nxt is not None and nxt[1] - start <= MAX_ANSWER_CHARS
                    and _OPENS_WITH_REASON.match(nxt[2])
                    and _ADJACENT_GAP.fullmatch(self._text(best.doc_id, end, nxt[0]))):
                end = nxt[1]
                text = self._text(best.doc_id, start, end)
        if sentences < MAX_ANSWER_SENTENCES and _LEANS_ON_PREVIOUS.match(text):
            # "It matters if you follow AI strategy": quoted alone, the reader cannot tell
            # what "it" is; the sentence before it (same section, adjacent) says
            prev, _ = self.retriever.neighbours(best.doc_id, start, end)
            if (prev is not None and end - prev[0] <= MAX_ANSWER_CHARS
                    and _ADJACENT_GAP.fullmatch(self._text(best.doc_id, prev[1], start))):
                start = prev[0]
                text = self._text(best.doc_id, start, end)
        if len(text) > MAX_ANSWER_CHARS:
            start, end = _best_clause(text, start, query)
            text = text[start - best.start: end - best.start]
        return AnswerSpan(text=text, doc_id=best.doc_id, start=start, end=end)

    def _text(self, doc_id: str, start: int, end: int) -> str:
        row = self.index.conn.execute("SELECT substr(text, ?, ?) FROM documents WHERE doc_id=?",
                                      (start + 1, end - start, doc_id)).fetchone()
        return str(row[0])

    def _cite(self, rank: int, c: Candidate, is_answer: bool) -> Citation:
        why = [f"dense {c.dense:.2f} (passage {c.chunk_dense:.2f})"]
        if c.matched_terms:
            why.append("terms: " + ", ".join(c.matched_terms[:8]))
        if c.matched_identifiers:
            why.append("identifiers: " + ", ".join(c.matched_identifiers))
        if c.missing_identifiers:
            why.append("lacks: " + ", ".join(c.missing_identifiers))
        if not is_answer and rank == 1:
            why.append("closest passage, not an answer")
        return Citation(rank=rank, doc_id=c.doc_id, title=c.title, section=c.section,
                        quote=c.text, start=c.start, end=c.end, score=round(c.score, 4),
                        why="; ".join(why), is_answer=is_answer)


def _best_clause(text: str, start: int, query: Query) -> tuple[int, int]:
    """Within an over-long sentence, the window of clauses (at most 400 characters) that
    holds most of the query's terms."""
    cuts = [0] + [m.end() for m in re.finditer(r"[;:—–]\s+|,\s+", text)] + [len(text)]
    best = (0, min(len(text), MAX_ANSWER_CHARS))
    best_hits = -1.0
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > MAX_ANSWER_CHARS:
                break
            piece = set(tx.terms(text[cuts[i]:cuts[j]]))
            hits = float(sum(w for t, w in query.terms.items() if t in piece))
            if hits > best_hits:
                best_hits, best = hits, (cuts[i], cuts[j])
    s, e = best
    while e > s and text[e - 1] in " ,;:—–":
        e -= 1
    return start + s, start + e


def _collapse_duplicates(ranked: list[Candidate]) -> list[Candidate]:
    """Drop candidates that repeat a better-ranked one (same text, or nearly the same vector
    and words: the same passage in two documents, or an overlapping chunk)."""
    kept: list[Candidate] = []
    seen_text: set[str] = set()
    kept_vectors = np.zeros((0, 0), dtype=np.float32)
    for c in ranked:
        key = " ".join(tx.terms(c.text))
        if key in seen_text:
            continue
        if len(kept_vectors) and float((kept_vectors @ c.vector).max()) > 0.98:
            continue
        seen_text.add(key)
        kept.append(c)
        if len(kept) <= 20:
            kept_vectors = np.stack([k.vector for k in kept])
        if len(kept) >= 60:  # no one reads further; the rest cannot matter
            break
    return kept


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)
