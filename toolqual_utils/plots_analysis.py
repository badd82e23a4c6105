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

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import _layout as _base_layout
from .plots import _require, empty_figure

__all__ = [
    "empty_figure",
    "error_rate_bars",
    "validation_metrics_chart",
    "extrinsic_forest",
    "agreement_chart",
]

FIGURE_HEIGHT = 420
#: Marker used for numbers quoted from the paper (drawn on different data: never a bar of ours).
REFERENCE_MARKER = {"symbol": "diamond-open", "size": 11, "line": {"width": 2}, "color": "#444444"}


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
            ``group, criterion, error_rate``; drawn as open diamonds named ``"<group> (paper)"``, never
            as bars, so they cannot be mistaken for results on this data.
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
        for group in _ordered(reference["group"], None):
            part = reference.loc[reference["group"].astype(str) == group]
            part = part.loc[part["criterion"].isin(order)]
            fig.add_scatter(
                x=[labels[c] for c in part["criterion"]], y=part["error_rate"], mode="markers",
                name=f"{group} (paper)", marker=REFERENCE_MARKER,
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
            metric, value``; drawn as open diamonds named ``"<group> (paper)"``.
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
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
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
        for group in _ordered(reference["group"], None):
            for m_index, metric in enumerate(metrics, start=1):
                part = reference.loc[(reference["group"].astype(str) == group) & (reference["metric"] == metric)
                                     & reference["criterion"].isin(order)]
                fig.add_scatter(
                    x=part["value"], y=[labels[c] for c in part["criterion"]], mode="markers",
                    name=f"{group} (paper)", legendgroup=f"ref:{group}", showlegend=m_index == 1,
                    marker=REFERENCE_MARKER,
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
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
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
    fig.update_xaxes(title_text=estimate.replace("_", " "))
    return _layout(fig, title, height=max(FIGURE_HEIGHT - 60, 120 + 38 * len(set_order)))
