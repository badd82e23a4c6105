"""ICE prompts: instructions + test-bed APIs + the instance as a one-shot demonstration + one query.

Message layout (the shared prefix comes first so servers with prefix caching reuse it)::

    system     instructions (prompt file ``ice_<format>.v1.txt``) + the test-bed APIs   shared by ALL requests
    user       the instance's instruction (after its earlier turns, multi-turn)       ┐ shared by the
    assistant  the instance's call sequence, in the answer format                     │ instance's queries
    [observations, when ``include_observations``]                                     ┘
    user       the test query                                                          varies

The demonstration is written in the SAME format the model must answer in:

- ``json``: a JSON list ``[{"name": ..., "arguments": {...}}]``;
- ``react``: ``Action: <name>`` / ``Action Input: <JSON>`` blocks (``Final Answer:`` when no call);
- ``tools``: OpenAI tool calling; the test-bed tools go in ``tools`` and the demonstration is an
  assistant message with ``tool_calls`` followed by one ``tool`` message per call (the API requires
  them; they hold the observation, or a placeholder when observations are off).

**Text completions** (``api="completions"``, for base models without a chat template, as in the paper):
one plain-text prompt (file ``ice_completion_<format>.v1.txt``: instructions, the APIs, the
demonstration as a ``### Request`` / ``### Answer`` pair, the test query and an open ``### Answer``
line), sent to ``/v1/completions`` with the stop sequence :data:`COMPLETION_STOP`, so the model's
continuation is its answer. ``json`` and ``react`` only (``tools`` needs the chat API's tool calling).

A demonstration call whose arguments failed to parse (``arguments`` None, ``raw_arguments`` text) is
shown with its raw text: that flaw is part of what the instance teaches. Instances without gold calls
(``calls is None``) cannot be demonstrations; :func:`build_prompts` skips them.

Pure module (standard library and the schema only).
"""
from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Final, Literal

from ..dialogue import dialogue_text
from ..schema import Call, Instance, ToolSpec
from .testbed import TestBed, TestQuery

CallFormat = Literal["json", "react", "tools"]
CALL_FORMATS: Final = ("json", "react", "tools")
Api = Literal["chat", "completions"]
APIS: Final = ("chat", "completions")
#: Formats a text completion can carry (tool calling needs the chat API).
COMPLETION_FORMATS: Final = ("json", "react")
#: Where a completion answer ends: the next ``### `` heading the base model starts on its own.
COMPLETION_STOP: Final = ("\n###",)
PROMPT_VERSION: Final = "v1"
PROMPT_DIR: Final = Path(__file__).resolve().parent / "prompts"

#: What the demonstration says when the instance's gold sequence is empty.
NO_CALL_REPLY: Final = "No API call is needed for this request."
#: Heads the earlier turns of a multi-turn instance in its demonstration's user message.
EARLIER_TURNS_HEADER: Final = "(Earlier in this conversation:)"
#: Placeholder tool result when observations are not shown (tools format needs a tool message per call).
HIDDEN_OBSERVATION: Final = "(result not shown in this example)"


@dataclass(frozen=True)
class IcePrompt:
    """One request of the ICE grid: an instance (demonstration) x a test query."""

    custom_id: str
    instance_id: str
    query_id: str
    prompt_id: str
    call_format: str
    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] | None
    #: the whole prompt text of a text-completion request (``messages`` is then empty), else None
    text: str | None = None
    #: stop sequences of a text-completion request
    stop: tuple[str, ...] | None = None


def prompt_id_for(call_format: CallFormat) -> str:
    """``ice_<format>.v1`` — names the template file and travels into the cache key and result rows."""
    _check_format(call_format)
    return f"ice_{call_format}.{PROMPT_VERSION}"


def load_template(call_format: CallFormat) -> Template:
    path = PROMPT_DIR / f"{prompt_id_for(call_format)}.txt"
    return Template(path.read_text(encoding="utf-8"))


def render_apis(tools: Iterable[ToolSpec]) -> str:
    """One compact JSON schema per line: ``{"name", "description", "parameters"}``."""
    return "\n".join(json.dumps(tool.model_dump(mode="json"), ensure_ascii=False) for tool in tools)


def openai_tools(tools: Iterable[ToolSpec]) -> tuple[dict[str, Any], ...]:
    """Test-bed tools as OpenAI ``tools`` definitions (``{"type": "function", "function": {...}}``)."""
    return tuple(
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    )


