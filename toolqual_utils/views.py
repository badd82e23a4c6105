"""Display tables for the report pages: finished tables re-laid out for reading, numbers formatted.

Pure module: pandas and the toolqual pure modules only (no plotting, no IPython). Each function takes
a table computed elsewhere (:mod:`toolqual_utils.tables`, :mod:`toolqual_utils.profile`,
:mod:`toolqual_utils.extrinsic`, ...) and returns a frame of display text at a stated grain — it never
computes a statistic of its own (error rates come from :func:`toolqual_utils.tables.error_rate_table`,
the one error-rate computation). Wide tables are transposed or split so that a page never needs
horizontal scrolling; long material (evidence JSON, id lists) becomes
:class:`~toolqual_utils.formatting.Details` cells that the HTML renderer collapses.

**Decided share.** A judge that only decides when it finds an error (the offline rules on solvability,
or any coarse label when a member criterion is never scored) has an error rate of 100% among what it
decided, by construction. A rate is shown only when the judge decided at least
:data:`MIN_DECIDED_SHARE` of the instances (and, for a coarse label, of every member criterion:
:func:`rate_shown`); otherwise the cell shows the lower–upper bound over all instances (every unscored
verdict holding / being an error) and how many were decided.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pandas as pd

from . import formatting as fmt
from .schema import CRITERIA
from .tables import COARSE_MEMBERS, CRITERION_LABELS, TABLE_CRITERIA
from .verdicts import Status

__all__ = [
    "MIN_DECIDED_SHARE", "rate_is_meaningful", "rate_shown", "error_rate_cell", "error_rate_matrix", "error_rate_bounds_matrix",
    "error_rates_side_by_side", "error_rate_long", "decision_table", "profile_overview", "examples_display",
    "validation_matrix", "agreement_cells", "mistakes_display", "extrinsic_display", "comparisons_display",
    "manifest_display", "kept_display", "kept_error_statement", "cost_plan_display", "decision_shares",
    "agreement_display", "ice_cuts_display",
]

#: Below this share of decided instances an error rate is not shown as a rate (see module docstring).
MIN_DECIDED_SHARE: Final = 0.5


def _criterion_name(criterion: str) -> str:
    return CRITERION_LABELS.get(criterion, str(criterion).replace("_", " "))


def rate_is_meaningful(n_scored: Any, n_instances: Any, *, min_share: float = MIN_DECIDED_SHARE) -> bool:
    """True when the judge decided at least ``min_share`` of the instances (and at least one)."""
    try:
        n_scored, n_instances = int(n_scored), int(n_instances)
    except (TypeError, ValueError):
        return False
    return n_scored > 0 and n_instances > 0 and n_scored / n_instances >= min_share


def rate_shown(table: pd.DataFrame, *, min_share: float = MIN_DECIDED_SHARE) -> pd.Series:
    """Per row of ``tables.error_rate_table``: may its error rate be shown as a rate?

    True when the judge decided at least ``min_share`` of the group's instances on that criterion and,
    for a coarse label (instruction / sequence correctness, any error), on every member criterion too:
    a coarse label is only decided "holds" when all members were decided, so when one member is mostly
    unscored the coarse label is decided almost only for instances with an error, and its rate says who
    decided, not how many instances are wrong. Rows where this is False are shown as bounds.
    """
    if table is None or table.empty:
        return pd.Series(dtype=bool)
    own = pd.Series([rate_is_meaningful(n, k, min_share=min_share) for n, k in zip(table["n"], table["n_instances"])],
                    index=table.index)
    lookup = {(str(g), c): ok for g, c, ok in zip(table["group"], table["criterion"], own)}
    shown = []
    for index, group, criterion in zip(table.index, table["group"].astype(str), table["criterion"]):
        members = COARSE_MEMBERS.get(criterion, ())
        shown.append(bool(own[index]) and all(lookup.get((group, m), False) for m in members))
    return pd.Series(shown, index=table.index, dtype=bool)


def error_rate_cell(row: Mapping[str, Any], *, min_share: float = MIN_DECIDED_SHARE, shown: bool | None = None) -> str:
    """One Table-5 cell for reading, from a row of ``tables.error_rate_table``.

    ``shown`` is the verdict of :func:`rate_shown` for the row (default: the decided share alone).
    ``"31% (29–34)\\n1,248 scored"`` when the judge decided enough of the group (the rate, its interval
    and the number scored; ``, 432 unscored`` appended when some were not); otherwise
    ``"bound 5.6–93%\\n212 of 1,680 decided"`` (lower bound = every unscored verdict holds, upper = every
    one is an error); ``"–\\nnothing decided"`` when the judge decided none.
    """
    n, n_all, n_err, n_uns = (int(row.get(k) or 0) for k in ("n", "n_instances", "n_errors", "n_unscored"))
    if n == 0:
        return f"{fmt.MISSING}\nnothing decided" if n_all else fmt.MISSING
    if rate_is_meaningful(n, n_all, min_share=min_share) if shown is None else shown:
        text = fmt.interval(row.get("error_rate"), row.get("ci_low"), row.get("ci_high"))
        return text + f"\n{fmt.count(n)} scored" + (f", {fmt.count(n_uns)} unscored" if n_uns else "")
    low, high = n_err / n_all, (n_err + n_uns) / n_all
    return f"bound {fmt.percent_range(low, high)}\n{fmt.count(n)} of {fmt.count(n_all)} decided"


def _groups_in_order(table: pd.DataFrame) -> list[str]:
    groups = list(pd.unique(table["group"].astype(str)))
    return (["all"] if "all" in groups else []) + [g for g in groups if g != "all"]


def error_rate_matrix(table: pd.DataFrame, *, min_share: float = MIN_DECIDED_SHARE,
                      criteria: Sequence[str] = TABLE_CRITERIA) -> pd.DataFrame:
    """Table 5 for reading: one row per criterion (Table 5 order), one column per group (``all`` first).

    Args:
        table: ``tables.error_rate_table`` output (long).

    Returns:
        Index ``criterion`` (human names), a first row ``instances`` with each group's size, then cells of
        :func:`error_rate_cell`. Transposed against the paper's layout so that many sources never make
        the table wider than the page.
    """
    if table is None or table.empty:
        return pd.DataFrame(columns=["criterion"]).set_index("criterion")
    groups = _groups_in_order(table)
    shown = rate_shown(table, min_share=min_share)
    cells = {(str(r["group"]), r["criterion"]): error_rate_cell(r, min_share=min_share, shown=ok)
             for r, ok in zip(table.to_dict("records"), shown)}
    firsts = table.drop_duplicates("group")
    sizes = dict(zip(firsts["group"].astype(str), firsts["n_instances"]))
    rows = {"instances": {g: fmt.count(sizes.get(g)) for g in groups}}
    for criterion in criteria:
        if any((g, criterion) in cells for g in groups):
            rows[_criterion_name(criterion)] = {g: cells.get((g, criterion), fmt.MISSING) for g in groups}
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=groups)
    frame.index.name = "criterion"
    return frame


def error_rate_bounds_matrix(table: pd.DataFrame, *, criteria: Sequence[str] = TABLE_CRITERIA) -> pd.DataFrame:
    """What the unscored verdicts could hide, per criterion (rows) and group (columns): ``"5.6–93%"``, the
    share of all instances with an error if every unscored verdict held (lower) or were an error (upper)."""
    if table is None or table.empty:
        return pd.DataFrame(columns=["criterion"]).set_index("criterion")
    groups = _groups_in_order(table)
    rows: dict[str, dict[str, str]] = {}
    for record in table.to_dict("records"):
        n_all = int(record["n_instances"] or 0)
        if n_all:
            low = record["n_errors"] / n_all
            high = (record["n_errors"] + record["n_unscored"]) / n_all
            text = fmt.percent_range(low, high)
        else:
            text = fmt.MISSING
        rows.setdefault(_criterion_name(record["criterion"]), {})[str(record["group"])] = text
    order = [_criterion_name(c) for c in criteria if _criterion_name(c) in rows]
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(index=order, columns=groups).fillna(fmt.MISSING)
    frame.index.name = "criterion"
    return frame


def error_rates_side_by_side(
    rates: Mapping[str, pd.DataFrame], *, group: str = "all", paper_table5: pd.DataFrame | None = None,
    min_share: float = MIN_DECIDED_SHARE, criteria: Sequence[str] = TABLE_CRITERIA,
) -> pd.DataFrame:
    """Several judges' Table 5 cells for one group, side by side: one row per criterion, one column per
    judge (cells of :func:`error_rate_cell`), then the paper's Table 5 columns (reference only).

    Args:
        rates: column title -> ``tables.error_rate_table`` output of that judge (on the same instances).
        group: the group to show (default the pooled ``all``).
        paper_table5: ``extrinsic.read_reference_table(5)``; one column per paper dataset,
            ``"74%"`` (no interval: the paper gives none).
    """
    columns: dict[str, dict[str, str]] = {}
    for title, table in rates.items():
        part = table.loc[table["group"].astype(str) == group]
        shown = rate_shown(part, min_share=min_share)
        columns[title] = {_criterion_name(r["criterion"]): error_rate_cell(r, min_share=min_share, shown=ok)
                          for r, ok in zip(part.to_dict("records"), shown)}
    if paper_table5 is not None and len(paper_table5):
        for dataset, part in paper_table5.groupby("group", sort=False):
            n = part["n_instances"].iloc[0] if "n_instances" in part else None
            title = f"paper: {dataset}" + (f" ({fmt.count(n)}, ChatGPT)" if n is not None else "")
            columns[title] = {_criterion_name(c): fmt.percent(v) for c, v in zip(part["criterion"], part["error_rate"])}
    order = [_criterion_name(c) for c in criteria]
    frame = pd.DataFrame(columns).reindex(index=order).fillna(fmt.MISSING)
    frame.index.name = "criterion"
    return frame


def error_rate_long(table: pd.DataFrame) -> pd.DataFrame:
    """Every number of ``tables.error_rate_table`` for reading: one row per group x criterion with the
    counts, the rate and its interval as percentages (for the collapsed "all numbers" table)."""
    if table is None or table.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "group": table["group"], "criterion": table["criterion_label"], "instances": table["n_instances"],
        "scored": table["n"], "errors": table["n_errors"], "unscored": table["n_unscored"],
        "error rate (interval)": [fmt.interval(r, lo, hi) for r, lo, hi in
                                  zip(table["error_rate"], table["ci_low"], table["ci_high"])],
        "interval": table["ci_method"],
    })


def decision_table(verdicts: pd.DataFrame, *, criteria: Sequence[str] = CRITERIA) -> pd.DataFrame:
    """Who decided what, per criterion: one row per criterion with the deciding judges and counts.

    Returns:
        ``criterion, decided by`` (judges with their scored counts, e.g. ``"rules 40"``), ``error``,
        ``holds``, ``unscored`` (all unscored verdicts, the visible third category) and ``why unscored``
        (the reasons with their counts, e.g. ``"needs_model 1,216 · not_applicable 252"``).
    """
    columns = ["criterion", "decided by", "error", "holds", "unscored", "why unscored"]
    if verdicts is None or len(verdicts) == 0:
        return pd.DataFrame(columns=columns)
    status = verdicts["status"].astype(str) if "status" in verdicts.columns else pd.Series(Status.OK, index=verdicts.index)
    label = pd.to_numeric(verdicts["label"].astype(object), errors="coerce")
    scored = status.eq(Status.OK) & label.notna()
    judges = verdicts["judge"].astype(str) if "judge" in verdicts.columns else pd.Series("", index=verdicts.index)
    rows = []
    for criterion in criteria:
        mask = verdicts["criterion"].astype(str).eq(criterion)
        if not mask.any():
            continue
        decided = judges[mask & scored].value_counts()
        reasons = status[mask & ~scored].map(lambda s: Status.reason(s) if Status.is_unscored(s) else "no label")
        reason_counts = reasons.value_counts()
        rows.append({
            "criterion": _criterion_name(criterion),
            "decided by": " · ".join(f"{j} {fmt.count(n)}" for j, n in decided.items()) or "nobody",
            "error": int((mask & scored & label.eq(0)).sum()),
            "holds": int((mask & scored & label.eq(1)).sum()),
            "unscored": int((mask & ~scored).sum()),
            "why unscored": " · ".join(f"{r} {fmt.count(n)}" for r, n in reason_counts.items()) or fmt.MISSING,
        })
    return pd.DataFrame(rows, columns=columns)


#: Human names of ``profile.source_summary`` columns (rows of :func:`profile_overview`).
_PROFILE_ROWS: Final = {
    "n_instances": "instances", "n_subsets": "subsets", "n_with_gold_calls": "with gold calls",
    "n_no_call": "gold answer: call nothing", "n_calls": "API calls (gold)", "mean_calls": "calls per instance (mean)",
    "n_parse_failures": "argument parse failures", "n_unknown_calls": "calls to tools not offered",
    "n_pseudo_calls": "pseudo-calls set aside", "median_instruction_chars": "instruction length (median chars)",
}


def profile_overview(source_summary: pd.DataFrame) -> pd.DataFrame:
    """``profile.source_summary`` transposed for reading: one row per measure, one column per source and a
    final ``all`` column (sums; the mean and median over all instances are left as ``–``)."""
    if source_summary is None or source_summary.empty:
        return pd.DataFrame(columns=["measure"]).set_index("measure")
    frame = source_summary.set_index("source")
    total = {c: frame[c].sum() for c in frame.columns if c.startswith("n_") and c != "n_subsets"}
    shown = pd.DataFrame({str(source): [fmt.number(frame.at[source, c]) for c in _PROFILE_ROWS if c in frame.columns]
                          for source in frame.index},
                         index=[name for c, name in _PROFILE_ROWS.items() if c in frame.columns])
    shown["all"] = [fmt.number(total[c]) if c in total else fmt.MISSING for c in _PROFILE_ROWS if c in frame.columns]
    shown.index.name = "measure"
    return shown


def examples_display(examples: pd.DataFrame, *, instruction_chars: int = 300) -> pd.DataFrame:
    """``judge.summary.example_verdicts`` for reading: evidence as readable text (check, call, argument,
    value, expected) with the JSON behind a disclosure; judge and prompt id in one column."""
    columns = ["instance", "criterion", "decided by", "instruction", "rationale", "evidence"]
    if examples is None or examples.empty:
        return pd.DataFrame(columns=columns)
    instruction = examples["instruction"].fillna("").astype(str)
    return pd.DataFrame({
        "instance": examples["instance_id"],
        "criterion": examples["criterion"].map(_criterion_name),
        "decided by": [f"{j} ({p})" if p else str(j) for j, p in zip(examples["judge"], examples["prompt_id"])],
        "instruction": [t if len(t) <= instruction_chars else t[: instruction_chars - 1] + "…" for t in instruction],
        "rationale": examples["rationale"].fillna(""),
        "evidence": [fmt.evidence_cell(e, skip_text=str(r)) for e, r in
                     zip(examples["evidence"], examples["rationale"].fillna(""))],
    }, columns=columns)


def validation_matrix(table: pd.DataFrame, *, metric: str = "f1", criteria: Sequence[str] = TABLE_CRITERIA,
                      digits: int = 2) -> pd.DataFrame:
    """One metric of ``tables.validation_table(..., by="source")`` as a matrix: one row per source (with its
    number of annotated instances), one column per criterion; ``–`` where the metric is undefined (no
    error in the reference labels and none flagged)."""
    if table is None or table.empty:
        return pd.DataFrame(columns=["source"]).set_index("source")
    values = table.pivot_table(index="group", columns="criterion", values=metric, aggfunc="first", dropna=False)
    present = [c for c in criteria if c in values.columns]
    shown = pd.DataFrame(index=values.index)
    shown["annotated"] = table.groupby("group")["n_annotated"].max().map(fmt.count)
    for criterion in present:
        shown[_criterion_name(criterion)] = [fmt.number(v, digits=digits) for v in values[criterion]]
    shown.index.name = "source"
    return shown


def agreement_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """``tables.disagreement_view(grain="cell")`` for reading: the instance ids behind each cell collapsed
    (``"12 ids"``, the list on demand), criteria by name, and a side without verdicts left out instead of
    repeating "no verdicts" on every row."""
    if cells is None or cells.empty:
        return pd.DataFrame(columns=["criterion", "reference", "n", "instances"])
    frame = cells.copy()
    for side in ("rules", "model"):
        if side in frame.columns and frame[side].astype(str).eq("no verdicts").all():
            frame = frame.drop(columns=[side, f"{side}_outcome"], errors="ignore")
    frame["criterion"] = frame["criterion"].map(_criterion_name)
    frame["instances"] = [fmt.collapsed_list(ids, noun="id") for ids in frame.pop("instance_ids")]
    renamed = {"rules": "offline judge", "model": "model judge", "rules_outcome": "offline outcome",
               "model_outcome": "model outcome"}
    return frame.rename(columns=renamed)


def mistakes_display(mistakes: pd.DataFrame) -> pd.DataFrame:
    """``analysis.judge_mistakes`` with readable headers (criterion by name; FP/FN spelled out)."""
    if mistakes is None or mistakes.empty:
        return pd.DataFrame(columns=["instance", "criterion", "outcome", "decided by", "judge's rationale",
                                     "annotators' note"])
    outcome = {"FP": "FP: false alarm", "FN": "FN: missed error"}
    return pd.DataFrame({
        "instance": mistakes["instance_id"], "criterion": mistakes["criterion"].map(_criterion_name),
        "outcome": mistakes["outcome"].map(lambda o: outcome.get(o, o)), "decided by": mistakes["decided_by"],
        "judge's rationale": mistakes["judge_rationale"], "annotators' note": mistakes["annotators_note"],
    })


def extrinsic_display(table: pd.DataFrame, *, label_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``extrinsic.extrinsic_table`` for reading: one row per benchmark x fine-tune set with the pass rate
    and its interval as ``"52% (47–56)"``, the number of test items and where the interval comes from."""
    columns = ["benchmark", "fine-tune set", "origin", "pass rate (95% interval)", "test items", "interval"]
    if table is None or table.empty:
        return pd.DataFrame(columns=columns)
    names = dict(label_names or {})
    return pd.DataFrame({
        "benchmark": table["benchmark"],
        "fine-tune set": table["fine_tune_set"].map(lambda s: names.get(s, s)),
        "origin": table["origin"],
        "pass rate (95% interval)": [fmt.interval(r, lo, hi) for r, lo, hi in
                                     zip(table["pass_rate"], table["ci_low"], table["ci_high"])],
        "test items": table["n"].map(fmt.count),
        "interval": table["ci_method"],
    }, columns=columns)


def comparisons_display(comparisons: pd.DataFrame, *, label_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``extrinsic.compare_to_baselines`` for reading: the difference in percentage points with its
    interval, the p-value, and the discordant pairs for paired runs. The test's name (the same on every
    row) is left to the caption; notes are kept."""
    columns = ["benchmark", "fine-tune set", "vs", "pass rates", "difference (95% interval)", "p", "items"]
    if comparisons is None or comparisons.empty:
        return pd.DataFrame(columns=columns)
    names = dict(label_names or {})
    frame = pd.DataFrame({
        "benchmark": comparisons["benchmark"],
        "fine-tune set": comparisons["model"].map(lambda s: names.get(s, s)),
        "vs": comparisons["baseline"].map(lambda s: names.get(s, s)),
        "pass rates": [f"{fmt.percent(a)} vs {fmt.percent(b)}" for a, b in
                       zip(comparisons["pass_rate"], comparisons["baseline_pass_rate"])],
        "difference (95% interval)": [
            fmt.points(d) + ("" if pd.isna(lo) or pd.isna(hi) else f" ({fmt.points(lo)} to {fmt.points(hi)})")
            for d, lo, hi in zip(comparisons["diff"], comparisons["ci_low"], comparisons["ci_high"])],
        "p": comparisons["pvalue"].map(fmt.pvalue),
        "items": comparisons["n_shared"].map(fmt.count),
    }, columns=columns)
    if comparisons["model_only"].notna().any():
        frame["only this / only baseline passed"] = [
            fmt.MISSING if pd.isna(a) else f"{fmt.count(a)} / {fmt.count(b)}"
            for a, b in zip(comparisons["model_only"], comparisons["baseline_only"])]
    notes = comparisons["note"].fillna("").astype(str)
    if notes.str.strip().ne("").any():
        frame["note"] = notes.where(notes.str.strip() != "", fmt.MISSING)
    return frame


def manifest_display(manifest: Mapping[str, Any], *, shown_ids: int = 3) -> pd.DataFrame:
    """An export manifest as ``field, value`` rows: counts with separators, long lists and mappings (ids,
    source files with checksums, thresholds) collapsed behind a disclosure."""
    import json

    rows = []
    for key, value in manifest.items():
        if key == "ids" and isinstance(value, list):
            cell: Any = fmt.collapsed_list(value, noun="id", shown=shown_ids)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False, default=str)
            if len(text) > 80:
                label = f"{fmt.count(len(value))} entr{'y' if len(value) == 1 else 'ies'}"
                cell = fmt.Details(label, json.dumps(value, ensure_ascii=False, indent=1, default=str), label="JSON")
            else:
                cell = text
        elif isinstance(value, bool):
            cell = "yes" if value else "no"
        elif isinstance(value, (int, float)) and not fmt.is_missing(value):
            cell = fmt.number(value)
        else:
            cell = fmt.MISSING if value is None or value == "" else str(value)
        rows.append({"field": key, "value": cell})
    return pd.DataFrame(rows, columns=["field", "value"])


def kept_display(kept_table: pd.DataFrame) -> pd.DataFrame:
    """``analysis.kept_table`` with criterion labels as words — ``holds`` / ``error`` / ``unscored`` — so an
    unscored criterion is a visible (grey) category, never a blank cell; ICE scores with two decimals."""
    frame = kept_table.copy()
    for column in (*CRITERIA, "overall_ok"):
        if column in frame.columns:
            frame[column] = frame[column].map(fmt.label_word)
    if "ice_score" in frame.columns:
        frame["ice_score"] = frame["ice_score"].map(lambda v: fmt.number(v, digits=2))
    return frame.rename(columns={c: _criterion_name(c) for c in (*CRITERIA, "overall_ok") if c in frame.columns})


def kept_error_statement(rates: pd.DataFrame) -> str | None:
    """A sentence instead of a chart when every error rate among the kept instances is zero by construction.

    Args:
        rates: ``tables.error_rate_table`` over the kept instances' verdicts.

    Returns:
        ``"None of the 816 kept instances has a scored error on any criterion: ..."`` when no cell has an
        error (a chart would show only whiskers), with how many of their verdicts are unscored; None when
        some kept instance has an error (then the chart is worth drawing).
    """
    if rates is None or rates.empty:
        return None
    if int(rates["n_errors"].sum()) > 0:
        return None
    pooled = rates.loc[rates["group"].astype(str) == "all"] if (rates["group"].astype(str) == "all").any() else rates
    criteria = pooled.loc[pooled["criterion"].isin(CRITERIA)]
    n_instances = int(criteria.groupby("group")["n_instances"].max().sum())
    scored, unscored = int(criteria["n"].sum()), int(criteria["n_unscored"].sum())
    total = scored + unscored
    return (f"None of the {fmt.count(n_instances)} kept instances has a scored error on any criterion — zero by "
            f"construction of this filter, so there is no error-rate chart. Of their {fmt.count(total)} criterion "
            f"verdicts, {fmt.share(scored, total)} were scored (all hold) and {fmt.count(unscored)} are unscored: "
            "those are where errors can still hide.")


def cost_plan_display(plan: pd.DataFrame) -> pd.DataFrame:
    """``ice.views.cost_plan_table`` with readable headers and the cost in dollars."""
    if plan is None or plan.empty:
        return plan
    names = {"n_instances": "instances", "n_with_gold_calls": "with gold calls", "n_requests": "requests",
             "est_prompt_tokens": "prompt tokens (est.)", "est_completion_tokens": "answer tokens (est.)",
             "est_cost_usd": "cost (est.)"}
    frame = plan.rename(columns=names)
    if "cost (est.)" in frame.columns:
        frame["cost (est.)"] = frame["cost (est.)"].map(fmt.usd)
    return frame


def decision_shares(verdicts_by_judge: Mapping[str, pd.DataFrame], *, criteria: Sequence[str] = CRITERIA) -> pd.DataFrame:
    """What each judge decided, per criterion, as shares of its verdicts: the data of the decision chart.

    Args:
        verdicts_by_judge: title -> verdict table (e.g. the offline judge on all instances, the model judge
            merged with it on the instances it judged).

    Returns:
        One row per judge x criterion x outcome (``error``, ``holds``, ``unscored``): ``judge, criterion,
        criterion_label, outcome, n, n_total, share`` (share of the judge's verdicts on that criterion).
    """
    rows = []
    for title, table in verdicts_by_judge.items():
        counts = decision_table(table, criteria=criteria)
        for record in counts.to_dict("records"):
            total = record["error"] + record["holds"] + record["unscored"]
            key = next((c for c in criteria if _criterion_name(c) == record["criterion"]), record["criterion"])
            for outcome in ("error", "holds", "unscored"):
                rows.append({"judge": title, "criterion": key, "criterion_label": record["criterion"],
                             "outcome": outcome, "n": int(record[outcome]), "n_total": int(total),
                             "share": record[outcome] / total if total else float("nan")})
    return pd.DataFrame(rows, columns=["judge", "criterion", "criterion_label", "outcome", "n", "n_total", "share"])


def agreement_display(agreement: pd.DataFrame) -> pd.DataFrame:
    """``annotations.annotator_agreement`` for reading: one row per criterion (and pair, when several),
    raw agreement as a percentage, kappa and PABAK with two decimals (``undefined`` when kappa is), the
    error counts of each annotator, and the disagreeing instances collapsed."""
    columns = ["criterion", "both labelled", "raw agreement", "kappa", "PABAK", "errors (a)", "errors (b)",
               "disagreeing instances"]
    if agreement is None or agreement.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({
        "criterion": agreement["criterion_label"],
        "both labelled": agreement["n"].map(fmt.count),
        "raw agreement": agreement["raw_agreement"].map(fmt.percent),
        "kappa": agreement["kappa"].map(lambda v: "undefined" if fmt.is_missing(v) else fmt.number(v, digits=2)),
        "PABAK": agreement["pabak"].map(lambda v: "undefined" if fmt.is_missing(v) else fmt.number(v, digits=2)),
        "errors (a)": agreement["n_errors_a"].map(fmt.count),
        "errors (b)": agreement["n_errors_b"].map(fmt.count),
        "disagreeing instances": [fmt.collapsed_list(ids, noun="id", shown=1) if len(ids) else "none"
                                  for ids in agreement["disagreeing_ids"]],
    }, columns=columns)
    pairs = agreement[["annotator_a", "annotator_b"]].drop_duplicates()
    if len(pairs) > 1:
        frame.insert(0, "pair", [f"{a} vs {b}" for a, b in zip(agreement["annotator_a"], agreement["annotator_b"])])
    return frame


def ice_cuts_display(cuts: Mapping[str, Any] | None) -> pd.DataFrame:
    """``ice.distributions.k_thresholds`` as one readable row: K, scored instances, the two cuts."""
    columns = ["K", "scored instances", "high-ICE subset: score at least", "low-ICE subset: score at most"]
    if not cuts:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame([{
        "K": fmt.count(cuts.get("k")), "scored instances": fmt.count(cuts.get("n_instances")),
        "high-ICE subset: score at least": fmt.number(cuts.get("high_threshold"), digits=2),
        "low-ICE subset: score at most": fmt.number(cuts.get("low_threshold"), digits=2),
    }], columns=columns)
