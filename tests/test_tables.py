"""Error-rate, validation and disagreement tables (toolqual_utils.tables)."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from toolqual_utils.schema import CRITERIA
from toolqual_utils.stats import proportion_interval
from toolqual_utils.tables import (
    TABLE_CRITERIA,
    derive_coarse,
    disagreement_view,
    error_rate_table,
    error_rate_wide,
    labels_wide,
    merge_verdicts,
    validation_long,
    validation_table,
    validation_wide,
)
from conftest import ANNOTATIONS



def verdict_rows(labels: dict[str, dict[str, object]], judge: str = "rules") -> pd.DataFrame:
    """{instance_id: {criterion: 1 | 0 | 'unscored'}} -> verdict table."""
    rows = []
    for instance_id, per_criterion in labels.items():
        for criterion, value in per_criterion.items():
            unscored = value == "unscored"
            rows.append({
                "instance_id": instance_id, "criterion": criterion, "label": None if unscored else value,
                "status": "unscored:needs-model" if unscored else "ok", "judge": judge,
                "prompt_id": f"{judge}.v1", "rationale": f"{judge} says {value}", "evidence": [],
            })
    return pd.DataFrame(rows)


def all_six(value: object, **overrides: object) -> dict[str, object]:
    return {c: overrides.get(c, value) for c in CRITERIA}


def test_derive_coarse_any_error_wins_and_unscored_without_error_is_unscored():
    frame = pd.DataFrame([
        {"instance_id": "a", **all_six(1)},
        {"instance_id": "b", **all_six(1, coherence=0)},
        {"instance_id": "c", **all_six(1, coherence=np.nan)},
        {"instance_id": "d", **all_six(1, coherence=np.nan, minimality=0)},
    ])
    coarse = derive_coarse(frame).set_index("instance_id")
    assert coarse.loc["a", ["instruction_ok", "sequence_ok", "overall_ok"]].tolist() == [1, 1, 1]
    assert coarse.loc["b", ["instruction_ok", "sequence_ok", "overall_ok"]].tolist() == [0, 1, 0]
    assert math.isnan(coarse.loc["c", "instruction_ok"]) and coarse.loc["c", "sequence_ok"] == 1
    assert math.isnan(coarse.loc["c", "overall_ok"])
    assert math.isnan(coarse.loc["d", "instruction_ok"]) and coarse.loc["d", "overall_ok"] == 0


def test_labels_wide_unscored_status_is_nan_even_with_a_label():
    verdicts = verdict_rows({"x": {"specificity": 0, "coherence": 1}})
    verdicts.loc[1, "status"] = "unscored:parse_error"  # a label left over must not count
    wide = labels_wide(verdicts).set_index("instance_id")
    assert wide.loc["x", "specificity"] == 0 and math.isnan(wide.loc["x", "coherence"])
    assert math.isnan(wide.loc["x", "minimality"])  # criterion never judged


def test_error_rate_table_counts_and_wilson_interval():
    # 10 toolbench instances: 3 specificity errors, 1 unscored; 4 bfcl instances all fine
    labels = {}
    for i in range(10):
        spec = 0 if i < 3 else ("unscored" if i == 3 else 1)
        labels[f"toolbench/G1/{i}"] = all_six(1, specificity=spec)
    for i in range(4):
        labels[f"bfcl/simple/{i}"] = all_six(1)
    table = error_rate_table(verdict_rows(labels))
    row = table.set_index(["group", "criterion"]).loc[("toolbench", "specificity")]
    assert (row["n_instances"], row["n"], row["n_errors"], row["n_unscored"]) == (10, 9, 3, 1)
    assert row["error_rate"] == pytest.approx(3 / 9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(proportion_interval(3, 9, method="wilson"))
    assert row["display"].startswith("33.3% (") and row["display"].endswith("n=9")
    # coarse: the unscored specificity of instance 3 leaves its instruction_ok unscored too
    coarse = table.set_index(["group", "criterion"]).loc[("toolbench", "instruction_ok")]
    assert (coarse["n"], coarse["n_errors"], coarse["n_unscored"]) == (9, 3, 1)
    assert table.set_index(["group", "criterion"]).loc[("bfcl", "overall_ok"), "error_rate"] == 0
    assert list(table.loc[table["group"] == "bfcl", "criterion"]) == list(TABLE_CRITERIA)


def test_error_rate_table_instances_define_universe_and_methods():
    verdicts = verdict_rows({"toolbench/G1/1": all_six(0), "toolbench/G2/2": all_six(1)})
    instances = pd.DataFrame({
        "instance_id": ["toolbench/G1/1", "toolbench/G2/2", "toolbench/G2/3"],
        "source": ["toolbench"] * 3, "subset": ["G1", "G2", "G2"],
    })
    table = error_rate_table(verdicts, instances, by="subset", method="wald", include_total=True)
    g2 = table.set_index(["group", "criterion"]).loc[("G2", "coherence")]
    assert (g2["n_instances"], g2["n"], g2["n_unscored"]) == (2, 1, 1)  # never-judged instance counted apart
    total = table.set_index(["group", "criterion"]).loc[("all", "coherence")]
    assert (total["n_instances"], total["n_errors"]) == (3, 1)
    assert (total["ci_low"], total["ci_high"]) == pytest.approx(proportion_interval(1, 2, method="wald"))
    single = error_rate_table(verdicts, by=None)
    assert set(single["group"]) == {"all"}
    with pytest.raises(ValueError, match="cannot group by"):
        error_rate_table(verdicts, by="judge_model")


def test_error_rate_wide_layout_and_empty_input():
    verdicts = verdict_rows({"toolalpaca/eval/A#0": all_six(1, sufficiency=0), "toolalpaca/eval/A#1": all_six(1)})
    wide = error_rate_wide(error_rate_table(verdicts))
    assert wide.index.name == "source" and list(wide.index) == ["toolalpaca"]
    assert list(wide.columns)[:4] == ["n_instances", "specificity", "coherence", "solvability"]
    assert wide.loc["toolalpaca", "sufficiency"].startswith("50.0% (")
    assert wide.loc["toolalpaca", "overall correctness (any error)"].endswith("n=2")
    numeric = error_rate_wide(error_rate_table(verdicts), value="error_rate", human_headers=False)
    assert numeric.loc["toolalpaca", "sequence_ok"] == 0.5
    empty = error_rate_table(verdict_rows({}))
    assert empty.empty and "error_rate" in empty.columns


def test_duplicate_verdicts_are_refused_and_merge_resolves_them():
    rules = verdict_rows({"i": {"specificity": "unscored", "coherence": 0}}, judge="rules")
    model = verdict_rows({"i": {"specificity": 0, "coherence": 1}}, judge="gpt-x")
    with pytest.raises(ValueError, match="merge_verdicts"):
        error_rate_table(pd.concat([rules, model], ignore_index=True))
    merged = merge_verdicts(rules, model).set_index("criterion")
    assert merged.loc["coherence", "judge"] == "rules"  # scored rule verdict wins
    assert merged.loc["specificity", "judge"] == "gpt-x"  # model fills an unscored rule verdict


def test_validation_table_hand_checked():
    # reference: 4 instances, specificity errors on a and b; judge flags a and c
    annotations = pd.DataFrame([
        {"instance_id": iid, "annotator": "adjudicated", **all_six(1, specificity=spec), "note": ""}
        for iid, spec in (("a", 0), ("b", 0), ("c", 1), ("d", 1))
    ])
    judge = verdict_rows({
        "a": all_six(1, specificity=0), "b": all_six(1), "c": all_six(1, specificity=0),
        "d": all_six(1, specificity="unscored"),
    }, judge="gpt-x")
    table = validation_table(judge, annotations).set_index("criterion")
    spec = table.loc["specificity"]
    assert (spec["n_annotated"], spec["n"], spec["n_unscored"]) == (4, 3, 1)
    assert (spec["tp"], spec["fp"], spec["fn"], spec["tn"]) == (1, 1, 1, 0)
    assert spec["precision"] == 0.5 and spec["recall"] == 0.5 and spec["accuracy"] == pytest.approx(1 / 3)
    assert (spec["accuracy_ci_low"], spec["accuracy_ci_high"]) == pytest.approx(proportion_interval(1, 3))
    assert math.isnan(spec["f1_ci_low"])  # Wilson mode: no F1 interval
    coherence = table.loc["coherence"]
    assert coherence["accuracy"] == 1 and math.isnan(coherence["precision"]) and math.isnan(coherence["recall"])
    # instruction_ok of d is unscored for the judge (unscored specificity, no error elsewhere)
    assert table.loc["instruction_ok", "n_unscored"] == 1
    long = validation_long(table.reset_index())
    assert len(long) == len(TABLE_CRITERIA) * 4 and {"value", "ci_low", "ci_high"} <= set(long.columns)


def test_validation_bootstrap_is_seeded_and_needs_annotator_choice():
    reference = pd.read_csv(ANNOTATIONS / "reference_dev.csv")
    judge = reference.loc[reference["annotator"] == "annotator_a", ["instance_id", *CRITERIA]]
    first = validation_table(judge, reference, ci="bootstrap", n_resamples=200, seed=5)
    again = validation_table(judge, reference, ci="bootstrap", n_resamples=200, seed=5)
    pd.testing.assert_frame_equal(first, again)
    spec = first.set_index("criterion").loc["parameter_alignment"]
    assert spec["n"] == 35 and spec["support"] == 10
    assert spec["accuracy_ci_low"] <= spec["accuracy"] <= spec["accuracy_ci_high"]
    with pytest.raises(ValueError, match="several annotators"):
        validation_table(judge, reference, annotator=None)
    by_source = validation_wide(validation_table(judge, reference, by="source"))
    assert {"toolalpaca", "toolbench", "bfcl", "seal_tools"} <= set(by_source.columns.get_level_values(0))
    assert by_source.loc["specificity", ("toolalpaca", "n")] == 17


def test_disagreement_view_lists_instances_per_cell():
    annotations = pd.DataFrame([
        {"instance_id": iid, "annotator": "adjudicated", **all_six(1, minimality=m), "note": ""}
        for iid, m in (("a", 0), ("b", 0), ("c", 1))
    ])
    rules = verdict_rows({"a": {"minimality": 0}, "b": {"minimality": "unscored"}, "c": {"minimality": 1}})
    model = verdict_rows({"a": {"minimality": 0}, "b": {"minimality": 1}, "c": {"minimality": 0}}, judge="m")
    cells = disagreement_view(rules, model, annotations, criteria=["minimality"])
    by_ids = {tuple(ids): row for ids, row in zip(cells["instance_ids"], cells.to_dict("records"))}
    assert by_ids[("a",)]["rules_outcome"] == "TP" and by_ids[("a",)]["model_outcome"] == "TP"
    assert by_ids[("b",)]["rules"] == "unscored" and by_ids[("b",)]["model_outcome"] == "FN"
    assert by_ids[("c",)]["model_outcome"] == "FP" and by_ids[("c",)]["n"] == 1
    per_instance = disagreement_view(rules, None, annotations, grain="instance", criteria=["minimality"])
    assert set(per_instance["model"]) == {"no verdicts"}
    assert per_instance.set_index("instance_id").loc["b", "rules_status"] == "unscored:needs-model"


def test_tables_is_pure():
    code = (
        "import sys, toolqual_utils.tables; "
        "print(','.join(m for m in ('openai', 'plotly', 'seaborn', 'ipywidgets', 'papermill') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
