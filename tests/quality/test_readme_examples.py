"""The README's example questions, and three wordings of each that a reader might use
instead, answered with the sentence the example promises; the same question asked again
in a conversation gives the same answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.qa.conversation import Conversation

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")

VENDORS = "Huawei, Baidu, Cambricon, Biren, MetaX"
RACK_SCALE = "Huawei and Baidu are deploying rack-scale systems"
SHARE = "25%"

KNOWN_MISS = pytest.mark.xfail(strict=True, reason="quotes the sentence on Huawei and Baidu's "
                               "rack-scale systems, not the list of vendors (issue 25)")

EXAMPLES: list[tuple[str, str, list[Any]]] = [
    ("Which Chinese vendors are mentioned?", VENDORS, [
        "Which Chinese chip makers does the briefing name?",
        pytest.param("What domestic AI-chip companies in China are discussed?",
                     marks=KNOWN_MISS),
        pytest.param("Name the Chinese firms that make AI accelerators.", marks=KNOWN_MISS),
    ]),
    ("Which of the vendors deploy rack-scale systems?", RACK_SCALE, [
        "Who is rolling out rack-scale systems?",
        "Which companies have rack-scale AI systems in deployment?",
        "Which Chinese firms are putting rack-scale systems into service?",
    ]),
    ("What share of H200 revenue goes to the US?", SHARE, [
        "What share of revenue does the US take from H200 sales?",
        "How much of the money from H200 sales does Washington keep?",
        "What cut of Nvidia's H200 revenue does the US government get?",
    ]),
]


@pytest.mark.parametrize("example", [e[0] for e in EXAMPLES])
def test_the_example_is_still_in_the_readme(example: str) -> None:
    assert f'"{example}' in README, "the README's example changed: update EXAMPLES"


def _cases() -> list[Any]:
    """(question, expected phrase), a known miss keeping its mark."""
    out: list[Any] = []
    for first, expect, others in EXAMPLES:
        for q in [first, *others]:
            if isinstance(q, str):
                out.append((q, expect))
            else:
                out.append(pytest.param(q.values[0], expect, marks=q.marks))
    return out


@pytest.mark.parametrize("question,expect", _cases())
def test_the_readme_example_and_its_rewordings_are_answered(answerer: Any, question: str,
                                                            expect: str) -> None:
    a = answerer.ask(question).answer
    assert a.outcome != "not_covered", (question, a.message)
    assert a.answer is not None and expect in a.answer.text, (question, a.answer)


def test_the_off_topic_example_is_not_covered(answerer: Any) -> None:
    question = "What will the weather be in Paris tomorrow?"
    assert question in README
    a = answerer.ask(question).answer
    assert a.outcome == "not_covered" and a.answer is None


@pytest.mark.parametrize("question", [e[0] for e in EXAMPLES])
def test_asking_again_gives_the_same_answer(answerer: Any, question: str) -> None:
    first = answerer.ask(question, Conversation(id="again"))
    again = answerer.ask(question, first.conversation).answer
    assert again.outcome == first.answer.outcome
    assert again.answer is not None and first.answer.answer is not None
    assert again.answer.text == first.answer.answer.text
    assert again.confidence == pytest.approx(first.answer.confidence)
