"""Adaptive ICE: the scripted-target scenario (savings and overlap), decisions and edge cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolqual_utils.ice.adaptive import (
    AdaptiveConfig, adaptive_select, full_selection, query_order, selection_overlap,
)
from toolqual_utils.ice.scripted import synthetic_scores


def _scripted(scores, ids, calls=None):
    row_of = {iid: i for i, iid in enumerate(ids)}

    def score_batch(pairs):
        if calls is not None:
            calls.append(len(pairs))
        return [float(scores[row_of[iid], q]) for iid, q in pairs]

    return score_batch


@pytest.mark.parametrize("seed", [0, 1])
def test_scripted_target_scenario_saves_40pct_with_95pct_overlap(seed):
    # 300 instances with known teacher quality (bimodal, as ToolAlpaca's Figure 2), 14 queries, top-60.
    scores, quality = synthetic_scores("bimodal", 300, 14, seed=seed)
    ids = [f"inst{i:04d}" for i in range(300)]
    result = adaptive_select(ids, 14, _scripted(scores, ids), AdaptiveConfig(goal="top", k=60, seed=seed))
    full = full_selection(pd.Series(scores.mean(axis=1), index=ids), 60, "top")
    assert result.n_generations_full == 300 * 14
    assert result.saved_fraction >= 0.40
    assert selection_overlap(result.selected, full) >= 0.95
    assert len(result.selected) == 60 and result.table["selected"].sum() == 60
    # every "in" decision is right about the true (full-ICE) bucket
    decided_in = result.table.loc[result.table["decision"] == "in", "instance_id"]
    assert set(decided_in) <= set(full)


def test_clear_separation_stops_after_min_queries_and_bottom_goal():
    n_queries = 10
    scores = np.vstack([np.full((5, n_queries), 0.95), np.full((15, n_queries), 0.05)])
    scores[:, 0] -= 0.01  # some spread so the pooled SD is defined
    ids = [f"i{i}" for i in range(20)]
    batches = []
    top = adaptive_select(ids, n_queries, _scripted(scores, ids, batches), AdaptiveConfig(goal="top", k=5))
    assert set(top.selected) == set(ids[:5])
    assert top.n_generations < 20 * n_queries * 0.6
    assert batches[0] == 20 * 2  # round 0: min_queries per instance
    bottom = adaptive_select(ids, n_queries, _scripted(scores, ids), AdaptiveConfig(goal="bottom", k=15))
    assert set(bottom.selected) == set(ids[5:])
    assert (bottom.table.set_index("instance_id").loc[ids[5:], "mean_score"] < 0.1).all()


def test_hoeffding_bound_is_more_conservative():
    scores, _ = synthetic_scores("uniform", 120, 12, seed=3)
    ids = [f"i{i}" for i in range(120)]
    normal = adaptive_select(ids, 12, _scripted(scores, ids), AdaptiveConfig(k=20, bound="pooled_normal"))
    hoeffding = adaptive_select(ids, 12, _scripted(scores, ids), AdaptiveConfig(k=20, bound="hoeffding"))
    assert hoeffding.n_generations > normal.n_generations
    full = full_selection(pd.Series(scores.mean(axis=1), index=ids), 20)
    assert selection_overlap(hoeffding.selected, full) == 1.0


def test_unscored_queries_are_used_up_not_averaged():
    ids = ["a", "b", "c"]
    values = {"a": 0.9, "b": 0.5, "c": 0.1}

    def flaky(pairs):
        return [None if (iid == "a" and q % 2 == 0) else values[iid] for iid, q in pairs]

    result = adaptive_select(ids, 6, flaky, AdaptiveConfig(k=1, min_queries=2))
    row = result.table.set_index("instance_id").loc["a"]
    assert result.selected == ["a"] and row["mean_score"] == pytest.approx(0.9)
    assert row["n_asked"] >= row["n_scored"]


def test_query_order_seeded_and_input_order_free():
    assert query_order("x", 14, 0) == query_order("x", 14, 0)
    assert sorted(query_order("x", 14, 0)) == list(range(14))
    assert query_order("x", 14, 0) != query_order("x", 14, 1) or query_order("y", 14, 0) != query_order("x", 14, 0)
    scores = np.random.default_rng(0).random((30, 8))
    ids = [f"i{i}" for i in range(30)]
    forward = adaptive_select(ids, 8, _scripted(scores, ids), AdaptiveConfig(k=5))
    backward = adaptive_select(ids[::-1], 8, _scripted(scores[::-1], ids[::-1]), AdaptiveConfig(k=5))
    assert set(forward.selected) == set(backward.selected)


def test_bad_inputs():
    with pytest.raises(ValueError):
        adaptive_select(["a", "a"], 3, lambda p: [0.5] * len(p), AdaptiveConfig(k=1))
    with pytest.raises(ValueError, match="outside"):
        adaptive_select(["a", "b"], 3, lambda p: [1.5] * len(p), AdaptiveConfig(k=1))
    with pytest.raises(ValueError):
        AdaptiveConfig(goal="middle")
    empty = adaptive_select([], 3, lambda p: [], AdaptiveConfig(k=1))
    assert empty.n_generations == 0 and empty.table.empty and empty.selected == []


@pytest.mark.parametrize("goal", ["top", "bottom"])
def test_indifference_zone_saves_more_and_selects_within_epsilon_of_the_cut(goal):
    scores, _ = synthetic_scores("uniform", 300, 14, seed=2)
    ids = [f"u{i:04d}" for i in range(300)]
    full_scores = pd.Series(scores.mean(axis=1), index=ids)
    exact = adaptive_select(ids, 14, _scripted(scores, ids), AdaptiveConfig(goal=goal, k=60, seed=2))
    zone = adaptive_select(ids, 14, _scripted(scores, ids), AdaptiveConfig(goal=goal, k=60, seed=2, epsilon=0.05))
    assert zone.n_generations < exact.n_generations
    # every instance it selects is within epsilon of the K-th best full score (on the goal's side)
    sign = 1.0 if goal == "top" else -1.0
    kth_best = sorted(sign * full_scores, reverse=True)[59]
    assert (sign * full_scores[zone.selected] >= kth_best - 0.05).all()
    assert selection_overlap(zone.selected, full_selection(full_scores, 60, goal)) >= 0.9


def test_epsilon_is_validated():
    with pytest.raises(ValueError, match="epsilon"):
        AdaptiveConfig(epsilon=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        AdaptiveConfig(epsilon=1.0)
