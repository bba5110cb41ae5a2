"""The answer pipeline: question -> analysis -> candidates -> features -> scores -> quote,
citations and abstention.

``Answerer.ask`` takes the conversation as a value and returns the new one with the
answer (``Reply``); nothing the caller holds is changed. Each stage is its own module:

    analysis.py    QuestionAnalysis, built once per question
    candidates.py  dense + lexical candidate sentences with their raw evidence
    features.py    the named feature rows
    scorer.py      the Scorer seam and the fitted linear ranker
    quote.py       the verbatim answer span
    citations.py   the citations, diverse where the best ones are close
    abstain.py     the fitted abstention model
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from assistant import text as tx
from assistant.embed import Embedder, OnnxEncoder, Tokenizer
from assistant.errors import InputError
from assistant.index.store import OpenIndex
from assistant.models import Answer, Citation
from assistant.qa import lang
from assistant.qa.abstain import (
    ABSTAIN_FEATURES,
    RIVALLED,
    Abstainer,
    abstention_features,
    check_model,
    missing_pins,
    pin_kind,
    pinned_down,
    rivals,
)
from assistant.qa.analysis import QuestionAnalysis, analyse
from assistant.qa.candidates import Candidate, Retriever
from assistant.qa.citations import choose_citations
from assistant.qa.conversation import Conversation
from assistant.qa.features import FeatureExtractor
from assistant.qa.quote import QuoteBuilder
from assistant.qa.scorer import AnswerModel, FittedScorer, Scorer, load_model
from assistant.render import BEST_GUESS
from assistant.settings import Settings

MAX_RANKED = 60
"""Candidates kept after ranking (duplicates collapsed); no one reads further."""
LONG_QUESTION_WORDS = 40
"""From this many words, a question not covered is told that it may be asking too much at
once."""


@dataclass
class Reply:
    answer: Answer
    conversation: Conversation


@dataclass
class Ranked:
    """A question taken through ranking: what the quote, citations and abstention read."""

    analysis: QuestionAnalysis
    candidates: list[Candidate] = field(default_factory=list)
    """Best first, duplicates collapsed."""
    abstention: np.ndarray = field(default_factory=lambda: np.zeros(0))
    timings: dict[str, float] = field(default_factory=dict)


EACH_LIMIT = 20
"""``ask_each`` looks at most at this many documents (those retrieval found first)."""


def not_covered_message(corpus_name: str | None, documents: int) -> str:
    """What an abstention says: the corpus by its configured name, else by its size (a corpus
    of one document is not necessarily a briefing)."""
    if corpus_name:
        return f"The {corpus_name} does not cover this."
    return ("The document does not cover this." if documents == 1
            else "The indexed documents do not cover this.")


class Answerer:
    """Answers questions from one open index. Thread-compatible: one ``ask`` at a time."""

    def __init__(self, index: OpenIndex, settings: Settings, model: AnswerModel | None = None,
                 scorer: Scorer | None = None, embedder: Embedder | None = None) -> None:
        """``embedder``: the index model's, when the caller has loaded it already
        (``assistant.preload``)."""
        self.index = index
        self.settings = settings
        self.language = lang.load(settings.language)
        self.model = model or load_model()
        check_model(self.model, self.language)
        onnx = index.onnx_file
        self.embedder = embedder or Embedder(
            Tokenizer(onnx.parent / "tokenizer.json"),
            OnnxEncoder(onnx, threads=settings.embed_threads, spin=False))
        self.retriever = Retriever(index, self.language)
        self.features = FeatureExtractor()
        self.scorer: Scorer = scorer or FittedScorer(self.model.ranker)
        self.abstainer = Abstainer(self.model.abstainer, settings.abstain_below)
        self.quotes = QuoteBuilder(self.retriever)
        self.not_covered = not_covered_message(settings.corpus_name,
                                               len(index.manifest.documents))

    def gather(self, question: str, conversation: Conversation | None = None
               ) -> tuple[QuestionAnalysis, list[Candidate], dict[str, float]]:
        """Validate, resolve in the conversation, embed, retrieve and extract features:
        everything before scoring (what ``scripts/fit.py`` fits on)."""
        cleaned = tx.clean_question(question)
        if not cleaned:
            raise InputError("the question is empty; type a question about the documents")
        if len(cleaned) > self.settings.max_question_chars:
            raise InputError(f"the question is {len(cleaned):,} characters long; the limit is "
                             f"{self.settings.max_question_chars:,} (ASSISTANT_MAX_QUESTION_CHARS)")
        a = analyse(cleaned, conversation or Conversation(), self.language)
        timings: dict[str, float] = {}
        if not a.query.terms and not a.query.identifiers:
            return a, [], timings
        t = time.perf_counter()
        qterms = list(a.query.terms)
        a.term_vectors = self.retriever.stored_term_vectors(qterms)
        a.stats = self.retriever.term_stats(qterms)
        limit = self.settings.candidates
        lexical = self.retriever.start_lexical(a.query, a.stats, limit)
        try:
            # words the corpus never uses are embedded with the question, in the same forward
            # pass (one model run instead of two: padding is masked, the vectors are the same)
            missing = [w for w in qterms if w not in a.term_vectors]
            vectors = self.embedder.embed([a.query.text, *missing])
            a.vector = vectors[0]
            a.term_vectors.update(zip(missing, vectors[1:], strict=True))
            timings["embed"] = _ms(t)
            t = time.perf_counter()
            cands = self.retriever.candidates(a.query, a.vector, a.stats, limit,
                                              a.term_vectors, pending=lexical)
        except Exception:
            lexical.wait()  # never leave it reading the index after a failure here
            raise
        self.features.extract(a, cands)
        timings["retrieve"] = _ms(t)
        return a, cands, timings

    def rank(self, question: str, conversation: Conversation | None = None,
             documents: frozenset[str] | None = None) -> Ranked:
        """The question's candidates scored and ordered, with the abstainer's evidence;
        with ``documents``, only the sentences of those documents (by doc id)."""
        a, cands, timings = self.gather(question, conversation)
        if documents is not None:  # asked of some documents only: the rest cannot answer
            cands = [c for c in cands if c.doc_id in documents]
        t = time.perf_counter()
        out = order(a, cands, self.scorer.score(a, cands))
        out.timings = {**timings, "rank": _ms(t)}
        return out

    def ask(self, question: str, conversation: Conversation | None = None,
            qid: str | None = None, top_k: int | None = None,
            documents: frozenset[str] | None = None) -> Reply:
        """Answer ``question`` in ``conversation``; ``documents`` (doc ids) restricts the
        answer and its citations to those documents."""
        t0 = time.perf_counter()
        conv = conversation or Conversation()
        out = self.reply(self.rank(question, conv, documents), conv, qid, top_k, t0)
        if documents is not None:
            out.answer.scope = sorted(documents)
        return out

    def ask_each(self, question: str, documents: frozenset[str] | None = None,
                 limit: int = EACH_LIMIT) -> list[Answer]:
        """"What does each document say?": the best passage of each document that covers
        ``question``, one answer per document with that one citation, most likely first:
        the documents that answer it surely, or, when none does, those whose best passage is
        a best guess (one document's best guess beside another's sure answer is noise).
        Retrieval runs once; each of the ``limit`` documents whose sentences it found is
        then ranked and judged on its own, as a question asked of that document alone
        would be."""
        t0 = time.perf_counter()
        conv = Conversation()
        a, cands, timings = self.gather(question, conv)
        if documents is not None:
            cands = [c for c in cands if c.doc_id in documents]
        out: list[Answer] = []
        for doc in list(dict.fromkeys(c.doc_id for c in cands))[:limit]:
            mine = [c for c in cands if c.doc_id == doc]
            ranked = order(a, mine, self.scorer.score(a, mine))
            ranked.timings = dict(timings)
            answer = self.reply(ranked, conv, top_k=1, started=t0).answer
            if not answer.abstained:
                answer.scope = [doc]
                out.append(answer)
        sure = [x for x in out if x.outcome == "answer"]
        return sorted(sure or out, key=lambda x: x.confidence, reverse=True)

    def reply(self, r: Ranked, conv: Conversation, qid: str | None = None,
              top_k: int | None = None, started: float | None = None,
              abstainer: Abstainer | None = None) -> Reply:
        """The answer for a ranked question: quote or abstention, citations, and the
        conversation with this turn added."""
        t0 = time.perf_counter() if started is None else started
        abstainer = abstainer or self.abstainer
        a = r.analysis
        answer = Answer(id=qid or uuid.uuid4().hex[:12], question=a.question,
                        conversation=conv.id or None,
                        resolved_question=a.resolution.resolved, abstained=True,
                        message=self.not_covered, confidence=0.0)
        if not r.candidates:
            if a.stats is None:
                answer.message = f"{self.not_covered} (The question has no words to search for.)"
            answer.timings_ms = {**r.timings, "total": _ms(t0)}
            return Reply(answer, conv.after(a.question, a.resolution, a.asks_for_names,
                                            None, None, a.language))
        t = time.perf_counter()
        best = r.candidates[0]
        answer.outcome = abstainer.outcome(r.abstention)
        answer.confidence = round(abstainer.confidence(r.abstention), 4)
        answer.abstained = answer.outcome == "not_covered"
        if answer.abstained:
            answer.message = self._refusal(a, best, r.abstention)
        else:
            scores = [c.score for c in r.candidates[:20]]
            spread = (max(scores) - min(scores)) or 1.0
            span = self.quotes.build(a, best, r.candidates[1] if len(r.candidates) > 1
                                     else None, spread)
            answer.answer = span
            answer.message = (span.text if answer.outcome == "answer"
                              else f"{BEST_GUESS}: {span.text}")
        k = top_k or self.settings.top_k
        chosen = choose_citations(r.candidates, k, self.model.citation_diversity,
                                  answer.answer)
        answer.citations = [self._cite(i + 1, c, is_answer=(c is best and not answer.abstained))
                            for i, c in enumerate(chosen)]
        r.timings["answer"] = _ms(t)
        r.timings["total"] = _ms(t0)
        answer.timings_ms = r.timings
        given = answer.answer
        return Reply(answer, conv.after(a.question, a.resolution, a.asks_for_names,
                                        given.text if given else None,
                                        (given.doc_id, best.start) if given else None,
                                        a.language))

    def _refusal(self, a: QuestionAnalysis, best: Candidate, evidence: np.ndarray) -> str:
        """"Not covered", saying what the closest passage lacks where that is known: what
        the question pins down (a name, a year, a model number), else the kind of answer
        asked for -- only when the passage is otherwise about the question."""
        words = a.question.split()
        own = set(tx.terms(a.question))
        if len(words) >= 4 and not own & (a.language.stopwords | a.language.question_words):
            return (f"{self.not_covered} The question does not seem to be in "
                    f"{a.language.name}, the language the documents are searched in; "
                    f"ask it in {a.language.name}.")
        if len(words) >= LONG_QUESTION_WORDS:
            return (f"{self.not_covered} The question is long ({len(words)} words): ask "
                    "about one thing at a time.")
        missing = {p for p in missing_pins(a, best, pinned_down(a)) if len(p) > 1}
        stripped = dict.fromkeys(w.strip(".,;:?!()\"'“”‘’") for w in words)
        if evidence[RIVALLED] > 0:
            asked = [w for w in stripped
                     if tx.fold(w) in missing and pin_kind(tx.fold(w)) != "name"]
            kinds = {pin_kind(tx.fold(w)) for w in asked}
            given = [shown for folded, shown in rivals(a, best).items()
                     if pin_kind(folded) in kinds][:3]
            if asked and given:
                return f"{self.not_covered} (The closest passage gives " \
                       f"{_and(given)}, not {_and(asked)}.)"
        unmatched = evidence[ABSTAIN_FEATURES.index("unmatched")]
        if unmatched >= 0.5:
            return self.not_covered
        if missing:
            named = [w for w in stripped if w and tx.fold(w).rstrip("s") in
                     {m.rstrip("s") for m in missing}] or sorted(missing)
            return f"{self.not_covered} (The closest passage does not mention " \
                   f"{', '.join(named)}.)"
        lacking = next((k.says for k in a.kinds if not k.held_by(best.text, a.folded)), None)
        if lacking is not None and unmatched < 0.25:
            return f"{self.not_covered} (The closest passage {lacking}.)"
        return self.not_covered

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


def order(a: QuestionAnalysis, cands: list[Candidate], scores: np.ndarray) -> Ranked:
    """Candidates best first by these scores, duplicates collapsed, and the abstainer's
    evidence for that order."""
    for c, s in zip(cands, scores, strict=True):
        c.score = float(s)
    # a follow-up asks for something new: what this conversation already quoted goes last
    given = a.query.avoid
    ranked = _collapse_duplicates(sorted(cands, key=lambda c: ((c.doc_id, c.start) not in given,
                                                               c.score), reverse=True))
    return Ranked(analysis=a, candidates=ranked,
                  abstention=abstention_features(a, ranked, [c.score for c in ranked[:2]]))


def _collapse_duplicates(ranked: list[Candidate]) -> list[Candidate]:
    """Drop candidates that repeat a better-ranked one (same words, or nearly the same
    vector: the same passage in two documents, or an overlapping chunk)."""
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
        if len(kept) >= MAX_RANKED:
            break
    return kept


def _and(words: list[str]) -> str:
    """"2023", "2023 and 2015", "2023, 2015 and 2019"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 2)
