"""BFCL-style matching, each rule pinned on real BFCL instances from the bundled ``data/bfcl.jsonl``."""
import copy

import pytest

from toolqual_utils.io import read_instances
from toolqual_utils.matching import (
    MatchResult, call_matches, calls_match, standardize_string, type_conforms, values_match,
)
from conftest import ROOT

INSTANCES = read_instances(ROOT / "data" / "bfcl.jsonl")
WITH_ANSWER = [i for i in INSTANCES if i.meta.get("bfcl_category") != "irrelevance"]


def answer(inst):
    return inst.meta["bfcl_possible_answer"]


def gold_calls(inst):
    return [{"name": c.name, "arguments": dict(c.arguments or {})} for c in inst.calls]


def required_omittable(inst):
    """BFCL data quirks that make the gold call fail BFCL's own checker: a *required* argument whose
    acceptable list starts with "" (so the gold call omits it), or a gold argument outside the schema."""
    for entry in answer(inst):
        (name, spec), = entry.items()
        tool = inst.tool(name)
        if tool and any(spec.get(p, [None])[0] == "" for p in tool.required):
            return True
        if tool and any(p not in tool.properties and spec[p][:1] != [""] for p in spec):
            return True
    return False


def arguments_where(predicate):
    """(instance, call index, argument) for every gold argument whose acceptable list satisfies predicate."""
    found = []
    for inst in WITH_ANSWER:
        if required_omittable(inst):
            continue
        for index, call in enumerate(inst.calls):
            spec = answer(inst)[index][call.name]  # gold call i is built from entry i
            tool = inst.tool(call.name)
            for param, accepted in spec.items():
                schema = tool.properties.get(param, {}) if tool else {}
                if predicate(accepted, schema, call.arguments.get(param, None)):
                    found.append((inst, index, param))
    assert found, "the bundled BFCL sample should contain such an argument"
    return found


def mutate(inst, index, param, value=None, drop=False):
    calls = gold_calls(inst)
    if drop:
        calls[index]["arguments"].pop(param, None)
    else:
        calls[index]["arguments"][param] = value
    return calls


def test_bundled_sample_covers_every_category():
    categories = {i.meta["bfcl_category"] for i in INSTANCES}
    assert {"simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"} <= categories


def test_gold_calls_match_their_own_possible_answer():
    quirky = [i.id for i in WITH_ANSWER if required_omittable(i)]
    for inst in WITH_ANSWER:
        result = calls_match(inst.calls, answer(inst), inst.tools)
        if inst.id in quirky:  # the gold omits a required argument: BFCL's own checker rejects that too
            assert not result.ok and any("missing required" in r or "not in the tool's schema" in r
                                         for r in result.reasons)
        else:
            assert result.ok, (inst.id, result.reasons)
    assert len(quirky) < len(WITH_ANSWER) / 10


def test_irrelevance_no_call_matches_empty_answer_and_any_call_fails():
    inst = next(i for i in INSTANCES if i.meta["bfcl_category"] == "irrelevance")
    assert inst.calls == [] and calls_match([], [], inst.tools).ok
    tool = inst.tools[0]
    result = calls_match([{"name": tool.name, "arguments": {}}], [], inst.tools)
    assert not result.ok and "wrong number of calls" in result.reasons[0]


def test_string_casing_spaces_and_punctuation_are_normalised():
    cases = arguments_where(lambda acc, schema, value: isinstance(value, str) and any(c.isalpha() for c in value))
    for inst, index, param in cases:
        value = gold_calls(inst)[index]["arguments"][param]
        changed = value.swapcase().replace(" ", "  ") + "."
        assert calls_match(mutate(inst, index, param, changed), answer(inst), inst.tools).ok, (inst.id, param)


def test_int_is_accepted_for_a_float_answer():
    cases = arguments_where(lambda acc, schema, value: isinstance(value, float) and value.is_integer()
                            and schema.get("type") == "number")
    for inst, index, param in cases:
        value = gold_calls(inst)[index]["arguments"][param]
        assert calls_match(mutate(inst, index, param, int(value)), answer(inst), inst.tools).ok, (inst.id, param)


def test_float_is_not_accepted_for_an_integer_parameter():
    inst, index, param = arguments_where(lambda acc, schema, value: schema.get("type") == "integer"
                                         and isinstance(value, int) and not isinstance(value, bool))[0]
    value = gold_calls(inst)[index]["arguments"][param]
    result = calls_match(mutate(inst, index, param, value + 0.5), answer(inst), inst.tools)
    assert not result.ok and any(param in r for r in result.reasons)


def test_value_outside_acceptable_list_fails_naming_the_argument():
    cases = arguments_where(lambda acc, schema, value: isinstance(value, str) and schema.get("type") == "string"
                            and "enum" not in schema)
    for inst, index, param in cases[:50]:
        result = calls_match(mutate(inst, index, param, "Zanzibar-Qx 9000"), answer(inst), inst.tools)
        assert not result.ok
        assert any(repr(param) in r and "Zanzibar-Qx 9000" in r for r in result.reasons), result.reasons


def test_every_acceptable_alternative_matches():
    cases = arguments_where(lambda acc, schema, value: len([a for a in acc if a != ""]) >= 2)
    for inst, index, param in cases:
        spec = answer(inst)[index][inst.calls[index].name]
        for alternative in [a for a in spec[param] if a != ""]:
            assert calls_match(mutate(inst, index, param, alternative), answer(inst), inst.tools).ok


