"""Adaptive vs full ICE for top-K / bottom-K selection on a scripted target (no model, no network).

A scripted in-process target gives each (instance, query) a score from a seeded matrix with known
teacher quality (``toolqual_utils.ice.scripted.synthetic_scores``: quality + query difficulty + noise).
Full ICE asks every query; adaptive ICE (``toolqual_utils.ice.adaptive``) asks in rounds and stops
once an instance is confidently in or out of the bucket. Printed per scenario, goal and bound:
generations used by each, percent saved, and the overlap of the selected sets (|A ∩ F| / K).
Target (issue "ICE engine"): >= 40% fewer generations with >= 95% overlap.

    .venv/bin/python benchmarks/bench_ice_adaptive.py [--instances 300] [--queries 14] [--k 60] [--seeds 3]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from toolqual_utils.ice.adaptive import AdaptiveConfig, adaptive_select, full_selection, selection_overlap
from toolqual_utils.ice.scripted import synthetic_scores


def run_one(kind: str, goal: str, bound: str, n: int, n_queries: int, k: int, seed: int,
            epsilon: float = 0.0) -> dict:
    scores, _quality = synthetic_scores(kind, n, n_queries, seed=seed)
    ids = [f"inst{i:04d}" for i in range(n)]
    row_of = {iid: i for i, iid in enumerate(ids)}

    def scripted_target(pairs):
        return [float(scores[row_of[iid], q]) for iid, q in pairs]

    started = time.perf_counter()
    result = adaptive_select(ids, n_queries, scripted_target,
                             AdaptiveConfig(goal=goal, k=k, bound=bound, seed=seed, epsilon=epsilon))
    elapsed = time.perf_counter() - started
    full_scores = pd.Series(scores.mean(axis=1), index=ids)
    full = full_selection(full_scores, k, goal)
    sign = 1.0 if goal == "top" else -1.0
    regret = max(0.0, sign * (full_scores[full].mean() - full_scores[result.selected].mean()))  # >= 0 but for rounding
    return {
        "scenario": kind, "goal": goal, "bound": bound, "epsilon": epsilon, "seed": seed, "regret": regret,
        "full_generations": n * n_queries, "adaptive_generations": result.n_generations,
        "saved_pct": 100 * result.saved_fraction, "overlap_pct": 100 * selection_overlap(result.selected, full),
        "rounds": result.n_rounds, "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--queries", type=int, default=14)
    parser.add_argument("--k", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epsilons", default="0.02,0.05",
                        help="indifference zones also run with the default bound (comma-separated; '' for none)")
    args = parser.parse_args()
    epsilons = [float(x) for x in args.epsilons.split(",") if x.strip()]
    settings = [(bound, 0.0) for bound in ("pooled_normal", "bernstein", "hoeffding")]
    settings += [("pooled_normal", eps) for eps in epsilons]
    rows = [
        run_one(kind, goal, bound, args.instances, args.queries, args.k, seed, epsilon)
        for kind in ("bimodal", "skewed_low", "uniform")
        for goal in ("top", "bottom")
        for bound, epsilon in settings
        for seed in range(args.seeds)
    ]
    table = pd.DataFrame(rows)
    summary = (table.groupby(["scenario", "goal", "bound", "epsilon"], sort=False)
               .agg(full=("full_generations", "mean"), adaptive=("adaptive_generations", "mean"),
                    saved_pct=("saved_pct", "mean"), min_overlap_pct=("overlap_pct", "min"),
                    mean_overlap_pct=("overlap_pct", "mean"), max_regret=("regret", "max"),
                    seconds=("seconds", "mean"))
               .reset_index())
    summary["meets_target"] = (summary["saved_pct"] >= 40) & (summary["min_overlap_pct"] >= 95)
    print(f"{args.instances} instances x {args.queries} queries, K = {args.k}, {args.seeds} seeds per row "
          "(scripted in-process target, not a model)")
    print("regret = mean full ICE score of the full selection minus that of the adaptive selection "
          "(0 = as good; epsilon bounds it when the bounds hold)")
    with pd.option_context("display.width", 180):
        print(summary.to_string(index=False, formatters={
            "full": "{:.0f}".format, "adaptive": "{:.0f}".format, "saved_pct": "{:.1f}".format,
            "min_overlap_pct": "{:.1f}".format, "mean_overlap_pct": "{:.1f}".format,
            "max_regret": "{:.4f}".format, "seconds": "{:.2f}".format}))


if __name__ == "__main__":
    main()
