"""ToolACE: ``{"system", "conversations": [{"from", "value"}]}`` per record.

Published description: the dataset card of ``Team-ACE/ToolACE`` on the Hugging Face Hub and the paper
(Liu et al., "ToolACE: Winning the Points of LLM Function Calling", arXiv:2409.00920). The released
``data.json`` is one JSON array; each record has a ``system`` prompt that lists the tools **as a JSON
array inside the text** ("Here is a list of functions in JSON format that you can invoke: [...]") and
asks for calls in Python syntax, and ``conversations`` with ``user`` / ``assistant`` / ``tool`` turns.

Read from a JSON array (streamed), JSON Lines, Parquet, a ``datasets`` folder or gzip.

Pitfalls handled:

- Tools: the first JSON array of ``{"name", ...}`` objects in the system text (a Python-literal array is
  accepted too). Parameter types use Python names (``"type": "dict"``, ``"float"``), mapped to JSON
  Schema like BFCL's. ``meta["system_prompts"]`` keeps the system text and
  ``meta["system_prompt_lists_tools"]`` says that it embeds the tool list (exports then write the tools
  in their own field instead).
- Assistant calls are **Python-call syntax**, ``[Get Weather(city="Paris", days=3), f(x=[1, 2])]``: read
  with :mod:`ast`, never ``eval``; names may contain spaces, dots or hyphens; values must be literals
  (``True``, ``None``, single quotes, and JSON's ``true``/``null`` are all accepted). Positional
  arguments are named from the tool's parameter order. A call whose arguments are not literals (a
  variable, an expression, a truncated string) is kept as a **flagged raw call**: ``arguments`` None and
  the call's text in ``raw_arguments`` (an argument parse failure). An assistant turn that is prose is
  text (a final answer or a clarifying question).
- Tool turns hold a JSON list of ``{"name", "results"}``, one per call of the preceding assistant turn
  (parallel calls answered in order): each item becomes that call's result (the item's JSON text).
- Multi-turn: one instance per user turn that calls tools, earlier turns in ``context``
  (:mod:`toolqual_utils.loaders._dialogue`).

Ids: ``toolace/<file stem>/<index>`` (``/turn<j>`` appended when a dialogue has several tool-calling
turns); source ``toolace``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, reject
from ._dialogue import Message, RawCall, dialogue_instances
from ._literals import NotALiteral, find_embedded, is_tool_list, looks_like_python_calls, parse_python_calls, parse_value
from ._toolspec import canonical_tools
from .containers import head_records, iter_items, source_stem

FORMAT = "toolace"

_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "tool": "tool",
          "observation": "tool", "function": "tool", "system": "system"}


def sniff(probe: Probe) -> bool:
    """A record with a ``system`` string that embeds a JSON list of functions, and ``conversations``
    (no separate ``tools`` column: that is LLaMA-Factory's ShareGPT layout)."""
    head = head_records(probe)
    if not head:
        return False
    first = head[0]
    system, turns = first.get("system"), first.get("conversations")
    return (isinstance(system, str) and isinstance(turns, list) and "tools" not in first and '"name"' in system
            and all(isinstance(t, dict) and t.get("from") in _ROLES for t in turns))


def tool_results(value: str) -> list[tuple[str | None, str]]:
    """(tool name, result text) per result of a tool turn (one pair for an unstructured turn)."""
    try:
        parsed, _how = parse_value(value)
    except NotALiteral:
        return [(None, value)]
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items or not all(isinstance(item, dict) for item in items):
        return [(None, value)]
    return [(item.get("name") if isinstance(item.get("name"), str) else None, json.dumps(item, ensure_ascii=False))
            for item in items]


def assistant_message(value: str, order: dict[str, list[str]]) -> Message:
    """An assistant turn: Python-call syntax -> calls (failures flagged), anything else -> text."""
    if not looks_like_python_calls(value):
        return Message("assistant", value)
    calls = []
    for parsed in parse_python_calls(value, order):
        if parsed.arguments is None:
            calls.append(RawCall(parsed.name or "<unparsed>", None, parsed.raw))
        else:
            calls.append(RawCall(parsed.name, parsed.arguments, parsed.raw))
    return Message("assistant", None, calls)


def convert(record: dict[str, Any], *, dialogue_id: str, path: Path, location: str) -> list[Instance | Reject]:
    system = record.get("system")
    turns = record.get("conversations")
    if not isinstance(turns, list):
        return [reject(path, location, "expected a list of turns", field="conversations", record_id=dialogue_id)]
    if not isinstance(system, str):
        return [reject(path, location, "expected the system prompt (a string holding the tool list)", field="system",
                       record_id=dialogue_id)]
    definitions = find_embedded(system, accept=is_tool_list)
    if definitions is None:
        return [reject(path, location, "no JSON list of functions found in the system prompt", field="system",
                       record_id=dialogue_id)]
    tools, dropped = canonical_tools(definitions)
    order = {tool["name"]: list(tool["parameters"]["properties"]) for tool in tools}
    messages: list[Message] = [Message("system", system)]
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") not in _ROLES or not isinstance(turn.get("value"), str):
            return [reject(path, location, "each turn needs 'from' (user, assistant, tool) and a text 'value'",
                           field=f"conversations[{index}]", record_id=dialogue_id)]
        role, value = _ROLES[turn["from"]], turn["value"]
        if role == "assistant":
            message = assistant_message(value, order)
            message.context_only = turn.get("weight") == 0
            messages.append(message)
        elif role == "tool":
            messages.extend(Message("tool", text, name=name) for name, text in tool_results(value))
        else:
            messages.append(Message(role, value))  # type: ignore[arg-type]
    meta: dict[str, Any] = {"system_prompt_lists_tools": True}
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    return dialogue_instances(messages, dialogue_id=dialogue_id, source="toolace", tools=tools, meta=meta,
                              path=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    stem = source_stem(path)
    for index, (location, item) in enumerate(iter_items(probe)):
        if isinstance(item, Reject):
            yield item
            continue
        given = item.get("id")
        dialogue_id = given if isinstance(given, str) and "/" in given else f"toolace/{stem}/{index}"
        yield from convert(item, dialogue_id=dialogue_id, path=path, location=location)


__all__ = ["FORMAT", "assistant_message", "convert", "iter_records", "sniff", "tool_results"]
