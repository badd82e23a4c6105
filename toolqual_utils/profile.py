"""Profile tables of a loaded dataset (notebook 00): what is in it, before any scoring.

Per source format (:func:`turns_frame`, :func:`format_profile`, :func:`turns_per_dialogue`,
:func:`calls_per_turn`): how many dialogues and turns the loader made of the data, calls per turn,
parallel calls, argument parse failures and rejected records, so a user sees what the loader did with
their files.

Pure module: pandas and the canonical schema only; no I/O, no plotting. Every function takes the
frames of :mod:`toolqual_utils.schema` (``instances_frame``, ``calls_frame``, ``parameters_frame``),
optionally with an extra ``file`` column added by :func:`profile_frames`, and returns a tidy table
at the grain its docstring names. Empty input gives an empty table with the documented columns.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import re

import pandas as pd

from .schema import Instance, calls_frame, instances_frame, parameters_frame

SOURCE_SUMMARY_COLUMNS: Final = (
    "source", "n_instances", "n_subsets", "n_with_gold_calls", "n_no_call", "n_calls", "mean_calls",
    "n_parse_failures", "n_unknown_calls", "n_pseudo_calls", "median_instruction_chars",
)
FILE_SUMMARY_COLUMNS: Final = ("file", "source", "n_instances", "n_with_gold_calls", "n_calls")
DISTRIBUTION_COLUMNS: Final = ("source", "value", "n_instances", "share")
PARSE_FAILURE_COLUMNS: Final = (
    "source", "n_calls", "n_parse_failures", "parse_failure_rate", "n_instances_with_failure",
)
PSEUDO_CALL_COLUMNS: Final = ("instance_id", "source", "name", "raw_arguments")
PSEUDO_COUNT_COLUMNS: Final = ("source", "name", "n_calls", "n_instances")
PARAMETER_MIX_COLUMNS: Final = ("source", "type", "n_parameters", "share", "n_required")
REJECT_SUMMARY_COLUMNS: Final = ("file", "field", "n_records", "example_reason", "example_record_id")
EXAMPLE_COLUMNS: Final = ("instance_id", "source", "instruction", "tools", "calls", "final_answer")


def profile_frames(
    instances_by_file: Mapping[str, Sequence[Instance]],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three schema frames over several files, each with a leading ``file`` column.

    Returns:
        ``(instances, calls, parameters)``: ``instances_frame``/``calls_frame``/``parameters_frame``
        rows of every file concatenated, ``file`` = the mapping key. Empty mapping -> empty frames.
    """
    frames: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []
    for file, instances in instances_by_file.items():
        triple = (instances_frame(instances), calls_frame(instances), parameters_frame(instances))
        for frame in triple:
            frame.insert(0, "file", file)
        frames.append(triple)
    if not frames:
        empty = [instances_frame([]), calls_frame([]), parameters_frame([])]
        for frame in empty:
            frame.insert(0, "file", pd.Series(dtype=object))
        return empty[0], empty[1], empty[2]
    return tuple(  # type: ignore[return-value]
        pd.concat([triple[i] for triple in frames], ignore_index=True) for i in range(3)
    )


def source_summary(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per source: size and shape of its instances.

    Columns: ``SOURCE_SUMMARY_COLUMNS``. ``n_no_call`` counts instances whose gold is "call nothing"
    (``calls == []``); ``mean_calls`` averages over instances with gold calls (NaN when none).
    """
    if instances.empty:
        return pd.DataFrame(columns=list(SOURCE_SUMMARY_COLUMNS))
    with_gold = instances[instances["has_gold_calls"]]
    grouped = instances.groupby("source", sort=True)
    table = pd.DataFrame(
        {
            "n_instances": grouped.size(),
            "n_subsets": grouped["subset"].nunique(),
            "n_with_gold_calls": grouped["has_gold_calls"].sum(),
            "n_no_call": with_gold[with_gold["n_calls"] == 0].groupby("source").size(),
            "n_calls": grouped["n_calls"].sum(),
            "mean_calls": with_gold.groupby("source")["n_calls"].mean(),
            "n_parse_failures": grouped["n_parse_failures"].sum(),
            "n_unknown_calls": grouped["n_unknown_calls"].sum(),
            "n_pseudo_calls": grouped["n_pseudo_calls"].sum(),
            "median_instruction_chars": grouped["instruction_chars"].median(),
        }
    )
    table["n_no_call"] = table["n_no_call"].fillna(0).astype(int)
    for column in ("n_with_gold_calls", "n_calls", "n_parse_failures", "n_unknown_calls", "n_pseudo_calls"):
        table[column] = table[column].astype(int)
    return table.reset_index()[list(SOURCE_SUMMARY_COLUMNS)]


def file_summary(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per (file, source): instances, instances with gold calls, API calls.

    Needs the ``file`` column of :func:`profile_frames`. Columns: ``FILE_SUMMARY_COLUMNS``.
    """
    if instances.empty:
        return pd.DataFrame(columns=list(FILE_SUMMARY_COLUMNS))
    grouped = instances.groupby(["file", "source"], sort=True)
    table = pd.DataFrame(
        {
            "n_instances": grouped.size(),
            "n_with_gold_calls": grouped["has_gold_calls"].sum().astype(int),
            "n_calls": grouped["n_calls"].sum().astype(int),
        }
    )
    return table.reset_index()[list(FILE_SUMMARY_COLUMNS)]


def _distribution(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(DISTRIBUTION_COLUMNS))
    counts = frame.groupby(["source", column], sort=True).size().rename("n_instances").reset_index()
    counts = counts.rename(columns={column: "value"})
    counts["share"] = counts["n_instances"] / counts.groupby("source")["n_instances"].transform("sum")
    return counts[list(DISTRIBUTION_COLUMNS)]


def calls_per_instance(instances: pd.DataFrame) -> pd.DataFrame:
    """Histogram table of API calls per instance, per source (instances with gold calls only).

    One row per (source, value = number of calls); ``n_instances`` with that many calls and
    ``share`` of the source's instances with gold calls (0..1, sums to 1 per source).
    Columns: ``DISTRIBUTION_COLUMNS``.
    """
    if instances.empty:
        return _distribution(instances, "n_calls")
    return _distribution(instances[instances["has_gold_calls"]], "n_calls")


def tools_per_instance(instances: pd.DataFrame) -> pd.DataFrame:
    """Histogram table of offered tools per instance, per source (all instances).

    One row per (source, value = number of tools). Columns: ``DISTRIBUTION_COLUMNS``.
    """
    return _distribution(instances, "n_tools")


def parse_failures(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per source: calls whose argument text could not be parsed into an object.

    ``parse_failure_rate`` = n_parse_failures / n_calls (0..1, lower is better; NaN when a source
    has no calls). Columns: ``PARSE_FAILURE_COLUMNS``.
    """
    if instances.empty:
        return pd.DataFrame(columns=list(PARSE_FAILURE_COLUMNS))
    grouped = instances.groupby("source", sort=True)
    table = pd.DataFrame(
        {
            "n_calls": grouped["n_calls"].sum().astype(int),
            "n_parse_failures": grouped["n_parse_failures"].sum().astype(int),
            "n_instances_with_failure": grouped["n_parse_failures"].apply(lambda s: int((s > 0).sum())),
        }
    )
    table["parse_failure_rate"] = table["n_parse_failures"] / table["n_calls"].where(table["n_calls"] > 0)
    return table.reset_index()[list(PARSE_FAILURE_COLUMNS)]


def pseudo_calls_frame(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per recorded pseudo-call (``meta["pseudo_calls"]``: Finish, getDetails, ...).

    Columns: ``PSEUDO_CALL_COLUMNS``; ``raw_arguments`` as recorded (None when absent). Entries that
    are not objects with a ``name`` are skipped.
    """
    rows = []
    for inst in instances:
        for entry in inst.meta.get("pseudo_calls") or []:
            if isinstance(entry, Mapping) and entry.get("name"):
                rows.append(
                    {
                        "instance_id": inst.id,
                        "source": inst.source,
                        "name": str(entry["name"]),
                        "raw_arguments": entry.get("raw_arguments"),
                    }
                )
    return pd.DataFrame(rows, columns=list(PSEUDO_CALL_COLUMNS))


def pseudo_call_counts(pseudo_calls: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, pseudo-call name): how often it occurs and in how many instances.

    Takes :func:`pseudo_calls_frame`. Columns: ``PSEUDO_COUNT_COLUMNS``, most frequent first.
    """
    if pseudo_calls.empty:
        return pd.DataFrame(columns=list(PSEUDO_COUNT_COLUMNS))
    grouped = pseudo_calls.groupby(["source", "name"], sort=True)
    table = pd.DataFrame({"n_calls": grouped.size(), "n_instances": grouped["instance_id"].nunique()})
    table = table.reset_index().sort_values(["source", "n_calls"], ascending=[True, False], kind="stable")
    return table.reset_index(drop=True)[list(PSEUDO_COUNT_COLUMNS)]


def parameter_type_mix(parameters: pd.DataFrame, *, distinct_tools: bool = True) -> pd.DataFrame:
    """One row per (source, JSON-Schema type) of the offered tools' parameters.

    Args:
        parameters: ``parameters_frame`` rows.
        distinct_tools: count each (source, tool, parameter) once even when many instances offer
            the same tool (default), instead of once per offering instance.

    Returns:
        Columns ``PARAMETER_MIX_COLUMNS``: ``n_parameters`` of that type, ``share`` within the
        source (0..1), ``n_required`` of them marked required. Most frequent type first per source.
    """
    if parameters.empty:
        return pd.DataFrame(columns=list(PARAMETER_MIX_COLUMNS))
    rows = parameters
    if distinct_tools:
        rows = parameters.drop_duplicates(["source", "tool_name", "parameter", "type", "is_required"])
    grouped = rows.groupby(["source", "type"], sort=True)
    table = pd.DataFrame({"n_parameters": grouped.size(), "n_required": grouped["is_required"].sum().astype(int)})
    table = table.reset_index()
    table["share"] = table["n_parameters"] / table.groupby("source")["n_parameters"].transform("sum")
    table = table.sort_values(["source", "n_parameters"], ascending=[True, False], kind="stable")
    return table.reset_index(drop=True)[list(PARAMETER_MIX_COLUMNS)]


def reject_summary(rejects_by_file: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (rejects file, field): how many source records a loader could not convert, and why.

    Args:
        rejects_by_file: rejects-file name -> its rows (``Reject`` records: file, location, reason,
            field, record_id), as read from ``X.rejects.jsonl``.

    Returns:
        Columns ``REJECT_SUMMARY_COLUMNS``; ``example_reason``/``example_record_id`` come from the
        first reject of the group; a missing field is shown as ``"(record)"``. Most rejects first.
    """
    rows = []
    for file, frame in rejects_by_file.items():
        if frame is None or frame.empty:
            continue
        frame = frame.copy()
        for column in ("field", "reason", "record_id"):
            if column not in frame.columns:
                frame[column] = None
        frame["field"] = frame["field"].fillna("(record)").astype(str)
        for field_name, group in frame.groupby("field", sort=True):
            first = group.iloc[0]
            rows.append(
                {
                    "file": file,
                    "field": field_name,
                    "n_records": len(group),
                    "example_reason": first["reason"],
                    "example_record_id": None if pd.isna(first["record_id"]) else first["record_id"],
                }
            )
    table = pd.DataFrame(rows, columns=list(REJECT_SUMMARY_COLUMNS))
    if not table.empty:
        table = table.sort_values(["n_records", "file"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)


def _call_text(inst: Instance) -> str:
    if inst.calls is None:
        return "(no gold calls known)"
    if not inst.calls:
        return "(gold: call nothing)"
    parts = []
    for call in inst.calls:
        if call.parse_failed:
            parts.append(f"{call.name}(<unparsed> {call.raw_arguments})")
        else:
            args = ", ".join(f"{k}={v!r}" for k, v in (call.arguments or {}).items())
            parts.append(f"{call.name}({args})")
    return "\n".join(parts)


def example_instances(instances: Sequence[Instance], n: int = 5) -> pd.DataFrame:
    """Up to ``n`` instances for reading, taken round-robin over sources (first ones of each source).

    One row per instance; columns ``EXAMPLE_COLUMNS``: ``tools`` = comma-joined tool names,
    ``calls`` = one ``name(arg=value, ...)`` per line. Text is raw: the display escapes it.
    """
    by_source: dict[str, list[Instance]] = {}
    for inst in instances:
        by_source.setdefault(inst.source, []).append(inst)
    picked: list[Instance] = []
    depth = 0
    while len(picked) < n and any(depth < len(v) for v in by_source.values()):
        for source in sorted(by_source):
            if depth < len(by_source[source]) and len(picked) < n:
                picked.append(by_source[source][depth])
        depth += 1
    rows = [
        {
            "instance_id": inst.id,
            "source": inst.source,
            "instruction": inst.instruction,
            "tools": ", ".join(t.name for t in inst.tools),
            "calls": _call_text(inst),
            "final_answer": inst.final_answer,
        }
        for inst in picked
    ]
    return pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS))


# --- per source format: dialogues, turns, calls per turn, parallel calls ---------------------------------

#: the loader format each source name comes from (sources not listed are named after their format)
SOURCE_FORMATS: Final[Mapping[str, str]] = {
    "stabletoolbench": "toolbench", "toolalpaca-train-format": "toolalpaca", "hermes": "sharegpt",
    "openai-chat": "openai",
}
TURN_COLUMNS: Final = (
    "file", "format", "source", "dialogue_id", "instance_id", "n_user_turns", "turn", "n_context_turns",
    "has_gold_calls", "n_calls", "parallel", "max_batch", "n_parse_failures",
)
FORMAT_PROFILE_COLUMNS: Final = (
    "format", "n_dialogues", "n_instances", "n_multi_turn", "mean_user_turns", "max_user_turns",
    "mean_calls_per_turn", "n_parallel_turns", "n_parse_failures", "n_rejected",
)
DIALOGUE_DISTRIBUTION_COLUMNS: Final = ("format", "value", "n", "share")
_TURN_SUFFIX = re.compile(r"/turn\d+$")


def format_of(instance: Instance) -> str:
    """The loader format an instance came from, read from its source name (:data:`SOURCE_FORMATS`)."""
    return SOURCE_FORMATS.get(instance.source, instance.source)


def dialogue_id(instance: Instance) -> str:
    """The id of the dialogue an instance belongs to (its id without a ``/turn<j>`` suffix)."""
    return _TURN_SUFFIX.sub("", instance.id)


def turns_frame(instances_by_file: Mapping[str, Sequence[Instance]],
                formats_by_file: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per instance (= one tool-calling turn of a dialogue), columns ``TURN_COLUMNS``.

    ``format`` is ``formats_by_file[file]`` when given (a raw file's detected format), else
    :func:`format_of`. ``n_user_turns`` is the dialogue's number of user messages (1 for single-turn
    data); ``parallel`` says whether one assistant message of the turn made two or more calls
    (``meta["call_batches"]``), ``max_batch`` the largest such batch (1 when none, 0 without calls).
    """
    rows = []
    for file, instances in instances_by_file.items():
        file_format = (formats_by_file or {}).get(file)
        for inst in instances:
            calls = inst.calls or []
            batches = inst.meta.get("call_batches")
            sizes = [n for n in batches if isinstance(n, int)] if isinstance(batches, list) else []
            max_batch = max(sizes) if sizes else (1 if calls else 0)
            n_user = inst.meta.get("n_user_turns")
            rows.append({
                "file": file,
                "format": file_format if file_format and file_format != "jsonl" else format_of(inst),
                "source": inst.source,
                "dialogue_id": dialogue_id(inst),
                "instance_id": inst.id,
                "n_user_turns": int(n_user) if isinstance(n_user, int) else 1 + sum(t.role == "user" for t in inst.context),
                "turn": int(inst.meta["turn"]) if isinstance(inst.meta.get("turn"), int) else 1,
                "n_context_turns": len(inst.context),
                "has_gold_calls": inst.calls is not None,
                "n_calls": len(calls),
                "parallel": max_batch >= 2,
                "max_batch": max_batch,
                "n_parse_failures": sum(call.parse_failed for call in calls),
            })
    return pd.DataFrame(rows, columns=list(TURN_COLUMNS))


def format_profile(turns: pd.DataFrame, rejected_by_format: Mapping[str, int] | None = None) -> pd.DataFrame:
    """One row per format: what the loader made of the data. Columns ``FORMAT_PROFILE_COLUMNS``.

    ``n_dialogues`` distinct dialogues; ``n_instances`` tool-calling turns (instances);
    ``n_multi_turn`` instances with earlier turns; ``mean_user_turns``/``max_user_turns`` user messages
    per dialogue; ``mean_calls_per_turn`` over instances with gold calls; ``n_parallel_turns`` instances
    with a parallel batch; ``n_parse_failures`` calls whose arguments did not parse; ``n_rejected``
    records rejected (``rejected_by_format``; formats with rejects but no instance get a row too).
    """
    rejected = dict(rejected_by_format or {})
    rows = []
    for fmt, group in (turns.groupby("format", sort=True) if not turns.empty else []):
        dialogues = group.drop_duplicates("dialogue_id")
        with_gold = group[group["has_gold_calls"]]
        rows.append({
            "format": fmt,
            "n_dialogues": int(len(dialogues)),
            "n_instances": int(len(group)),
            "n_multi_turn": int((group["n_context_turns"] > 0).sum()),
            "mean_user_turns": float(dialogues["n_user_turns"].mean()),
            "max_user_turns": int(dialogues["n_user_turns"].max()),
            "mean_calls_per_turn": float(with_gold["n_calls"].mean()) if len(with_gold) else float("nan"),
            "n_parallel_turns": int(group["parallel"].sum()),
            "n_parse_failures": int(group["n_parse_failures"].sum()),
            "n_rejected": int(rejected.pop(fmt, 0)),
        })
    for fmt, n in sorted(rejected.items()):
        rows.append({"format": fmt, "n_dialogues": 0, "n_instances": 0, "n_multi_turn": 0,
                     "mean_user_turns": float("nan"), "max_user_turns": 0, "mean_calls_per_turn": float("nan"),
                     "n_parallel_turns": 0, "n_parse_failures": 0, "n_rejected": int(n)})
    return pd.DataFrame(rows, columns=list(FORMAT_PROFILE_COLUMNS))


def _dialogue_distribution(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(DIALOGUE_DISTRIBUTION_COLUMNS))
    counts = frame.groupby(["format", column], sort=True).size().rename("n").reset_index()
    counts = counts.rename(columns={column: "value"})
    counts["share"] = counts["n"] / counts.groupby("format")["n"].transform("sum")
    return counts[list(DIALOGUE_DISTRIBUTION_COLUMNS)]


def turns_per_dialogue(turns: pd.DataFrame) -> pd.DataFrame:
    """Histogram of user turns per dialogue, per format: one row per (format, value = user turns);
    ``n`` dialogues, ``share`` within the format. Columns ``DIALOGUE_DISTRIBUTION_COLUMNS``."""
    return _dialogue_distribution(turns.drop_duplicates(["format", "dialogue_id"]) if not turns.empty else turns,
                                  "n_user_turns")


def calls_per_turn(turns: pd.DataFrame) -> pd.DataFrame:
    """Histogram of gold calls per turn (instance), per format, over instances with gold calls:
    ``n`` instances with that many calls. Columns ``DIALOGUE_DISTRIBUTION_COLUMNS``."""
    return _dialogue_distribution(turns[turns["has_gold_calls"]] if not turns.empty else turns, "n_calls")


def reject_source_files(reject_tables: Iterable[pd.DataFrame]) -> list[str]:
    """The distinct source files named by rejects tables (their ``file`` column), in first-seen order."""
    files: dict[str, None] = {}
    for table in reject_tables:
        if table is not None and not table.empty and "file" in table.columns:
            files.update(dict.fromkeys(str(f) for f in table["file"]))
    return list(files)


def rejected_by_format(reject_tables: Iterable[pd.DataFrame], formats_by_file: Mapping[str, str]) -> dict[str, int]:
    """Rejected records per format: the rows of rejects tables (``X.rejects.jsonl``, whose ``file`` is
    the source file of each reject) counted under ``formats_by_file[file]`` (``"unknown"`` when the
    file's format is not known)."""
    counts: dict[str, int] = {}
    for table in reject_tables:
        if table is None or table.empty or "file" not in table.columns:
            continue
        for file in table["file"]:
            fmt = formats_by_file.get(str(file), "unknown")
            counts[fmt] = counts.get(fmt, 0) + 1
    return counts
