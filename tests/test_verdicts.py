"""The one verdict module: statuses, what "scored" means, reading, checking, merging, evidence."""
from __future__ import annotations

import datetime
import decimal
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.io import write_table
from toolqual_utils.verdicts import (
    VERDICT_COLUMNS, Decision, Status, VerdictRow, VerdictTableError, decode_evidence, empty_verdicts, is_missing,
    is_scored, merge_verdicts, read_verdicts, scored_mask, validate_verdicts, verdict_frame,
)


def _row(instance_id="a/x/1", criterion="coherence", label=0, status=Status.OK, judge="rules", **extra):
    return VerdictRow(instance_id, criterion, label, status, judge, f"{judge}.v1", "why", [{"check": "c"}], **extra)


def test_statuses_are_one_vocabulary():
    assert Status.OK == "ok" and Status.unscored("api_error") == Status.UNSCORED_API_ERROR
    unscored = [v for k, v in vars(Status).items() if k.startswith("UNSCORED_")]
    assert all(Status.is_unscored(v) and ":" in v and "-" not in v for v in unscored)  # snake_case reasons
    assert not Status.is_unscored(Status.OK) and not Status.is_unscored(Status.PARSE_ERROR)
    assert Status.reason(Status.UNSCORED_NOT_CACHED) == "not_cached"
    assert Status.normalise("unscored:needs-model") == Status.UNSCORED_NEEDS_MODEL  # written by earlier versions


@pytest.mark.parametrize("status, label, scored", [
    (Status.OK, 0, True), (Status.OK, 1, True), (Status.OK, None, False), (Status.OK, math.nan, False),
    (Status.UNSCORED_PARSE_ERROR, 1, False),  # a label left on an unscored row never counts
    (None, 1, True), ("", 0, True), (math.nan, 1, True),  # no status: a plain label
    (Status.OK, 2, False), (Status.OK, pd.NA, False),
])
def test_one_definition_of_scored(status, label, scored):
    assert is_scored(status, label) is scored
    if isinstance(label, int) and label not in (0, 1):
        with pytest.raises(ValueError, match="labels must be 1"):
            scored_mask(pd.DataFrame({"label": [label], "status": [status]}))
        return
    cell = None if label is None or label is pd.NA else label
    frame = pd.DataFrame({"label": [cell], "status": [status]}, dtype=object)
    assert bool(scored_mask(frame).iloc[0]) is scored  # the table rule is the row rule
    assert bool(scored_mask(frame.drop(columns="status")).iloc[0]) is (cell in (0, 1))


def test_rows_and_frames():
    row = _row()
    assert row.scored and row.as_record()["evidence"] == [{"check": "c"}]
    assert row.with_evidence([{"check": "d"}], first=True).evidence == [{"check": "d"}, {"check": "c"}]
    frame = verdict_frame([row, {**_row("a/x/2", label=None, status=Status.UNSCORED_NEEDS_MODEL).as_record()}])
    assert tuple(frame.columns) == VERDICT_COLUMNS and str(frame["label"].dtype) == "Int64"
    assert frame["label"].isna().tolist() == [False, True]
    assert tuple(empty_verdicts().columns) == VERDICT_COLUMNS and empty_verdicts().empty


def test_merge_keeps_the_first_scored_row_and_empty_input_has_the_columns():
    rules = verdict_frame([_row(label=None, status=Status.UNSCORED_NEEDS_MODEL), _row(criterion="minimality")])
    model = verdict_frame([_row(judge="m", label=1), _row(criterion="minimality", judge="m", label=1)])
    merged = merge_verdicts(rules, model).set_index("criterion")
    assert merged.loc["coherence", "judge"] == "m" and merged.loc["minimality", "judge"] == "rules"
    assert tuple(merge_verdicts().columns) == VERDICT_COLUMNS  # was 4 columns
    assert tuple(merge_verdicts(None, empty_verdicts()).columns) == VERDICT_COLUMNS


def test_validation_names_the_problem():
    doubled = verdict_frame([_row(), _row(judge="m")])
    with pytest.raises(VerdictTableError, match=r"repeat an \(instance_id, criterion\) pair.*judges: m, rules"):
        validate_verdicts(doubled)
    assert issubclass(VerdictTableError, InputError) and issubclass(VerdictTableError, ValueError)
    with pytest.raises(VerdictTableError, match="lack column"):
        validate_verdicts(pd.DataFrame({"instance_id": ["a"], "label": [1]}))
    with pytest.raises(VerdictTableError, match="labels must be 1"):
        validate_verdicts(pd.DataFrame({"instance_id": ["a"], "criterion": ["coherence"], "label": [3]}))


