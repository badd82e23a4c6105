"""OpenAI chat fine-tuning JSON Lines: ``{"messages": [...], "tools": [...]}`` per line.

- Tools: the top-level ``tools`` list of ``{"type": "function", "function": {name, description,
  parameters}}`` (legacy top-level ``functions`` lists of bare definitions are read too).
- Instruction: the content of the **first** ``user`` message. Later user turns are not merged (in a
  fine-tuning conversation they usually answer the assistant); they are kept in
  ``meta["later_user_messages"]``. ``system`` messages go to ``meta["system_prompts"]``.
- Calls: every assistant ``tool_calls`` entry (``function.arguments`` is a JSON string; unparsable text
  is kept in ``raw_arguments`` with ``arguments`` None) and legacy ``function_call``, in order.
  Observations: the ``tool`` message whose ``tool_call_id`` matches (legacy: the next ``function``
  message with the same name).
- Pseudo-tools (``Finish`` ...) go to ``meta["pseudo_calls"]``; a ``Finish`` ``final_answer`` is used
  when no assistant text follows.
- Final answer: the content of the last assistant message that has text.
- A conversation with no assistant message gets ``calls = None`` (nothing known); one whose assistant
  answers without tools gets ``calls = []``.
- Ids: the record's ``id`` field when present (used as is), else ``<file stem>/<line index>`` with a
  0-based index over non-blank lines; source ``openai-chat`` unless the record has ``source``.

:func:`toolqual_utils.export.to_openai_record` (``toolqual select --format openai``) writes this format;
this loader reads its records back unchanged in instruction, tools, calls and final answer.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import PSEUDO_CALLS, Instance
from ._common import Probe, build_instance, dedupe_tools, iter_jsonl_objects, parse_arguments, pseudo_call
from ._common import raw_text, reject, tool_record

FORMAT = "openai"


def sniff(probe: Probe) -> bool:
    if probe.kind != "jsonl":
        return False
    first = probe.first_records[0]
    return isinstance(first.get("messages"), list)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", None)]
        return "".join(parts) if parts else None
    return None


def _tools(record: dict[str, Any]) -> list[dict[str, Any]]:
    definitions = []
    for entry in record.get("tools") or []:
        if isinstance(entry, dict):
            definitions.append(entry.get("function") if isinstance(entry.get("function"), dict) else entry)
    for entry in record.get("functions") or []:
        if isinstance(entry, dict):
            definitions.append(entry)
    tools = []
    for definition in definitions:
        if not isinstance(definition.get("name"), str):
            continue
        parameters = definition.get("parameters") if isinstance(definition.get("parameters"), dict) else {}
        properties = parameters.get("properties") if isinstance(parameters.get("properties"), dict) else {}
        required = [r for r in parameters.get("required") or [] if isinstance(r, str)]
        tools.append(tool_record(definition["name"], str(definition.get("description") or ""), dict(properties), required))
    return tools


def convert(record: dict[str, Any], *, instance_id: str, path: Path, location: str) -> Instance | Reject:
    messages = record.get("messages")
    if not isinstance(messages, list):
        return reject(path, location, "expected a list of messages", field="messages", record_id=instance_id)
    meta: dict[str, Any] = {"pseudo_calls": []}
    instruction: str | None = None
    later_users: list[str] = []
    systems: list[str] = []
    calls: list[dict[str, Any]] = []
    by_call_id: dict[str, dict[str, Any]] = {}
    pending_legacy: dict[str, Any] | None = None
    final_answer: str | None = None
    finish_answer: str | None = None
    saw_assistant = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = _text(message.get("content"))
        if role == "system" and content is not None:
            systems.append(content)
        elif role == "user" and content is not None:
            if instruction is None:
                instruction = content
            else:
                later_users.append(content)
        elif role == "assistant":
            saw_assistant = True
            if content and content.strip():
                final_answer = content
            requested = []
            for tool_call in message.get("tool_calls") or []:
                if isinstance(tool_call, dict) and isinstance(tool_call.get("function"), dict):
                    requested.append((tool_call.get("id"), tool_call["function"]))
            if isinstance(message.get("function_call"), dict):
                requested.append((None, message["function_call"]))
            for call_id, function in requested:
                name = str(function.get("name") or "")
                raw = function.get("arguments")
                if name in PSEUDO_CALLS:
                    meta["pseudo_calls"].append(pseudo_call(name, raw))
                    parsed = parse_arguments(raw) or {}
                    if isinstance(parsed.get("final_answer"), str):
                        finish_answer = parsed["final_answer"]
                    continue
                call = {"name": name, "arguments": parse_arguments(raw), "raw_arguments": raw_text(raw), "observation": None}
                calls.append(call)
                if call_id is not None:
                    by_call_id[str(call_id)] = call
                else:
                    pending_legacy = call
        elif role == "tool":
            call = by_call_id.get(str(message.get("tool_call_id")))
            if call is not None:
                call["observation"] = content
        elif role == "function" and pending_legacy is not None and message.get("name") == pending_legacy["name"]:
            pending_legacy["observation"] = content
            pending_legacy = None
    if instruction is None:
        return reject(path, location, "no user message: the instruction is the first user message",
                      field="messages", record_id=instance_id)
    if systems:
        meta["system_prompts"] = systems
    if later_users:
        meta["later_user_messages"] = later_users
    if isinstance(record.get("meta"), dict):
        meta = {**record["meta"], **meta}
    tools, dropped = dedupe_tools(_tools(record))
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    canonical = {
        "id": instance_id,
        "source": record["source"] if isinstance(record.get("source"), str) and record["source"] else "openai-chat",
        "instruction": instruction,
        "tools": tools,
        "calls": calls if saw_assistant else None,
        "final_answer": final_answer if final_answer is not None else finish_answer,
        "meta": meta,
    }
    return build_instance(canonical, file=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    index = -1
    for line_no, item in iter_jsonl_objects(path):
        index += 1
        if isinstance(item, Reject):
            yield item
            continue
        given = item.get("id")
        instance_id = str(given) if isinstance(given, (str, int)) and str(given) else f"{path.stem}/{index}"
        yield convert(item, instance_id=instance_id, path=path, location=f"line {line_no}")
