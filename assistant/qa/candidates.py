"""Candidate generation: sentences for a question, from dense and lexical evidence together.

Dense: the query vector against the FAISS chunk index; every sentence of
the top chunks is a candidate. Lexical: SQLite FTS5 over single sentences, an OR of
the query's terms (with singular/plural variants), ranked by BM25. Every read of the index
goes through ``assistant.index.meta.RetrievalSource``: no SQL here. The two candidate
lists are merged (a union: every candidate is then scored on all features by the learned scorer),
and each candidate carries the raw evidence that ``qa.features`` turns into features:

* ``dense``       cosine of the query with the sentence's own (late-chunked) vector
* ``chunk_dense`` cosine of the query with the whole chunk around it
* ``exact``/``soft`` per query term: found as written (or its other number), or the best
                  word-vector similarity to a word of the sentence
* ``in_context``  per query term: found in the section heading or document title
* ``in_window``   per query term: found in the sentence before or after
* identifiers     which of the query's identifiers ("H200", "25%") it contains, exactly
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from assistant import text as tx
from assistant.background import Background
from assistant.index.meta import RetrievalSource, Span, blob_vector, read_through
from assistant.index.store import OpenIndex
from assistant.qa import lang

Vector = npt.NDArray[np.float32]
SOFT_MIN = 0.5
"""Word-embedding similarity from which two different words count as a partial match."""
SOFT_SCALE = 0.8
"""A soft match is worth at most this much of an exact one."""
SOFT_FLOOR = 0.4
"""Similarities below this are not even recorded."""
_UNSET_BOOL = np.zeros(0, dtype=bool)
_UNSET_FLOAT = np.zeros(0)
_UNSET_BOOL.flags.writeable = False  # placeholders of fields set later: shared, so read-only
_UNSET_FLOAT.flags.writeable = False




@dataclass
class Query:
    """What is searched for: the text to embed and the weighted terms to match."""

    text: str
    terms: dict[str, float]
    """Content term -> weight (1 for the question's own words, less for context from
    earlier turns of a conversation)."""
    identifiers: list[str]
    avoid: set[tuple[str, int]] = field(default_factory=set)
    """(doc_id, start) of sentences already given as answers in this conversation."""


@dataclass
class Candidate:
    """One sentence that may answer the question, with the evidence found for it."""

    sentence_id: int
    chunk_id: int
    doc_id: str
    start: int
    end: int
    section: str
    title: str
    text: str
    vector: Vector
    dense: float = 0.0
    """Cosine of the query with the sentence's own vector."""
    chunk_dense: float = 0.0
    """Cosine of the query with the whole passage (chunk) around it."""
    dense_rank: int | None = None
    lexical_rank: int | None = None
    bm25: float = 0.0
    """Its BM25 score in the lexical search (0 when that search did not find it)."""
    proximity: float = 0.0
    """How close together the question's terms stand in it: distinct terms matched over
    the span of words they cover (0 with fewer than two)."""
    first_in_section: bool = False
    matched_terms: list[str] = field(default_factory=list)
    matched_identifiers: list[str] = field(default_factory=list)
    missing_identifiers: list[str] = field(default_factory=list)
    term_weights: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Per query term: its weight times IDF."""
    exact: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    soft: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Per query term: the best word-vector similarity to a word of the sentence, discounted
    when the word found is commoner than the question's."""
    in_context: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    in_window: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per query term: found in the sentence before or after (same section)."""
    inherited: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """For a sentence opening with a pronoun ("It terminates the loop"): the query terms it
    lacks that the sentence before it (its referent) holds."""
    features: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Filled by ``qa.features.FeatureExtractor``; read by the scorer."""
    score: float = 0.0


@dataclass
class TermStats:
    idf: dict[str, float]
    unknown: list[str]
    """Query terms that occur nowhere in the corpus."""
    df: dict[str, int] = field(default_factory=dict)
    """Sentences holding each query term (its variants pooled)."""


class TermForms:
    """The query's terms with their variants (singular, plural), built once per question
    and matched against many sentences."""

    def __init__(self, forms: list[list[str]]) -> None:
        self.size = len(forms)
        self._owners: dict[str, list[int]] = {}
        for i, f in enumerate(forms):
            for v in f:
                self._owners.setdefault(v, []).append(i)
        self._last = {v: i for i, f in enumerate(forms) for v in f}

    def found(self, words: set[str]) -> npt.NDArray[np.bool_]:
        """Per query term: does the word set hold it (any of its forms)?"""
        out = np.zeros(self.size, dtype=bool)
        for w in self._owners.keys() & words:
            out[self._owners[w]] = True
        return out

    def proximity(self, words: list[str]) -> float:
        """Distinct query terms in ``words`` over the span of words they cover (0 with
        fewer than two)."""
        where = self._last
        hits = [(pos, where[w]) for pos, w in enumerate(words) if w in where]
        distinct = {t for _, t in hits}
        if len(distinct) < 2:
            return 0.0
        return len(distinct) / (hits[-1][0] - hits[0][0] + 1)


