"""Each answer stage on its own: language data, conversation, features, scorer, abstainer,
citations. Small inputs made here; the real model only where a stage needs an index."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from assistant.errors import SettingsError
from assistant.index.meta import read_through
from assistant.qa import lang
from assistant.qa.abstain import ABSTAIN_FEATURES, Abstainer
from assistant.qa.analysis import analyse
from assistant.qa.candidates import Candidate
from assistant.qa.citations import choose_citations
from assistant.qa.conversation import Conversation
from assistant.qa.features import INDEX, FeatureExtractor, feature_names
from assistant.qa.scorer import AbstainerModel, FittedScorer, LinearModel, TreeModel, load_model

EN = lang.load("en")


# ---- language data -------------------------------------------------------------------------

def test_language_data_is_loaded_once_and_unknown_languages_are_refused() -> None:
    assert lang.load("en") is EN
    with pytest.raises(SettingsError, match="no language data"):
        lang.load("xx")


@pytest.mark.parametrize(("word", "other"), [
    ("chips", "chip"), ("policy", "policies"), ("classes", "class"), ("box", "boxes"),
    ("day", "days")])
def test_number_folding_from_the_rules(word: str, other: str) -> None:
    assert EN.variants(word) == [word, other]


@pytest.mark.parametrize(("question", "kinds"), [
    ("When did ABC first start?", ["date"]),
    ("In what year did the ban end?", ["date"]),
    ("How many chips were sold?", ["count"]),
    ("Who welcomed the policy change?", ["person"]),
    ("Why did the ban fail?", ["reason"]),
    ("What does the briefing argue?", []),
])
def test_answer_kinds_asked(question: str, kinds: list[str]) -> None:
    assert [k.name for k in EN.kinds_asked(question)] == kinds


def test_an_answer_kind_is_not_held_by_what_the_question_already_says() -> None:
    date = next(k for k in EN.answer_kinds if k.name == "date")
    q = "when did the logo change in 1957?"
    assert not date.held_by("The logo changed in 1957.", q)
    assert date.held_by("The logo changed again in 1962.", q)


# ---- conversation --------------------------------------------------------------------------

def _after(conv: Conversation, question: str, answer: str | None = None) -> Conversation:
    res = conv.resolve(question, EN)
    asked = bool(analyse(question, conv, EN).asks_for_names)
    return conv.after(question, res, asked, answer, ("d", 0) if answer else None, EN)


def test_a_question_that_stands_alone_is_asked_as_it_is() -> None:
    conv = _after(Conversation(id="c"), "Which vendors build rack-scale systems?",
                  "Huawei and Baidu are deploying rack-scale systems.")
    for q in ("When was the article published?", "Who welcomed the policy change?",
              "What does the author conclude?"):
        res = conv.resolve(q, EN)
        assert res.resolved is None and res.text == q, q


def test_them_after_a_question_for_names_means_the_names_given() -> None:
    conv = _after(Conversation(id="c"), "Which vendors build rack-scale systems?",
                  "Huawei and Baidu are deploying rack-scale systems.")
    res = conv.resolve("Which of them is the largest?", EN)
    assert res.resolved is not None
    assert {"huawei", "baidu"} <= set(res.terms)
    assert res.terms["largest"] == 1.0 and res.terms["huawei"] < 1.0


def test_context_comes_from_the_previous_turn_only() -> None:
    conv = _after(Conversation(id="c"), "What were US export restrictions meant to achieve?",
                  "They aimed to deny China top-tier GPU tech.")
    conv = _after(conv, "Did they work?", "They largely failed.")
    conv = _after(conv, "What did Nvidia say about the decision?", "Nvidia welcomed it.")
    res = conv.resolve("And why?", EN)
    assert res.resolved is not None
    assert "restrictions" not in res.terms, "the first turn's subject must not accumulate"
    assert "nvidia" in res.terms


def test_a_pronoun_with_its_antecedent_in_the_question_stands_alone() -> None:
    conv = _after(Conversation(id="c"), "Which vendors build rack-scale systems?",
                  "Huawei and Baidu are deploying rack-scale systems.")
    for q in ("Did Japan publish the reasons behind its chip subsidy rules?",
              "Which firms that make chips got money?",
              "How much of H200 revenue does the US keep for itself?"):
        res = conv.resolve(q, EN)
        assert res.resolved is None and res.text == q and not res.avoid, q
    for q in ("Who owns its factory?", "Is that rule still applied?",
              "How is that divided between the two companies?"):
        assert conv.resolve(q, EN).resolved is not None, q


def test_no_context_is_taken_from_a_turn_that_was_not_answered() -> None:
    conv = _after(Conversation(id="c"), "What will the weather be in Paris tomorrow?", None)
    res = conv.resolve("What is its price?", EN)
    assert res.resolved is None and "weather" not in res.terms


def test_the_same_question_asked_again_is_understood_as_the_first_time() -> None:
    conv = _after(Conversation(id="c"), "What did China do about gallium exports?",
                  "China banned gallium exports to the US.")
    first = conv.resolve("What caused it?", EN)
    again = _after(conv, "What caused it?", "Security concerns prompted it.")
    assert again.resolve("What caused it?", EN) == first
    plain = _after(Conversation(id="c"), "Who welcomed the policy change?", "Nvidia did.")
    assert not plain.resolve("Who welcomed the policy change?", EN).avoid, \
        "an answer given before must not be pushed down when the question is asked again"


def test_resolving_and_recording_never_change_the_conversation() -> None:
    conv = _after(Conversation(id="c"), "What did Washington decide?", "It reversed course.")
    turns = conv.turns
    conv.resolve("Did it work?", EN)
    later = _after(conv, "Did it work?", "No.")
    assert conv.turns == turns and len(later.turns) == len(turns) + 1


# ---- features, scorer, abstainer, citations ------------------------------------------------

def _candidate(text: str, exact: list[bool], doc: str = "d", start: int = 0,
               vector: list[float] | None = None) -> Candidate:
    n = len(exact)
    v = np.array(vector or [1.0, 0.0], dtype=np.float32)
    return Candidate(sentence_id=start, chunk_id=0, doc_id=doc, start=start,
                     end=start + len(text), section="S", title="T", text=text,
                     vector=v / np.linalg.norm(v), dense=0.5, chunk_dense=0.5,
                     term_weights=np.ones(n), exact=np.array(exact), soft=np.zeros(n),
                     in_context=np.zeros(n, dtype=bool), in_window=np.zeros(n, dtype=bool),
                     inherited=np.zeros(n, dtype=bool))


def test_features_count_the_question_s_terms_and_the_kind_of_answer() -> None:
    a = analyse("When did the export ban start?", Conversation(), EN)
    assert list(a.query.terms) == ["export", "ban", "start"]
    with_date = _candidate("The export ban started in October 2022.", [True, True, False])
    without = _candidate("The export ban was strict.", [True, True, False], start=50)
    x = FeatureExtractor().extract(a, [with_date, without])
    assert x.shape == (2, len(feature_names(EN)))
    assert x[0, feature_names(EN).index("kind:date")] == 1
    assert x[1, feature_names(EN).index("kind:date")] == -1
    assert x[0, INDEX["lexical"]] == pytest.approx(2 / 3)
    assert x[0, INDEX["kind_held"]] == 1 and x[0, INDEX["kind_missing"]] == 0
    assert x[1, INDEX["kind_held"]] == 0 and x[1, INDEX["kind_missing"]] == 1
    assert (with_date.features == x[0]).all()


def test_the_linear_scorer_ranks_by_its_weights_and_refuses_unknown_features() -> None:
    a = analyse("When did the export ban start?", Conversation(), EN)
    cands = [_candidate("The export ban was strict.", [True, True, False]),
             _candidate("The export ban started in October 2022.", [True, True, False], start=9)]
    FeatureExtractor().extract(a, cands)
    model = LinearModel(features=["kind_held"], weights=[1.0], mean=[0.0], scale=[1.0])
    scores = FittedScorer(model).score(a, cands)
    assert scores[1] > scores[0]
    with pytest.raises(SettingsError, match="unknown features"):
        FittedScorer(LinearModel(features=["nope"], weights=[1.0], mean=[0.0],
                                 scale=[1.0])).score(a, cands)


def test_the_abstainer_abstains_below_its_threshold() -> None:
    n = len(ABSTAIN_FEATURES)
    model = AbstainerModel(features=list(ABSTAIN_FEATURES), weights=[1.0] + [0.0] * (n - 1),
                           mean=[0.0] * n, scale=[1.0] * n, threshold=0.5)
    ab = Abstainer(model)
    high, low = np.zeros(n), np.zeros(n)
    high[0], low[0] = 3.0, -3.0
    assert ab.probability(high) > 0.9 and not ab.abstains(high)
    assert ab.probability(low) < 0.1 and ab.abstains(low)
    assert Abstainer(model, threshold=0.0).abstains(low) is False


def test_whether_to_answer_is_the_coverage_model_not_the_chance_of_being_right() -> None:
    n = len(ABSTAIN_FEATURES)
    right = [1.0] + [0.0] * (n - 1)  # "right" reads the first feature, coverage the second
    coverage = LinearModel(features=list(ABSTAIN_FEATURES), weights=[0.0, 1.0] + [0.0] * (n - 2),
                           mean=[0.0] * n, scale=[1.0] * n)
    ab = Abstainer(AbstainerModel(features=list(ABSTAIN_FEATURES), weights=right,
                                  mean=[0.0] * n, scale=[1.0] * n, threshold=0.5,
                                  coverage=coverage))
    unsure = np.zeros(n)
    unsure[0], unsure[1] = -3.0, 3.0  # covered, but the best passage is likely wrong
    assert not ab.abstains(unsure) and ab.outcome(unsure) == "best_guess"
    assert ab.confidence(unsure) < 0.1
    unsure[1] = -3.0
    assert ab.outcome(unsure) == "not_covered"


def test_confidence_is_the_calibrated_probability_and_decides_the_outcome() -> None:
    n = len(ABSTAIN_FEATURES)
    model = AbstainerModel(features=list(ABSTAIN_FEATURES), weights=[1.0] + [0.0] * (n - 1),
                           mean=[0.0] * n, scale=[1.0] * n, threshold=0.2,
                           calibration=[[0.0, 0.0], [0.5, 0.3], [0.9, 0.8], [1.0, 0.95]],
                           guess_below=0.5)
    ab = Abstainer(model)

    def evidence(p: float) -> np.ndarray:  # the features that give probability p
        x = np.zeros(n)
        x[0] = math.log(p / (1 - p))
        return x

    assert ab.confidence(evidence(0.5)) == pytest.approx(0.3)
    assert ab.confidence(evidence(0.7)) == pytest.approx(0.55)
    assert ab.outcome(evidence(0.1)) == "not_covered"
    assert ab.outcome(evidence(0.5)) == "best_guess", \
        "sure enough to show, more likely wrong than right"
    assert ab.outcome(evidence(0.95)) == "answer"


def test_a_model_fitted_on_other_features_is_refused(tmp_path: Any) -> None:
    from assistant.errors import ModelError
    from assistant.qa.abstain import check_model, features_hash
    from assistant.qa.scorer import MODEL_FILE

    model = load_model()
    check_model(model, EN)  # the shipped model matches this code
    stale = model.model_copy(update={"features_hash": "0" * 16})
    with pytest.raises(ModelError, match="other features"):
        check_model(stale, EN)
    assert features_hash(EN) == model.features_hash
    old = tmp_path / "model.json"
    old.write_text(MODEL_FILE.read_text(encoding="utf-8").replace('"format": 2',
                                                                  '"format": 1'))
    with pytest.raises(ModelError, match="format 1"):
        load_model(old)


def test_citations_offer_another_document_when_scores_are_close() -> None:
    same = [_candidate(f"Sentence {i} of a.", [True], doc="a", start=i * 20,
                       vector=[1.0, 0.05 * i]) for i in range(4)]
    other = _candidate("A sentence of b.", [True], doc="b", start=0, vector=[0.6, 0.8])
    ranked = [*same, other]
    for c, s in zip(ranked, [1.0, 0.98, 0.97, 0.96, 0.95], strict=True):
        c.score = s
    plain = choose_citations(ranked, 3, 0.0)
    diverse = choose_citations(ranked, 3, 0.5)
    assert {c.doc_id for c in plain} == {"a"}
    assert plain[0] is diverse[0] is same[0]
    assert "b" in {c.doc_id for c in diverse}


def test_the_shipped_model_records_its_provenance_and_held_out_figures() -> None:
    model = load_model()
    assert model.ranker.features and set(model.ranker.features) <= set(feature_names(EN))
    assert set(model.abstainer.features) <= set(ABSTAIN_FEATURES)
    prov: dict[str, Any] = model.provenance
    assert {"fitted", "data", "split", "held_out"} <= set(prov)
    assert {"qa-dev", "briefing", "pydoc"} <= set(prov["held_out"])


def _walk_one(model: TreeModel, row: np.ndarray) -> float:
    """The trees walked the plain way, one row and one tree at a time."""
    total = 0.0
    for t in range(len(model.feature)):
        if not model.feature[t]:  # a tree of a single leaf
            total += model.leaf[t][0]
            continue
        node = 0
        while node >= 0:
            go_left = row[model.feature[t][node]] <= model.threshold[t][node]
            node = model.left[t][node] if go_left else model.right[t][node]
        total += model.leaf[t][-node - 1]
    return total


def test_the_tree_scorer_gives_the_shipped_trees_own_scores() -> None:
    """The vectorised walk (every row through every tree at once) scores as a plain walk
    does, on rows spread over and beyond the thresholds the trees split at."""
    model = load_model().ranker
    assert isinstance(model, TreeModel)
    width = len(model.features)
    rng = np.random.default_rng(7)
    splits = [(f, th) for fs, ts in zip(model.feature, model.threshold, strict=True)
              for f, th in zip(fs, ts, strict=True)]
    thresholds = [[th for f, th in splits if f == j] for j in range(width)]
    rows = np.array([[rng.choice(th) + rng.choice([-1e-9, 0.0, 1e-9])
                      if th and rng.random() < 0.7 else rng.normal() * 3
                      for th in thresholds] for _ in range(300)])
    flat = model.flat().walk(rows)
    expected = np.array([_walk_one(model, r) for r in rows])
    np.testing.assert_allclose(flat, expected, rtol=1e-12, atol=1e-12)
    assert np.unique(np.round(expected, 6)).size > 100  # the rows do take different paths

    # a tree of one leaf scores its leaf for every row
    single = TreeModel(features=["dense"], feature=[[], [0]], threshold=[[], [0.5]],
                       left=[[], [-1]], right=[[], [-2]], leaf=[[0.25], [1.0, 2.0]], depth=1)
    np.testing.assert_allclose(single.flat().walk(np.array([[0.1], [0.9]])), [1.25, 2.25])


def test_a_full_cache_is_emptied_without_losing_the_keys_asked() -> None:
    """The retriever's caches (word vectors, frequencies, neighbours) start afresh when full;
    the keys of the question that overflows them must still all come back."""
    loads: list[list[str]] = []

    def load(keys: list[str]) -> dict[str, int]:
        loads.append(keys)
        return {k: len(k) for k in keys if k != "absent"}

    cache: dict[str, int] = {}
    assert read_through(cache, ["aa", "b"], 4, load, -1) == {"aa": 2, "b": 1}
    assert read_through(cache, ["b", "absent"], 4, load, -1) == {"b": 1, "absent": -1}
    assert loads == [["aa", "b"], ["absent"]]  # only what was not cached yet
    # three cached, two new: past the limit of 4, so the cache is emptied and all reloaded
    assert read_through(cache, ["aa", "ccc", "dddd", "aa"], 4, load, -1) == {
        "aa": 2, "ccc": 3, "dddd": 4}
    assert loads[-1] == ["aa", "ccc", "dddd"] and set(cache) == {"aa", "ccc", "dddd"}


# ---- soft word matches ---------------------------------------------------------------------

class _Vectors:
    """A retriever's word-vector reads, from a dict (no index)."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def word_vectors(self, words: list[str]) -> list[tuple[str, np.ndarray]]:
        return [(w, self.vectors[w]) for w in words if w in self.vectors]


