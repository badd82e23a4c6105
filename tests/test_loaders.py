"""Loaders: counts against the raw sources, the reference instances, detection, pitfalls, round trips."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.io import read_instances
from toolqual_utils.loaders import detect_format, load
from toolqual_utils.loaders.bfcl import convert_schema
from toolqual_utils.export import to_openai_record
from toolqual_utils.loaders.toolalpaca import build_tools
from toolqual_utils.loaders.toolbench import function_name, standardize
from toolqual_utils.schema import PSEUDO_CALLS
from conftest import ANNOTATIONS, ROOT, SOURCES

FIXTURES = ROOT / "tests" / "fixtures" / "loaders"


# --- helpers: expected counts straight from the raw files ----------------------------------------

def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _nonblank_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


@pytest.fixture(scope="module")
def shared_instances():
    """Every instance loadable from the shared sources, by id (loaded once)."""
    result = load([SOURCES / "toolalpaca", SOURCES / "toolbench", SOURCES / "stabletoolbench", SOURCES / "bfcl",
                   SOURCES / "seal_tools" / "dev.jsonl"])
    return {inst.id: inst for inst in result.instances}, result


# --- counts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["eval_simulated.json", "eval_real.json"])
def test_toolalpaca_eval_counts_match_instructions(name):
    path = SOURCES / "toolalpaca" / name
    expected = sum(len(record["Instructions"]) for record in _json(path))
    result = load(path)
    assert len(result.instances) == expected and not result.rejects
    assert {i.source for i in result.instances} == {"toolalpaca"}


@pytest.mark.parametrize("name", ["toolalpaca-7b-sim.json", "gpt-3.5-sim-old.json"])
def test_toolalpaca_train_format_counts_split_runs_from_crashes(name):
    path = SOURCES / "toolalpaca" / "fork_octobrist" / name
    instances = [inst for record in _json(path) for inst in record["Instances"]]
    crashed = sum("intermediate_steps" not in inst for inst in instances)
    result = load(path)
    assert len(result.instances) == len(instances) - crashed
    assert len(result.rejects) == crashed > 0
    assert all("error instead of a trajectory" in r.reason for r in result.rejects)
    assert {i.source for i in result.instances} == {"toolalpaca-train-format"}


def test_toolbench_answer_counts_one_per_file_with_trajectory():
    files = sorted((SOURCES / "toolbench" / "data_example" / "answer").rglob("*.json"))
    files += sorted((SOURCES / "stabletoolbench" / "data_example" / "answer").rglob("*.json"))
    with_trajectory = sum(bool(_json(f)["answer_generation"].get("train_messages")) for f in files)
    result = load([SOURCES / "toolbench" / "data_example" / "answer", SOURCES / "stabletoolbench" / "data_example" / "answer"])
    assert len(result.instances) == with_trajectory
    assert len(result.rejects) == len(files) - with_trajectory
    assert list(result.summary["n_read"]) == [1] * len(files)


def test_toolbench_query_counts_match_list_lengths():
    files = sorted((SOURCES / "toolbench" / "data_example" / "instruction").glob("*.json"))
    files += sorted((SOURCES / "stabletoolbench" / "solvable_queries" / "test_instruction").glob("*.json"))
    expected = sum(len(_json(f)) for f in files)
    result = load(files)
    assert len(result.instances) == expected and not result.rejects
    assert all(inst.calls is None for inst in result.instances)


def test_bfcl_counts_match_lines_per_file():
    files = sorted((SOURCES / "bfcl").glob("BFCL_v4_*.json"))
    result = load(SOURCES / "bfcl")
    assert not result.rejects
    by_file = dict(zip(result.summary["file"].map(lambda f: Path(f).name), result.summary["n_converted"]))
    assert by_file == {f.name: _nonblank_lines(f) for f in files}


@pytest.mark.parametrize("name", ["dev.jsonl", "test_in_domain.jsonl", "test_out_domain.jsonl"])
def test_seal_tools_counts_match_lines(name):
    path = SOURCES / "seal_tools" / name
    result = load(path)
    assert len(result.instances) == _nonblank_lines(path) and not result.rejects


def test_seal_tools_finetune_python_literals_agree_with_dev():
    finetune = load(SOURCES / "seal_tools" / "dataset_for_finetune" / "dev.json")
    dev = {i.id.split("/")[-1]: i for i in load(SOURCES / "seal_tools" / "dev.jsonl").instances}
    assert len(finetune.instances) == len(_json(SOURCES / "seal_tools" / "dataset_for_finetune" / "dev.json"))
    assert not finetune.rejects
    for inst in finetune.instances:
        twin = dev[inst.id.split("/")[-1]]
        assert inst.instruction == twin.instruction
        assert [c.model_dump() for c in inst.calls] == [c.model_dump() for c in twin.calls]
        # the finetune file offers retrieved tools (distractors included); a called API the retriever
        # missed is listed in meta
        offered = {t.name for t in inst.tools}
        assert [c for c in dict.fromkeys(c.name for c in inst.calls) if c not in offered] == inst.meta.get(
            "tools_missing_from_pool", [])


# --- the reference instances ----------------------------------------------------------------------

#: Where our ToolAlpaca schemas legitimately differ from the reference instances (which were built from
#: Function_Description text alone): (API, tool, parameter) -> aspects that differ, and why.
KNOWN_TOOLALPACA_SCHEMA_DIFFS = {
    # OpenAPI marks api_key required; Function_Description shows the <REDACTED_CREDENTIAL> placeholder
    # where a description should be, so OpenAPI's description is used.
    **{("CurrencyBeacon", tool, "api_key"): {"required", "description"}
       for tool in ("latest_get", "historical_get", "timeseries_get", "currencies_get", "convert_get")},
    # Function_Description writes "Array[string]. ..." -> reference kept type string with the prefix.
    **{("Apache Superset", tool, param): {"type", "description"}
       for tool, param in (("createDashboard", "charts"), ("updateDashboard", "charts"),
                           ("managePermissions", "permissions"), ("managePermissions", "users"))},
    # Function_Description lost descriptions and Required. marks of request-body operations.
    **{("Améthyste", tool, param): {"description", "required"}
       for tool, params in (("generateAvatar", ("userId", "style", "format")),
                            ("generateServerIcon", ("serverId", "style", "format")),
                            ("generateRandomImage", ("userId", "category", "format")))
       for param in params},
}


def _reference_instances():
    path = ANNOTATIONS / "reference_dev_instances.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _without_empty(arguments):
    return None if arguments is None else {k: v for k, v in arguments.items() if v != ""}


@pytest.mark.parametrize("reference", _reference_instances(), ids=lambda r: r["id"])
def test_loader_reproduces_reference_instance(reference, shared_instances):
    by_id, _ = shared_instances
    ours = by_id[reference["id"]].to_record()
    assert ours["source"] == reference["source"]
    assert ours["instruction"] == reference["instruction"]

    # calls: the reference kept "" arguments (ToolAlpaca, BFCL) and one getDetails pseudo-call; the
    # contract drops "" and moves pseudo-calls to meta. Observations were cut to 300 chars there.
    ref_calls = [c for c in reference["calls"] if c["name"] not in PSEUDO_CALLS]
    ref_pseudo = [c["name"] for c in reference["calls"] if c["name"] in PSEUDO_CALLS]
    assert [p["name"] for p in ours["meta"]["pseudo_calls"] if p["name"] in ref_pseudo] == ref_pseudo
    assert [c["name"] for c in ours["calls"]] == [c["name"] for c in ref_calls]
    for mine, theirs in zip(ours["calls"], ref_calls):
        assert mine["raw_arguments"] == theirs["raw_arguments"]
        assert mine["arguments"] == _without_empty(theirs["arguments"])
        if theirs["observation"] is None:
            assert mine["observation"] is None
        else:
            assert mine["observation"].startswith(theirs["observation"]) and len(theirs["observation"]) <= 300

    # tools: same names in the same order; descriptions equal up to the reference's 300-char cut
    assert [t["name"] for t in ours["tools"]] == [t["name"] for t in reference["tools"]]
    api = reference["id"].split("/")[2].split("#")[0] if reference["source"].startswith("toolalpaca") else None
    for mine, theirs in zip(ours["tools"], reference["tools"]):
        assert mine["description"].startswith(theirs["description"])
        assert len(theirs["description"]) <= 300 or mine["description"] == theirs["description"]
        mine_props, ref_props = mine["parameters"]["properties"], theirs["parameters"]["properties"]
        assert list(mine_props) == list(ref_props)
        if api is None:
            assert mine["parameters"] == theirs["parameters"]
            continue
        for param in mine_props:
            differs = set()
            if mine_props[param]["type"] != ref_props[param]["type"]:
                differs.add("type")
            if mine_props[param]["description"] != ref_props[param]["description"]:
                differs.add("description")
            if (param in mine["parameters"]["required"]) != (param in theirs["parameters"]["required"]):
                differs.add("required")
            assert differs <= KNOWN_TOOLALPACA_SCHEMA_DIFFS.get((api, mine["name"], param), set()), (
                f"{mine['name']}.{param}: unexplained difference in {sorted(differs)}")


# --- detection --------------------------------------------------------------------------------------

@pytest.mark.parametrize("relative, expected", [
    ("toolalpaca/eval_simulated.json", "toolalpaca"),
    ("toolalpaca/fork_octobrist/gpt-3.5-sim-old.json", "toolalpaca"),
    ("toolbench/data_example/answer/G1_answer/10_ChatGPT_DFS_woFilter_w2.json", "toolbench"),
    ("toolbench/data_example/instruction/G2_query.json", "toolbench"),
    ("stabletoolbench/solvable_queries/test_instruction/G1_tool.json", "toolbench"),
    ("bfcl/BFCL_v4_parallel.json", "bfcl"),
    ("seal_tools/dev.jsonl", "seal_tools"),
    ("seal_tools/dataset_for_finetune/dev.json", "seal_tools"),
    ("../annotations/reference_dev_instances.jsonl", "jsonl"),
])
def test_detect_format_by_content(relative, expected):
    assert detect_format(SOURCES / relative) == expected


def test_detection_ignores_the_file_name(tmp_path):
    disguised = tmp_path / "notes.txt"
    disguised.write_bytes((SOURCES / "bfcl" / "BFCL_v4_irrelevance.json").read_bytes())
    assert detect_format(disguised) == "bfcl"


def test_companion_files_are_refused_with_a_pointer_to_the_main_file():
    with pytest.raises(InputError, match="possible_answer file"):
        detect_format(SOURCES / "bfcl" / "possible_answer" / "BFCL_v4_multiple.json")
    with pytest.raises(InputError, match="tool pool"):
        detect_format(SOURCES / "seal_tools" / "tool.jsonl")


def test_forced_format_must_match_the_content():
    with pytest.raises(InputError, match="does not look like the 'bfcl' format"):
        load(SOURCES / "seal_tools" / "dev.jsonl", format="bfcl")


# --- canonical and OpenAI chat ----------------------------------------------------------------------

def test_handwritten_canonical_jsonl_loads_without_configuration():
    path = FIXTURES / "handwritten_canonical.jsonl"
    assert detect_format(path) == "jsonl"
    result = load(path)
    assert not result.rejects
    assert [i.id for i in result.instances] == ["mine/weather/0", "mine/weather/1", "mine/weather/2"]
    assert result.instances[0].calls[0].arguments == {"city": "Paris", "days": 1, "unit": "C"}
    assert result.instances[1].calls == [] and result.instances[2].calls is None
    assert [i.to_record() for i in result.instances] == [i.to_record() for i in read_instances(path)]


def test_openai_chat_file_reads_tool_calls_legacy_calls_and_observations():
    result = load(FIXTURES / "chat_sample.jsonl")
    assert not result.rejects
    first, second, third = result.instances
    assert first.id == "chat_sample/0" and first.instruction == "Convert 100 USD to EUR."
    assert first.calls[0].arguments == {"amount": 100, "from": "USD", "to": "EUR"}
    assert first.calls[0].observation == '{"result": 92.1}'
    assert first.final_answer == "100 USD is about 92.10 EUR."
    assert first.meta["system_prompts"] == ["You are a helpful assistant."]
    assert second.calls[0].arguments is None and second.calls[0].raw_arguments == '{"expr": "2+2"'
    assert second.calls[0].observation == "4" and [t.name for t in second.tools] == ["calc"]
    assert third.id == "custom-7" and third.calls == [] and third.final_answer == "Hello!"


def test_openai_chat_round_trip_keeps_instructions_tools_calls(tmp_path, shared_instances):
    """What `toolqual select --format openai` writes, `toolqual load` reads back unchanged."""
    by_id, _ = shared_instances
    chosen = [by_id[i] for i in ("toolbench/G1/10", "toolalpaca/eval_simulated/Axolotl#6",
                                 "toolalpaca/eval_simulated/AniAPI#3", "bfcl/irrelevance/irrelevance_0",
                                 "seal_tools/dev/dev-difficult-386", "toolalpaca/fork_7b_sim/Lob.com#0")]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(to_openai_record(i, include_id=True)) + "\n" for i in chosen), encoding="utf-8")
    assert detect_format(path) == "openai"
    loaded = load(path).instances
    assert [i.id for i in loaded] == [i.id for i in chosen]
    for back, original in zip(loaded, chosen):
        assert back.instruction == original.instruction
        assert [t.model_dump() for t in back.tools] == [t.model_dump() for t in original.tools]
        assert [(c.name, c.arguments, c.observation) for c in back.calls] == [
            (c.name, c.arguments, c.observation) for c in original.calls]
        assert [c.parse_failed for c in back.calls] == [c.parse_failed for c in original.calls]
        assert back.final_answer == original.final_answer


# --- pitfalls -----------------------------------------------------------------------------------------

def test_toolbench_finish_becomes_final_answer_and_pseudo_call(shared_instances):
    by_id, _ = shared_instances
    inst = by_id["toolbench/G1/10"]
    assert "Finish" not in [c.name for c in inst.calls]
    assert [p["name"] for p in inst.meta["pseudo_calls"]] == ["Finish"]
    assert inst.final_answer.startswith("The contact details of the 'Gondrand' customs agency")
    assert inst.meta["give_up"] is False and inst.meta["valid_data"] is True
    assert "Finish" not in [t.name for t in inst.tools]


def test_toolbench_give_up_is_flagged_although_valid_data_is_true(shared_instances):
    by_id, _ = shared_instances
    raw = _json(SOURCES / "toolbench/data_example/answer/G2_answer/10_ChatGPT_DFS_woFilter_w2.json")
    assert raw["answer_generation"]["valid_data"] is True and raw["answer_generation"]["finish_type"] == "give_up"
    inst = by_id["toolbench/G2/10"]
    assert inst.meta["give_up"] is True and inst.meta["valid_data"] is True


def test_toolbench_names_are_standardized_and_keep_the_last_64_characters():
    assert standardize("Get 5-day  Forecast!") == "get_5_day_forecast"
    assert standardize("5-day Forecast") == "get_5_day_forecast"  # a leading digit gets "get_"
    assert standardize("transitaires") == "transitaires"
    assert function_name("id", "My Tool") == "is_id_for_my_tool"
    long_api = "Retrieve adverse event info by reaction, sex and age group"
    name = function_name(long_api, "Konviere DrugsAPI")
    assert len(name) == 64 and name.endswith("_for_konviere_drugsapi")
    assert name == ("retrieve_adverse_event_info_by_reaction_sex_and_age_group" + "_for_konviere_drugsapi")[-64:]


def test_toolbench_query_tools_match_answer_tools_and_recover_optional_parameters(shared_instances):
    by_id, _ = shared_instances
    answer = by_id["stabletoolbench/G1_instruction/608_DFS_woFilter_w2"]
    query = by_id["stabletoolbench/G1_instruction_query/608"]
    assert answer.instruction == query.instruction
    assert [t.name for t in answer.tools] == [t.name for t in query.tools]
    # upstream dropped the optional parameters of APIs without required ones; api_list restores them
    lost = answer.tool("get_channel_links_for_kick_com_api_kick_api")
    restored = query.tool("get_channel_links_for_kick_com_api_kick_api")
    assert lost.properties == {} and "channel_name" in restored.properties and restored.required == []
    assert query.meta["relevant_tool_names"] and set(query.meta["relevant_tool_names"]) <= {t.name for t in query.tools}


def test_toolalpaca_pseudo_calls_parse_failures_and_empty_arguments(shared_instances):
    by_id, _ = shared_instances
    superset = by_id["toolalpaca/eval_simulated/Apache Superset#6"]
    assert [p["name"] for p in superset.meta["pseudo_calls"]] == ["getDetails"]
    assert all(c.name not in PSEUDO_CALLS for inst in by_id.values() for c in inst.calls or [])
    failed = superset.calls[0]
    assert failed.arguments is None and "${targetId from getDetails}" in failed.raw_arguments and failed.parse_failed
    axolotl = by_id["toolalpaca/eval_simulated/Axolotl#6"]
    assert axolotl.calls[0].arguments == {"color": "wild", "size": "small", "page": 1}
    assert '"gender": ""' in axolotl.calls[0].raw_arguments
    assert axolotl.meta["dropped_empty_arguments"][0] == {"call_index": 0, "names": ["gender"]}
    assert "components" not in {t.name for t in axolotl.tools}


def test_toolalpaca_schema_from_openapi_by_path_and_method(shared_instances):
    by_id, _ = shared_instances
    tool = by_id["toolalpaca/eval_simulated/Axolotl#6"].tool("searchAxolotlImages")
    assert tool.properties["color"]["enum"] == ["wild", "leucistic", "albino"]
    assert tool.properties["page"]["type"] == "integer"
    fruit = by_id["toolalpaca/eval_real/Fruityvice#0"]  # projection path lacks its leading "/"
    assert fruit.tool("getFruitByName").required == ["name"]
    assert fruit.meta["schema_source"]["getFruitByName"] == "openapi"


def test_toolalpaca_required_marker_fallback_without_openapi():
    record = {
        "Name": "Demo", "Documentation": "{}",
        "Function_Description": {
            "lookup": 'Find a thing.\nParameters: {"id": "Required. integer. The id.", "tags": "Array[string]. Tags.",'
                      ' "note": "string. "}\nOutput: ok.',
            "components": "The detailed output format ...",
        },
        "Function_Projection": {"lookup": ["/lookup", "get"]},
    }
    tools, notes = build_tools(record)
    assert [t["name"] for t in tools] == ["lookup"]
    assert notes["schema_source"] == {"lookup": "function_description"}
    parameters = tools[0]["parameters"]
    assert parameters["required"] == ["id"]
    assert parameters["properties"] == {
        "id": {"type": "integer", "description": "The id."},
        "tags": {"type": "array", "description": "Tags."},
        "note": {"type": "string", "description": ""},
    }
    assert tools[0]["description"] == "Find a thing."


def test_bfcl_first_acceptable_value_and_empty_omission(shared_instances):
    by_id, _ = shared_instances
    inst = by_id["bfcl/multiple/multiple_75"]
    assert inst.calls[0].arguments == {"room": "living room"}  # period: ["", "Daily"] -> omitted
    assert inst.meta["bfcl_possible_answer"] == [{"paint_color.trends": {"room": ["living room", "Living room"],
                                                                          "period": ["", "Daily"]}}]
    assert inst.meta["bfcl_category"] == "multiple"
    nested = by_id["bfcl/live_multiple/live_multiple_0-0-0"]
    assert nested.calls[0].arguments["new_preferences"]["size"] == "large"


def test_bfcl_required_parameter_never_omitted_even_when_empty_is_listed_first(shared_instances):
    # possible_answer lists "" first for the required fuel_efficiency; BFCL's checker rejects omitting a
    # required parameter, so the gold call takes the first real value.
    by_id, _ = shared_instances
    inst = by_id["bfcl/simple_python/simple_python_200"]
    assert inst.meta["bfcl_possible_answer"][0]["calculate_emissions"]["fuel_efficiency"] == ["", 25.0]
    assert inst.calls[0].arguments["fuel_efficiency"] == 25.0
    assert "efficiency_reduction" in inst.calls[0].arguments  # optional, [0, ""]: first value kept
    # Only when "" is the sole acceptable value does the gold call omit a required parameter: that is an
    # error in the source (live_multiple_507-149-4 omits origin_airport although the user says "from LA"),
    # left for the checks to flag rather than papered over.
    omitted = set()
    for some in by_id.values():
        if not some.id.startswith("bfcl/"):
            continue
        for call, answer in zip(some.calls or [], some.meta.get("bfcl_possible_answer") or []):
            tool = some.tool(call.name)
            for param in tool.required if tool else []:
                if param not in (call.arguments or {}):
                    assert answer[call.name].get(param, [""]) in ([""], []), (some.id, param)
                    omitted.add((some.id, param))
    assert ("bfcl/live_multiple/live_multiple_507-149-4", "origin_airport") in omitted


def test_bfcl_irrelevance_has_empty_gold_calls(shared_instances):
    by_id, _ = shared_instances
    irrelevant = [i for i in by_id.values() if i.id.startswith("bfcl/irrelevance/")]
    assert len(irrelevant) == _nonblank_lines(SOURCES / "bfcl" / "BFCL_v4_irrelevance.json")
    assert all(i.calls == [] and i.meta["bfcl_category"] == "irrelevance" for i in irrelevant)


def test_bfcl_schema_types_become_json_schema():
    schema = convert_schema({"type": "dict", "properties": {
        "a": {"type": "float"}, "b": {"type": "tuple", "items": {"type": "integer"}},
        "c": {"type": "any"}, "d": {"type": "dict", "properties": {"type": {"type": "string"}}},
        "type": {"type": "boolean"}}, "required": ["a"]})
    assert schema == {"type": "object", "properties": {
        "a": {"type": "number"}, "b": {"type": "array", "items": {"type": "integer"}}, "c": {},
        "d": {"type": "object", "properties": {"type": {"type": "string"}}}, "type": {"type": "boolean"}},
        "required": ["a"]}


def test_bfcl_multi_turn_instruction_joins_user_turns(tmp_path):
    path = tmp_path / "BFCL_v4_multi_turn_demo.json"
    path.write_text(json.dumps({"id": "multi_turn_demo_0", "question": [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Open file a.txt"}],
        [{"role": "user", "content": "Now close it"}]],
        "function": [{"name": "open", "description": "", "parameters": {"type": "dict", "properties": {}}}]}) + "\n")
    (tmp_path / "possible_answer").mkdir()
    (tmp_path / "possible_answer" / path.name).write_text(
        json.dumps({"id": "multi_turn_demo_0", "ground_truth": [{"open": {"name": ["a.txt"]}}]}) + "\n")
    inst = load(path).instances[0]
    assert inst.id == "bfcl/multi_turn_demo/multi_turn_demo_0"
    assert inst.instruction == "Open file a.txt\n\nNow close it"
    assert inst.meta["system_prompts"] == ["Be brief."] and inst.meta["n_turns"] == 2


def test_seal_tools_references_to_earlier_outputs_are_kept_and_noted(shared_instances):
    by_id, _ = shared_instances
    with_refs = [i for i in by_id.values() if i.source == "seal_tools" and i.meta.get("output_references")]
    assert with_refs
    inst = with_refs[0]
    ref = inst.meta["output_references"][0]
    value = inst.calls[ref["call_index"]].arguments[ref["argument"]]
    assert ref["reference"] == value or ref["reference"] in value
    types = {p.get("type") for i in by_id.values() if i.source == "seal_tools" for t in i.tools for p in t.properties.values()}
    assert types <= {"string", "integer", "number", "boolean", "array", "object"}


def test_summary_counts_parse_failures_and_pseudo_calls():
    result = load(SOURCES / "toolalpaca" / "eval_simulated.json")
    row = result.summary.iloc[0]
    assert row["n_read"] == row["n_converted"] == 100 and row["n_rejected"] == 0
    assert row["n_parse_failures"] == sum(c.parse_failed for i in result.instances for c in i.calls)
    assert row["n_pseudo_calls"] == sum(len(i.meta["pseudo_calls"]) for i in result.instances) > 0


def test_duplicate_ids_are_rejected_the_second_time(tmp_path):
    path = FIXTURES / "handwritten_canonical.jsonl"
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    result = load([path, copy])
    assert len(result.instances) == 3 and len(result.rejects) == 3
    assert all(r.reason.startswith("duplicate id") for r in result.rejects)


def test_cli_load_of_eval_simulated_writes_exactly_100_instances(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "x.jsonl"
    result = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "load",
                             str(SOURCES / "toolalpaca" / "eval_simulated.json"), "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(read_instances(out, strict=True)) == 100 == len(out.read_text().splitlines())
    assert not (tmp_path / "x.rejects.jsonl").exists()
    assert "eval_simulated.json" in result.stdout and "TOTAL" in result.stdout
