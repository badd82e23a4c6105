"""Figure builders of the analysis notebooks: the figure holds what the finished table says."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from toolqual_utils import plots_analysis
from toolqual_utils.tables import error_rate_table, validation_long, validation_table


def _verdicts(rows):
    return pd.DataFrame(
        [{"instance_id": i, "criterion": c, "label": lab, "status": "ok" if lab is not None else "unscored:needs-model",
          "judge": "rules", "prompt_id": "rules.v1", "rationale": "", "evidence": []} for i, c, lab in rows]
    )


@pytest.fixture()
def tiny_verdicts():
    crit = ["specificity", "coherence", "solvability", "parameter_alignment", "sufficiency", "minimality"]
    rows = []
    for k in range(4):  # source a: specificity errors on 2 of 4
        for c in crit:
            rows.append((f"a/x/{k}", c, 0 if (c == "specificity" and k < 2) else 1))
    for k in range(3):  # source b: coherence unscored on one
        for c in crit:
            rows.append((f"b/x/{k}", c, None if (c == "coherence" and k == 0) else 1))
    return _verdicts(rows)


def test_error_rate_bars_one_trace_per_group_with_interval_bars(tiny_verdicts):
    table = error_rate_table(tiny_verdicts, by="source")
    fig = plots_analysis.error_rate_bars(table)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["a", "b"]
    a = bars[0]
    assert list(a.x)[0] == "specificity" and len(a.x) == 9
    assert a.y[0] == pytest.approx(0.5)
    row = table[(table.group == "a") & (table.criterion == "specificity")].iloc[0]
    # error bars are exactly the table's interval, not recomputed
    assert a.error_y.array[0] == pytest.approx(row.ci_high - 0.5)
    assert a.error_y.arrayminus[0] == pytest.approx(0.5 - row.ci_low)
    # unscored counts travel in the hover data
    b = bars[1]
    coherence_index = list(b.x).index("coherence")
    assert b.customdata[coherence_index][2] == 1  # n_unscored
    assert b.customdata[coherence_index][0] == 2  # n scored


def test_error_rate_bars_reference_is_markers_not_bars(tiny_verdicts):
    table = error_rate_table(tiny_verdicts, by="source")
    reference = pd.DataFrame({"group": ["ToolBench", "ToolBench"], "criterion": ["specificity", "overall_ok"],
                              "error_rate": [0.204, 0.84]})
    fig = plots_analysis.error_rate_bars(table, reference)
    ref = [t for t in fig.data if t.name == "ToolBench (paper)"]
    assert len(ref) == 1 and ref[0].type == "scatter" and ref[0].mode == "markers"
    assert list(ref[0].y) == [0.204, 0.84]
    assert list(ref[0].x) == ["specificity", "overall correctness (any error)"]


def test_empty_tables_give_a_message_figure():
    for fig in (plots_analysis.error_rate_bars(pd.DataFrame()),
                plots_analysis.validation_metrics_chart(pd.DataFrame()),
                plots_analysis.extrinsic_forest(pd.DataFrame()),
                plots_analysis.agreement_chart(pd.DataFrame())):
        assert len(fig.data) == 0
        assert fig.layout.annotations[0].text == "no data"


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="missing"):
        plots_analysis.error_rate_bars(pd.DataFrame({"group": ["a"], "criterion": ["x"]}))


def test_validation_chart_panels_and_points(tiny_verdicts):
    annotations = pd.DataFrame([
        {"instance_id": f"a/x/{k}", "annotator": "adjudicated", "specificity": 0 if k == 0 else 1,
         "coherence": 1, "solvability": 1, "parameter_alignment": 1, "sufficiency": 1, "minimality": 1, "note": ""}
        for k in range(4)
    ])
    long_table = validation_long(validation_table(tiny_verdicts, annotations))
    reference = pd.DataFrame({"group": ["TA"], "criterion": ["specificity"], "metric": ["recall"], "value": [0.86]})
    fig = plots_analysis.validation_metrics_chart(long_table, reference)
    ours = [t for t in fig.data if t.name == "all"]
    assert len(ours) == 4  # one per metric panel
    recall = ours[2]
    spec = long_table[(long_table.metric == "recall") & (long_table.criterion == "specificity")].iloc[0]
    assert recall.x[0] == pytest.approx(spec.value)  # 1 of 1 error caught
    assert recall.xaxis == "x3"
    paper = [t for t in fig.data if t.name == "TA (paper)"]
    assert [len(t.x) for t in paper] == [0, 0, 1, 0]
    assert paper[2].marker.symbol == "diamond-open"
    # two paper datasets in the same panels: the same grey, told apart by their symbol
    two = pd.concat([reference, reference.assign(group="TB", value=0.5)], ignore_index=True)
    fig = plots_analysis.validation_metrics_chart(long_table, two)
    symbols = {t.name: t.marker.symbol for t in fig.data if t.name.endswith("(paper)")}
    colours = {t.marker.color for t in fig.data if t.name.endswith("(paper)")}
    assert symbols == {"TA (paper)": "diamond-open", "TB (paper)": "square-open"} and len(colours) == 1


def test_forest_plot_separates_reference_and_panels():
    table = pd.DataFrame({
        "benchmark": ["ToolBench", "ToolBench", "ToolAlpaca", "ToolBench"],
        "fine_tune_set": ["random sample", "original", "random sample", "random sample"],
        "origin": ["paper", "paper", "paper", "yours"],
        "pass_rate": [0.35, 0.45, 0.48, 0.40],
        "ci_low": [0.31, 0.40, 0.38, 0.30],
        "ci_high": [0.39, 0.49, 0.58, 0.50],
        "n": [450, 450, 100, 100],
    })
    fig = plots_analysis.extrinsic_forest(table)
    names = [(t.name, t.xaxis) for t in fig.data]
    assert ("paper (Table 6)", "x") in names and ("paper (Table 6)", "x2") in names and ("yours", "x") in names
    paper_tb = next(t for t in fig.data if t.name == "paper (Table 6)" and t.xaxis == "x")
    assert list(paper_tb.y) == ["random sample", "original"]
    assert paper_tb.marker.symbol == "diamond-open"
    assert paper_tb.error_x.array[0] == pytest.approx(0.04)
    yours = next(t for t in fig.data if t.name == "yours")
    assert yours.marker.symbol == "circle"
    assert sum(bool(t.showlegend) for t in fig.data if t.name == "paper (Table 6)") == 1


def test_agreement_chart_marks_undefined_kappa():
    table = pd.DataFrame({"criterion": ["specificity", "minimality"], "n": [35, 35],
                          "raw_agreement": [0.97, 1.0], "kappa": [0.85, math.nan], "pabak": [0.94, 1.0]})
    fig = plots_analysis.agreement_chart(table)
    assert [t.name for t in fig.data] == ["raw agreement", "kappa", "pabak"]
    kappa = fig.data[1]
    assert list(kappa.text) == ["0.85", "undefined"]
    assert np.isnan(kappa.y[1])



def test_forest_plot_draws_extrinsic_table_with_display_names():
    from toolqual_utils.extrinsic import extrinsic_table, read_reference_table
    from toolqual_utils.selection import RECIPE_LABELS, RECIPES

    table = extrinsic_table(read_reference_table(6), order=RECIPES)
    fig = plots_analysis.extrinsic_forest(table, label_names=RECIPE_LABELS)
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    toolalpaca = next(t for t in fig.data if t.xaxis == "x2")
    assert list(toolalpaca.y)[0] == "random sample" and len(toolalpaca.y) == 7
    row = table[(table.benchmark == "ToolAlpaca") & (table.fine_tune_set == "random")].iloc[0]
    assert toolalpaca.x[0] == pytest.approx(0.48)
    assert toolalpaca.error_x.arrayminus[0] == pytest.approx(0.48 - row.ci_low)
