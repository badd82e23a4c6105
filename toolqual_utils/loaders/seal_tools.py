"""Seal-Tools: dev/test JSON Lines joined with ``tool.jsonl``, and the ``dataset_for_finetune`` files.

**dev/test files** (``dev.jsonl``, ``test_in_domain.jsonl``, ``test_out_domain.jsonl``): one
``{"id", "query", "calling": [{"api", "parameters", "responses"}]}`` per line. The records do not list
their tools: the tool definitions come from ``tool.jsonl`` found beside the file (or one folder up).
The instance's tools are the APIs it calls, in first-call order (Seal-Tools' own evaluation offers the
model the called APIs plus retrieved distractors, which are not recorded in these files). A call to an
API missing from ``tool.jsonl`` is kept; the checks flag it as an unknown tool.

- Tool schemas: ``parameters`` maps name -> ``{"type", "description"}`` with Seal-Tools type names,
  converted: ``str`` -> string, ``int`` -> integer, ``float`` -> number, ``bool`` -> boolean,
  ``list`` -> array, ``dict`` -> object (``List[...]``/``Dict[...]`` likewise, unknown names -> string);
  ``required`` is the record's top-level list. ``field`` and ``responses`` go to nothing (not part of
  the canonical tool) except that response names are kept in ``meta["call_responses"]``.
- ``responses: ["API_call_0", ...]`` name each call's outputs. An argument value such as
  ``"API_call_1"`` references an earlier call's output: it is left as the value and listed in
  ``meta["output_references"]`` (``{"call_index", "argument", "reference"}``).
- Gold calls have no ``raw_arguments`` (the source stores parsed objects) and no observations.
- Ids: ``seal_tools/<stem>/<id>``, e.g. ``seal_tools/dev/dev-easy-0``.

**dataset_for_finetune/*.json**: one JSON list of ``{"id", "conversations": [{"from": "human"}, {"from":
"gpt"}]}`` whose texts are **Python literals**, not JSON: the human turn embeds ``api_list = [...]`` (the
offered tools, distractors included) and ``task_instruction = "..."``; the gpt turn is the call list.
A called API that the ``api_list`` does not offer (the retriever missed it) is listed in
``meta["tools_missing_from_pool"]``. Both are read with ``ast.literal_eval`` (the instruction is taken verbatim between its outer quotes,
since it may contain an unbalanced ``"`` of its own); here the tools are the offered ``api_list``. Ids:
``seal_tools/finetune_<stem>/<id>`` (e.g. ``seal_tools/finetune_dev/dev-easy-0``).
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import Reject
from ..schema import Instance
from ._common import Probe, build_instance, dedupe_tools, iter_jsonl_objects, reject, tool_record

FORMAT = "seal_tools"

TYPE_MAP = {
    "str": "string", "string": "string",
    "int": "integer", "integer": "integer",
    "float": "number", "number": "number",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "array": "array", "tuple": "array",
    "dict": "object", "object": "object",
}
_REFERENCE = re.compile(r"^API_call_\d+$")
_API_LIST = re.compile(r"api_list = (\[.*\])\s*\ntask_instruction = ", re.S)
_TASK = re.compile(r"\ntask_instruction = (.*?)\nOutput:", re.S)


def sniff(probe: Probe) -> bool:
    if probe.kind == "jsonl":
        first = probe.first_records[0]
        return "query" in first and "calling" in first and "id" in first
    first = probe.first_item()  # the array's first item, without parsing the whole file
    if isinstance(first, dict) and isinstance(first.get("conversations"), list):
        turns = first["conversations"]
        return bool(turns) and isinstance(turns[0], dict) and "api_list = " in str(turns[0].get("value", ""))
    return False


def is_tool_pool(probe: Probe) -> bool:
    """``tool.jsonl`` itself (a companion file, not instances)."""
    first = probe.first_records[0] if probe.kind == "jsonl" and probe.first_records else {}
    return "api_name" in first and "parameters" in first and "query" not in first


def seal_type(name: Any) -> str:
    text = str(name or "").strip()
    base = text.split("[", 1)[0].strip().lower()
    return TYPE_MAP.get(base, "string")


def convert_tool(api: dict[str, Any]) -> dict[str, Any]:
    parameters = api.get("parameters") if isinstance(api.get("parameters"), dict) else {}
    properties = {}
    for name, spec in parameters.items():
        spec = spec if isinstance(spec, dict) else {}
        properties[name] = {"type": seal_type(spec.get("type")), "description": str(spec.get("description") or "")}
    required = [r for r in api.get("required") or [] if isinstance(r, str)]
    return tool_record(str(api.get("api_name")), str(api.get("api_description") or ""), properties, required)


def find_tool_pool(path: Path) -> Path | None:
    for candidate in (path.parent / "tool.jsonl", path.parent.parent / "tool.jsonl"):
        if candidate.is_file():
            return candidate
    return None


def load_tool_pool(pool_path: Path) -> dict[str, dict[str, Any]]:
    pool: dict[str, dict[str, Any]] = {}
    for _line_no, item in iter_jsonl_objects(pool_path):
        if isinstance(item, Reject) or not isinstance(item.get("api_name"), str):
            continue
        pool.setdefault(item["api_name"], convert_tool(item))
    return pool


def _calls_and_meta(calling: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(calling, list):
        raise ValueError("expected a list of {api, parameters, responses}")
    calls, responses, references = [], [], []
    for index, step in enumerate(calling):
        if not isinstance(step, dict) or not isinstance(step.get("api"), str):
            raise ValueError(f"call {index} has no 'api' name")
        arguments = step.get("parameters") if step.get("parameters") is not None else {}
        if not isinstance(arguments, dict):
            raise ValueError(f"call {index}: 'parameters' must be an object")
        for argument, value in arguments.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, str) and _REFERENCE.match(item):
                    references.append({"call_index": index, "argument": argument, "reference": item})
        calls.append({"name": step["api"], "arguments": dict(arguments), "raw_arguments": None, "observation": None})
        responses.append(step.get("responses") or [])
    meta: dict[str, Any] = {"pseudo_calls": [], "call_responses": responses}
    if references:
        meta["output_references"] = references
    return calls, meta


def _iter_dev(path: Path) -> Iterator[Instance | Reject]:
    pool_path = find_tool_pool(path)
    if pool_path is None:
        raise InputError(
            "is a Seal-Tools file but no tool.jsonl was found beside it (or one folder up); the tool "
            "definitions live there. Copy tool.jsonl next to the file.",
            file=str(path),
        )
    pool = load_tool_pool(pool_path)
    for line_no, item in iter_jsonl_objects(path):
        if isinstance(item, Reject):
            yield item
            continue
        location = f"line {line_no}"
        raw_id = item.get("id")
        instance_id = f"seal_tools/{path.stem}/{raw_id}"
        if raw_id is None or not isinstance(item.get("query"), str):
            yield reject(path, location, "missing 'id' or 'query'", field="id" if raw_id is None else "query")
            continue
        try:
            calls, meta = _calls_and_meta(item.get("calling"))
        except ValueError as exc:
            yield reject(path, location, str(exc), field="calling", record_id=instance_id)
            continue
        names = list(dict.fromkeys(call["name"] for call in calls))
        tools = [pool[name] for name in names if name in pool]
        missing = [name for name in names if name not in pool]
        if missing:
            meta["tools_missing_from_pool"] = missing
        canonical = {
            "id": instance_id, "source": "seal_tools", "instruction": item["query"], "tools": tools,
            "calls": calls, "final_answer": None, "meta": meta,
        }
        yield build_instance(canonical, file=path, location=location)


def _task_text(quoted: str) -> str:
    """The instruction between the outer quotes. Not ``literal_eval``: 109 of 700 dev instructions hold
    an unbalanced ``"`` of their own (``... with the ID "rOBhSVKGVKe."``), so the text is taken verbatim."""
    text = quoted.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _iter_finetune(path: Path, document: list[Any]) -> Iterator[Instance | Reject]:
    for index, item in enumerate(document):
        location = f"index {index}"
        raw_id = item.get("id") if isinstance(item, dict) else None
        instance_id = f"seal_tools/finetune_{path.stem}/{raw_id}"
        try:
            turns = item["conversations"]
            human = next(t["value"] for t in turns if t.get("from") == "human")
            answer = next(t["value"] for t in turns if t.get("from") == "gpt")
            api_list = ast.literal_eval(_API_LIST.search(human).group(1))
            instruction = _task_text(_TASK.search(human).group(1))
            calling = ast.literal_eval(answer.strip())
        except (KeyError, TypeError, StopIteration, AttributeError, ValueError, SyntaxError) as exc:
            yield reject(path, location, f"cannot read the Python-literal conversation ({type(exc).__name__})",
                         field="conversations", record_id=instance_id if raw_id is not None else None)
            continue
        try:
            calls, meta = _calls_and_meta(calling)
        except ValueError as exc:
            yield reject(path, location, str(exc), field="conversations[gpt]", record_id=instance_id)
            continue
        tools, dropped = dedupe_tools([convert_tool(api) for api in api_list if isinstance(api, dict)])
        if dropped:
            meta["duplicate_tools_dropped"] = dropped
        offered = {tool["name"] for tool in tools}
        missing = [name for name in dict.fromkeys(call["name"] for call in calls) if name not in offered]
        if missing:
            meta["tools_missing_from_pool"] = missing
        canonical = {
            "id": instance_id, "source": "seal_tools", "instruction": str(instruction), "tools": tools,
            "calls": calls, "final_answer": None, "meta": meta,
        }
        yield build_instance(canonical, file=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    if probe.kind == "jsonl":
        yield from _iter_dev(path)
    else:
        yield from _iter_finetune(path, probe.document)


__all__ = ["FORMAT", "sniff", "iter_records", "convert_tool", "is_tool_pool", "find_tool_pool"]
