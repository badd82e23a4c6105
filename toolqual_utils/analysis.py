"""Small pure helpers behind the analysis widgets and notebooks (05 explorer, annotator).

Pure module: standard library, pandas and the toolqual pure modules only (no ipywidgets, no plotly),
so every callback of :mod:`toolqual_utils.widgets` is a thin call into functions tested here.

- :func:`instance_html`: an instance rendered for reading (instruction, tools with parameters, calls
  with arguments and observations), every dataset string HTML-escaped.
- :func:`label_disagreements` / :func:`next_disagreement`: where one label set disagrees with another
  (an annotator vs rule/model verdicts or vs another annotator), and the next such instance.
"""
from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .dialogue import dialogue_text
from .errors import ConfigError
from .verdicts import OFFLINE_JUDGES
from .schema import CRITERIA, Instance
from .tables import CRITERION_LABELS, TABLE_CRITERIA, error_rate_table, format_rate, labels_wide, source_of, validation_table

__all__ = [
    "instance_html", "as_wide_labels", "label_disagreements", "next_disagreement",
    "KEPT_COLUMNS", "filter_counts", "kept_table", "verdicts_of",
    "optional_file", "optional_files", "verdict_status_counts", "validation_display", "error_rate_bounds",
    "recipe_availability", "output_folder", "manifest_table", "judge_label", "reference_notes",
    "f1_by_judge", "judge_mistakes", "error_rates_compared", "outcomes_from", "ScoredInstances", "scored_instances",
    "JudgeComparison", "compare_on_same_instances",
]

_MAX_OBSERVATION_CHARS = 1500


def _text(value: Any, limit: int | None = None) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text)


