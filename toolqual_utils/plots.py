"""Figures built from finished tables.

Every function takes a table computed elsewhere (``toolqual_utils.profile``, ``tables``, ``stats`` ...)
and returns a ``plotly.graph_objects.Figure``. Plots never compute statistics (beyond picking
columns), never show and never save: notebooks display them with ``nb.show_figure(fig)``.

An empty table gives an empty figure with the same title and an "no data" annotation, so a notebook
cell never fails for lack of rows.

Sections: shared helpers · 00 load & profile · (later notebooks add their own sections below).
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .palette import SERIES_COLOURS

__all__ = [
    "empty_figure",
    "instances_per_source",
    "instances_per_file",
    "calls_per_instance",
    "tools_per_instance",
    "parse_failures_by_source",
    "pseudo_call_counts",
    "parameter_type_mix",
]

# --- shared helpers --------------------------------------------------------------------------------

FIGURE_HEIGHT = 380


def _layout(fig: go.Figure, title: str, *, x_title: str = "", y_title: str = "", height: int = FIGURE_HEIGHT,
            top: int = 60) -> go.Figure:
    """The house layout every figure builder finishes with (also used by ``plots_analysis``): traces without
    a colour of their own take the colour-blind-safe series colours of :mod:`toolqual_utils.palette`."""
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        colorway=list(SERIES_COLOURS),
        height=height,
        margin={"l": 60, "r": 20, "t": top, "b": 60},
        legend={"title": {"text": ""}},
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def empty_figure(title: str, message: str = "no data") -> go.Figure:
    """A figure with only a title and a centred message (used when a table has no rows)."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14, "color": "#5f6b7a"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=220)


