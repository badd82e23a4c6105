"""Parse a target model's answer into a call list ``[{"name": str, "arguments": dict}]``.

Three answer formats (the one the prompt asked for; see :mod:`toolqual_utils.ice.prompt`):

- ``json``: a JSON list of ``{"name", "arguments"}`` objects, bare or in a fenced `````json`` block;
  also accepted: a single call object, ``{"calls": [...]}``, ``"parameters"`` for ``"arguments"``,
  arguments given as a JSON string, and a list embedded in surrounding prose (first ``[`` to last ``]``).
- ``react``: ``Action: <name>`` / ``Action Input: <JSON object>`` blocks; ``Thought:`` and
  ``Observation:`` lines are ignored; no ``Action:`` but a ``Final Answer:`` = no call.
- ``tools``: OpenAI ``tool_calls`` (``[{"name", "arguments": JSON text}]``); no tool calls = no call
  (plain-text reply), unless the text itself is a JSON call list (servers without a tool parser put
  calls in the content).

Also here, for answers read from plain text (``toolqual evaluate``): :func:`parse_hermes_calls` reads
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (the Hermes / Qwen convention that
chat templates render tool calls with, when a server returns them as text).

A parse failure returns ``ParsedAnswer(calls=None, error=...)``; the engine scores it 0 and counts it as
``parse_error`` (a demonstration that teaches an unreadable format is a bad teacher).

Pure module (standard library only).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON|javascript)?\s*\n?(.*?)```", re.DOTALL)
_REACT_LINE = re.compile(r"^\s*(Thought|Action Input|Action|Observation|Final Answer)\s*:\s?(.*)$")
_NO_ACTION = {"none", "null", "n/a", "no action", "finish", "final answer"}


@dataclass(frozen=True)
class ParsedAnswer:
    """``calls`` is a list (``[]`` = the model made no call) or None when unparseable (``error`` says why)."""

    calls: list[dict[str, Any]] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.calls is not None


def _fail(reason: str) -> ParsedAnswer:
    return ParsedAnswer(None, reason)


def _normalise_call(item: Any, where: str) -> dict[str, Any] | str:
    """A ``{"name", "arguments"}`` dict, or the reason it is not one."""
    if not isinstance(item, dict):
        return f"{where}: expected an object with 'name' and 'arguments', got {type(item).__name__}"
    if "function" in item and isinstance(item["function"], dict):  # OpenAI tool_call shape
        item = item["function"]
    name = item.get("name", item.get("api_name", item.get("tool")))
    if not isinstance(name, str) or not name.strip():
        return f"{where}: missing call name"
    arguments = item.get("arguments", item.get("parameters", item.get("args", {})))
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        parsed = _loads_object(arguments)
        if parsed is None:
            return f"{where}: arguments of {name!r} are not a JSON object: {arguments[:80]!r}"
        arguments = parsed
    if not isinstance(arguments, dict):
        return f"{where}: arguments of {name!r} are not an object"
    return {"name": name.strip(), "arguments": arguments}


def _loads_object(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return {}
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _calls_from_value(value: Any) -> list[dict[str, Any]] | str:
    if isinstance(value, dict):
        if isinstance(value.get("calls"), list):
            value = value["calls"]
        elif isinstance(value.get("tool_calls"), list):
            value = value["tool_calls"]
        else:
            value = [value]
    if not isinstance(value, list):
        return f"expected a JSON list of calls, got {type(value).__name__}"
    calls = []
    for index, item in enumerate(value):
        call = _normalise_call(item, f"call {index}")
        if isinstance(call, str):
            return call
        calls.append(call)
    return calls


def _json_candidates(text: str) -> list[str]:
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    candidates.append(text)
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    return candidates


def parse_json_calls(text: str | None) -> ParsedAnswer:
    """Parse a JSON call list (bare, fenced, or embedded in prose)."""
    if text is None or not text.strip():
        return _fail("empty answer")
    first_error = None
    for candidate in _json_candidates(text.strip()):
        try:
            value = json.loads(candidate.strip())
        except json.JSONDecodeError as exc:
            first_error = first_error or f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        except (ValueError, RecursionError) as exc:  # an integer too long, values nested too deeply
            first_error = first_error or f"not usable JSON ({type(exc).__name__})"
            continue
        calls = _calls_from_value(value)
        if isinstance(calls, str):
            first_error = first_error or calls
            continue
        return ParsedAnswer(calls)
    return _fail(first_error or "no JSON call list found")


def parse_react_calls(text: str | None) -> ParsedAnswer:
    """Parse ``Action:`` / ``Action Input:`` blocks (multi-line JSON inputs allowed)."""
    if text is None or not text.strip():
        return _fail("empty answer")
    blocks: list[tuple[str, list[str] | None]] = []  # (action, input lines or None when no input yet)
    final_answer = False
    section = None
    for line in text.splitlines():
        match = _REACT_LINE.match(line)
        if match:
            key, rest = match.group(1), match.group(2)
            section = key
            if key == "Action":
                blocks.append((rest.strip().strip("`").strip(), None))
            elif key == "Action Input":
                if not blocks or blocks[-1][1] is not None:
                    return _fail("'Action Input:' without a preceding 'Action:'")
                blocks[-1] = (blocks[-1][0], [rest])
            elif key == "Final Answer":
                final_answer = True
            continue
        if section == "Action Input" and blocks and blocks[-1][1] is not None:
            blocks[-1][1].append(line)
    calls = []
    for index, (action, input_lines) in enumerate(blocks):
        if action.lower() in _NO_ACTION:
            continue
        if not action:
            return _fail(f"action {index}: empty 'Action:' line")
        if input_lines is None:
            return _fail(f"action {index} ({action!r}): no 'Action Input:'")
        raw = "\n".join(input_lines).strip()
        fenced = _FENCE.search(raw)
        if fenced:
            raw = fenced.group(1).strip()
        arguments = _loads_object(raw)
        if arguments is None:
            return _fail(f"action {index} ({action!r}): Action Input is not a JSON object: {raw[:80]!r}")
        calls.append({"name": action, "arguments": arguments})
    if calls or final_answer or blocks:
        return ParsedAnswer(calls)
    return _fail("no 'Action:' line and no 'Final Answer:'")


_HERMES_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


def parse_hermes_calls(text: str | None) -> ParsedAnswer:
    """Parse ``<tool_call>{...}</tool_call>`` blocks (one JSON call object each; an unclosed last block
    runs to the end of the text). No block = no call."""
    if text is None or "<tool_call>" not in text:
        return ParsedAnswer([])
    calls = []
    for index, match in enumerate(_HERMES_BLOCK.finditer(text)):
        raw = match.group(1).strip()
        fenced = _FENCE.search(raw)
        if fenced:
            raw = fenced.group(1).strip()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return _fail(f"tool_call block {index} is not valid JSON ({exc.msg} at column {exc.colno})")
        except (ValueError, RecursionError) as exc:  # an integer too long, values nested too deeply
            return _fail(f"tool_call block {index} is not usable JSON ({type(exc).__name__})")
        call = _normalise_call(value, f"tool_call block {index}")
        if isinstance(call, str):
            return _fail(call)
        calls.append(call)
    return ParsedAnswer(calls)


def parse_tool_calls(tool_calls: Sequence[dict[str, Any]] | None, text: str | None = None) -> ParsedAnswer:
    """Parse OpenAI ``tool_calls`` (``[{"name", "arguments": JSON text}]``), see the module docstring."""
    if not tool_calls:
        if text and text.strip():
            stripped = text.strip()
            if stripped.startswith(("[", "{", "```")):
                parsed = parse_json_calls(stripped)
                if parsed.ok:
                    return parsed
        return ParsedAnswer([])
    calls = []
    for index, item in enumerate(tool_calls):
        call = _normalise_call(item, f"tool call {index}")
        if isinstance(call, str):
            return _fail(call)
        calls.append(call)
    return ParsedAnswer(calls)


def parse_answer(call_format: str, text: str | None, tool_calls: Sequence[dict[str, Any]] | None = None) -> ParsedAnswer:
    """Parse an answer given in ``call_format`` (``json`` | ``react`` | ``tools``)."""
    if call_format == "json":
        if tool_calls:  # a server may turn a JSON answer into tool_calls on its own
            return parse_tool_calls(tool_calls)
        return parse_json_calls(text)
    if call_format == "react":
        return parse_react_calls(text)
    if call_format == "tools":
        return parse_tool_calls(tool_calls, text)
    raise ValueError(f"unknown call format {call_format!r}")
