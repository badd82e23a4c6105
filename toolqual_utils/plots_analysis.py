"""Figures for the analysis notebooks (02 error rates, 03 judge validation, 05 explorer, 06 extrinsic).

Every builder takes a *finished* table (from :mod:`toolqual_utils.tables`, :mod:`toolqual_utils.stats`,
:mod:`toolqual_utils.annotations` or :mod:`toolqual_utils.extrinsic`) and returns a
``plotly.graph_objects.Figure``. Builders only pick columns: they never compute a statistic, never
show and never save (notebooks call ``nb.show_figure(fig)``). Interval bars are drawn from the
table's ``ci_low``/``ci_high`` columns as they are; a missing bound draws no bar.

An empty table gives an empty figure with the title and a "no data" message, so a notebook cell never
fails for lack of rows. A table missing a needed column raises ``ValueError`` naming the columns.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import (
    REFERENCE_COLOUR, SEQUENTIAL_SCALE, SERIES_COLOURS, STATUS_COLOURS, UNSCORED_GREY, criterion_colour,
)
from .plots import _layout as _base_layout
from .plots import _require, empty_figure
from .views import rate_shown

__all__ = [
    "empty_figure",
    "error_rate_bars",
    "validation_metrics_chart",
    "extrinsic_forest",
    "agreement_chart",
    "decision_chart",
    "error_rate_dots",
    "validation_heatmap",
]

FIGURE_HEIGHT = 420
#: Marker used for numbers quoted from the paper (drawn on different data: never a bar of ours).
REFERENCE_MARKER = {"symbol": "diamond-open", "size": 11, "line": {"width": 2}, "color": REFERENCE_COLOUR}
#: Open symbols told apart when the paper's numbers for several datasets share a panel (ToolBench: a
#: diamond, ToolAlpaca: a square, ...): same grey, so they still read as "the paper's", not ours.
REFERENCE_SYMBOLS = ("diamond-open", "square-open", "triangle-up-open", "circle-open")


def _reference_marker(index: int) -> dict:
    return {**REFERENCE_MARKER, "symbol": REFERENCE_SYMBOLS[index % len(REFERENCE_SYMBOLS)]}


# --- shared helpers --------------------------------------------------------------------------------


def _layout(fig: go.Figure, title: str, *, x_title: str = "", y_title: str = "",
            height: int = FIGURE_HEIGHT) -> go.Figure:
    return _base_layout(fig, title, x_title=x_title, y_title=y_title, height=height, top=70)


def _error_bars(values: pd.Series, low: pd.Series, high: pd.Series) -> dict:
    """Asymmetric error-bar spec from interval bounds (NaN bound -> no bar on that side)."""
    values = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    plus = pd.to_numeric(high, errors="coerce").to_numpy(dtype=float) - values
    minus = values - pd.to_numeric(low, errors="coerce").to_numpy(dtype=float)
    # clip tiny negative spans from rounding; NaN stays NaN (plotly draws nothing for it)
    plus = np.where(plus < 0, 0.0, plus)
    minus = np.where(minus < 0, 0.0, minus)
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.2, "width": 4}


def _ordered(values: pd.Series, order: Sequence[str] | None) -> list[str]:
    present = list(pd.unique(values.astype(str)))
    if not order:
        return present
    first = [v for v in order if v in present]
    return first + [v for v in present if v not in first]


# --- 02 error rates --------------------------------------------------------------------------------


def error_rate_bars(
    table: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    title: str = "Share of instances with an error, per criterion",
) -> go.Figure:
    """Grouped bars of error rates with interval error bars (one trace per group).

    Args:
        table: long output of ``tables.error_rate_table`` (columns ``group, criterion,
            criterion_label, n, n_errors, n_unscored, error_rate, ci_low, ci_high``). Criteria keep the
            table's row order (the paper's Table 5 order).
        reference: optional numbers quoted from elsewhere (e.g. the paper's Table 5), columns
            ``group, criterion, error_rate``; drawn as open grey markers named ``"<group> (paper)"`` (one
            symbol per group, :data:`REFERENCE_SYMBOLS`), never as bars, so they cannot be mistaken for
            results on this data.
        title: figure title.

    Returns:
        A figure with one bar trace per group (x = criterion label, y = error rate in [0, 1]) and one
        marker trace per reference group.
    """
    if table is None or table.empty:
        return empty_figure(title)
    _require(table, ("group", "criterion", "criterion_label", "n", "n_errors", "n_unscored", "error_rate",
                     "ci_low", "ci_high"), "error_rate_bars")
    labels = dict(zip(table["criterion"], table["criterion_label"]))
    order = list(pd.unique(table["criterion"]))
    fig = go.Figure()
    for group in _ordered(table["group"], None):
        part = table.loc[table["group"].astype(str) == group].set_index("criterion").reindex(order)
        customdata = np.column_stack([part["n"], part["n_errors"], part["n_unscored"],
                                      part["ci_low"], part["ci_high"]])
        fig.add_bar(
            x=[labels[c] for c in order], y=part["error_rate"], name=group,
            error_y=_error_bars(part["error_rate"], part["ci_low"], part["ci_high"]),
            customdata=customdata,
            hovertemplate=(f"{group}<br>%{{x}}<br>error rate %{{y:.1%}} "
                           "(%{customdata[3]:.1%}–%{customdata[4]:.1%})<br>"
                           "%{customdata[1]} errors of %{customdata[0]} scored; "
                           "%{customdata[2]} unscored<extra></extra>"),
        )
    if reference is not None and not reference.empty:
        _require(reference, ("group", "criterion", "error_rate"), "error_rate_bars(reference=...)")
        for r_index, group in enumerate(_ordered(reference["group"], None)):
            part = reference.loc[reference["group"].astype(str) == group]
            part = part.loc[part["criterion"].isin(order)]
            fig.add_scatter(
                x=[labels[c] for c in part["criterion"]], y=part["error_rate"], mode="markers",
                name=f"{group} (paper)", marker=_reference_marker(r_index),
                hovertemplate=f"{group} (paper, different data)<br>%{{x}}<br>%{{y:.1%}}<extra></extra>",
            )
    fig.update_layout(barmode="group")
    fig = _layout(fig, title, x_title="criterion", y_title="error rate (95% interval)")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


# --- 03 judge validation ---------------------------------------------------------------------------


def validation_metrics_chart(
    long_table: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    metrics: Sequence[str] = ("accuracy", "precision", "recall", "f1"),
    title: str = "Judge vs reference labels (error = positive class)",
) -> go.Figure:
    """Dot-and-whisker chart of validation metrics per criterion, one panel per metric.

    Args:
        long_table: ``tables.validation_long`` output (``group, criterion, criterion_label, metric,
            value, ci_low, ci_high, n``); one trace per group.
        reference: optional numbers quoted from the paper's Table 4, columns ``group, criterion,
            metric, value``; drawn as open grey markers named ``"<group> (paper)"``, one symbol per
            group (:data:`REFERENCE_SYMBOLS`: ToolBench a diamond, ToolAlpaca a square).
        metrics: the metrics to draw (one panel each, left to right).

    Returns:
        A figure with ``len(metrics)`` panels sharing the criterion axis; x = metric value in [0, 1].
    """
    if long_table is None or long_table.empty:
        return empty_figure(title)
    _require(long_table, ("group", "criterion", "criterion_label", "metric", "value", "ci_low", "ci_high", "n"),
             "validation_metrics_chart")
    metrics = [m for m in metrics if m in set(long_table["metric"])]
    if not metrics:
        return empty_figure(title, "none of the requested metrics is in the table")
    order = list(pd.unique(long_table["criterion"]))
    labels = dict(zip(long_table["criterion"], long_table["criterion_label"]))
    fig = make_subplots(rows=1, cols=len(metrics), shared_yaxes=True, subplot_titles=list(metrics),
                        horizontal_spacing=0.03)
    palette = SERIES_COLOURS
    for g_index, group in enumerate(_ordered(long_table["group"], None)):
        colour = palette[g_index % len(palette)]
        for m_index, metric in enumerate(metrics, start=1):
            part = long_table.loc[(long_table["group"].astype(str) == group) & (long_table["metric"] == metric)]
            part = part.set_index("criterion").reindex(order)
            fig.add_scatter(
                x=part["value"], y=[labels[c] for c in order], mode="markers", name=group,
                legendgroup=group, showlegend=m_index == 1, marker={"color": colour, "size": 8},
                error_x=_error_bars(part["value"], part["ci_low"], part["ci_high"]),
                customdata=np.column_stack([part["n"], part["ci_low"], part["ci_high"]]),
                hovertemplate=(f"{group} · {metric}<br>%{{y}}: %{{x:.2f}} "
                               "(%{customdata[1]:.2f}–%{customdata[2]:.2f}), n=%{customdata[0]}<extra></extra>"),
                row=1, col=m_index,
            )
    if reference is not None and not reference.empty:
        _require(reference, ("group", "criterion", "metric", "value"), "validation_metrics_chart(reference=...)")
        for r_index, group in enumerate(_ordered(reference["group"], None)):
            for m_index, metric in enumerate(metrics, start=1):
                part = reference.loc[(reference["group"].astype(str) == group) & (reference["metric"] == metric)
                                     & reference["criterion"].isin(order)]
                fig.add_scatter(
                    x=part["value"], y=[labels[c] for c in part["criterion"]], mode="markers",
                    name=f"{group} (paper)", legendgroup=f"ref:{group}", showlegend=m_index == 1,
                    marker=_reference_marker(r_index),
                    hovertemplate=f"{group} (paper, different data) · {metric}<br>%{{y}}: %{{x:.2f}}<extra></extra>",
                    row=1, col=m_index,
                )
    fig.update_xaxes(range=[-0.02, 1.02])
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=[labels[c] for c in order])
    return _layout(fig, title, height=max(FIGURE_HEIGHT, 90 + 34 * len(order)))


# --- 03 annotator agreement ------------------------------------------------------------------------


def agreement_chart(
    table: pd.DataFrame,
    *,
    measures: Sequence[str] = ("raw_agreement", "kappa", "pabak"),
    label_column: str = "criterion",
    title: str = "Agreement between annotators, per criterion",
) -> go.Figure:
    """Grouped bars of agreement measures (raw agreement, Cohen's kappa, PABAK) per criterion.

    Args:
        table: one row per criterion with a ``label_column`` and the ``measures`` columns (as returned
            by ``annotations.annotator_agreement`` / ``stats.agreement_summary`` per criterion); an
            ``n`` column, when present, shows in the hover. NaN (e.g. kappa with one constant label)
            draws no bar and is labelled "undefined".
        measures: which columns to draw (missing ones are skipped).

    Returns:
        One bar trace per measure; y in [-1, 1].
    """
    if table is None or table.empty:
        return empty_figure(title)
    _require(table, (label_column,), "agreement_chart")
    measures = [m for m in measures if m in table.columns]
    if not measures:
        raise ValueError(f"agreement_chart needs at least one of the measure columns; got {list(table.columns)}")
    n_values = table["n"] if "n" in table.columns else pd.Series([np.nan] * len(table), index=table.index)
    fig = go.Figure()
    for measure in measures:
        values = pd.to_numeric(table[measure], errors="coerce")
        text = ["undefined" if pd.isna(v) else f"{v:.2f}" for v in values]
        fig.add_bar(x=table[label_column].astype(str), y=values, name=measure.replace("_", " "), text=text,
                    textposition="outside", textfont={"size": 9}, customdata=np.column_stack([n_values]),
                    hovertemplate=f"{measure}<br>%{{x}}: %{{text}} (n=%{{customdata[0]}})<extra></extra>")
    fig.update_layout(barmode="group")
    fig = _layout(fig, title, x_title=label_column, y_title="agreement")
    fig.update_yaxes(range=[min(-0.05, float(np.nanmin([table[m].min() for m in measures] + [0]))) - 0.05, 1.12])
    return fig


# --- 06 extrinsic comparison -----------------------------------------------------------------------


def extrinsic_forest(
    table: pd.DataFrame,
    *,
    label: str = "fine_tune_set",
    estimate: str = "pass_rate",
    panel: str | None = "benchmark",
    origin: str | None = "origin",
    reference_origin: str = "paper",
    label_names: Mapping[str, str] | None = None,
    title: str = "Pass rate of models fine-tuned on each subset (95% interval)",
) -> go.Figure:
    """Forest plot: one point and interval per fine-tune set, one panel per benchmark.

    Args:
        table: finished extrinsic table, one row per (benchmark, fine-tune set[, origin]) with columns
            ``label``, ``estimate``, ``ci_low``, ``ci_high`` (+ ``panel``, ``origin``, ``n`` optional).
        label: column naming the fine-tune set (y axis, top to bottom in table order).
        estimate: column with the point estimate in [0, 1] (higher is better).
        panel: column splitting the figure into side-by-side panels (e.g. ToolBench | ToolAlpaca);
            None or absent = one panel.
        origin: column telling where a row comes from; rows whose origin equals
            ``reference_origin`` (the paper's Table 6) are drawn as open diamonds, all others as filled
            circles, each origin its own legend entry.
        label_names: optional display names for the ``label`` values (e.g. ``selection.RECIPE_LABELS``);
            values without a name are shown as they are.

    Returns:
        A figure with one scatter trace per (panel, origin), horizontal error bars from the intervals.
    """
    if table is None or table.empty:
        return empty_figure(title)
    _require(table, (label, estimate, "ci_low", "ci_high"), "extrinsic_forest")
    frame = table.copy()
    if label_names:
        frame[label] = frame[label].map(lambda v: label_names.get(v, v))
    panels = _ordered(frame[panel], None) if panel and panel in frame.columns else ["all"]
    if not (panel and panel in frame.columns):
        frame["_panel"] = "all"
        panel = "_panel"
    origins = _ordered(frame[origin], [reference_origin]) if origin and origin in frame.columns else [None]
    set_order = list(pd.unique(frame[label].astype(str)))
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True,
                        subplot_titles=[str(p) for p in panels] if len(panels) > 1 else None,
                        horizontal_spacing=0.04)
    palette = SERIES_COLOURS
    others = [o for o in origins if o != reference_origin]
    n_values = frame["n"] if "n" in frame.columns else pd.Series(np.nan, index=frame.index)
    for p_index, panel_value in enumerate(panels, start=1):
        for o_value in origins:
            mask = frame[panel].astype(str) == panel_value
            if o_value is not None:
                mask &= frame[origin].astype(str) == str(o_value)
            part = frame.loc[mask]
            if part.empty:
                continue
            is_reference = o_value is not None and str(o_value) == reference_origin
            name = f"{o_value} (Table 6)" if is_reference else (str(o_value) if o_value is not None else estimate)
            marker = dict(REFERENCE_MARKER) if is_reference else {
                "symbol": "circle", "size": 9,
                "color": palette[others.index(o_value) % len(palette)] if o_value in others else palette[0]}
            fig.add_scatter(
                x=part[estimate], y=part[label].astype(str), mode="markers", name=name, legendgroup=name,
                showlegend=name not in {t.name for t in fig.data}, marker=marker,
                error_x=_error_bars(part[estimate], part["ci_low"], part["ci_high"]),
                customdata=np.column_stack([part["ci_low"], part["ci_high"], n_values.loc[part.index]]),
                hovertemplate=(f"{panel_value} · {name}<br>%{{y}}: %{{x:.2f}} "
                               "(%{customdata[0]:.2f}–%{customdata[1]:.2f}), n=%{customdata[2]}<extra></extra>"),
                row=1, col=p_index,
            )
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=set_order)
    fig.update_xaxes(title_text=estimate.replace("_", " "), tickformat=".0%")
    return _layout(fig, title, height=max(FIGURE_HEIGHT - 60, 120 + 38 * len(set_order)))


# --- decisions and error rates that cannot mislead -------------------------------------------------

_OUTCOME_NAMES = {"error": "error", "holds": "holds", "unscored": "unscored (not decided)"}


def decision_chart(
    shares: pd.DataFrame, *, title: str = "What each judge decided, per criterion (share of instances)",
) -> go.Figure:
    """Stacked horizontal bars: per criterion, the share of instances a judge found in error, found
    holding, and left unscored (grey), one panel per judge.

    Args:
        shares: ``views.decision_shares`` output (``judge, criterion, criterion_label, outcome, n, n_total,
            share``).

    Returns:
        One bar trace per (panel, outcome); the three outcomes have one legend entry each, unscored in the
        grey of :data:`toolqual_utils.palette.UNSCORED_GREY`.
    """
    if shares is None or shares.empty:
        return empty_figure(title)
    _require(shares, ("judge", "criterion", "criterion_label", "outcome", "n", "n_total", "share"), "decision_chart")
    judges = _ordered(shares["judge"], None)
    fig = make_subplots(rows=1, cols=len(judges), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[_wrap(j, 48) for j in judges])
    order = list(pd.unique(shares["criterion_label"]))
    for index, judge in enumerate(judges, start=1):
        part = shares.loc[shares["judge"].astype(str) == judge]
        for outcome in ("error", "holds", "unscored"):
            rows = part.loc[part["outcome"] == outcome].set_index("criterion_label").reindex(order)
            fig.add_bar(
                y=order, x=rows["share"], orientation="h", name=_OUTCOME_NAMES[outcome], legendgroup=outcome,
                showlegend=index == 1, marker={"color": STATUS_COLOURS[outcome], "line": {"width": 0}},
                text=[f"{s:.0%}" if s >= 0.06 else "" for s in rows["share"].fillna(0)], textposition="inside",
                insidetextanchor="middle", textfont={"size": 11},
                customdata=np.column_stack([rows["n"], rows["n_total"]]),
                hovertemplate=(f"{judge}<br>%{{y}}: {outcome} %{{x:.1%}} "
                               "(%{customdata[0]:,} of %{customdata[1]:,})<extra></extra>"),
                row=1, col=index,
            )
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.12, "x": 0})
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=order)
    return _layout(fig, title, height=max(300, 110 + 34 * len(order)))


def _wrap(text: str, width: int) -> str:
    words, lines, line = str(text).split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "<br>".join(lines)


def _paper_group(group: str, reference_groups: Sequence[str]) -> str | None:
    key = str(group).lower().replace("-", "").replace("_", "")
    for name in reference_groups:
        if str(name).lower().replace("-", "").replace("_", "") == key:
            return name
    return None


def error_rate_dots(
    table: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    min_share: float = 0.5,
    title: str = "Share of instances with an error (95% interval), per criterion",
    columns: int = 4,
) -> go.Figure:
    """Small multiples, one panel per group: per criterion, the error rate as a dot with its interval where
    the judge decided enough instances (:func:`toolqual_utils.views.rate_shown`), else the lower–upper
    bound as a grey bar — never a bar at 100% that only says the judge decides errors.

    Args:
        table: ``tables.error_rate_table`` output (long). Dots take the criterion's colour
            (:data:`toolqual_utils.palette.CRITERION_COLOURS`).
        reference: the paper's Table 5 (``group, criterion, error_rate``); drawn as open diamonds in the
            panel of the group with the same name (``toolbench`` ↔ ``ToolBench``) only.
        min_share: the decided share below which a bound is drawn instead of a rate (see
            :data:`toolqual_utils.views.MIN_DECIDED_SHARE`).
        columns: panels per row.
    """
    if table is None or table.empty:
        return empty_figure(title)
    _require(table, ("group", "criterion", "criterion_label", "n_instances", "n", "n_errors", "n_unscored",
                     "error_rate", "ci_low", "ci_high"), "error_rate_dots")
    groups = _ordered(table["group"], ["all"])
    n_cols = min(columns, len(groups))
    n_rows = math.ceil(len(groups) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.02,
                        vertical_spacing=0.12 / max(n_rows - 1, 1) if n_rows > 1 else 0.1,
                        subplot_titles=[f"{g} ({int(table.loc[table['group'].astype(str) == g, 'n_instances'].iloc[0]):,})"
                                        for g in groups])
    order = list(pd.unique(table["criterion_label"]))
    ref_groups = list(pd.unique(reference["group"].astype(str))) if reference is not None and len(reference) else []
    shown_legend: set[str] = set()
    shown = rate_shown(table, min_share=min_share)
    for index, group in enumerate(groups):
        row, col = index // n_cols + 1, index % n_cols + 1
        part = table.loc[table["group"].astype(str) == group]
        for record, is_rate in zip(part.to_dict("records"), shown.loc[part.index]):
            n, n_all = int(record["n"]), int(record["n_instances"])
            label = record["criterion_label"]
            if is_rate:
                colour = criterion_colour(record["criterion"])
                fig.add_scatter(
                    x=[record["error_rate"]], y=[label], mode="markers", marker={"color": colour, "size": 10},
                    error_x=_error_bars(pd.Series([record["error_rate"]]), pd.Series([record["ci_low"]]),
                                        pd.Series([record["ci_high"]])) | {"color": colour},
                    name="error rate (95% interval)", legendgroup="rate", showlegend=False,
                    hovertemplate=(f"{group} · {label}<br>error rate %{{x:.1%}} ({record['ci_low']:.1%}–"
                                   f"{record['ci_high']:.1%})<br>{record['n_errors']:,} errors of {n:,} scored; "
                                   f"{record['n_unscored']:,} unscored<extra></extra>"),
                    row=row, col=col)
                if "rate" not in shown_legend:  # a neutral legend swatch: the dot's colour is the criterion's
                    fig.add_scatter(x=[None], y=[None], mode="markers", marker={"color": "#555555", "size": 10},
                                    name="error rate, 95% interval (colour = criterion)", legendgroup="rate",
                                    row=row, col=col)
                shown_legend.add("rate")
            elif n_all:
                low = record["n_errors"] / n_all
                high = (record["n_errors"] + record["n_unscored"]) / n_all
                fig.add_bar(
                    x=[max(high - low, 0.004)], base=[low], y=[label], orientation="h",
                    marker={"color": UNSCORED_GREY, "line": {"width": 0}}, width=0.45,
                    name="bound: too few decided (unscored)", legendgroup="bound",
                    showlegend="bound" not in shown_legend,
                    hovertemplate=(f"{group} · {label}<br>only {n:,} of {n_all:,} decided: between "
                                   f"{low:.1%} and {high:.1%} have an error<extra></extra>"),
                    row=row, col=col)
                shown_legend.add("bound")
        paper = _paper_group(group, ref_groups)
        if paper is not None:
            ref = reference.loc[(reference["group"].astype(str) == paper)]
            labels = dict(zip(table["criterion"], table["criterion_label"]))
            ref = ref.loc[ref["criterion"].isin(labels)]
            fig.add_scatter(
                x=ref["error_rate"], y=[labels[c] for c in ref["criterion"]], mode="markers",
                marker=REFERENCE_MARKER, name="paper's Table 5 (its own data and judge)", legendgroup="paper",
                showlegend="paper" not in shown_legend,
                hovertemplate=f"{paper} (paper, different data)<br>%{{y}}: %{{x:.1%}}<extra></extra>",
                row=row, col=col)
            shown_legend.add("paper")
    fig.update_xaxes(range=[-0.02, 1.02], tickformat=".0%", tickvals=[0, 0.5, 1])
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=order)
    fig.update_layout(barmode="overlay", legend={"orientation": "h", "y": -0.08, "x": 0})
    return _layout(fig, title, height=80 + n_rows * (30 + 26 * len(order)) + 40)


def validation_heatmap(
    table: pd.DataFrame, *, metric: str = "f1",
    title: str = "How often the judge is right: F1 per source and criterion (error = positive class)",
) -> go.Figure:
    """Heatmap of one validation metric, one row per source (group) and one column per criterion, with the
    value written in each cell; undefined cells (no error in the reference and none flagged) are blank
    and labelled "undefined".

    Args:
        table: ``tables.validation_table(..., by="source")`` output.
    """
    if table is None or table.empty:
        return empty_figure(title)
    _require(table, ("group", "criterion", "criterion_label", metric, "n_annotated", "support"), "validation_heatmap")
    order = list(pd.unique(table["criterion"]))
    labels = [table.loc[table["criterion"] == c, "criterion_label"].iloc[0] for c in order]
    groups = _ordered(table["group"], ["all"])
    values = table.pivot_table(index="group", columns="criterion", values=metric, aggfunc="first", dropna=False)
    values = values.reindex(index=groups, columns=order)
    support = table.pivot_table(index="group", columns="criterion", values="support", aggfunc="first").reindex(
        index=groups, columns=order)
    sizes = table.groupby("group")["n_annotated"].max().reindex(groups)
    text = [["undefined" if pd.isna(v) else f"{v:.2f}" for v in row] for row in values.to_numpy()]
    fig = go.Figure(go.Heatmap(
        z=values.to_numpy(dtype=float), x=labels, y=[f"{g} ({int(n):,})" for g, n in zip(groups, sizes)],
        text=text, texttemplate="%{text}", colorscale=SEQUENTIAL_SCALE, zmin=0, zmax=1,
        customdata=support.to_numpy(dtype=float), colorbar={"title": {"text": metric.upper() if len(metric) < 4 else metric}},
        hovertemplate="%{y} · %{x}<br>" + metric + " %{text} (%{customdata:.0f} errors in the reference)<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-30)
    return _layout(fig, title, height=max(260, 140 + 34 * len(groups)))
