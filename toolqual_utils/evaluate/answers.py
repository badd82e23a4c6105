"""Read the calls out of a served model's answer (the model under test).

Formats (``--format``):

- ``tools`` (native tool calling): the answer's ``tool_calls``; when the server returned none, the
  calls are read from the text, as a server without a tool-call parser returns them:
  ``<tool_call>{...}</tool_call>`` blocks (Hermes/Qwen templates), ``Action:`` / ``Action Input:``
  blocks (LLaMA-Factory's default tool format, ReAct), or a JSON call list. Text with none of these is
  a plain reply: no call.
- ``json``: a JSON call list (:func:`toolqual_utils.ice.parse.parse_json_calls` rules).
- ``react``: ``Action:`` / ``Action Input:`` blocks; ``Final Answer:`` = no call.

An unreadable answer is the model's failure to produce calls (a parse error, scored as not passed, as
BFCL scores an answer it cannot decode); ``toolqual evaluate --parse-errors unscored`` keeps such items
out of the pass rate instead.

Pure module.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from ..ice.parse import ParsedAnswer, parse_hermes_calls, parse_json_calls, parse_react_calls, parse_tool_calls

__all__ = ["EVAL_FORMATS", "parse_model_answer", "parse_text_calls", "final_response"]

EVAL_FORMATS: Final = ("tools", "json", "react")
_ACTION_LINE = re.compile(r"(?m)^\s*Action\s*:")
_FINAL = re.compile(r"(?ms)^\s*Final Answer\s*:\s?(.*)$")


def parse_text_calls(text: str | None) -> ParsedAnswer:
    """Calls written in plain text: Hermes blocks, else ReAct blocks, else a JSON list; else no call."""
    if text is None or not text.strip():
        return ParsedAnswer([])
    if "<tool_call>" in text:
        return parse_hermes_calls(text)
    if _ACTION_LINE.search(text):
        return parse_react_calls(text)
    stripped = text.strip()
    if stripped.startswith(("[", "{", "```")):
        return parse_json_calls(stripped)
    return ParsedAnswer([])


def parse_model_answer(call_format: str, text: str | None,
                       tool_calls: Sequence[dict[str, Any]] | None = None) -> ParsedAnswer:
    """The calls of one answer in ``call_format`` (see the module docstring)."""
    if call_format == "tools":
        if tool_calls:
            return parse_tool_calls(tool_calls)
        return parse_text_calls(text)
    if call_format == "json":
        if tool_calls:
            return parse_tool_calls(tool_calls)
        return parse_json_calls(text)
    if call_format == "react":
        return parse_react_calls(text)
    raise ValueError(f"unknown answer format {call_format!r}; expected one of {', '.join(EVAL_FORMATS)}")


def final_response(text: str | None) -> str:
    """The reply part of an answer: what follows ``Final Answer:`` when present, else the whole text."""
    if not text:
        return ""
    match = _FINAL.search(text)
    return (match.group(1) if match else text).strip()
