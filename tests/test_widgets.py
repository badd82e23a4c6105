"""Widget callbacks against direct calls of the pure functions they wrap (no browser needed).

Explorer: set toggles/slider/sources programmatically (that fires the observers) and compare what the
widget kept with ``selection.filter_instances`` called directly. Annotator: save appends a CSV row,
earlier labels are retained, navigation, jump to the next disagreement.
"""
from __future__ import annotations

import csv
import html
import math

import pandas as pd
import pytest

from toolqual_utils import analysis
from toolqual_utils.annotations import read_annotations
from toolqual_utils.heuristics import offline_verdicts
from toolqual_utils.io import read_instances
from toolqual_utils.schema import CRITERIA, Call, Instance, ToolSpec
from toolqual_utils.selection import filter_instances, selection_frame
from toolqual_utils.tables import error_rate_table
from toolqual_utils.widgets import Annotator, FilterExplorer
from conftest import REFERENCE_INSTANCES



@pytest.fixture(scope="module")
def reference_instances():
    return read_instances(REFERENCE_INSTANCES, strict=True)


@pytest.fixture(scope="module")
def reference_verdicts(reference_instances):
    return offline_verdicts(reference_instances)


def _html_texts(widget):
    if hasattr(widget, "children"):
        for child in widget.children:
            yield from _html_texts(child)
    elif widget.__class__.__name__ == "HTML":
        yield widget.value


def _ice(instances):
    return {inst.id: round((k * 7 % 35) / 35, 3) for k, inst in enumerate(instances)}


# --- filter explorer ----------------------------------------------------------------------------------


def test_explorer_initial_state_matches_direct_filter(reference_instances, reference_verdicts):
    explorer = FilterExplorer(reference_instances, reference_verdicts,
                              include_criteria={"overall_ok": "holds"}, unscored_as_pass=True)
    frame = selection_frame(reference_instances, reference_verdicts)
    direct = filter_instances(frame, {"overall_ok": "holds"}, unscored_as_pass=True)
    assert explorer.kept_ids == list(direct["instance_id"])
    assert 0 < len(explorer.kept_ids) < len(reference_instances)
    assert explorer.counts.iloc[-1]["n_kept"] == len(direct)
    assert f"kept {len(direct)} of {len(reference_instances)} instances" in explorer.counts_view.value


def test_explorer_toggles_sources_and_checkbox_fire_the_same_filter(reference_instances, reference_verdicts):
    explorer = FilterExplorer(reference_instances, reference_verdicts)
    frame = selection_frame(reference_instances, reference_verdicts)
    assert len(explorer.kept_ids) == len(reference_instances)  # no condition: everything kept

    explorer.criterion_controls["specificity"].value = "error"  # fires the observer
    direct = filter_instances(frame, {"specificity": "error"})
    assert explorer.kept_ids == list(direct["instance_id"]) and len(direct) > 0

    explorer.criterion_controls["specificity"].value = "any"
    explorer.criterion_controls["parameter_alignment"].value = "holds"
    explorer.unscored_as_pass.value = True
    explorer.source_select.value = ("toolalpaca", "bfcl")
    direct = filter_instances(frame, {"parameter_alignment": "holds"}, sources=["toolalpaca", "bfcl"],
                              unscored_as_pass=True)
    assert explorer.kept_ids == list(direct["instance_id"])
    assert set(explorer.kept["source"]) <= {"toolalpaca", "bfcl"}
    assert explorer.settings()["sources"] == ["toolalpaca", "bfcl"]

    explorer.criterion_controls["coherence"].value = "unscored"
    direct = filter_instances(frame, {"parameter_alignment": "holds", "coherence": "unscored"},
                              sources=["toolalpaca", "bfcl"], unscored_as_pass=True)
    assert explorer.kept_ids == list(direct["instance_id"])


