"""ToolAlpaca: evaluation files (``Golden_Answers``) and the train format (``Instances``).

A ToolAlpaca file is one JSON document: a list of *tool records* (one per API: ``Name``, ``Documentation``,
``Function_Description``, ``Function_Projection``, ``Instructions`` ...). Instance ``i`` of a record is
``Instructions[i]`` with either

- ``Golden_Answers[i]`` = ``[{"Action": f, "Action_Input": "<JSON text>"}, ...]`` (evaluation files,
  source ``toolalpaca``), or
- ``Instances[i]`` = ``{"input", "output", "Final Thought", "intermediate_steps"}`` with
  ``intermediate_steps = [[[action, action_input, thought_text], observation], ...]`` (train format,
  e.g. model runs; source ``toolalpaca-train-format``). A record that has ``Instances`` is read in the
  train format even if it also carries ``Golden_Answers``.

Ids: ``toolalpaca/<subset>/<Name>#<i>``; subset ``eval_simulated`` / ``eval_real`` for the upstream
files, ``fork_7b_sim`` for ``toolalpaca-7b-sim.json``, ``fork_gpt35_sim_old`` for
``gpt-3.5-sim-old.json``, otherwise the file stem.

Pitfalls handled:

- **Parameter schemas** come from the OpenAPI spec in ``Documentation``, found by the
  ``Function_Projection[f] = [path, method]`` pair (not by ``operationId``, which is often absent or
  different); path-level and operation parameters, ``$ref`` s and the ``application/json`` request body
  are merged. Types, ``enum``, ``items`` and ``required`` come from OpenAPI. Descriptions come from the
  ``Function_Description`` text the ToolAlpaca agent was shown (the JSON after ``Parameters:``, whose
  values read ``"Required. <type>. <text>"``), falling back to OpenAPI's description when that text is
  empty or is not a parameter description (e.g. the ``<REDACTED_CREDENTIAL>`` placeholder of
  ``eval_real.json``). When OpenAPI has no operation for the function, the ``Function_Description``
  fallback alone gives the schema: ``Required.`` marks a required parameter and the leading type word
  (``string``, ``integer``, ``Array[string]``, ``Object{...}`` ...) gives the JSON-Schema type.
  A projection path without its leading ``/`` (Fruityvice) is still found.
- ``Function_Description["components"]`` describes response objects; it is not a function.
- ``Action_Input`` is JSON text that is sometimes invalid (``{"animeId": ${animeId from searchAnime}}``,
  ``"symbols": "symbols": [...]``): the raw text is kept in ``raw_arguments`` and ``arguments`` is None
  (an argument parse failure); nothing is guessed.
- ``""`` argument values mean "absent" (the generator filled every optional slot with ``""``): they are
  dropped from ``arguments``, kept in ``raw_arguments``, and listed in ``meta["dropped_empty_arguments"]``.
- ``getDetails``, ``retrievalDataFromFile``, ``getCurrentDateTime`` are agent pseudo-tools: they go to
  ``meta["pseudo_calls"]`` (name + raw arguments), never to ``calls``.
- ``[Optional]updateUserProfile``: an ``[Optional]`` prefix on a gold action marks an optional call; the
  prefix is removed from the name and the call index is listed in ``meta["optional_call_indices"]``.
- Train-format instances that hold only ``{"error": ...}`` (the run crashed) have no trajectory: they are
  rejected with the error text, not turned into instances without calls.
- Gold actions naming functions the record does not define (e.g. ``weather_metar_get`` in AviationAPI)
  are kept as calls; the checks flag them as unknown tools.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, build_instance, parse_arguments, pseudo_call, raw_text, reject, tool_record
from ._common import dedupe_tools, is_pseudo

FORMAT = "toolalpaca"

#: File name -> subset used in ids, for the files the project ships.
KNOWN_SUBSETS = {
    "eval_simulated.json": "eval_simulated",
    "eval_real.json": "eval_real",
    "toolalpaca-7b-sim.json": "fork_7b_sim",
    "gpt-3.5-sim-old.json": "fork_gpt35_sim_old",
}

_OPTIONAL_PREFIX = "[Optional]"
_FD_PARAMETERS = re.compile(r"(?:^|\n)Parameters:\s*(.*?)\n(?:Output:|$)", re.S)
_FD_TYPE = re.compile(r"^(string|integer|number|boolean|array|object|Array\[.*?\]|Object\{.*?\}|Object)\.(?:\s|$)", re.S)
_SIMPLE_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


def sniff(probe: Probe) -> bool:
    """A JSON list whose first item has ``Name`` and ``Instructions`` (and gold answers or instances)."""
    first = probe.first_item()  # the array's first item, without parsing the whole file
    if not isinstance(first, dict):
        return False
    return "Instructions" in first and ("Golden_Answers" in first or "Instances" in first) and "Name" in first


def subset_for(path: Path) -> str:
    return KNOWN_SUBSETS.get(path.name, path.stem)


def _resolve(document: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow local ``$ref`` pointers (``#/components/...``)."""
    while isinstance(node, dict) and "$ref" in node and depth < 20:
        target: Any = document
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
        depth += 1
    return node


