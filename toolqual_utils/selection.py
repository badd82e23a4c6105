"""Subset recipes (the fine-tune sets of the paper's Table 6) and the shared instance filter.

Pure module: standard library, numpy, pandas only (+ toolqual's schema/tables/errors).

Recipes (``RECIPES``), each drawing at most ``size`` instances:

=============================  ==================================================================
``random``                     a seeded uniform sample of all instances (the control)
``low_ice`` / ``high_ice``     the ``size`` lowest / highest ICE scores (instances with a score)
``high_instruction``           instances whose three instruction criteria hold (specificity,
                               coherence, solvability all 1); a seeded sample when more qualify
``high_instruction_seq``       instances whose six criteria all hold; a seeded sample when more qualify
``high_instruction_seq_ice``   among instances whose six criteria hold, the ``size`` highest ICE
``original``                   every instance (``size`` is ignored and a note says so)
=============================  ==================================================================

Choices the paper leaves open *(ours)*:

- **Too few qualify**: the selection holds every qualifying instance and says so in ``notes``
  (``shortfall`` > 0). It is never padded with non-qualifying instances, since padding would blur the
  very contrast the recipe exists to test. Compare it with a *size-matched* random control
  (:func:`random_control`).
- **More qualify than needed** (criteria recipes without ICE): a seeded uniform sample of the
  qualifying instances, so the only difference from ``random`` is the filter.
- **Unscored criteria**: excluded by default (an instance whose needed criterion is unscored does not
  qualify); ``unscored="pass"`` treats unscored as holding. The number affected is in ``notes``.
- **ICE ties** are broken by a seeded shuffle (deterministic for a seed); instances without a score
  never enter an ICE recipe.
- Selected ids are returned in the order of the instances frame (stable exports), not draw order.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from .errors import InputError
from .schema import (
    COARSE_CRITERIA, CRITERIA, INSTRUCTION_CRITERIA, SEQUENCE_CRITERIA, Instance, instances_frame, source_of_id,
)
from .tables import derive_coarse, labels_wide
from .verdicts import Status, scored_mask

Recipe = Literal[
    "random", "low_ice", "high_ice", "high_instruction", "high_instruction_seq",
    "high_instruction_seq_ice", "original",
]
#: Recipes in the row order of the paper's Table 6.
RECIPES: Final = (
    "random", "low_ice", "high_ice", "high_instruction", "high_instruction_seq",
    "high_instruction_seq_ice", "original",
)
#: Row labels as printed in Table 6.
RECIPE_LABELS: Final[Mapping[str, str]] = {
    "random": "random sample",
    "low_ice": "low ICE",
    "high_ice": "high ICE",
    "high_instruction": "high instruction",
    "high_instruction_seq": "high instruction + seq",
    "high_instruction_seq_ice": "high instr. + seq + ICE",
    "original": "original",
}
#: Criteria that must hold for each criteria recipe.
RECIPE_CRITERIA: Final[Mapping[str, tuple[str, ...]]] = {
    "high_instruction": tuple(INSTRUCTION_CRITERIA),
    "high_instruction_seq": tuple(CRITERIA),
    "high_instruction_seq_ice": tuple(CRITERIA),
}
_ICE_RECIPES: Final = frozenset({"low_ice", "high_ice", "high_instruction_seq_ice"})
_SIZED_RECIPES: Final = frozenset({"random", "low_ice", "high_ice"})

#: Columns of :func:`selection_frame` besides the instances frame's own.
SELECTION_FRAME_COLUMNS: Final = ("instance_id", "source", "subset", *CRITERIA, *COARSE_CRITERIA, "ice_score")

__all__ = [
    "RECIPES", "RECIPE_LABELS", "RECIPE_CRITERIA", "Selection", "selection_frame", "filter_instances",
    "select", "select_recipes", "random_control", "selections_summary",
]


@dataclass(frozen=True)
class Selection:
    """The result of a recipe.

    Attributes:
        ids: selected instance ids, in the order of the instances frame.
        recipe: recipe name.
        thresholds: what defined the subset, e.g. ``{"criteria_hold": [...], "ice_min": 0.61}``.
        seed: the seed used for sampling and tie-breaks.
        n_candidates: instances that qualified before the size cut.
        notes: plain-language remarks (shortfall, unscored handling, ignored size).
        size_requested: the requested size (None = all qualifying).
        n_pool: instances considered (after the optional source filter).
    """

    ids: tuple[str, ...]
    recipe: str
    thresholds: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    n_candidates: int = 0
    notes: tuple[str, ...] = ()
    size_requested: int | None = None
    n_pool: int = 0

    @property
    def n_selected(self) -> int:
        return len(self.ids)

    @property
    def shortfall(self) -> int:
        """How many fewer instances than requested the recipe could give (0 when none)."""
        if self.size_requested is None or self.recipe == "original":
            return 0
        return max(0, self.size_requested - len(self.ids))

    def to_manifest(self) -> dict[str, Any]:
        """JSON-serialisable record (ids included) for export manifests."""
        record = asdict(self)
        record["ids"] = list(self.ids)
        record["notes"] = list(self.notes)
        record["n_selected"] = self.n_selected
        record["shortfall"] = self.shortfall
        record["recipe_label"] = RECIPE_LABELS.get(self.recipe, self.recipe)
        return record


# --- the shared per-instance frame and filter -----------------------------------------------------------


def _ice_column(ice_scores: pd.DataFrame | Mapping[str, float] | None) -> pd.Series | None:
    if ice_scores is None:
        return None
    if isinstance(ice_scores, Mapping):
        return pd.Series(dict(ice_scores), dtype=float, name="ice_score")
    if "instance_id" not in ice_scores.columns or "ice_score" not in ice_scores.columns:
        raise InputError("ICE scores need columns 'instance_id' and 'ice_score' (the ICE_COLUMNS layout)",
                         field="ice_score")
    if ice_scores["instance_id"].duplicated().any():
        models = sorted(map(str, pd.unique(ice_scores.get("target_model", pd.Series(["?"])))))
        raise InputError(
            f"ICE scores hold several rows per instance (target models: {', '.join(models)}); "
            "keep one target model and test-bed version before selecting",
            field="instance_id",
        )
    return ice_scores.set_index("instance_id")["ice_score"].astype(float)


def mask_low_confidence(verdicts: pd.DataFrame | None, min_confidence: float | None) -> pd.DataFrame | None:
    """Verdicts whose ``confidence`` is below ``min_confidence`` become unscored (label cleared, status
    ``unscored:low_confidence``): a verdict its own votes do not back is trusted neither as a pass nor as a
    fail. ``None`` (or a table without a ``confidence`` column) changes nothing; unscored rows stay as they are.

    Raises:
        InputError: ``min_confidence`` outside [0, 1].
    """
    if verdicts is None or min_confidence is None or "confidence" not in verdicts.columns:
        return verdicts
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise InputError(f"the minimum confidence must be between 0 and 1, not {min_confidence!r}",
                         field="min_confidence")
    confidence = pd.to_numeric(verdicts["confidence"], errors="coerce")
    low = confidence.lt(float(min_confidence)) & scored_mask(verdicts)
    if not low.any():
        return verdicts
    masked = verdicts.copy()
    masked["label"] = masked["label"].astype("Int64")
    masked.loc[low, "label"] = pd.NA
    masked.loc[low, "status"] = Status.UNSCORED_LOW_CONFIDENCE
    return masked


def selection_frame(
    instances: pd.DataFrame | Iterable[Instance],
    verdicts: pd.DataFrame | None = None,
    ice_scores: pd.DataFrame | Mapping[str, float] | None = None,
    *,
    min_confidence: float | None = None,
) -> pd.DataFrame:
    """One row per instance with its criterion labels and ICE score: the frame recipes and filters use.

    Args:
        instances: ``schema.instances_frame`` output (or ``Instance`` objects).
        verdicts: verdict table, one row per (instance, criterion) (merge judges first with
            ``tables.merge_verdicts``); None = every label unscored.
        ice_scores: ICE table (``instance_id, ice_score``, one row per instance) or ``{id: score}``.
        min_confidence: labels of verdicts whose confidence is below this count as unscored
            (:func:`mask_low_confidence`); None = every label as it is.

    Returns:
        The instances frame's columns plus the six criteria and three coarse labels (1.0 / 0.0 / NaN =
        unscored) and ``ice_score`` (in [0, 1], higher = better teacher; NaN = not scored). Row order
        is the instances' order. Verdicts for ids not among the instances are ignored.
    """
    frame = instances if isinstance(instances, pd.DataFrame) else instances_frame(instances)
    frame = frame.copy()
    if "instance_id" not in frame.columns:
        raise InputError("the instances frame needs an 'instance_id' column", field="instance_id")
    if "source" not in frame.columns:
        frame["source"] = frame["instance_id"].map(source_of_id)
    drop = [c for c in (*CRITERIA, *COARSE_CRITERIA, "ice_score") if c in frame.columns]
    frame = frame.drop(columns=drop)
    verdicts = mask_low_confidence(verdicts, min_confidence)
    if verdicts is not None and len(verdicts):
        labels = labels_wide(verdicts)
    else:
        labels = pd.DataFrame(columns=["instance_id", *CRITERIA])
    labels = derive_coarse(labels)
    frame = frame.merge(labels, on="instance_id", how="left")
    frame = derive_coarse(frame)  # instances without verdicts: all NaN
    ice = _ice_column(ice_scores)
    frame["ice_score"] = frame["instance_id"].map(ice).astype(float) if ice is not None else np.nan
    return frame


_CALL_CRITERIA: Final = frozenset({*SEQUENCE_CRITERIA, "sequence_ok", "overall_ok"})
_WANTED: Final = {1: 1.0, 0: 0.0, "holds": 1.0, "error": 0.0}


def filter_instances(
    frame: pd.DataFrame,
    include_criteria: Mapping[str, Any] | None = None,
    ice_min: float | None = None,
    sources: Sequence[str] | None = None,
    *,
    ice_max: float | None = None,
    unscored_as_pass: bool = False,
) -> pd.DataFrame:
    """Rows of a :func:`selection_frame` that meet every condition (the static report and the widget
    explorer both call this).

    Args:
        frame: output of :func:`selection_frame`.
        include_criteria: ``{criterion: wanted}`` for any of the six criteria or three coarse labels;
            wanted is ``1``/``"holds"`` (criterion holds), ``0``/``"error"``, ``"unscored"`` or
            ``None``/``"any"`` (no condition).
        ice_min, ice_max: keep scores within ``[ice_min, ice_max]``; an instance without a score is
            dropped as soon as either bound is set.
        sources: keep these sources only (None = all).
        unscored_as_pass: treat an unscored label as holding when ``wanted`` is 1 (default False:
            unscored instances do not pass a "holds" condition). Never for a call-sequence criterion
            of an instance without gold calls (``has_gold_calls`` False): there is no sequence to hold.

    Returns:
        The matching rows, same columns and order (index kept). Empty frame in, empty frame out.
    """
    mask = pd.Series(True, index=frame.index)
    for criterion, wanted in (include_criteria or {}).items():
        if criterion not in frame.columns:
            raise InputError(
                f"unknown criterion {criterion!r}; use one of {', '.join((*CRITERIA, *COARSE_CRITERIA))}",
                field="include_criteria",
            )
        if wanted is None or wanted == "any":
            continue
        values = frame[criterion]
        if wanted == "unscored":
            mask &= values.isna()
            continue
        if wanted not in _WANTED:
            raise InputError(f"condition {wanted!r} for {criterion} is not one of 1, 0, 'holds', 'error', "
                             "'unscored', 'any'", field="include_criteria")
        target = _WANTED[wanted]
        hit = values.eq(target)
        if unscored_as_pass and target == 1.0:
            passable = values.isna()
            if criterion in _CALL_CRITERIA and "has_gold_calls" in frame.columns:
                # No gold calls (unscored:not_applicable) is not "unscored but fine": there is no call
                # sequence to hold, and nothing to fine-tune on.
                passable &= frame["has_gold_calls"].fillna(False).astype(bool)
            hit |= passable
        mask &= hit
    if ice_min is not None or ice_max is not None:
        scores = frame["ice_score"]
        mask &= scores.notna()
        if ice_min is not None:
            mask &= scores >= ice_min
        if ice_max is not None:
            mask &= scores <= ice_max
    if sources is not None:
        mask &= frame["source"].astype(str).isin([str(s) for s in sources])
    return frame.loc[mask]


# --- recipes ---------------------------------------------------------------------------------------------


def _require_inputs(recipe: str, frame: pd.DataFrame, has_verdicts: bool, has_ice: bool) -> None:
    if recipe in RECIPE_CRITERIA and not has_verdicts:
        raise InputError(
            f"recipe {recipe!r} keeps instances whose criteria hold, so it needs criterion verdicts "
            "(verdicts=... in Python, --verdicts FILE on the command line; produce them with "
            "`toolqual check` and/or `toolqual judge`)",
            field="verdicts",
        )
    if recipe in _ICE_RECIPES and not has_ice:
        raise InputError(
            f"recipe {recipe!r} ranks instances by ICE score, so it needs ICE scores "
            "(ice_scores=... in Python, --ice FILE on the command line; produce them with `toolqual ice`)",
            field="ice",
        )


def _positions(frame: pd.DataFrame, chosen: Iterable[Any]) -> tuple[str, ...]:
    chosen = set(chosen)
    return tuple(str(i) for i in frame.loc[frame.index.isin(chosen), "instance_id"])


def _sample(frame: pd.DataFrame, size: int | None, rng: np.random.Generator) -> list[Any]:
    if size is None or size >= len(frame):
        return list(frame.index)
    return list(rng.choice(frame.index.to_numpy(), size=size, replace=False))


def _rank_by_ice(frame: pd.DataFrame, size: int | None, rng: np.random.Generator, *, top: bool) -> list[Any]:
    shuffled = frame.loc[rng.permutation(frame.index.to_numpy())]
    ordered = shuffled.sort_values("ice_score", ascending=not top, kind="stable")
    return list(ordered.index if size is None else ordered.index[:size])


def select(
    instances: pd.DataFrame | Iterable[Instance],
    verdicts: pd.DataFrame | None = None,
    ice_scores: pd.DataFrame | Mapping[str, float] | None = None,
    recipe: Recipe = "random",
    size: int | None = None,
    seed: int = 0,
    *,
    unscored: Literal["exclude", "pass"] = "exclude",
    sources: Sequence[str] | None = None,
    min_confidence: float | None = None,
) -> Selection:
    """Apply one recipe (see the module docstring for every choice it makes).

    Args:
        instances: instances (``schema.instances_frame`` output, ``Instance`` objects, or a
            :func:`selection_frame` already joined, in which case ``verdicts``/``ice_scores`` may be None).
        verdicts: verdict table (needed by ``high_instruction*``).
        ice_scores: ICE table or ``{id: score}`` (needed by ``*ice`` recipes).
        recipe: one of ``RECIPES``.
        size: instances wanted; required for ``random``, ``low_ice``, ``high_ice``; None elsewhere =
            every qualifying instance; ignored by ``original``.
        seed: seed for sampling and tie-breaks (same inputs + seed = same ids).
        unscored: ``"exclude"`` (default) or ``"pass"`` (unscored criteria count as holding).
        sources: restrict the pool to these sources first.
        min_confidence: verdicts whose confidence (share of agreeing votes) is below this count as
            unscored (see :func:`mask_low_confidence`); recorded in the thresholds.

    Returns:
        A :class:`Selection`.

    Raises:
        InputError: unknown recipe, a recipe missing the verdicts / ICE scores it needs, bad size.
    """
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}", field="recipe")
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 0):
        raise InputError(f"size must be a non-negative whole number, got {size!r}", field="size")
    if isinstance(instances, pd.DataFrame) and set(CRITERIA) <= set(instances.columns) \
            and verdicts is None and ice_scores is None:
        frame = instances.copy()
        has_verdicts = frame[list(CRITERIA)].notna().any().any()
        has_ice = "ice_score" in frame.columns and frame["ice_score"].notna().any()
    else:
        frame = selection_frame(instances, verdicts, ice_scores, min_confidence=min_confidence)
        has_verdicts = verdicts is not None and len(verdicts) > 0
        has_ice = ice_scores is not None and len(ice_scores) > 0
    _require_inputs(recipe, frame, has_verdicts, has_ice)
    if recipe in _SIZED_RECIPES and size is None:
        raise InputError(f"recipe {recipe!r} needs a size (how many instances to draw)", field="size")
    frame = frame.reset_index(drop=True)
    notes: list[str] = []
    if sources is not None:
        frame = filter_instances(frame, sources=sources)
        notes.append(f"pool restricted to sources {', '.join(map(str, sources))}")
    n_pool = len(frame)
    rng = np.random.default_rng(seed)
    thresholds: dict[str, Any] = {}
    if min_confidence is not None:
        thresholds["min_confidence"] = float(min_confidence)

    if recipe == "original":
        candidates = frame
        chosen = list(frame.index)
        if size is not None and size != n_pool:
            notes.append(f"'original' keeps all {n_pool} instances; the requested size {size} was ignored")
    elif recipe == "random":
        candidates = frame
        chosen = _sample(frame, size, rng)
    else:
        candidates = frame
        if recipe in RECIPE_CRITERIA:
            needed = RECIPE_CRITERIA[recipe]
            thresholds["criteria_hold"] = list(needed)
            thresholds["unscored"] = unscored
            block = frame[list(needed)]
            n_unscored = int((block.isna().any(axis=1) & ~block.eq(0).any(axis=1)).sum())
            n_error = int(block.eq(0).any(axis=1).sum())
            thresholds["n_with_error"] = n_error
            thresholds["n_unscored_no_error"] = n_unscored
            candidates = filter_instances(frame, {c: 1 for c in needed}, unscored_as_pass=(unscored == "pass"))
            if n_unscored:
                verb = "counted as holding" if unscored == "pass" else "excluded"
                notes.append(f"{n_unscored} instance(s) with an unscored needed criterion and no error were {verb}")
            if candidates.empty and n_pool:
                notes.append(
                    f"no instance qualifies: {n_error} of {n_pool} have an error on a needed criterion and "
                    f"{n_unscored} have an unscored one ({'counted as holding' if unscored == 'pass' else 'excluded'})"
                )
        if recipe in _ICE_RECIPES:
            with_score = candidates.loc[candidates["ice_score"].notna()]
            if len(with_score) < len(candidates):
                notes.append(f"{len(candidates) - len(with_score)} qualifying instance(s) without an ICE score were left out")
            candidates = with_score
            top = recipe != "low_ice"
            chosen = _rank_by_ice(candidates, size, rng, top=top)
            if chosen:
                scores = candidates.loc[chosen, "ice_score"]
                thresholds["ice_min"] = float(scores.min())
                thresholds["ice_max"] = float(scores.max())
            thresholds["ice_order"] = "highest first" if top else "lowest first"
        else:
            chosen = _sample(candidates, size, rng)
            if size is not None and len(candidates) > size:
                notes.append(f"{len(candidates)} instances qualify; a seeded random sample of {size} was drawn")
    n_candidates = len(candidates)
    if size is not None and recipe != "original" and len(chosen) < size:
        notes.append(
            f"only {len(chosen)} of the requested {size} instances qualify; the subset is NOT padded "
            "(compare it with a size-matched random control)"
        )
    return Selection(
        ids=_positions(frame, chosen), recipe=recipe, thresholds=thresholds, seed=int(seed),
        n_candidates=int(n_candidates), notes=tuple(notes), size_requested=None if size is None else int(size),
        n_pool=int(n_pool),
    )


def random_control(
    selection: Selection,
    instances: pd.DataFrame | Iterable[Instance],
    *,
    seed: int = 0,
    sources: Sequence[str] | None = None,
) -> Selection:
    """A seeded random sample of the same size as ``selection`` (the size-matched control)."""
    control = select(instances, recipe="random", size=selection.n_selected, seed=seed, sources=sources)
    note = f"size-matched random control for {selection.recipe!r} ({selection.n_selected} instances)"
    return Selection(**{**asdict(control), "ids": control.ids, "notes": (*control.notes, note)})


def select_recipes(
    instances: pd.DataFrame | Iterable[Instance],
    verdicts: pd.DataFrame | None = None,
    ice_scores: pd.DataFrame | Mapping[str, float] | None = None,
    *,
    recipes: Sequence[str] = RECIPES,
    size: int,
    seed: int = 0,
    unscored: Literal["exclude", "pass"] = "exclude",
    skip_unavailable: bool = True,
) -> dict[str, Selection]:
    """Run several recipes at one size (Table 6's design) on the same frame and seed.

    Recipes whose inputs are missing (no verdicts / no ICE) are skipped when ``skip_unavailable``
    (their absence is visible in the returned dict); otherwise they raise ``InputError``.
    """
    frame = selection_frame(instances, verdicts, ice_scores)
    has_verdicts = verdicts is not None and len(verdicts) > 0
    has_ice = ice_scores is not None and len(ice_scores) > 0
    results: dict[str, Selection] = {}
    for recipe in recipes:
        try:
            _require_inputs(recipe, frame, has_verdicts, has_ice)
        except InputError:
            if skip_unavailable:
                continue
            raise
        results[recipe] = select(frame, recipe=recipe, size=size, seed=seed, unscored=unscored)  # type: ignore[arg-type]
    return results


def selections_summary(selections: Mapping[str, Selection] | Sequence[Selection]) -> pd.DataFrame:
    """One row per selection: ``recipe, recipe_label, size_requested, n_selected, shortfall,
    n_candidates, n_pool, seed, ice_min, ice_max, notes`` (notes joined by "; ")."""
    items = selections.values() if isinstance(selections, Mapping) else selections
    rows = []
    for sel in items:
        rows.append({
            "recipe": sel.recipe, "recipe_label": RECIPE_LABELS.get(sel.recipe, sel.recipe),
            "size_requested": sel.size_requested, "n_selected": sel.n_selected, "shortfall": sel.shortfall,
            "n_candidates": sel.n_candidates, "n_pool": sel.n_pool, "seed": sel.seed,
            "ice_min": sel.thresholds.get("ice_min", math.nan), "ice_max": sel.thresholds.get("ice_max", math.nan),
            "notes": "; ".join(sel.notes),
        })
    return pd.DataFrame(rows, columns=["recipe", "recipe_label", "size_requested", "n_selected", "shortfall",
                                       "n_candidates", "n_pool", "seed", "ice_min", "ice_max", "notes"])