def _parameter_rows(tool: Any) -> str:
    required = set(tool.required)
    rows = []
    for name, spec in tool.properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "")
        kind = "|".join(map(str, kind)) if isinstance(kind, list) else str(kind)
        extra = []
        if "enum" in spec:
            extra.append("one of " + ", ".join(map(str, spec["enum"])))
        if "default" in spec:
            extra.append(f"default {spec['default']!r}")
        rows.append(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(str(name)), html.escape(kind), "required" if name in required else "optional",
                html.escape(" · ".join([str(spec.get("description", "")), *extra]).strip(" ·")),
            )
        )
    if not rows:
        return "<div class='tq-muted'>(no parameters)</div>"
    return ("<table class='tq-params'><thead><tr><th>parameter</th><th>type</th><th></th><th>description</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


_STYLE = """<style>
.tq-inst{font-family:system-ui,sans-serif;font-size:13px;line-height:1.4}
.tq-inst h4{margin:0.6em 0 0.2em 0;font-size:13px}
.tq-inst .tq-instr{white-space:pre-wrap;background:#f6f8fa;border-left:3px solid #3b82f6;padding:6px 10px}
.tq-inst .tq-muted{color:#5f6b7a}
.tq-inst table{border-collapse:collapse;font-size:12px;margin:2px 0 6px 0}
.tq-inst td,.tq-inst th{border-bottom:1px solid #e4e7eb;padding:2px 6px;text-align:left;vertical-align:top}
.tq-inst pre{white-space:pre-wrap;margin:2px 0;font-size:12px;background:#fafbfc;padding:4px 6px}
</style>"""


def instance_html(instance: Instance, *, max_observation_chars: int = _MAX_OBSERVATION_CHARS) -> str:
    """HTML view of one instance for reading and annotating; all dataset text is escaped.

    Shows the id and source, the earlier turns of a multi-turn instance, the instruction, every tool with its parameters (type, required,
    description, enum/default), the gold calls with their arguments (or the raw text when the
    arguments could not be parsed) and observations (cut to ``max_observation_chars``), pseudo-calls
    recorded by the loader, and the final answer. ``calls is None`` reads "no gold calls known";
    ``calls == []`` reads "gold answer: no call".
    """
    parts = [_STYLE, "<div class='tq-inst'>",
             f"<div class='tq-muted'><code>{html.escape(instance.id)}</code> · {html.escape(instance.source)}</div>"]
    if instance.context:  # a turn of a multi-turn dialogue: the earlier turns first
        parts.append(f"<h4>Earlier turns ({len(instance.context)})</h4>"
                     f"<pre>{html.escape(dialogue_text(instance, max_observation_chars))}</pre>")
    parts += ["<h4>Instruction</h4>", f"<div class='tq-instr'>{html.escape(instance.instruction)}</div>",
              f"<h4>Tools ({len(instance.tools)})</h4>"]
    for tool in instance.tools:
        parts.append(f"<div><b><code>{html.escape(tool.name)}</code></b> "
                     f"<span class='tq-muted'>{_text(tool.description, 400)}</span></div>")
        parts.append(_parameter_rows(tool))
    if instance.calls is None:
        parts.append("<h4>Calls</h4><div class='tq-muted'>no gold calls known</div>")
    elif not instance.calls:
        parts.append("<h4>Calls</h4><div class='tq-muted'>gold answer: no call</div>")
    else:
        parts.append(f"<h4>Calls ({len(instance.calls)})</h4><ol>")
        for call in instance.calls:
            if call.parse_failed:
                arguments = (f"<div class='tq-muted'>arguments could not be parsed; raw text:</div>"
                             f"<pre>{_text(call.raw_arguments)}</pre>")
            else:
                arguments = f"<pre>{_text(call.arguments if call.arguments is not None else {})}</pre>"
            observation = ""
            if call.observation is not None:
                observation = (f"<div class='tq-muted'>observation:</div>"
                               f"<pre>{_text(call.observation, max_observation_chars)}</pre>")
            parts.append(f"<li><code>{html.escape(call.name)}</code>{arguments}{observation}</li>")
        parts.append("</ol>")
    pseudo = instance.meta.get("pseudo_calls") or []
    if pseudo:
        names = ", ".join(html.escape(str(p.get("name", "?"))) for p in pseudo if isinstance(p, dict))
        parts.append(f"<div class='tq-muted'>pseudo-calls (not API calls): {names}</div>")
    if instance.final_answer is not None:
        parts.append(f"<h4>Final answer</h4><pre>{_text(instance.final_answer, max_observation_chars)}</pre>")
    parts.append("</div>")
    return "".join(parts)


def as_wide_labels(labels: pd.DataFrame | None, *, annotator: str | None = None) -> pd.DataFrame:
    """Verdicts (long) or annotations (wide) -> ``instance_id`` + six criterion columns (1.0/0.0/NaN).

    Long verdicts (``criterion``/``label`` columns) go through ``tables.labels_wide`` (unscored = NaN);
    annotations with an ``annotator`` column are narrowed to ``annotator`` when given. None or empty
    input gives an empty frame with these columns.
    """
    columns = ["instance_id", *CRITERIA]
    if labels is None or len(labels) == 0:
        return pd.DataFrame(columns=columns).astype({c: float for c in CRITERIA})
    if "criterion" in labels.columns and "label" in labels.columns:
        return labels_wide(labels)
    frame = labels
    if annotator is not None and "annotator" in frame.columns:
        frame = frame.loc[frame["annotator"].astype(str) == annotator]
    frame = frame.drop_duplicates("instance_id", keep="last")
    out = pd.DataFrame({"instance_id": frame["instance_id"].astype(str)})
    for criterion in CRITERIA:
        out[criterion] = pd.to_numeric(frame[criterion], errors="coerce").astype(float) if criterion in frame else float("nan")
    return out.reset_index(drop=True)


def label_disagreements(
    own: pd.DataFrame, other: pd.DataFrame, *, criteria: Sequence[str] = CRITERIA
) -> pd.DataFrame:
    """Where two label sets disagree: one row per instance x criterion both labelled, differently.

    Args:
        own, other: wide labels (``instance_id`` + criterion columns, 1.0 / 0.0 / NaN), e.g. from
            :func:`as_wide_labels`. A criterion either side left unlabelled (NaN) is never a
            disagreement.

    Returns:
        Columns ``instance_id, criterion, own, other`` (labels as float), in ``own``'s instance order
        then criterion order. Empty when nothing disagrees or either side is empty.
    """
    columns = ["instance_id", "criterion", "own", "other"]
    if own.empty or other.empty:
        return pd.DataFrame(columns=columns)
    merged = own.merge(other, on="instance_id", how="inner", suffixes=("_own", "_other"))
    rows = []
    for record in merged.to_dict("records"):
        for criterion in criteria:
            a, b = record.get(f"{criterion}_own"), record.get(f"{criterion}_other")
            if pd.notna(a) and pd.notna(b) and float(a) != float(b):
                rows.append({"instance_id": record["instance_id"], "criterion": criterion,
                             "own": float(a), "other": float(b)})
    return pd.DataFrame(rows, columns=columns)


def next_disagreement(order: Sequence[str], current: int, disagreeing_ids: Iterable[str]) -> int | None:
    """Index (in ``order``) of the next instance after ``current`` whose id is in ``disagreeing_ids``.

    Searches forward from ``current + 1`` and wraps around to the start (the current instance is
    checked last). Returns None when no instance in ``order`` disagrees.
    """
    wanted = set(disagreeing_ids)
    n = len(order)
    for step in range(1, n + 1):
        index = (current + step) % n
        if order[index] in wanted:
            return index
    return None


# --- filter explorer ---------------------------------------------------------------------------------

#: Columns of the kept-instances table (those present in the frame are shown, in this order).
KEPT_COLUMNS: tuple[str, ...] = ("instance_id", "source", "instruction", *CRITERIA, "overall_ok", "ice_score")


def filter_counts(frame: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    """How many instances a filter kept, per source and in total.

    Args:
        frame: the full per-instance frame (``selection.selection_frame``).
        kept: the rows ``selection.filter_instances`` returned for it.

    Returns:
        One row per source (sorted) plus a final ``"all"`` row: ``source, n_instances, n_kept,
        share_kept`` (in [0, 1]; NaN for a source with no instances). Empty frame -> just ``"all"``
        with zeros.
    """
    columns = ["source", "n_instances", "n_kept", "share_kept"]
    total = frame.groupby("source", sort=True).size() if len(frame) else pd.Series(dtype=int)
    kept_by = kept.groupby("source", sort=True).size() if len(kept) else pd.Series(dtype=int)
    rows = [{"source": str(source), "n_instances": int(n), "n_kept": int(kept_by.get(source, 0))}
            for source, n in total.items()]
    rows.append({"source": "all", "n_instances": int(len(frame)), "n_kept": int(len(kept))})
    table = pd.DataFrame(rows, columns=columns[:3])
    table["share_kept"] = [k / n if n else float("nan") for k, n in zip(table["n_kept"], table["n_instances"])]
    return table


def kept_table(kept: pd.DataFrame, *, columns: Sequence[str] = KEPT_COLUMNS) -> pd.DataFrame:
    """The kept rows with the columns worth reading (labels as 1 / 0 / blank), index reset."""
    shown = kept.loc[:, [c for c in columns if c in kept.columns]].reset_index(drop=True)
    for criterion in (*CRITERIA, "overall_ok"):
        if criterion in shown.columns:
            shown[criterion] = shown[criterion].astype("Int64")
    return shown


def verdicts_of(verdicts: pd.DataFrame | None, instance_ids: Iterable[str]) -> pd.DataFrame:
    """The verdict rows of the given instances (empty frame with the same columns when none)."""
    if verdicts is None:
        return pd.DataFrame(columns=["instance_id", "criterion", "label", "status"])
    wanted = set(instance_ids)
    return verdicts.loc[verdicts["instance_id"].isin(wanted)]


# --- notebook support --------------------------------------------------------------------------------


def optional_file(path: str | os.PathLike[str] | None, parameter: str) -> Path | None:
    """A notebook's optional file parameter: None when empty, the Path when it exists.

    Raises:
        ConfigError: the parameter is set but no such file exists (names the parameter and the path).
    """
    if path is None or str(path).strip() == "":
        return None
    resolved = Path(path)
    if not resolved.is_file():
        raise ConfigError(f"{parameter} = {str(path)!r}: no such file (paths are relative to the project root)")
    return resolved


def optional_files(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
                   parameter: str) -> list[Path]:
    """A notebook parameter naming one file or a list of files (empty entries skipped), each checked.

    Raises:
        ConfigError: a named file does not exist (names the parameter and the path).
    """
    if paths is None:
        return []
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return [found for item in items if (found := optional_file(item, parameter)) is not None]


_OFFLINE_JUDGES = OFFLINE_JUDGES


def judge_label(verdicts: pd.DataFrame) -> str:
    """Who a verdict table's labels come from: ``"<model> · <prompt id>"`` for a model-judge run (rules,
    engine and heuristic rows decided the rest), else ``"offline judge (rules + heuristics)"``."""
    if verdicts is None or len(verdicts) == 0:
        return "no verdicts"
    judges = verdicts["judge"].astype(str)
    model_rows = verdicts.loc[~judges.isin(_OFFLINE_JUDGES)]
    if model_rows.empty:
        return "offline judge (rules + heuristics)"
    models = ", ".join(sorted(model_rows["judge"].astype(str).unique()))
    prompts = ", ".join(sorted(model_rows["prompt_id"].astype(str).unique()))
    return f"{models} · {prompts}"


def reference_notes(annotations: pd.DataFrame, *, annotator: str = "adjudicated") -> pd.Series:
    """The annotators' note per instance: the ``annotator`` row's note, else the first other non-empty one."""
    if annotations is None or len(annotations) == 0 or "note" not in annotations.columns:
        return pd.Series(dtype=object)
    frame = annotations.assign(_first=(annotations["annotator"] != annotator).astype(int))
    frame = frame.loc[frame["note"].fillna("").astype(str).str.strip() != ""]
    return frame.sort_values("_first", kind="stable").drop_duplicates("instance_id").set_index("instance_id")["note"]


def f1_by_judge(
    runs: dict[str, pd.DataFrame], annotations: pd.DataFrame, *, annotator: str = "adjudicated",
    split_column: str = "file",
) -> pd.DataFrame:
    """F1 per criterion for each verdict table on each development split (error = positive class).

    Args:
        runs: name -> verdict table (a model-judge run, or the offline judge's verdicts).
        annotations: reference labels from :func:`toolqual_utils.annotations.read_annotations`; the split
            of an instance is the stem of the file its labels came from (``split_column``).

    Returns:
        One row per run x split: ``judge`` (:func:`judge_label`), ``run``, ``split``, ``n``, then the F1 of
        each criterion (two decimals; "–" when undefined). Splits without verdicts are left out.
    """
    splits = annotations[split_column].map(lambda f: Path(str(f)).stem) if split_column in annotations else None
    rows = []
    for name, verdicts in runs.items():
        for split in (sorted(splits.unique()) if splits is not None else ["all"]):
            part = annotations if splits is None else annotations.loc[splits == split]
            ids = set(part["instance_id"])
            judged = verdicts.loc[verdicts["instance_id"].isin(ids)]
            if judged.empty:
                continue
            table = validation_table(judged, part, annotator=annotator).set_index("criterion")
            row = {"judge": judge_label(judged), "run": name, "split": split, "n": int(judged["instance_id"].nunique())}
            for criterion in CRITERIA:
                value = table.at[criterion, "f1"]
                row[criterion] = "–" if pd.isna(value) else f"{value:.2f}"
            rows.append(row)
    return pd.DataFrame(rows, columns=["judge", "run", "split", "n", *CRITERIA])


def judge_mistakes(
    verdicts: pd.DataFrame, annotations: pd.DataFrame, *, annotator: str = "adjudicated",
    criteria: Sequence[str] = CRITERIA,
) -> pd.DataFrame:
    """The judge's false alarms and misses beside the annotators' reasons, one row per instance x criterion.

    Returns:
        ``instance_id, source, criterion, outcome`` (``FP`` = the judge flagged an error the annotators did
        not, ``FN`` = it missed one), ``decided_by`` (model name, rules, engine or heuristic),
        ``judge_rationale``, ``annotators_note``; sorted by criterion then instance. Empty when they agree.
    """
    columns = ["instance_id", "source", "criterion", "outcome", "decided_by", "judge_rationale", "annotators_note"]
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=columns)
    reference = annotations.loc[annotations["annotator"] == annotator].drop_duplicates("instance_id", keep="last")
    truth = reference.set_index("instance_id")
    notes = reference_notes(annotations, annotator=annotator)
    labels = pd.to_numeric(verdicts["label"].astype(object), errors="coerce")
    rows = []
    for record, label in zip(verdicts.to_dict("records"), labels):
        criterion, instance_id = record["criterion"], record["instance_id"]
        if criterion not in criteria or instance_id not in truth.index or pd.isna(label):
            continue
        true_value = truth.at[instance_id, criterion]
        if pd.isna(true_value) or int(true_value) == int(label):
            continue
        rows.append({
            "instance_id": instance_id, "source": source_of(instance_id), "criterion": criterion,
            "outcome": "FP" if int(label) == 0 else "FN", "decided_by": record.get("judge", ""),
            "judge_rationale": record.get("rationale", ""), "annotators_note": notes.get(instance_id, ""),
        })
    order = {c: i for i, c in enumerate(criteria)}
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    frame["_order"] = frame["criterion"].map(order)
    return frame.sort_values(["_order", "instance_id"], kind="stable").drop(columns="_order").reset_index(drop=True)


def error_rates_compared(
    judged: dict[str, pd.DataFrame], instances: Sequence[Instance], *, instance_ids: Iterable[str] | None = None,
    paper_table5: pd.DataFrame | None = None, by: str = "source", method: str = "wilson",
) -> pd.DataFrame:
    """Table 5 cells of several judges on the SAME instances, side by side, plus the paper's rows.

    Args:
        judged: judge label -> verdict table.
        instances: the instances (groups come from them).
        instance_ids: compare on these instances only (e.g. the sample a model judged); default all.
        paper_table5: the paper's Table 5 (``extrinsic.read_reference_table(5)``), shown as its own rows.

    Returns:
        One row per group x judge (paper rows last): ``group, judge, n_instances`` and one column per
        criterion in ``TABLE_CRITERIA`` order (human headers) with ``"rate (low–high) n=scored"``; "–"
        where nothing was scored.
    """
    labels = list(judged)
    if not labels:
        return pd.DataFrame(columns=["group", "judge", "n_instances"])
    covered = {i.id for i in instances} if instance_ids is None else set(map(str, instance_ids))
    pool = [instance for instance in instances if instance.id in covered]
    rows = []
    for label in labels:
        verdicts = judged[label]
        verdicts = verdicts.loc[verdicts["instance_id"].astype(str).isin(covered)]
        table = error_rate_table(verdicts, pool, by=by, method=method, include_total=True)
        for group, part in table.groupby("group", sort=False):
            cells = part.set_index("criterion")
            row = {"group": group, "judge": label, "n_instances": int(part["n_instances"].iloc[0])}
            for criterion in TABLE_CRITERIA:
                row[CRITERION_LABELS[criterion]] = cells.at[criterion, "display"] if cells.at[criterion, "n"] else "–"
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["_all"] = frame["group"].eq("all")
    frame = frame.sort_values(["_all", "group"], kind="stable").drop(columns="_all")
    if paper_table5 is not None and len(paper_table5):
        for group, part in paper_table5.groupby("group", sort=False):
            cells = part.set_index("criterion")["error_rate"]
            row = {"group": f"{group} (paper)", "judge": "ChatGPT, full training set (reference only)",
                   "n_instances": int(part["n_instances"].iloc[0])}
            for criterion in TABLE_CRITERIA:
                row[CRITERION_LABELS[criterion]] = f"{cells[criterion] * 100:.1f}%" if criterion in cells else "–"
            rows.append(row)
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    return frame.reset_index(drop=True)


def outcomes_from(value: Any, files: Sequence[str | os.PathLike[str]]) -> pd.DataFrame | None:
    """Notebook 06's ``outcomes_path``: None when it is empty; else the outcomes of the files it matched.

    Several files are the per-item runs of ``toolqual evaluate`` (one per run, combined with
    :func:`toolqual_utils.extrinsic.read_outcome_files`); one file may also be an aggregate table.

    Raises:
        ConfigError: the parameter is set but matches no file (names the parameter and the value).
    """
    from .extrinsic import read_outcome_files, read_outcomes

    empty = value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (list, tuple)) and not value)
    if empty:
        return None
    if not files:
        raise ConfigError(f"outcomes_path = {value!r}: no file matches (paths and globs are relative to the project "
                          "root; give the outcome files of `toolqual evaluate`, one per run)")
    if len(files) == 1:
        return read_outcomes(files[0])
    return read_outcome_files(files)


