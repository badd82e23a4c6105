"""Strict parsing of judge replies and the code side of each criterion's decision."""
from __future__ import annotations

import json

import pytest

from toolqual_utils.judge.context import build_context
from toolqual_utils.judge.decide import decide, pre_decide
from toolqual_utils.judge.parse import (
    CoherenceAnswer,
    DirectAnswer,
    ParseFailure,
    combined_schema,
    parse_answer,
    parse_combined,
)
from toolqual_utils.schema import Instance


def _instance(instruction: str, calls, tools=None) -> Instance:
    tools = tools or [
        {
            "name": "geocode",
            "description": "Coordinates of an address",
            "parameters": {
                "type": "object",
                "properties": {"address": {"type": "string"}, "limit": {"type": "integer", "default": 5},
                               "api_key": {"type": "string"}},
                "required": ["address"],
            },
        },
        {"name": "nearby", "description": "Places near coordinates",
         "parameters": {"type": "object", "properties": {"place_id": {"type": "string"}}, "required": ["place_id"]}},
    ]
    return Instance.model_validate(
        {"id": "t/p/1", "source": "test", "instruction": instruction, "tools": tools, "calls": calls}
    )


def test_valid_direct_answer_parses_and_maps_yes_to_holds():
    answer = parse_answer("solvability", '{"rationale": "tools cover it", "answer": "yes"}')
    assert isinstance(answer, DirectAnswer)
    context = build_context(_instance("Geocode 1 Main St.", [{"name": "geocode", "arguments": {"address": "1 Main St"}}]))
    assert decide("solvability", answer, context).label == 1
    no = parse_answer("minimality", '```json\n{"rationale": "repeated call", "answer": "no"}\n```')
    assert decide("minimality", no, context).label == 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty reply"),
        ("Sure! The answer is yes.", "not valid JSON"),
        ('{"rationale": "x", "answer": "yes"', "not valid JSON"),
        ('["yes"]', "expected an object"),
        ('{"rationale": "x", "answer": "maybe"}', "does not match the schema"),
        ('{"rationale": "x", "answer": true}', "does not match the schema"),
        ('{"answer": "yes"}', "rationale"),
    ],
)
def test_invalid_or_schema_violating_replies_are_parse_failures(text, reason):
    with pytest.raises(ParseFailure, match=reason):
        parse_answer("sufficiency", text)


def test_strict_types_no_coercion():
    with pytest.raises(ParseFailure):
        parse_answer("coherence", '{"rationale": "r", "pairs": [{"index": "0", "follows": true}]}')
    with pytest.raises(ParseFailure):
        parse_answer("coherence", '{"rationale": "r", "pairs": [{"index": 0, "follows": "true"}]}')
    ok = parse_answer("coherence", '{"rationale": "r", "pairs": [{"index": 0, "follows": true}], "extra": 1}')
    assert isinstance(ok, CoherenceAnswer)


def test_combined_parse_is_per_criterion():
    text = json.dumps({"solvability": {"rationale": "r", "answer": "no"}, "minimality": {"answer": "yes"}})
    parsed = parse_combined(text, ["solvability", "minimality", "sufficiency"])
    assert isinstance(parsed["solvability"], DirectAnswer)
    assert isinstance(parsed["minimality"], ParseFailure)
    assert "no 'sufficiency' key" in parsed["sufficiency"].reason
    everything_bad = parse_combined("not json", ["solvability", "coherence"])
    assert all(isinstance(v, ParseFailure) for v in everything_bad.values())


def test_combined_schema_asks_exactly_the_given_criteria():
    schema = combined_schema(["minimality", "specificity"])
    assert schema["required"] == ["specificity", "minimality"]  # canonical order
    assert schema["additionalProperties"] is False
    assert schema["properties"]["specificity"]["required"] == ["rationale", "extractions"]


