"""The answers to every in-repo question set are those recorded in
``tests/data/answers-recorded.json`` (``scripts/record_answers.py``): a change meant to leave
answers alone (a refactor of the storage, the stages, the faces) shows it did. Compared per
question: the outcome, the quoted text, its document and offsets exactly; the confidence
within 0.02."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import record_answers  # noqa: E402

CONFIDENCE_TOLERANCE = 0.02
RERECORD = ("If the change is meant to alter answers (a refit of the model, a new feature), "
            "record them again with `.venv/bin/python scripts/record_answers.py` and commit "
            "tests/data/answers-recorded.json with the change; otherwise the change altered "
            "answers it should have left alone.")


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record_answers.RECORDED.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def answered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return record_answers.record(tmp_path_factory.mktemp("answers"))


def differences(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
                ) -> list[str]:
    """One line per question whose answer changed (or that was added or left out)."""
    out = [f"{qid}: recorded, not answered now" for qid in before if qid not in after]
    out += [f"{qid}: answered now, not recorded" for qid in after if qid not in before]
    for qid in before.keys() & after.keys():
        was, now = before[qid], after[qid]
        changed = [f"{key} {was[key]!r} -> {now[key]!r}" for key in was
                   if key != "confidence" and was[key] != now.get(key)]
        if abs(was["confidence"] - now["confidence"]) > CONFIDENCE_TOLERANCE:
            changed.append(f"confidence {was['confidence']} -> {now['confidence']}")
        if changed:
            out.append(f"{qid}: " + "; ".join(changed))
    return sorted(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(record_answers.SETS))
def test_answers_are_those_recorded(name: str, recorded: dict[str, Any],
                                    answered: dict[str, Any]) -> None:
    if name.startswith("pydoc") and answered["pydoc_corpus"] != recorded["pydoc_corpus"]:
        pytest.skip("this Python's language reference (pydoc_data) differs from the one the "
                    "answers were recorded on")
    changed = differences(recorded["sets"][name], answered["sets"][name])
    assert not changed, (f"{len(changed)} answers of {name} changed:\n  "
                         + "\n  ".join(changed[:20]) + f"\n{RERECORD}")


def test_a_changed_answer_is_named_with_what_changed() -> None:
    was = {"q": {"outcome": "answer", "quote": "A.", "doc": "d", "start": 0, "end": 2,
                 "confidence": 0.8}}
    assert differences(was, {"q": {**was["q"], "confidence": 0.81}}) == []
    assert differences(was, {"q": {**was["q"], "confidence": 0.83}}) == [
        "q: confidence 0.8 -> 0.83"]
    assert differences(was, {"q": {**was["q"], "outcome": "best_guess"}}) == [
        "q: outcome 'answer' -> 'best_guess'"]
    assert differences(was, {}) == ["q: recorded, not answered now"]
