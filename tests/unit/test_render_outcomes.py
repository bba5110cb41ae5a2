"""How an answer's outcome and scope read in `ask`'s text and in Markdown (batch, exports)."""

from __future__ import annotations

from assistant.models import Answer, AnswerSpan
from assistant.render import answer_markdown, answer_text, scope_text


def guess(scope: list[str] | None = None) -> Answer:
    quote = "Chips are stitched into larger systems."
    return Answer(id="g", question="What happens to the chips?", abstained=False,
                  outcome="best_guess", message=f"Best guess, not sure: {quote}",
                  answer=AnswerSpan(text=quote, doc_id="a.txt", start=0, end=len(quote)),
                  confidence=0.46, scope=scope)


def test_a_best_guess_says_so_in_text_and_markdown() -> None:
    assert "Best guess, not sure (confidence 46%)" in answer_text(guess())
    assert "**Best guess, not sure** (confidence 46%)" in answer_markdown(guess())
    sure = guess().model_copy(update={"outcome": "answer", "confidence": 0.82})
    assert "guess" not in answer_text(sure).lower() + answer_markdown(sure).lower()
    assert "[confidence 82%]" in answer_text(sure) and "(confidence 82%)" in answer_markdown(sure)


def test_a_refusal_shows_no_confidence() -> None:
    refused = guess().model_copy(update={"outcome": "not_covered", "abstained": True,
                                         "answer": None, "confidence": 0.2,
                                         "message": "The documents do not cover this."})
    for shown in (answer_text(refused), answer_markdown(refused)):
        assert "The documents do not cover this." in shown
        assert "confidence" not in shown and "20%" not in shown


def test_the_scope_is_named_in_text_and_markdown() -> None:
    assert "(asked of a.txt and b/c.md only)" in answer_text(guess(["b/c.md", "a.txt"]))
    assert "*Asked of:* a.txt only" in answer_markdown(guess(["a.txt"]))
    many = [f"d{k}.txt" for k in range(5)]
    assert scope_text(many) == "5 documents only (d0.txt, d1.txt, d2.txt, …)"
    assert "Asked of" not in answer_markdown(guess())
