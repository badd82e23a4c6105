"""Numbers, cells and evidence written for people (toolqual_utils.formatting)."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from toolqual_utils import formatting as fmt

SCIENTIFIC = re.compile(r"\d[eE][-+]?\d")


@pytest.mark.parametrize("value, expected", [
    (0.314, "31%"), (0.042, "4.2%"), (0.953, "95.3%"), (0.0003, "<0.1%"), (0.0, "0%"), (1.0, "100%"),
    (0.9996, ">99.9%"), (0.5, "50%"), (0.1, "10%"), (float("nan"), "–"), (None, "–"), (pd.NA, "–"),
    (1.735e-18, "0%"), (-0.08, "−8.0%"),
])
def test_percent_has_sensible_digits(value, expected):
    assert fmt.percent(value) == expected


@pytest.mark.parametrize("args, expected", [
    ((0.12, 0.08, 0.17), "12% (8–17)"),
    ((0.013, 0.008, 0.021), "1.3% (0.8–2.1)"),
    ((0.0, 0.0, 0.018), "0% (0–1.8)"),
    ((1.0, 0.91, 1.0), "100% (91.0–100)"),
    ((0.5, float("nan"), float("nan")), "50%"),
    ((float("nan"), 0.1, 0.2), "–"),
])
def test_interval_reads_like_12_percent_8_to_17(args, expected):
    assert fmt.interval(*args) == expected


def test_interval_plain_numbers_and_n():
    assert fmt.interval(0.74, 0.6, 0.853, as_percent=False) == "0.74 (0.60–0.85)"
    assert fmt.interval(0.31, 0.29, 0.34, n=1248) == "31% (29–34) n=1,248"


@pytest.mark.parametrize("value, expected", [
    (9264723, "9,264,723"), (1680.0, "1,680"), (1.378, "1.38"), (0.003077, "0.0031"), (1.735e-18, "0"),
    (-0.2134, "−0.21"), (123.4, "123"), (float("inf"), "∞"), (True, "yes"), (np.int64(42), "42"),
    (np.float64(0.25), "0.25"), (float("nan"), "–"),
])
def test_number_never_uses_scientific_notation(value, expected):
    text = fmt.number(value)
    assert text == expected
    assert not SCIENTIFIC.search(text)


def test_number_with_fixed_digits_keeps_zero_decimals():
    assert fmt.number(0.0, digits=2) == "0.00"
    assert fmt.number(0.001, digits=2) == "<0.01"


@pytest.mark.parametrize("value", [1e-300, 2.5e-7, 3.3e12, 6.02e23, -4.4e-9])
def test_extreme_values_are_readable(value):
    for text in (fmt.number(value), fmt.percent(value), fmt.cell_text(value)):
        assert not SCIENTIFIC.search(text), text
        assert text.lower() != "nan"


def test_small_helpers():
    assert fmt.count(1680.0) == "1,680" and fmt.count(None) == "–"
    assert fmt.pvalue(0.2575) == "0.26" and fmt.pvalue(0.004) == "0.004" and fmt.pvalue(1e-9) == "<0.001"
    assert fmt.points(0.06) == "+6.0 pts" and fmt.points(-0.08) == "−8.0 pts" and fmt.points(0.0) == "0.0 pts"
    assert fmt.usd(7.728) == "$7.73" and fmt.usd(0.001) == "<$0.01" and fmt.usd(12345) == "$12,345"
    assert fmt.share(612, 1680) == "612 of 1,680 (36%)"
    assert fmt.percent_range(0.056, 0.93) == "5.6–93.0%" and fmt.percent_range(0.12, 0.58) == "12–58%" and fmt.percent_range(0.2, 0.2) == "20%"


def test_labels_are_words_and_unscored_is_visible():
    assert [fmt.label_word(v) for v in (1, 0, None, float("nan"), pd.NA, 1.0)] == [
        "holds", "error", "unscored", "unscored", "unscored", "holds"]


def test_cell_text_missing_and_empty_are_a_dash_never_nan_or_blank():
    for value in (None, float("nan"), pd.NA, pd.NaT, "", "   "):
        assert fmt.cell_text(value) == fmt.MISSING
    assert fmt.cell_text({"k": "<i>"}) == '{"k": "<i>"}'
    assert fmt.cell_text(0.25, as_percent=True) == "25%"
    assert fmt.cell_text("x" * 100, max_chars=10) == "x" * 9 + "…"


def test_percent_columns_are_recognised_by_name():
    assert all(fmt.is_percent_column(c) for c in ("share", "share_kept", "error_rate", "parse_failure_rate",
                                                  "pass_rate"))
    assert not any(fmt.is_percent_column(c) for c in ("n_instances", "mean_calls", "kappa", "ice_score"))


def test_format_frame_keeps_each_column_in_its_format():
    frame = pd.DataFrame({"n": [1680, 3], "share": [0.003077, 0.5], "mean": [1.378, np.nan]})
    shown = fmt.format_frame(frame)
    assert shown.to_dict("list") == {"n": ["1,680", "3"], "share": ["0.3%", "50%"], "mean": ["1.38", "–"]}


def test_evidence_is_readable_text_with_the_json_on_demand():
    evidence = [{"check": "unknown_function", "severity": "error", "call_index": 0, "function": "vatsim_pilots_get",
                 "expected": ["airports_get", "charts_get"],
                 "message": "call 0 names 'vatsim_pilots_get', which is not among the offered tools"}]
    text = fmt.evidence_text(evidence)
    assert text.startswith("unknown_function · call 0 (vatsim_pilots_get) · expected [\"airports_get\"")
    assert "which is not among the offered tools" in text and "severity" not in text
    # the message is not repeated when the rationale beside it already says it
    assert "offered tools" not in fmt.evidence_text(evidence, skip_text=evidence[0]["message"] + ".")
    cell = fmt.evidence_cell(json.dumps(evidence))
    assert isinstance(cell, fmt.Details) and json.loads(cell.body) == evidence and cell.label == "JSON"
    assert fmt.evidence_cell(None) == "" and fmt.evidence_cell("[]") == ""
    many = [{"check": "c", "value": i} for i in range(7)]
    assert fmt.evidence_text(many).endswith("… and 4 more")


def test_collapsed_list_counts_and_keeps_everything():
    ids = [f"toolbench/G1/{k}" for k in range(12)]
    cell = fmt.collapsed_list(ids, noun="id")
    assert isinstance(cell, fmt.Details) and cell.summary == "12 ids" and cell.body.splitlines() == ids
    shown = fmt.collapsed_list(ids, noun="id", shown=2)
    assert shown.summary == "toolbench/G1/0, toolbench/G1/1, … (12 ids)"
    assert fmt.collapsed_list(["one"], noun="id") == "one"
    assert fmt.collapsed_list([], noun="id") == fmt.MISSING
    assert str(cell) == "12 ids"  # plain-text consumers see the summary


def test_is_missing_never_raises():
    assert fmt.is_missing(math.nan) and fmt.is_missing(None) and not fmt.is_missing([1, 2])
    assert not fmt.is_missing("nan") and not fmt.is_missing(0)
