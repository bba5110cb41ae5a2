"""The feature families that ``scripts/fit.py --ablate`` leaves out together split the ranker's
features exactly: a feature added without a family would otherwise fail the ablation only
after half an hour of fitting, and one in two families would be counted twice."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import fit


def test_the_families_split_the_features_exactly() -> None:
    assert fit.family_problems() == []
    cols = sorted(c for members in fit.FAMILIES.values() for c in fit.family_columns(members))
    assert cols == list(range(len(fit.FEATURES)))


def test_a_feature_outside_the_families_or_in_two_is_reported() -> None:
    features = (*fit.FEATURES, "brand_new")
    assert fit.family_problems(features) == ["brand_new is in no family"]
    twice = {**fit.FAMILIES, "again": ("dense", "no_such_feature")}
    problems = fit.family_problems(fit.FEATURES, twice)
    assert "again: no_such_feature is no feature" in problems
    assert "dense is in dense similarity, again" in problems
