"""Deterministic checks: each rule on a tiny inline instance, the verdict contract, the CLI, and layering."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from toolqual_utils.checks import (
    CHECKS, FINDING_COLUMNS, RULE_CRITERIA, check_findings, check_flags, find_issues, run_checks,
)
from toolqual_utils.io import read_instances, read_table
from toolqual_utils.schema import VERDICT_COLUMNS, Instance
from toolqual_utils.verdicts import Status
from conftest import ANNOTATIONS




TOOLS = [
    {"name": "get_weather", "description": "Weather forecast for a city.",
     "parameters": {"type": "object", "properties": {
         "city": {"type": "string", "description": "City name, e.g. Paris"},
         "days": {"type": "integer", "description": "Number of days", "default": 3},
         "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
         "date": {"type": "string", "description": "Date, YYYY-MM-DD"},
         "api_key": {"type": "string", "description": "Your API key"}},
         "required": ["city"]}},
    {"name": "search_flights", "description": "Search flights.",
     "parameters": {"type": "object", "properties": {
         "origin": {"type": "string"}, "destination": {"type": "string"},
         "passengers": {"type": "integer"}}, "required": ["origin", "destination"]}},
]


def make(calls, instruction="What is the weather in Paris for the next 5 days in celsius?", **extra):
    return Instance.model_validate({"id": extra.pop("id", "t/x/1"), "source": "t", "instruction": instruction,
                                    "tools": TOOLS, "calls": calls, **extra})


def checks_fired(instance, severity="error"):
    return {f.check for f in find_issues([instance]) if f.severity == severity}


def test_clean_instance_has_no_findings():
    inst = make([{"name": "get_weather",
                  "arguments": {"city": "paris", "days": "5", "unit": "Celsius", "api_key": "sk-123"}}])
    assert find_issues([inst]) == []


@pytest.mark.parametrize(
    "calls, check",
    [
        ([{"name": "get_forecast", "arguments": {"city": "Paris"}}], "unknown_function"),
        ([{"name": "get_weather", "arguments": {"days": 5}}], "missing_required_parameter"),
        ([{"name": "get_weather", "arguments": {"city": ""}}], "empty_required_value"),
        ([{"name": "get_weather", "arguments": {"city": "Paris", "zoom": 5}}], "unexpected_parameter"),
        ([{"name": "get_weather", "arguments": {"city": "Paris", "days": "five days"}}], "type_mismatch"),
        ([{"name": "get_weather", "arguments": {"city": "Paris", "unit": "kelvin"}}], "enum_mismatch"),
        ([{"name": "get_weather", "arguments": None, "raw_arguments": "{'city': Paris"}], "unparseable_arguments"),
        ([{"name": "get_weather", "arguments": {"city": "string"}}], "placeholder_value"),
        ([{"name": "get_weather", "arguments": {"city": "<city>"}}], "placeholder_value"),
        ([{"name": "get_weather", "arguments": {"city": "city"}}], "placeholder_value"),
        ([{"name": "get_weather", "arguments": {"city": "a specific city"}}], "placeholder_value"),
        ([{"name": "get_weather", "arguments": None, "raw_arguments": '{"city": ${some city}}'}],
         "placeholder_value"),
        ([{"name": "search_flights", "arguments": {"origin": "Paris", "destination": "Paris",
                                                    "passengers": 4}},
          {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "api_key": "k",
                                                "date": "Lyon Saint-Exupery"}}], "ungrounded_value"),
        ([{"name": "get_weather", "arguments": {"city": "Paris"}},
          {"name": "get_weather", "arguments": {"city": "Paris"}}], "repeated_identical_call"),
        ([{"name": "get_weather", "arguments": {"city": "Paris"}, "observation": "Status Code: 500. Internal Server Error"},
          {"name": "get_weather", "arguments": {"city": "Paris"}}], "identical_retry_after_error"),
        ([], "no_call_for_request"),
    ],
)
def test_each_check_fires_on_its_case(calls, check):
    assert check in checks_fired(make(calls))


def test_ungrounded_required_value_is_suspect_and_optional_one_is_error():
    required = make([{"name": "get_weather", "arguments": {"city": "Berlin"}}])
    assert "ungrounded_value" in checks_fired(required, "suspect")
    optional = make([{"name": "get_weather", "arguments": {"city": "Paris", "date": "Lyon Saint-Exupery"}}])
    assert "ungrounded_value" in checks_fired(optional, "error")


def test_findings_carry_evidence():
    inst = make([{"name": "get_weather", "arguments": {"city": "Paris"}},
                 {"name": "get_weather", "arguments": {"city": "Paris", "unit": "kelvin"}}])
    frame = check_findings([inst])
    assert tuple(frame.columns) == FINDING_COLUMNS
    row = frame[frame["check"] == "enum_mismatch"].iloc[0]
    assert (row["call_index"], row["function"], row["argument"]) == (1, "get_weather", "unit")
    assert json.loads(row["value"]) == "kelvin" and json.loads(row["expected"]) == ["celsius", "fahrenheit"]
    assert row["criterion"] == "parameter_alignment"


@pytest.mark.parametrize(
    "arguments, instruction",
    [
        ({"city": "Paris", "days": 5}, "Weather in Paris for five days"),          # number word
        ({"city": "Paris", "days": 5}, "Weather in Paris for 5.0 days"),           # decimal form
        ({"city": "PARIS"}, "weather in 'paris'"),                                 # casing, quotes
        ({"city": "New  York"}, "weather in New York"),                            # whitespace
        ({"city": "Paris", "date": "2023-04-15"}, "Paris weather on April 15th, 2023"),
        ({"city": "Paris", "date": "04/15/2023"}, "Paris weather on 15 April 2023"),
        ({"city": "Paris", "date": "2024-01-02"}, "Paris weather tomorrow"),       # relative date
        ({"city": "Paris", "days": 3}, "Paris weather"),                           # schema default
        ({"city": "DE"}, "the weather in Germany"),                                # country code
        ({"city": "Paris", "api_key": "abc"}, "Paris weather"),                    # credential
        ({"city": "Paris", "api_key": "<REDACTED_CREDENTIAL>"}, "Paris weather"),
    ],
)
def test_grounding_normalises_and_exempts(arguments, instruction):
    inst = make([{"name": "get_weather", "arguments": arguments}], instruction=instruction)
    assert "ungrounded_value" not in checks_fired(inst, "error") | checks_fired(inst, "suspect")


def test_values_from_earlier_observations_and_references_are_grounded():
    inst = make([
        {"name": "search_flights", "arguments": {"origin": "Paris", "destination": "Rome"},
         "observation": '{"flights": [{"id": "AZ-1043", "city": "Fiumicino"}]}'},
        {"name": "get_weather", "arguments": {"city": "Fiumicino"}},
        {"name": "get_weather", "arguments": {"city": "API_call_1"}},
        {"name": "get_weather", "arguments": {"city": "${city from search_flights}"}},
    ], instruction="Fly me from Paris to Rome and tell me the weather where I land.")
    assert checks_fired(inst) == set() and checks_fired(inst, "suspect") == set()


def test_placeholder_the_user_wrote_is_a_value():
    inst = make([{"name": "get_weather", "arguments": {"city": "String"}}],
                instruction="Weather in the town called String, please.")
    assert "placeholder_value" not in checks_fired(inst)


def test_changed_retry_is_not_a_repeat():
    inst = make([{"name": "get_weather", "arguments": {"city": "Paris"}, "observation": '{"error": "timeout"}'},
                 {"name": "get_weather", "arguments": {"city": "Paris", "days": 5}}])
    assert not checks_fired(inst) & {"repeated_identical_call", "identical_retry_after_error"}


def test_pseudo_calls_are_not_api_calls():
    inst = make([{"name": "getDetails", "arguments": {"Question": "Which city?"}, "observation": "Lyon"},
                 {"name": "get_weather", "arguments": {"city": "Lyon"}}], instruction="What's the weather?")
    fired = checks_fired(inst) | checks_fired(inst, "suspect")
    assert "unknown_function" not in fired and "ungrounded_value" not in fired


def test_unexpected_parameter_is_only_suspect_when_the_schema_lost_its_parameters():
    tools = [{"name": "lookup", "parameters": {"type": "object", "properties": {}, "required": []}}]
    inst = Instance.model_validate({"id": "t/x/2", "source": "t", "instruction": "look up 42", "tools": tools,
                                    "calls": [{"name": "lookup", "arguments": {"q": "42"}}]})
    findings = [f for f in find_issues([inst]) if f.check == "unexpected_parameter"]
    assert [f.severity for f in findings] == ["suspect"]


def test_irrelevance_instances_hold_with_no_call_but_are_unsolvable():
    inst = make([], id="bfcl/irrelevance/irrelevance_0", meta={"bfcl_category": "irrelevance"})
    verdicts = run_checks([inst]).set_index("criterion")
    assert verdicts.loc["sufficiency", "label"] == 1
    assert verdicts.loc["parameter_alignment", "label"] == 1
    assert verdicts.loc["solvability", "label"] == 0


def test_verdict_table_contract():
    unknown = make(None, id="t/x/none")
    wrong = make([{"name": "get_weather", "arguments": {"city": "Paris"}},
                  {"name": "get_weather", "arguments": {"city": "Paris"}}], id="t/x/rep")
    suspect = make([{"name": "get_weather", "arguments": {"city": "Paris", "days": 14}}], id="t/x/sus")
    verdicts = run_checks([unknown, wrong, suspect])
    assert tuple(verdicts.columns) == VERDICT_COLUMNS
    assert len(verdicts) == 3 * len(RULE_CRITERIA)
    assert set(verdicts["judge"]) == {"rules"} and set(verdicts["prompt_id"]) == {"rules.v1"}
    by_key = verdicts.set_index(["instance_id", "criterion"])
    for criterion in ("parameter_alignment", "sufficiency", "minimality"):
        row = by_key.loc[("t/x/none", criterion)]
        assert pd.isna(row["label"]) and row["status"] == Status.UNSCORED_NOT_APPLICABLE
    rep = by_key.loc[("t/x/rep", "minimality")]
    assert rep["label"] == 0 and rep["status"] == "ok" and rep["evidence"][0]["call_index"] == 1
    sus = by_key.loc[("t/x/sus", "parameter_alignment")]
    assert pd.isna(sus["label"]) and sus["status"] == Status.UNSCORED_NEEDS_MODEL
    assert sus["evidence"][0]["check"] == "ungrounded_value" and sus["evidence"][0]["severity"] == "suspect"
    assert by_key.loc[("t/x/sus", "minimality"), "label"] == 1  # one call: nothing repeated
    json.dumps(verdicts["evidence"].tolist())  # evidence is JSON-serialisable


def test_empty_input_gives_empty_frames_with_columns():
    assert tuple(run_checks([]).columns) == VERDICT_COLUMNS and run_checks([]).empty
    assert tuple(check_findings([]).columns) == FINDING_COLUMNS
    assert list(check_flags([]).columns) == ["instance_id", *[f"is_{c}_issue" for c in CHECKS], "n_findings"]


def test_flags_frame_is_one_row_per_instance():
    good = make([{"name": "get_weather", "arguments": {"city": "Paris"}}], id="t/x/good")
    bad = make([{"name": "get_weather", "arguments": {"days": 2}}], id="t/x/bad")
    flags = check_flags([good, bad]).set_index("instance_id")
    assert not flags.loc["t/x/good"].drop("n_findings").any()
    assert flags.loc["t/x/bad", "is_missing_required_parameter_issue"]


def test_reference_instances_load_and_check():
    instances = read_instances(ANNOTATIONS / "reference_dev_instances.jsonl")
    verdicts = run_checks(instances)
    assert len(verdicts) == len(instances) * len(RULE_CRITERIA)
    assert verdicts["status"].isin([Status.OK, Status.UNSCORED_NEEDS_MODEL, Status.UNSCORED_NOT_APPLICABLE]).all()


def test_pure_module_does_not_import_ui_or_model_libraries():
    code = ("import sys, toolqual_utils.checks, toolqual_utils.matching, toolqual_utils.heuristics; "
            "bad = {'openai', 'plotly', 'seaborn', 'ipywidgets', 'papermill'} & set(sys.modules); print(sorted(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- the command ----------------------------------------------------------------------------------------

def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "check", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_check_command_writes_verdicts_and_findings(tmp_path):
    data = ANNOTATIONS / "reference_dev_instances.jsonl"
    out, findings = tmp_path / "v.parquet", tmp_path / "f.csv"
    result = run_cli(str(data), "--out", str(out), "--findings", str(findings))
    assert result.returncode == 0, result.stderr
    verdicts = read_table(out)
    n = len(read_instances(data))
    assert len(verdicts) == n * 6 and set(verdicts.columns) == set(VERDICT_COLUMNS)
    assert "35 instances checked" in result.stdout and "parameter_alignment" in result.stdout
    assert len(read_table(findings)) > 0


def test_check_command_reports_bad_input_as_one_paragraph(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"question": "not canonical"}\n')
    result = run_cli(str(raw), "--out", str(tmp_path / "v.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "contains no valid canonical instance" in " ".join(result.stderr.split())
    result = run_cli(str(raw), "--out", str(tmp_path / "v.xlsx"))
    assert result.returncode == 2 and "--out must end in one of" in " ".join(result.stderr.split())
    result = run_cli(str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "v.csv"))
    assert result.returncode == 2 and "no such file" in " ".join(result.stderr.split())
