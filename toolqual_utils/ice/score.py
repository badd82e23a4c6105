"""Per-query ICE scores and their aggregation per instance.

Per query (an instance's demonstration x one test query):

- ``similarity`` — the paper's score: ``1 − Levenshtein(pred, gold) / max(len(pred), len(gold))`` on a
  canonical serialisation of the call lists (see :func:`canonical_calls`), computed with
  ``rapidfuzz.distance.Levenshtein.normalized_similarity`` (unit weights; its normalisation is exactly
  ``1 − distance / max_len``, and two empty strings give 1.0). Range [0, 1], higher is better.
  The gold side is the test bed's written gold calls; for ``order_free`` queries both sides are put
  into a canonical call order first.
- ``strict`` — 1 when the predicted calls match the BFCL-style acceptable values (via
  :func:`toolqual_utils.matching.calls_match`: string normalisation, int-for-float, order-free
  parallel calls when ``order_free``), else 0. Reported beside the similarity, never blended into it.

Per instance: ``ice_score`` = mean similarity over its scored queries, with a two-sided Student-t
interval over queries (``ci_low``, ``ci_high``, clipped to [0, 1]). The queries are a fixed, hand-made
set, so the interval describes how much the mean would move on a comparable set of queries, not
sampling noise of the model (decoding is greedy). With fewer than 2 scored queries the interval is NaN;
with identical scores it has zero width.

Pure module (standard library, numpy, pandas, scipy, rapidfuzz).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein
from scipy import stats as _scipy_stats

from ..matching import calls_match
from ..schema import ICE_COLUMNS, source_of_id
from ..verdicts import Status

#: Per-instance columns: the contract's ICE_COLUMNS plus the strict-match mean and the counts.
INSTANCE_COLUMNS: Final = (
    *ICE_COLUMNS, "strict_score", "n_scored", "n_parse_errors", "n_unscored", "status", "source",
)


def _normalise_value(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return [_normalise_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normalise_value(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 250.0 and 250 serialise alike
    return value


def _call_text(call: Mapping[str, Any]) -> str:
    return json.dumps(
        {"name": call.get("name"), "arguments": _normalise_value(call.get("arguments") or {})},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )


def canonical_calls(calls: Sequence[Mapping[str, Any]], *, order_free: bool = False) -> str:
    """The canonical serialisation scored by :func:`similarity`.

    A JSON list of ``{"arguments": {...}, "name": str}`` with sorted keys, compact separators, runs of
    whitespace inside strings collapsed to one space (and trimmed), and integral floats written as
    integers. With ``order_free`` the calls are sorted by their own serialisation (name first).
    ``[]`` serialises as ``"[]"``.
    """
    parts = [_call_text(c) for c in calls]
    if order_free:
        parts.sort()
    return "[" + ",".join(parts) + "]"


def similarity(predicted: Sequence[Mapping[str, Any]], gold: Sequence[Mapping[str, Any]], *,
               order_free: bool = False) -> float:
    """``1 − Levenshtein / max_len`` of the canonical serialisations; in [0, 1], 1 = identical."""
    return float(Levenshtein.normalized_similarity(
        canonical_calls(predicted, order_free=order_free), canonical_calls(gold, order_free=order_free)
    ))


def strict_match(predicted: Sequence[Mapping[str, Any]], possible_answer: Sequence[Mapping[str, Any]],
                 tools: Any = None, *, order_free: bool = False) -> tuple[bool, list[str]]:
    """BFCL-style strict match: (ok, reasons) — reasons say which call/argument failed."""
    result = calls_match(list(predicted), list(possible_answer), tools, ordered=not order_free)
    return bool(result.ok), list(result.reasons)


def t_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a two-sided Student-t interval, clipped to [0, 1].

    Empty input -> (NaN, NaN, NaN); one value -> (value, NaN, NaN); NaNs are dropped first.
    """
    array = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if array.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(array.mean())
    if array.size < 2:
        return mean, math.nan, math.nan
    sem = float(array.std(ddof=1)) / math.sqrt(array.size)
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df=array.size - 1)) * sem
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def aggregate_instances(per_query: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """One row per instance from the per-query table.

    Args:
        per_query: columns ``instance_id, target_model, testbed_version, status, similarity, strict``
            (``status``: ``ok`` | ``parse_error`` (scored 0) | ``unscored:<reason>`` (excluded)).

    Returns:
        Columns :data:`INSTANCE_COLUMNS`. ``ice_score`` in [0, 1] (higher = better teacher), mean
        similarity over scored queries (ok + parse_error); ``strict_score`` the mean strict match over
        the same queries; ``n_queries`` = queries asked, ``n_scored`` = those in the mean; ``status`` ``ok`` or ``unscored:<reason>``
        when no query could be scored. Empty input -> empty frame with these columns.
    """
    rows = []
    if per_query.empty:
        return pd.DataFrame(columns=list(INSTANCE_COLUMNS))
    for instance_id, group in per_query.groupby("instance_id", sort=False):
        is_unscored = group["status"].map(Status.is_unscored)
        scored = group[~is_unscored]
        unscored = group[is_unscored]
        mean, low, high = t_interval(scored["similarity"].astype(float), confidence)
        strict = float(scored["strict"].astype(float).mean()) if len(scored) else math.nan
        if len(scored):
            status = Status.OK
        elif len(unscored):
            reasons = sorted(set(unscored["status"].astype(str)))
            status = reasons[0] if len(reasons) == 1 else Status.UNSCORED_MIXED
        else:
            status = Status.UNSCORED_NO_QUERIES
        rows.append({
            "instance_id": instance_id,
            "target_model": group["target_model"].iloc[0],
            "testbed_version": group["testbed_version"].iloc[0],
            "n_queries": int(len(group)),
            "ice_score": mean,
            "ci_low": low,
            "ci_high": high,
            "strict_score": strict,
            "n_scored": int(len(scored)),
            "n_parse_errors": int((group["status"] == Status.PARSE_ERROR).sum()),
            "n_unscored": int(len(unscored)),
            "status": status,
            "source": group["source"].iloc[0] if "source" in group else source_of_id(instance_id),
        })
    return pd.DataFrame(rows, columns=list(INSTANCE_COLUMNS))
