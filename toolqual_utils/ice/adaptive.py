"""Adaptive ICE: spend generations only where they can change a top-K / bottom-K selection.

Full ICE asks every test query for every instance (``n_instances x n_queries`` generations). For a
selection goal ("the K best teachers" or "the K worst") most instances are far from the cut after a
few queries. :func:`adaptive_select` asks in rounds: every still-undecided instance answers its next
query (a random query order per instance, seeded), then each instance's bounds on its *full* ICE score
(the mean over all test queries) are updated, and an instance stops being queried once it is
confidently inside or outside the selected bucket.

Bounds on the full mean ``mu_i`` of instance i after ``m`` of its ``N`` queries (scores in [0, 1]):

- **range bound** (always valid): the unseen ``N − m`` scores lie in [0, 1], so
  ``mu_i in [S/N, (S + N − m)/N]`` with ``S`` the sum seen so far.
- a **statistical bound** around the running mean, with a finite-population (sampling without
  replacement) factor, at level ``delta_i = delta / (n_instances x N)`` (a union bound over instances
  and over the at most N looks at each), intersected with the range bound:

  * ``"hoeffding"`` — Hoeffding–Serfling: ``sqrt(rho_m log(2/delta_i) / (2m))``,
    ``rho_m = 1 − (m − 1)/N``. Distribution-free and rigorous, but with 7–14 queries per instance it
    seldom stops early.
  * ``"bernstein"`` — empirical Bernstein–Serfling (Bardenet & Maillard 2015):
    ``sigma_hat sqrt(2 rho_m log(5/delta_i)/m) + kappa log(5/delta_i)/m``, ``kappa = 7/3 + 3/sqrt(2)``.
  * ``"pooled_normal"`` (default) — a normal bound ``z_{1−delta_i/2} sigma sqrt((N − m)/(N − 1)) / sqrt(m)``
    where ``sigma`` = max(pooled within-instance SD over all instances, this instance's own SD,
    ``sigma_floor``). It borrows the spread of per-query scores from every instance (hundreds), which is
    what makes early stopping possible with so few queries; it is approximate (normality of the mean
    of a few scores), not distribution-free. The benchmark (``benchmarks/bench_ice_adaptive.py``)
    measures the resulting overlap with full ICE.

Decision rule (goal ``top``; ``bottom`` works on ``1 − score``): instance i is **in** once fewer than K
others can still beat it by more than ``epsilon`` (``#{j: upper_j > lower_i + epsilon} < K``) and
**out** once at least K others surely beat it by more than ``-epsilon`` (``#{j: lower_j > upper_i −
epsilon} >= K``). With ``epsilon = 0`` (default) this is the exact rule; ``epsilon > 0`` is an
indifference zone: instances whose full scores are within ``epsilon`` of each other near the cut are
not told apart, so every selected instance is (when the bounds hold) within ``epsilon`` of the K-th
best score, and fewer generations are spent on near-ties. The benchmark prints the price: overlap with
full ICE and the score regret (mean full score of the full selection minus that of the adaptive one).
Decided instances are not asked again. An instance whose
queries are exhausted has an exact score. Finally the K selected are the ``in`` instances, then the
best undecided by running mean (ties broken by input order).

Queries that come back unscored (API errors) are used up but left out of the mean, as in full ICE.

Pure module (standard library, numpy, pandas, scipy).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

Goal = Literal["top", "bottom"]
Bound = Literal["pooled_normal", "hoeffding", "bernstein"]
#: ``score_batch([(instance_id, query_index), ...]) -> [score in [0, 1] | None (unscored), ...]``
ScoreBatch = Callable[[list[tuple[str, int]]], Sequence[float | None]]

ADAPTIVE_COLUMNS: Final = (
    "instance_id", "n_asked", "n_scored", "mean_score", "lower", "upper", "decision", "decided_round",
    "selected",
)


@dataclass(frozen=True)
class AdaptiveConfig:
    """Settings of :func:`adaptive_select`.

    Attributes:
        goal: ``"top"`` selects the K highest ICE scores, ``"bottom"`` the K lowest.
        k: size of the selected bucket (1 <= k < n_instances to save anything).
        delta: overall error budget of the bounds (before the union-bound split).
        bound: ``"pooled_normal"`` | ``"hoeffding"`` | ``"bernstein"`` (see the module docstring).
        min_queries: queries every instance answers before any decision (>= 2 for a spread).
        sigma_floor: lower limit on the SD used by ``pooled_normal``.
        epsilon: indifference zone on the ICE scale (0 = exact rule; see the module docstring).
        seed: seeds each instance's query order (with the instance id, so orders do not depend on
            the input order).
    """

    goal: Goal = "top"
    k: int = 10
    delta: float = 0.05
    bound: Bound = "pooled_normal"
    min_queries: int = 2
    sigma_floor: float = 0.05
    seed: int = 0
    epsilon: float = 0.0

    def __post_init__(self) -> None:
        if self.goal not in ("top", "bottom"):
            raise ValueError(f"goal must be 'top' or 'bottom', not {self.goal!r}")
        if self.bound not in ("pooled_normal", "hoeffding", "bernstein"):
            raise ValueError(f"bound must be pooled_normal, hoeffding or bernstein, not {self.bound!r}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, not {self.k}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), not {self.delta}")
        if self.min_queries < 1:
            raise ValueError(f"min_queries must be at least 1, not {self.min_queries}")
        if not 0.0 <= self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), not {self.epsilon}")


@dataclass
class AdaptiveResult:
    """Outcome of an adaptive run.

    Attributes:
        table: one row per instance, columns :data:`ADAPTIVE_COLUMNS`; ``mean_score`` is the mean of
            the scores seen (the full ICE score when all queries were asked); ``lower``/``upper`` bound the
            full score; ``decision`` ``in`` | ``out`` | ``exact`` (all queries asked, undecided until the
            end); ``selected`` marks the K chosen.
        selected: the K selected instance ids, best first (for ``bottom``: lowest first).
        n_generations: generations asked.
        n_generations_full: what full ICE would ask (``n_instances x n_queries``).
        n_rounds: rounds run.
        asked: every (instance_id, query_index, score) asked, in order.
    """

    table: pd.DataFrame
    selected: list[str]
    n_generations: int
    n_generations_full: int
    n_rounds: int
    asked: list[tuple[str, int, float | None]] = field(default_factory=list)

    @property
    def generations_saved(self) -> int:
        return self.n_generations_full - self.n_generations

    @property
    def saved_fraction(self) -> float:
        return self.generations_saved / self.n_generations_full if self.n_generations_full else 0.0


def query_order(instance_id: str, n_queries: int, seed: int) -> list[int]:
    """The seeded random order in which an instance is asked the test queries."""
    digest = int.from_bytes(hashlib.sha256(instance_id.encode("utf-8")).digest()[:8], "big")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, digest])
    return [int(i) for i in rng.permutation(n_queries)]


def _radius(bound: str, m: int, n_total: int, sd: float, sigma: float, delta_i: float) -> float:
    if m == 0:
        return math.inf
    if m >= n_total:
        return 0.0
    if bound == "hoeffding":
        rho = 1.0 - (m - 1) / n_total
        return math.sqrt(rho * math.log(2.0 / delta_i) / (2.0 * m))
    if bound == "bernstein":
        rho = 1.0 - (m - 1) / n_total
        kappa = 7.0 / 3.0 + 3.0 / math.sqrt(2.0)
        log_term = math.log(5.0 / delta_i)
        return sd * math.sqrt(2.0 * rho * log_term / m) + kappa * log_term / m
    z = float(_scipy_stats.norm.ppf(1.0 - delta_i / 2.0))
    fpc = math.sqrt((n_total - m) / (n_total - 1)) if n_total > 1 else 0.0
    return z * sigma * fpc / math.sqrt(m)


def adaptive_select(
    instance_ids: Sequence[str],
    n_queries: int,
    score_batch: ScoreBatch,
    config: AdaptiveConfig,
) -> AdaptiveResult:
    """Select the top-K (or bottom-K) instances by ICE score with as few generations as the bounds allow.

    Args:
        instance_ids: unique ids of the instances to rank.
        n_queries: number of test queries (full ICE asks all of them).
        score_batch: scores a batch of ``(instance_id, query_index)`` pairs (one round); returns a score
            in [0, 1] or None (unscored) per pair, in order.
        config: goal, K, bound and seed.

    Returns:
        :class:`AdaptiveResult`. Empty input -> empty table, no generations.

    Raises:
        ValueError: duplicate ids, ``n_queries < 1``, or a score outside [0, 1].
    """
    ids = list(instance_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("instance_ids must be unique")
    if n_queries < 1:
        raise ValueError("n_queries must be at least 1")
    n = len(ids)
    k = min(config.k, n)
    orders = {iid: query_order(iid, n_queries, config.seed) for iid in ids}
    scores: dict[str, list[float]] = {iid: [] for iid in ids}
    n_asked = dict.fromkeys(ids, 0)
    n_unscored = dict.fromkeys(ids, 0)
    decision: dict[str, str | None] = dict.fromkeys(ids, None)
    decided_round: dict[str, int | None] = dict.fromkeys(ids, None)
    delta_i = config.delta / max(1, n * n_queries)
    asked: list[tuple[str, int, float | None]] = []
    sign = 1.0 if config.goal == "top" else -1.0
    eps = float(config.epsilon)
    rounds = 0

    def ask(pairs: list[tuple[str, int]]) -> None:
        if not pairs:
            return
        results = list(score_batch(pairs))
        if len(results) != len(pairs):
            raise ValueError(f"score_batch returned {len(results)} scores for {len(pairs)} pairs")
        for (iid, qi), score in zip(pairs, results):
            n_asked[iid] += 1
            if score is None or (isinstance(score, float) and math.isnan(score)):
                n_unscored[iid] += 1
                asked.append((iid, qi, None))
                continue
            score = float(score)
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"score {score} for {iid} query {qi} is outside [0, 1]")
            scores[iid].append(score)
            asked.append((iid, qi, score))

    def bounds() -> dict[str, tuple[float, float, float]]:
        """(mean, lower, upper) of each instance's full score, on the goal's scale (higher = wanted)."""
        spread_num = spread_den = 0.0
        for values in scores.values():
            if len(values) >= 2:
                spread_num += (len(values) - 1) * float(np.var(values, ddof=1))
                spread_den += len(values) - 1
        pooled = math.sqrt(spread_num / spread_den) if spread_den else 0.5
        out = {}
        for iid in ids:
            values = scores[iid]
            m = len(values)
            n_total = n_queries - n_unscored[iid]  # the full score averages the scorable queries only
            if m == 0:
                out[iid] = (math.nan, 0.0, 1.0) if sign > 0 else (math.nan, -1.0, 0.0)
                continue
            total = float(sum(values))
            mean = total / m
            unseen = max(0, n_total - m)
            low_range, high_range = total / (m + unseen), (total + unseen) / (m + unseen)
            sd = float(np.std(values, ddof=1)) if m >= 2 else 0.5
            sigma = max(pooled, sd if m >= 2 else pooled, config.sigma_floor)
            radius = _radius(config.bound, m, m + unseen, sd, sigma, delta_i)
            low, high = max(low_range, mean - radius), min(high_range, mean + radius)
            if unseen == 0:
                low = high = mean
            out[iid] = (mean, low, high) if sign > 0 else (-mean, -high, -low)
        return out

    def decide(current: dict[str, tuple[float, float, float]]) -> None:
        lows = np.array([current[i][1] for i in ids])
        highs = np.array([current[i][2] for i in ids])
        for index, iid in enumerate(ids):
            if decision[iid] is not None:
                continue
            others_high = np.delete(highs, index)
            others_low = np.delete(lows, index)
            if int((others_high > lows[index] + eps).sum()) < k:
                decision[iid], decided_round[iid] = "in", rounds
            elif int((others_low > highs[index] - eps).sum()) >= k:
                decision[iid], decided_round[iid] = "out", rounds

    def remaining(iid: str) -> int:
        return n_queries - n_asked[iid]

    # Round 0: every instance answers min_queries queries (a first spread estimate).
    if n:
        first = min(config.min_queries, n_queries)
        ask([(iid, orders[iid][j]) for iid in ids for j in range(first)])
        rounds = 1
        current = bounds()
        decide(current)
        while True:
            active = [iid for iid in ids if decision[iid] is None and remaining(iid) > 0]
            if not active:
                break
            ask([(iid, orders[iid][n_asked[iid]]) for iid in active])
            rounds += 1
            current = bounds()
            decide(current)
    else:
        current = {}

    for iid in ids:
        if decision[iid] is None:
            decision[iid] = "exact"
    def goal_mean(index: int) -> float:
        value = current[ids[index]][0]
        return -math.inf if math.isnan(value) else value

    order = sorted(range(n), key=lambda index: (decision[ids[index]] != "in", -goal_mean(index), index))
    selected = [ids[index] for index in order[:k]]
    chosen = set(selected)
    rows = []
    for iid in ids:
        mean, low, high = current[iid]
        if sign < 0:
            mean, low, high = -mean, -high, -low
        rows.append({
            "instance_id": iid,
            "n_asked": n_asked[iid],
            "n_scored": len(scores[iid]),
            "mean_score": mean,
            "lower": low,
            "upper": high,
            "decision": decision[iid],
            "decided_round": decided_round[iid],
            "selected": iid in chosen,
        })
    return AdaptiveResult(
        table=pd.DataFrame(rows, columns=list(ADAPTIVE_COLUMNS)),
        selected=selected,
        n_generations=len(asked),
        n_generations_full=n * n_queries,
        n_rounds=rounds,
        asked=asked,
    )


def full_selection(scores: pd.Series, k: int, goal: Goal = "top") -> list[str]:
    """The K ids a full ICE run selects (``scores`` indexed by instance id; ties by input order)."""
    values = scores.astype(float)
    if goal == "bottom":
        values = -values
    order = sorted(range(len(values)), key=lambda i: (-values.iloc[i], i))
    return [str(values.index[i]) for i in order[: min(k, len(values))]]


def selection_overlap(selected: Sequence[str], reference: Sequence[str]) -> float:
    """Share of ``reference`` that ``selected`` also contains (|A ∩ B| / |B|); 1.0 for two empty sets."""
    if not reference:
        return 1.0
    return len(set(selected) & set(reference)) / len(set(reference))
