"""Pure helpers of toolqual_utils.analysis (behind notebooks 02/03/05/06 and the widgets)."""
from __future__ import annotations

import math
import sys

import pandas as pd
import pytest

from toolqual_utils import analysis
from toolqual_utils.errors import ConfigError
from toolqual_utils.schema import CRITERIA, Call, Instance, ToolSpec
from toolqual_utils.selection import selection_frame
from toolqual_utils.tables import error_rate_table, validation_table


def _verdicts(rows):
    return pd.DataFrame([{"instance_id": i, "criterion": c, "label": lab,
                          "status": "ok" if lab is not None else "unscored:needs-model", "judge": judge,
                          "prompt_id": "p", "rationale": "", "evidence": []} for i, c, lab, judge in rows])


def test_analysis_is_pure():
    code = "import sys, toolqual_utils.analysis; print(sorted(m for m in ('plotly', 'ipywidgets', 'openai', 'papermill') if m in sys.modules))"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_instance_html_shows_calls_raw_arguments_and_no_call_cases():
    tools = [ToolSpec(name="search", description="find", parameters={
        "type": "object", "properties": {"q": {"type": "string", "enum": ["a", "b"]}, "k": {"type": "integer", "default": 3}},
        "required": ["q"]})]
    failed = Instance(id="s/x/1", source="s", instruction="find a", tools=tools,
                      calls=[Call(name="search", arguments=None, raw_arguments="{q: ${x from f}}", observation="o" * 5000)],
                      meta={"pseudo_calls": [{"name": "Finish", "raw_arguments": "{}"}]}, final_answer="done")
    page = analysis.instance_html(failed, max_observation_chars=100)
    assert "could not be parsed" in page and "{q: ${x from f}}" in page
    assert "o" * 99 + "…" in page and "o" * 101 not in page
    assert "one of a, b" in page and "default 3" in page and "required" in page and "optional" in page
    assert "pseudo-calls (not API calls): Finish" in page and "Final answer" in page
    assert "no gold calls known" in analysis.instance_html(Instance(id="s/x/2", source="s", instruction="i"))
    assert "gold answer: no call" in analysis.instance_html(Instance(id="s/x/3", source="s", instruction="i", calls=[]))


def test_as_wide_labels_from_verdicts_and_annotations():
    verdicts = _verdicts([("a", "specificity", 0, "rules"), ("a", "coherence", None, "rules")])
    wide = analysis.as_wide_labels(verdicts)
    assert wide.loc[0, "specificity"] == 0.0 and math.isnan(wide.loc[0, "coherence"])
    annotations = pd.DataFrame([{"instance_id": "a", "annotator": "x", **{c: 1 for c in CRITERIA}},
                                {"instance_id": "a", "annotator": "y", **{c: 0 for c in CRITERIA}}])
    assert analysis.as_wide_labels(annotations, annotator="y").loc[0, "minimality"] == 0.0
    assert list(analysis.as_wide_labels(None).columns) == ["instance_id", *CRITERIA]


def test_verdict_status_counts():
    verdicts = _verdicts([("a", "coherence", 0, "heuristic"), ("b", "coherence", 1, "heuristic"),
                          ("a", "specificity", None, "rules")])
    counts = analysis.verdict_status_counts(verdicts)
    assert counts.to_dict("records") == [
        {"criterion": "specificity", "judge": "rules", "status": "unscored:needs-model", "n_verdicts": 1, "n_errors": 0},
        {"criterion": "coherence", "judge": "heuristic", "status": "ok", "n_verdicts": 2, "n_errors": 1},
    ]
    assert analysis.verdict_status_counts(verdicts.iloc[0:0]).empty


def test_error_rate_bounds_span_the_unscored():
    verdicts = _verdicts([("s/x/1", "specificity", 0, "r"), ("s/x/2", "specificity", 1, "r"),
                          ("s/x/3", "specificity", None, "r"), ("s/x/4", "specificity", None, "r")])
    bounds = analysis.error_rate_bounds(error_rate_table(verdicts, by="source"))
    row = bounds.loc[bounds.criterion == "specificity"].iloc[0]
    assert (row.n_instances, row.n_errors, row.n_unscored) == (4, 1, 2)
    assert row.lower == pytest.approx(0.25) and row.upper == pytest.approx(0.75)
    assert row.display == "25.0%–75.0%"


