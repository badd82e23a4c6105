"""Export a selection as training data, in the formats trainers consume, plus a manifest that says exactly
what was exported, and what was left out and why.

Formats (one JSON object per line; ``docs/training_formats.md`` shows each with the trainer
configuration that reads it):

- ``canonical``: toolqual's own records (``schema.Instance.to_record``), every selected instance.
- ``openai``: ``{"messages": [...], "tools": [{"type": "function", "function": {...}}]}``, OpenAI's chat
  fine-tuning format, which TRL's ``SFTTrainer`` and axolotl's ``chat_template`` strategy also read.
- ``sharegpt``: ShareGPT with **Hermes tags** (the layout of NousResearch's hermes-function-calling-v1):
  ``{"id", "source", "conversations": [{"from", "value"}]}`` with ``system`` (the tools inside
  ``<tools>...</tools>``), ``human``, ``gpt`` (calls as ``<tool_call>{"name", "arguments"}</tool_call>``
  blocks) and ``tool`` (results as ``<tool_response>...</tool_response>`` blocks) turns.
- ``llamafactory``: LLaMA-Factory's ShareGPT layout: ``{"id", "conversations": [...], "system",
  "tools"}`` with ``human``, ``function_call`` (``{"name", "arguments"}`` JSON, a list for parallel
  calls), ``observation`` and ``gpt`` turns, ``tools`` a JSON string and ``system`` a column.
- ``xlam``: xLAM/APIGen records ``{"id", "query", "tools", "answers"}`` with ``tools`` and ``answers``
  as JSON strings and tool parameters in xLAM's flat ``name -> {"type": "str", ...}`` form.

The conversation of one instance, in the chat formats (``openai``, ``sharegpt``, ``llamafactory``):

1. **System prompt** (``meta["system_prompts"]`` of the source records): written as the system message
   (``openai``), the system column (``llamafactory``) or before the tool block of the system turn
   (``sharegpt``). A system prompt that *lists the tools in the source format's own syntax*
   (``meta["system_prompt_lists_tools"]``: ToolACE, Glaive, ToolLLaMA, Hermes) is not copied into a
   format that carries the tools itself (it would list them twice, in another syntax); it is counted
   with its instance ids under ``system_prompts_dropped`` in the manifest. ``sharegpt`` keeps a Hermes
   prompt verbatim when its ``<tools>`` block lists exactly the instance's tools. ``xlam`` has no system
   prompt: every one is counted as dropped.
2. **Earlier turns** (``Instance.context``): written before the instruction; every earlier assistant
   message carries ``"weight": 0`` (OpenAI's per-message training flag; axolotl reads it with
   ``message_field_training: weight``): the earlier turns are context, only this instance's own turn is
   a training target. toolqual's loaders read ``weight: 0`` messages back as context.
3. The instruction as the user turn, then the gold calls:

   * when at least one call has a known result: the calls grouped into assistant messages as the
     source grouped them (``meta["call_batches"]``; one call per message otherwise), each message
     followed by its results (a missing result becomes an empty one, counted as
     ``empty_observations``), then the final answer as a last assistant turn when known;
   * when no call has a result (xLAM, BFCL, Seal-Tools): one assistant turn with all calls as parallel
     calls; the final answer, if any, is not written (with no tool results there is nothing to ground
     it) and is counted under ``final_answers_dropped``;
   * ``calls == []`` (gold says "no call"): an assistant turn with the final answer, or ``""``.

Pseudo-calls (``Finish``, ``getDetails`` ...) are never written: the schema keeps them out of ``calls``,
and any that slipped into ``calls`` are dropped and counted (``pseudo_calls_dropped``). Unparsed
arguments are written as their raw text (so the loaders read them back as a parse failure, never as
guessed values). ``xlam`` cannot hold tool results or final answers (counted under
``observations_dropped`` and ``final_answers_dropped``) and writes earlier turns in an extra
``context`` field (canonical turns) that xLAM consumers ignore.

Instances with ``calls is None`` (no gold calls known) have no training target: the training formats
skip them and the manifest lists them under ``skipped`` with the reason; ``canonical`` keeps them.
Every format reads back through ``toolqual load`` with the same instruction, tools, calls and context
(``tests/test_export_formats.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

from . import __version__
from .errors import InputError
from .io import atomic_open, atomic_write_text
from .schema import PSEUDO_CALLS, Call, Instance, ToolSpec, Turn
from .selection import Selection

ExportFormat = Literal["canonical", "openai", "sharegpt", "llamafactory", "xlam"]
EXPORT_FORMATS: Final = ("canonical", "openai", "sharegpt", "llamafactory", "xlam")
#: how tool-call arguments are written in the ``openai`` format: a JSON string (OpenAI's fine-tuning
#: format) or an object (what many Hugging Face chat templates expect, e.g. for TRL)
ToolArguments = Literal["string", "object"]

#: the system text of ``sharegpt`` exports; ``{tools}`` is the JSON list of tools, one per line
HERMES_SYSTEM: Final = (
    "You can call functions to help with the user's request. The functions you may call are listed as JSON "
    "inside <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n"
    "To call a function, write a JSON object with its name and arguments inside <tool_call></tool_call> XML "
    "tags, one block per call: <tool_call>\n{{\"name\": <function name>, \"arguments\": <arguments object>}}\n"
    "</tool_call>"
)

__all__ = [
    "EXPORT_FORMATS", "HERMES_SYSTEM", "export_instances", "export_selection", "manifest_path",
    "to_llamafactory_record", "to_openai_record", "to_sharegpt_record", "to_xlam_record",
]


# --- the conversation of one instance, format-neutral -----------------------------------------------------

@dataclass
class _Message:
    role: Literal["user", "assistant", "tool"]
    content: str | None = None
    calls: list[Call] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    answers: str | None = None  # tool: the call id it answers
    name: str | None = None  # tool: the tool whose result it is
    context: bool = False  # an earlier turn (not a training target)


@dataclass
class _Notes:
    """What one instance's export left out (summed into the manifest)."""

    final_answer_dropped: bool = False
    empty_observations: int = 0
    pseudo_dropped: int = 0
    observations_dropped: int = 0
    system_dropped: bool = False
    ends_with_result: bool = False


