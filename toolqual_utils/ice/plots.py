"""Figures for ICE results. Each takes a finished table and returns a plotly figure; nothing is
computed, shown or saved here (candidates to move into ``toolqual_utils/plots.py``). Sources and series
take the colour-blind-safe series colours of :mod:`toolqual_utils.palette`, in the same order (sources
sorted) as the static figure of :func:`toolqual_utils.figures.ice_distribution_figure`."""
from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from ..palette import SERIES_COLOURS


def ice_histogram(histogram: pd.DataFrame, thresholds: Mapping[str, float] | None = None,
                  title: str = "ICE score distribution by source") -> go.Figure:
    """Bars of ``share`` per bin and source (from ``distributions.score_histogram``); optional dashed
    lines at ``thresholds`` (e.g. ``{"top-K cut": 0.71, "bottom-K cut": 0.18}``)."""
    fig = go.Figure()
    for source, part in histogram.groupby("source", sort=True):
        centers = (part["bin_left"] + part["bin_right"]) / 2
        fig.add_bar(x=centers, y=part["share"], name=str(source), width=(part["bin_right"] - part["bin_left"]) * 0.9,
                    customdata=part["n_instances"], hovertemplate="score %{x:.2f}: %{y:.1%} (%{customdata})")
    for label, value in (thresholds or {}).items():
        if value is not None and not math.isnan(value):
            fig.add_vline(x=value, line_dash="dash", annotation_text=label)
    fig.update_layout(title=title, colorway=list(SERIES_COLOURS),
                      barmode="group", xaxis_title="ICE score (mean similarity to gold, 0-1)",
                      yaxis_title="share of instances", yaxis_tickformat=".0%", xaxis_range=[0, 1])
    return fig


def query_difficulty(query_table: pd.DataFrame, title: str = "Mean score per test query") -> go.Figure:
    """Mean similarity and strict match per query (from ``views.query_summary``)."""
    fig = go.Figure()
    fig.add_bar(x=query_table["query_id"], y=query_table["mean_similarity"], name="similarity")
    fig.add_bar(x=query_table["query_id"], y=query_table["mean_strict"], name="strict match")
    fig.update_layout(title=title, colorway=list(SERIES_COLOURS),
                      barmode="group", yaxis_range=[0, 1], yaxis_title="mean over instances")
    return fig


def similarity_vs_strict(per_instance: pd.DataFrame, title: str = "ICE similarity vs strict match") -> go.Figure:
    """One point per instance: ``ice_score`` (x) against ``strict_score`` (y), coloured by source."""
    fig = go.Figure()
    groups = per_instance.groupby("source", sort=True) if "source" in per_instance else [("all", per_instance)]
    for source, part in groups:
        fig.add_scatter(x=part["ice_score"], y=part["strict_score"], mode="markers", name=str(source),
                        text=part["instance_id"], hovertemplate="%{text}<br>ICE %{x:.2f}, strict %{y:.2f}")
    fig.update_layout(title=title, colorway=list(SERIES_COLOURS),
                      xaxis_title="ICE score (similarity)", yaxis_title="strict match rate",
                      xaxis_range=[0, 1], yaxis_range=[0, 1])
    return fig