def system_message(testbed: TestBed, call_format: CallFormat) -> dict[str, Any]:
    """The system message shared by every request of a test bed and format."""
    date = _dt.date.fromisoformat(testbed.reference_date)
    text = load_template(call_format).substitute(
        reference_date=testbed.reference_date,
        weekday=date.strftime("%A"),
        apis=render_apis(testbed.tools),
    )
    return {"role": "system", "content": text.strip()}


def _arguments_json(call: Call | dict[str, Any]) -> str:
    """Arguments as JSON text; the raw text when they failed to parse (kept as the instance has it)."""
    arguments = call.arguments if isinstance(call, Call) else call.get("arguments")
    raw = call.raw_arguments if isinstance(call, Call) else call.get("raw_arguments")
    if arguments is None:
        return raw if raw is not None else "{}"
    return json.dumps(arguments, ensure_ascii=False)


def render_calls(calls: Sequence[Call | dict[str, Any]], call_format: Literal["json", "react"]) -> str:
    """A call sequence as answer text in ``json`` or ``react`` format (how demonstrations are shown).

    An empty sequence renders as ``[]`` (json) or ``Final Answer: ...`` (react).
    """
    if call_format == "json":
        items = []
        for call in calls:
            name = call.name if isinstance(call, Call) else call["name"]
            arguments = call.arguments if isinstance(call, Call) else call.get("arguments")
            if arguments is None:  # unparsed arguments: show the raw text as a JSON string
                arguments = call.raw_arguments if isinstance(call, Call) else call.get("raw_arguments")
            items.append({"name": name, "arguments": arguments})
        return json.dumps(items, ensure_ascii=False)
    if call_format == "react":
        if not calls:
            return f"Final Answer: {NO_CALL_REPLY}"
        blocks = []
        for call in calls:
            name = call.name if isinstance(call, Call) else call["name"]
            blocks.append(f"Action: {name}\nAction Input: {_arguments_json(call)}")
        return "\n".join(blocks)
    raise ValueError(f"render_calls handles 'json' and 'react'; got {call_format!r}")


def demonstration_request(instance: Instance) -> str:
    """The demonstration's user message: the instruction, preceded for a turn of a multi-turn dialogue
    by the earlier turns as text (:data:`EARLIER_TURNS_HEADER`), so the values the calls take from them
    are visible in the example."""
    if not instance.context:
        return instance.instruction
    return f"{EARLIER_TURNS_HEADER}\n{dialogue_text(instance)}\n\n{instance.instruction}"


def demonstration_messages(
    instance: Instance, call_format: CallFormat, *, include_observations: bool = False
) -> list[dict[str, Any]]:
    """The instance as a user/assistant exchange in ``call_format`` (requires ``instance.calls``)."""
    _check_format(call_format)
    if instance.calls is None:
        raise ValueError(f"instance {instance.id} has no gold calls and cannot be a demonstration")
    calls = instance.calls
    messages: list[dict[str, Any]] = [{"role": "user", "content": demonstration_request(instance)}]
    observations = [c.observation if c.observation is not None else "" for c in calls]
    if call_format == "tools":
        if not calls:
            messages.append({"role": "assistant", "content": NO_CALL_REPLY})
            return messages
        tool_calls = [
            {"id": f"demo_call_{i}", "type": "function",
             "function": {"name": call.name, "arguments": _arguments_json(call)}}
            for i, call in enumerate(calls)
        ]
        messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        for i, observation in enumerate(observations):
            content = observation if include_observations and observation else HIDDEN_OBSERVATION
            messages.append({"role": "tool", "tool_call_id": f"demo_call_{i}", "content": content})
        return messages
    if call_format == "react" and include_observations and calls:
        blocks = [
            f"Action: {call.name}\nAction Input: {_arguments_json(call)}\nObservation: {obs}"
            for call, obs in zip(calls, observations)
        ]
        messages.append({"role": "assistant", "content": "\n".join(blocks)})
        return messages
    messages.append({"role": "assistant", "content": render_calls(calls, call_format)})
    if call_format == "json" and include_observations and calls:
        messages.append({"role": "user", "content": "Results of those calls, in order:\n"
                         + json.dumps(observations, ensure_ascii=False)})
    return messages


def custom_id_for(testbed: TestBed, call_format: str, instance_id: str, query_id: str) -> str:
    return f"ice|{testbed.version}|{call_format}|{instance_id}|{query_id}"


