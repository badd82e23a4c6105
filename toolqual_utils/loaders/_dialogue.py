"""Dialogues -> instances: the one place that decides how a conversation becomes canonical instances.

Every conversational loader (``openai_chat``, ``sharegpt``, ``toolace``, ``glaive``, ``toolllama``)
parses its own syntax into a flat list of :class:`Message` (system / user / assistant with calls /
tool results) and hands it to :func:`dialogue_instances`, so all formats share the same rules:

1. **Tool results are paired with calls**: by call id when the result names one that exists; otherwise
   with the earliest call of the latest assistant turn that has no result yet (the earliest call of the
   tool the result names, when one is waiting). A result that matches no call is kept as a
   ``tool`` turn of the context (and counted in ``meta["unpaired_tool_results"]`` when it falls inside
   the instance's own turn).
2. **One instance per tool-calling user turn.** A *user turn* is a user message and everything up to
   the next user message. A user turn whose assistant replies make at least one call (API or
   pseudo-call such as ``Finish``) is a *tool-calling turn*. A dialogue with k tool-calling turns gives
   k instances:

   - ``context``: every turn before that user message (user text, assistant text and calls with their
     results, unpaired tool results); system messages go to ``meta["system_prompts"]`` instead;
   - ``instruction``: that user message;
   - ``calls``: the API calls of the assistant replies of that turn, in order, with their results;
     pseudo-calls go to ``meta["pseudo_calls"]``;
   - ``final_answer``: the last assistant text of that turn (a ``Finish`` call's ``final_answer`` when
     the turn has no assistant text).

   Ids: the dialogue's id when k == 1, ``<dialogue id>/turn<j>`` when k >= 2, where j is the 1-based
   number of the user message in the dialogue (so ``turn3`` is the third thing the user said).
   ``meta["turn"]`` and ``meta["n_user_turns"]`` say where the instance sits when the dialogue has more
   than one user message.
3. **Context-only assistant messages.** An assistant message marked ``context_only`` (OpenAI's
   fine-tuning ``"weight": 0``, which ``toolqual select`` writes on the earlier turns of a multi-turn
   export) never makes its user turn an instance: the turn is context for the next one.
4. **No tool-calling turn at all**: one instance for the first user message, ``calls = []`` when an
   assistant answered it (the gold answer calls nothing) or ``None`` when no assistant message exists;
   later user messages go to ``meta["later_user_messages"]``.
5. **Parallel calls**: when an assistant message of the turn makes two or more API calls at once,
   ``meta["call_batches"]`` records how the turn's calls are grouped into assistant messages (the size
   of every batch, in order, e.g. ``[2, 1]``), so profiles can count parallel calls and exports can
   write the same grouping back.

Pure module: standard library and the canonical schema.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..io import Reject
from ..schema import PSEUDO_CALLS, Instance
from ._common import build_instance, parse_arguments, pseudo_call, raw_text, reject

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class RawCall:
    """A call as a loader found it: arguments parsed (or None with the raw text kept)."""

    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str | None
    call_id: str | None = None
    observation: str | None = None

    @classmethod
    def from_source(cls, name: str, raw: Any, call_id: Any = None) -> RawCall:
        """A call from argument text or an object (text that is not a JSON object -> parse failure)."""
        return cls(str(name), parse_arguments(raw), raw_text(raw), None if call_id is None else str(call_id))

    def to_call(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "raw_arguments": self.raw_arguments,
                "observation": self.observation}


@dataclass
class Message:
    """One message of a dialogue, already parsed from the source syntax."""

    role: Role
    content: str | None = None
    calls: list[RawCall] = field(default_factory=list)
    call_id: str | None = None  # tool results: the call they answer, when the source says
    name: str | None = None  # tool results: the tool, when the source says
    context_only: bool = False  # assistant: not a training target (e.g. OpenAI "weight": 0)
    finish_answer: str | None = None  # assistant: a Finish pseudo-call's final_answer argument


def _pair_results(messages: Sequence[Message]) -> list[Message]:
    """Attach tool results to their calls; returns the messages that remain (unpaired results kept)."""
    by_id: dict[str, RawCall] = {}
    pending: list[RawCall] = []
    kept: list[Message] = []
    for message in messages:
        if message.role == "assistant":
            kept.append(message)
            if message.calls:
                pending = [call for call in message.calls if call.observation is None]
                for call in message.calls:
                    if call.call_id is not None:
                        by_id.setdefault(call.call_id, call)
            continue
        if message.role != "tool":
            kept.append(message)
            continue
        target = by_id.get(message.call_id) if message.call_id is not None else None
        if target is not None and target.observation is not None:
            target = None  # that call already has its result: treat this one as unnamed
        if target is None and pending:
            named = [call for call in pending if message.name and call.name == message.name]
            target = named[0] if named else pending[0]  # a name that matches no waiting call: by position
        if target is None:
            kept.append(message)
            continue
        target.observation = message.content if message.content is not None else ""
        if target in pending:
            pending.remove(target)
    return kept


def _is_text(content: str | None) -> bool:
    return content is not None and content.strip() != ""


def _context_turns(messages: Sequence[Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "user":
            turns.append({"role": "user", "content": message.content or ""})
        elif message.role == "assistant":
            content = message.content if _is_text(message.content) else None
            if content is None and not message.calls:
                continue
            turns.append({"role": "assistant", "content": content, "calls": [c.to_call() for c in message.calls]})
        elif message.role == "tool":
            turns.append({"role": "tool", "content": message.content or "", "name": message.name})
    return turns


def _turn_parts(segment: Sequence[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None,
                                                      list[int], int]:
    """(api calls, pseudo calls, final answer, API-call batch sizes, unpaired results) of one user turn."""

    calls: list[dict[str, Any]] = []
    pseudo: list[dict[str, Any]] = []
    final_answer: str | None = None
    finish_answer: str | None = None
    batches: list[int] = []
    unpaired = 0
    for message in segment:
        if message.role == "tool":
            unpaired += 1
            continue
        if message.role != "assistant":
            continue
        if _is_text(message.content):
            final_answer = message.content
        if message.finish_answer is not None:
            finish_answer = message.finish_answer
        n_api = sum(call.name not in PSEUDO_CALLS for call in message.calls)
        if n_api:
            batches.append(n_api)
        for call in message.calls:
            if call.name in PSEUDO_CALLS:
                pseudo.append(pseudo_call(call.name, call.raw_arguments if call.raw_arguments is not None
                                          else call.arguments))
                parsed = call.arguments or {}
                if isinstance(parsed.get("final_answer"), str):
                    finish_answer = parsed["final_answer"]
                continue
            calls.append(call.to_call())
    return calls, pseudo, final_answer if final_answer is not None else finish_answer, batches, unpaired


def dialogue_instances(
    messages: Sequence[Message],
    *,
    dialogue_id: str,
    source: str,
    tools: list[dict[str, Any]],
    meta: dict[str, Any],
    path: Path,
    location: str,
) -> list[Instance | Reject]:
    """The instances of one dialogue (rules in the module docstring), or a Reject naming the problem.

    Args:
        messages: the dialogue in order (system messages may appear anywhere; they go to meta).
        dialogue_id: the dialogue's id (instance ids derive from it).
        tools: canonical tool dicts offered in the dialogue.
        meta: format-specific metadata copied into every instance (``pseudo_calls``, ``system_prompts``,
            turn fields are added here).
    """
    systems = [m.content for m in messages if m.role == "system" and m.content is not None]
    flow = _pair_results([m for m in messages if m.role != "system"])
    users = [i for i, m in enumerate(flow) if m.role == "user"]
    if not users:
        return [reject(path, location, "no user message: the instruction is a user turn", field="messages",
                       record_id=dialogue_id)]
    base_meta = dict(meta)
    if systems:
        base_meta["system_prompts"] = systems
    bounds = [*users, len(flow)]
    segments = [(j + 1, users[j], flow[users[j] + 1: bounds[j + 1]]) for j in range(len(users))]
    targets = [
        (number, start, segment) for number, start, segment in segments
        if any(m.role == "assistant" and m.calls and not m.context_only for m in segment)
    ]
    n_users = len(users)
    results: list[Instance | Reject] = []
    if not targets:
        number, start, segment = segments[0]
        calls, pseudo, final_answer, batches, unpaired = _turn_parts(segment)
        answered = any(m.role == "assistant" for m in segment)
        instance_meta = {**base_meta, "pseudo_calls": pseudo}
        later = [flow[i].content or "" for i in users[1:]]
        if later:
            instance_meta["later_user_messages"] = later
            instance_meta["n_user_turns"] = n_users
        record = {"id": dialogue_id, "source": source, "instruction": flow[start].content or "", "tools": tools,
                  "calls": [] if answered else None, "final_answer": final_answer, "meta": instance_meta}
        return [build_instance(record, file=path, location=location)]
    last_start = targets[-1][1]
    for number, start, segment in targets:
        calls, pseudo, final_answer, batches, unpaired = _turn_parts(segment)
        instance_meta: dict[str, Any] = {**base_meta, "pseudo_calls": pseudo}
        if n_users > 1:
            instance_meta["turn"] = number
            instance_meta["n_user_turns"] = n_users
        if any(size >= 2 for size in batches):
            instance_meta["call_batches"] = batches
        if unpaired:
            instance_meta["unpaired_tool_results"] = unpaired
        if start == last_start:
            later = [flow[i].content or "" for i in users if i > start]
            if later:
                instance_meta["later_user_messages"] = later
        record = {
            "id": dialogue_id if len(targets) == 1 else f"{dialogue_id}/turn{number}",
            "source": source,
            "context": _context_turns(flow[:start]),
            "instruction": flow[start].content or "",
            "tools": tools,
            "calls": calls,
            "final_answer": final_answer,
            "meta": instance_meta,
        }
        results.append(build_instance(record, file=path, location=location))
    return results


__all__ = ["Message", "RawCall", "dialogue_instances"]