def test_specificity_any_missing_is_an_error_and_coverage_is_checked():
    instance = _instance("Find restaurants near a famous landmark.",
                         [{"name": "geocode", "arguments": {"address": "Eiffel Tower"}}])
    context = build_context(instance)
    assert [(p.tool, p.parameter) for p in context.required_parameters] == [("geocode", "address")]
    missing = parse_answer("specificity", json.dumps(
        {"rationale": "no landmark named", "extractions": [{"tool": "geocode", "parameter": "address", "value": "#missing"}]}))
    verdict = decide("specificity", missing, context)
    assert verdict.label == 0 and verdict.evidence[0]["missing"] is True
    stated = parse_answer("specificity", json.dumps(
        {"rationale": "ok", "extractions": [{"tool": "geocode", "parameter": "address", "value": "Eiffel Tower"}]}))
    assert decide("specificity", stated, context).label == 1
    empty = parse_answer("specificity", '{"rationale": "r", "extractions": []}')
    with pytest.raises(ParseFailure, match="geocode.address"):
        decide("specificity", empty, context)


def test_coherence_single_sentence_is_decided_without_asking():
    context = build_context(_instance("Geocode 1 Main St.", [{"name": "geocode", "arguments": {"address": "1 Main St"}}]))
    decision = pre_decide(context, "coherence")
    assert decision is not None and decision.label == 1
    two = build_context(_instance("Geocode 1 Main St. Also translate hello into Japanese.", []))
    assert pre_decide(two, "coherence") is None
    broken = parse_answer("coherence", '{"rationale": "unrelated", "pairs": [{"index": 0, "follows": false}]}')
    assert decide("coherence", broken, two).label == 0
    with pytest.raises(ParseFailure, match="sentence pair"):
        decide("coherence", parse_answer("coherence", '{"rationale": "r", "pairs": []}'), two)


def test_parameter_alignment_exact_match_first_then_model_for_the_rest():
    instance = _instance(
        "Where is 1 Main St? Then list places near it.",
        [
            {"name": "geocode", "arguments": {"address": "1 Main St", "limit": 5, "api_key": "XYZ"},
             "observation": '{"place_id": "pl_77", "other": "pl_12"}'},
            {"name": "nearby", "arguments": {"place_id": "pl_77"}},
        ],
    )
    context = build_context(instance)
    settled = {(a.call_index, a.argument): a.settled_by for a in context.argument_checks}
    assert settled == {(0, "address"): "instruction_text", (0, "limit"): "schema_default",
                       (0, "api_key"): "credential", (1, "place_id"): None}
    assert [a.in_earlier_output for a in context.open_arguments] == [True]

    def answer(**item):
        row = {"call_index": 1, "argument": "place_id", "instruction_value": "#missing", "equivalent": False,
               "from_earlier_call": False}
        row.update(item)
        return parse_answer("parameter_alignment", json.dumps({"rationale": "r", "arguments": [row]}))

    assert decide("parameter_alignment", answer(from_earlier_call=True), context).label == 1
    hallucinated = decide("parameter_alignment", answer(), context)
    assert hallucinated.label == 0
    assert [e["by"] for e in hallucinated.evidence if not e["supported"]] == ["unsupported"]
    # the code compares the extracted value itself: an exact match needs no "equivalent" flag
    assert decide("parameter_alignment", answer(instruction_value="PL_77 "), context).label == 1
    # "equivalent" is ignored when the model says the instruction has no value
    assert decide("parameter_alignment", answer(equivalent=True), context).label == 0
    with pytest.raises(ParseFailure, match="place_id of call 1"):
        decide("parameter_alignment", parse_answer("parameter_alignment", '{"rationale": "r", "arguments": []}'), context)


def test_parameter_alignment_decided_in_code_when_possible():
    aligned = build_context(_instance("Geocode 1 Main St.", [{"name": "geocode", "arguments": {"address": "1 main st"}}]))
    decision = pre_decide(aligned, "parameter_alignment")
    assert decision is not None and decision.label == 1
    missing = build_context(_instance("Geocode my office.", [{"name": "geocode", "arguments": {"address": None}}]))
    decision = pre_decide(missing, "parameter_alignment")
    assert decision is not None and decision.label == 0 and decision.evidence[0]["by"] == "required_missing"
    no_gold = build_context(Instance.model_validate(
        {"id": "q", "source": "t", "instruction": "Geocode 1 Main St.", "tools": [], "calls": None}))
    for criterion in ("parameter_alignment", "sufficiency", "minimality"):
        assert pre_decide(no_gold, criterion).status == "unscored:not_applicable"
