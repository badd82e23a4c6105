"""ShareGPT function-calling dialogues: Hermes tags and LLaMA-Factory's ``function_call``/``observation``.

One record = ``{"conversations": [{"from", "value"}, ...]}`` plus, depending on the producer, ``id``,
``tools``, ``system`` and descriptive fields. Two layouts are read (detected per record):

**Hermes** (``NousResearch/hermes-function-calling-v1``; dataset card on the Hugging Face Hub, "Hermes
Function Calling Standard" and "Dataset Structure"; github.com/NousResearch/Hermes-Function-Calling):
roles ``system``, ``human``, ``gpt``, ``tool``. The system turn lists the tools inside
``<tools>...</tools>``; a ``gpt`` turn calls with one ``<tool_call>{...}</tool_call>`` block per call
(several blocks = parallel calls); a ``tool`` turn answers with ``<tool_response>{...}</tool_response>``
blocks, one per call, in order. ``category``, ``subcategory`` and ``task`` are kept in meta.

**LLaMA-Factory ShareGPT** (hiyouga/LLaMA-Factory ``data/README.md``, "Sharegpt Format", and its
``glaive_toolcall_en_demo.json``): roles ``human``, ``gpt``, ``function_call``, ``observation``
(optionally ``system``); the tools are a JSON **string** in the ``tools`` column and the system prompt
is the ``system`` column. A ``function_call`` turn's value is ``{"name", "arguments"}`` as JSON, or a
JSON list of them for parallel calls. ``user``/``assistant``/``tool`` role names are accepted too.

Read from a JSON array (streamed), JSON Lines, Parquet, a ``datasets`` folder or gzip.

Pitfalls handled:

- Hermes writes tool lists and calls as **Python literals** (``{'arguments': {'symbol': 'TSLA'},
  'name': 'get_stock_fundamentals'}``, ``None``, ``True``), tool responses as JSON holding Python dicts:
  every block is read as JSON first, then as a Python literal (never ``eval``). A ``<tool_call>`` block
  that is neither is kept as a flagged raw call (``arguments`` None, the block's text in
  ``raw_arguments``) under the name found in it.
- ``arguments`` may be an object or a JSON string (parsed; text that is not an object is a parse
  failure).
- ``<tools>`` may hold a JSON list, one object per line, or a Python-literal list; each tool may be
  bare or wrapped as ``{"type": "function", "function": {...}}``.
- A result without a call id answers the next call of the latest assistant turn still waiting for one
  (by name when the response names its tool).
- Text outside the ``<tool_call>`` blocks of a ``gpt`` turn is the turn's text (kept in context).
- Multi-turn: one instance per user turn that calls tools, earlier turns in ``context``; a turn marked
  ``"weight": 0`` (written by ``toolqual select`` on earlier turns) is context only.
- The system prompt is kept in ``meta["system_prompts"]``; ``meta["system_prompt_lists_tools"]`` says
  it carried the ``<tools>`` block.

Ids: the record's ``id`` when it has one (Hermes ids are UUIDs; toolqual's exports write the canonical
id), else ``<source>/<file stem>/<index>``, with ``/turn<j>`` when a dialogue has several tool-calling
turns. Source: ``hermes`` when the record uses Hermes tags, else ``sharegpt``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, reject
from ._dialogue import Message, RawCall, dialogue_instances
from ._literals import NotALiteral, embedded_objects, parse_value
from ._toolspec import canonical_tools
from .containers import head_records, iter_items, source_stem

FORMAT = "sharegpt"

_ROLES = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "function_call": "assistant",
    "tool": "tool", "observation": "tool", "function": "tool", "ipython": "tool", "function_response": "tool",
}
_TOOLS = re.compile(r"<tools>(.*?)</tools>", re.S)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_TOOL_RESPONSE = re.compile(r"<tool_response>(.*?)(?:</tool_response>|$)", re.S)
_NAME = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")
META_KEYS = ("category", "subcategory", "task")


def sniff(probe: Probe) -> bool:
    """Records with ``conversations`` of ``from``/``value`` turns (Seal-Tools' fine-tuning files, whose
    first human turn embeds ``api_list = [...]``, and ToolLLaMA's, are claimed by their own loaders)."""
    head = head_records(probe)
    if not head:
        return False
    turns = head[0].get("conversations")
    if not isinstance(turns, list) or not turns:
        return False
    if not all(isinstance(t, dict) and "from" in t and "value" in t for t in turns):
        return False
    return not any("api_list = " in str(t.get("value", ""))[:20000] for t in turns[:2])


def parse_block(text: str) -> Any:
    """A JSON or Python-literal block (None when neither)."""
    try:
        return parse_value(text.strip())[0]
    except NotALiteral:
        return None


def tools_from_system(text: str) -> list[Any] | None:
    """The tool definitions inside ``<tools>...</tools>`` (None when there is no such block). The prompt
    usually also *mentions* the tags ("signatures within <tools></tools> XML tags"): empty blocks are
    skipped."""
    for match in _TOOLS.finditer(text):
        inner = match.group(1).strip()
        if not inner:
            continue
        value = parse_block(inner)
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return [value]
        return embedded_objects(inner)
    return None


def _call_from(value: Any, raw: str) -> RawCall:
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return RawCall.from_source(value["name"], value.get("arguments", value.get("parameters")))
    name = _NAME.search(raw)
    return RawCall(name.group(1) if name else "<unparsed>", None, raw.strip())


def hermes_calls(value: str) -> tuple[str | None, list[RawCall]]:
    """(text outside the blocks, calls) of a ``gpt`` turn with ``<tool_call>`` blocks."""
    calls = [_call_from(parse_block(block), block) for block in _TOOL_CALL.findall(value)]
    text = _TOOL_CALL.sub("", value).strip()
    return (text or None), calls


def function_call_turn(value: str) -> list[RawCall]:
    """The calls of a LLaMA-Factory ``function_call`` turn (an object or a list of objects)."""
    parsed = parse_block(value)
    items = parsed if isinstance(parsed, list) else [parsed]
    if parsed is None or not items:
        return [_call_from(None, value)]
    return [_call_from(item, value) for item in items]


def tool_responses(value: str) -> list[tuple[str | None, str]]:
    """(tool name, result text) per ``<tool_response>`` block, or one pair for an untagged result."""
    blocks = _TOOL_RESPONSE.findall(value)
    if not blocks:
        return [(None, value)]
    results = []
    for block in blocks:
        parsed = parse_block(block)
        name = parsed.get("name") if isinstance(parsed, dict) and isinstance(parsed.get("name"), str) else None
        results.append((name, _unwrap_lines(block)))
    return results


def _calls_waiting(messages: list[Message]) -> int:
    """How many calls the latest assistant turn made, when no result followed it yet (else 0)."""
    for message in reversed(messages):
        if message.role == "tool":
            return 0
        if message.role == "assistant":
            return len(message.calls)
    return 0


def _split_results(value: str, n_calls: int) -> list[tuple[str | None, str]] | None:
    """One untagged result turn answering a parallel batch: a JSON list with one item per call
    (LLaMA-Factory writes parallel results so) -> one result per call; None otherwise."""
    parsed = parse_block(value)
    if isinstance(parsed, list) and len(parsed) == n_calls:
        return [(None, item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)) for item in parsed]
    return None