def _json_schema(document: dict[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    """A small JSON-Schema fragment (type, enum, items, default, format, nested properties) from OpenAPI."""
    schema = _resolve(document, schema)
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _SIMPLE_TYPES:
        out["type"] = kind
    elif "properties" in schema:
        out["type"] = "object"
    if isinstance(schema.get("enum"), list):
        out["enum"] = schema["enum"]
    if "default" in schema:
        out["default"] = schema["default"]
    if depth < 4 and out.get("type") == "array" and "items" in schema:
        items = _json_schema(document, schema["items"], depth + 1)
        if items:
            out["items"] = items
    if depth < 4 and isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: _json_schema(document, sub, depth + 1) for name, sub in schema["properties"].items()
        }
    return out


def _openapi_operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict):
        return None
    item = paths.get(path)
    if item is None:
        item = paths.get("/" + path.lstrip("/")) or paths.get(path.lstrip("/"))
    item = _resolve(document, item)
    if not isinstance(item, dict):
        return None
    operation = item.get(str(method).lower())
    if not isinstance(operation, dict):
        return None
    return {"item": item, "operation": operation}


def _openapi_parameters(document: dict[str, Any], found: dict[str, Any]) -> tuple[dict[str, dict], list[str], str]:
    """(properties with schema + OpenAPI description, required names, operation description)."""
    item, operation = found["item"], found["operation"]
    properties: dict[str, dict] = {}
    required: list[str] = []
    for param in list(item.get("parameters") or []) + list(operation.get("parameters") or []):
        param = _resolve(document, param)
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            continue
        spec = _json_schema(document, param.get("schema", {}))
        spec["_openapi_description"] = str(param.get("description") or "")
        properties[param["name"]] = spec
        if param.get("required") is True or param.get("in") == "path":
            required.append(param["name"])
    body = _resolve(document, operation.get("requestBody"))
    if isinstance(body, dict) and isinstance(body.get("content"), dict):
        content = body["content"].get("application/json") or next(iter(body["content"].values()), {})
        schema = _resolve(document, (content or {}).get("schema", {}))
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            for name, sub in schema["properties"].items():
                sub_resolved = _resolve(document, sub)
                spec = _json_schema(document, sub_resolved)
                spec["_openapi_description"] = str((sub_resolved or {}).get("description") or "") if isinstance(sub_resolved, dict) else ""
                if name in properties:  # a query parameter repeated in the body: keep the richer one
                    properties[name] = {**spec, **{k: v for k, v in properties[name].items() if v}}
                else:
                    properties[name] = spec
            required.extend(r for r in schema.get("required", []) if isinstance(r, str))
    summary = str(operation.get("summary") or operation.get("description") or "")
    return properties, required, summary


def _fd_type(token: str) -> str:
    if token in _SIMPLE_TYPES:
        return token
    if token.startswith("Array"):
        return "array"
    if token.startswith("Object"):
        return "object"
    return "string"


