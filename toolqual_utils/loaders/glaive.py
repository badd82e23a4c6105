"""Glaive function calling v2: ``{"system", "chat"}`` per record, a whole dialogue in two strings.

Published description: the dataset card of ``glaiveai/glaive-function-calling-v2`` on the Hugging Face
Hub; the released ``glaive-function-calling-v2.json`` is one JSON array of about 113K records. The
``system`` text reads ``SYSTEM: You are a helpful assistant with access to the following functions. Use
them if required -`` followed by the function definitions as JSON objects one after another (not a
list), or says the assistant has no access to functions. ``chat`` is the dialogue as text with
``USER:``, ``ASSISTANT:`` and ``FUNCTION RESPONSE:`` markers, turns separated by blank lines and
assistant turns ended by ``<|endoftext|>``; a call is ``ASSISTANT: <functioncall> {"name": ...,
"arguments": ...}``.

Read from a JSON array (streamed), JSON Lines, Parquet, a ``datasets`` folder or gzip.

Pitfalls handled:

- The call's ``arguments`` is usually a JSON object **wrapped in single quotes**
  (``"arguments": '{"city": "Paris"}'``), which makes the whole call invalid JSON: the quoted text is
  cut out and parsed on its own. Arguments given as a plain object are read too. A call that still
  does not parse is kept as a flagged raw call (``arguments`` None, the call text in ``raw_arguments``)
  under the name found in it.
- ``FUNCTION RESPONSE:`` turns carry no call id or name: each answers the latest call still waiting.
- Dialogues are multi-turn and many turns call nothing (greetings, clarifying questions, refusals): one
  instance per user turn that calls a function, with the earlier turns as ``context``; a dialogue with no
  call at all is one instance with ``calls == []`` (the assistant answered without a tool).
- ``<|endoftext|>`` markers are removed from texts.

Ids: ``glaive/<file stem>/<index>`` (``/turn<j>`` when a dialogue has several tool-calling turns);
source ``glaive``.
"""
from __future__ import annotations

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

FORMAT = "glaive"

_MARKER = re.compile(r"(?:^|\n)[ \t]*(USER|ASSISTANT|FUNCTION RESPONSE|SYSTEM)[ \t]*:[ \t]?")
_END = "<|endoftext|>"
_CALL = "<functioncall>"
_QUOTED_ARGUMENTS = re.compile(r"""^(?P<head>\{\s*"name"\s*:\s*"(?P<name>[^"]*)"\s*,\s*"arguments"\s*:\s*)'(?P<args>.*)'\s*\}\s*$""",
                               re.S)
_NAME = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")


def sniff(probe: Probe) -> bool:
    head = head_records(probe)
    return bool(head) and isinstance(head[0].get("chat"), str) and isinstance(head[0].get("system"), str)


def split_chat(chat: str) -> list[tuple[str, str]]:
    """(marker, text) per turn of a Glaive ``chat`` string, ``<|endoftext|>`` removed, text stripped."""
    turns: list[tuple[str, str]] = []
    matches = list(_MARKER.finditer(chat))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(chat)
        text = chat[match.end():end].replace(_END, "").strip()
        turns.append((match.group(1), text))
    return turns


def parse_function_call(text: str) -> RawCall:
    """The call after ``<functioncall>``: JSON, or JSON whose arguments are single-quoted text."""
    body = text.strip()
    try:
        value, _how = parse_value(body)
    except NotALiteral:
        value = None
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return RawCall.from_source(value["name"], value.get("arguments"))
    quoted = _QUOTED_ARGUMENTS.match(body)
    if quoted:
        return RawCall.from_source(quoted.group("name"), quoted.group("args"))
    name = _NAME.search(body)
    return RawCall(name.group(1) if name else "<unparsed>", None, body)


def convert(record: dict[str, Any], *, dialogue_id: str, path: Path, location: str) -> list[Instance | Reject]:
    system, chat = record.get("system"), record.get("chat")
    if not isinstance(chat, str) or not chat.strip():
        return [reject(path, location, "expected the dialogue text", field="chat", record_id=dialogue_id)]
    if not isinstance(system, str):
        return [reject(path, location, "expected the system text", field="system", record_id=dialogue_id)]
    system_text = re.sub(r"^\s*SYSTEM\s*:\s*", "", system).strip()
    definitions = [obj for obj in embedded_objects(system_text) if isinstance(obj.get("name"), str)]
    tools, dropped = canonical_tools(definitions)
    messages: list[Message] = [Message("system", system_text)] if system_text else []
    turns = split_chat(chat)
    if not turns:
        return [reject(path, location, "no USER:/ASSISTANT: markers in the dialogue text", field="chat",
                       record_id=dialogue_id)]
    for marker, text in turns:
        if marker == "USER":
            messages.append(Message("user", text))
        elif marker == "SYSTEM":
            messages.append(Message("system", text))
        elif marker == "FUNCTION RESPONSE":
            messages.append(Message("tool", text))
        elif text.startswith(_CALL) or _CALL in text:
            before, _, after = text.partition(_CALL)
            messages.append(Message("assistant", before.strip() or None, [parse_function_call(after)]))
        else:
            messages.append(Message("assistant", text))
    meta: dict[str, Any] = {"system_prompt_lists_tools": bool(definitions)}
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    return dialogue_instances(messages, dialogue_id=dialogue_id, source="glaive", tools=tools, meta=meta,
                              path=path, location=location)


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    stem = source_stem(path)
    for index, (location, item) in enumerate(iter_items(probe)):
        if isinstance(item, Reject):
            yield item
            continue
        yield from convert(item, dialogue_id=f"glaive/{stem}/{index}", path=path, location=location)


__all__ = ["FORMAT", "convert", "iter_records", "parse_function_call", "sniff", "split_chat"]
