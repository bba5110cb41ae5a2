"""Answers: verbatim quotes, exact offsets, identifiers, abstention, follow-ups, quality targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.conversation import Conversation, is_follow_up
from assistant.errors import InputError
from assistant.evaluate import evaluate, load_gold
from assistant.models import Answer

DATA = Path(__file__).resolve().parent / "data"


def _check_offsets(answerer: Any, answer: Answer) -> None:
    """The answer and every citation are the stored document text at their offsets."""
    if answer.answer is not None:
        text = answerer.index.document_text(answer.answer.doc_id)
        assert text[answer.answer.start:answer.answer.end] == answer.answer.text
    for c in answer.citations:
        text = answerer.index.document_text(c.doc_id)
        assert text[c.start:c.end] == c.quote


def test_direct_question_quotes_the_answer_sentence(answerer: Any) -> None:
    a = answerer.ask("What revenue share does the US get from H200 sales?")
    assert not a.abstained
    assert a.answer is not None and "25%" in a.answer.text
    assert a.citations[0].is_answer and a.citations[0].quote == a.answer.text
    assert a.citations[0].section in ("Summary", "Key Points")
    assert answerer.settings.abstain_below <= a.confidence <= 1.0
    assert a.confidence > answerer.ask("What is the price of an H200?").confidence
    _check_offsets(answerer, a)


def test_answer_is_one_sentence_not_the_whole_passage(answerer: Any) -> None:
    a = answerer.ask("Which Chinese vendors are mentioned?")
    assert a.answer is not None
    assert "Huawei, Baidu, Cambricon, Biren, MetaX" in a.answer.text
    assert len(a.answer.text) <= 400
    assert "\n" not in a.answer.text
    assert not a.answer.text.startswith("-"), "the bullet marker is not part of the quote"


def test_paraphrase_with_few_shared_words(answerer: Any) -> None:
    a = answerer.ask("How much of the money ends up with Washington?")
    assert not a.abstained, a.citations[:2]
    assert a.answer is not None and "25%" in a.answer.text


@pytest.mark.parametrize("question", [
    "What is the price of an H200?",
    "How much memory does the H200 have?",
    "What is the H20?",
    "What's the weather in Paris tomorrow?",
    "Give me a recipe for banana bread.",
])
def test_uncovered_questions_abstain_but_list_closest_passages(answerer: Any,
                                                              question: str) -> None:
    a = answerer.ask(question)
    assert a.abstained, (question, a.answer)
    assert a.answer is None
    assert "does not cover" in a.message
    assert a.citations and not any(c.is_answer for c in a.citations)
    _check_offsets(answerer, a)


def test_identifier_h200_is_not_h20(answerer: Any) -> None:
    a = answerer.ask("Who can buy the H20?")
    assert a.abstained
    b = answerer.ask("Who can buy the H200?")
    assert not b.abstained and b.answer is not None
    assert "H200" in b.answer.text


def test_dotted_code_names_are_identifiers() -> None:
    """"json.dumps" must be in the quote as written, like "H200"; "e.g." is no name."""
    from assistant import text as tx

    assert tx.identifiers("What does json.dumps do with a datetime?") == ["json.dumps"]
    assert tx.identifiers("Use os.path.join(), e.g. for paths, i.e. strings.") == ["os.path.join"]


def test_near_duplicate_passages_are_collapsed(answerer: Any) -> None:
    a = answerer.ask("What does the US get from H200 sales to China?", top_k=10)
    quotes = [" ".join(c.quote.lower().split()) for c in a.citations]
    assert len(quotes) == len(set(quotes))
    assert [c.rank for c in a.citations] == list(range(1, len(a.citations) + 1))


@pytest.mark.parametrize("first,follow,expect", [
    ("Which Chinese vendors are mentioned?", "Which of them are deploying rack-scale systems?",
     "Huawei and Baidu are deploying rack-scale systems"),
    ("Why did the Trump administration let Nvidia sell H200s to China?",
     "What does the US get out of it?", "25%"),
    ("What did the Trump administration decide about Nvidia?", "And how did the company respond?",
     "Nvidia welcomed the policy change"),
    # "they" after a question that asked for no names: what that question was about
    ("What were US export restrictions on AI chips meant to achieve?", "Did they work?",
     "largely failed"),
    # "get out of it" asks what the US gains: the sentence with its revenue share
    ("What did Washington decide about selling H200 chips to China?",
     "What does the US get out of it?", "25% revenue share for the US"),
    # "react" with no object: react to what the conversation is about
    ("What did Washington decide about selling H200 chips to China?",
     "How is Beijing expected to react?", "unlikely to change Beijing’s push"),
])
def test_follow_up_is_understood_from_the_conversation(answerer: Any, first: str, follow: str,
                                                       expect: str) -> None:
    conv = Conversation(id="t")
    answerer.ask(first, conv)
    a = answerer.ask(follow, conv)
    assert a.resolved_question is not None
    assert not a.abstained and a.answer is not None, a.citations[:2]
    assert expect in a.answer.text
    assert a.conversation == "t"


def test_follow_up_detection() -> None:
    assert is_follow_up("Which of them are deploying rack-scale systems?")
    assert is_follow_up("And how did the company respond?")
    assert not is_follow_up("Which Chinese vendors build rack-scale AI systems?")
    assert is_follow_up("How is Beijing expected to react?")
    assert not is_follow_up("How did Beijing react to the H200 decision?")


@pytest.mark.parametrize(("question", "gain"), [
    ("What does the US get out of it?", True),
    ("What's in it for Nvidia?", True),
    ("Who benefits from the H200 decision?", True),
    ("What do you get back from a function that never explicitly returns anything?", False),
    ("What does the US want China to do?", False),
])
def test_a_question_about_what_someone_gains(question: str, gain: bool) -> None:
    from assistant.answer import QuestionShape

    assert QuestionShape.of(question).wants_gain is gain


def test_same_question_without_conversation_is_not_resolved(answerer: Any) -> None:
    a = answerer.ask("Which of them are deploying rack-scale systems?")
    assert a.resolved_question is None


@pytest.mark.parametrize("bad", ["", "   ", "\x1b[31m\x07"])
def test_empty_question_is_an_input_error(answerer: Any, bad: str) -> None:
    with pytest.raises(InputError):
        answerer.ask(bad)


def test_overlong_question_is_refused(answerer: Any) -> None:
    with pytest.raises(InputError, match="limit"):
        answerer.ask("why " * 3000)


def test_answer_round_trips_as_json(answerer: Any) -> None:
    a = answerer.ask("Which Chinese vendors are mentioned?")
    again = Answer.model_validate(json.loads(a.model_dump_json()))
    assert again == a
    assert set(a.timings_ms) >= {"embed", "retrieve", "rank", "total"}


def test_every_dev_answer_and_citation_is_verbatim(answerer: Any) -> None:
    """The offsets invariant over every question of the dev set."""
    convs: dict[str, Conversation] = {}
    for g in load_gold(DATA / "dev_questions.jsonl"):
        conv = convs.setdefault(g.conversation, Conversation(id=g.conversation)) \
            if g.conversation else None
        _check_offsets(answerer, answerer.ask(g.question, conv))


def test_dev_set_quality_does_not_regress(answerer: Any) -> None:
    """Floors at the level reached (see the README's figures); the issue's targets (top-1 90%,
    hit@3 97%, abstention recall 90%) are not met yet, and these floors keep what is."""
    report = evaluate(answerer, load_gold(DATA / "dev_questions.jsonl"))
    misses = [(i.question, i.answer) for i in report.items
              if (i.answerable and not i.correct_top1) or (not i.answerable and not i.abstained)]
    assert report.top1_accuracy >= 0.9, misses
    assert report.hit_at_3 >= 0.9, misses
    assert report.abstention_recall >= 0.9, misses
    assert report.abstention_precision >= 0.9, misses
    assert report.answerable_abstained_rate <= 0.05, misses


@pytest.mark.parametrize(("question", "sentence", "ok"), [
    ("Who makes the accelerators?", "Firms such as Huawei and Baidu make them.", True),
    ("Who makes the accelerators?", "If you care who makes the accelerators, read on.", False),
    ("And who approved the sales?", "The Commerce Department approved them.", True),
    ("What happens to people who ignore the rules?", "They are fined.", True),
    ("How many chips were sold?", "Sales were strong.", False),
    ("How many chips were sold?", "About 40,000 were sold.", True),
    ("When did the ban start?", "The ban started in October 2022.", True),
    ("When did the ban start?", "The ban was strict.", False),
    # "when" inside a clause, or "tomorrow's" as an adjective, asks for no date
    ("What happens when a loop ends?", "The else clause runs.", True),
    ("Who makes the chips that train tomorrow's AI?", "Firms such as Huawei do.", True),
])
def test_answer_type_of_the_question_is_required(question: str, sentence: str, ok: bool) -> None:
    """A "who" question is answered by a name the question does not already hold; a "how
    many" one by a count; a "when" one by a date."""
    from assistant.answer import answer_type_ok

    assert answer_type_ok(question, sentence) is ok


def test_which_question_is_answered_by_the_names(answerer: Any) -> None:
    """"Which vendors..." is answered by the sentence that names them, not by one that
    merely talks about vendors."""
    a = answerer.ask("Which Chinese chip vendors does the briefing mention?")
    assert a.answer is not None
    assert "Huawei, Baidu, Cambricon, Biren, MetaX" in a.answer.text



def test_why_question_quotes_the_reason_that_follows_the_fact(tmp_path: Path) -> None:
    """The sentence that matches a "why" question often states the fact; the reason is the
    next sentence ("This is for..."), and it belongs in the quote."""
    from assistant.answer import Answerer
    from assistant.build import build_index
    from assistant.settings import Settings
    from assistant.store import open_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "literals.txt").write_text(
        "Integer literals\n\nInteger literals may use underscores to group digits. Leading "
        "zeros in a non-zero decimal number are not allowed. This is for disambiguation with "
        "the octal literals of older versions. Hexadecimal literals start with 0x.\n",
        encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    idx = open_index(settings.index_dir)
    try:
        a = Answerer(idx, settings).ask("Why are leading zeros not allowed in decimal numbers?")
        assert a.answer is not None
        assert a.answer.text.startswith("Leading zeros")
        assert a.answer.text.endswith("octal literals of older versions.")
        b = Answerer(idx, settings).ask("Are leading zeros allowed in decimal numbers?")
        assert b.answer is not None and "octal" not in b.answer.text
    finally:
        idx.close()


@pytest.mark.parametrize(("question", "sentence", "missing"), [
    ("How much does an H200 cost?", "Nvidia may sell H200s to approved customers.", True),
    ("How much does an H200 cost?", "An H200 costs about $30,000.", False),
    ("How many units were ordered?", "Orders were strong.", True),
    ("What process node is it made on?", "It is made on a 4 nm node.", False),
    ("What happens when a loop ends?", "The else clause runs.", False),
    # "When does X raise...?" asks for a condition as often as for a date
    ("When does str.join raise a TypeError?",
     "A TypeError will be raised if there are any non-string values in iterable.", False),
    ("When did the administration announce it?", "Nvidia welcomed the decision.", True),
    # a duration is a figure with a unit of time, not any figure
    ("How many nanoseconds does a dictionary lookup take?", ">>> len(d)\n3", True),
    ("How many nanoseconds does a dictionary lookup take?", "A lookup takes about 20 ns.", False),
    ("How long did the ban last?", "The ban lasted three years.", False),
    ("How long did the ban last?", "The ban covered 12 chip models.", True),
    ("What is the model number of Huawei's latest chip?", "Huawei builds rack systems.", True),
    ("What is the model number of Huawei's latest chip?", "Huawei ships the Ascend 910C.", False),
    ("What is the name of the Commerce Secretary who approved it?",
     "The Trump administration approved H200 sales.", True),
    ("What is the name of the Commerce Secretary who approved it?",
     "Commerce Secretary Howard Lutnick approved it.", False),
])
def test_a_question_for_a_figure_is_not_answered_without_one(question: str, sentence: str,
                                                             missing: bool) -> None:
    """A price, count, measurement, date or model number asked for must be in the quote, and
    "the name of the X" needs a sentence about an X: otherwise the assistant abstains,
    however close the sentence's other words are."""
    from assistant.answer import answer_type_missing

    assert answer_type_missing(question, sentence) is missing


def test_sentence_opening_with_a_pronoun_is_about_what_the_one_before_names(
        answerer: Any) -> None:
    """"It matters if you follow AI strategy" answers "Which readers does this story matter
    to?": its "It" is the story the sentence before it names."""
    a = answerer.ask("Which readers does this story matter to?")
    assert a.answer is not None, a.citations[:2]
    assert "It matters if you follow AI strategy" in a.answer.text
    # and the quote brings the sentence that says what "It" is
    assert a.answer.text.startswith("This story sits at the intersection")
    assert a.citations[0].is_answer
    _check_offsets(answerer, a)


def test_a_sentence_that_restates_the_question_is_not_its_answer(answerer: Any) -> None:
    """"...if you care who makes the gear that trains tomorrow's AI, this explains why..."
    holds every word of the question and answers none of it."""
    a = answerer.ask("Who makes the gear that trains tomorrow's AI in China?")
    assert a.answer is None or "if you care who makes" not in a.answer.text


def test_the_question_s_own_phrase_outranks_its_scattered_words(answerer: Any) -> None:
    """"US export restrictions" as a phrase points at the sentence that holds it, not at one
    sharing "US", "export" and "AI" apart."""
    a = answerer.ask("What were US export restrictions on AI chips meant to achieve?")
    assert a.answer is not None
    assert "aimed to deny China top-tier GPU tech" in a.answer.text


def test_abstention_says_what_the_closest_passage_lacks(answerer: Any) -> None:
    """An analyst told "not covered" is also told why, when the reason is plain."""
    a = answerer.ask("How much does an H200 GPU cost?")
    assert a.abstained and a.answer is None
    assert a.message == "The briefing does not cover this. (The closest passage gives no price.)"
    b = answerer.ask("What is the name of the Commerce Secretary who signed off on the H200 "
                     "licences?")
    assert b.abstained and "names no commerce secretary" in b.message


def test_a_sentence_taking_the_asked_thing_as_given_does_not_describe_it(answerer: Any) -> None:
    """"What policy change...?" is answered by the sentence that says what changed, not by
    "Nvidia welcomed the policy change", which refers to it as already known; and the
    follow-up then finds the reaction."""
    conv = Conversation(id="focus")
    a = answerer.ask("What policy change concerning Nvidia does the briefing describe?", conv)
    assert a.answer is not None
    assert "Nvidia welcomed" not in a.answer.text
    assert "H200" in a.answer.text and ("reversal" in a.answer.text or "reversed" in a.answer.text)
    b = answerer.ask("And how did the company respond?", conv)
    assert b.answer is not None and "Nvidia welcomed the policy change" in b.answer.text


@pytest.mark.parametrize(("sentence", "given"), [
    ("Nvidia welcomed the policy change, but little else moved.", True),
    ("Classes inherit from the base class \"object\" by default.", False),
    ("The base class Foo is used.", False),
    ("The base class is searched first.", True),
])
def test_what_the_question_asks_about_named_or_taken_as_given(sentence: str, given: bool) -> None:
    from assistant.answer import QuestionShape

    q = ("What policy change does the briefing describe?" if "policy" in sentence
         else "Which base class does a class inherit from?")
    focus = QuestionShape.of(q).given_focus
    assert focus is not None
    assert bool(focus.search(sentence)) is given


def test_a_quote_opening_with_a_pronoun_brings_the_sentence_it_refers_to(tmp_path: Path) -> None:
    """"It skips the rest of the iteration." alone does not say what "it" is: the quote starts
    at the sentence before it, which does."""
    from assistant.answer import Answerer
    from assistant.build import build_index
    from assistant.settings import Settings
    from assistant.store import open_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "loops.txt").write_text(
        "Loop statements\n\nThe frob statement may only occur inside a loop. It skips the rest "
        "of the current iteration and starts the next one. Loops end when their condition "
        "fails.\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    idx = open_index(settings.index_dir)
    try:
        a = Answerer(idx, settings).ask("What skips the rest of the current iteration?")
        assert a.answer is not None, a.citations[:2]
        assert a.answer.text == ("The frob statement may only occur inside a loop. It skips the "
                                 "rest of the current iteration and starts the next one.")
        assert idx.document_text(a.answer.doc_id)[a.answer.start:a.answer.end] == a.answer.text
    finally:
        idx.close()