def _arguments_text(call: Call) -> str:
    if call.arguments is not None:
        return json.dumps(call.arguments, ensure_ascii=False)
    return call.raw_arguments or ""


def _call_json(call: Call) -> dict[str, Any]:
    return {"name": call.name, "arguments": call.arguments if call.arguments is not None else (call.raw_arguments or "")}


def _api_calls(instance: Instance) -> list[Call]:
    return [call for call in instance.calls or [] if call.name not in PSEUDO_CALLS]


def _layout(instance: Instance) -> str:
    """"sequential" (turns with tool results), "parallel" (one turn, no results) or "none"."""
    calls = _api_calls(instance)
    if not calls:
        return "none"
    if all(call.observation is None for call in calls):
        return "parallel"
    return "sequential"


def _batches(instance: Instance, calls: list[Call]) -> list[list[Call]]:
    sizes = instance.meta.get("call_batches")
    if (isinstance(sizes, list) and all(isinstance(n, int) and n > 0 for n in sizes)
            and sum(sizes) == len(calls)):
        groups, start = [], 0
        for size in sizes:
            groups.append(calls[start:start + size])
            start += size
        return groups
    return [[call] for call in calls]


def _conversation(instance: Instance, notes: _Notes) -> list[_Message]:
    """Earlier turns, the instruction and the gold turn (layout in the module docstring)."""
    messages: list[_Message] = []
    counter = 0

    def ids(n: int) -> list[str]:
        nonlocal counter
        made = [f"call_{counter + i}" for i in range(n)]
        counter += n
        return made

    for turn in instance.context:
        messages.extend(_context_messages(turn, ids))
    messages.append(_Message("user", instance.instruction))
    calls = _api_calls(instance)
    notes.pseudo_dropped = len(instance.calls or []) - len(calls)
    layout = _layout(instance)
    if layout == "parallel":
        messages.append(_Message("assistant", None, calls, ids(len(calls))))
        notes.final_answer_dropped = instance.final_answer is not None
    elif layout == "sequential":
        for batch in _batches(instance, calls):
            batch_ids = ids(len(batch))
            messages.append(_Message("assistant", None, batch, batch_ids))
            for call, call_id in zip(batch, batch_ids):
                notes.empty_observations += call.observation is None
                messages.append(_Message("tool", call.observation or "", answers=call_id, name=call.name))
        if instance.final_answer is not None:
            messages.append(_Message("assistant", instance.final_answer))
    else:
        messages.append(_Message("assistant", instance.final_answer or ""))
    return messages