def test_explorer_ice_slider(reference_instances, reference_verdicts):
    scores = _ice(reference_instances)
    explorer = FilterExplorer(reference_instances, reference_verdicts, scores)
    frame = selection_frame(reference_instances, reference_verdicts, scores)
    assert explorer.has_ice and not explorer.ice_enabled.value
    assert len(explorer.kept_ids) == len(reference_instances)
    explorer.ice_enabled.value = True
    explorer.ice_slider.value = 0.6
    direct = filter_instances(frame, ice_min=0.6)
    assert explorer.kept_ids == list(direct["instance_id"])
    assert explorer.kept["ice_score"].min() >= 0.6 and len(direct) < len(reference_instances)
    explorer.ice_slider.value = 0.9
    assert explorer.kept_ids == list(filter_instances(frame, ice_min=0.9)["instance_id"])


def test_explorer_without_ice_has_no_usable_slider(reference_instances, reference_verdicts):
    explorer = FilterExplorer(reference_instances, reference_verdicts)
    assert not explorer.has_ice and explorer.ice_slider.disabled
    assert explorer.settings()["ice_min"] is None
    assert any("ICE filter is unavailable" in html.unescape(text) for text in _html_texts(explorer.widget))


def test_explorer_error_rates_and_figure_come_from_the_kept_rows(reference_instances, reference_verdicts):
    explorer = FilterExplorer(reference_instances, reference_verdicts, sources=["toolbench"])
    kept = explorer.kept
    direct = error_rate_table(reference_verdicts[reference_verdicts.instance_id.isin(kept.instance_id)],
                              instances=kept, by="source")
    pd.testing.assert_frame_equal(explorer.error_rates, direct)
    bars = [t for t in explorer.figure.data if t.type == "bar"]
    assert [t.name for t in bars] == ["toolbench"]


def test_explorer_table_escapes_dataset_text(reference_verdicts):
    nasty = Instance(id="x/y/1", source="x", instruction="<script>alert(1)</script> please",
                     tools=[ToolSpec(name="t")], calls=[Call(name="t", arguments={})])
    explorer = FilterExplorer([nasty], None)
    assert "<script>alert(1)" not in explorer.kept_view.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in explorer.kept_view.value


def test_explorer_rejects_unknown_criterion(reference_instances, reference_verdicts):
    with pytest.raises(ValueError, match="unknown criteria"):
        FilterExplorer(reference_instances, reference_verdicts, include_criteria={"speed": "holds"})


def test_filter_counts_per_source_and_total():
    frame = pd.DataFrame({"instance_id": ["a/1", "a/2", "b/1"], "source": ["a", "a", "b"]})
    counts = analysis.filter_counts(frame, frame.iloc[[0]])
    assert counts.to_dict("records") == [
        {"source": "a", "n_instances": 2, "n_kept": 1, "share_kept": 0.5},
        {"source": "b", "n_instances": 1, "n_kept": 0, "share_kept": 0.0},
        {"source": "all", "n_instances": 3, "n_kept": 1, "share_kept": pytest.approx(1 / 3)},
    ]
    empty = analysis.filter_counts(frame.iloc[0:0], frame.iloc[0:0])
    assert empty["source"].tolist() == ["all"] and empty["n_kept"].tolist() == [0]


# --- annotator ---------------------------------------------------------------------------------------


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_annotator_save_appends_and_keeps_earlier_labels(tmp_path, reference_instances):
    annotator = Annotator(reference_instances[:4], "alice", tmp_path)
    assert annotator.path == tmp_path / "alice.csv"
    annotator.toggles["specificity"].value = 0
    annotator.toggles["coherence"].value = 1
    annotator.note.value = "vague <city>"
    annotator.save_button.click()
    rows = _rows(annotator.path)
    assert len(rows) == 1
    assert rows[0]["instance_id"] == reference_instances[0].id
    assert (rows[0]["specificity"], rows[0]["coherence"], rows[0]["minimality"]) == ("0", "1", "")
    assert rows[0]["note"] == "vague <city>"

    annotator.next_button.click()
    assert annotator.index == 1 and annotator.current_id == reference_instances[1].id
    assert all(t.value is None for t in annotator.toggles.values())  # not labelled yet
    for toggle in annotator.toggles.values():
        toggle.value = 1
    annotator.save_button.click()

    annotator.previous_button.click()  # earlier labels come back
    assert annotator.index == 0
    assert annotator.toggles["specificity"].value == 0 and annotator.toggles["coherence"].value == 1
    assert annotator.toggles["minimality"].value is None and annotator.note.value == "vague <city>"

    annotator.toggles["specificity"].value = 1  # a correction appends; the old row stays in the file
    annotator.save()
    rows = _rows(annotator.path)
    assert [r["specificity"] for r in rows if r["instance_id"] == reference_instances[0].id] == ["0", "1"]
    current = read_annotations(annotator.path)
    assert current.set_index("instance_id").loc[reference_instances[0].id, "specificity"] == 1.0

    fresh = Annotator(reference_instances[:4], "alice", tmp_path)  # a new session reads the file back
    assert fresh.toggles["specificity"].value == 1 and fresh.toggles["coherence"].value == 1


