"""Subset recipes and the shared filter (toolqual_utils.selection)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.schema import CRITERIA
from toolqual_utils.selection import (
    RECIPES,
    filter_instances,
    random_control,
    select,
    select_recipes,
    selection_frame,
    selections_summary,
)

N = 40


def make_pool() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """40 instances: i % 4 == 0 -> a specificity error; i % 5 == 0 -> a minimality error;
    i % 7 == 0 -> coherence unscored; ICE score = i / 40."""
    ids = [f"{'toolbench' if i % 2 else 'toolalpaca'}/s/{i}" for i in range(N)]
    instances = pd.DataFrame({"instance_id": ids, "source": [i.split("/")[0] for i in ids]})
    rows = []
    for i, instance_id in enumerate(ids):
        for criterion in CRITERIA:
            label: float | None = 1
            status = "ok"
            if criterion == "specificity" and i % 4 == 0:
                label = 0
            if criterion == "minimality" and i % 5 == 0:
                label = 0
            if criterion == "coherence" and i % 7 == 0:
                label, status = None, "unscored:needs-model"
            rows.append({"instance_id": instance_id, "criterion": criterion, "label": label, "status": status})
    ice = {instance_id: i / N for i, instance_id in enumerate(ids)}
    return instances, pd.DataFrame(rows), ice


def idx(instance_id: str) -> int:
    return int(instance_id.rsplit("/", 1)[1])


def test_selection_frame_joins_labels_and_ice():
    instances, verdicts, ice = make_pool()
    frame = selection_frame(instances, verdicts, ice)
    assert len(frame) == N and list(frame["instance_id"]) == list(instances["instance_id"])
    row = frame.set_index("instance_id").loc["toolalpaca/s/0"]
    assert row["specificity"] == 0 and np.isnan(row["coherence"]) and row["instruction_ok"] == 0
    assert frame.set_index("instance_id").loc["toolbench/s/7", "instruction_ok"] != 1  # unscored coherence


def test_filter_instances_conditions():
    instances, verdicts, ice = make_pool()
    frame = selection_frame(instances, verdicts, ice)
    holds = filter_instances(frame, {"specificity": 1, "coherence": "holds"})
    assert all(idx(i) % 4 and idx(i) % 7 for i in holds["instance_id"])
    lenient = filter_instances(frame, {"specificity": 1, "coherence": 1}, unscored_as_pass=True)
    assert len(lenient) == 30  # 40 minus the 10 specificity errors
    assert set(map(idx, filter_instances(frame, {"coherence": "unscored"})["instance_id"])) == {0, 7, 14, 21, 28, 35}
    errors = filter_instances(frame, {"minimality": "error"}, ice_min=0.5, sources=["toolalpaca"])
    assert sorted(map(idx, errors["instance_id"])) == [20, 30]
    assert len(filter_instances(frame, {"overall_ok": "any"}, ice_max=0.1)) == 5
    with pytest.raises(InputError, match="unknown criterion"):
        filter_instances(frame, {"fluency": 1})


def test_criteria_recipes_exclude_unscored_by_default_and_sample_with_seed():
    instances, verdicts, ice = make_pool()
    everything = select(instances, verdicts, recipe="high_instruction_seq")
    qualifying = {i for i in range(N) if i % 4 and i % 5 and i % 7}
    assert set(map(idx, everything.ids)) == qualifying and everything.n_candidates == len(qualifying)
    assert any("excluded" in note for note in everything.notes)
    passing = select(instances, verdicts, recipe="high_instruction_seq", unscored="pass")
    assert set(map(idx, passing.ids)) == {i for i in range(N) if i % 4 and i % 5}
    first = select(instances, verdicts, recipe="high_instruction", size=10, seed=3)
    again = select(instances, verdicts, recipe="high_instruction", size=10, seed=3)
    other = select(instances, verdicts, recipe="high_instruction", size=10, seed=4)
    assert first.ids == again.ids and first.ids != other.ids and len(first.ids) == 10
    assert all(idx(i) % 4 and idx(i) % 7 for i in first.ids)
    positions = [list(instances["instance_id"]).index(i) for i in first.ids]
    assert positions == sorted(positions)  # frame order, not draw order


def test_shortfall_is_reported_not_padded():
    instances, verdicts, ice = make_pool()
    selection = select(instances, verdicts, ice, recipe="high_instruction_seq_ice", size=30)
    assert selection.n_selected == selection.n_candidates < 30
    assert selection.shortfall == 30 - selection.n_selected
    assert any("NOT padded" in note for note in selection.notes)
    control = random_control(selection, instances, seed=9)
    assert control.n_selected == selection.n_selected and control.recipe == "random"
    assert "size-matched" in control.notes[-1]


def test_ice_recipes_rank_and_break_ties_deterministically():
    instances, verdicts, ice = make_pool()
    high = select(instances, ice_scores=ice, recipe="high_ice", size=5)
    low = select(instances, ice_scores=ice, recipe="low_ice", size=5)
    assert set(map(idx, high.ids)) == {35, 36, 37, 38, 39}
    assert set(map(idx, low.ids)) == {0, 1, 2, 3, 4}
    assert high.thresholds["ice_min"] == pytest.approx(35 / N)
    tied = {i: 0.5 for i in instances["instance_id"]}
    picks = {select(instances, ice_scores=tied, recipe="high_ice", size=5, seed=s).ids for s in (0, 0, 1)}
    assert len(picks) == 2  # same seed same ids; another seed, another tie-break
    combined = select(instances, verdicts, ice, recipe="high_instruction_seq_ice", size=3)
    assert set(map(idx, combined.ids)) == {39, 38, 37}  # 39, 38, 37 all hold
    partial = dict(list(ice.items())[:20])
    some = select(instances, verdicts, partial, recipe="high_ice", size=100)
    assert some.n_candidates == 20 and some.n_selected == 20
    assert any(n.startswith("20 qualifying instance(s) without an ICE score") for n in some.notes)


def test_missing_inputs_give_clear_errors():
    instances, verdicts, ice = make_pool()
    with pytest.raises(InputError, match="needs criterion verdicts") as caught:
        select(instances, recipe="high_instruction", size=3)
    assert caught.value.field == "verdicts"
    with pytest.raises(InputError, match="needs ICE scores"):
        select(instances, verdicts, recipe="high_instruction_seq_ice", size=3)
    with pytest.raises(InputError, match="needs a size"):
        select(instances, recipe="random")
    with pytest.raises(InputError, match="unknown recipe"):
        select(instances, recipe="best")  # type: ignore[arg-type]
    duplicated = pd.DataFrame({"instance_id": ["a", "a"], "ice_score": [0.1, 0.2], "target_model": ["m1", "m2"]})
    with pytest.raises(InputError, match="several rows per instance"):
        select(instances, ice_scores=duplicated, recipe="high_ice", size=1)


def test_original_and_select_recipes_summary():
    instances, verdicts, ice = make_pool()
    original = select(instances, recipe="original", size=10)
    assert original.n_selected == N and original.shortfall == 0 and "ignored" in original.notes[0]
    results = select_recipes(instances, verdicts, None, size=8, seed=1)
    assert set(results) == set(RECIPES) - {"low_ice", "high_ice", "high_instruction_seq_ice"}
    summary = selections_summary(results)
    assert list(summary["recipe"]) == [r for r in RECIPES if r in results]
    assert summary.set_index("recipe").loc["random", "n_selected"] == 8
    manifest = results["random"].to_manifest()
    assert manifest["recipe_label"] == "random sample" and len(manifest["ids"]) == 8


def test_selection_is_pure():
    code = (
        "import sys, toolqual_utils.selection; "
        "print(','.join(m for m in ('openai', 'plotly', 'seaborn', 'ipywidgets', 'papermill') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- the `toolqual select` command ------------------------------------------------------------------


def _reference_files(tmp_path):
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = root / "data" / "annotations" / "reference_dev_instances.jsonl"
    labels = pd.read_csv(root / "data" / "annotations" / "reference_dev.csv")
    adjudicated = labels.loc[labels["annotator"] == "adjudicated"]
    verdicts = adjudicated.melt(id_vars=["instance_id"], value_vars=list(CRITERIA), var_name="criterion",
                                value_name="label")
    verdicts["status"] = "ok"
    verdicts_path = tmp_path / "verdicts.csv"
    verdicts.to_csv(verdicts_path, index=False)
    ids = [json.loads(line)["id"] for line in data.read_text(encoding="utf-8").splitlines()]
    ice = pd.DataFrame({"instance_id": ids, "target_model": "m", "ice_score": np.linspace(0, 1, len(ids))})
    ice_path = tmp_path / "ice.jsonl"
    ice.to_json(ice_path, orient="records", lines=True)
    return data, verdicts_path, ice_path, adjudicated


def test_select_command_exports_with_manifest(tmp_path, capsys):
    import json

    from toolqual_utils.cli import main
    from toolqual_utils.io import read_instances

    data, verdicts_path, ice_path, adjudicated = _reference_files(tmp_path)
    out = tmp_path / "subset.jsonl"
    status = main(["select", str(data), "--verdicts", str(verdicts_path), "--ice", str(ice_path),
                   "--recipe", "high_instruction_seq_ice", "--size", "5", "--seed", "3", "--out", str(out)])
    assert status == 0
    manifest = json.loads((tmp_path / "subset.jsonl.manifest.json").read_text(encoding="utf-8"))
    clean = set(adjudicated.loc[(adjudicated[list(CRITERIA)] == 1).all(axis=1), "instance_id"])
    assert manifest["n_candidates"] == len(clean) and manifest["n_written"] == 5
    assert set(manifest["ids"]) <= clean and manifest["thresholds"]["ice_order"] == "highest first"
    assert [i.id for i in read_instances(out)] == manifest["ids"]
    assert {f["path"] for f in manifest["source_files"]} == {str(data), str(verdicts_path), str(ice_path)}
    assert "selected 5 of 35" in capsys.readouterr().out
    status = main(["select", str(data), "--verdicts", str(verdicts_path), "--recipe", "high_instruction",
                   "--size", "40", "--out", str(tmp_path / "o.jsonl"), "--format", "openai"])
    assert status == 0 and "NOT padded" in capsys.readouterr().out


def test_select_command_errors_are_one_paragraph(tmp_path, capsys):
    from toolqual_utils.cli import main

    data, verdicts_path, ice_path, _ = _reference_files(tmp_path)
    out = tmp_path / "x.jsonl"
    assert main(["select", str(data), "--recipe", "high_instruction", "--size", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--verdicts" in err and "Traceback" not in err and not out.exists()
    assert main(["select", str(data), "--verdicts", str(verdicts_path), "--recipe", "high_ice", "--size", "3",
                 "--out", str(out)]) == 2
    assert "--ice" in capsys.readouterr().err
    doubled = tmp_path / "doubled.csv"
    pd.concat([pd.read_csv(verdicts_path)] * 2).to_csv(doubled, index=False)
    assert main(["select", str(data), "--verdicts", str(doubled), "--recipe", "high_instruction", "--size", "3",
                 "--out", str(out)]) == 2
    assert "repeat an (instance_id, criterion) pair" in capsys.readouterr().err
    two_models = pd.concat([pd.read_json(ice_path, lines=True).assign(target_model=m) for m in ("a", "b")])
    two_models.to_json(tmp_path / "ice2.jsonl", orient="records", lines=True)
    assert main(["select", str(data), "--ice", str(tmp_path / "ice2.jsonl"), "--recipe", "high_ice", "--size", "3",
                 "--out", str(out)]) == 2
    assert "--target-model" in capsys.readouterr().err
    assert main(["select", str(data), "--ice", str(tmp_path / "ice2.jsonl"), "--target-model", "b",
                 "--recipe", "high_ice", "--size", "3", "--out", str(out)]) == 0


def test_unscored_as_pass_never_passes_a_missing_call_sequence():
    from toolqual_utils.schema import parse_instance
    from toolqual_utils.selection import filter_instances, selection_frame

    with_calls = parse_instance({"id": "s/a/1", "source": "s", "instruction": "Weather in Oslo?",
                                 "tools": [{"name": "w"}], "calls": [{"name": "w", "arguments": {}}]})
    no_calls = parse_instance({"id": "s/a/2", "source": "s", "instruction": "Weather in Rome?",
                               "tools": [{"name": "w"}], "calls": None})
    verdicts = pd.DataFrame(
        [{"instance_id": i, "criterion": c, "label": None,
          "status": "unscored:not_applicable" if i == "s/a/2" else "unscored:needs-model",
          "judge": "rules", "prompt_id": "rules.v1", "rationale": "", "evidence": []}
         for i in ("s/a/1", "s/a/2") for c in ("parameter_alignment", "sufficiency", "minimality")]
    )
    frame = selection_frame([with_calls, no_calls], verdicts)
    kept = filter_instances(frame, {"sequence_ok": 1}, unscored_as_pass=True)
    assert kept["instance_id"].tolist() == ["s/a/1"]
    kept_instruction = filter_instances(frame, {"specificity": 1}, unscored_as_pass=True)
    assert kept_instruction["instance_id"].tolist() == ["s/a/1", "s/a/2"]


def test_select_command_that_keeps_nothing_says_why_and_writes_nothing(tmp_path, capsys):
    from toolqual_utils.checks import run_checks
    from toolqual_utils.cli import main
    from toolqual_utils.io import read_instances, write_table

    data, _, _, _ = _reference_files(tmp_path)
    rules = tmp_path / "rules.csv"  # offline verdicts only: solvability/sufficiency stay unscored for most
    write_table(run_checks(read_instances(data)), rules)
    out = tmp_path / "clean.jsonl"
    status = main(["select", str(data), "--verdicts", str(rules), "--recipe", "high_instruction_seq", "--size", "5",
                   "--out", str(out)])
    err = " ".join(capsys.readouterr().err.split())
    assert status == 1 and not out.exists() and not (tmp_path / "clean.jsonl.manifest.json").exists()
    assert "kept 0 of 35 instances" in err and "have an unscored one (excluded)" in err
    assert "--unscored pass" in err and "toolqual judge" in err
    assert main(["select", str(data), "--verdicts", str(rules), "--recipe", "high_instruction_seq", "--size", "5",
                 "--out", str(out), "--unscored", "pass"]) == 0 and out.exists()


def test_min_confidence_makes_weakly_backed_verdicts_unscored():
    from toolqual_utils.schema import parse_instance
    from toolqual_utils.selection import mask_low_confidence, select, selection_frame

    instances = [parse_instance({"id": f"s/a/{k}", "source": "s", "instruction": f"Weather {k}?",
                                 "tools": [{"name": "w"}], "calls": [{"name": "w", "arguments": {}}]})
                 for k in range(3)]
    rows = []
    for k, (label, share) in enumerate([(1, 1.0), (1, 0.6), (0, 0.6)]):
        for criterion in CRITERIA:
            rows.append({"instance_id": f"s/a/{k}", "criterion": criterion, "label": label if criterion == "coherence" else 1,
                         "status": "ok", "judge": "panel:a+b+c", "prompt_id": "judge_combined.v2", "rationale": "",
                         "evidence": [], "confidence": share if criterion == "coherence" else 1.0,
                         "n_votes": 5})
    verdicts = pd.DataFrame(rows)
    masked = mask_low_confidence(verdicts, 0.8).set_index(["instance_id", "criterion"])
    assert masked.loc[("s/a/1", "coherence"), "status"] == "unscored:low_confidence"
    assert pd.isna(masked.loc[("s/a/1", "coherence"), "label"]) and masked.loc[("s/a/0", "coherence"), "label"] == 1
    frame = selection_frame(instances, verdicts, min_confidence=0.8)
    assert frame.set_index("instance_id")["coherence"].isna().tolist() == [False, True, True]
    kept = select(instances, verdicts, recipe="high_instruction_seq", min_confidence=0.8)
    assert kept.ids == ("s/a/0",) and kept.thresholds["min_confidence"] == 0.8
    loose = select(instances, verdicts, recipe="high_instruction_seq")  # the 0.6 "error" still counts
    assert loose.ids == ("s/a/0", "s/a/1")
    with pytest.raises(InputError, match="between 0 and 1"):
        mask_low_confidence(verdicts, 1.5)
    assert mask_low_confidence(verdicts.drop(columns=["confidence"]), 0.9) is not None  # old tables: unchanged