def _context_messages(turn: Turn, ids: Any) -> list[_Message]:
    if turn.role == "user":
        return [_Message("user", turn.content or "", context=True)]
    if turn.role == "tool":
        return [_Message("tool", turn.content or "", name=turn.name, context=True)]
    calls = [call for call in turn.calls if call.name not in PSEUDO_CALLS]
    if not calls and not turn.content:
        return []
    call_ids = ids(len(calls))
    out = [_Message("assistant", turn.content, calls, call_ids, context=True)]
    out.extend(_Message("tool", call.observation or "", answers=call_id, name=call.name, context=True)
               for call, call_id in zip(calls, call_ids))
    return out


def _tool_dicts(instance: Instance) -> list[dict[str, Any]]:
    return [tool.model_dump(mode="json") for tool in instance.tools]


def _system_prompts(instance: Instance) -> list[str]:
    prompts = instance.meta.get("system_prompts")
    return [p for p in prompts if isinstance(p, str) and p.strip()] if isinstance(prompts, list) else []


def _own_system(instance: Instance, notes: _Notes) -> str | None:
    """The source's system prompt for formats that carry the tools themselves (None when there is none
    or it listed the tools in the source's syntax: then ``notes.system_dropped``)."""
    prompts = _system_prompts(instance)
    if not prompts:
        return None
    if instance.meta.get("system_prompt_lists_tools"):
        notes.system_dropped = True
        return None
    return "\n\n".join(prompts)


# --- openai ------------------------------------------------------------------------------------------------

def _openai_messages(instance: Instance, notes: _Notes, arguments: ToolArguments) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = _own_system(instance, notes)
    if system is not None:
        out.append({"role": "system", "content": system})
    for message in _conversation(instance, notes):
        if message.role == "user":
            out.append({"role": "user", "content": message.content})
        elif message.role == "tool":
            entry: dict[str, Any] = {"role": "tool"}
            if message.answers is not None:
                entry["tool_call_id"] = message.answers
            if arguments == "object" or message.answers is None:
                entry["name"] = message.name
            entry["content"] = message.content
            out.append(entry)
        else:
            entry = {"role": "assistant", "content": message.content}
            if message.calls:
                entry["tool_calls"] = [
                    {"id": call_id, "type": "function", "function": {
                        "name": call.name,
                        "arguments": call.arguments if arguments == "object" and call.arguments is not None
                        else _arguments_text(call)}}
                    for call, call_id in zip(message.calls, message.call_ids)
                ]
            if message.context:
                entry["weight"] = 0
            out.append(entry)
    return out


def to_openai_record(instance: Instance, *, include_id: bool = False, tool_arguments: ToolArguments = "string",
                     _notes: _Notes | None = None) -> dict[str, Any] | None:
    """One instance as an OpenAI chat fine-tuning record (layout in the module docstring).

    Args:
        include_id: add top-level ``id`` and ``source`` (the loader takes them back).
        tool_arguments: ``"string"`` (OpenAI: arguments as JSON text) or ``"object"`` (arguments as
            objects and tool messages with the tool ``name``, as Hugging Face chat templates expect).

    Returns None when ``instance.calls is None`` (no training target).
    """
    if instance.calls is None:
        return None
    notes = _notes if _notes is not None else _Notes()
    messages = _openai_messages(instance, notes, tool_arguments)
    notes.ends_with_result = messages[-1]["role"] == "tool"
    record: dict[str, Any] = {
        "messages": messages,
        "tools": [{"type": "function", "function": tool} for tool in _tool_dicts(instance)],
    }
    if include_id:
        record = {"id": instance.id, "source": instance.source, **record}
    return record


