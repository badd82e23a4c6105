"""ToolBench and StableToolBench: answer files (DFSDT / CoT trajectories) and query files.

**Answer files** (``data_example/answer/G1_answer/10_ChatGPT_DFS_woFilter_w2.json``; StableToolBench's
``virtual_chatgpt_dfs/G1_instruction/588_DFS_woFilter_w2.json``): one JSON object per file with
``answer_generation = {query, function, train_messages, final_answer, finish_type, valid_data, ...}``.
A JSON Lines file holding one such object per line is read the same way (useful for large runs; see
``benchmarks/bench_load.py``).

- Instruction: ``answer_generation.query`` (stripped). The user turn in ``train_messages`` wraps the same
  text in ``"\\n...\\nBegin!\\n"``.
- Calls: ``train_messages`` holds one message list per attempt; the **last** list is the final
  trajectory. Each assistant ``function_call`` (OpenAI legacy format, ``arguments`` a JSON *string*)
  is a call; its observation is the next ``function``-role message with the same name. Arguments are
  parsed with ``json.loads(strict=False)`` (as ToolBench's runner did); unparsable text is kept in
  ``raw_arguments`` with ``arguments`` None. Argument values are kept verbatim (``""`` included: unlike
  ToolAlpaca, ToolBench sent them to the API).
- ``Finish`` is a pseudo-call: it goes to ``meta["pseudo_calls"]``; its ``final_answer`` argument becomes
  the instance's ``final_answer`` (falling back to ``answer_generation.final_answer``). ``return_type ==
  "give_up_and_restart"`` or ``finish_type == "give_up"`` sets ``meta["give_up"] = True``:
  ``valid_data: true`` does **not** mean the task succeeded. ``valid_data``, ``finish_type`` and
  ``win`` are kept in ``meta``.
- Tools: ``answer_generation.function`` minus ``Finish``; ToolBench's non-standard ``optional`` list is
  dropped from ``parameters`` (its names stay in ``properties``). Note that upstream ToolBench lost the
  optional parameters of every API that has no required parameter (an indentation slip in
  ``api_json_to_openai_json``); answer files cannot recover them, query files can (below).
- A file without ``train_messages`` (``valid_data: false``, the search produced no answer) is rejected.

**Query files** (``G1_query.json``, StableToolBench ``solvable_queries/test_instruction/*.json``): a
JSON list of ``{query, query_id, api_list, relevant APIs}``. ``calls`` is None (no gold calls known);
``meta["relevant_apis"]`` keeps the ``[tool, api]`` pairs and ``meta["relevant_tool_names"]`` their
function names. Tools are rebuilt from ``api_list`` the way ToolBench built them -- function name
``standardize(api_name)`` (+ ``is_`` for Python keywords) ``+ "_for_" + standardize(tool_name)``, cut to
the **last** 64 characters (ToolBench keeps the tail: ``name[-64:]``), description prefixed with
``This is the subfunction for tool "<tool>"`` and cut to 256 characters, parameter types NUMBER ->
integer, STRING -> string, BOOLEAN -> boolean, anything else string, ``example_value`` from
``default`` -- except that optional parameters are always included.

Ids:

- ToolBench answers ``<G>_answer/<n>_ChatGPT_DFS_woFilter_w2.json`` -> ``toolbench/<G>/<n>``;
  other answer files -> ``<source>/<parent folder>/<file stem>``, e.g.
  ``stabletoolbench/G1_instruction/588_DFS_woFilter_w2`` and ``.../588_CoT@1``.
- JSON Lines of answers: ``<source>/<file stem>/<record id>`` where the record id is the record's
  ``id`` (or ``query_id``) field, else ``line<N>``.
- Query files: ``<source>/<file stem>[_query]/<query_id>``, e.g. ``toolbench/G1_query/1``,
  ``stabletoolbench/G1_instruction_query/588`` (``_query`` is appended when the stem does not end in it,
  so queries never share a subset with answers).
- ``<source>`` is ``stabletoolbench`` when a folder of the path is named ``stabletoolbench`` (any case),
  else ``toolbench``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, build_instance, dedupe_tools, iter_jsonl_objects, parse_arguments, pseudo_call
from ._common import raw_text, reject, tool_record

FORMAT = "toolbench"

_NON_NAME = re.compile("[^\\u4e00-\\u9fa5^a-z^A-Z^0-9^_]")
_REPEATED_UNDERSCORES = re.compile(r"(_)\1+")
_KEYWORD_NAMES = {"from", "class", "return", "false", "true", "id", "and"}
_TYPE_MAP = {"NUMBER": "integer", "STRING": "string", "BOOLEAN": "boolean"}
_DESCRIPTION_MAX = 256
_TOOLBENCH_ANSWER_STEM = re.compile(r"^(\d+)_ChatGPT_DFS_woFilter_w2$")


def standardize(text: str) -> str:
    """ToolBench's name normalisation: non-word characters -> ``_``, collapsed, lower-cased, trimmed;
    a leading digit gets ``get_``. (Its character class also keeps ``^``, reproduced here.)"""
    text = _REPEATED_UNDERSCORES.sub("_", _NON_NAME.sub("_", text)).lower().strip("_")
    if text and text[0].isdigit():
        text = "get_" + text
    return text


def change_name(name: str) -> str:
    return "is_" + name if name in _KEYWORD_NAMES else name


def function_name(api_name: str, tool_name: str) -> str:
    """``standardize(api)_for_standardize(tool)``, keeping the last 64 characters like ToolBench."""
    return (change_name(standardize(api_name)) + "_for_" + standardize(tool_name))[-64:]


def source_for(path: Path) -> str:
    return "stabletoolbench" if any(part.lower() == "stabletoolbench" for part in path.resolve().parts) else "toolbench"


def sniff(probe: Probe) -> bool:
    """An answer object (``answer_generation``), JSON Lines of them, or a list of ``{query, query_id}``."""
    if probe.kind == "jsonl":
        return isinstance(probe.first_records[0].get("answer_generation"), dict)
    if probe.kind != "json":
        return False
    if not probe.is_array:
        doc = probe.document
        return isinstance(doc, dict) and isinstance(doc.get("answer_generation"), dict)
    first = probe.first_item()  # the array's first item, without parsing the whole file
    return isinstance(first, dict) and "query" in first and "query_id" in first


# --- answers ------------------------------------------------------------------------------------

def answer_id(path: Path, source: str) -> str:
    parent = path.parent.name
    match = _TOOLBENCH_ANSWER_STEM.match(path.stem)
    if parent.endswith("_answer") and match:
        return f"{source}/{parent[: -len('_answer')]}/{match.group(1)}"
    return f"{source}/{parent}/{path.stem}"


def _finish_arguments(raw: Any) -> dict[str, Any]:
    parsed = parse_arguments(raw)
    if parsed is not None:
        return parsed
    # The runner's own fallback for a Finish whose JSON is cut short: pick the fields out of the text.
    text = raw if isinstance(raw, str) else ""
    out: dict[str, Any] = {}
    match = re.search(r'"return_type"\s*:\s*"([^"]*)"', text)
    if match:
        out["return_type"] = match.group(1)
    match = re.search(r'"final_answer"\s*:\s*"(.*)', text, re.S)
    if match:
        out["final_answer"] = match.group(1).rstrip().rstrip("}").rstrip().rstrip('"')
    return out


def convert_answer(record: dict[str, Any], *, instance_id: str, source: str, path: Path,
                   location: str) -> Instance | Reject:
    """One answer object -> an instance (or a Reject naming the missing field)."""
    generation = record.get("answer_generation")
    if not isinstance(generation, dict):
        return reject(path, location, "expected an object in 'answer_generation'", field="answer_generation",
                      record_id=instance_id)
    query = generation.get("query")
    if not isinstance(query, str) or not query.strip():
        return reject(path, location, "missing the user query", field="answer_generation.query",
                      record_id=instance_id)
    messages_lists = generation.get("train_messages")
    if not isinstance(messages_lists, list) or not messages_lists:
        return reject(
            path, location,
            f"no trajectory: 'train_messages' is missing or empty (valid_data={generation.get('valid_data')!r}); "
            "the search produced no answer to learn from",
            field="answer_generation.train_messages", record_id=instance_id,
        )
    messages = messages_lists[-1]
    if not isinstance(messages, list):
        return reject(path, location, "expected the last 'train_messages' entry to be a list of messages",
                      field="answer_generation.train_messages", record_id=instance_id)
    functions = generation.get("function") or []
    if not isinstance(functions, list):
        return reject(path, location, "expected a list of function definitions", field="answer_generation.function",
                      record_id=instance_id)
    tools = []
    for function in functions:
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or function["name"] == "Finish":
            continue
        parameters = function.get("parameters") if isinstance(function.get("parameters"), dict) else {}
        properties = parameters.get("properties") if isinstance(parameters.get("properties"), dict) else {}
        required = [r for r in parameters.get("required") or [] if isinstance(r, str)]
        tools.append(tool_record(function["name"], str(function.get("description") or ""), dict(properties), required))
    tools, dropped_tools = dedupe_tools(tools)

    finish_type = generation.get("finish_type")
    meta: dict[str, Any] = {
        "valid_data": generation.get("valid_data"),
        "finish_type": finish_type,
        "give_up": finish_type == "give_up",
        "pseudo_calls": [],
    }
    if "win" in record:
        meta["win"] = record["win"]
    if dropped_tools:
        meta["duplicate_tools_dropped"] = dropped_tools
    calls: list[dict[str, Any]] = []
    final_answer: str | None = None
    pending: dict[str, Any] | None = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        function_call = message.get("function_call")
        if role == "assistant" and isinstance(function_call, dict):
            name = str(function_call.get("name") or "")
            raw = function_call.get("arguments")
            pending = None
            if name == "Finish":
                meta["pseudo_calls"].append(pseudo_call(name, raw))
                arguments = _finish_arguments(raw)
                if arguments.get("return_type") == "give_up_and_restart":
                    meta["give_up"] = True
                if isinstance(arguments.get("final_answer"), str):
                    final_answer = arguments["final_answer"]
                continue
            call = {"name": name, "arguments": parse_arguments(raw), "raw_arguments": raw_text(raw), "observation": None}
            calls.append(call)
            pending = call
        elif role == "function" and pending is not None and message.get("name") == pending["name"]:
            content = message.get("content")
            pending["observation"] = content if isinstance(content, str) or content is None else json.dumps(content, ensure_ascii=False)
            pending = None
    if final_answer is None:
        stored = generation.get("final_answer")
        if isinstance(stored, str) and stored.strip():
            parsed = _finish_arguments(stored)
            final_answer = parsed.get("final_answer") if isinstance(parsed.get("final_answer"), str) else None
    canonical = {
        "id": instance_id,
        "source": source,
        "instruction": query.strip(),
        "tools": tools,
        "calls": calls,
        "final_answer": final_answer,
        "meta": meta,
    }
    return build_instance(canonical, file=path, location=location)


# --- queries ------------------------------------------------------------------------------------

def api_to_tool(api: dict[str, Any]) -> dict[str, Any]:
    """A ToolBench ``api_list`` entry -> canonical tool (ToolBench's conversion, optional parameters kept)."""
    tool_name = standardize(str(api.get("tool_name") or ""))
    name = function_name(str(api.get("api_name") or ""), str(api.get("tool_name") or ""))
    description = f'This is the subfunction for tool "{tool_name}", you can use this tool.'
    api_description = str(api.get("api_description") or "").strip()
    if api_description:
        truncated = api_description.replace(str(api.get("api_name") or ""), name)[:_DESCRIPTION_MAX]
        description += f'The description of this function is: "{truncated}"'
    properties: dict[str, Any] = {}
    required: list[str] = []
    for group, is_required in (("required_parameters", True), ("optional_parameters", False)):
        for param in api.get(group) or []:
            if not isinstance(param, dict):
                continue
            param_name = change_name(standardize(str(param.get("name") or "")))
            spec: dict[str, Any] = {
                "type": _TYPE_MAP.get(str(param.get("type")), "string"),
                "description": str(param.get("description") or "")[:_DESCRIPTION_MAX],
            }
            default = param.get("default")
            if default is not None and len(str(default)) != 0:
                spec["example_value"] = default
            properties[param_name] = spec
            if is_required:
                required.append(param_name)
    return tool_record(name, description, properties, required)


def query_subset(path: Path) -> str:
    stem = path.stem
    return stem if stem.endswith("query") else stem + "_query"


def convert_query(record: Any, *, path: Path, source: str, index: int) -> Instance | Reject:
    location = f"index {index}"
    if not isinstance(record, dict):
        return reject(path, location, "expected an object with 'query' and 'query_id'")
    query_id = record.get("query_id")
    instance_id = f"{source}/{query_subset(path)}/{query_id}"
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        return reject(path, location, "missing the user query", field="query", record_id=instance_id)
    if query_id is None:
        return reject(path, location, "missing the query id", field="query_id")
    api_list = record.get("api_list") or []
    if not isinstance(api_list, list):
        return reject(path, location, "expected a list of APIs", field="api_list", record_id=instance_id)
    tools, dropped = dedupe_tools([api_to_tool(api) for api in api_list if isinstance(api, dict)])
    relevant = record.get("relevant APIs") or []
    meta: dict[str, Any] = {
        "query_id": query_id,
        "relevant_apis": relevant,
        "relevant_tool_names": [function_name(str(pair[1]), str(pair[0])) for pair in relevant
                                if isinstance(pair, (list, tuple)) and len(pair) == 2],
        "pseudo_calls": [],
    }
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    canonical = {
        "id": instance_id, "source": source, "instruction": query.strip(), "tools": tools,
        "calls": None, "final_answer": None, "meta": meta,
    }
    return build_instance(canonical, file=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    """Convert one answer file, a JSON Lines file of answers, or a query file."""
    source = source_for(path)
    if probe.kind == "jsonl":
        for line_no, item in iter_jsonl_objects(path):
            if isinstance(item, Reject):
                yield item
                continue
            record_key = item.get("id", item.get("query_id"))
            record_key = f"line{line_no}" if record_key is None else str(record_key)
            yield convert_answer(item, instance_id=f"{source}/{path.stem}/{record_key}", source=source,
                                 path=path, location=f"line {line_no}")
        return
    doc = probe.document
    if isinstance(doc, dict):
        yield convert_answer(doc, instance_id=answer_id(path, source), source=source, path=path, location="document")
        return
    for index, record in enumerate(doc):
        yield convert_query(record, path=path, source=source, index=index)