def test_annotator_refuses_to_save_nothing(tmp_path, reference_instances):
    annotator = Annotator(reference_instances[:2], "bob", tmp_path / "bob_labels.csv")
    assert annotator.save() is False
    assert not (tmp_path / "bob_labels.csv").exists()
    assert "not saved" in annotator.status.value


def test_annotator_navigation_is_clamped(tmp_path, reference_instances):
    annotator = Annotator(reference_instances[:3], "carol", tmp_path)
    annotator.previous()
    assert annotator.index == 0
    for _ in range(5):
        annotator.next()
    assert annotator.index == 2
    assert "instance 3 of 3" in annotator.position.value


def test_annotator_view_escapes_instance_text(tmp_path):
    nasty = Instance(id="x/y/1", source="x", instruction="<img src=x onerror=alert(1)>",
                     tools=[ToolSpec(name="t<b>", description="<i>d</i>",
                                     parameters={"type": "object", "properties": {"q<": {"type": "string"}},
                                                 "required": ["q<"]})],
                     calls=[Call(name="t<b>", arguments={"q<": "<script>"}, observation="<svg onload=1>")])
    annotator = Annotator([nasty], "dave", tmp_path)
    page = annotator.view.value
    for raw in ("<img src=x", "<script>", "<svg onload", "<i>d</i>", "t<b>"):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "required" in page


def test_jump_to_disagreement_with_verdicts(tmp_path, reference_instances):
    chosen = reference_instances[:5]
    ids = [inst.id for inst in chosen]
    verdicts = pd.DataFrame([{"instance_id": i, "criterion": c, "label": 1, "status": "ok"}
                             for i in ids for c in CRITERIA])
    annotator = Annotator(chosen, "erin", tmp_path, verdicts=verdicts)
    assert annotator.jump_to_next_disagreement() is None  # nothing saved yet: nothing to disagree with
    for index, label in ((1, 1), (3, 0), (4, 1)):
        annotator.go_to(index)
        annotator.toggles["minimality"].value = label
        annotator.save()
    annotator.go_to(0)
    annotator.jump_button.click()
    assert annotator.index == 3
    assert annotator.jump_to_next_disagreement() == 3  # wraps around to the only disagreement
    direct = analysis.label_disagreements(annotator.own_labels(), analysis.as_wide_labels(verdicts))
    assert direct[["instance_id", "criterion"]].values.tolist() == [[ids[3], "minimality"]]


def test_jump_to_disagreement_with_other_annotator_and_agreement_table(tmp_path, reference_instances):
    chosen = reference_instances[:4]
    first = Annotator(chosen, "ann", tmp_path)
    second = Annotator(chosen, "ben", tmp_path, other_annotator="ann")
    for index, (a, b) in enumerate(((1, 1), (1, 0), (0, 0), (1, 0))):
        first.go_to(index)
        first.toggles["specificity"].value = a
        first.save()
        second.go_to(index)
        second.toggles["specificity"].value = b
        second.save()
    second.go_to(0)
    assert second.jump_to_next_disagreement() == 1
    assert second.jump_to_next_disagreement() == 3
    assert second.jump_to_next_disagreement() == 1
    table = second.agreement_table()
    spec = table.loc[table.criterion == "specificity"].iloc[0]
    assert (spec.annotator_a, spec.annotator_b, spec.n, spec.n_agree) == ("ben", "ann", 4, 2)
    assert "Agreement between annotators" in second.agreement.value