@pytest.mark.parametrize("value, decoded", [
    ([{"a": 1}], [{"a": 1}]), ('[{"a": 1}]', [{"a": 1}]), ("not json", [{"text": "not json"}]),
    (None, []), (math.nan, []), ("", []), ({"a": 1}, [{"a": 1}]), (np.array([{"a": 1}], dtype=object), [{"a": 1}]),
])
def test_evidence_is_decoded_once(value, decoded):
    assert decode_evidence(value) == decoded


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_read_verdicts_round_trip_legacy_spelling_and_minimal_tables(tmp_path, suffix):
    frame = verdict_frame([_row(), _row(criterion="minimality", label=None, status="unscored:needs-model")])
    back = read_verdicts(write_table(frame, tmp_path / f"v{suffix}"))
    assert tuple(back.columns) == VERDICT_COLUMNS and back["evidence"].iloc[0] == [{"check": "c"}]
    assert back["status"].tolist() == [Status.OK, Status.UNSCORED_NEEDS_MODEL]
    minimal = pd.DataFrame({"instance_id": ["a/x/1"], "criterion": ["coherence"], "label": [0]})
    back = read_verdicts(write_table(minimal, tmp_path / f"m{suffix}"))
    assert back["status"].iloc[0] == "" and scored_mask(back).all()


def test_bad_verdict_file_is_one_paragraph_from_the_cli(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a/x/1", "source": "a", "instruction": "Hi there, weather?", "tools": [], "calls": []}\n')
    rules = tmp_path / "r.csv"
    pd.DataFrame({"instance_id": ["a/x/1"] * 2, "criterion": ["coherence"] * 2, "label": [0, 1]}).to_csv(rules)
    done = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "judge", str(data), "--model", "m",
                           "--rules", str(rules), "--plan", "--cache", "none"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"file {rules}" in " ".join(done.stderr.split()) and "repeat an (instance_id, criterion) pair" in \
        " ".join(done.stderr.split())


def test_the_verdict_module_does_not_load_pandas_for_the_statuses():
    code = "import sys, toolqual_utils.verdicts, toolqual_utils.llm; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("value", [
    None, math.nan, float("inf"), 0.0, 0, 1, True, False, "", "nan", "NA", b"", [], [math.nan], (), {}, set(),
    np.nan, np.float64("nan"), np.float32("nan"), np.float16("nan"), np.float32(2.5), np.int64(3), np.bool_(False),
    pd.NA, pd.NaT, np.datetime64("NaT"), np.timedelta64("NaT"), np.datetime64("2024-01-01"),
    pd.Timestamp("2024-01-01"), decimal.Decimal("NaN"), decimal.Decimal("1.5"), datetime.date(2024, 1, 1),
    np.array([1.0, math.nan]), object(),
])
def test_one_test_of_a_missing_value_agrees_with_pandas(value):
    """``is_missing`` (pure, no pandas) says what pandas' ``isna`` says of a scalar, never raises, and calls
    text and containers present (formatting shows missing values by the same test)."""
    from toolqual_utils import formatting

    assert formatting.is_missing is is_missing
    expected = False if isinstance(value, (str, bytes, list, tuple, dict, set, np.ndarray)) else bool(pd.isna(value))
    assert is_missing(value) is expected


def test_single_answer_vote_defaults_are_one_rule():
    """A verdict from one answer: scored, confidence 1.0 from 1 vote; unscored, NaN and 0. Decisions, rows
    and tables say the same; votes a row sets are kept."""
    for label, status in [(1, Status.OK), (0, Status.OK), (None, Status.UNSCORED_NEEDS_MODEL),
                          (1, Status.UNSCORED_PARSE_ERROR)]:
        decision = Decision(label, status, "why", [])
        row = decision.row("a/x/1", "coherence", "rules", "rules.v1")
        values = decision.values("a/x/1", "coherence", "rules", "rules.v1")
        scored = row.scored
        # (NaN is compared by isnan below: the compiled modules give an equal NaN, not the same object)
        assert row.n_votes == (1 if scored else 0) and (not scored or row.confidence == 1.0)
        assert math.isnan(row.confidence) is (not scored)
        assert values[:-2] == row.values()[:-2] and values[-1] == row.values()[-1] == row.n_votes
        frame = verdict_frame([{**row.as_record(), "confidence": None, "n_votes": None}])
        assert frame["n_votes"].iloc[0] == row.n_votes
        assert (math.isnan(frame["confidence"].iloc[0]) if not scored else frame["confidence"].iloc[0] == 1.0)
    voted = _row(vote_share=2 / 3, vote_count=3)
    assert voted.values()[-2:] == (2 / 3, 3) and (voted.confidence, voted.n_votes) == (2 / 3, 3)