def confidence_curve(
    verdicts: pd.DataFrame, annotations: pd.DataFrame, *, annotator: str = "adjudicated",
    thresholds: Sequence[float] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), criteria: Sequence[str] = CRITERIA,
) -> pd.DataFrame:
    """Precision and recall of the judge's error flags against the reference, keeping only verdicts whose
    confidence is at least each threshold (what ``select --min-confidence`` and the explorer do).

    Returns:
        One row per criterion x threshold: ``criterion, min_confidence, n_kept`` (annotated verdicts still
        scored), ``coverage`` (their share of the annotated verdicts), ``precision``, ``recall``, ``f1``
        (error = positive class; NaN when undefined). A judge whose verdicts all rest on one answer
        (confidence 1.0) gives the same row at every threshold.
    """
    from .selection import mask_low_confidence

    columns = ["criterion", "min_confidence", "n_kept", "coverage", "precision", "recall", "f1"]
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=columns)
    rows = []
    for threshold in thresholds:
        masked = mask_low_confidence(verdicts, threshold) if "confidence" in verdicts.columns else verdicts
        table = validation_table(masked, annotations, annotator=annotator).set_index("criterion")
        for criterion in criteria:
            record = table.loc[criterion]
            annotated = int(record["n_annotated"])
            rows.append({"criterion": criterion, "min_confidence": float(threshold), "n_kept": int(record["n"]),
                         "coverage": (int(record["n"]) / annotated) if annotated else float("nan"),
                         "precision": record["precision"], "recall": record["recall"], "f1": record["f1"]})
    return pd.DataFrame(rows, columns=columns)