def parse_function_description(text: str) -> tuple[str, dict[str, dict] | None]:
    """(tool description, parameters) from a ``Function_Description`` entry.

    Parameters map name -> ``{"type", "description", "required", "typed"}``; ``typed`` is False when the
    value did not start with a type word (then ``type`` defaults to ``string``). None when the
    ``Parameters:`` JSON is missing or unparsable.
    """
    text = text or ""
    description = "" if text.startswith("Parameters:") else text.split("\nParameters:")[0].strip()
    match = _FD_PARAMETERS.search(text)
    if not match:
        return description, None
    try:
        raw = json.loads(match.group(1))
    except (ValueError, RecursionError):  # not JSON, an integer too long, nested too deeply
        return description, None
    if not isinstance(raw, dict):
        return description, None
    params: dict[str, dict] = {}
    for name, value in raw.items():
        value = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        required = value.startswith("Required.")
        rest = value[len("Required."):].lstrip() if required else value
        typed = _FD_TYPE.match(rest)
        if typed:
            kind, rest = _fd_type(typed.group(1)), rest[typed.end():]
        else:
            kind = "string"
        params[name] = {"type": kind, "description": rest.strip(), "required": required, "typed": bool(typed)}
    return description, params


def build_tools(record: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The canonical tools of one ToolAlpaca tool record, and notes for ``meta``.

    Order: ``Function_Description`` order, then functions only in ``Function_Projection``.
    """
    try:
        document = json.loads(record.get("Documentation") or "{}")
    except (ValueError, TypeError, RecursionError):
        document = {}
    if not isinstance(document, dict):
        document = {}
    descriptions = record.get("Function_Description") or {}
    projection = record.get("Function_Projection") or {}
    names = [n for n in descriptions if n != "components"]
    names += [n for n in projection if n not in descriptions and n != "components"]
    tools, schema_sources = [], {}
    for name in names:
        fd_description, fd_params = parse_function_description(str(descriptions.get(name) or ""))
        target = projection.get(name)
        found = None
        if isinstance(target, (list, tuple)) and len(target) >= 2:
            found = _openapi_operation(document, str(target[0]), str(target[1]))
        if found is not None:
            oa_props, oa_required, summary = _openapi_parameters(document, found)
            order = list(fd_params or {}) + [n for n in oa_props if n not in (fd_params or {})]
            properties = {}
            for param in order:
                oa = oa_props.get(param, {})
                fd = (fd_params or {}).get(param)
                spec = {k: v for k, v in oa.items() if not k.startswith("_")}
                if "type" not in spec:
                    spec = {"type": fd["type"] if fd else "string", **spec}
                text = fd["description"] if fd and fd["typed"] and fd["description"] else ""
                spec["description"] = text or oa.get("_openapi_description", "") or (fd["description"] if fd else "")
                properties[param] = {"type": spec.pop("type"), "description": spec.pop("description"), **spec}
            required = [r for r in oa_required if r in properties]
            schema_sources[name] = "openapi"
            description = fd_description or summary
        else:
            properties = {
                p: {"type": v["type"], "description": v["description"]} for p, v in (fd_params or {}).items()
            }
            required = [p for p, v in (fd_params or {}).items() if v["required"]]
            schema_sources[name] = "function_description" if fd_params is not None else "none"
            description = fd_description
        tools.append(tool_record(name, description, properties, required))
    tools, dropped = dedupe_tools(tools)
    notes: dict[str, Any] = {"schema_source": schema_sources}
    if dropped:
        notes["duplicate_tools_dropped"] = dropped
    return tools, notes


def _call(name: str, raw: Any, observation: Any = None) -> tuple[dict[str, Any], list[str]]:
    """A canonical call dict and the names of ``""`` arguments dropped from it."""
    arguments = parse_arguments(raw)
    dropped: list[str] = []
    if arguments is not None:
        dropped = [k for k, v in arguments.items() if v == ""]
        arguments = {k: v for k, v in arguments.items() if v != ""}
    call = {
        "name": name,
        "arguments": arguments,
        "raw_arguments": raw_text(raw),
        "observation": None if observation is None else (observation if isinstance(observation, str) else json.dumps(observation, ensure_ascii=False)),
    }
    return call, dropped


def _steps_to_calls(steps: list[tuple[str, Any, Any]], meta: dict[str, Any]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for action, raw, observation in steps:
        name = str(action).strip()
        if name.startswith(_OPTIONAL_PREFIX):
            name = name[len(_OPTIONAL_PREFIX):].strip()
            meta.setdefault("optional_call_indices", []).append(len(calls))
        if is_pseudo(name):
            meta["pseudo_calls"].append(pseudo_call(name, raw))
            continue
        call, dropped = _call(name, raw, observation)
        if dropped:
            meta.setdefault("dropped_empty_arguments", []).append({"call_index": len(calls), "names": dropped})
        calls.append(call)
    return calls


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    """Convert every instruction of every tool record of a ToolAlpaca file."""
    subset = subset_for(path)
    for r_index, record in enumerate(probe.document):
        where = f"record {r_index}"
        if not isinstance(record, dict) or not isinstance(record.get("Name"), str):
            yield reject(path, where, "expected a tool record with a 'Name'", field="Name")
            continue
        name = record["Name"]
        instructions = record.get("Instructions")
        if not isinstance(instructions, list):
            yield reject(path, where, "expected a list of instructions", field="Instructions")
            continue
        train_format = "Instances" in record
        answers = record.get("Instances") if train_format else record.get("Golden_Answers")
        answers_field = "Instances" if train_format else "Golden_Answers"
        if not isinstance(answers, list):
            yield reject(path, where, f"expected a list in '{answers_field}'", field=answers_field)
            continue
        try:
            tools, notes = build_tools(record)
        except Exception as exc:  # noqa: BLE001 - one bad record never stops a load
            yield reject(path, where, f"cannot build the tool schemas ({type(exc).__name__}: {exc})",
                         field="Documentation")
            continue
        for i, instruction in enumerate(instructions):
            instance_id = f"toolalpaca/{subset}/{name}#{i}"
            location = f"{where} ({name}), {answers_field}[{i}]"
            if i >= len(answers):
                yield reject(path, location, f"instruction {i} has no entry in '{answers_field}'",
                             field=answers_field, record_id=instance_id)
                continue
            answer = answers[i]
            meta: dict[str, Any] = {"api": name, "category": record.get("Category"), "pseudo_calls": [], **notes}
            final_answer = None
            try:
                if train_format:
                    if not isinstance(answer, dict):
                        raise ValueError("expected an object with input, output and intermediate_steps")
                    if "intermediate_steps" not in answer:
                        error = answer.get("error")
                        raise ValueError(
                            f"the run recorded an error instead of a trajectory ({str(error)[:200]!r})"
                            if error is not None else "missing 'intermediate_steps'"
                        )
                    steps = []
                    for step in answer["intermediate_steps"]:
                        action, observation = step[0], step[1]
                        steps.append((action[0], action[1], observation))
                    if isinstance(answer.get("input"), str) and answer["input"].strip():
                        instruction = answer["input"]
                    final_answer = answer.get("output")
                    if answer.get("Final Thought") is not None:
                        meta["final_thought"] = answer["Final Thought"]
                else:
                    if not isinstance(answer, list):
                        raise ValueError("expected a list of {Action, Action_Input}")
                    steps = [(step["Action"], step.get("Action_Input"), None) for step in answer]
                calls = _steps_to_calls(steps, meta)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                reason = str(exc) if isinstance(exc, ValueError) else f"malformed step ({type(exc).__name__}: {exc})"
                yield reject(path, location, reason, field=answers_field, record_id=instance_id)
                continue
            canonical = {
                "id": instance_id,
                "source": "toolalpaca-train-format" if train_format else "toolalpaca",
                "instruction": instruction if isinstance(instruction, str) else str(instruction),
                "tools": tools,
                "calls": calls,
                "final_answer": final_answer if isinstance(final_answer, str) or final_answer is None else str(final_answer),
                "meta": meta,
            }
            yield build_instance(canonical, file=path, location=location)
