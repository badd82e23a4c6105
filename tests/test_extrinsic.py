"""Extrinsic comparison tables and the paper's reference tables (toolqual_utils.extrinsic)."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.extrinsic import (
    compare_to_baselines,
    extrinsic_table,
    read_outcomes,
    read_reference_table,
    reference_outcomes,
)
from toolqual_utils.selection import RECIPES
from toolqual_utils.stats import proportion_interval
from toolqual_utils.tables import TABLE_CRITERIA
from conftest import DOCS, ROOT

METHOD = DOCS / "method.md"


def test_table6_toolalpaca_intervals_recomputed_with_wald_at_n_100():
    table6 = pd.read_csv(ROOT / "data" / "reference" / "table6_extrinsic.csv")
    toolalpaca = table6.loc[table6["dataset"] == "ToolAlpaca"]
    assert len(toolalpaca) == 7 and set(toolalpaca["n_test"]) == {100}
    recomputed = extrinsic_table(reference_outcomes("ToolAlpaca"))
    assert (recomputed["ci_method"] == "wald").all()
    merged = recomputed.merge(toolalpaca, on="fine_tune_set")
    assert len(merged) == 7
    assert (merged["ci_low_x"].round(2) == merged["ci_low_y"]).all()
    assert (merged["ci_high_x"].round(2) == merged["ci_high_y"]).all()
    assert merged.loc[merged["fine_tune_set"] == "high_instruction_seq_ice", "display"].item() == "0.55 (0.45–0.65) n=100"


def test_toolbench_rows_keep_published_intervals_without_n():
    table = extrinsic_table(reference_outcomes("ToolBench"), order=RECIPES)
    assert list(table["fine_tune_set"]) == list(RECIPES)
    assert (table["ci_method"] == "published").all() and table["n"].isna().all()
    original = table.set_index("fine_tune_set").loc["original"]
    assert (original["ci_low"], original["ci_high"]) == (0.40, 0.49)
    comparisons = compare_to_baselines(reference_outcomes("ToolBench"))
    assert comparisons["pvalue"].isna().all() and (comparisons["note"] == "n unknown: no interval or test").all()


def _method_table(number: int) -> list[list[str]]:
    text = METHOD.read_text(encoding="utf-8")
    block = text.split(f"## Table {number}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_reference_csvs_match_the_method_guide():
    # Table 6: every pass rate and interval as printed in docs/method.md
    table6 = pd.read_csv(ROOT / "data" / "reference" / "table6_extrinsic.csv")
    for recipe, row in zip(RECIPES, _method_table(6)):
        tb_ci = [float(x) for x in re.findall(r"[\d.]+", row[3])]
        ta_ci = [float(x) for x in re.findall(r"[\d.]+", row[6])]
        for dataset, rate, ci, size in (("ToolBench", row[2], tb_ci, row[1]), ("ToolAlpaca", row[5], ta_ci, row[4])):
            mine = table6.loc[(table6["dataset"] == dataset) & (table6["fine_tune_set"] == recipe)].iloc[0]
            assert (mine["pass_rate"], mine["ci_low"], mine["ci_high"]) == (float(rate), *ci), (dataset, recipe)
            assert mine["size_label"] == size
    # Table 4 (rows in TABLE_CRITERIA order in the guide) and Table 5 (columns in that order)
    table4 = read_reference_table(4).set_index(["group", "criterion", "metric"])["value"]
    for criterion, row in zip(TABLE_CRITERIA, _method_table(4)):
        values = [float(v) for v in row[1:]]
        for offset, dataset in ((0, "ToolBench"), (4, "ToolAlpaca")):
            for metric, value in zip(("accuracy", "precision", "recall", "f1"), values[offset:offset + 4]):
                assert table4[(dataset, criterion, metric)] == value
    table5 = read_reference_table(5).set_index(["group", "criterion"])["error_rate"]
    for row in _method_table(5):
        dataset = row[0].split()[0]
        for criterion, cell in zip(TABLE_CRITERIA, row[1:]):
            assert table5[(dataset, criterion)] == pytest.approx(float(cell.rstrip("%")) / 100)


def test_per_item_outcomes_intervals_and_mcnemar():
    rng = np.random.default_rng(0)
    items = [f"q{i}" for i in range(60)]
    base = rng.random(60) < 0.45
    better = base | (rng.random(60) < 0.4)  # passes everything the baseline passes, and more
    rows = [{"model": "original", "item_id": i, "passed": int(p)} for i, p in zip(items, base)]
    rows += [{"model": "clean", "fine_tune_set": "high_instruction_seq", "item_id": i, "passed": bool(p)}
             for i, p in zip(items, better)]
    rows += [{"model": "random", "item_id": i, "passed": "yes" if p else "no"} for i, p in zip(items[:50], base[:50])]
    outcomes = pd.DataFrame(rows)
    table = extrinsic_table(outcomes, method="wilson").set_index("model")
    assert table.loc["clean", "n"] == 60 and table.loc["clean", "n_passed"] == better.sum()
    assert (table.loc["clean", "ci_low"], table.loc["clean", "ci_high"]) == pytest.approx(
        proportion_interval(int(better.sum()), 60, method="wilson"))
    assert table.loc["clean", "fine_tune_set"] == "high_instruction_seq" and table.loc["random", "n"] == 50
    comparisons = compare_to_baselines(outcomes, seed=1).set_index(["model", "baseline"])
    clean = comparisons.loc[("clean", "original")]
    assert clean["baseline_only"] == 0 and clean["model_only"] == (better & ~base).sum()
    # exact McNemar with 0 vs k discordant pairs: two-sided binomial p = 2 * 0.5**k
    assert clean["pvalue"] == pytest.approx(2 * 0.5 ** clean["model_only"])
    assert clean["ci_low"] > 0 and clean["test"].startswith("mcnemar exact")
    assert comparisons.loc[("random", "original"), "n_shared"] == 50
    assert "not shared" in comparisons.loc[("random", "original"), "note"]
    assert comparisons.loc[("random", "original"), "pvalue"] == 1.0  # identical outcomes on shared items
    again = compare_to_baselines(outcomes, seed=1)
    pd.testing.assert_frame_equal(comparisons.reset_index(), again.set_index(["model", "baseline"]).reset_index())


def test_aggregate_comparison_uses_newcombe():
    outcomes = pd.DataFrame({"model": ["original", "high_ice"], "pass_rate": [0.6, 0.8], "n": [80, 70]})
    row = compare_to_baselines(outcomes, baselines=["original"]).iloc[0]
    # Newcombe (1998b) example: 56/70 vs 48/80 -> 0.0524 to 0.3339
    assert (round(row["ci_low"], 4), round(row["ci_high"], 4)) == (0.0524, 0.3339)
    assert row["diff"] == pytest.approx(0.2) and row["pvalue"] < 0.05 and "independent" in row["test"]


def test_bad_outcomes_are_reported(tmp_path):
    with pytest.raises(InputError, match="either per-item columns"):
        read_outcomes(pd.DataFrame({"model": ["a"], "score": [1]}))
    path = tmp_path / "items.csv"
    pd.DataFrame({"model": ["a", "a"], "item_id": [1, 2], "passed": [1, "maybe"]}).to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        read_outcomes(path)
    assert str(path) in str(caught.value) and caught.value.field == "passed"
    with pytest.raises(InputError, match="repeated row"):
        read_outcomes(pd.DataFrame({"model": ["a", "a"], "item_id": ["1", "1"], "passed": [1, 0]}))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        read_outcomes(pd.DataFrame({"model": ["a"], "pass_rate": [54.0], "n": [100]}))
    empty_n = extrinsic_table(pd.DataFrame({"model": ["a"], "pass_rate": [0.5]}))
    assert empty_n.loc[0, "ci_method"] == "none" and math.isnan(empty_n.loc[0, "ci_low"])


def test_reference_table6_is_forest_ready():
    table6 = read_reference_table(6)
    assert {"benchmark", "fine_tune_set", "pass_rate", "ci_low", "ci_high", "origin", "n"} <= set(table6.columns)
    assert set(table6["origin"]) == {"paper"} and table6.loc[table6["benchmark"] == "ToolBench", "n"].isna().all()
