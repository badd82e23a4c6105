"""Extrinsic comparison: pass rates of models fine-tuned on each subset, intervals, paired tests.

Two input shapes (a frame, or a ``.csv``/``.jsonl``/``.parquet`` file):

- **per-item outcomes** ``model, item_id, passed`` (one row per model x test item; ``passed`` 1/0 or
  true/false): intervals from the counts, and comparisons on the *shared* items (McNemar's test +
  a paired bootstrap interval of the difference).
- **aggregates** ``model, pass_rate, n`` (``n`` may be empty when unknown; optional ``ci_low``,
  ``ci_high`` of a published interval): intervals from ``pass_rate * n``; comparisons assume
  independent samples (two-proportion z-test and Newcombe's hybrid score interval of the difference).
  When the items were in fact shared, that test ignores the pairing and is conservative; say so.

Optional columns in both: ``benchmark`` (comparisons stay within a benchmark), ``fine_tune_set``
(defaults to ``model``), ``origin`` (e.g. ``"this run"``; the paper's rows carry ``"paper"``).

**Outcome files of ``toolqual evaluate``** (``run, item_id, passed, score, ...``, one file per run) are
read as per-item outcomes: ``run`` names the row (``model`` := ``run``; the served model's name moves to
``served_model``), and an unscored item (``passed`` empty) is left out of that run's counts and of
every paired comparison, never counted as a failure. :func:`read_outcome_files` reads several runs at
once; :func:`noise_statements` says, per comparison, whether the difference is inside the noise.

The interval default is **Wald** (normal approximation), because that is what the paper's Table 6
reports (exactly, for ToolAlpaca at n = 100); Wilson / Clopper–Pearson are selectable and better
behaved near 0 and 1.

Pure apart from reading the input/reference tables; no plotting here (``plots_analysis.extrinsic_forest``
draws :func:`extrinsic_table` output directly).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from .errors import InputError
from .io import read_table
from .stats import IntervalMethod, mcnemar_test, paired_bootstrap_diff, proportion_interval, two_proportion_test
from .tables import format_rate

#: Folder of the paper's reference tables (``data/reference`` of the checkout).
REFERENCE_DIR: Final = Path(__file__).resolve().parents[1] / "data" / "reference"
ITEM_COLUMNS: Final = ("model", "item_id", "passed")
AGGREGATE_COLUMNS: Final = ("model", "pass_rate", "n")
EXTRINSIC_COLUMNS: Final = (
    "benchmark", "model", "fine_tune_set", "origin", "kind", "n", "n_passed", "pass_rate", "ci_low", "ci_high",
    "ci_method", "display",
)
COMPARISON_COLUMNS: Final = (
    "benchmark", "model", "baseline", "kind", "n_shared", "pass_rate", "baseline_pass_rate", "diff",
    "ci_low", "ci_high", "pvalue", "test", "model_only", "baseline_only", "note",
)

__all__ = [
    "REFERENCE_DIR", "ITEM_COLUMNS", "AGGREGATE_COLUMNS", "EXTRINSIC_COLUMNS", "COMPARISON_COLUMNS", "NOISE_COLUMNS",
    "read_outcomes", "read_outcome_files", "outcomes_kind", "extrinsic_table", "run_table", "compare_to_baselines",
    "noise_statements", "read_reference_table", "reference_outcomes", "RUN_COLUMNS",
]

_TRUE: Final = {"1", "true", "t", "yes", "y", "pass", "passed"}
_FALSE: Final = {"0", "false", "f", "no", "n", "fail", "failed"}


RUN_COLUMNS: Final = (
    "benchmark", "fine_tune_set", "n_items", "n_unscored", "n", "n_passed", "pass_rate", "wald", "wilson",
)
NOISE_COLUMNS: Final = (
    "benchmark", "model", "baseline", "diff", "ci_low", "ci_high", "pvalue", "intervals_overlap", "inside_noise",
    "statement",
)


def _runs_as_models(frame: pd.DataFrame) -> pd.DataFrame:
    """An evaluate outcome table (``run`` column) with ``model`` := ``run`` (served model -> ``served_model``)."""
    if "run" not in frame.columns:
        return frame
    frame = frame.copy()
    if "model" in frame.columns:
        frame = frame.rename(columns={"model": "served_model"})
    frame["model"] = frame["run"].astype(str)
    return frame


def outcomes_kind(frame: pd.DataFrame) -> Literal["items", "aggregate"]:
    """``"items"`` when the frame has ``item_id`` and ``passed``, ``"aggregate"`` with ``pass_rate``."""
    frame = _runs_as_models(frame)
    columns = set(frame.columns)
    if {"model", "item_id", "passed"} <= columns:
        return "items"
    if {"model", "pass_rate"} <= columns:
        return "aggregate"
    raise InputError(
        "outcomes need either per-item columns model, item_id, passed or aggregate columns model, "
        f"pass_rate, n; got {', '.join(map(str, frame.columns))}",
        field="columns",
    )


def _passed(values: pd.Series, where: str) -> pd.Series:
    def convert(value: Any) -> float:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.nan
        if isinstance(value, (bool, np.bool_)):
            return float(value)
        if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
            return float(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        raise InputError(f"'passed' must be 1/0 or true/false, got {value!r}", file=where, field="passed")

    return values.map(convert).astype(float)


def read_outcomes(source: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """Validate outcomes (a frame or a table file) and normalise them.

    Returns:
        A copy with ``benchmark`` (default ``"all"``), ``fine_tune_set`` (default = model), ``origin``
        (default ``"this run"``) filled, ``passed`` as float 1/0 (items) or ``pass_rate``/``n`` as
        floats (aggregates; ``n`` NaN when unknown); ``attrs["kind"]`` = ``"items"`` | ``"aggregate"``.

    Raises:
        InputError: missing columns, a ``passed`` value that is not 1/0/true/false, a pass rate outside
            [0, 1], a repeated (model, item_id) or (model) row within a benchmark.
    """
    where = "<outcomes frame>"
    if not isinstance(source, pd.DataFrame):
        where = str(source)
        source = read_table(source)
    frame = _runs_as_models(source).copy()
    try:
        kind = outcomes_kind(frame)
    except InputError as exc:
        raise InputError(str(exc).split(": ", 1)[-1], file=where, field="columns") from None
    for column, default in (("benchmark", "all"), ("origin", "this run")):
        if column not in frame.columns:
            frame[column] = default
        frame[column] = frame[column].astype(object).where(frame[column].notna(), default).astype(str)
    frame["model"] = frame["model"].astype(str)
    if "fine_tune_set" not in frame.columns:
        frame["fine_tune_set"] = frame["model"]
    frame["fine_tune_set"] = frame["fine_tune_set"].astype(object).where(frame["fine_tune_set"].notna(),
                                                                         frame["model"]).astype(str)
    if kind == "items":
        frame["item_id"] = frame["item_id"].astype(str)
        frame["passed"] = _passed(frame["passed"], where)
        keys = ["benchmark", "model", "item_id"]
    else:
        frame["pass_rate"] = pd.to_numeric(frame["pass_rate"], errors="coerce").astype(float)
        bad = frame["pass_rate"].notna() & ~frame["pass_rate"].between(0, 1)
        if bad.any():
            raise InputError(f"pass_rate must lie in [0, 1]; got {frame.loc[bad, 'pass_rate'].iloc[0]}",
                             file=where, field="pass_rate")
        frame["n"] = pd.to_numeric(frame["n"], errors="coerce").astype(float) if "n" in frame.columns else np.nan
        for column in ("ci_low", "ci_high"):
            if column in frame.columns:
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        keys = ["benchmark", "origin", "model"]
    repeated = frame.duplicated(keys, keep=False)
    if repeated.any():
        first = frame.loc[repeated].iloc[0]
        raise InputError(f"repeated row for {', '.join(f'{k}={first[k]}' for k in keys)}", file=where,
                         field=keys[-1])
    frame.attrs["kind"] = kind
    return frame


def read_outcome_files(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Several outcome files (one per run, e.g. from ``toolqual evaluate``) as one per-item outcome frame.

    Each file is validated by :func:`read_outcomes`; a ``source_file`` column says where each row came
    from. Runs must not repeat across files.

    Raises:
        InputError: no file given, a file that is not per-item outcomes, or the same (benchmark, run,
            item) in two files (names both files).
    """
    if not paths:
        raise InputError("no outcome file given", field="outcomes")
    frames = []
    seen: dict[tuple[str, str], str] = {}
    for path in paths:
        frame = read_outcomes(path)
        if frame.attrs["kind"] != "items":
            raise InputError("expected per-item outcomes (run or model, item_id, passed), got aggregates",
                             file=str(path), field="columns")
        for key in frame[["benchmark", "model"]].drop_duplicates().itertuples(index=False):
            if tuple(key) in seen:
                raise InputError(f"run {key[1]!r} on benchmark {key[0]!r} is also in {seen[tuple(key)]}; give each "
                                 "run once (or label runs apart with toolqual evaluate --run)", file=str(path),
                                 field="run")
            seen[tuple(key)] = str(path)
        frames.append(frame.assign(source_file=str(path)))
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs["kind"] = "items"
    return combined


