"""The one measurement kit (assistant/metrics.py) on cases worked out by hand: what `assistant
eval`, scripts/fit.py and every benchmark report rests on these."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from assistant import metrics

ROOT = Path(__file__).resolve().parents[2]


def test_contains_is_a_case_insensitive_substring_and_no_text_holds_nothing() -> None:
    assert metrics.contains("The US gets 25% of H200 revenue.", ["25%", "a quarter"])
    assert metrics.contains("THE US", ["the us"])
    assert not metrics.contains("The US gets a share.", ["25%"])
    assert not metrics.contains(None, ["25%"])
    assert not metrics.contains("", [""])


def test_top1_hit_at_k_and_reciprocal_rank() -> None:
    ranked = ["a miss", "another miss", "The US gets 25%.", "25% again"]
    assert not metrics.hit_at(ranked, ["25%"], 1)
    assert not metrics.hit_at(ranked, ["25%"], 2)
    assert metrics.hit_at(ranked, ["25%"], 3)
    assert metrics.reciprocal_rank(ranked, ["25%"]) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank([None, "25%"], ["25%"]) == 0.5
    assert metrics.reciprocal_rank(["a", "b"], ["25%"]) == 0.0


def test_share_is_the_mean_of_flags_and_undefined_over_nothing() -> None:
    assert metrics.share([True, False, True, True]) == 0.75
    assert metrics.share([1.0, 0.5]) == 0.75
    assert math.isnan(metrics.share([]))


def test_abstention_precision_and_recall() -> None:
    # four questions: two answerable (one abstained on), two not (one abstained on)
    abstained = [True, False, True, False]
    answerable = [True, True, False, False]
    assert metrics.abstention_precision(abstained, answerable) == 0.5
    assert metrics.abstention_recall(abstained, answerable) == 0.5
    # undefined, not 100%: nothing abstained on, or nothing unanswerable
    assert metrics.abstention_precision([False, False], [True, False]) is None
    assert metrics.abstention_precision([True, False], [True, True]) is None
    assert metrics.abstention_recall([True, False], [True, True]) is None


def test_auroc_counts_the_pairs_a_positive_wins_and_a_tie_half() -> None:
    # positives 0.9 and 0.7 against negatives 0.8 and 0.6: 0.9 wins both, 0.7 wins one
    assert metrics.auroc([0.9, 0.8, 0.7, 0.6], [True, False, True, False]) == 0.75
    # a tie is half a win: 0.5 vs 0.5 (half), 0.5 vs 0.2 (win), 0.7 vs both (two wins)
    assert metrics.auroc([0.5, 0.7, 0.5, 0.2], [True, True, False, False]) == 3.5 / 4
    assert metrics.auroc([0.3, 0.3], [True, False]) == 0.5
    assert metrics.auroc([0.1, 0.9], [True, False]) == 0.0
    assert math.isnan(metrics.auroc([0.1, 0.9], [True, True]))


def test_auroc_equals_scikit_learns_with_many_ties() -> None:
    rng = random.Random(3)
    scores = [rng.choice([0.1, 0.2, 0.5, 0.5, 0.9]) for _ in range(300)]
    positive = [rng.random() < s for s in scores]
    assert metrics.auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores))


def test_choose_threshold_refuses_at_most_the_share_allowed() -> None:
    scores = [float(n) for n in range(20, 0, -1)]  # 1..20, in any order
    # 5% of 20 is one question: abstaining below 2 refuses only the 1
    assert metrics.choose_threshold(scores, 0.05) == 2.0
    # 2.5% of 20 is no whole question: abstaining below 1 refuses none
    assert metrics.choose_threshold(scores, 0.025) == 1.0
    assert sum(s < metrics.choose_threshold(scores, 0.10) for s in scores) == 2
    assert metrics.choose_threshold([], 0.05) == -math.inf


def test_the_threshold_for_every_group_holds_on_each_group_separately() -> None:
    high = [float(n) for n in range(11, 31)]  # 11..30: its own cut at 5% is 12
    low = [float(n) for n in range(1, 21)]    # 1..20: its own cut is 2
    cut = metrics.threshold_for_every_group({"high": high, "low": low}, 0.05)
    assert cut == 2.0  # pooled, the cut would be 3 and refuse two of "low"'s twenty
    assert metrics.choose_threshold(high + low, 0.05) == 3.0
    assert metrics.threshold_for_every_group({"none": []}, 0.05) == -math.inf


def test_expected_calibration_error_over_ten_bins() -> None:
    # two answers at 0.95 (one right): gap 0.45; two at 0.15 (none right): gap 0.15
    confidence = [0.95, 0.95, 0.15, 0.15]
    right = [True, False, False, False]
    assert metrics.expected_calibration_error(confidence, right) == pytest.approx(0.3)
    # a perfectly calibrated set, and a confidence of 1.0 falling in the last bin
    assert metrics.expected_calibration_error([1.0, 1.0, 0.5, 0.5],
                                              [True, True, True, False]) == 0.0
    assert math.isnan(metrics.expected_calibration_error([], []))


def test_reliability_bins_leave_out_empty_bands() -> None:
    bins = metrics.reliability_bins([0.1, 0.85, 0.95, 1.0], [False, True, False, True],
                                    (0.0, 0.2, 0.4, 0.8, 0.9, 1.01))
    assert [(b.band, b.count) for b in bins] == [("0.0-0.2", 1), ("0.8-0.9", 1),
                                                 ("0.9-1.0", 2)]
    assert bins[2].confidence == pytest.approx(0.975)
    assert bins[2].accuracy == 0.5


def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    # position (4 - 1) * q / 100 in the sorted values [1, 2, 3, 4]
    assert metrics.percentile(values, 50) == 2.5  # the median (the nearest rank gives 2)
    assert metrics.percentile(values, 95) == pytest.approx(3.85)  # 3 + 0.85 * (4 - 3)
    assert metrics.percentile(values, 0) == 1.0
    assert metrics.percentile(values, 100) == 4.0
    assert metrics.median([5.0, 1.0, 3.0]) == 3.0
    assert math.isnan(metrics.percentile([], 50))


def test_the_kit_imports_without_the_assistants_dependencies() -> None:
    """The benchmarks' peer half runs in .bench-venv, where only the checkout is on the
    path: importing the kit may pull in nothing beyond the standard library and numpy."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); "
            "import assistant.metrics; "
            "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before} "
            "- set(sys.stdlib_module_names))))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert set(out) == {"assistant", "numpy"}, out


def test_calibration_noise_shrinks_with_the_sample_and_is_the_ece_of_a_calibrated_model() -> None:
    """A calibrated model's ECE on 50 answers is ~0.1 by chance; on 5,000, ~0.01 (the
    per-corpus ECE target of issue 25 is read against it)."""
    small = metrics.calibration_noise([0.3, 0.5, 0.7, 0.9, 0.1] * 10)
    large = metrics.calibration_noise([0.3, 0.5, 0.7, 0.9, 0.1] * 1000, draws=50)
    assert 0.05 < small[0] < 0.2 and small[0] < small[1]
    assert large[0] < 0.02
    assert metrics.calibration_noise([1.0, 0.0] * 20) == (0.0, 0.0)
    assert all(math.isnan(v) for v in metrics.calibration_noise([]))
