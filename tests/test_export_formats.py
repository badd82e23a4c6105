"""Exports in the training formats (toolqual_utils.export): round trips through the loaders, system
prompts kept (or listed as dropped), and the files checked against the field names that
docs/training_formats.md documents for LLaMA-Factory, axolotl and TRL."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toolqual_utils.export import export_instances, to_llamafactory_record, to_openai_record, to_sharegpt_record
from toolqual_utils.export import to_xlam_record
from toolqual_utils.io import read_instances, write_instances
from toolqual_utils.loaders import load
from toolqual_utils.schema import PSEUDO_CALLS, Instance
from conftest import DOCS, REFERENCE_INSTANCES, ROOT

FORMATS_DIR = ROOT / "tests" / "fixtures" / "formats"
GUIDE = DOCS / "training_formats.md"
TRAINING_FORMATS = ("openai", "sharegpt", "llamafactory", "xlam")


@pytest.fixture(scope="module")
def pool() -> list[Instance]:
    """Every fixture format's instances (multi-turn, parallel, parse failures, system prompts) plus the
    reference instances (ToolAlpaca, ToolBench, BFCL, Seal-Tools)."""
    instances: list[Instance] = []
    for path in sorted(FORMATS_DIR.iterdir()):
        instances.extend(load(path).instances)
    return instances + read_instances(REFERENCE_INSTANCES, strict=True)


def _calls(instance: Instance, *, observations: bool) -> list[tuple]:
    return [(c.name, c.arguments, c.raw_arguments if c.arguments is None else None,
             c.observation if observations else None)
            for c in instance.calls or [] if c.name not in PSEUDO_CALLS]


def _tools(instance: Instance) -> list[tuple]:
    return [(t.name, t.description, t.properties, sorted(t.required)) for t in instance.tools]


def _context(instance: Instance) -> list[dict]:
    turns = []
    for turn in instance.context:
        record = turn.model_dump(mode="json")
        record["calls"] = [{**c, "raw_arguments": c["raw_arguments"] if c["arguments"] is None else None}
                           for c in record["calls"] if c["name"] not in PSEUDO_CALLS]
        turns.append(record)
    return turns


@pytest.mark.parametrize("fmt", ["canonical", *TRAINING_FORMATS])
def test_round_trip_keeps_instruction_tools_calls_and_context(tmp_path, pool, fmt):
    out = tmp_path / f"export.{fmt}.jsonl"
    result = export_instances(pool, out, fmt, include_ids=True)
    back = load(out)
    assert not back.rejects
    assert [i.id for i in back.instances] == result["ids"]
    if fmt != "canonical":
        assert set(back.summary["format"]) == {"jsonl" if fmt == "canonical" else
                                               {"llamafactory": "sharegpt"}.get(fmt, fmt)}
    originals = {i.id: i for i in pool}
    assert result["n_multi_turn"] == sum(bool(originals[i].context) for i in result["ids"]) > 0
    for loaded in back.instances:
        original = originals[loaded.id]
        assert loaded.instruction == original.instruction, loaded.id
        assert _tools(loaded) == _tools(original), loaded.id
        assert _calls(loaded, observations=fmt != "xlam") == _calls(original, observations=fmt != "xlam"), loaded.id
        assert _context(loaded) == _context(original), loaded.id
        if fmt in ("openai", "sharegpt", "llamafactory") and original.calls is not None and all(
                c.observation is not None for c in original.calls if c.name not in PSEUDO_CALLS):
            assert loaded.final_answer == original.final_answer, loaded.id


def test_parallel_batches_are_written_back_as_one_turn(pool):
    hermes = next(i for i in pool if i.id == "5b1c7e0a-0003")  # two calls in one turn, both answered
    openai = to_openai_record(hermes)
    assistant = [m for m in openai["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    assert len(assistant) == 1 and len(assistant[0]["tool_calls"]) == 2
    sharegpt = to_sharegpt_record(hermes)["conversations"]
    assert [t["from"] for t in sharegpt] == ["system", "human", "gpt", "tool", "gpt"]
    assert sharegpt[3]["value"].count("<tool_response>") == 2
    factory = to_llamafactory_record(hermes)["conversations"]
    assert [t["from"] for t in factory] == ["human", "function_call", "observation", "gpt"]
    assert len(json.loads(factory[1]["value"])) == 2
    xlam = next(i for i in pool if i.id == "xlam/xlam_sample/1")
    assert len(json.loads(to_xlam_record(xlam)["answers"])) == 2


def test_earlier_turns_are_weight_zero_context(pool):
    second = next(i for i in pool if i.id == "5b1c7e0a-0002/turn2")
    messages = to_openai_record(second)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool",
                                             "assistant"]
    assert [m.get("weight") for m in messages if m["role"] == "assistant"] == [0, 0, None, None]
    factory = to_llamafactory_record(second)["conversations"]
    assert [t.get("weight") for t in factory if t["from"] in ("gpt", "function_call")] == [0, 0, None, None]
    assert to_xlam_record(second)["context"] == [t.model_dump(mode="json") for t in second.context]


# --- issue 8: the system message of the source records ------------------------------------------------

def _with_system(prompt: str, *, lists_tools: bool = False) -> Instance:
    meta = {"system_prompts": [prompt], **({"system_prompt_lists_tools": True} if lists_tools else {})}
    return Instance.model_validate({
        "id": "shop/1", "source": "shop", "instruction": "Where is order 41?",
        "tools": [{"name": "track", "parameters": {"type": "object", "properties": {"order": {"type": "string"}},
                                                   "required": ["order"]}}],
        "calls": [{"name": "track", "arguments": {"order": "41"}, "observation": "shipped"}],
        "final_answer": "It shipped.", "meta": meta})


def test_system_prompt_of_the_source_is_written_in_every_chat_format():
    instance = _with_system("You are the assistant of a bookshop. Be brief.")
    assert to_openai_record(instance)["messages"][0] == {"role": "system",
                                                         "content": "You are the assistant of a bookshop. Be brief."}
    assert to_sharegpt_record(instance)["conversations"][0]["value"].startswith("You are the assistant of a bookshop.")
    assert to_llamafactory_record(instance)["system"] == "You are the assistant of a bookshop. Be brief."


def test_dropped_system_prompts_are_named_in_the_manifest(tmp_path):
    plain = _with_system("You are the assistant of a bookshop.")
    listing = _with_system("Functions: [{\"name\": \"track\"}]", lists_tools=True).model_copy(update={"id": "shop/2"})
    result = export_instances([plain, listing], tmp_path / "o.jsonl", "openai")
    assert result["system_prompts_dropped"]["n"] == 1 and result["system_prompts_dropped"]["ids"] == ["shop/2"]
    assert "tools" in result["system_prompts_dropped"]["reason"]
    first, second = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert first["messages"][0]["role"] == "system" and second["messages"][0]["role"] == "user"
    xlam = export_instances([plain], tmp_path / "x.jsonl", "xlam")
    assert xlam["system_prompts_dropped"] == {"n": 1, "reason": "the xLAM format has no system prompt",
                                              "ids": ["shop/1"]}


def test_select_keeps_the_system_message_end_to_end(tmp_path):
    data = tmp_path / "data.jsonl"
    write_instances([_with_system("You are the assistant of a bookshop.")], data)
    out = tmp_path / "subset.jsonl"
    result = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "select", str(data), "--recipe", "random",
                             "--size", "1", "--out", str(out), "--format", "openai"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["messages"][0] == {"role": "system", "content": "You are the assistant of a bookshop."}
    manifest = json.loads((tmp_path / "subset.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert manifest["system_prompts_dropped"]["n"] == 0


# --- the files against the field names documented for each trainer ------------------------------------------

def _checked_block(name: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"<!-- check: {re.escape(name)} -->\s*```\w*\n(.*?)```", text, re.S)
    assert match, f"docs/training_formats.md has no checked block {name!r}"
    return match.group(1)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_llamafactory_export_matches_the_documented_dataset_info_entry(tmp_path, pool):
    (entry,) = json.loads(_checked_block("llamafactory-dataset-info")).values()
    assert entry["formatting"] == "sharegpt"
    out = tmp_path / entry["file_name"]
    result = export_instances(pool, out, "llamafactory")
    columns = entry["columns"]
    # LLaMA-Factory's documented defaults for the sharegpt role tags (data/README.md)
    tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
            "observation_tag": "observation", "function_tag": "function_call", **entry.get("tags", {})}
    odd = {tags["user_tag"], tags["observation_tag"]}
    even = {tags["assistant_tag"], tags["function_tag"]}
    ends_with_result = 0
    for record in _records(out):
        turns = record[columns["messages"]]
        assert isinstance(record[columns["system"]], str)
        for tool in json.loads(record[columns["tools"]]):
            assert set(tool) == {"name", "description", "parameters"} and tool["parameters"]["type"] == "object"
        for position, turn in enumerate(turns):  # human/observation and gpt/function_call alternate
            assert turn[tags["role_tag"]] in (odd if position % 2 == 0 else even), (record["id"], position)
            assert isinstance(turn[tags["content_tag"]], str)
            if turn[tags["role_tag"]] == tags["function_tag"]:
                calls = json.loads(turn[tags["content_tag"]])
                for call in calls if isinstance(calls, list) else [calls]:
                    assert set(call) == {"name", "arguments"}
        if len(turns) % 2:
            ends_with_result += 1
            assert turns[-1][tags["role_tag"]] == tags["observation_tag"]
    assert ends_with_result == result["ends_with_tool_result"]


def _axolotl_dataset(name: str) -> dict:
    (dataset,) = yaml.safe_load(_checked_block(name))["datasets"]
    assert dataset["type"] == "chat_template" and dataset["ds_type"] == "json"
    return dataset


def test_openai_export_matches_the_documented_axolotl_and_trl_fields(tmp_path, pool):
    dataset = _axolotl_dataset("axolotl-openai")
    out = tmp_path / "clean.openai.jsonl"
    export_instances(pool, out, "openai")
    training_flag = dataset["message_field_training"]
    for record in _records(out):
        assert set(record) == {dataset["field_messages"], dataset["field_tools"]}
        for tool in record[dataset["field_tools"]]:
            assert tool["type"] == "function" and set(tool["function"]) == {"name", "description", "parameters"}
        for message in record[dataset["field_messages"]]:
            assert message["role"] in ("system", "user", "assistant", "tool")
            if training_flag in message:  # only earlier turns' assistant messages carry the flag, set to 0
                assert message["role"] == "assistant" and message[training_flag] == 0
            for call in message.get("tool_calls") or []:
                assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)
        last_user = max(i for i, m in enumerate(record["messages"]) if m["role"] == "user")
        assert all(training_flag not in m for m in record["messages"][last_user:])  # the target is trained
    trl = _checked_block("trl-columns")
    assert 'load_dataset("json"' in trl and "SFTTrainer" in trl


def test_openai_export_loads_with_the_datasets_library_as_trl_expects(tmp_path, pool, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets", reason="the datasets library is a dev dependency (pyproject [dev])")
    out = tmp_path / "clean.openai.jsonl"
    export_instances(pool, out, "openai", tool_arguments="object")
    dataset = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert {"messages", "tools"} <= set(dataset.column_names) and dataset.num_rows == len(_records(out))
    first_call = next(m for m in dataset[0]["messages"] if m.get("tool_calls"))["tool_calls"][0]
    assert isinstance(first_call["function"]["arguments"], dict)


def test_sharegpt_export_matches_the_documented_axolotl_mapping(tmp_path, pool):
    dataset = _axolotl_dataset("axolotl-sharegpt")
    out = tmp_path / "clean.sharegpt.jsonl"
    export_instances(pool, out, "sharegpt")
    mapping = dataset["message_property_mappings"]
    axolotl_default_roles = {"human", "user", "gpt", "assistant", "system", "tool"}
    for record in _records(out):
        turns = record[dataset["field_messages"]]
        assert turns[0][mapping["role"]] == "system" and "<tools>" in turns[0][mapping["content"]]
        for turn in turns:
            assert turn[mapping["role"]] in axolotl_default_roles and isinstance(turn[mapping["content"]], str)
            if dataset["message_field_training"] in turn:
                assert turn[mapping["role"]] == "gpt" and turn[dataset["message_field_training"]] == 0
