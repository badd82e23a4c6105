"""Intervals, metrics, agreement and tests in toolqual_utils.stats."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from toolqual_utils.stats import (
    agreement_summary,
    bootstrap_ci,
    classification_metrics,
    cohen_kappa,
    confusion_counts,
    mcnemar_test,
    pabak,
    paired_bootstrap_diff,
    proportion_interval,
    rate_interval,
    two_proportion_test,
)

# Paper Table 6, ToolAlpaca column: (fine-tune set, pass rate, published 95% CI), n = 100 test items.
TABLE6_TOOLALPACA = [
    ("random", 0.48, (0.38, 0.58)),
    ("low_ice", 0.48, (0.38, 0.58)),
    ("high_ice", 0.54, (0.44, 0.64)),
    ("high_instruction", 0.52, (0.42, 0.62)),
    ("high_instruction_seq", 0.54, (0.44, 0.64)),
    ("high_instruction_seq_ice", 0.55, (0.45, 0.65)),
    ("original", 0.56, (0.46, 0.66)),
]


@pytest.mark.parametrize(("name", "pass_rate", "published"), TABLE6_TOOLALPACA)
def test_wald_reproduces_table6_toolalpaca_intervals(name, pass_rate, published):
    low, high = proportion_interval(round(pass_rate * 100), 100, method="wald")
    assert (round(low, 2), round(high, 2)) == published
    assert tuple(round(x, 2) for x in rate_interval(pass_rate, 100)) == published


def test_wilson_does_not_reproduce_table6():
    # Guards against the Wald default silently changing: Wilson gives a different (shifted) interval.
    low, high = proportion_interval(55, 100, method="wilson")
    assert (round(low, 2), round(high, 2)) != (0.45, 0.65)


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat Med 17:857, Table II.
@pytest.mark.parametrize(
    ("x", "n", "wilson", "exact"),
    [
        (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
        (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
        (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
        (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
    ],
)
def test_wilson_and_clopper_pearson_match_textbook(x, n, wilson, exact):
    assert tuple(round(v, 4) for v in proportion_interval(x, n, method="wilson")) == wilson
    assert tuple(round(v, 4) for v in proportion_interval(x, n, method="clopper_pearson")) == exact


def test_interval_edge_cases():
    assert all(math.isnan(v) for v in proportion_interval(0, 0))
    assert all(math.isnan(v) for v in rate_interval(0.5, float("nan")))
    low, high = proportion_interval(0, 10, method="wald")
    assert (low, high) == (0.0, 0.0)  # clipped, degenerate, as the normal approximation gives
    with pytest.raises(ValueError, match="unknown interval method"):
        proportion_interval(1, 2, method="agresti")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, n\]"):
        proportion_interval(3, 2)


def test_classification_metrics_error_is_positive():
    # truth: 3 errors (0) and 3 fine (1); judge catches 2 errors, raises 1 false alarm
    truth = [0, 0, 0, 1, 1, 1]
    judge = [0, 0, 1, 0, 1, 1]
    metrics = classification_metrics(truth, judge)
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (2, 1, 1, 2)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["support"] == 3


def test_classification_metrics_undefined_are_nan_not_errors():
    # No true errors and no predicted errors: precision, recall and F1 undefined; accuracy 1.
    metrics = classification_metrics([1, 1, 1], [1, 1, 1])
    assert metrics["accuracy"] == 1.0
    assert math.isnan(metrics["precision"]) and math.isnan(metrics["recall"]) and math.isnan(metrics["f1"])
    # Judge never says "error" but there are errors: precision undefined, recall 0, F1 0.
    metrics = classification_metrics([0, 1], [1, 1])
    assert math.isnan(metrics["precision"]) and metrics["recall"] == 0.0 and metrics["f1"] == 0.0
    # Empty and all-missing input.
    assert math.isnan(classification_metrics([], [])["accuracy"])
    assert classification_metrics([None, 1], [0, None])["n_missing"] == 2


def test_missing_labels_dropped_pairwise_and_bad_labels_rejected():
    counts = confusion_counts([0, None, 1, float("nan")], [0, 0, None, 1])
    assert counts["n"] == 1 and counts["n_missing"] == 3 and counts["tp"] == 1
    with pytest.raises(ValueError, match="labels 1"):
        classification_metrics([2, 1], [1, 1])


def test_kappa_and_pabak_hand_checked():
    # Table (rater a rows, rater b columns; 0 = error): [[2, 1], [1, 6]]
    # p_o = 0.8; p_e = 0.3*0.3 + 0.7*0.7 = 0.58; kappa = 0.22/0.42 = 0.5238; PABAK = 2*0.8-1 = 0.6
    a = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    b = [0, 0, 1, 1, 1, 1, 1, 1, 1, 0]
    assert cohen_kappa(a, b) == pytest.approx(0.22 / 0.42)
    assert pabak(a, b) == pytest.approx(0.6)
    summary = agreement_summary(a, b)
    assert summary["n"] == 10 and summary["n_agree"] == 8 and summary["raw_agreement"] == pytest.approx(0.8)


def test_kappa_matches_statsmodels_and_degenerate_cases():
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, 60)
    b = np.where(rng.random(60) < 0.8, a, 1 - a)
    table = np.array([[np.sum((a == i) & (b == j)) for j in (0, 1)] for i in (0, 1)])
    assert cohen_kappa(a, b) == pytest.approx(sm_kappa(table).kappa)
    # Both raters say "holds" everywhere: kappa undefined, PABAK 1.
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))
    assert pabak([1, 1, 1], [1, 1, 1]) == 1.0
    assert math.isnan(pabak([], []))


def test_mcnemar_known_tables():
    # Agresti (2002), presidential approval: discordant 150 vs 86 -> chi2 with correction 16.82.
    a = [1] * 794 + [1] * 150 + [0] * 86 + [0] * 570
    b = [1] * 794 + [0] * 150 + [1] * 86 + [0] * 570
    result = mcnemar_test(a, b, exact=False)
    assert result["a_only"] == 150 and result["b_only"] == 86
    assert result["statistic"] == pytest.approx(63**2 / 236)
    assert result["pvalue"] < 1e-4
    # Small: 1 vs 6 discordant -> exact two-sided binomial p = 2 * (1 + 7) / 128 = 0.125
    a = [1, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    b = [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    result = mcnemar_test(a, b)
    assert result["method"].startswith("mcnemar exact")
    assert result["pvalue"] == pytest.approx(0.125)
    assert mcnemar_test([1, 0], [1, 0])["pvalue"] == 1.0


def test_two_proportion_newcombe_interval_textbook():
    # Newcombe (1998b), Stat Med 17:873, example (a): 56/70 vs 48/80, hybrid score 0.0524 to 0.3339.
    result = two_proportion_test(56, 70, 48, 80)
    assert (round(result["ci_low"], 4), round(result["ci_high"], 4)) == (0.0524, 0.3339)
    assert result["diff"] == pytest.approx(0.2)
    assert 0 < result["pvalue"] < 0.05
    assert math.isnan(two_proportion_test(5, 10, 5, float("nan"))["pvalue"])


def test_bootstrap_is_deterministic_with_a_seed():
    values = np.random.default_rng(1).integers(0, 2, 40)
    first = bootstrap_ci(values, statistic=np.mean, seed=11, n_resamples=500)
    again = bootstrap_ci(values, statistic=np.mean, seed=11, n_resamples=500)
    other = bootstrap_ci(values, statistic=np.mean, seed=12, n_resamples=500)
    assert first == again
    assert (first["ci_low"], first["ci_high"]) != (other["ci_low"], other["ci_high"])
    assert first["ci_low"] <= first["estimate"] <= first["ci_high"]
    assert math.isnan(bootstrap_ci([], statistic=np.mean)["estimate"])


def test_paired_bootstrap_uses_shared_items_and_counts_undefined():
    a = np.array([1, 1, 1, 0, 1, 1, 0, 1])
    diff = paired_bootstrap_diff(a, a, n_resamples=300)
    assert diff["estimate"] == 0 and diff["ci_low"] == 0 and diff["ci_high"] == 0  # paired: exactly zero
    # precision undefined in resamples with no predicted error -> dropped and counted
    truth, judge = np.array([0, 1, 1, 1, 1]), np.array([0, 1, 1, 1, 1])
    result = bootstrap_ci(truth, judge, seed=0, n_resamples=300,
                          statistic=lambda t, p: classification_metrics(t, p)["precision"])
    assert result["n_undefined"] > 0 and result["ci_high"] == 1.0


def test_stats_is_pure():
    code = (
        "import sys, toolqual_utils.stats; "
        "bad = [m for m in ('openai', 'plotly', 'seaborn', 'ipywidgets', 'papermill') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