COMMON_SHARE = 0.02
COMMON_FLOOR = 1000
"""Words in more than this share of the sentences (and more than COMMON_FLOOR of them) are
left out of the lexical search when rarer words are asked; they still count in ranking."""


class Retriever:
    def __init__(self, index: OpenIndex, language: lang.Language) -> None:
        self.index = index
        self.language = language
        self.meta: RetrievalSource = index.meta
        self.sentence_count = max(1, index.manifest.sentence_count)
        self._word_vectors: dict[str, Vector | None] = {}
        """Word vectors read so far (None: the index has none for the word). An index
        generation never changes, so a warm process reads each word once."""
        self._around: dict[int, tuple[int | None, int | None]] = {}
        self._frequencies: dict[str, int] = {}
        self._words: dict[int, tuple[str, set[str]] | None] = {}

    def term_stats(self, query_terms: Sequence[str]) -> TermStats:
        """IDF of each query term over sentences (its variants pooled), from FTS5's vocabulary."""
        forms = {v: t for t in query_terms for v in self.language.variants(t)}
        df: dict[str, int] = dict.fromkeys(query_terms, 0)
        for term, count in self._df(list(forms)).items():
            df[forms[term]] += count
        n = self.sentence_count
        idf = {t: math.log(1 + (n - min(d, n) + 0.5) / (min(d, n) + 0.5)) for t, d in df.items()}
        return TermStats(idf=idf, unknown=[t for t, d in df.items() if d == 0], df=df)

    def _df(self, words: Sequence[str]) -> dict[str, int]:
        """Sentence frequency of each word that occurs. Kept between questions (a generation
        never changes): on the server each look-up counts the word's postings."""
        counts = read_through(self._frequencies, words, self.WORD_VECTOR_CACHE,
                                self.meta.document_frequencies, 0)
        return {w: n for w, n in counts.items() if n}

    def start_lexical(self, query: Query, stats: TermStats, limit: int
                      ) -> Background[list[tuple[int, float]]]:
        """The lexical search for ``candidates(..., limit)``, started on a background thread:
        it needs no question vector, so it runs while the question is embedded and the
        vectors searched (on the server, its query runs beside theirs on connections of
        their own). Until its result is taken the caller must not read ``meta`` itself."""
        return Background(self._lexical, query, stats, limit * 3, name="lexical")

    def candidates(self, query: Query, query_vector: Vector, stats: TermStats,
                   limit: int, term_vectors: dict[str, Vector] | None = None,
                   pending: Background[list[tuple[int, float]]] | None = None
                   ) -> list[Candidate]:
        """``pending``: the lexical search ``start_lexical`` began for these arguments."""
        dense_hits = self.index.vectors.search(query_vector, limit)
        chunk_score = dict(dense_hits)
        chunk_rank = {cid: r for r, (cid, _) in enumerate(dense_hits)}
        lexical_hits = (pending.result() if pending is not None
                        else self._lexical(query, stats, limit * 3))
        lexical = [sid for sid, _ in lexical_hits]
        lex_score = dict(lexical_hits)
        rows = self.meta.sentences(list(chunk_score), lexical)
        if not rows:
            return []
        # Equal BM25 scores are ranked by place in the corpus, not by sentence id: ids
        # depend on the build's history, so an index updated in place ranks as a clean one.
        place = {r.sentence_id: (r.doc_id, r.start) for r in rows}
        lex_rank = {sid: r for r, (sid, _) in enumerate(sorted(
            lexical_hits, key=lambda h: (-h[1], place.get(h[0], ("\uffff", 0)))))}
        chunk_vecs = self.meta.chunk_vectors({r.chunk_id for r in rows} - set(chunk_score))
        qterms = list(query.terms)
        weights = np.array([query.terms[t] * stats.idf.get(t, 0.0) for t in qterms])
        bodies = [list(tx.prose_terms(r.body)) for r in rows]
        word_sets = [set(words) for words in bodies]
        soft, nears = self._soft_matches(qterms, term_vectors or {}, bodies, word_sets)
        forms = TermForms([self.language.variants(t) for t in qterms])
        ctx_cache: dict[tuple[str, str], npt.NDArray[np.bool_]] = {}
        out: list[Candidate] = []
        for (sid, cid, doc_id, start, end, blob, section, title, body), words, word_set, \
                soft_row in zip(rows, bodies, word_sets, soft, strict=True):
            vec = blob_vector(blob)
            ctx = ctx_cache.get((title, section))
            if ctx is None:
                ctx = forms.found(set(tx.terms(f"{title} {section}")))
                ctx_cache[(title, section)] = ctx
            exact = forms.found(word_set)
            idents = set(tx.identifiers(body, self.language.stopwords)) | word_set
            present = [tx.identifier_present(i, idents) for i in query.identifiers]
            # every field given, so none of the dataclass's default factories runs (a
            # fifth of this loop's time); in_window, inherited and features are set later
            out.append(Candidate(
                sentence_id=sid, chunk_id=cid, doc_id=doc_id, start=start, end=end,
                section=section, title=title, text=body, vector=vec,
                dense=float(vec @ query_vector),
                chunk_dense=(chunk_score[cid] if cid in chunk_score
                             else float(chunk_vecs[cid] @ query_vector)),
                dense_rank=chunk_rank.get(cid), lexical_rank=lex_rank.get(sid),
                bm25=lex_score.get(sid, 0.0), proximity=forms.proximity(words),
                first_in_section=False,
                matched_terms=[t for t, h in zip(qterms, exact, strict=True) if h],
                matched_identifiers=[i for i, p in zip(query.identifiers, present,
                                                       strict=True) if p],
                missing_identifiers=[i for i, p in zip(query.identifiers, present,
                                                       strict=True) if not p],
                term_weights=weights, exact=exact, soft=soft_row, in_context=ctx,
                in_window=_UNSET_BOOL, inherited=_UNSET_BOOL, features=_UNSET_FLOAT))
        self._weigh_soft_matches(out, nears, qterms, stats)
        self._read_neighbours(out, forms)
        return out

    def _weigh_soft_matches(self, cands: list[Candidate], nears: list[list[str]],
                            qterms: list[str], stats: TermStats) -> None:
        """A soft match is worth the rarity of the word it found, not of the question's word:
        a word the corpus never uses ("respond") must not count as rare when it merely
        resembles a common one ("response")."""
        df = self._df(sorted({w for near in nears for w in near if w}))
        n = self.sentence_count
        for c, near in zip(cands, nears, strict=True):
            for i, word in enumerate(near):
                if not word or c.exact[i]:
                    continue
                d = min(df.get(word, 1), n)
                idf = math.log(1 + (n - d + 0.5) / (d + 0.5))
                own = stats.idf.get(qterms[i], 0.0)
                if own > 0:
                    c.soft[i] *= min(1.0, idf / own)
                if c.soft[i] >= SOFT_MIN:
                    c.matched_terms.append(f"{qterms[i]}≈{word}")

    def _read_neighbours(self, cands: list[Candidate], forms: TermForms) -> None:
        """What the sentences just before and after each candidate say, in a few indexed
        queries: whether the candidate opens its section, which query terms its neighbours
        hold (``in_window``), and, for a sentence opening with a pronoun, the terms its
        referent holds (``inherited``)."""
        if not cands:
            return
        around = self._adjacent([c.sentence_id for c in cands])
        info = self._section_and_words(
            sorted({x for pair in around.values() for x in pair if x is not None}))
        none = np.zeros(forms.size, dtype=bool)
        for c in cands:
            pid, nid = around.get(c.sentence_id, (None, None))
            prev = info.get(pid) if pid is not None else None
            nxt = info.get(nid) if nid is not None else None
            c.first_in_section = prev is None or prev[0] != c.section
            prev_found = forms.found(prev[1]) if prev and not c.first_in_section else none
            next_found = forms.found(nxt[1]) if nxt and nxt[0] == c.section else none
            c.in_window = prev_found | next_found
            c.inherited = (prev_found & ~c.exact if self.language.leaning_openers.match(c.text)
                           else none)

    NEIGHBOUR_CACHE = 200_000
    """Most sentences whose neighbours (and whose section and words) are kept between
    questions: a generation never changes, and the same passages come up again."""

    def _adjacent(self, sentence_ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
        return read_through(self._around, sentence_ids, self.NEIGHBOUR_CACHE,
                              self.meta.adjacent_ids, (None, None))

    def _section_and_words(self, sentence_ids: list[int]) -> dict[int, tuple[str, set[str]]]:
        def load(ids: list[int]) -> dict[int, tuple[str, set[str]] | None]:
            return {sid: (section, set(tx.prose_terms(body)))
                    for sid, (section, body) in self.meta.sections_and_bodies(ids).items()}

        found = read_through(self._words, sentence_ids, self.NEIGHBOUR_CACHE, load, None)
        return {sid: v for sid, v in found.items() if v is not None}

    def _soft_matches(self, qterms: list[str], term_vectors: dict[str, Vector],
                      bodies: list[list[str]], word_sets: list[set[str]]
                      ) -> tuple[npt.NDArray[np.float64], list[list[str]]]:
        """Per sentence and query term, the best similarity (recorded from SOFT_FLOOR) to any
        word of the sentence, by the words' own embeddings ("money" finds "revenue",
        "Washington" finds "US"), and that word. All sentences in a few array operations:
        each sentence's words are one segment of a column list, and a segment's best is its
        maximum, the first word holding it on ties."""
        credit = np.zeros((len(word_sets), len(qterms)))
        near = [[""] * len(qterms) for _ in word_sets]
        usable = [i for i, t in enumerate(qterms) if t in term_vectors]
        stop = self.language.stopwords
        words = sorted({w for b in bodies for w in b if w not in stop and len(w) > 1
                        and not w.isdigit()})
        vocab = self._read_word_vectors(words) if usable and words else {}
        if not vocab:
            return credit, near
        names = list(vocab)
        col = {w: j for j, w in enumerate(names)}
        sims = np.stack([term_vectors[qterms[i]] for i in usable]) @ np.stack(
            [vocab[w] for w in names]).T
        cols = [[col[w] for w in s if w in col] for s in word_sets]
        sizes = np.array([len(c) for c in cols])
        held = np.flatnonzero(sizes)  # sentences with at least one such word
        if not len(held):
            return credit, near
        flat = np.fromiter((j for c in cols for j in c), dtype=np.intp, count=int(sizes.sum()))
        starts = (np.cumsum(sizes) - sizes)[held]
        sub = sims[:, flat]
        best = np.maximum.reduceat(sub, starts, axis=1)
        segment = np.repeat(np.arange(len(held)), sizes[held])
        where = np.where(sub == best[:, segment], np.arange(len(flat)), len(flat))
        first = np.minimum.reduceat(where, starts, axis=1)
        best64 = best.astype(np.float64)
        for row, k in zip(*np.nonzero(best64 >= SOFT_FLOOR), strict=True):
            c, i = held[k], usable[row]
            credit[c, i] = best64[row, k]
            near[c][i] = names[flat[first[row, k]]]
        return credit, near

    def stored_term_vectors(self, words: Sequence[str]) -> dict[str, Vector]:
        """Vectors the index already holds for these words (embedded at build time)."""
        return self._read_word_vectors(list(words))

    WORD_VECTOR_CACHE = 50_000
    """Most word vectors kept between questions (~75 MB at 384 dimensions)."""

    def _read_word_vectors(self, words: list[str]) -> dict[str, Vector]:
        found = read_through(self._word_vectors, words, self.WORD_VECTOR_CACHE,
                               self._load_word_vectors, None)
        return {w: v for w, v in found.items() if v is not None}

    def _load_word_vectors(self, words: list[str]) -> dict[str, Vector | None]:
        return dict(self.meta.word_vectors(words))  # a damaged table: IndexCorruptError

    def _lexical(self, query: Query, stats: TermStats, limit: int) -> list[tuple[int, float]]:
        known = [t for t in query.terms if stats.idf.get(t, 0) > 0 and t not in stats.unknown]
        # A word in a large share of the sentences adds little to BM25's order but costs its
        # whole posting list (at 100,000 chunks, most of a query's time): search the rarer
        # words, and the common ones only when nothing rarer is asked.
        common = COMMON_SHARE * self.sentence_count
        rare = [t for t in known if stats.df.get(t, 0) <= max(common, COMMON_FLOOR)]
        if not rare:
            rare = sorted(known, key=lambda t: stats.df.get(t, 0))[:2]
        forms = sorted({v for t in rare for v in self.language.variants(t)})
        if not forms:
            return []
        return self.meta.lexical(forms, limit)  # a damaged FTS table: IndexCorruptError

    def neighbours(self, doc_id: str, start: int, end: int) -> tuple[Span | None, Span | None]:
        """The sentences just before and after a span in its document (for answer spans)."""
        return self.meta.neighbours(doc_id, start, end)

    def document_slice(self, doc_id: str, start: int, end: int) -> str:
        """``document_text[start:end]``, read without loading the whole document."""
        return self.meta.document_slice(doc_id, start, end)