def _unwrap_lines(block: str) -> str:
    """A block's text without the line breaks that open and close it (other whitespace is the result's)."""
    if block.startswith("\n"):
        block = block[1:]
    if block.endswith("\n"):
        block = block[:-1]
    return block


def _definitions(record: dict[str, Any]) -> Any:
    tools = record.get("tools")
    if isinstance(tools, str) and tools.strip():
        return parse_block(tools)
    return tools


def convert(record: dict[str, Any], *, index: int, stem: str, path: Path, location: str) -> list[Instance | Reject]:
    turns = record.get("conversations")
    given = record.get("id")
    fallback_id = f"sharegpt/{stem}/{index}"
    if not isinstance(turns, list):
        return [reject(path, location, "expected a list of turns", field="conversations", record_id=fallback_id)]
    hermes = any(isinstance(t, dict) and isinstance(t.get("value"), str) and
                 ("<tool_call>" in t["value"] or "<tools>" in t["value"] or "<tool_response>" in t["value"])
                 for t in turns)
    source = record["source"] if isinstance(record.get("source"), str) and record["source"] else (
        "hermes" if hermes else "sharegpt")
    dialogue_id = str(given) if isinstance(given, (str, int)) and str(given) else f"{source}/{stem}/{index}"
    messages: list[Message] = []
    definitions = _definitions(record)
    lists_tools = False
    if isinstance(record.get("system"), str) and record["system"].strip():
        messages.append(Message("system", record["system"]))
        if definitions is None:
            definitions = tools_from_system(record["system"])
            lists_tools = definitions is not None
    for position, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") not in _ROLES or not isinstance(turn.get("value"), str):
            known = ", ".join(sorted(_ROLES))
            return [reject(path, location, f"each turn needs 'from' (one of: {known}) and a text 'value'",
                           field=f"conversations[{position}]", record_id=dialogue_id)]
        role, value, kind = _ROLES[turn["from"]], turn["value"], turn["from"]
        if role == "system":
            messages.append(Message("system", value))
            if definitions is None:
                definitions = tools_from_system(value)
                lists_tools = definitions is not None
        elif role == "user":
            messages.append(Message("user", value))
        elif role == "tool":
            results = tool_responses(value)
            waiting = _calls_waiting(messages)
            if len(results) == 1 and results[0][0] is None and waiting >= 2:
                results = _split_results(value, waiting) or results
            messages.extend(Message("tool", text, name=name) for name, text in results)
        elif kind == "function_call":
            messages.append(Message("assistant", None, function_call_turn(value), context_only=turn.get("weight") == 0))
        else:
            text, calls = hermes_calls(value) if "<tool_call>" in value else (value, [])
            messages.append(Message("assistant", text, calls, context_only=turn.get("weight") == 0))
    tools, dropped = canonical_tools(definitions if isinstance(definitions, list) else [])
    meta: dict[str, Any] = {key: record[key] for key in META_KEYS if isinstance(record.get(key), str)}
    if lists_tools:
        meta["system_prompt_lists_tools"] = True
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    if isinstance(record.get("meta"), dict):
        meta = {**record["meta"], **meta}
    return dialogue_instances(messages, dialogue_id=dialogue_id, source=source, tools=tools, meta=meta,
                              path=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    stem = source_stem(path)
    for index, (location, item) in enumerate(iter_items(probe)):
        if isinstance(item, Reject):
            yield item
            continue
        yield from convert(item, index=index, stem=stem, path=path, location=location)


__all__ = ["FORMAT", "convert", "function_call_turn", "hermes_calls", "iter_records", "sniff", "tool_responses",
           "tools_from_system"]
