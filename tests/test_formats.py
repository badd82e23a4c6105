"""The training-set formats of issue 9: xLAM/APIGen, ToolACE, Hermes and LLaMA-Factory ShareGPT, Glaive,
ToolLLaMA, OpenAI chat multi-turn; multi-turn dialogues; containers (Parquet, datasets folders, gzip,
streamed arrays).

Fixtures in tests/fixtures/formats/ were written by hand from each format's published description (the
loaders' docstrings cite them) and include the pitfalls each format is known for.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolqual_utils.checks import find_issues
from toolqual_utils.errors import InputError
from toolqual_utils.judge.context import build_context
from toolqual_utils.loaders import detect_format, load
from toolqual_utils.loaders._common import probe_file
from toolqual_utils.loaders.xlam import xlam_type
from toolqual_utils.verdicts import Status
from conftest import ROOT

FORMATS = ROOT / "tests" / "fixtures" / "formats"

#: fixture -> (format, instance ids in order, {reject location: (field, words in the reason)})
EXPECTED = {
    "xlam_sample.json": ("xlam", [f"xlam/xlam_sample/{i}" for i in (0, 1, 2, 3, 6)],
                         {"index 4": ("tools", "neither JSON nor a Python literal"),
                          "index 5": ("query", "missing the user query")}),
    "toolace_sample.json": ("toolace", ["toolace/toolace_sample/0", "toolace/toolace_sample/1",
                                        "toolace/toolace_sample/2/turn2", "toolace/toolace_sample/2/turn3",
                                        "toolace/toolace_sample/3"],
                            {"index 4": ("system", "no JSON list of functions")}),
    "hermes_sample.json": ("sharegpt", ["5b1c7e0a-0001", "5b1c7e0a-0002/turn1", "5b1c7e0a-0002/turn2",
                                        "5b1c7e0a-0003", "5b1c7e0a-0004"],
                           {"index 4": ("conversations[1]", "each turn needs 'from'")}),
    "llamafactory_sharegpt.jsonl": ("sharegpt", [f"sharegpt/llamafactory_sharegpt/{i}" for i in range(3)], {}),
    "glaive_sample.json": ("glaive", [f"glaive/glaive_sample/{i}" for i in range(4)],
                           {"index 4": ("chat", "expected the dialogue text")}),
    "toolllama_sample.json": ("toolllama", [f"toolllama/toolllama_sample/{i}" for i in (2, 3, 4)],
                              {"index 5": ("conversations[0]", "no API list")}),
    "openai_multiturn.jsonl": ("openai", ["openai_multiturn/0/turn1", "openai_multiturn/0/turn2", "openai_multiturn/1",
                                          "support/7/turn2"],
                               {"line 4": ("messages", "expected a list of messages")}),
}


def by_id(result):
    return {instance.id: instance for instance in result.instances}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_format_loads_with_exact_counts_and_located_rejects(name):
    fmt, ids, rejects = EXPECTED[name]
    assert detect_format(FORMATS / name) == fmt
    result = load(FORMATS / name)
    assert [i.id for i in result.instances] == ids
    assert {r.location: r.field for r in result.rejects} == {loc: field for loc, (field, _) in rejects.items()}
    for reject in result.rejects:
        assert rejects[reject.location][1] in reject.reason
        assert reject.file.endswith(name)
    row = result.summary.iloc[0]
    assert (row["format"], row["n_converted"], row["n_rejected"]) == (fmt, len(ids), len(rejects))


def test_cli_loads_every_format_in_one_folder_without_traceback(tmp_path):
    out = tmp_path / "all.jsonl"
    result = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "load", str(FORMATS), "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    n_instances = sum(len(ids) for _, ids, _ in EXPECTED.values())
    n_rejects = sum(len(r) for _, _, r in EXPECTED.values())
    assert len(out.read_text(encoding="utf-8").splitlines()) == n_instances
    assert len((tmp_path / "all.rejects.jsonl").read_text(encoding="utf-8").splitlines()) == n_rejects
    for fmt in ("xlam", "toolace", "sharegpt", "glaive", "toolllama", "openai"):
        assert fmt in result.stdout


# --- pitfalls, format by format -----------------------------------------------------------------------

def test_xlam_types_optionality_and_defaults_become_json_schema():
    assert xlam_type("str") == ({"type": "string"}, False)
    assert xlam_type("int, optional") == ({"type": "integer"}, True)
    assert xlam_type("List[str]") == ({"type": "array", "items": {"type": "string"}}, False)
    assert xlam_type("Union[int, float], optional") == ({"type": ["integer", "number"]}, True)
    assert xlam_type("Dict[str, Any]") == ({"type": "object"}, False)
    assert xlam_type("Callable") == ({}, False)
    instances = by_id(load(FORMATS / "xlam_sample.json"))
    weather = instances["xlam/xlam_sample/0"].tool("get_weather")
    assert weather.required == ["city"]  # days is optional, unit has a default
    assert weather.properties["unit"] == {"type": "string", "description": "C or F.", "default": "C"}
    parallel = instances["xlam/xlam_sample/1"]
    assert [c.name for c in parallel.calls] == ["stock_quote", "convert_currency"]
    assert parallel.meta["call_batches"] == [2] and parallel.final_answer is None
    assert instances["xlam/xlam_sample/2"].calls == []  # "[]": call nothing
    # tools already parsed, answers as a Python literal, arguments as a JSON string
    recipes = instances["xlam/xlam_sample/3"]
    assert recipes.calls[0].arguments == {"ingredients": ["leeks", "potatoes"], "max_minutes": 40}
    broken = instances["xlam/xlam_sample/6"].calls[0]
    assert broken.parse_failed and broken.raw_arguments == "{'city': Rome}"


def test_toolace_python_calls_are_parsed_with_ast_and_failures_flagged():
    instances = by_id(load(FORMATS / "toolace_sample.json"))
    parallel = instances["toolace/toolace_sample/1"]
    # a dotted name, a positional argument named from the schema, Python True, single quotes
    assert [(c.name, c.arguments) for c in parallel.calls] == [
        ("exchange.rate", {"base": "EUR", "quote": "JPY", "inverse": True}), ("Get Weather", {"city": "Kyoto"})]
    assert json.loads(parallel.calls[1].observation)["results"] == {"temperature": 24}  # results in order
    tool = instances["toolace/toolace_sample/0"].tool("Get Weather")
    assert tool.parameters["properties"]["unit"]["enum"] == ["C", "F"]
    hotels = instances["toolace/toolace_sample/2/turn2"].tool("Find Hotels")
    assert hotels.properties["max_price"]["type"] == "number"  # ToolACE's "float"
    flagged = instances["toolace/toolace_sample/3"].calls[0]
    assert flagged.name == "Search News" and flagged.parse_failed and "since=last_week" in flagged.raw_arguments
    assert instances["toolace/toolace_sample/0"].meta["system_prompt_lists_tools"] is True


def test_hermes_python_literal_tools_and_calls_parallel_blocks_and_broken_block():
    instances = by_id(load(FORMATS / "hermes_sample.json"))
    first = instances["5b1c7e0a-0001"]
    assert first.source == "hermes" and [t.name for t in first.tools] == ["get_stock_price"]
    assert first.calls[0].arguments == {"symbol": "TSLA"}
    assert "'halted': False" in first.calls[0].observation  # the response kept verbatim
    assert first.meta["category"] == "Finance" and first.meta["system_prompt_lists_tools"] is True
    parallel = instances["5b1c7e0a-0003"]
    assert [c.arguments for c in parallel.calls] == [{"symbol": "AAPL"}, {"text": "call Sam", "time": "17:00"}]
    assert ['"price": 189.9' in (parallel.calls[0].observation or ""), '"ok": true' in (parallel.calls[1].observation or "")] == [True, True]
    assert parallel.meta["call_batches"] == [2]
    broken = instances["5b1c7e0a-0004"].calls[0]
    assert broken.name == "get_news" and broken.parse_failed


def test_llamafactory_sharegpt_function_call_and_observation_turns():
    instances = by_id(load(FORMATS / "llamafactory_sharegpt.jsonl"))
    rate = instances["sharegpt/llamafactory_sharegpt/0"]
    assert rate.calls[0].arguments == {"base": "EUR", "target": "JPY"} and rate.calls[0].observation == '{"rate": 163.2}'
    assert rate.meta["system_prompts"] == ["You are a helpful assistant."]
    tips = instances["sharegpt/llamafactory_sharegpt/1"]  # a list in one function_call turn, results as a list
    assert [c.observation for c in tips.calls] == ['{"tip": 12.0}', '{"tip": 9.0}']
    assert instances["sharegpt/llamafactory_sharegpt/2"].calls == []


def test_glaive_single_quoted_arguments_results_without_ids_and_no_call_dialogues():
    instances = by_id(load(FORMATS / "glaive_sample.json"))
    converted = instances["glaive/glaive_sample/0"]
    assert converted.calls[0].arguments == {"amount": 1000, "from": "USD", "to": "EUR"}
    assert "918.5" in converted.calls[0].observation and converted.final_answer.startswith("1000 US dollars")
    movie = instances["glaive/glaive_sample/1"]  # one tool-calling turn (the second user message)
    assert movie.instruction == "Inception, from 2010." and movie.meta["turn"] == 2
    assert [t.role for t in movie.context] == ["user", "assistant"]
    chit_chat = instances["glaive/glaive_sample/2"]
    assert chit_chat.calls == [] and chit_chat.tools == []
    assert find_issues([chit_chat]) == []  # no tool offered: calling nothing is not a missing call
    refusal = instances["glaive/glaive_sample/1"].model_copy(update={"calls": []})
    assert [f.check for f in find_issues([refusal])] == ["no_call_for_request"]  # tools offered: still flagged
    failed = instances["glaive/glaive_sample/3"].calls[0]
    assert failed.parse_failed and failed.raw_arguments == '{"bill": 50, "tip_percent": }'


def test_toolllama_step_records_merge_into_one_trajectory():
    instances = by_id(load(FORMATS / "toolllama_sample.json"))
    lyon = instances["toolllama/toolllama_sample/2"]
    assert [c.name for c in lyon.calls] == ["search_hotels_for_booking_api", "hotel_reviews_for_booking_api"]
    assert lyon.calls[1].arguments == {"hotel_id": "LY-20931"} and "LY-20931" in lyon.calls[0].observation
    assert len(lyon.meta["toolllama_record_ids"]) == 3 and lyon.meta["pseudo_calls"][0]["name"] == "Finish"
    assert lyon.final_answer.startswith("Hotel des Celestins") and lyon.meta["give_up"] is False
    assert "Finish" not in [t.name for t in lyon.tools] and "optional" not in lyon.tools[0].parameters
    assert lyon.instruction.endswith("reviews of the first one.")  # "Begin!" removed
    gave_up = instances["toolllama/toolllama_sample/3"]
    assert gave_up.calls == [] and gave_up.meta["give_up"] is True
    assert instances["toolllama/toolllama_sample/4"].calls[0].parse_failed


def test_openai_tool_messages_without_ids_object_arguments_and_weight_zero_context():
    instances = by_id(load(FORMATS / "openai_multiturn.jsonl"))
    weather = instances["openai_multiturn/1"]
    assert [(c.arguments["city"], c.observation) for c in weather.calls] == [("Bergen", "rain, 9 °C"),
                                                                            ("Tromsø", "snow, -2 °C")]
    exported = instances["support/7/turn2"]  # weight 0: the first turn is context, not an instance
    assert exported.instruction == "It arrived damaged, refund it." and len(exported.context) == 3
    assert exported.context[1].calls[0].observation.startswith('{"order_id": "BK-7001"')


# --- multi-turn ------------------------------------------------------------------------------------------

def test_two_tool_calling_turns_make_two_instances_and_earlier_results_ground_the_second():
    instances = by_id(load(FORMATS / "hermes_sample.json"))
    first, second = instances["5b1c7e0a-0002/turn1"], instances["5b1c7e0a-0002/turn2"]
    assert first.context == [] and first.meta["turn"] == 1 and first.meta["n_user_turns"] == 2
    assert [t.role for t in second.context] == ["user", "assistant", "assistant"]
    assert second.context[1].calls[0].name == "search_flights"
    assert second.calls[0].arguments == {"flight_id": "UA-2231", "passenger": "Ana Ruiz"}
    # checks: flight_id comes from the first turn's tool result -> aligned, no finding at all
    assert [f for f in find_issues([second]) if f.criterion == "parameter_alignment"] == []
    # the judge's code-level argument checks settle it as supported too
    settled = {a.argument: a.settled_by for a in build_context(second).argument_checks}
    assert settled == {"flight_id": "earlier_turn_output", "passenger": "instruction_text"}
    # v2: nothing is settled in code but absences and credentials; the value is hinted as stated
    v2 = {a.argument: a for a in build_context(second, version=2).argument_checks}
    assert v2["flight_id"].settled_by is None and v2["flight_id"].in_instruction
    assert "UA-2231" in build_context(second, version=2).dialogue_text
    assert "UA-2231" not in build_context(first, version=2).dialogue_text
    # specificity asks the instruction only for what the dialogue does not already give
    assert [p.parameter for p in build_context(second).required_parameters] == ["passenger"]
    # control: the same call in a single-turn instance is ungrounded (the check can fail)
    alone = second.model_copy(update={"context": []})
    assert any(f.check == "ungrounded_value" and f.argument == "flight_id" for f in find_issues([alone]))
    assert {a.argument: a.settled_by for a in build_context(alone).argument_checks}["flight_id"] is None
    assert [p.parameter for p in build_context(alone).required_parameters] == ["flight_id", "passenger"]


def test_earlier_user_turn_grounds_values_like_the_instruction():
    instances = by_id(load(FORMATS / "toolace_sample.json"))
    booking = instances["toolace/toolace_sample/2/turn3"]  # "Book it for two nights." + hotel id from turn 2
    assert [f for f in find_issues([booking]) if f.criterion == "parameter_alignment"] == []
    search = instances["toolace/toolace_sample/2/turn2"]
    settled = {a.argument: a.settled_by for a in build_context(search).argument_checks}
    assert settled["city"] == "instruction_text"


def test_canonical_records_keep_context_and_single_turn_records_have_no_context_key(tmp_path):
    from toolqual_utils.io import read_instances, write_instances

    result = load(FORMATS / "hermes_sample.json")
    path = tmp_path / "h.jsonl"
    write_instances(result.instances, path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert "context" not in lines[0] and len(lines[2]["context"]) == 3
    assert read_instances(path, strict=True) == result.instances


# --- containers -----------------------------------------------------------------------------------------

def _xlam_records() -> list[dict]:
    return json.loads((FORMATS / "xlam_sample.json").read_text(encoding="utf-8"))


def test_parquet_file_loads_like_the_json_array(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{**r, "tools": r["tools"] if isinstance(r["tools"], str) else json.dumps(r["tools"])}
               for r in _xlam_records()]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "train-00000-of-00001.parquet")
    result = load(tmp_path / "train-00000-of-00001.parquet")
    assert [i.id.rsplit("/", 1)[1] for i in result.instances] == ["0", "1", "2", "3", "6"]
    assert [r.location for r in result.rejects] == ["row 4", "row 5"]
    assert result.summary.iloc[0]["format"] == "xlam"


@pytest.fixture
def datasets_lib(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return pytest.importorskip("datasets", reason="the datasets library is a dev dependency (pyproject [dev])")


def test_hugging_face_datasets_folder_written_by_save_to_disk(tmp_path, datasets_lib):
    hermes = json.loads((FORMATS / "hermes_sample.json").read_text(encoding="utf-8"))[:4]
    datasets_lib.Dataset.from_list(hermes).save_to_disk(str(tmp_path / "hermes_fc"))
    result = load(tmp_path / "hermes_fc")
    expected = load(FORMATS / "hermes_sample.json")
    assert [i.id for i in result.instances] == [i.id for i in expected.instances]
    assert [i.calls for i in result.instances] == [i.calls for i in expected.instances]
    assert result.summary.iloc[0]["format"] == "sharegpt"
    # a DatasetDict folder: each split is its own source, the folder's own json files are not read
    toolace = json.loads((FORMATS / "toolace_sample.json").read_text(encoding="utf-8"))[:2]
    datasets_lib.DatasetDict({"train": datasets_lib.Dataset.from_list(toolace),
                              "test": datasets_lib.Dataset.from_list(toolace[:1])}).save_to_disk(str(tmp_path / "dd"))
    split_result = load(tmp_path / "dd")
    assert sorted(Path(f).name for f in split_result.summary["file"]) == ["test", "train"]
    assert sorted(i.id for i in split_result.instances) == ["toolace/test/0", "toolace/train/0", "toolace/train/1"]
    assert split_result.summary["note"].tolist() == ["", ""]  # no "skipped" dataset_dict.json


def test_gzip_json_lines_and_gzip_arrays(tmp_path):
    (tmp_path / "chat.jsonl.gz").write_bytes(gzip.compress((FORMATS / "openai_multiturn.jsonl").read_bytes()))
    (tmp_path / "glaive.json.gz").write_bytes(gzip.compress((FORMATS / "glaive_sample.json").read_bytes()))
    chat = load(tmp_path / "chat.jsonl.gz")
    assert [i.id for i in chat.instances] == ["chat/0/turn1", "chat/0/turn2", "chat/1", "support/7/turn2"]
    assert [r.location for r in chat.rejects] == ["line 4"]
    glaive = load(tmp_path / "glaive.json.gz")
    assert [i.id for i in glaive.instances] == [f"glaive/glaive/{i}" for i in range(4)]
    canonical = ROOT / "tests" / "fixtures" / "loaders" / "handwritten_canonical.jsonl"
    (tmp_path / "mine.jsonl.gz").write_bytes(gzip.compress(canonical.read_bytes()))
    assert load(tmp_path / "mine.jsonl.gz").instances == load(canonical).instances
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress((FORMATS / "openai_multiturn.jsonl").read_bytes())[:-30])
    with pytest.raises(InputError, match="cut.jsonl.gz"):
        load(tmp_path / "cut.jsonl.gz")


def test_json_arrays_are_streamed_not_parsed_whole(tmp_path):
    probe = probe_file(FORMATS / "xlam_sample.json")
    assert probe.kind == "json" and probe.is_array and len(probe.first_records) == 5
    result = load(FORMATS / "xlam_sample.json")
    assert len(result.instances) == 5
    # the loader never asked for the whole document: a probe's lazy loader stays unused
    probe = probe_file(FORMATS / "xlam_sample.json")
    from toolqual_utils.loaders import xlam

    assert len(list(xlam.iter_records(probe.path, probe))) == 7 and probe.loaded_document is None
    assert probe.document_loader is not None


def test_truncated_array_fails_with_one_paragraph_naming_the_file(tmp_path):
    records = [{**record, "id": n} for n in range(40) for record in _xlam_records()[:1]]
    text = json.dumps(records, indent=2)
    cut = tmp_path / "cut_xlam.json"
    cut.write_text(text[: int(len(text) * 0.6)], encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load(cut)  # the head parses, the stream breaks later: the message says where
    message = str(caught.value)
    assert "cut_xlam.json" in message and "truncated" in message and "after item 23" in message
    short = tmp_path / "short_xlam.json"
    short.write_text(text[:300], encoding="utf-8")  # broken inside the first items: the full parse says so
    with pytest.raises(InputError, match="truncated"):
        load(short)


def test_readme_lists_every_format_with_a_command_that_loads_it():
    import re

    from toolqual_utils.loaders import FORMATS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Formats"):readme.index("The canonical format (one JSON object per line)")]
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| `toolqual load (\S+) --out \S+` \|$", section, re.M)
    assert {fmt for fmt, _ in rows} == set(FORMATS) - {"auto"}
    for fmt, path in rows:
        result = load(ROOT / path)
        assert result.instances and set(result.summary["format"]) - {"-"} == {fmt}, fmt


def test_specificity_heuristic_and_instance_view_read_the_whole_dialogue():
    from toolqual_utils.analysis import instance_html
    from toolqual_utils.heuristics import offline_verdicts

    instances = by_id(load(FORMATS / "hermes_sample.json"))
    second = instances["5b1c7e0a-0002/turn2"]
    verdicts = offline_verdicts([second]).set_index("criterion")
    assert verdicts.loc["specificity", "label"] == 1  # UA-2231 comes from turn 1's result
    alone = second.model_copy(update={"context": []})
    assert offline_verdicts([alone]).set_index("criterion").loc["specificity", "status"] == Status.UNSCORED_NEEDS_MODEL
    page = instance_html(second.model_copy(update={"context": [
        *second.context, second.context[0].model_copy(update={"content": "<script>x</script>"})]}))
    assert "Earlier turns (4)" in page and "search_flights(" in page and "&lt;script&gt;" in page
    assert "<script>x" not in page and "Earlier turns" not in instance_html(instances["5b1c7e0a-0001"])


def test_reports_read_a_datasets_folder_as_one_source(tmp_path, datasets_lib):
    from toolqual_utils import notebook as nb

    records = json.loads((FORMATS / "glaive_sample.json").read_text(encoding="utf-8"))[:3]
    datasets_lib.Dataset.from_list(records).save_to_disk(str(tmp_path / "glaive_hf"))
    assert nb.data_files(str(tmp_path), root=ROOT) == [tmp_path / "glaive_hf"]
    data = nb.load_data(str(tmp_path / "glaive_hf"), root=ROOT)
    assert [i.id for i in data.instances] == [f"glaive/glaive_hf/{i}" for i in range(3)]
    assert data.summary["format"].tolist() == ["glaive"]


def test_ice_demonstration_of_a_later_turn_shows_the_earlier_turns():
    from toolqual_utils.ice.prompt import EARLIER_TURNS_HEADER, demonstration_messages

    instances = by_id(load(FORMATS / "hermes_sample.json"))
    later = demonstration_messages(instances["5b1c7e0a-0002/turn2"], "json")[0]["content"]
    assert later.startswith(EARLIER_TURNS_HEADER) and "UA-2231" in later
    assert later.endswith("Book the morning one for Ana Ruiz.")
    first = demonstration_messages(instances["5b1c7e0a-0002/turn1"], "json")[0]["content"]
    assert first == "Find me a flight from BOS to DEN on 2024-05-03."  # single-turn: the instruction alone


def test_streamed_and_container_records_are_held_to_the_record_limits(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setenv("TOOLQUAL_MAX_VALUE_CHARS", "1500")
    records = _xlam_records()[:3]
    records[1] = {**records[1], "query": "x" * 2000}  # one value over the limit
    (tmp_path / "big.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
    result = load(tmp_path / "big.json")
    assert [r.location for r in result.rejects] == ["index 1"] and len(result.instances) == 2
    assert "over the limit" in result.rejects[0].reason and result.rejects[0].field == "query"
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "big.parquet")
    assert [r.location for r in load(tmp_path / "big.parquet").rejects] == ["row 1"]
    good = b'{"id": 0, "query": "q", "tools": "[]", "answers": "[]"}\n'
    (tmp_path / "nan.jsonl.gz").write_bytes(gzip.compress(good + b'{"id": 1, "query": "q", "tools": "[]", "answers": "[]", "x": NaN}\n'))
    nan = load(tmp_path / "nan.jsonl.gz")  # strict JSON, as for a plain JSON Lines file
    assert len(nan.instances) == 1 and [r.location for r in nan.rejects] == ["line 2"]
    assert "not accepted" in nan.rejects[0].reason and "NaN" in nan.rejects[0].reason