def test_next_disagreement_wraps_and_handles_none():
    order = ["a", "b", "c", "d"]
    assert analysis.next_disagreement(order, 0, {"c"}) == 2
    assert analysis.next_disagreement(order, 2, {"a", "c"}) == 0
    assert analysis.next_disagreement(order, 1, {"b"}) == 1
    assert analysis.next_disagreement(order, 1, set()) is None


def test_label_disagreements_ignore_unlabelled():
    own = pd.DataFrame({"instance_id": ["a", "b"], **{c: [1.0, math.nan] for c in CRITERIA}})
    other = pd.DataFrame({"instance_id": ["a", "b"], **{c: [1.0, 0.0] for c in CRITERIA}})
    other.loc[0, "coherence"] = 0.0
    result = analysis.label_disagreements(own, other)
    assert result.to_dict("records") == [{"instance_id": "a", "criterion": "coherence", "own": 1.0, "other": 0.0}]


@pytest.mark.parametrize("fmt", ["canonical", "openai", "sharegpt"])
def test_explorer_export_writes_kept_instances_and_manifest(tmp_path, reference_instances, reference_verdicts, fmt):
    import json

    explorer = FilterExplorer(reference_instances, reference_verdicts, sources=["bfcl"])
    explorer.export_path.value = str(tmp_path / f"kept.{fmt}.jsonl")
    explorer.export_format.value = fmt
    explorer.export_button.click()
    lines = (tmp_path / f"kept.{fmt}.jsonl").read_text(encoding="utf-8").splitlines()
    manifest = json.loads((tmp_path / f"kept.{fmt}.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == fmt and manifest["recipe"] == "explorer filter"
    assert manifest["thresholds"]["sources"] == ["bfcl"]
    assert manifest["ids"] == [i for i in explorer.kept_ids if i in manifest["ids"]]
    assert len(lines) == manifest["n_written"] == len(explorer.kept_ids) - manifest["n_skipped"] > 0
    if fmt == "canonical":
        assert [json.loads(line)["id"] for line in lines] == explorer.kept_ids
    assert "wrote" in explorer.export_status.value


def test_explorer_export_needs_instances(reference_instances, reference_verdicts):
    from toolqual_utils.schema import instances_frame

    explorer = FilterExplorer(instances_frame(reference_instances), reference_verdicts)
    assert explorer.export_button.disabled
    assert explorer.export() is None


def test_widgets_display_as_widget_views_with_a_readable_text_fallback(tmp_path, reference_instances):
    explorer = FilterExplorer(reference_instances[:3], None)
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert bundle["text/plain"].startswith("FilterExplorer: an interactive widget")
    annotator = Annotator(reference_instances[:2], "zed", tmp_path)
    assert annotator._repr_mimebundle_()["text/plain"].startswith("Annotator: an interactive widget")


def test_explorer_confidence_slider_fires_the_same_masking_as_select(reference_instances, reference_verdicts):
    verdicts = reference_verdicts.copy()
    verdicts["confidence"] = 1.0
    verdicts["n_votes"] = 3
    weak = verdicts["criterion"].eq("coherence") & verdicts["label"].eq(1)
    verdicts.loc[weak, "confidence"] = 2 / 3  # e.g. 2 of 3 samples said "coherent"
    explorer = FilterExplorer(reference_instances, verdicts, include_criteria={"coherence": "holds"})
    assert explorer.has_confidence and not explorer.confidence_slider.disabled
    before = len(explorer.kept)
    explorer.confidence_slider.value = 0.8  # the callback rebuilds the frame through selection_frame
    direct = filter_instances(selection_frame(reference_instances, verdicts, min_confidence=0.8),
                              include_criteria={"coherence": "holds"})
    assert explorer.kept_ids == [str(i) for i in direct["instance_id"]] and len(explorer.kept) < before
    assert explorer.min_confidence == 0.8
    single = FilterExplorer(reference_instances, reference_verdicts)  # one answer per verdict: no slider
    assert not single.has_confidence and single.confidence_slider.disabled