def verdict_status_counts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Who decided what: one row per criterion x judge x status with ``n_verdicts`` and ``n_errors``.

    Rows follow the criterion order of ``CRITERIA``; empty input gives an empty frame with the columns
    ``criterion, judge, status, n_verdicts, n_errors``.
    """
    columns = ["criterion", "judge", "status", "n_verdicts", "n_errors"]
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=columns)
    frame = verdicts.assign(
        judge=verdicts["judge"].astype(str) if "judge" in verdicts.columns else "",
        status=verdicts["status"].astype(str),
        is_error=pd.to_numeric(verdicts["label"].astype(object), errors="coerce").eq(0),
    )
    counts = (frame.groupby(["criterion", "judge", "status"], sort=False)
              .agg(n_verdicts=("instance_id", "size"), n_errors=("is_error", "sum")).reset_index())
    order = {c: i for i, c in enumerate(CRITERIA)}
    counts["_order"] = counts["criterion"].map(order)
    counts = counts.sort_values(["_order", "judge", "status"], kind="stable").drop(columns="_order")
    counts["n_errors"] = counts["n_errors"].astype(int)
    return counts.loc[:, columns].reset_index(drop=True)


def validation_display(table: pd.DataFrame, *, digits: int = 2) -> pd.DataFrame:
    """Table-4 layout with intervals: one row per group x criterion, cells ``"0.74 (0.60–0.85)"``.

    Args:
        table: ``tables.validation_table`` output.

    Returns:
        Columns ``group, criterion, n, errors (reference), TP/FP/FN/TN, accuracy, precision, recall, F1,
        unscored``; ``–`` where a metric is undefined (e.g. precision when the judge flagged nothing).
    """
    rows = []
    for record in table.to_dict("records"):
        rows.append({
            "group": record["group"], "criterion": record["criterion_label"], "n": record["n"],
            "errors (reference)": record["support"],
            "TP/FP/FN/TN": f"{record['tp']}/{record['fp']}/{record['fn']}/{record['tn']}",
            **{name: format_rate(record[metric], record[f"{metric}_ci_low"], record[f"{metric}_ci_high"],
                                     digits=digits, percent=False)
               for name, metric in (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"),
                                    ("F1", "f1"))},
            "unscored": record["n_unscored"],
        })
    return pd.DataFrame(rows, columns=["group", "criterion", "n", "errors (reference)", "TP/FP/FN/TN", "accuracy",
                                       "precision", "recall", "F1", "unscored"])


def error_rate_bounds(table: pd.DataFrame, *, digits: int = 1) -> pd.DataFrame:
    """What the unscored verdicts could hide: the share with an error over *all* instances of a group.

    Args:
        table: ``tables.error_rate_table`` output (long).

    Returns:
        One row per group x criterion: ``group, criterion, n_instances, n_errors, n_unscored,
        lower`` (= n_errors / n_instances: every unscored verdict holds), ``upper``
        (= (n_errors + n_unscored) / n_instances: every unscored verdict is an error), both in [0, 1]
        (NaN for an empty group), and ``display`` ``"12.0%–40.0%"``. A wide gap means the judge left
        too much unscored for the error rate to mean much.
    """
    columns = ["group", "criterion", "n_instances", "n_errors", "n_unscored", "lower", "upper", "display"]
    if table is None or table.empty:
        return pd.DataFrame(columns=columns)
    frame = table.loc[:, ["group", "criterion_label", "n_instances", "n_errors", "n_unscored"]].rename(
        columns={"criterion_label": "criterion"}).reset_index(drop=True)
    n_all = frame["n_instances"].where(frame["n_instances"] > 0)
    frame["lower"] = frame["n_errors"] / n_all
    frame["upper"] = (frame["n_errors"] + frame["n_unscored"]) / n_all
    frame["display"] = [
        "–" if pd.isna(lo) else f"{100 * lo:.{digits}f}%–{100 * hi:.{digits}f}%"
        for lo, hi in zip(frame["lower"], frame["upper"])
    ]
    return frame.loc[:, columns]


# --- selection support (notebook 06) ------------------------------------------------------------------


def recipe_availability(frame: pd.DataFrame, *, size: int) -> pd.DataFrame:
    """Which selection recipes can run on these inputs, and why not.

    Args:
        frame: a ``selection.selection_frame`` (criterion labels and ``ice_score`` joined).
        size: the subset size the recipes would be asked for.

    Returns:
        One row per recipe of ``selection.RECIPES`` (Table 6 order): ``recipe, recipe_label,
        available`` (bool) and ``reason`` (empty when available; else the message ``selection.select``
        gives, e.g. that ICE scores are needed and how to produce them).
    """
    from .errors import InputError
    from .selection import RECIPE_LABELS, RECIPES, select

    rows = []
    for recipe in RECIPES:
        try:
            select(frame, recipe=recipe, size=size)  # type: ignore[arg-type]
            available, reason = True, ""
        except InputError as exc:
            available, reason = False, str(exc)
        rows.append({"recipe": recipe, "recipe_label": RECIPE_LABELS[recipe], "available": available,
                     "reason": reason})
    return pd.DataFrame(rows, columns=["recipe", "recipe_label", "available", "reason"])


#: Where notebooks write their example exports (relative to the project root; not committed).
EXPORTS_DIR = "reports/exports"


def output_folder(path: str | os.PathLike[str] | None, *, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder a notebook writes example outputs to, created if needed.

    ``path`` relative to ``root`` (the project root; default the working directory, which notebooks set
    to the root) or absolute; empty means :data:`EXPORTS_DIR`. Never a temporary folder: what a report
    writes stays where the user will find it, and never in ``data/``.
    """
    chosen = Path(str(path).strip() or EXPORTS_DIR) if path is not None else Path(EXPORTS_DIR)
    folder = chosen if chosen.is_absolute() else Path(root or os.getcwd()) / chosen
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def manifest_table(manifest: dict[str, Any], *, max_ids: int = 5) -> pd.DataFrame:
    """An export manifest as ``field, value`` rows for display (long id lists cut to ``max_ids``)."""
    rows = []
    for key, value in manifest.items():
        if key == "ids" and isinstance(value, list) and len(value) > max_ids:
            value = [*value[:max_ids], f"… {len(value) - max_ids} more"]
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        rows.append({"field": key, "value": "" if value is None else str(value)})
    return pd.DataFrame(rows, columns=["field", "value"])


