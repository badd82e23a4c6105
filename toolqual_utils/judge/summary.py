"""Summaries of verdict tables for the criterion-scoring report (pure: pandas only, no model client).

Error rates are computed by :func:`toolqual_utils.tables.error_rate_table` (per source:
``by="source"``; counts per cell: ``tables.error_rate_wide(table, value="counts")``), verdict files are
read by :func:`toolqual_utils.verdicts.read_verdicts` (re-exported here). This module adds:

- :func:`example_verdicts` — a few instances per criterion with their rationale and evidence.
- :func:`judge_identity` — which model(s) and prompt ids produced the model verdicts of a table.
- :func:`plan_summary` — what the model judge would be asked, per criterion (from a ``JudgePlan``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

import pandas as pd

from ..schema import CRITERIA, Instance
from ..verdicts import OFFLINE_JUDGES, Status, decode_evidence, read_verdicts
from .decide import ENGINE_PROMPT_ID

__all__ = ["OFFLINE_JUDGES", "EXAMPLE_COLUMNS", "example_verdicts", "judge_identity", "plan_summary",
           "read_verdicts", "sample_per_source"]

EXAMPLE_COLUMNS: Final = (
    "instance_id", "criterion", "label", "judge", "prompt_id", "instruction", "rationale", "evidence",
)


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
                "evidence": json.dumps(decode_evidence(row["evidence"]), ensure_ascii=False, default=str),
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
        if row["status"] == Status.UNSCORED_NOT_APPLICABLE:
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
