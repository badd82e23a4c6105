"""Self-consistency samples and judge panels: votes -> one verdict with confidence (pure)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from toolqual_utils.judge.votes import aggregate_frame, aggregate_votes, panel_name


def vote(label, *, judge="m1", sample=0, status="ok", criterion="coherence", instance="x/a/1"):
    return {"instance_id": instance, "criterion": criterion, "label": label, "status": status, "judge": judge,
            "prompt_id": "judge_combined.v2", "rationale": f"{judge}#{sample} says {label}",
            "evidence": [{"check": criterion, "sample": sample}], "sample_index": sample}


def test_majority_label_confidence_and_tally():
    row = aggregate_votes([vote(0, sample=0), vote(1, sample=1), vote(0, sample=2)])
    assert row["label"] == 0 and row["status"] == "ok" and row["n_votes"] == 3
    assert row["confidence"] == pytest.approx(2 / 3)
    assert row["rationale"].startswith("2 of 3 votes: m1#0 says 0")
    assert row["evidence"][0] == {"check": "coherence", "sample": 0}
    assert row["evidence"][-1]["votes"][1] == {"judge": "m1", "sample_index": 1, "label": 1, "status": "ok"}


def test_ties_and_disagreement_are_unscored_never_pass_or_fail():
    tie = aggregate_votes([vote(0, judge="a"), vote(1, judge="b")])
    assert tie["label"] is None and tie["status"] == "unscored:no_majority" and tie["confidence"] == 0.5
    assert tie["judge"] == "panel:a+b"
    split = aggregate_votes([vote(1), vote(1, sample=1), vote(0, sample=2)], rule="unanimous")
    assert split["label"] is None and split["status"] == "unscored:no_agreement"
    assert split["confidence"] == pytest.approx(2 / 3)
    agree = aggregate_votes([vote(1), vote(1, sample=1)], rule="unanimous")
    assert agree["label"] == 1 and agree["confidence"] == 1.0


def test_unscored_votes_do_not_vote():
    row = aggregate_votes([vote(None, status="unscored:parse_error"), vote(0, sample=1)])
    assert row["label"] == 0 and row["n_votes"] == 1 and row["confidence"] == 1.0
    assert row["evidence"][-1]["n_unscored"] == 1
    none = aggregate_votes([vote(None, status="unscored:refusal"), vote(None, sample=1, status="unscored:refusal")])
    assert none["label"] is None and none["status"] == "unscored:refusal" and none["n_votes"] == 0
    assert math.isnan(none["confidence"])


def test_inputs_are_checked_and_frames_keep_order():
    with pytest.raises(ValueError, match="at least one"):
        aggregate_votes([])
    with pytest.raises(ValueError, match="several"):
        aggregate_votes([vote(1), vote(1, criterion="minimality")])
    with pytest.raises(ValueError, match="unknown agreement rule"):
        aggregate_votes([vote(1)], rule="plurality")  # type: ignore[arg-type]
    frame = aggregate_frame(pd.DataFrame([vote(1, instance="b"), vote(0, instance="a"), vote(0, instance="b", sample=1)]))
    assert frame["instance_id"].tolist() == ["b", "a"] and frame["n_votes"].tolist() == [2, 1]
    assert panel_name(["m", "m"]) == "m" and aggregate_frame(pd.DataFrame()).empty
