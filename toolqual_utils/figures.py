"""Static figures for papers (matplotlib + seaborn), exported as PDF and PNG by ``toolqual report --figures DIR``.

The interactive pages draw with plotly; a paper needs vector figures with the same content and the same
colours. Each builder takes a *finished* table (the same one the page's plotly figure or table shows)
and returns a ``matplotlib.figure.Figure`` (or None when there is nothing to draw); :func:`save_figure`
writes it. Notebooks call them through ``nb.export_figure(name, builder, table)``, which does nothing
unless ``--figures`` was given, so an ordinary render never imports matplotlib.

- :func:`error_rate_figure`: error rate per criterion with its 95% interval, one panel per group;
  where the judge decided too few instances, the lower–upper bound as a grey hatched bar instead of a
  rate (the same rule as the pages, :data:`toolqual_utils.views.MIN_DECIDED_SHARE`).
- :func:`ice_distribution_figure`: ICE score distribution per source (seaborn ``histplot``) with the
  cuts of the high-/low-ICE subsets.
- :func:`validation_matrix_figure`: the judge-validation matrix, F1 per source and criterion (seaborn
  ``heatmap``, cividis: readable with colour blindness).
- :func:`forest_figure`: the Table 6 forest plot, pass rate per fine-tune set with its interval, one
  panel per benchmark, the paper's numbers as open diamonds.

Colours come from :mod:`toolqual_utils.palette`: the six criteria have the same colours here as on every
page; unscored is always the same grey. Figures are built with matplotlib's object API (no pyplot, no
global state, no display): safe inside a notebook kernel or a server.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .palette import (
    MATPLOTLIB_SEQUENTIAL, REFERENCE_COLOUR, UNSCORED_GREY, criterion_colour, series_colour,
)

__all__ = ["save_figure", "error_rate_figure", "ice_distribution_figure", "validation_matrix_figure",
           "forest_figure"]

#: Width of a single-column figure in a two-column paper, and of a full-width one (inches).
COLUMN_WIDTH = 3.4
FULL_WIDTH = 7.0


def _style(grid: bool = True) -> Any:
    """seaborn's paper context and white (grid) style, as a context manager (no global matplotlib state changed)."""
    import contextlib

    import seaborn as sns

    stack = contextlib.ExitStack()
    stack.enter_context(sns.axes_style("whitegrid" if grid else "white", {"grid.color": "#e5e7eb"}))
    stack.enter_context(sns.plotting_context("paper", font_scale=1.0))
    return stack


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Any, folder: str | Path, name: str, *, dpi: int = 200) -> list[Path]:
    """Write ``figure`` as ``folder/name.pdf`` (vector) and ``folder/name.png`` (``dpi``); returns the paths.

    The PDF carries no creation date, so the same figure gives the same bytes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pdf, png = folder / f"{name}.pdf", folder / f"{name}.png"
    figure.savefig(pdf, metadata={"CreationDate": None, "Creator": "toolqual"})
    figure.savefig(png, dpi=dpi, metadata={"Software": "toolqual"})
    return [pdf, png]


def _paper_group(group: str, names: Sequence[str]) -> str | None:
    key = str(group).lower().replace("-", "").replace("_", "")
    return next((n for n in names if str(n).lower().replace("-", "").replace("_", "") == key), None)


def error_rate_figure(
    table: pd.DataFrame, reference: pd.DataFrame | None = None, *, groups: Sequence[str] | None = None,
    min_share: float | None = None, columns: int = 3, title: str | None = None,
) -> Any:
    """Error rate per criterion with its interval, one panel per group (bars in the criterion colours).

    Args:
        table: ``tables.error_rate_table`` output (long).
        reference: the paper's Table 5 (``extrinsic.read_reference_table(5)``): open diamonds in the panel
            of the group of the same name.
        groups: the groups to draw (default all, ``all`` first).
        min_share: decided share below which a bound is drawn (default ``views.MIN_DECIDED_SHARE``).
        columns: panels per row.

    Returns:
        A matplotlib figure, or None for an empty table.
    """
    from .views import MIN_DECIDED_SHARE, rate_shown

    if table is None or table.empty:
        return None
    min_share = MIN_DECIDED_SHARE if min_share is None else min_share
    present = list(pd.unique(table["group"].astype(str)))
    chosen = list(groups) if groups else (["all"] if "all" in present else []) + [g for g in present if g != "all"]
    order = list(pd.unique(table["criterion"]))
    labels = dict(zip(table["criterion"], table["criterion_label"]))
    n_cols = min(columns, len(chosen))
    n_rows = math.ceil(len(chosen) / n_cols)
    ref_names = list(pd.unique(reference["group"].astype(str))) if reference is not None and len(reference) else []
    shown = dict(zip(zip(table["group"].astype(str), table["criterion"]), rate_shown(table, min_share=min_share)))
    with _style():
        fig = _figure(FULL_WIDTH, 0.4 + n_rows * (0.3 + 0.22 * len(order)))
        axes = fig.subplots(n_rows, n_cols, sharex=True, sharey=True, squeeze=False)
        for index, ax in enumerate(axes.flat):
            if index >= len(chosen):
                ax.set_visible(False)
                continue
            group = chosen[index]
            part = table.loc[table["group"].astype(str) == group].set_index("criterion").reindex(order)
            y = list(range(len(order)))
            for position, criterion in zip(y, order):
                row = part.loc[criterion]
                n, n_all = int(row["n"]), int(row["n_instances"])
                if shown.get((group, criterion), False):
                    rate = float(row["error_rate"])
                    err = [[max(rate - float(row["ci_low"]), 0)], [max(float(row["ci_high"]) - rate, 0)]]
                    ax.barh(position, rate, color=criterion_colour(criterion), height=0.65, xerr=err,
                            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"})
                elif n_all:
                    low = row["n_errors"] / n_all
                    high = (row["n_errors"] + row["n_unscored"]) / n_all
                    ax.barh(position, max(high - low, 0.004), left=low, color=UNSCORED_GREY, height=0.4, hatch="///",
                            edgecolor="white", linewidth=0)
            paper = _paper_group(group, ref_names)
            if paper is not None:
                ref = reference.loc[(reference["group"].astype(str) == paper) & reference["criterion"].isin(order)]
                ax.scatter(ref["error_rate"], [order.index(c) for c in ref["criterion"]], marker="D", s=18,
                           facecolors="none", edgecolors=REFERENCE_COLOUR, linewidths=0.9, zorder=3)
            n_group = int(part["n_instances"].dropna().iloc[0]) if part["n_instances"].notna().any() else 0
            ax.set_title(f"{group} ({n_group:,})", fontsize=8)
            ax.set_yticks(y, [labels[c] for c in order], fontsize=7)
            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(_percent_formatter())
            ax.tick_params(axis="x", labelsize=7)
        axes[0][0].invert_yaxis()
        for column in range(n_cols):   # the lowest drawn panel of each column carries the x labels
            last_row = max(r for r in range(n_rows) if r * n_cols + column < len(chosen))
            axes[last_row][column].tick_params(axis="x", labelbottom=True)
        handles = _legend_handles(with_paper=bool(ref_names), min_share=min_share)
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7, frameon=False)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1, decimals=0)


def _legend_handles(*, with_paper: bool, min_share: float) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#777777", label="error rate, 95% interval (colour = criterion)"),
               Patch(facecolor=UNSCORED_GREY, hatch="///", edgecolor="white",
                     label="bound: too few decided (unscored)")]
    if with_paper:
        handles.append(Line2D([], [], marker="D", linestyle="none", markerfacecolor="none",
                              markeredgecolor=REFERENCE_COLOUR, label="paper's Table 5"))
    return handles


def ice_distribution_figure(
    per_instance: pd.DataFrame, cuts: Mapping[str, Any] | None = None, *, bins: int = 20,
    title: str | None = None,
) -> Any:
    """ICE score distribution per source (share of the source's scored instances per bin), with the
    high-/low-ICE cuts as dashed lines.

    Args:
        per_instance: per-instance ICE results (``ice_score``, optional ``source`` and ``status``; only
            ``status == "ok"`` rows are drawn).
        cuts: ``ice.distributions.k_thresholds`` output (``k``, ``high_threshold``, ``low_threshold``).

    Returns:
        A matplotlib figure, or None when no instance was scored.
    """
    import seaborn as sns

    if per_instance is None or per_instance.empty:
        return None
    frame = per_instance
    if "status" in frame:
        frame = frame.loc[frame["status"].astype(str) == "ok"]
    frame = frame.assign(ice_score=pd.to_numeric(frame["ice_score"], errors="coerce")).dropna(subset=["ice_score"])
    if frame.empty:
        return None
    if "source" not in frame:
        frame = frame.assign(source="all")
    sources = sorted(frame["source"].astype(str).unique())
    with _style():
        fig = _figure(COLUMN_WIDTH * 1.4, 2.4)
        ax = fig.subplots()
        sns.histplot(data=frame, x="ice_score", hue="source", hue_order=sources, stat="proportion",
                     common_norm=False, bins=bins, binrange=(0, 1), element="step", fill=False, ax=ax,
                     palette=[series_colour(i) for i in range(len(sources))], linewidth=1.1)
        for key, style in (("high_threshold", "--"), ("low_threshold", ":")):
            value = (cuts or {}).get(key)
            if value is not None and not pd.isna(value):
                ax.axvline(float(value), color=REFERENCE_COLOUR, linestyle=style, linewidth=0.9)
                ax.text(float(value), ax.get_ylim()[1] * 0.98,
                        f" {'top' if key.startswith('high') else 'bottom'}-{(cuts or {}).get('k', '')}",
                        fontsize=6, va="top", color=REFERENCE_COLOUR)
        ax.set_xlim(0, 1)
        ax.set_xlabel("ICE score (mean similarity to gold)")
        ax.set_ylabel("share of instances")
        ax.yaxis.set_major_formatter(_percent_formatter())
        if title:
            ax.set_title(title, fontsize=9)
    return fig


def validation_matrix_figure(
    by_source: pd.DataFrame, pooled: pd.DataFrame | None = None, *, metric: str = "f1",
    criteria: Sequence[str] | None = None, title: str | None = None,
) -> Any:
    """The judge-validation matrix: one metric (default F1, error = positive class) per source (rows, the
    pooled ``all`` first when given) and criterion (columns), written in each cell; undefined cells (no
    error in the reference labels and none flagged) are left blank and marked ``–``.

    Args:
        by_source: ``tables.validation_table(..., by="source")`` output.
        pooled: ``tables.validation_table(...)`` (pooled) of the same judge, drawn as the first row.

    Returns:
        A matplotlib figure, or None for an empty table.
    """
    import numpy as np
    import seaborn as sns

    if by_source is None or by_source.empty:
        return None
    frames = ([pooled.assign(group="all")] if pooled is not None and len(pooled) else []) + [by_source]
    table = pd.concat(frames, ignore_index=True)
    order = list(criteria) if criteria else list(pd.unique(table["criterion"]))
    labels = dict(zip(table["criterion"], table["criterion_label"]))
    groups = list(pd.unique(table["group"].astype(str)))
    values = table.pivot_table(index="group", columns="criterion", values=metric, aggfunc="first", dropna=False)
    values = values.reindex(index=groups, columns=order).astype(float)
    sizes = table.groupby("group")["n_annotated"].max().reindex(groups)
    annotations = np.array([["–" if pd.isna(v) else f"{v:.2f}" for v in row] for row in values.to_numpy()])
    with _style(grid=False):
        fig = _figure(FULL_WIDTH, 0.9 + 0.32 * len(groups))
        ax = fig.subplots()
        sns.heatmap(values, ax=ax, vmin=0, vmax=1, cmap=MATPLOTLIB_SEQUENTIAL,
                    annot=annotations, fmt="", annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white",
                    cbar_kws={"label": metric.upper() if len(metric) <= 3 else metric, "shrink": 0.8},
                    mask=values.isna())
        for (i, j), text in np.ndenumerate(annotations):
            if text == "–":
                ax.text(j + 0.5, i + 0.5, "–", ha="center", va="center", fontsize=7, color="#6b7280")
        ax.set_xticks([k + 0.5 for k in range(len(order))], [labels[c] for c in order], rotation=30, ha="right",
                      fontsize=7)
        ax.set_yticks([k + 0.5 for k in range(len(groups))], [f"{g} ({int(n):,})" for g, n in zip(groups, sizes)],
                      rotation=0, fontsize=7)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if title:
            ax.set_title(title, fontsize=9)
    return fig


def forest_figure(
    table: pd.DataFrame, *, label_names: Mapping[str, str] | None = None, reference_origin: str = "paper",
    title: str | None = None,
) -> Any:
    """The Table 6 forest plot: pass rate per fine-tune set with its interval, one panel per benchmark; the
    paper's rows as open diamonds, other origins (your runs) as filled circles in the series colours.

    Args:
        table: ``extrinsic.extrinsic_table`` output (possibly several origins concatenated).
        label_names: display names of the fine-tune sets (``selection.RECIPE_LABELS``).

    Returns:
        A matplotlib figure, or None for an empty table.
    """
    from matplotlib.lines import Line2D

    if table is None or table.empty:
        return None
    names = dict(label_names or {})
    frame = table.assign(label=table["fine_tune_set"].map(lambda s: names.get(s, s)))
    benchmarks = list(pd.unique(frame["benchmark"].astype(str)))
    sets = list(pd.unique(frame["label"].astype(str)))
    origins = list(pd.unique(frame["origin"].astype(str))) if "origin" in frame else [reference_origin]
    others = [o for o in origins if o != reference_origin]
    offsets = {o: (k - (len(origins) - 1) / 2) * 0.22 for k, o in enumerate(origins)}
    with _style():
        fig = _figure(FULL_WIDTH if len(benchmarks) > 1 else COLUMN_WIDTH * 1.5, 0.8 + 0.28 * len(sets))
        axes = fig.subplots(1, len(benchmarks), sharey=True, squeeze=False)[0]
        for ax, benchmark in zip(axes, benchmarks):
            part = frame.loc[frame["benchmark"].astype(str) == benchmark]
            for origin in origins:
                rows = part.loc[part["origin"].astype(str) == origin] if "origin" in part else part
                if rows.empty:
                    continue
                y = [sets.index(s) + offsets[origin] for s in rows["label"].astype(str)]
                rate = rows["pass_rate"].astype(float)
                err = [(rate - rows["ci_low"].astype(float)).clip(lower=0).fillna(0),
                       (rows["ci_high"].astype(float) - rate).clip(lower=0).fillna(0)]
                is_paper = origin == reference_origin
                colour = REFERENCE_COLOUR if is_paper else series_colour(others.index(origin))
                ax.errorbar(rate, y, xerr=err, fmt="D" if is_paper else "o", markersize=4,
                            markerfacecolor="none" if is_paper else colour, markeredgecolor=colour, ecolor=colour,
                            elinewidth=0.9, capsize=2)
            ax.set_title(benchmark, fontsize=8)
            ax.set_xlabel("pass rate (95% interval)", fontsize=7)
            ax.xaxis.set_major_formatter(_percent_formatter())
            ax.tick_params(labelsize=7)
        axes[0].set_yticks(range(len(sets)), sets)
        axes[0].invert_yaxis()
        handles = [Line2D([], [], marker="D" if o == reference_origin else "o", linestyle="none",
                          markerfacecolor="none" if o == reference_origin else series_colour(others.index(o)),
                          markeredgecolor=REFERENCE_COLOUR if o == reference_origin else series_colour(others.index(o)),
                          label="paper (Table 6)" if o == reference_origin else o) for o in origins]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7, frameon=False)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig

