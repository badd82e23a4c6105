"""BFCL (Berkeley Function-Calling Leaderboard) question files with their ``possible_answer`` files.

Files are **JSON Lines despite the ``.json`` extension**: one ``{"id", "question", "function"}`` per line.
The gold answer lives in a companion file with the same name under ``possible_answer/`` (searched beside
the question file, in ``possible_answer/`` next to it, and in ``../possible_answer/``): one
``{"id", "ground_truth": [{func_name: {arg: [acceptable values...]}}]}`` per line, matched by ``id``.

- Category: the file stem without the ``BFCL_v<N>_`` prefix (``BFCL_v4_live_multiple`` ->
  ``live_multiple``), kept in ``meta["bfcl_category"]``; ids are ``bfcl/<category>/<id>``.
- Schemas use Python-flavoured types, converted recursively to JSON Schema: ``dict`` -> ``object``,
  ``float`` -> ``number``, ``tuple`` -> ``array``, ``int`` -> ``integer``, ``str`` -> ``string``,
  ``bool`` -> ``boolean``, ``list`` -> ``array``, ``any`` -> no ``type`` at all (any value).
- Gold call: one call per ``ground_truth`` entry, in the listed order (BFCL treats parallel calls as
  order-free; the order here is only the file's). Each argument takes its **first** acceptable value;
  an argument whose first acceptable value is ``""`` ("may be omitted") is left out. Nested objects are
  resolved the same way (their values are again lists of acceptable values).
  ``meta["bfcl_possible_answer"]`` keeps ``ground_truth`` verbatim, so matchers can accept any listed
  value. Gold calls have no ``raw_arguments`` (the source has no argument text).
- Irrelevance files (category containing ``irrelevance``) have no possible_answer: the gold answer is
  "call nothing", so ``calls == []``.
- Any other question file whose possible_answer file is missing cannot be scored against gold calls:
  its instances get ``calls = None`` and ``meta["bfcl_possible_answer_missing"] = True``; a question
  whose id is absent from an existing possible_answer file is rejected.
- ``question`` is a list of turns, each a list of messages. The instruction is the content of every
  ``user`` message, in order, joined by a blank line (multi-turn conversations become one request);
  ``system`` messages go to ``meta["system_prompts"]``; ``meta["n_turns"]`` keeps the turn count.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, build_instance, dedupe_tools, iter_jsonl_objects, reject, tool_record

FORMAT = "bfcl"

TYPE_MAP = {
    "dict": "object", "object": "object",
    "float": "number", "number": "number", "double": "number",
    "int": "integer", "integer": "integer", "long": "integer",
    "str": "string", "string": "string", "char": "string", "String": "string",
    "bool": "boolean", "boolean": "boolean", "Boolean": "boolean",
    "list": "array", "array": "array", "tuple": "array", "ArrayList": "array", "Array": "array",
    "HashMap": "object", "Hashtable": "object", "map": "object",
    "null": "null",
}
_STEM_PREFIX = re.compile(r"^BFCL_v\d+_")
_SCHEMA_KEYS_WITH_SCHEMA_VALUES = ("items", "additionalProperties")


def sniff(probe: Probe) -> bool:
    if probe.kind != "jsonl":
        return False
    first = probe.first_records[0]
    return "question" in first and "function" in first and "id" in first


def is_possible_answer_file(probe: Probe) -> bool:
    first = probe.first_records[0] if probe.kind == "jsonl" and probe.first_records else {}
    return "ground_truth" in first and "id" in first and "question" not in first


def category_for(path: Path) -> str:
    return _STEM_PREFIX.sub("", path.stem)


def find_possible_answer(path: Path) -> Path | None:
    """The companion possible_answer file of a question file, or None."""
    for candidate in (
        path.parent / "possible_answer" / path.name,
        path.parent.parent / "possible_answer" / path.name,
    ):
        if candidate.is_file() and candidate.resolve() != path.resolve():
            return candidate
    return None


def convert_schema(schema: Any) -> Any:
    """BFCL's Python-flavoured schema -> JSON Schema (recursive; unknown type names become no type)."""
    if isinstance(schema, list):
        return [convert_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            if isinstance(value, str):
                mapped = TYPE_MAP.get(value)
                if mapped is not None:
                    out["type"] = mapped
                # "any" (or an unknown name) -> no type constraint
            elif isinstance(value, list):
                out["type"] = [TYPE_MAP.get(v, v) for v in value if isinstance(v, str) and v in TYPE_MAP]
            continue
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {name: convert_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_KEYS_WITH_SCHEMA_VALUES and isinstance(value, dict):
            out[key] = convert_schema(value)
        else:
            out[key] = value
    return out


def first_acceptable(alternatives: Any, *, required: bool = False) -> tuple[bool, Any]:
    """(present, value) for one argument's list of acceptable values: the first one, resolved.

    ``""`` as first value means "may be omitted" -> (False, None). For a parameter the schema marks
    required, BFCL's own checker rejects an omission, so the first non-``""`` value is used instead
    (some possible answers list ``""`` first for required parameters, e.g. ``simple_python_200``).
    """
    if not isinstance(alternatives, list):
        return True, _resolve_value(alternatives)
    if required:
        alternatives = [value for value in alternatives if value != ""]
    if not alternatives:
        return False, None
    first = alternatives[0]
    if first == "":
        return False, None
    return True, _resolve_value(first)


def _resolve_value(value: Any) -> Any:
    """Nested possible answers: a dict whose values are lists of alternatives -> a plain dict."""
    if isinstance(value, dict):
        out = {}
        for key, alternatives in value.items():
            present, resolved = first_acceptable(alternatives)
            if present:
                out[key] = resolved
        return out
    if isinstance(value, list):
        return [_resolve_value(item) if isinstance(item, dict) else item for item in value]
    return value


def gold_calls(ground_truth: Any, required: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Gold calls from a BFCL ground_truth list; ``required`` maps function name -> required params."""
    required = required or {}
    calls = []
    for entry in ground_truth:
        if not isinstance(entry, dict):
            raise ValueError("each ground_truth entry must be {function name: {argument: [values]}}")
        for name, arguments in entry.items():
            if not isinstance(arguments, dict):
                raise ValueError(f"arguments of {name!r} must be an object of acceptable-value lists")
            resolved = {}
            for arg, alternatives in arguments.items():
                present, value = first_acceptable(alternatives, required=arg in required.get(name, ()))
                if present:
                    resolved[arg] = value
            calls.append({"name": name, "arguments": resolved, "raw_arguments": None, "observation": None})
    return calls


def _load_answers(answer_path: Path) -> tuple[dict[str, Any], list[Reject]]:
    answers: dict[str, Any] = {}
    problems: list[Reject] = []
    for _line_no, item in iter_jsonl_objects(answer_path):
        if isinstance(item, Reject):
            problems.append(item)
            continue
        if "id" in item:
            answers[str(item["id"])] = item.get("ground_truth")
    return answers, problems


def _instruction(question: Any) -> tuple[str, list[str], int]:
    turns = question if isinstance(question, list) else []
    if turns and all(isinstance(m, dict) for m in turns):  # a flat list of messages: one turn
        turns = [turns]
    users, systems = [], []
    for turn in turns:
        for message in turn if isinstance(turn, list) else []:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if not isinstance(content, str):
                continue
            if message.get("role") == "user":
                users.append(content)
            elif message.get("role") == "system":
                systems.append(content)
    return "\n\n".join(users), systems, len(turns)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    category = category_for(path)
    irrelevance = "irrelevance" in category
    answer_path = None if irrelevance else find_possible_answer(path)
    answers: dict[str, Any] | None = None
    if answer_path is not None:
        answers, problems = _load_answers(answer_path)
        yield from problems
    for line_no, item in iter_jsonl_objects(path):
        if isinstance(item, Reject):
            yield item
            continue
        location = f"line {line_no}"
        raw_id = item.get("id")
        instance_id = f"bfcl/{category}/{raw_id}"
        if raw_id is None:
            yield reject(path, location, "missing the question id", field="id")
            continue
        instruction, systems, n_turns = _instruction(item.get("question"))
        if not instruction:
            yield reject(path, location, "no user message in 'question'", field="question", record_id=instance_id)
            continue
        functions = item.get("function")
        if not isinstance(functions, list):
            yield reject(path, location, "expected a list of function definitions", field="function",
                         record_id=instance_id)
            continue
        tools = []
        for function in functions:
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                continue
            parameters = convert_schema(function.get("parameters") or {})
            properties = parameters.get("properties") if isinstance(parameters.get("properties"), dict) else {}
            required = [r for r in parameters.get("required") or [] if isinstance(r, str)]
            tools.append(tool_record(function["name"], str(function.get("description") or ""), properties, required))
        tools, dropped = dedupe_tools(tools)
        meta: dict[str, Any] = {"bfcl_category": category, "pseudo_calls": []}
        if systems:
            meta["system_prompts"] = systems
        if n_turns > 1:
            meta["n_turns"] = n_turns
        if dropped:
            meta["duplicate_tools_dropped"] = dropped
        if irrelevance:
            calls: list[dict[str, Any]] | None = []
        elif answers is None:
            calls = None
            meta["bfcl_possible_answer_missing"] = True
        else:
            ground_truth = answers.get(str(raw_id))
            if ground_truth is None:
                yield reject(path, location, f"no possible answer with this id in {answer_path}",
                             field="id", record_id=instance_id)
                continue
            try:
                calls = gold_calls(ground_truth, {tool["name"]: tool["parameters"].get("required", []) for tool in tools})
            except ValueError as exc:
                yield reject(answer_path, f"id {raw_id}", str(exc), field="ground_truth", record_id=instance_id)
                continue
            meta["bfcl_possible_answer"] = ground_truth
        canonical = {
            "id": instance_id, "source": "bfcl", "instruction": instruction, "tools": tools,
            "calls": calls, "final_answer": None, "meta": meta,
        }
        yield build_instance(canonical, file=path, location=location)


def answers_path_note(path: Path) -> str | None:
    """A short note for the summary when a non-irrelevance question file has no possible_answer."""
    if "irrelevance" in category_for(path) or find_possible_answer(path) is not None:
        return None
    return f"no possible_answer/{path.name} found: calls left unknown (None)"


__all__ = ["FORMAT", "sniff", "iter_records", "convert_schema", "gold_calls", "find_possible_answer",
           "is_possible_answer_file", "category_for", "answers_path_note"]
