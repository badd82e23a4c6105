"""Append-only annotation files, agreement and adjudication (toolqual_utils.annotations)."""
from __future__ import annotations

import math
import multiprocessing
import os
from pathlib import Path

import pandas as pd
import pytest

from toolqual_utils import annotations as ann
from toolqual_utils.errors import InputError
from toolqual_utils.schema import CRITERIA
from toolqual_utils.tables import validation_table
from conftest import ROOT

BUNDLED = ROOT / "data" / "annotations"


def labels(value: int = 1, **overrides: object) -> dict[str, object]:
    return {c: overrides.get(c, value) for c in CRITERIA}


def test_bundled_reference_matches_its_readme():
    frame = ann.read_annotations(BUNDLED / "reference_dev.csv")
    assert len(frame) == 105 and frame["annotator"].value_counts().to_dict() == {
        "annotator_a": 35, "annotator_b": 35, "adjudicated": 35}
    reference = ann.adjudicated_labels(frame)
    assert (reference["resolution"] == "adjudicated").all()
    errors = {c: int((reference[c] == 0).sum()) for c in CRITERIA}
    assert errors == {"specificity": 4, "coherence": 5, "solvability": 1, "parameter_alignment": 10,
                      "sufficiency": 1, "minimality": 1}
    instance_ids = pd.read_json(BUNDLED / "reference_dev_instances.jsonl", lines=True)["id"]
    assert set(instance_ids) == set(reference["instance_id"])


def test_agreement_on_the_reference_pair():
    frame = ann.read_annotations(BUNDLED / "reference_dev.csv")
    agreement = ann.annotator_agreement(frame).set_index("criterion")
    assert set(agreement["annotator_a"]) == {"annotator_a"}  # adjudicated rows are not a rater
    solvability = agreement.loc["solvability"]
    assert solvability["n"] == 35 and solvability["n_disagree"] == 1
    assert solvability["disagreeing_ids"] == ["toolbench/G3/15"]
    assert solvability["pabak"] == pytest.approx(2 * 34 / 35 - 1)
    # a marks 2 solvability errors, b marks 1 of them: p_e = (2*1 + 33*34)/35^2, kappa = 66/101
    assert (solvability["n_errors_a"], solvability["n_errors_b"]) == (2, 1)
    assert solvability["kappa"] == pytest.approx(66 / 101)
    assert agreement.loc["specificity", "kappa"] == 1.0
    with pytest.raises(ValueError, match="no annotations by"):
        ann.annotator_agreement(frame, "annotator_a", "annotator_z")


def test_append_creates_header_then_only_appends(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    path = ann.annotation_file(tmp_path, "Dana K.")
    assert path.name == "Dana_K.csv"
    ann.append_annotation(path, {"instance_id": "toolbench/G1/10", "annotator": "dana", **labels(1),
                                 "note": 'says "fine", really'})
    first_bytes = path.read_bytes()
    assert first_bytes.startswith(b"instance_id,annotator,specificity")
    assert synced, "appending must fsync before returning"
    ann.append_annotation(path, {"instance_id": "toolbench/G1/10", "annotator": "dana",
                                 **labels(1, minimality=0), "note": "second look:\nrepeated call"})
    assert path.read_bytes().startswith(first_bytes)  # never rewritten
    current = ann.read_annotations(path)
    assert len(current) == 1 and current.loc[0, "minimality"] == 0
    assert current.loc[0, "note"] == "second look:\nrepeated call"
    history = ann.read_annotations(path, current_only=False)
    assert list(history["minimality"]) == [1, 0] and history.loc[0, "note"] == 'says "fine", really'
    assert history["recorded_at"].str.match(r"\d{4}-\d\d-\d\dT").all()


def test_append_repairs_missing_final_newline_and_keeps_existing_header(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text(",".join((*ann.ANNOTATION_COLUMNS,)) + "\nx,ann,1,1,1,1,1,0,old", encoding="utf-8")
    ann.append_annotations(path, [{"instance_id": "y", "annotator": "ann", **labels(1, coherence="")}])
    frame = ann.read_annotations(path)
    assert list(frame["instance_id"]) == ["x", "y"]
    assert math.isnan(frame.set_index("instance_id").loc["y", "coherence"])
    assert "recorded_at" not in path.read_text().splitlines()[0]  # header of the existing file kept


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"instance_id": "x", "annotator": "a", **labels(1, coherence=2)}, "coherence", "not allowed"),
        ({"instance_id": " ", "annotator": "a", **labels(1)}, "instance_id", "non-empty"),
        ({"instance_id": "x", "annotator": "a", **labels(1), "score": 3}, "score", "unknown column"),
        ({"instance_id": "x", "annotator": "a", **{c: "" for c in CRITERIA}}, "specificity", "labels no criterion"),
    ],
)
def test_bad_rows_are_refused_before_writing(tmp_path, row, field, message):
    path = tmp_path / "a.csv"
    with pytest.raises(InputError, match=message) as caught:
        ann.append_annotations(path, [{"instance_id": "ok", "annotator": "a", **labels(1)}, row])
    assert caught.value.field == field and caught.value.file == str(path)
    assert not path.exists()  # nothing appended when one row is bad