def _plain_soft(qvec: dict[str, np.ndarray], qterms: list[str], vocab: dict[str, np.ndarray],
                words: set[str], floor: float) -> tuple[list[float], list[str]]:
    """One sentence at a time, the first of equal bests in the sentence's word order."""
    credit, near = [0.0] * len(qterms), [""] * len(qterms)
    for i, t in enumerate(qterms):
        if t not in qvec:
            continue
        scored = [(float(qvec[t] @ vocab[w]), w) for w in words if w in vocab]
        if scored:
            best = max(s for s, _ in scored)
            if best >= floor:
                credit[i], near[i] = best, next(w for s, w in scored if s == best)
    return credit, near


def test_soft_matches_of_all_sentences_at_once_equal_one_at_a_time() -> None:
    """Sentences with no known word between others (empty segments), ties between two words
    of one sentence, a query term without a vector and matches under the floor."""
    from assistant.qa.candidates import SOFT_FLOOR, Retriever

    rng = np.random.default_rng(3)
    names = [f"word{i}" for i in range(12)]
    vocab = {w: rng.standard_normal(8).astype(np.float32) for w in names}
    vocab["twin"] = vocab["word3"].copy()  # the same similarity as word3 to every term
    for v in vocab.values():
        v /= np.linalg.norm(v)
    qterms = ["alpha", "beta", "nothing"]
    qvec = {"alpha": vocab["word3"] * 0.9 + vocab["word5"] * 0.1, "beta": vocab["word7"]}
    for v in qvec.values():
        v /= np.linalg.norm(v)
    bodies = [["word3", "twin", "word1"], ["unknown", "the"], ["word7", "word2"], [],
              ["word5"], ["twin", "word3"], ["zzz"], ["word0", "word11", "word9"]]
    word_sets = [set(b) for b in bodies]
    r = Retriever.__new__(Retriever)
    r._word_vectors = {}
    r.language = EN
    r.meta = _Vectors(vocab)  # type: ignore[assignment]
    credit, near = r._soft_matches(qterms, qvec, bodies, word_sets)
    assert credit.shape == (len(bodies), len(qterms))
    for row, words in enumerate(word_sets):
        want_credit, want_near = _plain_soft(qvec, qterms, vocab, words, SOFT_FLOOR)
        np.testing.assert_allclose(credit[row], want_credit, rtol=1e-6)
        assert near[row] == want_near, (row, bodies[row])
    assert near[0][0] in ("word3", "twin") and credit[0][0] > 0.9
    assert near[2][1] == "word7" and credit[3].tolist() == [0.0, 0.0, 0.0]
