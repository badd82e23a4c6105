"""The three-line answer each report page opens with (and ``index.html`` repeats beside its link).

Pure module: pandas and the toolqual pure modules only. One builder per page takes tables computed
elsewhere (never recomputing a statistic: error rates come from
:func:`toolqual_utils.tables.error_rate_table`, validation metrics from
:func:`toolqual_utils.tables.validation_table`, ...) and returns a :class:`Summary`: the page's question,
up to three lines answering it in formatted numbers, the data and judge that produced them, and the
same numbers machine-readable. Notebooks display it with ``nb.summary(summary)``.

Wording rules: a rate is quoted as a rate only where the judge decided enough instances
(:func:`toolqual_utils.views.rate_is_meaningful`), otherwise as the lower–upper bound; model verdicts
are always named by model and prompt id and called one model's verdicts, never labels; the paper's
numbers are always marked as the paper's (different data and judge).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from . import formatting as fmt
from .schema import CRITERIA
from .tables import CRITERION_LABELS
from .views import rate_is_meaningful, rate_shown

__all__ = [
    "Summary", "profile_summary", "scoring_summary", "error_rate_summary", "validation_summary", "ice_summary",
    "filter_summary", "filter_words", "selection_summary", "rate_phrase",
]


@dataclass
class Summary:
    """A page's answer: ``question``, up to three ``lines``, the ``source`` (data and judge), ``numbers``."""

    question: str
    lines: list[str]
    source: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def _name(criterion: str) -> str:
    return CRITERION_LABELS.get(criterion, str(criterion).replace("_", " "))


def _cell(rates: pd.DataFrame, criterion: str, group: str = "all") -> dict[str, Any] | None:
    """The row of one group and criterion, with ``shown`` (:func:`toolqual_utils.views.rate_shown`)."""
    mask = (rates["group"].astype(str) == group) & (rates["criterion"] == criterion)
    if not mask.any():
        return None
    shown = rate_shown(rates.loc[rates["group"].astype(str) == group])
    row = rates.loc[mask].iloc[0].to_dict()
    row["shown"] = bool(shown.loc[rates.loc[mask].index[0]])
    return row


def _shown(row: Mapping[str, Any]) -> bool:
    return bool(row.get("shown", rate_is_meaningful(row.get("n"), row.get("n_instances"))))


def rate_phrase(row: Mapping[str, Any] | None) -> str:
    """``"31% (29–34)"`` when the rate may be shown (``row["shown"]``, see
    :func:`toolqual_utils.views.rate_shown`), ``"between 36% and 100% (612 of 1,680 decided)"`` otherwise,
    ``"not decided"`` when nothing was scored."""
    if row is None or not int(row.get("n") or 0):
        return "not decided"
    if _shown(row):
        return fmt.interval(row["error_rate"], row["ci_low"], row["ci_high"])
    n_all = int(row["n_instances"])
    low, high = row["n_errors"] / n_all, (row["n_errors"] + row["n_unscored"]) / n_all
    return (f"between {fmt.percent(low)} and {fmt.percent(high)} "
            f"({fmt.count(row['n'])} of {fmt.count(n_all)} decided)")


