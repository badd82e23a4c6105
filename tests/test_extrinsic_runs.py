"""Table 6 from the outcome files of several `toolqual evaluate` runs: intervals, paired tests, noise verdicts.

The three outcome files are written by hand here (what `toolqual evaluate` writes; no model ran), and
every expected number is computed in the test from the counts with the textbook formulas.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.evaluate.engine import OUTCOME_COLUMNS
from toolqual_utils.extrinsic import compare_to_baselines, extrinsic_table, noise_statements, read_outcome_files

Z = 1.959963984540054
N_ITEMS = 40


def outcome_file(tmp_path, run, n_passed, unscored=(), benchmark="bfcl"):
    """An evaluate outcome file: items 0..n_passed-1 pass, the rest fail, ``unscored`` items are empty."""
    rows = []
    for i in range(N_ITEMS):
        passed = math.nan if i in unscored else float(i < n_passed)
        rows.append({"run": run, "item_id": f"bfcl/x/{i}", "passed": passed, "score": passed,
                     "predicted_calls": "[]", "reason": None,
                     "status": "unscored:api_error" if i in unscored else "ok", "benchmark": benchmark,
                     "model": "same-served-name", "mode": "static", "api": "chat", "call_format": "tools",
                     "prompt_id": "evaluate_tools.v1", "n_predicted_calls": 0, "n_gold_calls": 1, "cached": False,
                     "answer_text": ""})
    path = tmp_path / f"{run}.csv"
    pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS)).to_csv(path, index=False)
    return path


def wald(k, n):
    p = k / n
    half = Z * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def wilson(k, n):
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def mcnemar_exact(b, c):
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n)


@pytest.fixture
def runs(tmp_path):
    return [outcome_file(tmp_path, "random", 16, unscored={39}),
            outcome_file(tmp_path, "high_instruction_seq", 28),
            outcome_file(tmp_path, "original", 20, unscored={38})]


@pytest.mark.parametrize("method,formula", [("wald", wald), ("wilson", wilson)])
def test_pass_rates_and_intervals_from_three_outcome_files(runs, method, formula):
    outcomes = read_outcome_files(runs)
    assert set(outcomes["served_model"]) == {"same-served-name"}  # the run names the row, not the served model
    table = extrinsic_table(outcomes, method=method).set_index("model")
    expected = {"random": (16, 39), "high_instruction_seq": (28, 40), "original": (20, 39)}
    for run, (k, n) in expected.items():
        row = table.loc[run]
        assert (row["n"], row["n_passed"]) == (n, k)  # unscored items are neither passed nor failed
        assert row["pass_rate"] == pytest.approx(k / n)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(formula(k, n), abs=1e-9)


def test_paired_tests_on_shared_items_and_noise_verdicts(runs):
    outcomes = read_outcome_files(runs)
    table = extrinsic_table(outcomes)
    comparisons = compare_to_baselines(outcomes, ["random"], n_resamples=2000, seed=1).set_index("model")
    # hiseq vs random on the 39 items both have: hiseq alone passes items 16..27 (12), random alone none
    hiseq = comparisons.loc["high_instruction_seq"]
    assert (hiseq["n_shared"], hiseq["model_only"], hiseq["baseline_only"]) == (39, 12, 0)
    assert hiseq["pvalue"] == pytest.approx(mcnemar_exact(12, 0))
    assert hiseq["diff"] == pytest.approx(28 / 39 - 16 / 39)  # on the shared items only
    assert hiseq["ci_low"] > 0
    # original vs random on 38 shared items: original alone passes 16..19 (4): inside the noise
    original = comparisons.loc["original"]
    assert (original["n_shared"], original["model_only"], original["baseline_only"]) == (38, 4, 0)
    assert original["pvalue"] == pytest.approx(mcnemar_exact(4, 0))
    verdicts = noise_statements(table, compare_to_baselines(outcomes, ["random"], seed=1)).set_index("model")
    assert verdicts.loc["high_instruction_seq", "inside_noise"] == False  # noqa: E712 - numpy bool
    assert "beyond the noise" in verdicts.loc["high_instruction_seq", "statement"]
    # the Wald intervals overlap (0.256-0.564 and 0.558-0.842), yet the paired test on the same items
    # finds the difference: the verdict follows the paired test, and the statement says both
    assert wald(16, 39)[1] > wald(28, 40)[0]
    assert verdicts.loc["high_instruction_seq", "intervals_overlap"] == True  # noqa: E712
    assert "pass-rate intervals overlap" in verdicts.loc["high_instruction_seq", "statement"]
    assert verdicts.loc["original", "inside_noise"] == True  # noqa: E712
    statement = verdicts.loc["original", "statement"]
    assert statement.startswith("original vs random (bfcl): +0.") and "inside the noise" in statement
    assert f"p = {mcnemar_exact(4, 0):.3g}" in statement and "intervals overlap" in statement


def test_paper_aggregates_get_a_statement_too():
    from toolqual_utils.extrinsic import reference_outcomes

    paper = reference_outcomes("ToolAlpaca")
    verdicts = noise_statements(extrinsic_table(paper), compare_to_baselines(paper, ["random"]))
    assert len(verdicts) == 6 and verdicts["inside_noise"].all()  # the paper's ToolAlpaca rows: all inside the noise
    toolbench = reference_outcomes("ToolBench")
    no_n = noise_statements(extrinsic_table(toolbench), compare_to_baselines(toolbench, ["random"]))
    assert no_n["inside_noise"].isna().all() and no_n["statement"].str.contains("no test possible").all()


def test_a_run_given_twice_is_refused(tmp_path, runs):
    again = outcome_file(tmp_path / ".." / tmp_path.name, "random", 3)
    copy = tmp_path / "random_again.csv"
    copy.write_bytes(again.read_bytes())
    with pytest.raises(InputError, match="run 'random' on benchmark 'bfcl' is also in"):
        read_outcome_files([runs[0], copy])
    aggregates = tmp_path / "agg.csv"
    pd.DataFrame({"model": ["a"], "pass_rate": [0.5], "n": [10]}).to_csv(aggregates, index=False)
    with pytest.raises(InputError, match="expected per-item outcomes"):
        read_outcome_files([aggregates])


def test_run_table_shows_wald_and_wilson_and_the_unscored(runs):
    from toolqual_utils.extrinsic import run_table

    table = run_table(read_outcome_files(runs), order=["random", "high_instruction_seq", "original"])
    assert table["fine_tune_set"].tolist() == ["random", "high_instruction_seq", "original"]
    random = table.iloc[0]
    assert (random["n_items"], random["n_unscored"], random["n"], random["n_passed"]) == (40, 1, 39, 16)
    assert random["wald"] == "{:.3f}–{:.3f}".format(*wald(16, 39))
    assert random["wilson"] == "{:.3f}–{:.3f}".format(*wilson(16, 39))
