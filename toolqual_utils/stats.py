"""Intervals, classification metrics, agreement and paired tests.

Pure module: standard library, numpy, pandas, scipy and statsmodels only.

Conventions used throughout:

- Proportion intervals come from :func:`statsmodels.stats.proportion.proportion_confint`; the method
  names here are ``"wald"`` (normal approximation, the one the paper's Table 6 uses), ``"wilson"``
  (score interval, the default for error rates) and ``"clopper_pearson"`` (exact, conservative).
- Classification metrics treat **"has an error"** (label ``0``) as the positive class, as the paper's
  Table 4 does: recall is the share of real errors the judge catches.
- Undefined quantities (an empty sample, a precision with no predicted errors, a kappa when both raters
  gave one constant label) are ``NaN``, never an exception and never a silent 0.
- Labels are 1 (criterion holds), 0 (error) or missing (``None``/``NaN``: unscored). Missing labels are
  dropped pairwise before any metric and counted apart.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

# scipy and statsmodels are imported where they are used: together they take most of a second to import,
# which every command would otherwise pay at start (the judge and check commands compute no interval).


def proportion_confint(*args: Any, **kwargs: Any):
    from statsmodels.stats.proportion import proportion_confint as confint

    return confint(*args, **kwargs)


def confint_proportions_2indep(*args: Any, **kwargs: Any):
    from statsmodels.stats.proportion import confint_proportions_2indep as confint

    return confint(*args, **kwargs)


def _sm_mcnemar(*args: Any, **kwargs: Any):
    from statsmodels.stats.contingency_tables import mcnemar

    return mcnemar(*args, **kwargs)


def _normal_sf(z: float) -> float:
    from scipy import stats

    return float(stats.norm.sf(z))

IntervalMethod = Literal["wald", "wilson", "clopper_pearson"]
INTERVAL_METHODS: Final = ("wald", "wilson", "clopper_pearson")
_STATSMODELS_METHOD: Final = {"wald": "normal", "wilson": "wilson", "clopper_pearson": "beta"}

#: The positive class of every classification metric: label 0 = "the instance has an error".
ERROR_LABEL: Final = 0

__all__ = [
    "INTERVAL_METHODS",
    "ERROR_LABEL",
    "proportion_interval",
    "proportion_summary",
    "rate_interval",
    "bootstrap_ci",
    "paired_bootstrap_diff",
    "classification_metrics",
    "metrics_from_counts",
    "confusion_counts",
    "cohen_kappa",
    "pabak",
    "agreement_summary",
    "mcnemar_test",
    "two_proportion_test",
]


# --- proportions ------------------------------------------------------------------------------------


def _check_method(method: str) -> str:
    if method not in _STATSMODELS_METHOD:
        raise ValueError(f"unknown interval method {method!r}; expected one of {', '.join(INTERVAL_METHODS)}")
    return _STATSMODELS_METHOD[method]


def proportion_interval(
    successes: float, n: float, *, method: IntervalMethod = "wilson", alpha: float = 0.05
) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` confidence interval for a proportion ``successes / n``.

    Args:
        successes: count of "successes" (e.g. instances with an error); a non-integer count (a rate
            times n) is accepted for the Wald and Wilson intervals.
        n: number of trials.
        method: ``"wald"`` (normal approximation, clipped to [0, 1]), ``"wilson"`` or
            ``"clopper_pearson"``.
        alpha: 1 - confidence level.

    Returns:
        ``(low, high)`` in [0, 1]; ``(nan, nan)`` when ``n`` is 0 or missing.

    Example:
        >>> [round(x, 2) for x in proportion_interval(48, 100, method="wald")]
        [0.38, 0.58]
    """
    sm_method = _check_method(method)
    if n is None or (isinstance(n, float) and math.isnan(n)) or n <= 0:
        return (math.nan, math.nan)
    if successes is None or (isinstance(successes, float) and math.isnan(successes)):
        return (math.nan, math.nan)
    if successes < 0 or successes > n:
        raise ValueError(f"successes must lie in [0, n]; got {successes} of {n}")
    low, high = proportion_confint(successes, n, alpha=alpha, method=sm_method)
    return (float(max(0.0, low)), float(min(1.0, high)))


