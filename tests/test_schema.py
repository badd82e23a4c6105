"""The canonical record contract (docs/format.md) and its DataFrame views."""
import json

import pytest
from pydantic import ValidationError

from toolqual_utils.schema import (
    CALL_FRAME_COLUMNS,
    CRITERIA,
    INSTANCE_FRAME_COLUMNS,
    Instance,
    calls_frame,
    describe_validation_error,
    instances_frame,
    parameters_frame,
    parse_instance,
)
from conftest import REFERENCE_INSTANCES

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"], "default": "C"}},
        "required": ["city"],
    },
}


def make_record(**overrides):
    record = {
        "id": "demo/x/1",
        "source": "demo",
        "instruction": "What's the weather in Paris?",
        "tools": [WEATHER_TOOL],
        "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "raw_arguments": None, "observation": "12C"}],
        "final_answer": "It is 12C.",
        "meta": {},
    }
    record.update(overrides)
    return record


def test_design_md_example_validates_and_round_trips():
    inst = parse_instance(make_record())
    assert inst.to_record() == json.loads(json.dumps(make_record()))


def test_minimal_record_gets_defaults():
    inst = parse_instance({"id": "a", "source": "s", "instruction": "hi"})
    assert inst.tools == [] and inst.calls is None and inst.meta == {}


def test_parse_failure_flag_keeps_raw_text():
    inst = parse_instance(make_record(calls=[{"name": "get_weather", "arguments": None, "raw_arguments": "{city: Paris"}]))
    assert inst.calls[0].parse_failed
    assert inst.calls[0].raw_arguments == "{city: Paris"
    ok = parse_instance(make_record())
    assert not ok.calls[0].parse_failed


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"id": ""}, "id"),
        ({"instruction": None}, "instruction"),
        ({"calls": [{"name": "f", "arguments": "not an object"}]}, "calls.0.arguments"),
        ({"tools": [{**WEATHER_TOOL, "parameters": {"type": "array"}}]}, "tools.0.parameters"),
        ({"tools": [WEATHER_TOOL, WEATHER_TOOL]}, "<record>"),
        ({"call": []}, "call"),
    ],
)
def test_bad_records_name_the_field(overrides, field):
    with pytest.raises(ValidationError) as info:
        parse_instance(make_record(**overrides))
    got_field, reason = describe_validation_error(info.value)
    assert got_field == field
    assert reason


def test_unknown_field_reason_lists_the_canonical_fields():
    with pytest.raises(ValidationError) as info:
        parse_instance(make_record(call=[]))
    _, reason = describe_validation_error(info.value)
    assert "calls" in reason and "unknown field" in reason


def test_instances_frame_one_row_per_instance():
    no_gold = parse_instance(make_record(id="demo/x/2", calls=None))
    unknown = parse_instance(
        make_record(
            id="demo/y/3",
            calls=[{"name": "nope", "arguments": None, "raw_arguments": "{bad"}],
            meta={"pseudo_calls": [{"name": "Finish", "raw_arguments": "{}"}]},
        )
    )
    frame = instances_frame([parse_instance(make_record()), no_gold, unknown])
    assert list(frame.columns) == list(INSTANCE_FRAME_COLUMNS)
    assert frame["instance_id"].tolist() == ["demo/x/1", "demo/x/2", "demo/y/3"]
    assert frame["subset"].tolist() == ["x", "x", "y"]
    assert frame["has_gold_calls"].tolist() == [True, False, True]
    assert frame["n_calls"].tolist() == [1, 0, 1]
    assert frame["n_parse_failures"].tolist() == [0, 0, 1]
    assert frame["n_unknown_calls"].tolist() == [0, 0, 1]
    assert frame["n_pseudo_calls"].tolist() == [0, 0, 1]


def test_calls_and_parameters_frames():
    inst = parse_instance(
        make_record(calls=[
            {"name": "get_weather", "arguments": {"unit": "F", "city": "Oslo"}},
            {"name": "get_weather", "arguments": None, "raw_arguments": "${x}"},
        ])
    )
    calls = calls_frame([inst])
    assert list(calls.columns) == list(CALL_FRAME_COLUMNS)
    assert calls["call_index"].tolist() == [0, 1]
    assert calls["argument_names"].tolist() == ["city,unit", ""]
    assert calls["arguments_parsed"].tolist() == [True, False]
    params = parameters_frame([inst])
    assert set(params["parameter"]) == {"city", "unit"}
    assert params.set_index("parameter").loc["unit", "has_enum"]
    assert params.set_index("parameter").loc["city", "is_required"]


def test_empty_input_gives_empty_frames_with_columns():
    assert list(instances_frame([]).columns) == list(INSTANCE_FRAME_COLUMNS)
    assert calls_frame([]).empty and list(calls_frame([]).columns) == list(CALL_FRAME_COLUMNS)


def test_criteria_names_match_design():
    assert CRITERIA == (
        "specificity", "coherence", "solvability", "parameter_alignment", "sufficiency", "minimality"
    )


def test_reference_annotation_instances_follow_the_contract():
    path = REFERENCE_INSTANCES
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    instances = [Instance.model_validate(r) for r in records]
    assert len(instances) == 35
