"""OpenAI chat fine-tuning data: ``{"messages": [...], "tools": [...]}`` per record.

The format of OpenAI's chat fine-tuning files (platform.openai.com/docs/guides/fine-tuning, "Preparing
your dataset" and "Fine-tuning with function calling") and of the ``messages`` + ``tools`` datasets that
TRL's ``SFTTrainer`` (huggingface/trl ``docs/source/dataset_formats.md``, "Tool Calling") and axolotl's
``chat_template`` strategy (axolotl ``docs/dataset-formats/conversation.qmd``, "Using tool use") train on.
Read from JSON Lines, a JSON array, or any container of :mod:`~toolqual_utils.loaders.containers`
(Parquet, a Hugging Face ``datasets`` folder, ``.jsonl.gz``).

- Tools: the top-level ``tools`` list of ``{"type": "function", "function": {name, description,
  parameters}}`` (legacy top-level ``functions`` lists of bare definitions are read too).
- Calls: every assistant ``tool_calls`` entry and legacy ``function_call``, in order.
  ``function.arguments`` may be a JSON string (OpenAI) or an object (TRL, axolotl); text that is not a
  JSON object is kept in ``raw_arguments`` with ``arguments`` None. Results: the ``tool`` message whose
  ``tool_call_id`` matches; a ``tool`` message without a call id (common outside OpenAI's own files)
  answers the next call of the latest assistant turn still waiting for one (by ``name`` when given);
  legacy ``function`` messages are paired by name.
- Multi-turn: one instance per user turn whose replies call tools, with the earlier turns as
  ``context`` (rules and ids in :mod:`toolqual_utils.loaders._dialogue`). An assistant message with
  ``"weight": 0`` (OpenAI's flag for "do not train on this turn", which ``toolqual select`` writes on
  earlier turns) is context, never an instance of its own.
- ``system`` messages go to ``meta["system_prompts"]``; pseudo-tools (``Finish`` ...) go to
  ``meta["pseudo_calls"]``; a ``Finish`` ``final_answer`` is used when no assistant text follows.
- Final answer: the last assistant text of the turn.
- A conversation with no assistant message gets ``calls = None`` (nothing known); one whose assistant
  answers without tools gets ``calls = []``.
- Ids: the record's ``id`` field when present (used as is), else ``<file stem>/<index>`` with a
  0-based index over records (non-blank lines); ``/turn<j>`` is appended when a record holds several
  tool-calling turns. Source ``openai-chat`` unless the record has ``source``.

:func:`toolqual_utils.export.to_openai_record` (``toolqual select --format openai``) writes this format;
this loader reads its records back unchanged in instruction, context, tools, calls and final answer.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import Reject
from ..schema import Instance
from ._common import Probe, dedupe_tools, reject, tool_record
from ._dialogue import Message, RawCall, dialogue_instances
from .containers import head_records, iter_items, source_stem

FORMAT = "openai"


def sniff(probe: Probe) -> bool:
    """JSON Lines, a JSON array or a container of records whose first record has a ``messages`` list."""
    head = head_records(probe)
    return bool(head) and isinstance(head[0].get("messages"), list)


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


def _messages(raw_messages: list[Any]) -> list[Message]:
    messages: list[Message] = []
    for message in raw_messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = _text(message.get("content"))
        if role == "system" and content is not None:
            messages.append(Message("system", content))
        elif role == "user" and content is not None:
            messages.append(Message("user", content))
        elif role == "assistant":
            calls = []
            for tool_call in message.get("tool_calls") or []:
                if isinstance(tool_call, dict) and isinstance(tool_call.get("function"), dict):
                    function = tool_call["function"]
                    calls.append(RawCall.from_source(str(function.get("name") or ""), function.get("arguments"),
                                                     tool_call.get("id")))
            if isinstance(message.get("function_call"), dict):
                function = message["function_call"]
                calls.append(RawCall.from_source(str(function.get("name") or ""), function.get("arguments")))
            messages.append(Message("assistant", content, calls, context_only=message.get("weight") == 0))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            messages.append(Message("tool", content, call_id=None if call_id is None else str(call_id),
                                    name=message.get("name") if isinstance(message.get("name"), str) else None))
        elif role == "function":  # legacy function result: paired by name
            messages.append(Message("tool", content, name=str(message.get("name") or "")))
    return messages


def convert(record: dict[str, Any], *, instance_id: str, path: Path, location: str) -> list[Instance | Reject]:
    """One chat record -> its instances (one per tool-calling user turn; see ``_dialogue``)."""
    messages = record.get("messages")
    if not isinstance(messages, list):
        return [reject(path, location, "expected a list of messages", field="messages", record_id=instance_id)]
    meta: dict[str, Any] = {}
    if isinstance(record.get("meta"), dict):
        meta = dict(record["meta"])
    tools, dropped = dedupe_tools(_tools(record))
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    source = record["source"] if isinstance(record.get("source"), str) and record["source"] else "openai-chat"
    return dialogue_instances(_messages(messages), dialogue_id=instance_id, source=source, tools=tools, meta=meta,
                              path=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    index = -1
    stem = source_stem(path)
    for location, item in iter_items(probe):
        index += 1
        if isinstance(item, Reject):
            yield item
            continue
        given = item.get("id")
        instance_id = str(given) if isinstance(given, (str, int)) and str(given) else f"{stem}/{index}"
        yield from convert(item, instance_id=instance_id, path=path, location=location)