# --- inputs of notebooks 05 and 06 ---------------------------------------------------------------------


@dataclass
class ScoredInstances:
    """What notebooks 05 and 06 filter and select from: instances, verdicts, ICE scores, one frame.

    Attributes:
        instances: the instances.
        verdicts: the model verdict table (when given) merged over the offline judge's verdicts (the
            offline judge fills what the model left unscored or did not judge).
        ice_scores: the ICE table (one row per instance) or None.
        frame: ``selection.selection_frame`` of the three (labels 1 / 0 / NaN and ``ice_score``).
        verdicts_label: which judge, in words (``"offline judge (rules + heuristics)"`` or the model).
        model_verdicts_file, ice_scores_file: the files read (None when not given).
        description: one sentence for the page: the data, the verdicts and the ICE scores.
    """

    instances: list[Instance]
    verdicts: pd.DataFrame
    ice_scores: pd.DataFrame | None
    frame: pd.DataFrame
    verdicts_label: str
    model_verdicts_file: Path | None = None
    ice_scores_file: Path | None = None
    description: str = ""
    min_confidence: float | None = None

    @property
    def counted_verdicts(self) -> pd.DataFrame:
        """The verdicts as the filter counts them: those below ``min_confidence`` unscored
        (``selection.mask_low_confidence``); the verdicts themselves when there is no minimum."""
        from .selection import mask_low_confidence

        return mask_low_confidence(self.verdicts, self.min_confidence)