def proportion_summary(
    successes: int, n: int, *, method: IntervalMethod = "wilson", alpha: float = 0.05
) -> dict[str, Any]:
    """Point estimate and interval as a record.

    Returns:
        ``{"n", "successes", "rate", "ci_low", "ci_high", "ci_method"}``; ``rate`` is NaN when n is 0.
    """
    low, high = proportion_interval(successes, n, method=method, alpha=alpha)
    rate = successes / n if n else math.nan
    return {"n": int(n), "successes": successes, "rate": rate, "ci_low": low, "ci_high": high, "ci_method": method}


def rate_interval(
    rate: float, n: float, *, method: IntervalMethod = "wald", alpha: float = 0.05
) -> tuple[float, float]:
    """Interval for a published rate with known ``n`` (aggregate results: ``successes = rate * n``).

    Default ``"wald"`` because that is what the paper's Table 6 reports. ``n`` missing or 0 gives
    ``(nan, nan)``.
    """
    if rate is None or n is None or pd.isna(rate) or pd.isna(n) or n <= 0:
        return (math.nan, math.nan)
    return proportion_interval(float(rate) * float(n), float(n), method=method, alpha=alpha)


# --- bootstrap --------------------------------------------------------------------------------------


def bootstrap_ci(
    *arrays: Sequence[Any] | np.ndarray,
    statistic: Callable[..., float],
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap interval, resampling *items* (rows shared by all ``arrays``).

    With two or more arrays the same resampled indices are applied to each, which is the paired
    bootstrap (e.g. judge labels and expert labels of the same instances, or two models' outcomes on
    the same test items). Resamples whose statistic is NaN (e.g. a precision with no predicted
    errors) are dropped; their number is reported.

    Args:
        arrays: one or more equal-length sequences.
        statistic: ``statistic(*resampled_arrays) -> float``.
        n_resamples: number of bootstrap resamples.
        alpha: 1 - confidence level.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same interval.

    Returns:
        ``{"estimate", "ci_low", "ci_high", "n", "n_resamples", "n_undefined"}``; all NaN (and n 0)
        for empty input.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    columns = [np.asarray(a) for a in arrays]
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("bootstrap_ci: all arrays must have the same length (they are paired by position)")
    if n == 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0,
                "n_resamples": n_resamples, "n_undefined": n_resamples}
    estimate = float(statistic(*columns))
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, size=(n_resamples, n))
    values = np.fromiter(
        (float(statistic(*(c[idx] for c in columns))) for idx in indices), dtype=float, count=n_resamples
    )
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        low = high = math.nan
    else:
        low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    return {"estimate": estimate, "ci_low": float(low), "ci_high": float(high), "n": n,
            "n_resamples": n_resamples, "n_undefined": int(n_resamples - defined.size)}