# --- sharegpt (Hermes tags) ----------------------------------------------------------------------------------

def hermes_system(tools: Sequence[ToolSpec | Mapping[str, Any]]) -> str:
    """The tool block of a ``sharegpt`` export's system turn (:data:`HERMES_SYSTEM`)."""
    listed = [{"type": "function", "function": t.model_dump(mode="json") if isinstance(t, ToolSpec) else dict(t)}
              for t in tools]
    return HERMES_SYSTEM.format(tools="\n".join(json.dumps(tool, ensure_ascii=False) for tool in listed))


def _hermes_prompt_matches(prompt: str, instance: Instance) -> bool:
    """True when a Hermes system prompt's ``<tools>`` block lists exactly the instance's tools."""
    from .loaders._toolspec import canonical_tools
    from .loaders.sharegpt import tools_from_system

    definitions = tools_from_system(prompt)
    if definitions is None:
        return False
    tools, _dropped = canonical_tools(definitions)
    return tools == _tool_dicts(instance)


def _hermes_system_turn(instance: Instance, notes: _Notes) -> str:
    prompts = _system_prompts(instance)
    if instance.meta.get("system_prompt_lists_tools") and len(prompts) == 1 and "<tools>" in prompts[0] \
            and _hermes_prompt_matches(prompts[0], instance):
        return prompts[0]
    own = _own_system(instance, notes)
    block = hermes_system(instance.tools)
    return f"{own}\n\n{block}" if own else block


def to_sharegpt_record(instance: Instance, *, include_id: bool = True, _notes: _Notes | None = None) -> dict[str, Any] | None:
    """One instance as a ShareGPT record with Hermes tags (module docstring); None when ``calls is None``."""
    if instance.calls is None:
        return None
    notes = _notes if _notes is not None else _Notes()
    turns: list[dict[str, Any]] = [{"from": "system", "value": _hermes_system_turn(instance, notes)}]
    pending_results: list[str] = []
    for message in _conversation(instance, notes):
        if message.role == "tool":
            pending_results.append(f"<tool_response>\n{message.content}\n</tool_response>")
            continue
        if pending_results:
            turns.append({"from": "tool", "value": "\n".join(pending_results)})
            pending_results = []
        if message.role == "user":
            turns.append({"from": "human", "value": message.content})
            continue
        parts = [message.content] if message.content else []
        parts.extend(f"<tool_call>\n{json.dumps(_call_json(call), ensure_ascii=False)}\n</tool_call>"
                     for call in message.calls)
        turn: dict[str, Any] = {"from": "gpt", "value": "\n".join(parts)}
        if message.context:
            turn["weight"] = 0
        turns.append(turn)
    if pending_results:
        turns.append({"from": "tool", "value": "\n".join(pending_results)})
    notes.ends_with_result = turns[-1]["from"] == "tool"
    record: dict[str, Any] = {"conversations": turns}
    if include_id:
        record = {"id": instance.id, "source": instance.source, **record}
    return record


# --- LLaMA-Factory ShareGPT --------------------------------------------------------------------------------

