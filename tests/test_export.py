"""Export of selections (toolqual_utils.export), with an OpenAI-format round trip through the loader."""
from __future__ import annotations

import hashlib
import json

import pytest

from toolqual_utils import __version__
from toolqual_utils.errors import InputError
from toolqual_utils.export import export_instances, export_selection, manifest_path, to_openai_record, to_sharegpt_record
from toolqual_utils.io import read_instances
from toolqual_utils.loaders import load
from toolqual_utils.schema import PSEUDO_CALLS, Instance
from toolqual_utils.selection import select
from conftest import ROOT

REFERENCE = ROOT / "data" / "annotations" / "reference_dev_instances.jsonl"

TOOL = {"name": "geocode", "description": "Find a place",
        "parameters": {"type": "object", "properties": {"address": {"type": "string"}}, "required": ["address"]}}


def instance(iid: str, calls: list[dict] | None, final_answer: str | None = None) -> Instance:
    return Instance.model_validate({"id": iid, "source": "unit", "instruction": f"Where is {iid}?",
                                    "tools": [TOOL], "calls": calls, "final_answer": final_answer})


EDGE_CASES = [
    instance("seq", [{"name": "geocode", "arguments": {"address": "Paris"}, "observation": "48.85,2.35"},
                     {"name": "geocode", "arguments": {"address": "Lyon"}, "observation": "45.76,4.83"}], "Done."),
    instance("parallel", [{"name": "geocode", "arguments": {"address": "Rome"}},
                          {"name": "geocode", "arguments": {"address": "Oslo"}}], "Both found."),
    instance("broken", [{"name": "geocode", "arguments": None, "raw_arguments": "{address: ${x from f}}",
                         "observation": "error"}]),
    instance("nocall", [], "I cannot help with that."),
    instance("unknown", None),
]


def comparable_calls(inst: Instance) -> list[tuple]:
    return [(c.name, c.arguments, c.raw_arguments if c.arguments is None else None, c.observation)
            for c in inst.calls or [] if c.name not in PSEUDO_CALLS]


def test_openai_record_layouts():
    seq, parallel, broken, nocall, unknown = (to_openai_record(i) for i in EDGE_CASES)
    assert [m["role"] for m in seq["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert seq["messages"][2] == {"role": "tool", "tool_call_id": "call_0", "content": "48.85,2.35"}
    assert json.loads(seq["messages"][3]["tool_calls"][0]["function"]["arguments"]) == {"address": "Lyon"}
    assert seq["tools"][0] == {"type": "function", "function": TOOL}
    assert "id" not in seq  # a plain fine-tuning file by default
    assert [m["role"] for m in parallel["messages"]] == ["user", "assistant"]
    assert len(parallel["messages"][1]["tool_calls"]) == 2
    assert broken["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{address: ${x from f}}"
    assert nocall["messages"][-1] == {"role": "assistant", "content": "I cannot help with that."}
    assert unknown is None


def test_sharegpt_record_layouts():
    """ShareGPT with Hermes tags: tools in the system turn's <tools>, calls in <tool_call>, results in
    <tool_response> (the layout of hermes-function-calling-v1)."""
    seq = to_sharegpt_record(EDGE_CASES[0])
    assert [t["from"] for t in seq["conversations"]] == ["system", "human", "gpt", "tool", "gpt", "tool", "gpt"]
    assert "<tools>" in seq["conversations"][0]["value"] and '"name": "geocode"' in seq["conversations"][0]["value"]
    call = seq["conversations"][2]["value"]
    assert call.startswith("<tool_call>\n") and call.endswith("\n</tool_call>")
    assert json.loads(call[len("<tool_call>"):-len("</tool_call>")]) == {"name": "geocode", "arguments": {"address": "Paris"}}
    assert seq["conversations"][3]["value"] == "<tool_response>\n48.85,2.35\n</tool_response>"
    assert seq["id"] == "seq" and seq["source"] == "unit"
    parallel = to_sharegpt_record(EDGE_CASES[1])
    assert parallel["conversations"][2]["value"].count("<tool_call>") == 2 and len(parallel["conversations"]) == 3
    broken = to_sharegpt_record(EDGE_CASES[2])
    assert "{address: ${x from f}}" in broken["conversations"][2]["value"]
    assert to_sharegpt_record(EDGE_CASES[4]) is None


def test_openai_round_trip_through_the_loader(tmp_path):
    instances = read_instances(REFERENCE, strict=True) + EDGE_CASES
    out = tmp_path / "train.jsonl"
    result = export_instances(instances, out, "openai")
    assert result["skipped"] == [{"id": "unknown", "reason": result["skipped"][0]["reason"]}]
    assert result["final_answers_dropped"] >= 1  # the parallel edge case
    # the reference file has one ToolAlpaca getDetails pseudo-call inside calls: never exported as a call
    assert result["pseudo_calls_dropped"] == 1
    loaded = load(out, format="openai")
    assert not loaded.rejects and len(loaded.instances) == len(result["ids"])
    originals = {i.id: i for i in instances}
    for written_id, back in zip(result["ids"], loaded.instances):
        original = originals[written_id]
        assert back.instruction == original.instruction
        assert comparable_calls(back) == comparable_calls(original), written_id
        assert [t.name for t in back.tools] == [t.name for t in original.tools]
        if original.calls and all(c.observation is not None for c in original.calls):
            assert back.final_answer == original.final_answer
    # with ids the loader takes them back as the instance ids
    export_instances(instances, out, "openai", include_ids=True)
    assert [i.id for i in load(out, format="openai").instances] == result["ids"]


def test_export_selection_writes_manifest(tmp_path):
    instances = read_instances(REFERENCE, strict=True)
    selection = select(instances, recipe="random", size=12, seed=4)
    out = tmp_path / "subset.jsonl"
    manifest = export_selection(instances, selection, out, format="canonical", source_files=[REFERENCE],
                                extra={"command": "toolqual select ..."})
    on_disk = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    assert on_disk == manifest and manifest_path(out).name == "subset.jsonl.manifest.json"
    assert manifest["recipe"] == "random" and manifest["seed"] == 4 and manifest["n_written"] == 12
    assert manifest["ids"] == list(selection.ids) and manifest["toolqual_version"] == __version__
    assert manifest["source_files"][0]["sha256"] == hashlib.sha256(REFERENCE.read_bytes()).hexdigest()
    assert sum(manifest["by_source"].values()) == 12 and manifest["command"] == "toolqual select ..."
    assert [i.id for i in read_instances(out)] == list(selection.ids)
    with pytest.raises(InputError, match="not among the instances"):
        export_selection(instances[:3], selection, tmp_path / "x.jsonl")
    with pytest.raises(InputError, match="unknown export format"):
        export_selection(instances, selection, tmp_path / "x.jsonl", format="alpaca")  # type: ignore[arg-type]


def test_chat_exports_skip_instances_without_gold(tmp_path):
    manifest = export_selection(EDGE_CASES, [i.id for i in EDGE_CASES], tmp_path / "s.jsonl", format="sharegpt")
    assert manifest["n_selected"] == 5 and manifest["n_written"] == 4 and manifest["n_skipped"] == 1
    assert manifest["skipped"][0]["id"] == "unknown"
    lines = (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["seq", "parallel", "broken", "nocall"]