def paired_bootstrap_diff(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Paired percentile bootstrap of ``statistic(a) - statistic(b)`` over shared items.

    ``a[i]`` and ``b[i]`` must refer to the same item (e.g. two models on test item i). Returns the
    same record as :func:`bootstrap_ci` (``estimate`` is the observed difference).
    """
    return bootstrap_ci(
        a, b,
        statistic=lambda x, y: float(statistic(x)) - float(statistic(y)),
        n_resamples=n_resamples, alpha=alpha, seed=seed,
    )


# --- classification metrics ---------------------------------------------------------------------------


def _paired_labels(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    true = pd.to_numeric(pd.Series(list(y_true), dtype=object), errors="coerce").to_numpy(dtype=float)
    pred = pd.to_numeric(pd.Series(list(y_pred), dtype=object), errors="coerce").to_numpy(dtype=float)
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({true.size} vs {pred.size})")
    keep = ~(np.isnan(true) | np.isnan(pred))
    for name, values in (("y_true", true[keep]), ("y_pred", pred[keep])):
        bad = set(np.unique(values)) - {0.0, 1.0}
        if bad:
            raise ValueError(f"{name} must hold labels 1 (holds), 0 (error) or missing; found {sorted(bad)}")
    return true[keep].astype(int), pred[keep].astype(int), int((~keep).sum())


def confusion_counts(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, int]:
    """Confusion counts with label 0 ("has an error") as the positive class.

    Returns:
        ``{"tp", "fp", "fn", "tn", "n", "n_missing"}``: tp = both say error; fp = predicted error, truly
        fine; fn = missed error; tn = both fine. Pairs with a missing label on either side are left
        out of n and counted in ``n_missing``.
    """
    true, pred, n_missing = _paired_labels(y_true, y_pred)
    true_err = true == ERROR_LABEL
    pred_err = pred == ERROR_LABEL
    return {
        "tp": int((true_err & pred_err).sum()),
        "fp": int((~true_err & pred_err).sum()),
        "fn": int((true_err & ~pred_err).sum()),
        "tn": int((~true_err & ~pred_err).sum()),
        "n": int(true.size),
        "n_missing": n_missing,
    }


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def metrics_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Accuracy, precision, recall, F1 from confusion counts (error = positive).

    ``precision`` is NaN with no predicted errors, ``recall`` NaN with no true errors, ``accuracy``
    NaN on an empty sample; ``f1 = 2tp / (2tp + fp + fn)``, NaN only when that denominator is 0
    (neither side ever says "error"), so a judge that misses every real error gets F1 = 0.
    """
    n = tp + fp + fn + tn
    return {
        "accuracy": _ratio(tp + tn, n),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float]:
    """Judge-vs-expert metrics with "has an error" (label 0) as the positive class.

    Args:
        y_true: reference labels (1 holds, 0 error, missing = not annotated).
        y_pred: judge labels in the same order (missing = unscored).

    Returns:
        ``{"accuracy", "precision", "recall", "f1", "support", "n", "n_missing", "tp", "fp", "fn", "tn"}``.
        ``support`` = number of true errors; scores are in [0, 1], higher is better; undefined ones
        are NaN (see :func:`metrics_from_counts`). Empty input gives n 0 and NaN scores.

    Example:
        >>> m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 0])
        >>> m["precision"], m["recall"], m["support"]
        (0.5, 0.5, 2)
    """
    counts = confusion_counts(y_true, y_pred)
    scores = metrics_from_counts(counts["tp"], counts["fp"], counts["fn"], counts["tn"])
    return {**scores, "support": counts["tp"] + counts["fn"], **counts}


# --- agreement ----------------------------------------------------------------------------------------


def _agreement_table(a: Sequence[Any], b: Sequence[Any]) -> tuple[np.ndarray, int]:
    true, pred, n_missing = _paired_labels(a, b)
    table = np.zeros((2, 2), dtype=int)
    for x, y in zip(true, pred):
        table[x, y] += 1
    return table, n_missing


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two raters' binary labels (pairs with a missing label dropped).

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_e`` from the raters' marginals. In [-1, 1], higher is
    more agreement beyond chance. NaN when there is no pair, or when ``p_e == 1`` (both raters used a
    single, identical label: chance agreement is already perfect, so kappa is undefined; see
    :func:`pabak` for a prevalence-free alternative).
    """
    table, _ = _agreement_table(a, b)
    n = table.sum()
    if n == 0:
        return math.nan
    p_observed = np.trace(table) / n
    p_expected = float((table.sum(axis=1) / n) @ (table.sum(axis=0) / n))
    if math.isclose(p_expected, 1.0):
        return math.nan
    return float((p_observed - p_expected) / (1 - p_expected))


def pabak(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Prevalence- and bias-adjusted kappa for binary labels: ``2 * p_o - 1`` (in [-1, 1]; NaN if empty).

    Useful next to kappa when errors are rare: two raters who agree on 33 of 35 "holds" get a low or
    undefined kappa but a PABAK near 1.
    """
    table, _ = _agreement_table(a, b)
    n = table.sum()
    return float(2 * np.trace(table) / n - 1) if n else math.nan


def agreement_summary(a: Sequence[Any], b: Sequence[Any]) -> dict[str, float]:
    """Raw agreement, kappa and PABAK of two raters.

    Returns:
        ``{"n", "n_missing", "n_agree", "raw_agreement", "kappa", "pabak", "n_errors_a", "n_errors_b"}``;
        ``n`` counts pairs where both labels are present.
    """
    table, n_missing = _agreement_table(a, b)
    n = int(table.sum())
    return {
        "n": n,
        "n_missing": n_missing,
        "n_agree": int(np.trace(table)),
        "raw_agreement": float(np.trace(table) / n) if n else math.nan,
        "kappa": cohen_kappa(a, b),
        "pabak": pabak(a, b),
        "n_errors_a": int(table[0, :].sum()),
        "n_errors_b": int(table[:, 0].sum()),
    }


# --- paired and two-sample tests ------------------------------------------------------------------------


def mcnemar_test(
    passed_a: Sequence[Any], passed_b: Sequence[Any], *, exact: bool | None = None, exact_below: int = 25
) -> dict[str, Any]:
    """McNemar's test for two paired pass/fail outcomes on the same items.

    Args:
        passed_a, passed_b: outcomes (1/True pass, 0/False fail) item by item; pairs with a missing
            outcome are dropped.
        exact: force the exact binomial test (True) or the chi-square test with continuity correction
            (False). Default: exact when the number of discordant pairs is below ``exact_below``.

    Returns:
        ``{"n", "a_only", "b_only", "both", "neither", "statistic", "pvalue", "method"}``: ``a_only`` =
        items only A passes. With no discordant pair the p-value is 1.
    """
    a = pd.to_numeric(pd.Series(list(passed_a), dtype=object), errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(pd.Series(list(passed_b), dtype=object), errors="coerce").to_numpy(dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in length ({a.size} vs {b.size})")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep].astype(bool), b[keep].astype(bool)
    both, a_only, b_only, neither = (int(x) for x in ((a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()))
    discordant = a_only + b_only
    use_exact = (discordant < exact_below) if exact is None else exact
    record: dict[str, Any] = {"n": int(a.size), "a_only": a_only, "b_only": b_only, "both": both,
                              "neither": neither}
    if discordant == 0:
        return {**record, "statistic": 0.0, "pvalue": 1.0, "method": "no discordant pairs"}
    result = _sm_mcnemar([[both, a_only], [b_only, neither]], exact=use_exact, correction=True)
    method = "mcnemar exact binomial" if use_exact else "mcnemar chi2 (continuity corrected)"
    return {**record, "statistic": float(result.statistic), "pvalue": float(result.pvalue), "method": method}


def two_proportion_test(
    successes_a: float, n_a: float, successes_b: float, n_b: float, *, alpha: float = 0.05
) -> dict[str, Any]:
    """Compare two independent proportions (aggregate results, no shared items known).

    The difference ``p_a - p_b`` gets Newcombe's hybrid score interval (statsmodels
    ``confint_proportions_2indep(method="newcomb")``); the p-value comes from the two-proportion
    z-test with pooled variance (``scipy`` normal tail). Both ignore any pairing, so with shared test
    items they are conservative: prefer :func:`mcnemar_test` when per-item outcomes exist.

    Returns:
        ``{"diff", "ci_low", "ci_high", "statistic", "pvalue", "method"}``; NaN when an n is missing/0.
    """
    nan_record = {"diff": math.nan, "ci_low": math.nan, "ci_high": math.nan, "statistic": math.nan,
                  "pvalue": math.nan, "method": "two-proportion z (pooled) + Newcombe interval"}
    if any(v is None or pd.isna(v) for v in (successes_a, n_a, successes_b, n_b)) or n_a <= 0 or n_b <= 0:
        return nan_record
    p_a, p_b = successes_a / n_a, successes_b / n_b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(successes_a, n_a, successes_b, n_b, method="newcomb",
                                               compare="diff", alpha=alpha)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (p_a - p_b) / se if se > 0 else 0.0
    pvalue = 2 * _normal_sf(abs(z)) if se > 0 else 1.0
    return {**nan_record, "diff": p_a - p_b, "ci_low": float(low), "ci_high": float(high),
            "statistic": float(z), "pvalue": pvalue}
