"""Export a selection as training data: canonical JSONL, OpenAI chat fine-tuning JSONL or ShareGPT,
plus a manifest that says exactly what was exported and why.

Formats (one JSON object per line):

- ``canonical``: toolqual's own records (``schema.Instance.to_record``), every selected instance.
- ``openai``: ``{"messages": [...], "tools": [{"type": "function", "function": {...}}]}``, the chat
  fine-tuning format. Messages: the instruction as the ``user`` turn, then

  * when every call has a known observation: one ``assistant`` turn per call (``content`` null, one
    ``tool_calls`` entry with ``arguments`` as a JSON string), each followed by its ``tool`` message
    (``tool_call_id`` matching), then the final answer as a last ``assistant`` turn when known;
  * when no call has an observation (e.g. BFCL, Seal-Tools): a single ``assistant`` turn carrying all
    calls as parallel ``tool_calls``; the final answer, if any, is not written (with no tool results
    there is nothing to ground it), and the manifest counts it under ``final_answers_dropped``;
  * mixed: per-call turns as in the first case; a missing observation becomes an empty ``tool``
    message (counted in the manifest as ``empty_observations``);
  * ``calls == []`` (gold says "no call"): an ``assistant`` turn with the final answer, or ``""``.

  Pseudo-calls (``Finish``, ``getDetails`` ...) are never written: the schema keeps them out of
  ``calls``, and any that slipped into ``calls`` are dropped and counted (``pseudo_calls_dropped``). Unparsed arguments are written as their raw text
  (so the loader reads them back as a parse failure, never as guessed values). Ids are left out by
  default (``include_ids=False``) so the file is a plain fine-tuning file; line *i* is ``ids[i]`` of
  the manifest. ``include_ids=True`` adds top-level ``id`` and ``source``, which
  ``toolqual_utils.loaders.openai_chat`` reads back.
- ``sharegpt``: ``{"id", "conversations": [{"from", "value"}...], "tools": "<JSON list of tools>"}``.
  Turns: ``human`` (instruction), ``gpt`` turns whose ``value`` is a function call as JSON
  ``{"name": ..., "arguments": {...}}`` (raw text for unparsed arguments), each followed by an
  ``observation`` turn holding the tool output when known (the LLaMA-Factory naming); when no call
  has an observation, one ``gpt`` turn with the JSON *list* of calls. The final answer is a last
  ``gpt`` turn (dropped on the same rule as above). ``tools`` is a JSON string, as LLaMA-Factory
  expects.

Instances with ``calls is None`` (no gold calls known) have no training target: the chat formats skip
them and the manifest lists them under ``skipped`` with the reason; ``canonical`` keeps them.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

from . import __version__
from .errors import InputError
from .io import atomic_open, atomic_write_text
from .schema import PSEUDO_CALLS, Call, Instance
from .selection import Selection

ExportFormat = Literal["canonical", "openai", "sharegpt"]
EXPORT_FORMATS: Final = ("canonical", "openai", "sharegpt")

__all__ = [
    "EXPORT_FORMATS", "to_openai_record", "to_sharegpt_record", "export_instances", "export_selection",
    "manifest_path",
]


def _arguments_text(call: Call) -> str:
    if call.arguments is not None:
        return json.dumps(call.arguments, ensure_ascii=False)
    return call.raw_arguments or ""


def _call_json(call: Call) -> dict[str, Any]:
    return {"name": call.name, "arguments": call.arguments if call.arguments is not None else (call.raw_arguments or "")}


def _api_calls(instance: Instance) -> list[Call]:
    return [call for call in instance.calls or [] if call.name not in PSEUDO_CALLS]


def _layout(instance: Instance) -> str:
    """"sequential" (per-call turns with tool results), "parallel" (one turn, no results) or "none"."""
    calls = _api_calls(instance)
    if not calls:
        return "none"
    if all(call.observation is None for call in calls):
        return "parallel"
    return "sequential"


def to_openai_record(instance: Instance, *, include_id: bool = False) -> dict[str, Any] | None:
    """One instance as an OpenAI chat fine-tuning record (layout in the module docstring).

    Returns None when ``instance.calls is None`` (no training target).
    """
    if instance.calls is None:
        return None
    messages: list[dict[str, Any]] = [{"role": "user", "content": instance.instruction}]
    layout = _layout(instance)
    if layout == "parallel":
        messages.append({
            "role": "assistant", "content": None,
            "tool_calls": [
                {"id": f"call_{i}", "type": "function", "function": {"name": c.name, "arguments": _arguments_text(c)}}
                for i, c in enumerate(_api_calls(instance))
            ],
        })
    elif layout == "sequential":
        for index, call in enumerate(_api_calls(instance)):
            call_id = f"call_{index}"
            messages.append({
                "role": "assistant", "content": None,
                "tool_calls": [{"id": call_id, "type": "function",
                                "function": {"name": call.name, "arguments": _arguments_text(call)}}],
            })
            messages.append({"role": "tool", "tool_call_id": call_id, "content": call.observation or ""})
        if instance.final_answer is not None:
            messages.append({"role": "assistant", "content": instance.final_answer})
    else:
        messages.append({"role": "assistant", "content": instance.final_answer or ""})
    record: dict[str, Any] = {
        "messages": messages,
        "tools": [{"type": "function", "function": tool.model_dump(mode="json")} for tool in instance.tools],
    }
    if include_id:
        record = {"id": instance.id, "source": instance.source, **record}
    return record


def to_sharegpt_record(instance: Instance, *, include_id: bool = True) -> dict[str, Any] | None:
    """One instance as a ShareGPT record (layout in the module docstring); None when ``calls is None``."""
    if instance.calls is None:
        return None
    turns: list[dict[str, str]] = [{"from": "human", "value": instance.instruction}]
    layout = _layout(instance)
    if layout == "parallel":
        turns.append({"from": "gpt", "value": json.dumps([_call_json(c) for c in _api_calls(instance)], ensure_ascii=False)})
    elif layout == "sequential":
        for call in _api_calls(instance):
            turns.append({"from": "gpt", "value": json.dumps(_call_json(call), ensure_ascii=False)})
            turns.append({"from": "observation", "value": call.observation or ""})
        if instance.final_answer is not None:
            turns.append({"from": "gpt", "value": instance.final_answer})
    else:
        turns.append({"from": "gpt", "value": instance.final_answer or ""})
    record: dict[str, Any] = {
        "conversations": turns,
        "tools": json.dumps([tool.model_dump(mode="json") for tool in instance.tools], ensure_ascii=False),
    }
    if include_id:
        record = {"id": instance.id, **record}
    return record


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


def export_instances(
    instances: Iterable[Instance],
    path: str | os.PathLike[str],
    format: ExportFormat = "canonical",
    *,
    include_ids: bool | None = None,
) -> dict[str, Any]:
    """Write instances in ``format`` (atomically: a temporary file renamed into place).

    Args:
        include_ids: add ids to each record; default False for ``openai`` (a plain fine-tuning file),
            True for ``sharegpt``; canonical records always carry their id.

    Returns:
        ``{"n_written", "ids"`` (written, in file order), ``"skipped"`` (``[{"id", "reason"}]``),
        ``"final_answers_dropped", "empty_observations", "pseudo_calls_dropped", "by_source"}``.
    """
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}",
                         field="format")
    path = Path(path)
    written: list[str] = []
    skipped: list[dict[str, str]] = []
    by_source: Counter[str] = Counter()
    dropped_answers = empty_observations = pseudo_dropped = 0
    with atomic_open(path) as handle:
        for instance in instances:
            if format == "canonical":
                record: dict[str, Any] | None = instance.to_record()
            elif format == "openai":
                record = to_openai_record(instance, include_id=bool(include_ids))
            else:
                record = to_sharegpt_record(instance, include_id=True if include_ids is None else include_ids)
            if record is None:
                skipped.append({"id": instance.id, "reason": "no gold calls known (calls is null): no training target"})
                continue
            if format != "canonical":
                layout = _layout(instance)
                dropped_answers += int(layout == "parallel" and instance.final_answer is not None)
                api_calls = _api_calls(instance)
                empty_observations += sum(c.observation is None for c in api_calls) if layout == "sequential" else 0
                pseudo_dropped += len(instance.calls or []) - len(api_calls)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written.append(instance.id)
            by_source[instance.source] += 1
    return {"n_written": len(written), "ids": written, "skipped": skipped,
            "final_answers_dropped": dropped_answers, "empty_observations": empty_observations,
            "pseudo_calls_dropped": pseudo_dropped, "by_source": dict(sorted(by_source.items()))}


def export_selection(
    instances: Iterable[Instance],
    selection: Selection | Sequence[str],
    path: str | os.PathLike[str],
    *,
    format: ExportFormat = "canonical",
    include_ids: bool | None = None,
    source_files: Sequence[str | os.PathLike[str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the selected instances and write ``<path>.manifest.json``.

    Args:
        instances: the pool the selection was drawn from (ids must all be found in it).
        selection: a :class:`~toolqual_utils.selection.Selection` or a plain list of ids.
        path: output file.
        format: ``canonical`` | ``openai`` | ``sharegpt``.
        source_files: input files to record in the manifest (path and sha256).
        extra: further JSON-serialisable manifest fields (e.g. the command line).

    Returns:
        The manifest: ``toolqual_version, created_at, format, output, recipe, recipe_label, thresholds,
        seed, size_requested, n_pool, n_candidates, n_selected, shortfall, n_written, n_skipped, skipped,
        final_answers_dropped, empty_observations, pseudo_calls_dropped, by_source, ids`` (written, in file order), ``notes,
        source_files``.

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
    result = export_instances((pool[i] for i in selection.ids), path, format, include_ids=include_ids)
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
        "final_answers_dropped": result["final_answers_dropped"],
        "empty_observations": result["empty_observations"],
        "pseudo_calls_dropped": result["pseudo_calls_dropped"],
        "by_source": result["by_source"],
        "ids": result["ids"],
        "notes": selected["notes"],
        "source_files": [{"path": str(p), "sha256": _file_digest(Path(p))} for p in source_files],
        **dict(extra or {}),
    }
    atomic_write_text(manifest_path(path), json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest
