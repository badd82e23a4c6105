"""Profile tables of notebook 00 (toolqual_utils.profile) on tiny inline data and on the reference set."""
from __future__ import annotations


import pandas as pd
import pytest

from toolqual_utils.io import read_instances
from toolqual_utils.profile import (
    DISTRIBUTION_COLUMNS,
    EXAMPLE_COLUMNS,
    FILE_SUMMARY_COLUMNS,
    PARAMETER_MIX_COLUMNS,
    PARSE_FAILURE_COLUMNS,
    PSEUDO_COUNT_COLUMNS,
    SOURCE_SUMMARY_COLUMNS,
    calls_per_instance,
    example_instances,
    file_summary,
    parameter_type_mix,
    parse_failures,
    profile_frames,
    pseudo_call_counts,
    pseudo_calls_frame,
    source_summary,
    tools_per_instance,
)
from toolqual_utils.schema import Instance
from conftest import REFERENCE_INSTANCES

REFERENCE = REFERENCE_INSTANCES

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {}},
        "required": ["city"],
    },
}
SEARCH = {
    "name": "search",
    "description": "Web search",
    "parameters": {"type": "object", "properties": {"q": {"type": ["string", "null"]}}, "required": ["q"]},
}


def _inst(id_: str, source: str, calls, tools=(WEATHER,), meta=None, instruction="Weather in Oslo?") -> Instance:
    return Instance.model_validate(
        {"id": id_, "source": source, "instruction": instruction, "tools": list(tools), "calls": calls,
         "final_answer": None, "meta": meta or {}}
    )