def test_optional_argument_marked_empty_may_be_omitted_or_given():
    cases = arguments_where(lambda acc, schema, value: "" in acc and len(acc) >= 2 and acc[0] != "")
    for inst, index, param in cases:
        if param in inst.tool(inst.calls[index].name).required:
            # "" on a schema-required argument: BFCL's checker demands it anyway (required check first).
            assert not calls_match(mutate(inst, index, param, drop=True), answer(inst), inst.tools).ok
            continue
        assert calls_match(mutate(inst, index, param, drop=True), answer(inst), inst.tools).ok, (inst.id, param)


def test_omitting_a_required_argument_fails():
    cases = arguments_where(lambda acc, schema, value: "" not in acc)
    for inst, index, param in cases[:80]:
        result = calls_match(mutate(inst, index, param, drop=True), answer(inst), inst.tools)
        assert not result.ok and any(repr(param) in r for r in result.reasons), (inst.id, param)


def test_unexpected_argument_fails():
    inst = WITH_ANSWER[0]
    calls = gold_calls(inst)
    calls[0]["arguments"]["not_a_parameter"] = 1
    result = calls_match(calls, answer(inst), inst.tools)
    assert not result.ok and "unexpected argument 'not_a_parameter'" in " ".join(result.reasons)


def test_parallel_calls_match_in_any_order():
    parallel = [i for i in WITH_ANSWER if "parallel" in i.meta["bfcl_category"] and len(i.calls) >= 2
                and not required_omittable(i)]
    assert parallel
    for inst in parallel:
        for order in (list(reversed(gold_calls(inst))), gold_calls(inst)[1:] + gold_calls(inst)[:1]):
            result = calls_match(order, answer(inst), inst.tools)
            assert result.ok, (inst.id, result.reasons)
            assert sorted(j for _, j in result.assignment) == list(range(len(order)))
        assert not calls_match(list(reversed(gold_calls(inst))), answer(inst), inst.tools, ordered=True).ok or \
            gold_calls(inst) == list(reversed(gold_calls(inst)))


def test_parallel_missing_or_duplicated_call_fails():
    inst = next(i for i in WITH_ANSWER if "parallel" in i.meta["bfcl_category"] and len(i.calls) >= 2
                and not required_omittable(i))
    calls = gold_calls(inst)
    assert "wrong number of calls" in calls_match(calls[:-1], answer(inst), inst.tools).reasons[0]
    duplicated = calls[:-1] + [copy.deepcopy(calls[0])]
    result = calls_match(duplicated, answer(inst), inst.tools)
    assert not result.ok or answer(inst)[0] == answer(inst)[-1]


def test_bipartite_assignment_beats_greedy_choice():
    # Call 0 fits both gold entries, call 1 only the first: a greedy pairing of call 0 with entry 0 fails.
    possible = [{"f": {"x": [1, 2]}}, {"f": {"x": [1]}}]
    calls = [{"name": "f", "arguments": {"x": 1}}, {"name": "f", "arguments": {"x": 2}}]
    result = calls_match(calls, possible)
    assert result.ok and result.assignment == [(0, 1), (1, 0)]


def test_lists_and_dicts_compare_element_wise_with_normalisation():
    dict_cases = arguments_where(lambda acc, schema, value: isinstance(value, dict))
    for inst, index, param in dict_cases:
        value = gold_calls(inst)[index]["arguments"][param]
        shouted = {k: (v.upper() if isinstance(v, str) else v) for k, v in value.items()}
        assert calls_match(mutate(inst, index, param, shouted), answer(inst), inst.tools).ok, (inst.id, param)
    list_cases = arguments_where(lambda acc, schema, value: isinstance(value, list) and len(value) >= 2
                                 and all(isinstance(v, str) for v in value))
    for inst, index, param in list_cases:
        value = gold_calls(inst)[index]["arguments"][param]
        assert calls_match(mutate(inst, index, param, [v.upper() for v in value]), answer(inst), inst.tools).ok
        accepted = answer(inst)[index][inst.calls[index].name][param]
        if not values_match(list(reversed(value)), accepted):
            result = calls_match(mutate(inst, index, param, list(reversed(value))), answer(inst), inst.tools)
            assert not result.ok, (inst.id, param)  # lists are ordered, as in BFCL


def test_values_match_primitives():
    assert values_match("April 1, 2024", ["april 1 2024"])
    assert values_match(5, [5.0], "number") and values_match(5, [5.0], "float")
    assert not values_match(5.0, [5], "integer")
    assert not values_match(True, [1]) and not values_match(1, [True])
    assert values_match("", ["", "x"]) and not values_match("y", ["", "x"])
    assert values_match({"a": "X y"}, [{"a": ["x-y"], "b": [""]}], "object")
    assert not values_match({"a": "X y"}, [{"a": ["x-y"], "b": ["z"]}], "object")
    assert values_match([{"k": "V"}], [[{"k": ["v"]}]], "array")
    assert standardize_string("It's A-B_c.d/e*f^g h") == 'it"sabcdefgh'
    assert type_conforms(3, "number") and not type_conforms(True, "integer") and type_conforms("x", None)


def test_call_matches_single_call_and_loose_names():
    result = call_matches({"name": "math_gcd", "arguments": {"a": 4}}, {"math.gcd": {"a": [4]}}, loose_names=True)
    assert result.ok
    strict = call_matches({"name": "math_gcd", "arguments": {"a": 4}}, {"math.gcd": {"a": [4]}})
    assert isinstance(strict, MatchResult) and not strict.ok and "not the expected" in strict.reasons[0]
    unparsed = call_matches({"name": "f", "arguments": None}, {"f": {}})
    assert not unparsed.ok and "could not be parsed" in unparsed.reasons[0]


@pytest.mark.parametrize("bad", [{"a": 1, "b": 2}, "f"])
def test_malformed_gold_entry_is_a_type_error(bad):
    with pytest.raises(TypeError):
        call_matches({"name": "f", "arguments": {}}, bad)