def scored_instances(
    instances: Sequence[Instance], data_description: str, *, judge_verdicts_path: str | os.PathLike[str] | None = None,
    ice_scores_path: str | os.PathLike[str] | None = None, relative: Any = None, min_confidence: float | None = None,
) -> ScoredInstances:
    """Score instances for filtering and selection: the offline judge, with a model verdict table over it.

    Args:
        instances: the instances (``nb.load_data(...).instances``).
        data_description: the data in words (``LoadedData.description``).
        judge_verdicts_path: optional verdict table from ``toolqual judge`` (notebook parameter).
        ice_scores_path: optional ICE table from ``toolqual ice`` (notebook parameter).
        relative: optional callable shortening file paths for the description (``nb.relative_path``).
        min_confidence: verdicts below this confidence (``judge --samples/--judges``) count as unscored in
            the frame (``selection.selection_frame``) and in :attr:`ScoredInstances.counted_verdicts`.

    Raises:
        ConfigError: a given path does not exist (names the parameter).
    """
    from .heuristics import offline_verdicts
    from .io import read_table
    from .selection import selection_frame
    from .tables import merge_verdicts

    model_file = optional_file(judge_verdicts_path, "judge_verdicts_path")
    ice_file = optional_file(ice_scores_path, "ice_scores_path")
    model_verdicts = read_table(model_file) if model_file else None
    verdicts = merge_verdicts(model_verdicts, offline_verdicts(instances))
    ice_scores = read_table(ice_file) if ice_file else None
    frame = selection_frame(instances, verdicts, ice_scores, min_confidence=min_confidence)
    name = relative or (lambda p: str(p))
    label = (f"{judge_label(model_verdicts)} from {name(model_file)}, the offline judge filling the rest"
             if model_file else "offline judge (rules + heuristics)")
    description = (f"{data_description[:1].upper()}{data_description[1:]}; verdicts: {label}; ICE scores: "
                   + (f"from {name(ice_file)}." if ice_file else "none (the ICE filter and recipes are unavailable)."))
    if min_confidence is not None:
        description = description[:-1] + f"; verdicts below confidence {min_confidence} count as unscored."
    return ScoredInstances(list(instances), verdicts, ice_scores, frame, label, model_file, ice_file, description,
                           min_confidence)


# --- a model judge beside the offline judge on the same instances (notebooks 01 and 02) ------------------


@dataclass
class JudgeComparison:
    """A model judge's verdicts beside the offline judge's, on the instances the model judged.

    Attributes:
        label: ``"<model> · <prompt id>"`` (:func:`judge_label`).
        merged: the model verdicts with the offline judge filling what the model left unscored or did
            not judge (``tables.merge_verdicts(model, offline)``).
        instances: the instances the model judged (in the data's order).
        model_rates, offline_rates: ``tables.error_rate_table`` of each judge on those instances.
    """

    label: str
    merged: pd.DataFrame
    instances: list[Instance]
    model_rates: pd.DataFrame
    offline_rates: pd.DataFrame

    @property
    def n_instances(self) -> int:
        return len(self.instances)


def compare_on_same_instances(
    model_verdicts: pd.DataFrame | None, offline: pd.DataFrame, instances: Sequence[Instance], *,
    by: str | None = "source", method: str = "wilson",
) -> JudgeComparison | None:
    """Error rates of a model judge and of the offline judge on exactly the instances the model judged.

    Model verdicts for instances outside ``instances`` are ignored (a verdict file may cover other data).
    Returns None when there are no model verdicts for these instances.
    """
    from .tables import merge_verdicts

    if model_verdicts is None or len(model_verdicts) == 0:
        return None
    wanted = {instance.id for instance in instances}
    model_verdicts = model_verdicts.loc[model_verdicts["instance_id"].astype(str).isin(wanted)]
    if model_verdicts.empty:
        return None
    judged = set(model_verdicts["instance_id"].astype(str))
    pool = [instance for instance in instances if instance.id in judged]
    merged = merge_verdicts(model_verdicts, offline.loc[offline["instance_id"].astype(str).isin(judged)])
    offline_part = offline.loc[offline["instance_id"].astype(str).isin(judged)]
    return JudgeComparison(
        label=judge_label(model_verdicts), merged=merged, instances=pool,
        model_rates=error_rate_table(merged, pool, by=by, method=method, include_total=True),
        offline_rates=error_rate_table(offline_part, pool, by=by, method=method, include_total=True),
    )