def _require(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs columns {list(columns)}; missing {missing}")


def _grouped_bars(table: pd.DataFrame, x: str, y: str, group: str, title: str, x_title: str, y_title: str,
                  *, hover_extra: str | None = None) -> go.Figure:
    fig = go.Figure()
    for name, part in table.groupby(group, sort=True):
        customdata = part[[hover_extra]].to_numpy() if hover_extra else None
        template = f"{group}={name}<br>{x_title}=%{{x}}<br>{y_title}=%{{y}}"
        if hover_extra:
            template += f"<br>{hover_extra}=%{{customdata[0]:.2f}}"
        fig.add_bar(x=part[x].astype(str) if part[x].dtype == object else part[x], y=part[y], name=str(name),
                    customdata=customdata, hovertemplate=template + "<extra></extra>")
    fig.update_layout(barmode="group")
    return _layout(fig, title, x_title=x_title, y_title=y_title)


# --- 00 load & profile -----------------------------------------------------------------------------


def instances_per_source(summary: pd.DataFrame) -> go.Figure:
    """Bar chart: instances per source, with how many have gold calls.

    Takes ``profile.source_summary`` (columns source, n_instances, n_with_gold_calls).
    """
    title = "Instances per source"
    if summary.empty:
        return empty_figure(title)
    _require(summary, ("source", "n_instances", "n_with_gold_calls"), "instances_per_source")
    fig = go.Figure()
    fig.add_bar(x=summary["source"], y=summary["n_instances"], name="all instances")
    fig.add_bar(x=summary["source"], y=summary["n_with_gold_calls"], name="with gold calls")
    fig.update_layout(barmode="group")
    return _layout(fig, title, x_title="source", y_title="instances")


def instances_per_file(files: pd.DataFrame) -> go.Figure:
    """Horizontal bars: instances per loaded file, coloured by source. Takes ``profile.file_summary``."""
    title = "Instances per file"
    if files.empty:
        return empty_figure(title)
    _require(files, ("file", "source", "n_instances"), "instances_per_file")
    fig = go.Figure()
    for source, part in files.groupby("source", sort=True):
        fig.add_bar(y=part["file"], x=part["n_instances"], name=str(source), orientation="h")
    fig.update_layout(barmode="stack", yaxis={"autorange": "reversed"})
    height = max(FIGURE_HEIGHT - 120, 60 + 28 * files["file"].nunique())
    return _layout(fig, title, x_title="instances", y_title="", height=height)


def calls_per_instance(distribution: pd.DataFrame) -> go.Figure:
    """Grouped bars: share of each source's instances with k API calls.

    Takes ``profile.calls_per_instance`` (source, value, n_instances, share).
    """
    title = "API calls per instance (instances with gold calls)"
    if distribution.empty:
        return empty_figure(title)
    _require(distribution, ("source", "value", "n_instances", "share"), "calls_per_instance")
    fig = _grouped_bars(distribution, "value", "share", "source", title, "calls in the gold sequence",
                        "share of instances", hover_extra="n_instances")
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(tickformat=".0%")
    return fig


def tools_per_instance(distribution: pd.DataFrame) -> go.Figure:
    """Grouped bars: share of each source's instances offering k tools. Takes ``profile.tools_per_instance``."""
    title = "Tools offered per instance"
    if distribution.empty:
        return empty_figure(title)
    _require(distribution, ("source", "value", "n_instances", "share"), "tools_per_instance")
    fig = _grouped_bars(distribution, "value", "share", "source", title, "tools offered",
                        "share of instances", hover_extra="n_instances")
    fig.update_yaxes(tickformat=".0%")
    return fig


def parse_failures_by_source(failures: pd.DataFrame) -> go.Figure:
    """Bars: argument parse failures per source, labelled with the failure rate.

    Takes ``profile.parse_failures`` (source, n_calls, n_parse_failures, parse_failure_rate).
    """
    title = "Calls whose arguments could not be parsed"
    if failures.empty:
        return empty_figure(title)
    _require(failures, ("source", "n_calls", "n_parse_failures", "parse_failure_rate"), "parse_failures_by_source")
    labels = [
        "" if pd.isna(rate) else f"{rate:.1%} of {n:,}"
        for rate, n in zip(failures["parse_failure_rate"], failures["n_calls"])
    ]
    fig = go.Figure()
    fig.add_bar(x=failures["source"], y=failures["n_parse_failures"], text=labels, textposition="outside",
                name="parse failures", showlegend=False)
    fig = _layout(fig, title, x_title="source", y_title="calls with unparsed arguments")
    fig.update_yaxes(rangemode="tozero")
    return fig


def pseudo_call_counts(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars: pseudo-calls (Finish, getDetails, ...) per name and source.

    Takes ``profile.pseudo_call_counts`` (source, name, n_calls, n_instances).
    """
    title = "Pseudo-calls recorded by the loaders (not API calls)"
    if counts.empty:
        return empty_figure(title, "no pseudo-calls recorded")
    _require(counts, ("source", "name", "n_calls"), "pseudo_call_counts")
    return _grouped_bars(counts, "name", "n_calls", "source", title, "pseudo-call", "occurrences")


def parameter_type_mix(mix: pd.DataFrame) -> go.Figure:
    """Stacked bars: share of each JSON-Schema parameter type per source.

    Takes ``profile.parameter_type_mix`` (source, type, n_parameters, share).
    """
    title = "Parameter types of the offered tools"
    if mix.empty:
        return empty_figure(title)
    _require(mix, ("source", "type", "n_parameters", "share"), "parameter_type_mix")
    fig = go.Figure()
    for kind, part in mix.groupby("type", sort=True):
        fig.add_bar(x=part["source"], y=part["share"], name=str(kind), customdata=part[["n_parameters"]].to_numpy(),
                    hovertemplate=f"type={kind}<br>source=%{{x}}<br>share=%{{y:.1%}}<br>"
                    "parameters=%{customdata[0]}<extra></extra>")
    fig.update_layout(barmode="stack")
    fig = _layout(fig, title, x_title="source", y_title="share of parameters")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig
