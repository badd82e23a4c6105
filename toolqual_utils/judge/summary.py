"""Summaries of verdict tables for the criterion-scoring report (pure: pandas only, no model client).

- :func:`read_verdicts` — a verdict table file back into the in-memory form (evidence as lists).
- :func:`error_rates_by_source` / :func:`error_rate_matrix` — per source x criterion error rates among
  the scored verdicts, unscored counted separately (the detailed Table-5 layout is notebook 02's).
- :func:`example_verdicts` — a few instances per criterion with their rationale and evidence.
- :func:`judge_identity` — which model(s) and prompt ids produced the model verdicts of a table.
- :func:`plan_summary` — what the model judge would be asked, per criterion (from a ``JudgePlan``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pandas as pd

from ..io import read_table
from ..schema import CRITERIA, VERDICT_COLUMNS, Instance
from .decide import ENGINE_PROMPT_ID

#: judges that are not models (their verdicts are never labelled as a model's)
OFFLINE_JUDGES: Final = frozenset({"rules", "heuristic"})
ERROR_RATE_COLUMNS: Final = (
    "source", "criterion", "n_instances", "n_scored", "n_errors", "error_rate", "n_unscored",
)
EXAMPLE_COLUMNS: Final = (
    "instance_id", "criterion", "label", "judge", "prompt_id", "instruction", "rationale", "evidence",
)


def _evidence(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [{"text": value}]
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def read_verdicts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a verdict table written by ``toolqual check`` / ``toolqual judge`` (.jsonl, .csv, .parquet).

    Returns ``VERDICT_COLUMNS`` with ``label`` as nullable Int64 and ``evidence`` as lists.

    Raises:
        InputError: the file is missing, or lacks a verdict column (names the file and the columns).
    """
    from ..errors import InputError

    frame = read_table(path)
    missing = [c for c in VERDICT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"not a verdict table: missing column(s) {', '.join(missing)}; expected "
                         + ", ".join(VERDICT_COLUMNS), file=str(path))
    frame = frame.loc[:, list(VERDICT_COLUMNS)].copy()
    frame["label"] = pd.array(
        [None if pd.isna(v) else int(v) for v in pd.to_numeric(frame["label"], errors="coerce")], dtype="Int64"
    )
    frame["evidence"] = frame["evidence"].map(_evidence)
    for column in ("rationale", "prompt_id", "judge", "status"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def _source_map(instances: Iterable[Instance] | None) -> dict[str, str]:
    return {inst.id: inst.source for inst in instances or []}


def _source_of(instance_id: str, sources: Mapping[str, str]) -> str:
    return sources.get(instance_id) or str(instance_id).split("/", 1)[0]


def error_rates_by_source(
    verdicts: pd.DataFrame, instances: Iterable[Instance] | None = None, *, criteria: Sequence[str] = CRITERIA
) -> pd.DataFrame:
    """Error rate per source x criterion among the scored verdicts.

    Grain: one row per (source, criterion), sources sorted, criteria in canonical order, plus an
    ``all`` source. Columns ``ERROR_RATE_COLUMNS``: ``n_scored`` = status ok with a label,
    ``n_errors`` = label 0, ``error_rate`` = n_errors / n_scored in [0, 1] (lower is better; NaN when
    nothing was scored), ``n_unscored`` = every other row (never counted as pass or fail). The source
    is the instance's ``source`` when ``instances`` are given, else the first part of the id. Empty
    input gives an empty frame with these columns.
    """
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=list(ERROR_RATE_COLUMNS))
    sources = _source_map(instances)
    label = pd.to_numeric(verdicts["label"].astype(object), errors="coerce")
    frame = pd.DataFrame({
        "source": verdicts["instance_id"].map(lambda i: _source_of(i, sources)),
        "criterion": verdicts["criterion"],
        "instance_id": verdicts["instance_id"],
        "scored": verdicts["status"].eq("ok") & label.notna(),
        "error": verdicts["status"].eq("ok") & label.eq(0),
    })
    frame = frame[frame["criterion"].isin(criteria)]
    frame = pd.concat([frame, frame.assign(source="all")], ignore_index=True)
    grouped = frame.groupby(["source", "criterion"], sort=False).agg(
        n_instances=("instance_id", "nunique"), n_scored=("scored", "sum"), n_errors=("error", "sum"),
        n_rows=("instance_id", "size"),
    ).reset_index()
    grouped["n_unscored"] = grouped["n_rows"] - grouped["n_scored"]
    grouped["error_rate"] = grouped["n_errors"] / grouped["n_scored"].where(grouped["n_scored"] > 0)
    order = {c: i for i, c in enumerate(criteria)}
    grouped["_source"] = grouped["source"].map(lambda s: (s == "all", s))
    grouped["_criterion"] = grouped["criterion"].map(order)
    grouped = grouped.sort_values(["_source", "_criterion"], kind="stable")
    for column in ("n_instances", "n_scored", "n_errors", "n_unscored"):
        grouped[column] = grouped[column].astype(int)
    return grouped.loc[:, list(ERROR_RATE_COLUMNS)].reset_index(drop=True)


def error_rate_matrix(rates: pd.DataFrame, *, digits: int = 1) -> pd.DataFrame:
    """Display form of :func:`error_rates_by_source`: one row per source, one column per criterion,
    cells ``"12.5% (3/24; 5 unscored)"``; ``–`` when nothing was scored."""
    if rates is None or len(rates) == 0:
        return pd.DataFrame(columns=["source"])

    def cell(row: pd.Series) -> str:
        if row["n_scored"] == 0:
            text = "–"
        else:
            text = f"{100 * row['error_rate']:.{digits}f}% ({row['n_errors']}/{row['n_scored']})"
        if row["n_unscored"]:
            text += f"; {row['n_unscored']} unscored"
        return text

    cells = rates.assign(cell=rates.apply(cell, axis=1))
    criteria = list(dict.fromkeys(rates["criterion"]))
    sources = list(dict.fromkeys(rates["source"]))
    wide = cells.pivot(index="source", columns="criterion", values="cell").reindex(index=sources, columns=criteria)
    wide.columns.name = None
    return wide.reset_index()


def example_verdicts(
    verdicts: pd.DataFrame,
    instances: Iterable[Instance],
    *,
    label: int | None = 0,
    per_criterion: int = 2,
    criteria: Sequence[str] = CRITERIA,
    max_instruction_chars: int = 300,
) -> pd.DataFrame:
    """A few verdicts per criterion to read, with the instruction, rationale and evidence (JSON text).

    Args:
        label: which verdicts: 0 (errors, default), 1 (holds), or None (unscored rows).
        per_criterion: at most this many per criterion, first ones in table order (deterministic).

    Returns:
        Columns ``EXAMPLE_COLUMNS``; text is raw (escape when rendering — ``nb.show_table`` does).
        Empty frame with these columns when nothing matches.
    """
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=list(EXAMPLE_COLUMNS))
    instructions = {inst.id: inst.instruction for inst in instances}
    labels = pd.to_numeric(verdicts["label"].astype(object), errors="coerce")
    mask = labels.isna() if label is None else labels.eq(label)
    rows = []
    for criterion in criteria:
        chosen = verdicts[mask & verdicts["criterion"].eq(criterion)].head(per_criterion)
        for row in chosen.to_dict("records"):
            instruction = instructions.get(row["instance_id"], "")
            if len(instruction) > max_instruction_chars:
                instruction = instruction[: max_instruction_chars - 1] + "…"
            rows.append({
                "instance_id": row["instance_id"], "criterion": criterion,
                "label": None if pd.isna(row["label"]) else int(row["label"]),
                "judge": row["judge"], "prompt_id": row["prompt_id"], "instruction": instruction,
                "rationale": row["rationale"],
                "evidence": json.dumps(_evidence(row["evidence"]), ensure_ascii=False, default=str),
            })
    return pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS))


def judge_identity(verdicts: pd.DataFrame | None) -> dict[str, list[str]]:
    """Which models and prompt ids produced the model verdicts: ``{"judge_models": [...],
    "prompt_ids": [...]}`` (rules/heuristic rows excluded; empty lists when there are none)."""
    if verdicts is None or len(verdicts) == 0:
        return {"judge_models": [], "prompt_ids": []}
    model_rows = verdicts[~verdicts["judge"].astype(str).isin(OFFLINE_JUDGES)]
    return {
        "judge_models": sorted(model_rows["judge"].astype(str).unique()),
        "prompt_ids": sorted(model_rows["prompt_id"].astype(str).unique()),
    }


def sample_per_source(instances: Iterable[Instance], n_per_source: int) -> list[Instance]:
    """The first ``n_per_source`` instances of each source, in input order (deterministic, so a
    replayed report asks the same requests as the live run that filled the cache). ``n <= 0`` -> []."""
    taken: dict[str, int] = {}
    sample = []
    for inst in instances:
        if taken.get(inst.source, 0) < n_per_source:
            taken[inst.source] = taken.get(inst.source, 0) + 1
            sample.append(inst)
    return sample


def plan_summary(plan: Any) -> pd.DataFrame:
    """What a ``JudgePlan`` leaves for the model, per criterion.

    Grain: one row per criterion of the plan. Columns: ``criterion``, ``n_instances``,
    ``decided_by_rules`` (rules verdicts, status ok), ``decided_by_engine`` (settled in code, e.g. one
    sentence), ``not_applicable``, ``asked_model`` (instances whose request asks it).
    """
    counts = {c: {"decided_by_rules": 0, "decided_by_engine": 0, "not_applicable": 0, "asked_model": 0}
              for c in plan.criteria}
    for row in plan.fixed:
        entry = counts[row["criterion"]]
        if row["status"] == "unscored:not_applicable":
            entry["not_applicable"] += 1
        elif row.get("prompt_id") == ENGINE_PROMPT_ID:
            entry["decided_by_engine"] += 1
        else:
            entry["decided_by_rules"] += 1
    for item in plan.planned:
        for criterion in item.criteria:
            counts[criterion]["asked_model"] += 1
    rows = [{"criterion": c, "n_instances": len(plan.instance_ids), **counts[c]} for c in plan.criteria]
    return pd.DataFrame(rows, columns=["criterion", "n_instances", "decided_by_rules", "decided_by_engine",
                                       "not_applicable", "asked_model"])