def test_validation_display_formats_intervals_and_undefined():
    verdicts = _verdicts([(f"i{k}", "specificity", lab, "r") for k, lab in enumerate([0, 0, 1, 1])])
    annotations = pd.DataFrame([{"instance_id": f"i{k}", "annotator": "adjudicated", "specificity": lab,
                                 **{c: 1 for c in CRITERIA[1:]}, "note": ""} for k, lab in enumerate([0, 1, 1, 1])])
    shown = analysis.validation_display(validation_table(verdicts, annotations))
    spec = shown.loc[shown.criterion == "specificity"].iloc[0]
    assert spec["TP/FP/FN/TN"] == "1/1/0/2" and spec["n"] == 4
    assert spec["precision"].startswith("0.50 (") and spec["recall"].startswith("1.00 (")
    assert shown.loc[shown.criterion == "coherence"].iloc[0]["precision"] == "–"  # judge scored nothing


def test_optional_file(tmp_path):
    assert analysis.optional_file("", "x") is None and analysis.optional_file(None, "x") is None
    present = tmp_path / "v.csv"
    present.write_text("a\n")
    assert analysis.optional_file(str(present), "x") == present
    with pytest.raises(ConfigError, match="judge_verdicts_path = .*no such file"):
        analysis.optional_file(str(tmp_path / "missing.csv"), "judge_verdicts_path")


def test_recipe_availability_names_the_missing_input():
    instances = [Instance(id=f"s/x/{k}", source="s", instruction="i", calls=[]) for k in range(4)]
    verdicts = _verdicts([(f"s/x/{k}", c, 1, "r") for k in range(4) for c in CRITERIA])
    without_ice = analysis.recipe_availability(selection_frame(instances, verdicts), size=2)
    assert without_ice.set_index("recipe")["available"].to_dict() == {
        "random": True, "low_ice": False, "high_ice": False, "high_instruction": True,
        "high_instruction_seq": True, "high_instruction_seq_ice": False, "original": True}
    assert "needs ICE scores" in without_ice.set_index("recipe").loc["high_ice", "reason"]
    with_ice = analysis.recipe_availability(selection_frame(instances, verdicts, {f"s/x/{k}": k / 4 for k in range(4)}),
                                            size=2)
    assert with_ice["available"].all()
    no_verdicts = analysis.recipe_availability(selection_frame(instances), size=2)
    assert "needs criterion verdicts" in no_verdicts.set_index("recipe").loc["high_instruction", "reason"]


def test_output_folder_and_manifest_table(tmp_path):
    made = analysis.output_folder("", root=tmp_path)
    assert made == tmp_path / "reports" / "exports" and made.is_dir()
    assert analysis.output_folder("out/x", root=tmp_path) == tmp_path / "out" / "x"
    assert analysis.output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    table = analysis.manifest_table({"ids": [f"id{k}" for k in range(8)], "seed": 0, "notes": ["x"], "shortfall": None},
                                    max_ids=3)
    values = dict(zip(table["field"], table["value"]))
    assert values["ids"] == '["id0", "id1", "id2", "… 5 more"]' and values["seed"] == "0" and values["shortfall"] == ""


def test_confidence_curve_trades_coverage_for_precision():
    """Two instances flagged with an error: the right flag has 3 of 3 votes, the false alarm 2 of 3."""
    annotations = pd.DataFrame([
        {"instance_id": "x/a/1", "annotator": "adjudicated", **{c: 1 for c in CRITERIA}, "coherence": 0},
        {"instance_id": "x/a/2", "annotator": "adjudicated", **{c: 1 for c in CRITERIA}},
    ])
    verdicts = pd.DataFrame([
        {"instance_id": i, "criterion": "coherence", "label": 0, "status": "ok", "judge": "panel", "prompt_id": "p",
         "rationale": "", "evidence": [], "confidence": share, "n_votes": 3}
        for i, share in (("x/a/1", 1.0), ("x/a/2", 2 / 3))
    ])
    curve = analysis.confidence_curve(verdicts, annotations, thresholds=(0.5, 0.9), criteria=["coherence"])
    low, high = curve.to_dict("records")
    assert (low["n_kept"], low["coverage"], low["precision"], low["recall"]) == (2, 1.0, 0.5, 1.0)
    assert (high["n_kept"], high["coverage"], high["precision"], high["recall"]) == (1, 0.5, 1.0, 1.0)
    assert analysis.confidence_curve(verdicts.iloc[0:0], annotations).empty
