"""Scripted ICE targets for tests and benchmarks — TEST DOUBLES, never a model's results.

:func:`demo_sensitive_script` returns a script for :class:`toolqual_utils.testing.OpenAIDouble` whose
answer depends on the demonstration it was shown, so the engine's scoring can be checked end to end
with scores known in advance:

- a **good** demonstration (every demo call has a non-empty, parsed argument object) -> the target
  answers the test query's gold calls exactly (similarity 1, strict 1);
- a **bad** demonstration (a demo call with no arguments, or unparsed raw arguments) -> the target
  answers ``[]`` / no call, so similarity = ``2 / len(canonical gold)`` for a query with calls (the
  Levenshtein distance between ``[]`` and ``[...]`` is the number of inserted characters) and 1 for the
  no-call query;
- a demonstration whose instruction contains ``GARBLE`` -> an unparseable answer (parse_error);
- ``FAIL`` -> HTTP 500 (unscored:api_error after the client's retries).

Answers come back in the format the request uses (json text, ReAct text, or ``tool_calls``). A text
completion request (``/v1/completions``: ``prompt`` instead of ``messages``) is read the same way from its
``### Request`` / ``### Answer`` blocks, and its answer runs on into a new ``### Request`` block, as a
base model does, so the request's stop sequence is exercised.
:func:`synthetic_scores` builds the in-process scenario of the adaptive benchmark.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from .prompt import render_calls
from .testbed import TestBed


def _demo_assistant(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    for message in messages[1:]:
        if message.get("role") == "assistant":
            return message
    return None


def demo_is_good(messages: list[dict[str, Any]]) -> bool:
    """True when every call of the demonstration has a non-empty JSON-object argument set."""
    demo = _demo_assistant(messages)
    if demo is None:
        return False
    if demo.get("tool_calls"):
        arguments = [c["function"]["arguments"] for c in demo["tool_calls"]]
    else:
        content = demo.get("content") or ""
        if content.lstrip().startswith(("Action:", "Final Answer:")):
            arguments = [line.split(":", 1)[1].strip() for line in content.splitlines() if line.startswith("Action Input:")]
        else:
            try:
                items = json.loads(content)
            except json.JSONDecodeError:
                return False
            arguments = [json.dumps(i.get("arguments")) if isinstance(i.get("arguments"), dict) else "x" for i in items]
    for text in arguments:
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            return False
        if not isinstance(value, dict) or not value:
            return False
    return True


def demo_sensitive_script(testbed: TestBed) -> Callable[[dict[str, Any]], Any]:
    """A callable script for ``OpenAIDouble`` (see the module docstring)."""
    from ..testing import Reply

    by_text = {q.query: q for q in testbed.queries}

    def script(body: dict[str, Any]) -> Any:
        if "prompt" in body and "messages" not in body:
            return _completion_reply(body, script)
        messages = body.get("messages", [])
        query = by_text.get(messages[-1].get("content") if messages else None)
        if query is None:
            return Reply(status=400, content="scripted target: unknown test query")
        instruction = messages[1].get("content", "") if len(messages) > 1 else ""
        if "FAIL" in instruction:
            return Reply(status=500, content="scripted failure")
        if "GARBLE" in instruction:
            if body.get("tools"):
                return Reply(tool_calls=[{"name": "get_weather", "arguments": "{city: Oslo"}], finish_reason="tool_calls")
            return Reply(content="I think you should call something, maybe the weather?")
        calls = list(query.calls) if demo_is_good(messages) else []
        if body.get("tools"):
            if not calls:
                return Reply(content="No tool is needed.")
            return Reply(tool_calls=[{"name": c["name"], "arguments": c["arguments"]} for c in calls],
                         finish_reason="tool_calls")
        demo = _demo_assistant(messages) or {}
        react = (demo.get("content") or "").lstrip().startswith(("Action:", "Final Answer:"))
        return Reply(content=render_calls(calls, "react" if react else "json"))

    return script


def _completion_messages(prompt: str) -> list[dict[str, Any]]:
    """The chat messages a completion prompt stands for: [instructions, demo request, demo answer, query]."""
    blocks = prompt.split("### Request\n")
    messages: list[dict[str, Any]] = [{"role": "system", "content": blocks[0]}]
    for index, block in enumerate(blocks[1:]):
        request, _, answer = block.partition("\n### Answer\n")
        messages.append({"role": "user", "content": request})
        if index < len(blocks) - 2:
            messages.append({"role": "assistant", "content": answer.split("\n### Results\n")[0].strip()})
    return messages


def _completion_reply(body: dict[str, Any], chat_script: Callable[[dict[str, Any]], Any]) -> Any:
    from ..testing import Reply

    reply = chat_script({"model": body.get("model"), "messages": _completion_messages(str(body["prompt"]))})
    if reply.status != 200 or reply.content is None:
        return reply
    return Reply(content=f"{reply.content}\n\n### Request\nWhat else can you do?\n### Answer\n[]")


def synthetic_scores(kind: str, n_instances: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded score matrix (instances x queries, in [0, 1]) with known teacher quality.

    ``score = clip(quality_i + difficulty_j + noise_ij)``, difficulty ~ N(0, 0.08), noise ~ N(0, 0.12).
    ``kind``: ``bimodal`` (40% good teachers ~ Beta(8, 2), 60% bad ~ Beta(2, 6), like ToolAlpaca's
    Figure 2), ``skewed_low`` (Beta(1.5, 6), most teachers poor, like ToolBench) or ``uniform``.

    Returns:
        (scores, quality): the (n_instances, n_queries) matrix and the true quality per instance.
    """
    rng = np.random.default_rng(seed)
    if kind == "bimodal":
        good = rng.random(n_instances) < 0.4
        quality = np.where(good, rng.beta(8, 2, n_instances), rng.beta(2, 6, n_instances))
    elif kind == "skewed_low":
        quality = rng.beta(1.5, 6, n_instances)
    elif kind == "uniform":
        quality = rng.random(n_instances)
    else:
        raise ValueError(f"unknown scenario {kind!r}; use bimodal, skewed_low or uniform")
    difficulty = rng.normal(0.0, 0.08, n_queries)
    noise = rng.normal(0.0, 0.12, (n_instances, n_queries))
    return np.clip(quality[:, None] + difficulty[None, :] + noise, 0.0, 1.0), quality
