"""xLAM / APIGen function-calling data: ``{"id", "query", "tools", "answers"}`` per record.

Published description: the dataset card of ``Salesforce/xlam-function-calling-60k`` on the Hugging
Face Hub (README, "JSON Data Format for Query and Answers"): ``query`` is the user request, ``tools``
the available APIs, ``answers`` the verified calls; the released file ``xlam_function_calling_60k.json``
is one JSON array of 60,000 records. APIGen paper: Liu et al., "APIGen: Automated Pipeline for
Generating Verifiable and Diverse Function-Calling Datasets" (arXiv:2406.18518).

Read from a JSON array (streamed: the 60K file loads in flat memory), JSON Lines, Parquet, a Hugging
Face ``datasets`` folder or gzip (:mod:`~toolqual_utils.loaders.containers`).

Pitfalls handled:

- ``tools`` and ``answers`` are **JSON strings** in the released file (the card shows them as lists;
  mirrors and Parquet conversions keep the strings, some re-uploads parse them): both are accepted. A
  string that is not JSON is tried as a Python literal; otherwise the record is rejected naming the
  field.
- Tool parameters are **not JSON Schema** but a flat mapping ``name -> {"type", "description",
  "default"}`` with Python type names: ``str``, ``int``, ``float``, ``bool``, ``List[str]``,
  ``Dict[str, Any]``, ``Tuple[int, int]``, ``Union[int, float]``, ``Callable``, ``Any``... and an
  ``", optional"`` suffix. They are mapped to JSON Schema: ``str`` -> string, ``int`` -> integer,
  ``float`` -> number, ``bool`` -> boolean, ``List[X]``/``list``/``Tuple``/``Set`` -> array (with
  ``items`` when X maps), ``Dict``/``dict``/``object`` -> object, ``Union[...]`` -> a type list when every
  member maps, anything else (``Any``, ``Callable``) -> no type constraint. A parameter is **required** unless its type says ``optional`` or it has a
  ``default`` (APIGen executed every answer, so a call that omits a parameter with a default ran with
  that default), or ``"required": true`` says so (toolqual's export writes it for a required parameter
  that has a default). ``default`` is kept as the JSON-Schema ``default``; other keys of a parameter
  (``enum``, ``items``, ``properties``...) are kept as given. A ``parameters`` value that is already JSON
  Schema (``{"type": "object", "properties": ...}``) is kept as is.
- ``answers`` are the gold calls ``[{"name", "arguments"}]``; several answers are **parallel calls**
  (one model turn), recorded as one batch in ``meta["call_batches"]``; ``"[]"`` means "call nothing"
  (``calls == []``). ``arguments`` given as a JSON string is parsed; text that is not a JSON object is a
  parse failure (kept in ``raw_arguments``). xLAM has no tool results and no final answer.
- A record with earlier turns written by ``toolqual select --format xlam`` carries them in a
  ``context`` field (canonical turns; xLAM consumers ignore it) and reads back unchanged.

Ids: ``xlam/<file stem>/<id>`` for a numeric ``id`` (as in the released file) or, without one, the
record's 0-based index; a non-numeric string ``id`` (toolqual's own exports write the canonical id) is
kept as is. Source ``xlam``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, build_instance, dedupe_tools, parse_arguments, raw_text, reject
from ._literals import NotALiteral, parse_value
from .containers import head_records, iter_items, source_stem

FORMAT = "xlam"

_SIMPLE_TYPES = {
    "str": "string", "string": "string", "text": "string", "char": "string",
    "int": "integer", "integer": "integer", "long": "integer",
    "float": "number", "number": "number", "double": "number", "decimal": "number",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "array": "array", "tuple": "array", "set": "array", "sequence": "array",
    "dict": "object", "object": "object", "mapping": "object", "json": "object",
    "none": "null", "null": "null",
}
_OPTIONAL = re.compile(r"\s*,\s*optional\s*$", re.IGNORECASE)
_GENERIC = re.compile(r"^\s*([A-Za-z_.]+)\s*\[(.*)\]\s*$", re.S)


def sniff(probe: Probe) -> bool:
    head = head_records(probe)
    return bool(head) and all(key in head[0] for key in ("query", "tools", "answers"))


def xlam_type(text: Any) -> tuple[dict[str, Any], bool]:
    """(JSON-Schema fragment, optional?) of an xLAM type string such as ``"List[int], optional"``."""
    if not isinstance(text, str):
        return {}, False
    optional = bool(_OPTIONAL.search(text))
    return _schema_of(_OPTIONAL.sub("", text).strip()), optional


def _schema_of(text: str) -> dict[str, Any]:
    lowered = text.strip().lower()
    if lowered.startswith("optional[") and lowered.endswith("]"):
        return _schema_of(text.strip()[len("optional["):-1])
    simple = _SIMPLE_TYPES.get(lowered.split(".")[-1])
    if simple is not None:
        return {"type": simple}
    match = _GENERIC.match(text)
    if match is None:
        return {}  # Any, Callable, a class name: no type constraint
    outer = match.group(1).split(".")[-1].lower()
    inner = [part.strip() for part in _split_types(match.group(2))]
    if outer == "union":
        members = [_schema_of(part).get("type") for part in inner]
        if members and all(isinstance(m, str) for m in members):
            unique = list(dict.fromkeys(members))
            return {"type": unique[0] if len(unique) == 1 else unique}
        return {}
    if outer == "optional" and inner:
        return _schema_of(inner[0])
    mapped = _SIMPLE_TYPES.get(outer)
    if mapped == "array":
        schema: dict[str, Any] = {"type": "array"}
        if outer != "tuple" and inner:
            items = _schema_of(inner[0])
            if items:
                schema["items"] = items
        return schema
    if mapped is not None:
        return {"type": mapped}
    return {}


def _split_types(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def convert_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """An xLAM tool (flat parameter mapping) -> canonical tool (JSON-Schema object parameters)."""
    parameters = tool.get("parameters")
    description = str(tool.get("description") or "")
    if isinstance(parameters, dict) and parameters.get("type") == "object" and isinstance(parameters.get("properties"), dict):
        required = [r for r in parameters.get("required") or [] if isinstance(r, str)]
        return {"name": str(tool["name"]), "description": description,
                "parameters": {**parameters, "required": [r for r in required if r in parameters["properties"]]}}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in (parameters or {}).items() if isinstance(parameters, dict) else []:
        spec = spec if isinstance(spec, dict) else {"type": spec}
        schema, optional = xlam_type(spec.get("type"))
        entry: dict[str, Any] = dict(schema)
        if spec.get("description") is not None:
            entry["description"] = str(spec["description"])
        if "default" in spec:
            entry["default"] = spec["default"]
        for key, value in spec.items():  # enum, items... (toolqual's own export writes them): kept as given
            if key not in ("type", "description", "default", "optional", "required"):
                entry[key] = value
        properties[str(name)] = entry
        if spec.get("required") is True or (not optional and "default" not in spec and spec.get("required") is not False):
            required.append(str(name))
    return {"name": str(tool["name"]), "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


def _decoded(record: dict[str, Any], key: str) -> tuple[Any, str | None]:
    """(value, problem) of a field that may be a JSON string, a Python literal string or already a list."""
    value = record.get(key)
    if isinstance(value, str):
        try:
            value, _how = parse_value(value)
        except NotALiteral as exc:
            return None, f"'{key}' is a string but neither JSON nor a Python literal ({str(exc)[:80]})"
    if not isinstance(value, list):
        return None, f"expected a list (or a JSON string holding one), got {type(value).__name__}"
    return value, None


def convert(record: dict[str, Any], *, instance_id: str, path: Path, location: str) -> Instance | Reject:
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        return reject(path, location, "missing the user query", field="query", record_id=instance_id)
    tools_raw, problem = _decoded(record, "tools")
    if problem:
        return reject(path, location, problem, field="tools", record_id=instance_id)
    answers, problem = _decoded(record, "answers")
    if problem:
        return reject(path, location, problem, field="answers", record_id=instance_id)
    tools = []
    for index, tool in enumerate(tools_raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            return reject(path, location, f"tool {index} has no name", field=f"tools[{index}]", record_id=instance_id)
        tools.append(convert_tool(tool))
    tools, dropped = dedupe_tools(tools)
    calls = []
    for index, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            return reject(path, location, f"answer {index} is not a {{name, arguments}} object",
                          field=f"answers[{index}]", record_id=instance_id)
        raw = answer.get("arguments", answer.get("parameters"))
        calls.append({"name": answer["name"], "arguments": parse_arguments(raw),
                      "raw_arguments": None if raw is None or isinstance(raw, dict) else raw_text(raw),
                      "observation": None})
    meta: dict[str, Any] = {"pseudo_calls": []}
    if len(calls) >= 2:
        meta["call_batches"] = [len(calls)]
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    canonical: dict[str, Any] = {
        "id": instance_id, "source": "xlam", "instruction": query, "tools": tools, "calls": calls,
        "final_answer": None, "meta": meta,
    }
    if isinstance(record.get("context"), list) and record["context"]:
        canonical["context"] = record["context"]
    return build_instance(canonical, file=path, location=location)


def instance_id_for(record: dict[str, Any], stem: str, index: int) -> str:
    given = record.get("id")
    if isinstance(given, str) and given.strip() and not given.strip().isdigit():
        return given  # a string id (toolqual's own exports write the canonical id): kept as is
    item = given if isinstance(given, (str, int)) and str(given).strip() != "" else index
    return f"xlam/{stem}/{item}"


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    stem = source_stem(path)
    for index, (location, item) in enumerate(iter_items(probe)):
        if isinstance(item, Reject):
            yield item
            continue
        yield convert(item, instance_id=instance_id_for(item, stem, index), path=path, location=location)


__all__ = ["FORMAT", "convert", "convert_tool", "iter_records", "sniff", "xlam_type"]