def to_llamafactory_record(instance: Instance, *, include_id: bool = True,
                           _notes: _Notes | None = None) -> dict[str, Any] | None:
    """One instance in LLaMA-Factory's ShareGPT layout (``human``/``function_call``/``observation``/``gpt``
    turns, ``tools`` as a JSON string, ``system`` column); None when ``calls is None``.

    LLaMA-Factory needs user/observation turns and assistant/function turns to alternate: the results of
    one batch of calls are one ``observation`` turn (a JSON list when the batch has several calls), and
    an assistant message that both talks and calls is written as its ``function_call`` turn only.
    """
    if instance.calls is None:
        return None
    notes = _notes if _notes is not None else _Notes()
    turns: list[dict[str, Any]] = []
    pending: list[str] = []

    def flush() -> None:
        nonlocal pending
        if pending:
            value = pending[0] if len(pending) == 1 else json.dumps([_json_or_text(r) for r in pending],
                                                                   ensure_ascii=False)
            turns.append({"from": "observation", "value": value})
            pending = []

    for message in _conversation(instance, notes):
        if message.role == "tool":
            pending.append(message.content or "")
            continue
        flush()
        if message.role == "user":
            turns.append({"from": "human", "value": message.content})
            continue
        if message.calls:
            calls = [_call_json(call) for call in message.calls]
            turn: dict[str, Any] = {"from": "function_call",
                                    "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)}
        else:
            turn = {"from": "gpt", "value": message.content or ""}
        if message.context:
            turn["weight"] = 0
        turns.append(turn)
    flush()
    notes.ends_with_result = turns[-1]["from"] == "observation"
    record: dict[str, Any] = {"conversations": turns, "system": _own_system(instance, notes) or "",
                              "tools": json.dumps(_tool_dicts(instance), ensure_ascii=False)}
    if include_id:
        record = {"id": instance.id, "source": instance.source, **record}
    return record


def _json_or_text(text: str) -> Any:
    """A result as a JSON value when it is JSON written the way ``json.dumps`` writes it (so it reads
    back to the same text), else the text itself."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text
    return value if json.dumps(value, ensure_ascii=False) == text and not isinstance(value, str) else text


# --- xLAM -------------------------------------------------------------------------------------------------

_XLAM_TYPES: Final = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "Dict",
                      "null": "None", "array": "List"}
_XLAM_KEPT: Final = ("type", "description", "default")


def _xlam_type_name(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [_XLAM_TYPES.get(str(k), "Any") for k in kind]
        return names[0] if len(names) == 1 else f"Union[{', '.join(names)}]"
    if kind == "array":
        items = schema.get("items")
        return f"List[{_xlam_type_name(items)}]" if isinstance(items, Mapping) and items.get("type") else "List"
    return _XLAM_TYPES.get(str(kind), "Any") if kind is not None else "Any"


def xlam_tool(tool: ToolSpec) -> dict[str, Any]:
    """A canonical tool in xLAM's flat parameter form (types as Python names, ``", optional"`` for
    optional parameters); other JSON-Schema keywords of a parameter (``enum``, ``items``...) are kept."""
    required = set(tool.required)
    parameters: dict[str, Any] = {}
    for name, schema in tool.properties.items():
        schema = schema if isinstance(schema, Mapping) else {}
        type_name = _xlam_type_name(schema)
        entry: dict[str, Any] = {"type": type_name if name in required else f"{type_name}, optional"}
        if "description" in schema:
            entry["description"] = schema["description"]
        if "default" in schema:
            entry["default"] = schema["default"]
            if name in required:
                entry["required"] = True  # JSON Schema allows both; xLAM would read a default as optional
        for key, value in schema.items():
            if key not in _XLAM_KEPT:
                entry[key] = value
        parameters[name] = entry
    return {"name": tool.name, "description": tool.description, "parameters": parameters}


def to_xlam_record(instance: Instance, *, _notes: _Notes | None = None) -> dict[str, Any] | None:
    """One instance as an xLAM record (``tools``/``answers`` as JSON strings); None when ``calls is None``."""
    if instance.calls is None:
        return None
    notes = _notes if _notes is not None else _Notes()
    calls = _api_calls(instance)
    notes.pseudo_dropped = len(instance.calls) - len(calls)
    notes.observations_dropped = sum(call.observation is not None for call in calls)
    notes.final_answer_dropped = instance.final_answer is not None
    notes.system_dropped = bool(_system_prompts(instance))
    record: dict[str, Any] = {
        "id": instance.id,
        "query": instance.instruction,
        "tools": json.dumps([xlam_tool(tool) for tool in instance.tools], ensure_ascii=False),
        "answers": json.dumps([_call_json(call) for call in calls], ensure_ascii=False),
    }
    if instance.context:
        record["context"] = [turn.model_dump(mode="json") for turn in instance.context]
    return record


# --- files and manifests ----------------------------------------------------------------------------------

def manifest_path(out: str | os.PathLike[str]) -> Path:
    """``<out>.manifest.json`` next to the export."""
    return Path(str(out) + ".manifest.json")


def _file_digest(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


_SYSTEM_DROP_REASONS: Final = {
    "openai": "the source system prompt listed the tools in its own syntax; the tools are in the 'tools' field",
    "sharegpt": "the source system prompt listed the tools in another syntax; the system turn lists them in <tools>",
    "llamafactory": "the source system prompt listed the tools in its own syntax; the tools are in the 'tools' column",
    "xlam": "the xLAM format has no system prompt",
}


def export_instances(
    instances: Iterable[Instance],
    path: str | os.PathLike[str],
    format: ExportFormat = "canonical",
    *,
    include_ids: bool | None = None,
    tool_arguments: ToolArguments = "string",
) -> dict[str, Any]:
    """Write instances in ``format`` (atomically: a temporary file renamed into place).

    Args:
        include_ids: add ids to each record; default False for ``openai`` (a plain fine-tuning file),
            True for ``sharegpt`` and ``llamafactory``; ``canonical`` and ``xlam`` records always carry
            their id.
        tool_arguments: ``openai`` only: ``"string"`` (default) or ``"object"``.

    Returns:
        ``{"n_written", "ids"`` (written, in file order), ``"skipped"`` (``[{"id", "reason"}]``),
        ``"n_multi_turn"`` (written instances with earlier turns), ``"final_answers_dropped",
        "empty_observations", "observations_dropped", "pseudo_calls_dropped", "ends_with_tool_result"``
        (chat records whose last turn is a tool result), ``"system_prompts_dropped"`` (``{"n", "reason",
        "ids"}``), ``"by_source"}``.
    """
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}",
                         field="format")
    if tool_arguments not in ("string", "object"):
        raise InputError(f"unknown tool-argument style {tool_arguments!r}; expected string or object",
                         field="tool_arguments")
    path = Path(path)
    written: list[str] = []
    skipped: list[dict[str, str]] = []
    system_dropped: list[str] = []
    by_source: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    with atomic_open(path) as handle:
        for instance in instances:
            notes = _Notes()
            if format == "canonical":
                record: dict[str, Any] | None = instance.to_record()
            elif format == "openai":
                record = to_openai_record(instance, include_id=bool(include_ids), tool_arguments=tool_arguments,
                                          _notes=notes)
            elif format == "sharegpt":
                record = to_sharegpt_record(instance, include_id=True if include_ids is None else include_ids,
                                            _notes=notes)
            elif format == "llamafactory":
                record = to_llamafactory_record(instance, include_id=True if include_ids is None else include_ids,
                                                _notes=notes)
            else:
                record = to_xlam_record(instance, _notes=notes)
            if record is None:
                skipped.append({"id": instance.id, "reason": "no gold calls known (calls is null): no training target"})
                continue
            totals["final_answers_dropped"] += notes.final_answer_dropped
            totals["empty_observations"] += notes.empty_observations
            totals["observations_dropped"] += notes.observations_dropped
            totals["pseudo_calls_dropped"] += notes.pseudo_dropped
            totals["n_multi_turn"] += bool(instance.context)
            totals["ends_with_tool_result"] += notes.ends_with_result
            if notes.system_dropped:
                system_dropped.append(instance.id)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written.append(instance.id)
            by_source[instance.source] += 1
    return {"n_written": len(written), "ids": written, "skipped": skipped,
            "n_multi_turn": totals["n_multi_turn"],
            "final_answers_dropped": totals["final_answers_dropped"],
            "empty_observations": totals["empty_observations"],
            "observations_dropped": totals["observations_dropped"],
            "pseudo_calls_dropped": totals["pseudo_calls_dropped"],
            "ends_with_tool_result": totals["ends_with_tool_result"],
            "system_prompts_dropped": {"n": len(system_dropped), "reason": _SYSTEM_DROP_REASONS.get(format, "")
                                       if system_dropped else "", "ids": system_dropped},
            "by_source": dict(sorted(by_source.items()))}


def export_selection(
    instances: Iterable[Instance],
    selection: Selection | Sequence[str],
    path: str | os.PathLike[str],
    *,
    format: ExportFormat = "canonical",
    include_ids: bool | None = None,
    tool_arguments: ToolArguments = "string",
    source_files: Sequence[str | os.PathLike[str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the selected instances and write ``<path>.manifest.json``.

    Args:
        instances: the pool the selection was drawn from (ids must all be found in it).
        selection: a :class:`~toolqual_utils.selection.Selection` or a plain list of ids.
        path: output file.
        format: one of :data:`EXPORT_FORMATS`.
        tool_arguments: ``openai`` only: arguments as JSON ``"string"`` (default) or ``"object"``.
        source_files: input files to record in the manifest (path and sha256).
        extra: further JSON-serialisable manifest fields (e.g. the command line).

    Returns:
        The manifest: ``toolqual_version, created_at, format, output, recipe, recipe_label, thresholds,
        seed, size_requested, n_pool, n_candidates, n_selected, shortfall, n_written, n_skipped, skipped,
        n_multi_turn, final_answers_dropped, empty_observations, observations_dropped, pseudo_calls_dropped,
        ends_with_tool_result, system_prompts_dropped, by_source, ids`` (written, in file order), ``notes, source_files``.

    Raises:
        InputError: selected ids missing from ``instances``, or an unknown format.
    """
    if not isinstance(selection, Selection):
        ids = tuple(str(i) for i in selection)
        selection = Selection(ids=ids, recipe="explicit ids", n_candidates=len(ids), n_pool=len(ids))
    pool = {instance.id: instance for instance in instances}
    missing = [i for i in selection.ids if i not in pool]
    if missing:
        raise InputError(
            f"{len(missing)} selected id(s) are not among the instances given, e.g. {missing[0]!r}; "
            "export from the same data the selection was drawn from",
            field="ids",
        )
    result = export_instances((pool[i] for i in selection.ids), path, format, include_ids=include_ids,
                              tool_arguments=tool_arguments)
    selected = selection.to_manifest()
    manifest: dict[str, Any] = {
        "toolqual_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format": format,
        "output": str(path),
        "recipe": selected["recipe"],
        "recipe_label": selected["recipe_label"],
        "thresholds": selected["thresholds"],
        "seed": selected["seed"],
        "size_requested": selected["size_requested"],
        "n_pool": selected["n_pool"],
        "n_candidates": selected["n_candidates"],
        "n_selected": selected["n_selected"],
        "shortfall": selected["shortfall"],
        "n_written": result["n_written"],
        "n_skipped": len(result["skipped"]),
        "skipped": result["skipped"],
        "n_multi_turn": result["n_multi_turn"],
        "final_answers_dropped": result["final_answers_dropped"],
        "empty_observations": result["empty_observations"],
        "observations_dropped": result["observations_dropped"],
        "pseudo_calls_dropped": result["pseudo_calls_dropped"],
        "ends_with_tool_result": result["ends_with_tool_result"],
        "system_prompts_dropped": result["system_prompts_dropped"],
        "by_source": result["by_source"],
        "ids": result["ids"],
        "notes": selected["notes"],
        "source_files": [{"path": str(p), "sha256": _file_digest(Path(p))} for p in source_files],
        **dict(extra or {}),
    }
    atomic_write_text(manifest_path(path), json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest
