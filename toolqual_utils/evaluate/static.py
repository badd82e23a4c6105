"""Static call evaluation: one request per test item, the answer's calls matched with the gold calls.

The model sees the instruction and the tools and answers with calls, in one of three layouts
(``call_format``) over one of two routes (``api``):

==========  ===========================  =====================================================
format      chat (``/v1/chat/completions``)   completions (``/v1/completions``, base models)
==========  ===========================  =====================================================
``tools``   instruction as the user turn,  —
            tools in ``tools``
``json``    system prompt (APIs + answer   one text prompt (APIs, request, ``### Answer``),
            format) + instruction          stop ``\\n###``
``react``   idem, ``Action:`` blocks       idem
==========  ===========================  =====================================================

Scoring (:func:`score_answer`), with :func:`toolqual_utils.matching.calls_match` (BFCL's rules:
acceptable-value lists, string normalisation, int for float, order-free parallel calls, arguments
checked against the tool's schema):

- ``passed`` = 1 when the calls match the possible answer exactly (same number of calls, every call
  matched to one gold entry), else 0;
- ``score`` = per-call partial credit: matched calls / max(number of calls, number of gold calls)
  (1.0 when both are empty: the right answer was to call nothing, and nothing was called);
- an answer whose calls cannot be read is ``status = parse_error``: not passed, score 0 (or unscored
  with ``parse_errors="unscored"``);
- a failed request (API error after retries, refusal, truncation, replay miss) is
  ``unscored:<reason>``: never counted as passed or failed.

Pure apart from building the client's request objects (no network here).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from ..ice.score import canonical_calls
from ..llm import ChatRequest, ChatResult, CompletionRequest
from ..matching import calls_match
from ..verdicts import Status
from . import prompting
from .answers import parse_model_answer
from .testset import TestItem

__all__ = ["StaticSettings", "STATIC_PROMPTS", "static_prompt_id", "static_request", "score_answer", "ROW_FIELDS"]

#: (api, format) -> prompt name (``evaluate_tools`` has no file: no instructions are added).
STATIC_PROMPTS: Final = {
    ("chat", "tools"): "evaluate_tools",
    ("chat", "json"): "evaluate_json",
    ("chat", "react"): "evaluate_react",
    ("completions", "json"): "evaluate_completion_json",
    ("completions", "react"): "evaluate_completion_react",
}
#: The per-item fields :func:`score_answer` fills (the engine adds run, model, benchmark, ...).
ROW_FIELDS: Final = ("item_id", "passed", "score", "status", "reason", "predicted_calls", "n_predicted_calls",
                     "n_gold_calls", "answer_text", "cached")


@dataclass(frozen=True)
class StaticSettings:
    """How requests are built and answers scored.

    Attributes:
        api: ``chat`` or ``completions``.
        call_format: ``tools``, ``json`` or ``react`` (``tools`` needs the chat API).
        max_tokens: answer length limit.
        tool_choice: sent with ``tools`` when set (``none`` lets a server without a tool-call parser
            accept the request; the calls are then read from the text).
        parse_errors: ``fail`` (an unreadable answer is not passed, score 0) or ``unscored``.
    """

    api: str = "chat"
    call_format: str = "tools"
    max_tokens: int | None = 1024
    tool_choice: str | None = None
    parse_errors: str = "fail"

    def __post_init__(self) -> None:
        if (self.api, self.call_format) not in STATIC_PROMPTS:
            raise ValueError(f"--format {self.call_format} over the {self.api} API is not possible"
                             + ("; tool calling (--format tools) needs the chat API, use json or react with "
                                "--api completions" if self.api == "completions" else ""))
        if self.parse_errors not in ("fail", "unscored"):
            raise ValueError(f"parse_errors must be 'fail' or 'unscored', not {self.parse_errors!r}")


def static_prompt_id(settings: StaticSettings) -> str:
    return prompting.prompt_id(STATIC_PROMPTS[(settings.api, settings.call_format)])


def custom_id(item: TestItem) -> str:
    return f"evaluate|static|{item.id}"


def static_request(item: TestItem, settings: StaticSettings
                   ) -> tuple[ChatRequest | CompletionRequest, prompting.ToolNames | None]:
    """The request for one item, and the tool-name map when names were changed for ``tools``."""
    instance = item.instance
    name = STATIC_PROMPTS[(settings.api, settings.call_format)]
    pid = prompting.prompt_id(name)
    if settings.api == "completions":
        text = prompting.render(name, apis=prompting.render_apis(instance.tools), instruction=instance.instruction)
        return CompletionRequest(custom_id(item), text, pid, stop=prompting.COMPLETION_STOP, temperature=0.0,
                                 max_tokens=settings.max_tokens), None
    if settings.call_format == "tools":
        names = prompting.ToolNames(instance.tools)
        tools = names.openai_tools(instance.tools)
        return ChatRequest(custom_id(item), ({"role": "user", "content": instance.instruction},), pid,
                           temperature=0.0, max_tokens=settings.max_tokens, tools=tools or None,
                           tool_choice=settings.tool_choice if tools else None), names
    system = prompting.render(name, apis=prompting.render_apis(instance.tools))
    messages = ({"role": "system", "content": system}, {"role": "user", "content": instance.instruction})
    return ChatRequest(custom_id(item), messages, pid, temperature=0.0, max_tokens=settings.max_tokens), None


def partial_credit(n_matched: int, n_calls: int, n_gold: int) -> float:
    """Matched calls / max(calls, gold calls); 1.0 when both are empty."""
    denominator = max(n_calls, n_gold)
    return 1.0 if denominator == 0 else n_matched / denominator


def score_answer(item: TestItem, result: ChatResult, settings: StaticSettings,
                 names: prompting.ToolNames | None = None) -> dict[str, Any]:
    """One outcome row (fields :data:`ROW_FIELDS`) from the client's result for ``item``."""
    row: dict[str, Any] = {
        "item_id": item.id, "passed": math.nan, "score": math.nan, "status": result.status,
        "reason": result.error, "predicted_calls": None, "n_predicted_calls": math.nan,
        "n_gold_calls": len(item.possible_answer), "answer_text": result.text, "cached": bool(result.cached),
    }
    if not result.ok:
        return row
    parsed = parse_model_answer(settings.call_format, result.text, result.tool_calls)
    if result.tool_calls and not row["answer_text"]:
        row["answer_text"] = json.dumps(result.tool_calls, ensure_ascii=False)
    if not parsed.ok:
        if settings.parse_errors == "unscored":
            row.update(status=Status.UNSCORED_PARSE_ERROR, reason=f"answer not readable: {parsed.error}")
        else:
            row.update(status=Status.PARSE_ERROR, passed=0.0, score=0.0, reason=f"answer not readable: {parsed.error}")
        return row
    calls = names.restore(parsed.calls or []) if names is not None else list(parsed.calls or [])
    match = calls_match(calls, list(item.possible_answer), item.instance.tools, ordered=item.ordered)
    row.update(
        status=Status.OK,
        passed=1.0 if match.ok else 0.0,
        score=partial_credit(len(match.assignment), len(calls), len(item.possible_answer)),
        reason="; ".join(match.reasons) if match.reasons else None,
        predicted_calls=canonical_calls(calls),
        n_predicted_calls=len(calls),
    )
    return row
