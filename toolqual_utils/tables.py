"""Error-rate tables (paper Table 5), judge validation tables (Table 4) and disagreement views.

Pure module: standard library, numpy, pandas and :mod:`toolqual_utils.stats` only.

Label conventions (as everywhere in toolqual): 1 = the criterion holds, 0 = error, missing (NaN) =
unscored. What counts as *scored* is defined once, in :func:`toolqual_utils.verdicts.is_scored`: label 0
or 1 and status ``"ok"`` (a table without a status column is all ``ok``); every other verdict
(``unscored:<reason>``) is counted apart in ``n_unscored`` and never enters a denominator.
:func:`error_rate_table` is the one error-rate computation of the package (notebooks 01, 02 and 05 and
the CLI summaries all use it).

**Coarse labels** (``instruction_ok``, ``sequence_ok``, ``overall_ok``) are derived, never judged:
an instance's coarse label is 0 ("has an error") as soon as one of its member criteria is 0, 1 when
all members are 1, and *unscored* (NaN) otherwise, i.e. when no member is in error but at least one
is unscored. Rationale: a known error is an error whatever the missing labels say, while "no error"
is only a claim when every member was checked.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from .schema import (
    COARSE_CRITERIA, CRITERIA, INSTRUCTION_CRITERIA, SEQUENCE_CRITERIA, Instance, instances_frame, source_of_id,
    subset_of_id,
)
from .stats import IntervalMethod, bootstrap_ci, classification_metrics, proportion_interval
from .verdicts import Status, clean_labels, merge_verdicts, scored_mask, validate_verdicts

#: Coarse label -> its member criteria.
COARSE_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = {
    "instruction_ok": tuple(INSTRUCTION_CRITERIA),
    "sequence_ok": tuple(SEQUENCE_CRITERIA),
    "overall_ok": tuple(CRITERIA),
}
#: Row/column order of the paper's Tables 4 and 5: each group's criteria followed by its coarse label.
TABLE_CRITERIA: Final = (
    *INSTRUCTION_CRITERIA, "instruction_ok", *SEQUENCE_CRITERIA, "sequence_ok", "overall_ok",
)
#: Human names (Table 4 wording for the coarse rows).
CRITERION_LABELS: Final[Mapping[str, str]] = {
    "specificity": "specificity",
    "coherence": "coherence",
    "solvability": "solvability",
    "parameter_alignment": "parameter alignment",
    "sufficiency": "sufficiency",
    "minimality": "minimality",
    "instruction_ok": "instruction correctness",
    "sequence_ok": "sequence correctness",
    "overall_ok": "overall correctness (any error)",
}
#: Which block a criterion belongs to (for colouring bars).
CRITERION_KIND: Final[Mapping[str, str]] = {
    **{c: "instruction" for c in INSTRUCTION_CRITERIA},
    **{c: "sequence" for c in SEQUENCE_CRITERIA},
    **{c: "coarse" for c in COARSE_CRITERIA},
}

ERROR_RATE_COLUMNS: Final = (
    "group", "criterion", "criterion_label", "criterion_kind", "n_instances", "n", "n_errors",
    "n_unscored", "error_rate", "ci_low", "ci_high", "ci_method", "display",
)
VALIDATION_METRICS: Final = ("accuracy", "precision", "recall", "f1")
VALIDATION_COLUMNS: Final = (
    "group", "criterion", "criterion_label", "n_annotated", "n", "n_unscored", "support",
    "tp", "fp", "fn", "tn",
    *[col for metric in VALIDATION_METRICS for col in (metric, f"{metric}_ci_low", f"{metric}_ci_high")],
    "ci_method",
)

__all__ = [
    "COARSE_MEMBERS", "TABLE_CRITERIA", "CRITERION_LABELS", "CRITERION_KIND",
    "ERROR_RATE_COLUMNS", "VALIDATION_COLUMNS",
    "labels_wide", "derive_coarse", "merge_verdicts", "source_of", "subset_of_id",
    "error_rate_table", "error_rate_wide", "format_rate", "format_counts",
    "validation_table", "validation_long", "validation_wide",
    "disagreement_view",
]


# --- labels ------------------------------------------------------------------------------------------

#: the one source-from-id / subset-from-id helpers (defined in ``schema``), under their table names
source_of = source_of_id

def labels_wide(verdicts: pd.DataFrame, *, criteria: Sequence[str] = CRITERIA) -> pd.DataFrame:
    """Long verdicts (one row per instance x criterion) -> one row per instance with a column per criterion.

    Args:
        verdicts: columns ``instance_id, criterion, label`` (+ optional ``status``); at most one row per
            (instance_id, criterion).
        criteria: the criterion columns to produce (absent ones are all NaN).

    Returns:
        Columns ``instance_id`` + ``criteria``, values 1.0 / 0.0 / NaN (NaN = unscored: status not ``ok``
        or label missing). Instances appear in first-seen order; empty input gives an empty frame.
    """
    columns = ["instance_id", *criteria]
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=columns).astype({c: float for c in criteria})
    validate_verdicts(verdicts)
    frame = verdicts.loc[:, ["instance_id", "criterion"]].astype(object).copy()
    frame["value"] = clean_labels(verdicts["label"]).where(scored_mask(verdicts))
    wide = frame.pivot(index="instance_id", columns="criterion", values="value")
    order = pd.unique(frame["instance_id"])
    wide = wide.reindex(index=order, columns=list(criteria)).astype(float)
    wide = wide.reset_index()
    wide.columns.name = None
    return wide.loc[:, columns]


def derive_coarse(labels_frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``instruction_ok``, ``sequence_ok`` and ``overall_ok`` to a wide label frame.

    Args:
        labels_frame: one row per instance (or per instance x annotator) with criterion columns holding
            1 / 0 / NaN; criterion columns that are absent count as unscored.

    Returns:
        A copy with the three coarse columns (float 1.0 / 0.0 / NaN): 0 if any member is 0; 1 if all
        members are 1; NaN otherwise (no error seen, but some member unscored). Other columns are kept.
    """
    frame = labels_frame.copy()
    for criterion in CRITERIA:
        frame[criterion] = clean_labels(frame[criterion]) if criterion in frame.columns else np.nan
    for coarse, members in COARSE_MEMBERS.items():
        block = frame.loc[:, list(members)]
        any_error = block.eq(0).any(axis=1)
        all_hold = block.eq(1).all(axis=1)
        frame[coarse] = np.where(any_error, 0.0, np.where(all_hold, 1.0, np.nan))
    return frame


