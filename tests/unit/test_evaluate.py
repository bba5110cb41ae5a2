"""How `assistant eval` scores one answer: hit@3 is the quote and the next two passages a
reader sees (it used to look at four texts), and an abstention's closest passages are no
hit (they are offered as "not an answer")."""

from __future__ import annotations

from assistant.evaluate import score_answer
from assistant.models import Answer, AnswerSpan, Citation, GoldQuestion

GOLD = GoldQuestion(question="What share does the US get?", expect_any=["25%"])


def _answer(quotes: list[str], abstained: bool = False) -> Answer:
    cites = [Citation(rank=n, doc_id="d.txt", title="D", section="S", quote=q, start=10 * n,
                      end=10 * n + len(q), score=1.0 - n / 10, why="", is_answer=n == 1
                      and not abstained)
             for n, q in enumerate(quotes, start=1)]
    span = None if abstained else AnswerSpan(text=quotes[0], doc_id="d.txt", start=10,
                                             end=10 + len(quotes[0]))
    return Answer(id="1", question=GOLD.question, abstained=abstained,
                  message="The document does not cover this." if abstained else quotes[0],
                  answer=span, confidence=0.2 if abstained else 0.9, citations=cites)


def test_hit_at_3_is_the_quote_and_the_next_two_passages() -> None:
    third = score_answer(GOLD, _answer(["a", "b", "The US gets 25%.", "c"]), 1.0, "1")
    fourth = score_answer(GOLD, _answer(["a", "b", "c", "The US gets 25%."]), 1.0, "1")
    assert third.hit_at_3 and not third.correct_top1
    assert not fourth.hit_at_3
    assert fourth.reciprocal_rank == 0.25


def test_an_abstention_is_a_miss_even_with_the_passage_listed() -> None:
    item = score_answer(GOLD, _answer(["The US gets 25%.", "b"], abstained=True), 1.0, "1")
    assert item.abstained and not item.correct_top1 and not item.hit_at_3


def test_an_abstention_counts_zero_towards_mrr() -> None:
    """Issue 27, item 5: MRR 0.905 beside hit@3 57.1% came from abstentions whose closest
    passages still earned a reciprocal rank; an abstention answers nothing."""
    from assistant.evaluate import report

    abstained = score_answer(GOLD, _answer(["The US gets 25%.", "b"], abstained=True), 1.0, "1")
    answered = score_answer(GOLD, _answer(["The US gets 25%.", "b"]), 1.0, "2")
    assert abstained.reciprocal_rank == 0.0
    assert answered.reciprocal_rank == 1.0
    assert report([abstained, answered]).mrr == 0.5