def build_prompt(
    instance: Instance,
    query: TestQuery,
    testbed: TestBed,
    call_format: CallFormat = "json",
    *,
    include_observations: bool = False,
) -> IcePrompt:
    """The full request for one instance x test query (see the module docstring for the layout)."""
    messages = [system_message(testbed, call_format)]
    messages += demonstration_messages(instance, call_format, include_observations=include_observations)
    messages.append({"role": "user", "content": query.query})
    return IcePrompt(
        custom_id=custom_id_for(testbed, call_format, instance.id, query.id),
        instance_id=instance.id,
        query_id=query.id,
        prompt_id=prompt_id_for(call_format),
        call_format=call_format,
        messages=tuple(messages),
        tools=openai_tools(testbed.tools) if call_format == "tools" else None,
    )


def build_prompts(
    instances: Iterable[Instance],
    testbed: TestBed,
    call_format: CallFormat = "json",
    *,
    include_observations: bool = False,
    queries: Sequence[TestQuery] | None = None,
) -> list[IcePrompt]:
    """Prompts for every instance with gold calls x every test query, instance-major order.

    Instances with ``calls is None`` are skipped (the engine reports them unscored). Empty input gives
    an empty list.
    """
    queries = list(testbed.queries if queries is None else queries)
    system = system_message(testbed, call_format)
    tools = openai_tools(testbed.tools) if call_format == "tools" else None
    prompts = []
    for instance in instances:
        if instance.calls is None:
            continue
        demo = demonstration_messages(instance, call_format, include_observations=include_observations)
        for query in queries:
            prompts.append(
                IcePrompt(
                    custom_id=custom_id_for(testbed, call_format, instance.id, query.id),
                    instance_id=instance.id,
                    query_id=query.id,
                    prompt_id=prompt_id_for(call_format),
                    call_format=call_format,
                    messages=(system, *demo, {"role": "user", "content": query.query}),
                    tools=tools,
                )
            )
    return prompts


def completion_prompt_id_for(call_format: CallFormat) -> str:
    """``ice_completion_<format>.v1`` — the template file of a text-completion prompt."""
    _check_completion_format(call_format)
    return f"ice_completion_{call_format}.{PROMPT_VERSION}"


def _demonstration_text(instance: Instance, call_format: CallFormat, include_observations: bool) -> str:
    calls = instance.calls or []
    observations = [c.observation if c.observation is not None else "" for c in calls]
    if call_format == "react" and include_observations and calls:
        answer = "\n".join(f"Action: {c.name}\nAction Input: {_arguments_json(c)}\nObservation: {o}"
                           for c, o in zip(calls, observations))
    else:
        answer = render_calls(calls, call_format)  # type: ignore[arg-type]
    text = f"### Request\n{instance.instruction}\n### Answer\n{answer}"
    if call_format == "json" and include_observations and calls:
        text += "\n### Results\n" + json.dumps(observations, ensure_ascii=False)
    return text


def build_completion_prompts(
    instances: Iterable[Instance],
    testbed: TestBed,
    call_format: CallFormat = "json",
    *,
    include_observations: bool = False,
    queries: Sequence[TestQuery] | None = None,
) -> list[IcePrompt]:
    """Text-completion prompts for every instance with gold calls x every test query (instance-major).

    The same grid, ids and skipping rule as :func:`build_prompts`; each prompt's ``text`` is the
    rendered ``ice_completion_<format>.v1.txt`` and ``stop`` is :data:`COMPLETION_STOP`.
    """
    _check_completion_format(call_format)
    queries = list(testbed.queries if queries is None else queries)
    date = _dt.date.fromisoformat(testbed.reference_date)
    template = Template((PROMPT_DIR / f"{completion_prompt_id_for(call_format)}.txt").read_text(encoding="utf-8"))
    apis = render_apis(testbed.tools)
    prompt_id = completion_prompt_id_for(call_format)
    prompts = []
    for instance in instances:
        if instance.calls is None:
            continue
        demonstration = _demonstration_text(instance, call_format, include_observations)
        for query in queries:
            text = template.substitute(reference_date=testbed.reference_date, weekday=date.strftime("%A"),
                                       apis=apis, demonstration=demonstration, query=query.query)
            prompts.append(IcePrompt(
                custom_id=custom_id_for(testbed, f"completion_{call_format}", instance.id, query.id),
                instance_id=instance.id, query_id=query.id, prompt_id=prompt_id, call_format=call_format,
                messages=(), tools=None, text=text, stop=COMPLETION_STOP,
            ))
    return prompts


def _check_completion_format(call_format: str) -> None:
    if call_format not in COMPLETION_FORMATS:
        raise ValueError(f"text completions carry the json or react format, not {call_format!r} (tool calling "
                         "needs the chat API)")


def _check_format(call_format: str) -> None:
    if call_format not in CALL_FORMATS:
        raise ValueError(f"unknown call format {call_format!r}; expected one of {', '.join(CALL_FORMATS)}")