@pytest.fixture
def files() -> dict[str, list[Instance]]:
    alpha = [
        _inst("alpha/a/1", "alpha", [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
              meta={"pseudo_calls": [{"name": "Finish", "raw_arguments": "{}"}]}),
        _inst("alpha/a/2", "alpha", [
            {"name": "get_weather", "arguments": None, "raw_arguments": "{city: Oslo"},
            {"name": "get_weather", "arguments": {"city": "Bergen", "days": 2}},
        ], meta={"pseudo_calls": [{"name": "Finish"}, {"name": "getDetails", "raw_arguments": "x"}, "junk"]}),
        _inst("alpha/b/3", "alpha", None),  # no gold calls known
    ]
    beta = [
        _inst("beta/x/1", "beta", [], tools=(WEATHER, SEARCH)),  # gold: call nothing
        _inst("beta/x/2", "beta", [{"name": "search", "arguments": {"q": "news"}}], tools=(WEATHER, SEARCH),
              meta={"pseudo_calls": [{"name": "Finish"}]}),
    ]
    return {"data/alpha.jsonl": alpha, "data/beta.jsonl": beta}


def test_profile_frames_add_file_column(files):
    instances, calls, parameters = profile_frames(files)
    assert list(instances.columns[:2]) == ["file", "instance_id"]
    assert instances.groupby("file").size().to_dict() == {"data/alpha.jsonl": 3, "data/beta.jsonl": 2}
    assert len(calls) == 4  # 1 + 2 + 0 + 0 + 1
    assert set(calls["file"]) == {"data/alpha.jsonl", "data/beta.jsonl"}
    # one row per (instance, tool, parameter): alpha 3 instances x 3 params; beta 2 x (3 + 1)
    assert len(parameters) == 9 + 8


def test_source_summary_counts(files):
    instances, _, _ = profile_frames(files)
    summary = source_summary(instances).set_index("source")
    assert list(source_summary(instances).columns) == list(SOURCE_SUMMARY_COLUMNS)
    assert summary.loc["alpha", "n_instances"] == 3
    assert summary.loc["alpha", "n_subsets"] == 2
    assert summary.loc["alpha", "n_with_gold_calls"] == 2
    assert summary.loc["alpha", "n_calls"] == 3
    assert summary.loc["alpha", "mean_calls"] == pytest.approx(1.5)  # over instances with gold calls
    assert summary.loc["alpha", "n_parse_failures"] == 1
    assert summary.loc["alpha", "n_pseudo_calls"] == 4  # meta entries, including the malformed one
    assert summary.loc["beta", "n_no_call"] == 1
    assert summary.loc["alpha", "n_no_call"] == 0
    assert summary.loc["beta", "mean_calls"] == pytest.approx(0.5)


def test_file_summary(files):
    instances, _, _ = profile_frames(files)
    table = file_summary(instances)
    assert list(table.columns) == list(FILE_SUMMARY_COLUMNS)
    assert table.set_index("file")["n_calls"].to_dict() == {"data/alpha.jsonl": 3, "data/beta.jsonl": 1}


def test_calls_per_instance_excludes_unknown_gold_and_shares_sum_to_one(files):
    instances, _, _ = profile_frames(files)
    table = calls_per_instance(instances)
    assert list(table.columns) == list(DISTRIBUTION_COLUMNS)
    alpha = table[table["source"] == "alpha"].set_index("value")["n_instances"].to_dict()
    assert alpha == {1: 1, 2: 1}  # alpha/b/3 (calls None) is not a 0-call instance
    beta = table[table["source"] == "beta"].set_index("value")["n_instances"].to_dict()
    assert beta == {0: 1, 1: 1}
    assert table.groupby("source")["share"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_tools_per_instance(files):
    instances, _, _ = profile_frames(files)
    table = tools_per_instance(instances)
    assert table[["source", "value", "n_instances"]].values.tolist() == [["alpha", 1, 3], ["beta", 2, 2]]


def test_parse_failures(files):
    instances, _, _ = profile_frames(files)
    table = parse_failures(instances).set_index("source")
    assert list(parse_failures(instances).columns) == list(PARSE_FAILURE_COLUMNS)
    assert table.loc["alpha", "n_parse_failures"] == 1
    assert table.loc["alpha", "parse_failure_rate"] == pytest.approx(1 / 3)
    assert table.loc["alpha", "n_instances_with_failure"] == 1
    assert table.loc["beta", "parse_failure_rate"] == 0


def test_parse_failure_rate_is_nan_without_calls():
    instances, _, _ = profile_frames({"f": [_inst("s/a/1", "s", None)]})
    assert pd.isna(parse_failures(instances).loc[0, "parse_failure_rate"])


def test_pseudo_call_counts(files):
    every = [inst for group in files.values() for inst in group]
    frame = pseudo_calls_frame(every)
    assert len(frame) == 4  # the malformed "junk" entry is skipped
    counts = pseudo_call_counts(frame)
    assert list(counts.columns) == list(PSEUDO_COUNT_COLUMNS)
    rows = counts[["source", "name", "n_calls", "n_instances"]].values.tolist()
    assert rows == [["alpha", "Finish", 2, 2], ["alpha", "getDetails", 1, 1], ["beta", "Finish", 1, 1]]


def test_parameter_type_mix_distinct_and_per_offer(files):
    _, _, parameters = profile_frames(files)
    distinct = parameter_type_mix(parameters)
    assert list(distinct.columns) == list(PARAMETER_MIX_COLUMNS)
    alpha = distinct[distinct["source"] == "alpha"].set_index("type")
    assert alpha["n_parameters"].to_dict() == {"integer": 1, "string": 1, "unspecified": 1}
    assert alpha.loc["string", "n_required"] == 1
    beta = distinct[distinct["source"] == "beta"].set_index("type")
    assert beta.loc["string|null", "n_parameters"] == 1
    assert distinct.groupby("source")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    per_offer = parameter_type_mix(parameters, distinct_tools=False)
    assert per_offer[per_offer["source"] == "alpha"]["n_parameters"].sum() == 9


def test_example_instances_round_robin_and_raw_text(files):
    every = [inst for group in files.values() for inst in group]
    every[0] = _inst("alpha/a/1", "alpha", [{"name": "get_weather", "arguments": {"city": "<b>Oslo</b>"}}],
                     instruction="<script>alert(1)</script>")
    table = example_instances(every, n=3)
    assert list(table.columns) == list(EXAMPLE_COLUMNS)
    assert table["instance_id"].tolist() == ["alpha/a/1", "beta/x/1", "alpha/a/2"]
    assert table.loc[0, "instruction"] == "<script>alert(1)</script>"  # escaping is the display's job
    assert "get_weather(city='<b>Oslo</b>')" in table.loc[0, "calls"]
    assert table.loc[1, "calls"] == "(gold: call nothing)"
    assert "<unparsed>" in table.loc[2, "calls"]
    assert example_instances(every, n=0).empty
    assert len(example_instances(every, n=50)) == len(every)


def test_empty_input_gives_empty_tables_with_columns():
    instances, calls, parameters = profile_frames({})
    assert "file" in instances.columns and instances.empty
    for table, columns in [
        (source_summary(instances), SOURCE_SUMMARY_COLUMNS),
        (file_summary(instances), FILE_SUMMARY_COLUMNS),
        (calls_per_instance(instances), DISTRIBUTION_COLUMNS),
        (tools_per_instance(instances), DISTRIBUTION_COLUMNS),
        (parse_failures(instances), PARSE_FAILURE_COLUMNS),
        (pseudo_call_counts(pseudo_calls_frame([])), PSEUDO_COUNT_COLUMNS),
        (parameter_type_mix(parameters), PARAMETER_MIX_COLUMNS),
        (example_instances([], 5), EXAMPLE_COLUMNS),
    ]:
        assert table.empty
        assert list(table.columns) == list(columns)


def test_reference_instances_profile():
    instances_list = read_instances(REFERENCE)
    instances, calls, parameters = profile_frames({"reference": instances_list})
    summary = source_summary(instances)
    assert summary["n_instances"].sum() == len(instances_list) == 35
    assert summary["n_calls"].sum() == len(calls)
    assert parse_failures(instances)["n_parse_failures"].sum() == int(instances["n_parse_failures"].sum())


def test_plots_accept_profile_tables_and_empty_tables(files):
    """plots.py draws from these tables (and from empty ones) without computing anything itself."""
    import plotly.graph_objects as go

    from toolqual_utils import plots

    instances, _, parameters = profile_frames(files)
    every = [inst for group in files.values() for inst in group]
    pairs = [
        (plots.instances_per_source, source_summary(instances)),
        (plots.instances_per_file, file_summary(instances)),
        (plots.calls_per_instance, calls_per_instance(instances)),
        (plots.tools_per_instance, tools_per_instance(instances)),
        (plots.parse_failures_by_source, parse_failures(instances)),
        (plots.pseudo_call_counts, pseudo_call_counts(pseudo_calls_frame(every))),
        (plots.parameter_type_mix, parameter_type_mix(parameters)),
    ]
    for build, table in pairs:
        fig = build(table)
        assert isinstance(fig, go.Figure) and len(fig.data) > 0, build.__name__
        empty = build(table.iloc[0:0])
        assert isinstance(empty, go.Figure) and len(empty.data) == 0 and empty.layout.annotations
    bars = plots.instances_per_source(source_summary(instances))
    assert list(bars.data[0].y) == [3, 2]
    with pytest.raises(ValueError, match="missing"):
        plots.calls_per_instance(pd.DataFrame({"source": ["a"]}))


def test_reject_summary_groups_by_file_and_field():
    from toolqual_utils.profile import REJECT_SUMMARY_COLUMNS, reject_summary

    rejects = {
        "data/a.rejects.jsonl": pd.DataFrame(
            [
                {"file": "src.json", "location": "line 1", "reason": "bad json", "field": None, "record_id": None},
                {"file": "src.json", "location": "line 4", "reason": "no calls", "field": "calls", "record_id": "a/1"},
                {"file": "src.json", "location": "line 9", "reason": "no calls 2", "field": "calls", "record_id": "a/2"},
            ]
        ),
        "data/b.rejects.jsonl": pd.DataFrame(),
    }
    table = reject_summary(rejects)
    assert list(table.columns) == list(REJECT_SUMMARY_COLUMNS)
    assert table[["field", "n_records", "example_reason"]].values.tolist() == [
        ["calls", 2, "no calls"],
        ["(record)", 1, "bad json"],
    ]
    assert table.loc[0, "example_record_id"] == "a/1" and pd.isna(table.loc[1, "example_record_id"])
    assert reject_summary({}).empty
