"""ToolLLaMA training conversations (ToolBench's ``toolllama_G123_dfs_train.json`` and ``..._eval.json``).

Published description: OpenBMB/ToolBench ``README.md`` ("Data", the preprocessed ``toolllama_*``
files used to train ToolLLaMA) and ``preprocess/preprocess_toolllama_data.py``, which writes them from
the answer files. One JSON array of ``{"id": "Step <n>: <query>", "conversations": [{"from", "value"}]}``
with roles ``system``, ``user``, ``assistant``, ``function``:

- the system turn is ToolBench's AutoGPT prompt followed by ``Specifically, you have access to the
  following APIs: [...]`` where the list is Python's ``str()`` of the function definitions (single
  quotes, ``True``/``None``);
- the user turn is ``\\n<query>\\nBegin!\\n``;
- each assistant turn is ReAct text ``\\nThought: ...\\nAction: <function>\\nAction Input: <JSON>``;
- each ``function`` turn is the API's response (``{"error": "", "response": ...}``);
- ``Finish`` is the pseudo-call that ends a trajectory (``return_type`` ``give_answer`` with the
  ``final_answer``, or ``give_up_and_restart``).

Pitfalls handled:

- **One record per step**: the preprocessing writes a record for every assistant step of a trajectory,
  each holding the whole history up to that step (``Step 2``, ``Step 4``, ...). Consecutive records of the
  same query whose conversation is a prefix of the next are merged into the longest one (read as one
  stream, so memory stays flat); ``meta["toolllama_record_ids"]`` lists the ids of every record merged,
  so a verdict on the instance can be traced back to all the training records it covers. Records of
  different trajectories of one query (different branches) stay separate instances.
- Tools come from the Python-literal list in the system prompt (``ast``, never ``eval``); ``Finish`` is
  not a tool; ToolBench's non-standard ``optional`` list is dropped as in the ToolBench loader.
- ``Action Input`` is JSON text read with ``strict=False`` (ToolBench's own runner did so); text that is
  not a JSON object is a parse failure kept in ``raw_arguments``. An assistant turn with no ``Action``
  line is text.
- ``Finish`` goes to ``meta["pseudo_calls"]``; its ``final_answer`` becomes the instance's final answer;
  ``give_up_and_restart`` sets ``meta["give_up"] = True``.
- The ``Thought`` text is not kept as the turn's text (it is reasoning, not an answer to the user).

Ids: ``toolllama/<file stem>/<index of the last merged record>``; source ``toolllama``.
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
from ._literals import find_embedded, is_tool_list
from ._toolspec import canonical_tools
from .containers import head_records, iter_items, source_stem

FORMAT = "toolllama"

_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "function": "tool"}
_ACTION = re.compile(r"(?:^|\n)\s*Action\s*:\s*(?P<name>[^\n]*?)\s*\n\s*Action Input\s*:\s*(?P<input>.*)$", re.S)
_APIS = "you have access to the following APIs:"
_BEGIN = re.compile(r"\s*Begin!\s*$")


def sniff(probe: Probe) -> bool:
    """``conversations`` with ToolBench's roles: a ``system`` turn and ``function`` or ReAct assistant turns."""
    head = head_records(probe)
    if not head:
        return False
    turns = head[0].get("conversations")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], dict):
        return False
    if turns[0].get("from") != "system" or not all(isinstance(t, dict) and t.get("from") in _ROLES for t in turns):
        return False
    return any(t.get("from") == "function" or "Action Input" in str(t.get("value", "")) for t in turns) or \
        _APIS in str(turns[0].get("value", ""))


def react_message(value: str) -> Message:
    """An assistant ReAct turn -> a call (or text when it has no Action line)."""
    match = _ACTION.search(value)
    if match is None:
        text = re.sub(r"^\s*Thought\s*:\s*", "", value).strip()
        return Message("assistant", text or None)
    name, raw = match.group("name").strip(), match.group("input").strip()
    return Message("assistant", None, [RawCall.from_source(name, raw)])


def _turn_key(turns: list[Any]) -> list[tuple[Any, Any]]:
    return [(t.get("from"), t.get("value")) if isinstance(t, dict) else (None, t) for t in turns]


def _query(turns: list[Any]) -> str | None:
    for turn in turns:
        if isinstance(turn, dict) and turn.get("from") == "user":
            return str(turn.get("value"))
    return None


def convert(record: dict[str, Any], *, dialogue_id: str, merged_ids: list[str], path: Path,
            location: str) -> list[Instance | Reject]:
    turns = record.get("conversations")
    if not isinstance(turns, list):
        return [reject(path, location, "expected a list of turns", field="conversations", record_id=dialogue_id)]
    messages: list[Message] = []
    definitions: Any = None
    for position, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") not in _ROLES or not isinstance(turn.get("value"), str):
            return [reject(path, location, "each turn needs 'from' (system, user, assistant, function) and a text "
                           "'value'", field=f"conversations[{position}]", record_id=dialogue_id)]
        role, value = _ROLES[turn["from"]], turn["value"]
        if role == "system":
            messages.append(Message("system", value))
            if definitions is None and _APIS in value:
                definitions = find_embedded(value[value.index(_APIS):], accept=is_tool_list)
        elif role == "user":
            messages.append(Message("user", _BEGIN.sub("", value).strip()))
        elif role == "assistant":
            messages.append(react_message(value))
        else:
            messages.append(Message("tool", value))
    if definitions is None:
        return [reject(path, location, "no API list found in the system turn (expected 'Specifically, you have "
                       "access to the following APIs: [...]')", field="conversations[0]", record_id=dialogue_id)]
    tools, dropped = canonical_tools(definitions, exclude=frozenset({"Finish"}))
    meta: dict[str, Any] = {"system_prompt_lists_tools": True, "toolllama_record_ids": merged_ids}
    if dropped:
        meta["duplicate_tools_dropped"] = dropped
    results = dialogue_instances(messages, dialogue_id=dialogue_id, source="toolllama", tools=tools, meta=meta,
                                 path=path, location=location)
    for item in results:
        if isinstance(item, Instance):
            item.meta["give_up"] = any("give_up_and_restart" in str(p.get("raw_arguments") or "")
                                       for p in item.meta.get("pseudo_calls") or [])
    return results


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    """Stream records, merging each run of step records that extend one another (module docstring)."""
    stem = source_stem(path)
    pending: tuple[int, str, dict[str, Any], list[str]] | None = None  # (index, location, record, ids)

    def flush() -> Iterator[Instance | Reject]:
        if pending is not None:
            index, location, record, ids = pending
            yield from convert(record, dialogue_id=f"toolllama/{stem}/{index}", merged_ids=ids, path=path,
                               location=location)

    for index, (location, item) in enumerate(iter_items(probe)):
        if isinstance(item, Reject):
            yield item
            continue
        record_id = str(item.get("id", index))
        turns = item.get("conversations")
        if pending is not None and isinstance(turns, list):
            previous = pending[2].get("conversations")
            if (isinstance(previous, list) and len(previous) < len(turns) and _query(previous) == _query(turns)
                    and _turn_key(turns[: len(previous)]) == _turn_key(previous)):
                pending = (index, location, item, [*pending[3], record_id])
                continue
        yield from flush()
        pending = (index, location, item, [record_id])
    yield from flush()


__all__ = ["FORMAT", "convert", "iter_records", "react_message", "sniff"]
