"""ICE score distributions: histograms per source, bimodality, and the cut a chosen K implies.

The paper (Figure 2) found ToolAlpaca's ICE scores bimodal (distinct good and bad teachers) and most
ToolBench instances low. These functions turn a per-instance ICE table into the tables behind such
figures; plots (``toolqual_utils.ice.plots``) draw them.

- Sarle's bimodality coefficient ``BC = (g^2 + 1) / (k + 3 (n−1)^2 / ((n−2)(n−3)))`` with ``g`` the
  bias-corrected sample skewness and ``k`` the bias-corrected excess kurtosis. In [0, 1]; the uniform
  distribution gives 5/9 ≈ 0.555, values above it suggest bimodality (a heuristic, not a test).
- Hartigan's dip test is added when the maintained ``diptest`` package happens to be installed
  (toolqual does not depend on it); otherwise ``dip``/``dip_pvalue`` are NaN.

Pure module (numpy, pandas, scipy).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

#: Sarle's coefficient of a uniform distribution; larger values suggest two modes.
BIMODALITY_THRESHOLD: Final = 5.0 / 9.0

HISTOGRAM_COLUMNS: Final = ("source", "bin_left", "bin_right", "n_instances", "share")
SUMMARY_COLUMNS: Final = (
    "source", "n_instances", "mean_score", "median_score", "sd_score", "bimodality_coefficient",
    "is_bimodal", "dip", "dip_pvalue",
)


def _clean(values: Sequence[float] | pd.Series) -> np.ndarray:
    array = np.asarray(pd.Series(values, dtype=float).dropna(), dtype=float)
    return array


def bimodality_coefficient(values: Sequence[float] | pd.Series) -> float:
    """Sarle's bimodality coefficient (see the module docstring); NaN with fewer than 4 values or
    no spread. NaNs are dropped first."""
    array = _clean(values)
    n = array.size
    if n < 4 or float(np.std(array)) == 0.0:
        return math.nan
    skew = float(_scipy_stats.skew(array, bias=False))
    kurt = float(_scipy_stats.kurtosis(array, fisher=True, bias=False))
    return (skew**2 + 1.0) / (kurt + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


def dip_test(values: Sequence[float] | pd.Series) -> tuple[float, float]:
    """(dip, p-value) from the optional ``diptest`` package; (NaN, NaN) when it is not installed or
    there are fewer than 4 values."""
    array = _clean(values)
    if array.size < 4:
        return math.nan, math.nan
    try:
        import diptest  # optional, not a toolqual dependency
    except ImportError:
        return math.nan, math.nan
    dip, pvalue = diptest.diptest(array)
    return float(dip), float(pvalue)


def _groups(table: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    if by is None or by not in table.columns:
        return [("all", table)]
    return [(str(key), group) for key, group in table.groupby(by, sort=True)]


def score_histogram(table: pd.DataFrame, *, column: str = "ice_score", by: str | None = "source",
                    bins: int = 20) -> pd.DataFrame:
    """Histogram of scores in [0, 1] per group: one row per group x bin.

    Columns :data:`HISTOGRAM_COLUMNS`; ``share`` = ``n_instances`` / group size (scored instances only;
    NaN scores are dropped). The last bin includes 1.0. Empty input -> empty frame with these columns.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for name, group in _groups(table, by):
        values = _clean(group[column]) if column in group else np.array([])
        if values.size == 0:
            continue
        counts, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=edges)
        for left, right, count in zip(edges[:-1], edges[1:], counts):
            rows.append({"source": name, "bin_left": float(left), "bin_right": float(right),
                         "n_instances": int(count), "share": float(count) / values.size})
    return pd.DataFrame(rows, columns=list(HISTOGRAM_COLUMNS))


def distribution_summary(table: pd.DataFrame, *, column: str = "ice_score", by: str | None = "source") -> pd.DataFrame:
    """One row per group: size, mean/median/SD, bimodality coefficient (and dip when available).

    Columns :data:`SUMMARY_COLUMNS`. ``is_bimodal`` = coefficient > 5/9 (None when undefined).
    """
    rows = []
    for name, group in _groups(table, by):
        values = _clean(group[column]) if column in group else np.array([])
        coefficient = bimodality_coefficient(values)
        dip, pvalue = dip_test(values)
        rows.append({
            "source": name,
            "n_instances": int(values.size),
            "mean_score": float(values.mean()) if values.size else math.nan,
            "median_score": float(np.median(values)) if values.size else math.nan,
            "sd_score": float(values.std(ddof=1)) if values.size > 1 else math.nan,
            "bimodality_coefficient": coefficient,
            "is_bimodal": None if math.isnan(coefficient) else bool(coefficient > BIMODALITY_THRESHOLD),
            "dip": dip,
            "dip_pvalue": pvalue,
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def k_thresholds(scores: Sequence[float] | pd.Series, k: int) -> dict[str, float | int]:
    """The cuts that a bucket size K implies.

    Returns ``{"k", "n_instances", "high_threshold", "low_threshold"}``: ``high_threshold`` is the K-th
    highest score (the top-K bucket holds scores >= it), ``low_threshold`` the K-th lowest (the bottom-K
    bucket holds scores <= it). NaN scores are dropped; K is capped at the number of scores; with no
    scores both thresholds are NaN.
    """
    array = np.sort(_clean(scores))
    n = array.size
    k_eff = max(0, min(int(k), n))
    if k_eff == 0:
        return {"k": k_eff, "n_instances": n, "high_threshold": math.nan, "low_threshold": math.nan}
    return {"k": k_eff, "n_instances": n, "high_threshold": float(array[n - k_eff]),
            "low_threshold": float(array[k_eff - 1])}


def bucket_of(scores: pd.Series, k: int, goal: Literal["top", "bottom"] = "top") -> pd.Series:
    """Boolean Series: True for the K instances a full ranking puts in the bucket (ties by position)."""
    values = scores.astype(float).fillna(-math.inf if goal == "top" else math.inf)
    ranked = values.sort_values(ascending=(goal == "bottom"), kind="stable")
    chosen = set(ranked.index[: max(0, int(k))])
    return pd.Series([index in chosen for index in scores.index], index=scores.index)