def _rate_number(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {}
    n_all = int(row.get("n_instances") or 0)
    out = {"n": int(row.get("n") or 0), "n_errors": int(row.get("n_errors") or 0), "n_instances": n_all}
    if _shown(row):
        out.update(error_rate=row.get("error_rate"), ci_low=row.get("ci_low"), ci_high=row.get("ci_high"))
    elif n_all:
        out.update(lower=out["n_errors"] / n_all, upper=(out["n_errors"] + int(row.get("n_unscored") or 0)) / n_all)
    return out


# --- 00 load and profile ----------------------------------------------------------------------------


def profile_summary(source_summary: pd.DataFrame, *, n_files: int, data: str, n_rejected: int = 0) -> Summary:
    """Page 00: how many instances, from where, with gold calls, and how many could not be read.

    Args:
        source_summary: ``profile.source_summary``.
        n_files: files read.
        data: which data (``LoadedData.description``).
        n_rejected: records the loaders rejected.
    """
    table = source_summary
    n = int(table["n_instances"].sum()) if len(table) else 0
    sources = table.sort_values("n_instances", ascending=False)
    biggest = ", ".join(f"{s} {fmt.count(k)}" for s, k in zip(sources["source"][:3], sources["n_instances"][:3]))
    n_gold = int(table["n_with_gold_calls"].sum()) if len(table) else 0
    n_calls = int(table["n_calls"].sum()) if len(table) else 0
    n_no_call = int(table["n_no_call"].sum()) if len(table) else 0
    n_failures = int(table["n_parse_failures"].sum()) if len(table) else 0
    n_pseudo = int(table["n_pseudo_calls"].sum()) if len(table) else 0
    mean_calls = n_calls / max(n_gold - n_no_call, 1)
    lines = [
        f"{fmt.count(n)} instances from {fmt.count(n_files)} file{'s' if n_files != 1 else ''} and "
        f"{fmt.count(len(table))} source{'s' if len(table) != 1 else ''}" + (f"; largest: {biggest}." if biggest else "."),
        f"{fmt.share(n_gold, n)} carry gold calls ({fmt.count(n_calls)} API calls, {fmt.number(mean_calls, digits=1)} "
        f"per instance that calls); {fmt.count(n_no_call)} answer by calling nothing; {fmt.count(n - n_gold)} have no "
        "gold calls (queries only: their call sequence cannot be judged).",
        f"{fmt.count(n_failures)} call{'s' if n_failures != 1 else ''} with arguments that are not a JSON object "
        f"({fmt.percent(n_failures / n_calls) if n_calls else fmt.MISSING} of calls); {fmt.count(n_pseudo)} agent "
        f"pseudo-calls set aside; {fmt.count(n_rejected)} record{'s' if n_rejected != 1 else ''} rejected by the loaders.",
    ]
    numbers = {"n_instances": n, "n_files": n_files, "n_sources": int(len(table)), "n_with_gold_calls": n_gold,
               "n_calls": n_calls, "n_parse_failures": n_failures, "n_rejected": n_rejected}
    return Summary("What is in the data, before anything is scored?", lines,
                   f"Data: {data}. No judge on this page: it only counts.", numbers)


# --- 01 criterion scoring ---------------------------------------------------------------------------


def _top_errors(rates: pd.DataFrame, k: int = 3) -> str:
    part = rates.loc[(rates["group"].astype(str) == "all") & rates["criterion"].isin(CRITERIA)]
    part = part.loc[part["n_errors"] > 0].sort_values("n_errors", ascending=False)
    return ", ".join(f"{_name(c)} {fmt.count(e)}" for c, e in zip(part["criterion"][:k], part["n_errors"][:k]))


def scoring_summary(
    offline_rates: pd.DataFrame, *, data: str, model_rates: pd.DataFrame | None = None,
    offline_on_model_instances: pd.DataFrame | None = None, model_label: str = "", model_source: str = "",
) -> Summary:
    """Page 01: how many instances each judge finds in error, and what the offline judge leaves open.

    Args:
        offline_rates: ``tables.error_rate_table(offline, instances, by="source", include_total=True)``.
        data: which data.
        model_rates: the same table for the model judge's verdicts (merged with the offline ones) on the
            instances it judged; None when there is no model judge.
        offline_on_model_instances: the offline judge's table on those same instances.
        model_label: ``"<model> · <prompt id>"``.
        model_source: where the model verdicts come from (e.g. "bundled real-model run: one model's
            recorded answers to the v1 prompts").
    """
    overall = _cell(offline_rates, "overall_ok") or {}
    n_all = int(overall.get("n_instances") or 0)
    n_err = int(overall.get("n_errors") or 0)
    top = _top_errors(offline_rates)
    lines = [f"Offline judge (rules + heuristics, no model): {fmt.share(n_err, n_all)} instances have at least "
             f"one known error" + (f"; most flagged: {top}." if top else ".")]
    open_parts = []
    for criterion in CRITERIA:
        row = _cell(offline_rates, criterion)
        if row and row["n_instances"] and not _shown(row):
            open_parts.append(f"{_name(criterion)} {fmt.percent(row['n'] / row['n_instances'])}")
    lines.append(
        f"It leaves {fmt.count(n_all - int(overall.get('n') or 0))} instances with no known error but an unscored "
        "criterion" + (f"; it decides only {', '.join(open_parts)} of instances — those are the model judge's work."
                       if open_parts else "."))
    numbers: dict[str, Any] = {"n_instances": n_all, "offline_any_error": n_err}
    judge_text = "Judges: offline (rules.v1 + heuristics.v2) on every instance"
    if model_rates is not None and len(model_rates):
        model = _cell(model_rates, "overall_ok") or {}
        n_model = int(model.get("n_instances") or 0)
        line = (f"{model_label} ({model_source or 'model verdicts'}; not labels) on {fmt.count(n_model)} instances: "
                f"{fmt.share(int(model.get('n_errors') or 0), n_model)} with an error")
        if offline_on_model_instances is not None and len(offline_on_model_instances):
            off = _cell(offline_on_model_instances, "overall_ok") or {}
            line += f", where the offline judge finds {fmt.count(int(off.get('n_errors') or 0))}"
        lines.append(line + ".")
        numbers.update(model=model_label, model_instances=n_model, model_any_error=int(model.get("n_errors") or 0))
        judge_text += f"; {model_label} on {fmt.count(n_model)} of them"
    return Summary("Which instances break which criterion?", lines[:3], f"Data: {data}. {judge_text}.", numbers)


# --- 02 error-rate tables ---------------------------------------------------------------------------


def error_rate_summary(
    rates: pd.DataFrame, *, data: str, judge: str = "offline judge (rules + heuristics)",
    model_rates: pd.DataFrame | None = None, model_label: str = "", paper_table5: pd.DataFrame | None = None,
) -> Summary:
    """Page 02: the Table 5 answer in three lines (decided rates, bounds where undecided, model and paper).

    Args:
        rates: ``tables.error_rate_table(..., include_total=True)`` of the page's main judge.
        model_rates: the model judge's table on the instances it judged (or None).
        paper_table5: ``extrinsic.read_reference_table(5)`` (or None).
    """
    decided, bounded = [], []
    for criterion in ("specificity", "coherence", "solvability", "parameter_alignment", "sufficiency", "minimality",
                      "overall_ok"):
        row = _cell(rates, criterion)
        if row is None or not int(row.get("n") or 0):
            continue
        if _shown(row):
            decided.append(f"{_name(criterion)} {rate_phrase(row)}")
        else:
            low = row["n_errors"] / row["n_instances"]
            high = (row["n_errors"] + row["n_unscored"]) / row["n_instances"]
            bounded.append(f"{_name(criterion).replace(' (any error)', '')} {fmt.percent_range(low, high)}")
    n_all = int((_cell(rates, "overall_ok") or {}).get("n_instances") or 0)
    lines = []
    if decided:
        lines.append(f"Share of the {fmt.count(n_all)} instances with an error, where the {judge} decided most of "
                     f"them: {'; '.join(decided)}.")
    if bounded:
        lines.append(f"Where it decided few, only bounds are known: {'; '.join(bounded[:4])}"
                     + ("; …" if len(bounded) > 4 else "."))
    numbers: dict[str, Any] = {"n_instances": n_all, "judge": judge,
                               "rates": {c: _rate_number(_cell(rates, c)) for c in ("overall_ok", *CRITERIA)}}
    third = []
    if model_rates is not None and len(model_rates):
        row = _cell(model_rates, "overall_ok")
        n_model = int((row or {}).get("n_instances") or 0)
        third.append(f"model judge {model_label} on {fmt.count(n_model)} instances: any error {rate_phrase(row)}")
        numbers["model"] = {"judge": model_label, "any_error": _rate_number(row)}
    if paper_table5 is not None and len(paper_table5):
        any_rows = paper_table5.loc[paper_table5["criterion"] == "overall_ok"]
        paper = ", ".join(f"{g} {fmt.percent(v)}" for g, v in zip(any_rows["group"], any_rows["error_rate"]))
        if paper:
            third.append(f"the paper's Table 5 (ChatGPT judge, full training sets): any error {paper}")
    if third:
        lines.append("; ".join(third)[0].upper() + "; ".join(third)[1:] + ".")
    source = f"Data: {data}. Judge: {judge}" + (f"; model judge {model_label}" if model_label else "") + "."
    return Summary("How many instances have an error, per criterion (the paper's Table 5)?", lines[:3], source,
                   numbers)


# --- 03 judge validation ----------------------------------------------------------------------------


def _metric(validation: pd.DataFrame, criterion: str, metric: str) -> float | None:
    part = validation.loc[(validation["criterion"] == criterion) & (validation["group"].astype(str) == "all")]
    if part.empty:
        part = validation.loc[validation["criterion"] == criterion]
    if part.empty or pd.isna(part.iloc[0][metric]):
        return None
    return float(part.iloc[0][metric])


def validation_summary(
    validation: pd.DataFrame, *, judge: str, reference: str, n_instances: int, by_source: pd.DataFrame | None = None,
    offline_validation: pd.DataFrame | None = None, reference_detail: str = "",
) -> Summary:
    """Page 03: how often the judge is right (error = positive class), per criterion and per source.

    Args:
        validation: ``tables.validation_table`` of the main judge (pooled).
        judge: its label.
        reference: whose labels are the truth (e.g. "the adjudicated labels").
        reference_detail: where they come from (files, splits), for the source line.
        n_instances: annotated instances.
        by_source: ``tables.validation_table(..., by="source")`` of the main judge.
        offline_validation: the offline judge's pooled table (for a comparison line).
    """
    f1 = _metric(validation, "overall_ok", "f1")
    precision = _metric(validation, "overall_ok", "precision")
    recall = _metric(validation, "overall_ok", "recall")
    lines = [f"{judge} against {reference} on {fmt.count(n_instances)} annotated instances: \"has any error\" "
             f"F1 {fmt.number(f1, digits=2)} (precision {fmt.percent(precision)}, recall {fmt.percent(recall)})."]
    per = []
    for criterion in CRITERIA:
        value = _metric(validation, criterion, "f1")
        if value is not None:
            per.append((value, criterion))
    if per:
        best, worst = max(per), min(per)
        support = validation.loc[(validation["criterion"] == worst[1])]["support"]
        n_support = int(support.iloc[0]) if len(support) else 0
        lines.append(f"Per criterion F1 from {fmt.number(worst[0], digits=2)} ({_name(worst[1])}, "
                     f"{fmt.count(n_support)} errors in the reference) to {fmt.number(best[0], digits=2)} "
                     f"({_name(best[1])}).")
    third = ""
    if by_source is not None and len(by_source):
        part = by_source.loc[(by_source["criterion"] == "overall_ok") & by_source["f1"].notna()]
        if len(part) >= 2:
            low = part.sort_values("f1").iloc[0]
            high = part.sort_values("f1").iloc[-1]
            third = (f"Per source, any-error F1 ranges from {fmt.number(low['f1'], digits=2)} ({low['group']}, "
                     f"{fmt.count(low['n_annotated'])} instances) to {fmt.number(high['f1'], digits=2)} "
                     f"({high['group']}, {fmt.count(high['n_annotated'])})")
    if offline_validation is not None and len(offline_validation):
        off = offline_validation.loc[offline_validation["criterion"].isin(CRITERIA)]
        decided = int(off["n"].sum())
        total = int((off["n"] + off["n_unscored"]).sum())
        phrase = f"the offline judge decides {fmt.share(decided, total)} criterion labels"
        third = f"{third}; {phrase}" if third else phrase[0].upper() + phrase[1:]
    if third:
        lines.append(third + ".")
    numbers = {"judge": judge, "n_instances": n_instances, "any_error_f1": f1, "any_error_precision": precision,
               "any_error_recall": recall, "f1": {c: v for v, c in per}}
    return Summary("How often is the judge right, per criterion and dataset?", lines[:3],
                   f"Reference: {reference_detail or reference}. Judge: {judge}.", numbers)


# --- 04 ICE -----------------------------------------------------------------------------------------


def ice_summary(
    *, testbed: str, plan_total: Mapping[str, Any] | None, plan_model: str, results: pd.DataFrame | None = None,
    results_origin: str = "", k: int | None = None, cuts: Mapping[str, Any] | None = None,
) -> Summary:
    """Page 04: what ICE scores look like (when results exist) and what a full run would cost.

    Args:
        testbed: e.g. "test bed v1: 10 tools, 14 queries".
        plan_total: the ``total`` row of ``ice.views.cost_plan_table`` (as a mapping) or None.
        plan_model: the model the plan prices.
        results: per-instance ICE results (``ice_score``, ``status``, ``source``) or None.
        cuts: ``ice.distributions.k_thresholds`` output.
    """
    lines = []
    numbers: dict[str, Any] = {}
    if results is None or not len(results):
        lines.append("No ICE results on this page: scores need a results file from `toolqual ice` "
                     "(ice_results_path) or a target model configured in the environment.")
        lines.append(f"Every instance would be measured on the same ruler: {testbed}, each query with hand-written "
                     "gold calls.")
    else:
        ok = results.loc[results["status"].astype(str) == "ok"] if "status" in results else results
        scores = pd.to_numeric(ok["ice_score"], errors="coerce").dropna()
        lines.append(f"ICE scores of {fmt.count(len(scores))} instances ({results_origin}): median "
                     f"{fmt.number(scores.median(), digits=2)}, middle half {fmt.number(scores.quantile(0.25), digits=2)}–"
                     f"{fmt.number(scores.quantile(0.75), digits=2)}; {fmt.count(len(results) - len(ok))} unscored.")
        if cuts:
            lines.append(f"With K = {cuts.get('k', k)}: high-ICE subset scores ≥ {fmt.number(cuts.get('high_threshold'), digits=2)}, "
                         f"low-ICE subset ≤ {fmt.number(cuts.get('low_threshold'), digits=2)}.")
        numbers.update(n_scored=int(len(scores)), median=float(scores.median()) if len(scores) else None)
    if plan_total:
        lines.append(f"A full run on the {fmt.count(plan_total.get('n_with_gold_calls'))} instances with gold calls: "
                     f"{fmt.count(plan_total.get('n_requests'))} requests, about "
                     f"{fmt.number(plan_total.get('est_prompt_tokens', 0) / 1e6, digits=1)}M prompt tokens, "
                     f"≈{fmt.usd(plan_total.get('est_cost_usd'))} with {plan_model} (estimate; nothing is sent).")
        numbers.update(plan_requests=plan_total.get("n_requests"), plan_cost_usd=plan_total.get("est_cost_usd"))
    source = f"{testbed[0].upper()}{testbed[1:]}. Target model: " + (results_origin or "none configured") + "."
    return Summary("What would ICE cost here, and what do the scores look like?", lines[:3], source, numbers)


# --- 05 filter explorer -----------------------------------------------------------------------------


def filter_words(include_criteria: Mapping[str, str] | None, *, unscored_as_pass: bool, ice_min: float | None = None,
                 sources: Sequence[str] | None = None, min_confidence: float | None = None) -> str:
    """A filter's settings in words: ``"overall correctness holds (unscored counted as holding)"``."""
    conditions = [f"{_name(c).replace(' (any error)', '')} {'is unscored' if v == 'unscored' else 'is an error' if v == 'error' else v}"
                  for c, v in (include_criteria or {}).items() if v != "any"]
    text = " and ".join(conditions) or "no criterion condition"
    text = text[0].upper() + text[1:]
    if ice_min is not None:
        text += f", ICE score at least {fmt.number(ice_min, digits=2)}"
    if sources:
        text += f", sources {', '.join(map(str, sources))}"
    if min_confidence is not None:
        text += f", verdicts of confidence below {fmt.number(min_confidence, digits=2)} unscored"
    return text + (" (unscored counted as holding)" if unscored_as_pass else " (unscored counted as failing)")


def filter_summary(counts: pd.DataFrame, kept_rates: pd.DataFrame, *, settings: str, verdicts: str) -> Summary:
    """Page 05: how many instances the filter keeps, where, and what may still hide among them.

    Args:
        counts: ``analysis.filter_counts`` (per source plus ``all``).
        kept_rates: ``tables.error_rate_table`` over the kept instances' verdicts.
        settings: the filter in words.
        verdicts: which judge's verdicts.
    """
    total = counts.loc[counts["source"] == "all"].iloc[0] if (counts["source"] == "all").any() else None
    n_kept = int(total["n_kept"]) if total is not None else 0
    n_all = int(total["n_instances"]) if total is not None else 0
    per = counts.loc[counts["source"] != "all"].sort_values("share_kept", ascending=False)
    per_text = ", ".join(f"{s} {fmt.percent(v)}" for s, v in zip(per["source"], per["share_kept"]))
    lines = [f"{settings}: {fmt.share(n_kept, n_all)} instances kept.",
             f"Kept share per source: {per_text}." if per_text else "No source."]
    criteria = kept_rates.loc[kept_rates["criterion"].isin(CRITERIA)] if kept_rates is not None else pd.DataFrame()
    if len(criteria):
        errors = int(criteria["n_errors"].sum())
        scored, unscored = int(criteria["n"].sum()), int(criteria["n_unscored"].sum())
        if errors == 0:
            lines.append(f"None of them has a scored error (by construction); {fmt.share(unscored, scored + unscored)} of "
                         "their criterion verdicts are unscored — \"no known error\" is not \"no error\".")
        else:
            lines.append(f"{fmt.count(errors)} scored errors remain among them; {fmt.share(unscored, scored + unscored)} "
                         "of their criterion verdicts are unscored.")
    numbers = {"n_instances": n_all, "n_kept": n_kept,
               "kept_share": {s: v for s, v in zip(per["source"], per["share_kept"])}}
    return Summary("Which instances survive the quality filter?", lines[:3], f"Verdicts: {verdicts}.", numbers)


# --- 06 selection and extrinsic ---------------------------------------------------------------------


def selection_summary(
    availability: pd.DataFrame, selections: pd.DataFrame, *, size: int, seed: int, data: str, verdicts: str,
    export: Mapping[str, Any] | None = None, comparisons: pd.DataFrame | None = None, origin: str = "paper",
    label_names: Mapping[str, str] | None = None, focus: str = "high_instruction_seq",
) -> Summary:
    """Page 06: which recipes ran, what was exported, and whether filtering pays off (paper's or yours).

    Args:
        availability: ``analysis.recipe_availability``.
        selections: ``selection.selections_summary``.
        export: the export manifest (or None).
        comparisons: ``extrinsic.compare_to_baselines`` of the extrinsic runs shown (paper or yours).
        origin: ``"paper"`` (Table 6, reference only) or ``"yours"``.
        focus: the fine-tune set the third line compares with ``random``.
    """
    names = dict(label_names or {})
    n_ok = int(availability["available"].sum()) if len(availability) else 0
    missing = [names.get(r, r) for r in availability.loc[~availability["available"], "recipe"]] if len(availability) else []
    short = selections.loc[selections["shortfall"] > 0, "recipe"].tolist() if len(selections) else []
    line = (f"{n_ok} of {len(availability)} recipes can run on these inputs"
            + (f" ({', '.join(missing)} need ICE scores)" if missing else "")
            + f"; each drew up to {fmt.count(size)} instances (seed {seed})"
            + (f"; fewer qualified for {', '.join(names.get(r, r) for r in short)}" if short else "") + ".")
    lines = [line]
    if export:
        lines.append(f"Exported {names.get(export.get('recipe'), export.get('recipe'))}: "
                     f"{fmt.count(export.get('n_written'))} instances as {export.get('format')} "
                     f"({fmt.count(export.get('n_skipped'))} skipped), with a manifest.")
    numbers: dict[str, Any] = {"recipes_available": n_ok, "size": size}
    if comparisons is not None and len(comparisons):
        rows = comparisons.loc[(comparisons["model"].astype(str) == focus) & (comparisons["baseline"].astype(str) == "random")]
        parts = []
        for row in rows.to_dict("records"):
            text = (f"{row['benchmark']} {fmt.percent(row['pass_rate'])} vs {fmt.percent(row['baseline_pass_rate'])} "
                    f"({fmt.points(row['diff'])}")
            p_text = fmt.pvalue(row["pvalue"])
            text += (f", p {'< ' + p_text[1:] if p_text.startswith('<') else '= ' + p_text})"
                     if not fmt.is_missing(row["pvalue"]) else ", no test)")
            parts.append(text)
        if parts:
            whose = "The paper's Table 6 (reference, not your data)" if origin == "paper" else "Your runs"
            lines.append(f"{whose}: {names.get(focus, focus)} vs random — " + "; ".join(parts) + ".")
    source = f"Data: {data}. Verdicts: {verdicts}. Extrinsic numbers: " + (
        "the paper's Table 6" if origin == "paper" else "your outcome files") + "."
    return Summary("Which subset would you fine-tune on, and does filtering pay off?", lines[:3], source, numbers)