def _as_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Accept long verdicts or a wide label frame; return wide labels with coarse columns."""
    if "criterion" in frame.columns and "label" in frame.columns:
        return derive_coarse(labels_wide(frame))
    if "instance_id" not in frame.columns:
        raise ValueError("labels need an 'instance_id' column")
    return derive_coarse(frame)


# --- Table 5: error rates --------------------------------------------------------------------------


def format_rate(rate: float, low: float, high: float, n: int | None = None, *, digits: int = 1,
                percent: bool = True) -> str:
    """``"17.5% (12.0–24.1) n=100"`` (``percent=False``: ``"0.17 (0.12–0.24) n=100"`` with ``digits=2``);
    ``"–"`` when the value is undefined (n = 0). ``n`` None or NaN is left out."""
    if n is not None and pd.isna(n):
        n = None
    n_text = "" if n is None else f" n={int(n)}"
    if rate is None or pd.isna(rate):
        return "–" + n_text
    scale, unit = (100, "%") if percent else (1, "")
    text = f"{scale * rate:.{digits}f}{unit}"
    if not (pd.isna(low) or pd.isna(high)):
        text += f" ({scale * low:.{digits}f}–{scale * high:.{digits}f})"
    return text + n_text


def _group_keys(
    ids: pd.Series, instances: pd.DataFrame | Iterable[Instance] | None, by: str | None
) -> tuple[pd.DataFrame, str | None]:
    """Frame ``instance_id, group`` over the universe of instances."""
    if instances is not None and not isinstance(instances, pd.DataFrame):
        instances = instances_frame(instances)
    if instances is not None:
        universe = pd.unique(pd.concat([instances["instance_id"].astype(object), ids.astype(object)]))
    else:
        universe = pd.unique(ids.astype(object))
    keys = pd.DataFrame({"instance_id": universe})
    if by is None:
        keys["group"] = "all"
        return keys, None
    if instances is not None and by in instances.columns:
        mapping = instances.drop_duplicates("instance_id").set_index("instance_id")[by]
        keys["group"] = keys["instance_id"].map(mapping)
        fallback = {"source": source_of, "subset": subset_of_id}.get(by)
        if fallback is not None:
            keys["group"] = keys["group"].where(keys["group"].notna(), keys["instance_id"].map(fallback))
        keys["group"] = keys["group"].astype(object).where(keys["group"].notna(), "(unknown)")
    elif by == "source":
        keys["group"] = keys["instance_id"].map(source_of)
    elif by == "subset":
        keys["group"] = keys["instance_id"].map(subset_of_id)
    else:
        raise ValueError(
            f"cannot group by {by!r}: pass an instances frame with that column (or use 'source', 'subset' or None)"
        )
    return keys, by


def error_rate_table(
    verdicts: pd.DataFrame,
    instances: pd.DataFrame | Iterable[Instance] | None = None,
    by: str | None = "source",
    *,
    method: IntervalMethod = "wilson",
    alpha: float = 0.05,
    include_total: bool = False,
    digits: int = 1,
) -> pd.DataFrame:
    """Share of instances with an error, per group and criterion (the paper's Table 5), long form.

    Args:
        verdicts: verdict table (``VERDICT_COLUMNS``), one row per (instance, criterion); merge several
            judges first with :func:`merge_verdicts`.
        instances: optional instances (frame from ``schema.instances_frame`` or ``Instance`` objects).
            When given, it defines the universe: instances without any verdict count as unscored, and
            ``by`` may name any of its columns. Without it, groups come from the id (``source``/``subset``).
        by: grouping column (``"source"``, ``"subset"``, a column of ``instances``) or None for one
            group ``"all"``.
        method: interval for the error rate (``"wilson"`` default, ``"wald"``, ``"clopper_pearson"``).
        include_total: add a group ``"all"`` over every instance (when grouping).
        digits: decimals of the percentages in ``display``.

    Returns:
        One row per group x criterion, criteria in ``TABLE_CRITERIA`` order; columns
        ``ERROR_RATE_COLUMNS``: ``n_instances`` (all in the group), ``n`` (scored), ``n_errors``,
        ``n_unscored`` (= n_instances - n, never in the denominator), ``error_rate = n_errors / n`` in
        [0, 1] (lower is better; NaN when n = 0), ``ci_low``/``ci_high`` (``1 - alpha`` interval),
        ``display`` e.g. ``"17.5% (12.0–24.1) n=100"``. ``attrs["by"]`` records the grouping. Empty
        verdicts and no instances give an empty frame with these columns.
    """
    labels = _as_labels(verdicts) if len(verdicts) else derive_coarse(labels_wide(verdicts))
    keys, by_name = _group_keys(labels["instance_id"], instances, by)
    frame = keys.merge(labels, on="instance_id", how="left")
    groups: list[tuple[str, pd.DataFrame]] = [(str(g), part) for g, part in frame.groupby("group", sort=True)]
    if include_total and by is not None and len(frame):
        groups.append(("all", frame))
    rows = []
    for group, part in groups:
        for criterion in TABLE_CRITERIA:
            values = part[criterion]
            n = int(values.notna().sum())
            n_errors = int(values.eq(0).sum())
            rate = n_errors / n if n else math.nan
            low, high = proportion_interval(n_errors, n, method=method, alpha=alpha)
            rows.append({
                "group": group, "criterion": criterion, "criterion_label": CRITERION_LABELS[criterion],
                "criterion_kind": CRITERION_KIND[criterion], "n_instances": int(len(part)), "n": n,
                "n_errors": n_errors, "n_unscored": int(len(part) - n), "error_rate": rate,
                "ci_low": low, "ci_high": high, "ci_method": method,
                "display": format_rate(rate, low, high, n, digits=digits),
            })
    table = pd.DataFrame(rows, columns=list(ERROR_RATE_COLUMNS))
    table.attrs["by"] = by_name
    return table


def error_rate_wide(table: pd.DataFrame, *, value: str = "display", human_headers: bool = True) -> pd.DataFrame:
    """Table 5 display form: one row per group, one column per criterion (in ``TABLE_CRITERIA`` order).

    Args:
        table: output of :func:`error_rate_table`.
        value: the cell column to spread (``"display"`` text, or e.g. ``"error_rate"``), or ``"counts"``
            for cells that show the counts behind the rate: ``"12.5% (3/24; 5 unscored)"``, ``"–"``
            when nothing was scored.
        human_headers: column headers from ``CRITERION_LABELS`` instead of criterion keys.

    Returns:
        Index = group (named after ``attrs["by"]`` or ``"group"``), plus a leading ``n_instances`` column.
    """
    if value == "counts":
        table = table.assign(counts=[format_counts(*row) for row in
                                     zip(table["n_errors"], table["n"], table["n_unscored"])])
    wide = table.pivot(index="group", columns="criterion", values=value).reindex(columns=list(TABLE_CRITERIA))
    wide.insert(0, "n_instances", table.drop_duplicates("group").set_index("group")["n_instances"])
    if human_headers:
        wide = wide.rename(columns=dict(CRITERION_LABELS))
    wide.columns.name = None
    wide.index.name = table.attrs.get("by") or "group"
    return wide


def format_counts(n_errors: int, n: int, n_unscored: int, *, digits: int = 1) -> str:
    """``"12.5% (3/24; 5 unscored)"``: the rate with its counts; ``"–"`` when nothing was scored."""
    text = "–" if not n else f"{100 * n_errors / n:.{digits}f}% ({int(n_errors)}/{int(n)})"
    if n_unscored:
        text += f"; {int(n_unscored)} unscored"
    return text


# --- Table 4: validation -----------------------------------------------------------------------------


def _pick_annotator(annotations: pd.DataFrame, annotator: str | None) -> pd.DataFrame:
    if "annotator" not in annotations.columns:
        return annotations
    present = list(pd.unique(annotations["annotator"].astype(str)))
    if annotator is not None and annotator in present:
        chosen = annotations.loc[annotations["annotator"].astype(str) == annotator]
    elif len(present) == 1:
        chosen = annotations
    else:
        raise ValueError(
            f"annotations hold several annotators {present}; choose one with annotator=... "
            f"(asked for {annotator!r}), or pass adjudicated labels (annotations.adjudicated_labels)"
        )
    if chosen["instance_id"].duplicated().any():
        raise ValueError("annotations hold several rows per instance for one annotator; read them with "
                         "annotations.read_annotations (which keeps the last row per instance and annotator)")
    return chosen


def _metric_cis(
    truth: np.ndarray, judged: np.ndarray, metrics: Mapping[str, Any], ci: str, alpha: float,
    n_resamples: int, seed: int,
) -> dict[str, float]:
    out: dict[str, float] = {}
    if ci == "wilson":
        denominators = {
            "accuracy": (metrics["tp"] + metrics["tn"], metrics["n"]),
            "precision": (metrics["tp"], metrics["tp"] + metrics["fp"]),
            "recall": (metrics["tp"], metrics["tp"] + metrics["fn"]),
        }
        for metric in VALIDATION_METRICS:
            if metric in denominators:
                low, high = proportion_interval(*denominators[metric], method="wilson", alpha=alpha)
            else:  # F1 is not a proportion of anything: no closed-form interval here
                low = high = math.nan
            out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = low, high
        return out
    if ci == "bootstrap":
        for offset, metric in enumerate(VALIDATION_METRICS):
            result = bootstrap_ci(
                truth, judged, n_resamples=n_resamples, alpha=alpha, seed=seed + offset,
                statistic=lambda t, p, m=metric: classification_metrics(t, p)[m],
            )
            out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = result["ci_low"], result["ci_high"]
        return out
    raise ValueError(f"unknown ci {ci!r}; expected 'wilson' or 'bootstrap'")


def validation_table(
    judge_verdicts: pd.DataFrame,
    annotations: pd.DataFrame,
    by: str | None = None,
    *,
    instances: pd.DataFrame | Iterable[Instance] | None = None,
    annotator: str | None = "adjudicated",
    ci: Literal["wilson", "bootstrap"] = "wilson",
    alpha: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Judge labels vs reference labels per criterion (the paper's Table 4).

    "Has an error" (label 0) is the positive class: recall = share of real errors the judge caught.

    Args:
        judge_verdicts: long verdicts (one row per instance x criterion; merge judges first) or a wide
            label frame (``instance_id`` + criterion columns).
        annotations: reference labels, wide (``ANNOTATION_COLUMNS``); with several annotators the one
            named ``annotator`` is used (default the adjudicated row).
        by: optional grouping (``"source"``, ``"subset"`` or a column of ``instances``).
        ci: ``"wilson"`` = Wilson intervals for accuracy, precision and recall on their own denominators
            (F1 interval NaN); ``"bootstrap"`` = paired percentile bootstrap over instances for all four.
        n_resamples, seed: bootstrap settings (ignored for Wilson).

    Returns:
        One row per group x criterion in ``TABLE_CRITERIA`` order with ``VALIDATION_COLUMNS``:
        ``n_annotated`` (reference label present), ``n`` (both labels present), ``n_unscored``
        (annotated but the judge left it unscored), ``support`` (true errors), confusion counts,
        ``accuracy/precision/recall/f1`` in [0, 1] (higher is better; NaN when undefined) and their
        ``*_ci_low/high``. Empty input gives rows with n = 0 and NaN scores.
    """
    reference = _as_labels(_pick_annotator(annotations, annotator))
    judged = _as_labels(judge_verdicts)
    keys, by_name = _group_keys(reference["instance_id"], instances, by)
    merged = reference.merge(judged, on="instance_id", how="left", suffixes=("_true", "_judge"))
    merged = merged.merge(keys, on="instance_id", how="left")
    rows = []
    for group, part in merged.groupby("group", sort=True):
        for criterion in TABLE_CRITERIA:
            truth = part[f"{criterion}_true"].to_numpy(dtype=float)
            judge = part[f"{criterion}_judge"].to_numpy(dtype=float)
            annotated = ~np.isnan(truth)
            both = annotated & ~np.isnan(judge)
            metrics = classification_metrics(truth[both], judge[both])
            row = {
                "group": str(group), "criterion": criterion, "criterion_label": CRITERION_LABELS[criterion],
                "n_annotated": int(annotated.sum()), "n": metrics["n"],
                "n_unscored": int(annotated.sum() - both.sum()), "support": metrics["support"],
                **{k: metrics[k] for k in ("tp", "fp", "fn", "tn", *VALIDATION_METRICS)},
                **_metric_cis(truth[both], judge[both], metrics, ci, alpha, n_resamples, seed),
                "ci_method": ci,
            }
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
    table.attrs["by"] = by_name
    return table


def validation_long(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group x criterion x metric: ``group, criterion, criterion_label, metric, value,
    ci_low, ci_high, n`` (ready for a dot-and-whisker or grouped bar chart)."""
    rows = []
    for record in table.to_dict("records"):
        for metric in VALIDATION_METRICS:
            rows.append({
                "group": record["group"], "criterion": record["criterion"],
                "criterion_label": record["criterion_label"], "metric": metric, "value": record[metric],
                "ci_low": record[f"{metric}_ci_low"], "ci_high": record[f"{metric}_ci_high"], "n": record["n"],
            })
    return pd.DataFrame(rows, columns=["group", "criterion", "criterion_label", "metric", "value",
                                       "ci_low", "ci_high", "n"])


def validation_wide(table: pd.DataFrame, *, digits: int = 2) -> pd.DataFrame:
    """Table 4 display form: rows = criteria (human names), columns = (group, acc/P/R/F1/n), text cells."""
    def fmt(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:.{digits}f}"

    parts = {}
    for group, part in table.groupby("group", sort=True):
        block = part.set_index("criterion").reindex(list(TABLE_CRITERIA))
        parts[group] = pd.DataFrame({
            "acc": block["accuracy"].map(fmt), "P": block["precision"].map(fmt),
            "R": block["recall"].map(fmt), "F1": block["f1"].map(fmt), "n": block["n"].astype("Int64"),
        })
    wide = pd.concat(parts, axis=1) if parts else pd.DataFrame()
    wide.index = [CRITERION_LABELS[c] for c in TABLE_CRITERIA] if parts else wide.index
    return wide


# --- disagreements -----------------------------------------------------------------------------------


def _word(value: float) -> str:
    return "unscored" if pd.isna(value) else ("error" if value == 0 else "holds")


def _outcome(truth: float, judged: float) -> str:
    if pd.isna(truth):
        return "not annotated"
    if pd.isna(judged):
        return "unscored"
    return {(0, 0): "TP", (1, 0): "FP", (0, 1): "FN", (1, 1): "TN"}[(int(truth), int(judged))]


def _rationales(verdicts: pd.DataFrame | None) -> pd.DataFrame:
    if verdicts is None or len(verdicts) == 0 or "criterion" not in verdicts.columns:
        return pd.DataFrame(columns=["instance_id", "criterion", "status", "rationale"])
    frame = verdicts.loc[:, ["instance_id", "criterion"]].copy()
    frame["status"] = verdicts["status"] if "status" in verdicts.columns else Status.OK
    frame["rationale"] = verdicts["rationale"] if "rationale" in verdicts.columns else ""
    return frame


def disagreement_view(
    rule_verdicts: pd.DataFrame | None,
    model_verdicts: pd.DataFrame | None = None,
    annotations: pd.DataFrame | None = None,
    *,
    annotator: str | None = "adjudicated",
    grain: Literal["cell", "instance"] = "cell",
    criteria: Sequence[str] = TABLE_CRITERIA,
) -> pd.DataFrame:
    """Which instances sit behind each agreement cell of rules vs model vs reference labels.

    Args:
        rule_verdicts: verdicts of the deterministic checks (or None).
        model_verdicts: verdicts of the model judge (or None).
        annotations: reference labels (wide; the ``annotator`` row is used). Required.
        grain: ``"cell"`` = one row per criterion x (reference, rules, model) combination with the
            instance ids; ``"instance"`` = one row per annotated instance x criterion.
        criteria: which criteria to list (coarse ones are derived for each side).

    Returns:
        ``grain="instance"``: ``instance_id, criterion, reference, rules, model`` (words: ``error`` /
        ``holds`` / ``unscored``), ``rules_outcome``/``model_outcome`` (TP/FP/FN/TN with error as the
        positive class, or ``unscored``), ``rules_status, rules_rationale, model_status,
        model_rationale`` (empty for coarse criteria).
        ``grain="cell"``: ``criterion, reference, rules, model, rules_outcome, model_outcome, n,
        instance_ids`` (sorted list), sorted by criterion then n descending.
    """
    if annotations is None:
        raise ValueError("disagreement_view needs reference annotations")
    reference = _as_labels(_pick_annotator(annotations, annotator))
    sides: dict[str, pd.DataFrame | None] = {}
    for name, verdicts in (("rules", rule_verdicts), ("model", model_verdicts)):
        has_verdicts = verdicts is not None and len(verdicts) > 0
        sides[name] = _as_labels(verdicts).drop_duplicates("instance_id").set_index("instance_id") if has_verdicts else None
    rows = []
    notes = {name: _rationales(v).set_index(["instance_id", "criterion"])
             for name, v in (("rules", rule_verdicts), ("model", model_verdicts))}
    for criterion in criteria:
        truth = reference.set_index("instance_id")[criterion]
        for instance_id, true_value in truth.items():
            row: dict[str, Any] = {"instance_id": instance_id, "criterion": criterion,
                                   "reference": _word(true_value)}
            for name, labels in sides.items():
                value = math.nan
                if labels is not None and instance_id in labels.index:
                    value = float(labels.at[instance_id, criterion])
                row[name] = _word(value) if labels is not None else "no verdicts"
                row[f"{name}_outcome"] = _outcome(true_value, value) if labels is not None else "no verdicts"
                key = (instance_id, criterion)
                if key in notes[name].index:
                    note = notes[name].loc[key]
                    if isinstance(note, pd.DataFrame):
                        note = note.iloc[0]
                    row[f"{name}_status"], row[f"{name}_rationale"] = note["status"], note["rationale"]
                else:
                    row[f"{name}_status"], row[f"{name}_rationale"] = "", ""
            rows.append(row)
    instance_columns = ["instance_id", "criterion", "reference", "rules", "model", "rules_outcome",
                        "model_outcome", "rules_status", "rules_rationale", "model_status", "model_rationale"]
    per_instance = pd.DataFrame(rows, columns=instance_columns)
    if grain == "instance":
        return per_instance
    cell_keys = ["criterion", "reference", "rules", "model", "rules_outcome", "model_outcome"]
    if per_instance.empty:
        return pd.DataFrame(columns=[*cell_keys, "n", "instance_ids"])
    cells = (
        per_instance.groupby(cell_keys, sort=False)["instance_id"]
        .agg(n="size", instance_ids=lambda ids: sorted(ids))
        .reset_index()
    )
    order = {c: i for i, c in enumerate(criteria)}
    cells["_order"] = cells["criterion"].map(order)
    cells = cells.sort_values(["_order", "n"], ascending=[True, False], kind="stable").drop(columns="_order")
    return cells.reset_index(drop=True)