def test_bad_row_in_file_names_file_row_and_field(tmp_path):
    path = tmp_path / "b.csv"
    header = ",".join(ann.ANNOTATION_COLUMNS)
    path.write_text(f"{header}\nx,b,1,1,1,1,1,1,\ny,b,1,yes,1,1,1,1,\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        ann.read_annotations(path)
    text = str(caught.value)
    assert str(path) in text and "row 2" in text and "'coherence'" in text
    (tmp_path / "c.csv").write_text("instance_id,label\nx,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="header lacks"):
        ann.read_annotations(tmp_path / "c.csv")


def test_adjudicated_labels_fallbacks_and_validation_use(tmp_path):
    rows = [
        {"instance_id": "u", "annotator": "a", **labels(1, sufficiency=0)},
        {"instance_id": "u", "annotator": "b", **labels(1, sufficiency=0)},
        {"instance_id": "d", "annotator": "a", **labels(1, minimality=0)},
        {"instance_id": "d", "annotator": "b", **labels(1)},
        {"instance_id": "j", "annotator": "a", **labels(1, coherence=0)},
        {"instance_id": "j", "annotator": "b", **labels(1)},
        {"instance_id": "j", "annotator": "adjudicated", **labels(1, coherence=0, specificity="")},
    ]
    ann.append_annotations(tmp_path / "team.csv", rows)
    frame = ann.read_annotations(tmp_path)  # a directory reads every CSV in it
    reference = ann.adjudicated_labels(frame).set_index("instance_id")
    assert reference.loc["u", "resolution"] == "unanimous" and reference.loc["u", "sufficiency"] == 0
    assert reference.loc["d", "resolution"] == "unresolved" and math.isnan(reference.loc["d", "minimality"])
    assert reference.loc["j", "coherence"] == 0 and reference.loc["j", "specificity"] == 1  # falls back to a & b
    assert reference.loc["u", "overall_ok"] == 0 and math.isnan(reference.loc["d", "sequence_ok"])
    judge = frame.loc[frame["annotator"] == "a", ["instance_id", *CRITERIA]]
    table = validation_table(judge, reference.reset_index(), annotator=None).set_index("criterion")
    assert table.loc["minimality", "n_annotated"] == 2  # the unresolved instance is left out


def _create_and_append(barrier, directory: str, who: str, n_files: int) -> None:
    for i in range(n_files):
        barrier.wait()  # both writers reach each new file at the same moment
        ann.append_annotation(Path(directory) / f"dana_{i}.csv",
                              {"instance_id": f"{who}/{i}", "annotator": "dana", "specificity": 1,
                               "note": f"kernel {who}"})


def test_two_processes_creating_one_file_write_one_header(tmp_path):
    """One annotator, two notebook kernels, files that do not exist yet: both rows readable, one header."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    n_files = 300
    writers = [context.Process(target=_create_and_append, args=(barrier, str(tmp_path), who, n_files))
               for who in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [w.exitcode for w in writers] == [0, 0]
    for i in range(n_files):
        path = tmp_path / f"dana_{i}.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [line.startswith("instance_id,") for line in lines] == [True, False, False], path
        frame = ann.read_annotations(path, current_only=False)
        assert sorted(frame["instance_id"]) == [f"a/{i}", f"b/{i}"]


def test_a_torn_last_row_is_skipped_and_moved_aside_before_the_next_append(tmp_path):
    path = tmp_path / "dana.csv"
    ann.append_annotation(path, {"instance_id": "x/1", "annotator": "dana", **labels(1), "note": "kept"})
    with path.open("a", encoding="utf-8") as handle:  # a writer killed inside its quoted note
        handle.write('x/2,dana,1,1,0,1,1,1,"the city is not in the instr')
    with pytest.warns(UserWarning, match="torn last row"):
        frame = ann.read_annotations(path)
    assert list(frame["instance_id"]) == ["x/1"] and frame.attrs["torn_rows"][0]["file"] == str(path)

    ann.append_annotation(path, {"instance_id": "x/3", "annotator": "dana", **labels(0), "note": 'a "quoted" note'})
    ann.append_annotation(path, {"instance_id": "x/4", "annotator": "dana", **labels(1)})
    frame = ann.read_annotations(path)
    assert list(frame["instance_id"]) == ["x/1", "x/3", "x/4"] and frame.attrs["torn_rows"] == []
    assert frame.set_index("instance_id").loc["x/3", "note"] == 'a "quoted" note'
    assert "the city is not in the instr" in ann.torn_path(path).read_text(encoding="utf-8")  # nothing is lost


def test_notes_a_spreadsheet_would_run_are_escaped_and_read_back(tmp_path):
    path = tmp_path / "dana.csv"
    ann.append_annotation(path, {"instance_id": "=id", "annotator": "dana", **labels(1), "note": "-missing city"})
    assert "'=id,dana" in path.read_text(encoding="utf-8") and ",'-missing city," in path.read_text(encoding="utf-8")
    row = ann.read_annotations(path).iloc[0]
    assert (row["instance_id"], row["note"]) == ("=id", "-missing city")