def extrinsic_table(
    outcomes: pd.DataFrame | str | os.PathLike[str],
    *,
    method: IntervalMethod = "wald",
    alpha: float = 0.05,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Pass rate and ``1 - alpha`` interval per (benchmark, model): the forest-plot table.

    Args:
        outcomes: per-item or aggregate outcomes (see module docstring).
        method: ``"wald"`` (default, the paper's), ``"wilson"``, ``"clopper_pearson"``.
        order: optional model/fine-tune-set order (e.g. ``selection.RECIPES``); others follow in
            first-seen order.

    Returns:
        ``EXTRINSIC_COLUMNS``, one row per benchmark x origin x model: ``pass_rate`` in [0, 1] (higher
        is better), ``ci_low``/``ci_high``, ``ci_method`` (``method``, or ``"published"`` when an
        aggregate row without ``n`` carries its own interval, or ``"none"``), ``n_passed`` (items;
        ``pass_rate * n`` for aggregates), ``display`` e.g. ``"0.55 (0.45–0.65) n=100"``.
        Feed it to ``plots_analysis.extrinsic_forest(table)`` (label ``fine_tune_set``, panels
        ``benchmark``, reference rows ``origin == "paper"``).
    """
    frame = read_outcomes(outcomes)
    rows = []
    if frame.attrs["kind"] == "items":
        grouped = frame.dropna(subset=["passed"]).groupby(["benchmark", "origin", "model"], sort=False)
        for (benchmark, origin, model), part in grouped:
            n = len(part)
            n_passed = int(part["passed"].sum())
            low, high = proportion_interval(n_passed, n, method=method, alpha=alpha)
            rows.append({"benchmark": benchmark, "model": model, "fine_tune_set": part["fine_tune_set"].iloc[0],
                         "origin": origin, "kind": "items", "n": n, "n_passed": n_passed,
                         "pass_rate": n_passed / n if n else math.nan, "ci_low": low, "ci_high": high,
                         "ci_method": method})
    else:
        for record in frame.to_dict("records"):
            rate, n = record["pass_rate"], record["n"]
            if not pd.isna(n) and n > 0:
                low, high = proportion_interval(rate * n, n, method=method, alpha=alpha)
                ci_method = method
            elif not pd.isna(record.get("ci_low", math.nan)) and not pd.isna(record.get("ci_high", math.nan)):
                low, high, ci_method = record["ci_low"], record["ci_high"], "published"
            else:
                low = high = math.nan
                ci_method = "none"
            rows.append({"benchmark": record["benchmark"], "model": record["model"],
                         "fine_tune_set": record["fine_tune_set"], "origin": record["origin"], "kind": "aggregate",
                         "n": n, "n_passed": rate * n if not pd.isna(n) else math.nan, "pass_rate": rate,
                         "ci_low": low, "ci_high": high, "ci_method": ci_method})
    table = pd.DataFrame(rows, columns=[c for c in EXTRINSIC_COLUMNS if c != "display"])
    table["display"] = [format_rate(r, lo, hi, n, digits=2, percent=False) for r, lo, hi, n in
                        zip(table["pass_rate"], table["ci_low"], table["ci_high"], table["n"])]
    if order:
        rank = {name: i for i, name in enumerate(order)}
        table["_rank"] = table["fine_tune_set"].map(rank).fillna(len(rank))
        table = table.sort_values(["_rank"], kind="stable").drop(columns="_rank")
        first_seen = {b: i for i, b in enumerate(pd.unique(frame["benchmark"]))}
        table = table.sort_values("benchmark", key=lambda s: s.map(first_seen), kind="stable")
    return table.reset_index(drop=True)


def run_table(outcomes: pd.DataFrame | str | os.PathLike[str], *, alpha: float = 0.05, digits: int = 3,
              order: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 6 for per-item runs: per benchmark and run, the items, the unscored ones, and the pass rate
    with both its Wald (the paper's) and Wilson intervals.

    Returns:
        :data:`RUN_COLUMNS`: ``n_items`` (outcome rows), ``n_unscored`` (rows without a verdict, left
        out), ``n`` (scored), ``n_passed``, ``pass_rate``, and ``wald`` / ``wilson`` as ``"low–high"``
        with ``digits`` decimals.
    """
    frame = read_outcomes(outcomes)
    if frame.attrs["kind"] != "items":
        raise InputError("run_table needs per-item outcomes (run or model, item_id, passed)", field="columns")
    rows = []
    for (benchmark, model), part in frame.groupby(["benchmark", "model"], sort=False):
        scored = part["passed"].dropna()
        n, k = len(scored), int(scored.sum())
        row = {"benchmark": benchmark, "fine_tune_set": part["fine_tune_set"].iloc[0], "n_items": len(part),
               "n_unscored": len(part) - n, "n": n, "n_passed": k, "pass_rate": k / n if n else math.nan}
        for method in ("wald", "wilson"):
            low, high = proportion_interval(k, n, method=method, alpha=alpha)
            row[method] = "–" if pd.isna(low) else f"{low:.{digits}f}–{high:.{digits}f}"
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    if order:
        rank = {name: i for i, name in enumerate(order)}
        table = table.iloc[table["fine_tune_set"].map(rank).fillna(len(rank)).argsort(kind="stable")]
    return table.reset_index(drop=True)


def compare_to_baselines(
    outcomes: pd.DataFrame | str | os.PathLike[str],
    baselines: Sequence[str] = ("original", "random"),
    *,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each model against each baseline model within its benchmark (and origin).

    Per-item outcomes: McNemar's test on the items both models were tested on (exact binomial when
    fewer than 25 discordant pairs) and a paired percentile bootstrap interval of the pass-rate
    difference (seeded). Aggregates: two-proportion z-test and Newcombe's hybrid score interval
    (independent samples; NaN with a note when an ``n`` is unknown).

    Args:
        baselines: names matched against ``model`` first, then ``fine_tune_set``; a missing baseline
            is skipped with no row.

    Returns:
        ``COMPARISON_COLUMNS``, one row per benchmark x model x baseline (the baseline itself
        excluded): ``diff = pass_rate - baseline_pass_rate`` with ``ci_low/ci_high``, ``pvalue``
        (two-sided), ``test``, ``model_only/baseline_only`` (discordant counts, items only),
        ``n_shared`` (items in both; for aggregates the smaller n), ``note``.
    """
    frame = read_outcomes(outcomes)
    kind = frame.attrs["kind"]
    rows = []
    for (benchmark, origin), part in frame.groupby(["benchmark", "origin"], sort=False):
        names = list(pd.unique(part["model"]))
        set_to_model = dict(zip(part["fine_tune_set"], part["model"]))
        for baseline_name in baselines:
            baseline = baseline_name if baseline_name in names else set_to_model.get(baseline_name)
            if baseline is None:
                continue
            for model in names:
                if model == baseline:
                    continue
                row: dict[str, Any] = {"benchmark": benchmark, "model": model, "baseline": baseline, "kind": kind,
                                       "model_only": math.nan, "baseline_only": math.nan, "note": ""}
                if kind == "items":
                    row.update(_compare_items(part, model, baseline, alpha, n_resamples, seed))
                else:
                    row.update(_compare_aggregates(part, model, baseline, alpha))
                rows.append(row)
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def _compare_items(part: pd.DataFrame, model: str, baseline: str, alpha: float, n_resamples: int,
                   seed: int) -> dict[str, Any]:
    a = part.loc[part["model"] == model].set_index("item_id")["passed"].dropna()
    b = part.loc[part["model"] == baseline].set_index("item_id")["passed"].dropna()
    shared = a.index.intersection(b.index)
    a, b = a.loc[shared].to_numpy(), b.loc[shared].to_numpy()
    note = ""
    unshared = len(part.loc[part["model"].isin([model, baseline])]) - 2 * len(shared)
    if unshared:
        note = f"{unshared} item result(s) not shared by both models left out"
    test = mcnemar_test(a, b)
    boot = paired_bootstrap_diff(a, b, n_resamples=n_resamples, alpha=alpha, seed=seed)
    return {"n_shared": len(shared), "pass_rate": float(a.mean()) if len(a) else math.nan,
            "baseline_pass_rate": float(b.mean()) if len(b) else math.nan, "diff": boot["estimate"],
            "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "pvalue": test["pvalue"],
            "test": f"{test['method']}; paired bootstrap interval",
            "model_only": test["a_only"], "baseline_only": test["b_only"], "note": note}


def _compare_aggregates(part: pd.DataFrame, model: str, baseline: str, alpha: float) -> dict[str, Any]:
    a = part.loc[part["model"] == model].iloc[0]
    b = part.loc[part["model"] == baseline].iloc[0]
    result = two_proportion_test(a["pass_rate"] * a["n"], a["n"], b["pass_rate"] * b["n"], b["n"], alpha=alpha)
    note = ""
    if pd.isna(a["n"]) or pd.isna(b["n"]):
        note = "n unknown: no interval or test"
    return {"n_shared": float(np.nanmin([a["n"], b["n"]])) if not (pd.isna(a["n"]) and pd.isna(b["n"])) else math.nan,
            "pass_rate": a["pass_rate"], "baseline_pass_rate": b["pass_rate"],
            "diff": a["pass_rate"] - b["pass_rate"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
            "pvalue": result["pvalue"], "test": "two-proportion z (pooled) + Newcombe interval; independent samples",
            "note": note}


def noise_statements(table: pd.DataFrame, comparisons: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """One plain-language verdict per comparison: is the difference inside the noise?

    Args:
        table: :func:`extrinsic_table` output (the pass-rate intervals of every run).
        comparisons: :func:`compare_to_baselines` output for the same outcomes.

    Returns:
        :data:`NOISE_COLUMNS`: ``intervals_overlap`` (the two runs' pass-rate intervals overlap),
        ``inside_noise`` (True when the test's p-value is at least ``alpha`` or the interval of the
        difference contains 0; None when there is no test), and ``statement``, e.g. ``"hiseq vs random:
        +0.060 (95% interval -0.020 to +0.140), McNemar p = 0.21: inside the noise"``. Overlapping
        intervals alone do not make a difference insignificant (nor do separate ones make it
        significant for paired items); the verdict follows the paired test.
    """
    rows = []
    rates = {(r["benchmark"], r["model"]): r for r in table.to_dict("records")}
    level = f"{1 - alpha:.0%}"
    for c in comparisons.to_dict("records"):
        own = rates.get((c["benchmark"], c["model"]))
        base = rates.get((c["benchmark"], c["baseline"]))
        overlap = None
        if own is not None and base is not None and not any(
                pd.isna(v) for v in (own["ci_low"], own["ci_high"], base["ci_low"], base["ci_high"])):
            overlap = bool(own["ci_low"] <= base["ci_high"] and base["ci_low"] <= own["ci_high"])
        pvalue, low, high, diff = c["pvalue"], c["ci_low"], c["ci_high"], c["diff"]
        test = str(c.get("test") or "").split(";")[0].split(" (")[0] or "test"
        if pd.isna(pvalue) and (pd.isna(low) or pd.isna(high)):
            inside, verdict = None, "no test possible (test sizes unknown)"
        else:
            inside = bool((not pd.isna(pvalue) and pvalue >= alpha) or (not pd.isna(low) and low <= 0 <= high))
            verdict = ("inside the noise" if inside else
                       f"a difference beyond the noise at the {level} level")
        name = f"{c['model']} vs {c['baseline']}"
        if str(c["benchmark"]) != "all":
            name += f" ({c['benchmark']})"
        parts = [f"{name}: {diff:+.3f}" if not pd.isna(diff) else f"{name}: difference unknown"]
        if not (pd.isna(low) or pd.isna(high)):
            parts[0] += f" ({level} interval {low:+.3f} to {high:+.3f})"
        if not pd.isna(pvalue):
            parts.append(f"{test} p = {pvalue:.3g}")
        if overlap is not None:
            parts.append("pass-rate intervals overlap" if overlap else "pass-rate intervals do not overlap")
        statement = ", ".join(parts) + f": {verdict}"
        rows.append({"benchmark": c["benchmark"], "model": c["model"], "baseline": c["baseline"], "diff": diff,
                     "ci_low": low, "ci_high": high, "pvalue": pvalue, "intervals_overlap": overlap,
                     "inside_noise": inside, "statement": statement})
    return pd.DataFrame(rows, columns=list(NOISE_COLUMNS))


# --- the paper's reference tables ----------------------------------------------------------------------


def read_reference_table(table: Literal[4, 5, 6], *, directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One of the paper's tables from ``data/reference`` (see its README for sources and caveats).

    Returns:
        - 4: ``group`` (dataset), ``criterion``, ``criterion_label``, ``metric``, ``value``,
          ``n_annotated``: long, ready as ``reference`` of ``plots_analysis.validation_metrics_chart``.
        - 5: ``group``, ``criterion``, ``criterion_label``, ``error_rate``, ``n_instances``: ready as
          ``reference`` of ``plots_analysis.error_rate_bars``.
        - 6: the CSV's columns plus ``benchmark`` (= dataset), ``model`` (= fine_tune_set),
          ``n`` (= n_test, NaN for ToolBench) and ``origin = "paper"``: usable as aggregate outcomes
          and directly by ``plots_analysis.extrinsic_forest``.
    """
    folder = Path(directory) if directory is not None else REFERENCE_DIR
    names = {4: "table4_validation.csv", 5: "table5_error_rates.csv", 6: "table6_extrinsic.csv"}
    if table not in names:
        raise ValueError(f"the paper's reference tables are 4, 5 and 6; got {table!r}")
    frame = read_table(folder / names[table])
    if table == 4:
        long = frame.melt(id_vars=["dataset", "criterion", "criterion_label", "n_annotated"],
                          value_vars=["accuracy", "precision", "recall", "f1"], var_name="metric", value_name="value")
        return long.rename(columns={"dataset": "group"})
    if table == 5:
        return frame.rename(columns={"dataset": "group"})
    frame = frame.copy()
    frame["benchmark"] = frame["dataset"]
    frame["model"] = frame["fine_tune_set"]
    frame["n"] = pd.to_numeric(frame["n_test"], errors="coerce").astype(float)
    frame["origin"] = "paper"
    return frame


def reference_outcomes(dataset: str | None = None, *, directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Table 6 as aggregate outcomes (``benchmark, model, fine_tune_set, origin, pass_rate, n, ci_low,
    ci_high``), optionally one dataset (``"ToolBench"`` / ``"ToolAlpaca"``)."""
    frame = read_reference_table(6, directory=directory)
    if dataset is not None:
        frame = frame.loc[frame["dataset"] == dataset]
        if frame.empty:
            raise ValueError(f"no Table 6 rows for dataset {dataset!r}; use 'ToolBench' or 'ToolAlpaca'")
    return frame.loc[:, ["benchmark", "model", "fine_tune_set", "origin", "pass_rate", "n", "ci_low", "ci_high"]]
