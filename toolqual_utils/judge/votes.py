"""Confidence from several answers: self-consistency samples and judge panels.

A *vote* is one model verdict row for an (instance, criterion): one sampled answer of one model. With
``--samples N`` each instance is asked N times at a temperature above 0 (``sample_index`` 0..N-1 is part of
the cache key, so every sample is cached on its own); with ``--judges M1,M2,...`` each model answers; both
combine. :func:`aggregate_votes` turns the votes of each (instance, criterion) into one verdict:

- ``majority`` (default): the label most votes give; a tie is ``unscored:no_majority`` (never a pass or
  a fail).
- ``unanimous``: a label only when every vote gives it; otherwise ``unscored:no_agreement``.

``confidence`` = the share of the scored votes that agree with the verdict's label (for an unscored
verdict, the share of the most common label), in [0, 1], higher is more certain; ``n_votes`` = scored
votes. Votes that are themselves unscored (parse errors, refusals, API errors) are not votes: they are
counted in the evidence, and when no vote is scored the verdict keeps the most common unscored status.
A single answer gives confidence 1.0 with ``n_votes`` 1: read the two together.

Pure module: standard library and pandas (imported on first use: the streaming judge imports this module
before its first request, which needs no pandas).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from ..verdicts import Status, is_missing

if TYPE_CHECKING:
    import pandas as pd

AgreementRule = Literal["majority", "unanimous"]
AGREEMENT_RULES: Final = ("majority", "unanimous")
NO_MAJORITY: Final = Status.UNSCORED_NO_MAJORITY
NO_AGREEMENT: Final = Status.UNSCORED_NO_AGREEMENT


def panel_name(models: Sequence[str]) -> str:
    """The ``judge`` value of a panel's verdicts: ``panel:m1+m2`` (one model: its own name)."""
    models = list(dict.fromkeys(models))
    return models[0] if len(models) == 1 else "panel:" + "+".join(models)


def _label(value: Any) -> int | None:
    return None if is_missing(value) else int(value)


def _vote_summary(vote: dict[str, Any]) -> dict[str, Any]:
    return {"judge": vote.get("judge"), "sample_index": int(vote.get("sample_index") or 0),
            "label": _label(vote.get("label")), "status": vote.get("status")}


def aggregate_votes(
    votes: Sequence[dict[str, Any]], *, rule: AgreementRule = "majority", judge: str | None = None,
) -> dict[str, Any]:
    """One verdict row from the votes of one (instance, criterion).

    Args:
        votes: verdict rows (dicts with at least ``instance_id, criterion, label, status, judge,
            prompt_id, rationale, evidence``; ``sample_index`` optional), all for the same pair.
        rule: ``"majority"`` or ``"unanimous"`` (see the module docstring).
        judge: the ``judge`` value of the result (default: :func:`panel_name` of the votes' judges).

    Returns:
        A verdict row with ``confidence`` and ``n_votes`` added; its rationale and evidence are those of
        the first vote that agrees with the label, prefixed with the tally, and the evidence ends with a
        ``{"check": "votes", ...}`` entry listing every vote.

    Raises:
        ValueError: no votes, votes of several pairs, or an unknown rule.
    """
    if rule not in AGREEMENT_RULES:
        raise ValueError(f"unknown agreement rule {rule!r}; use one of {', '.join(AGREEMENT_RULES)}")
    if not votes:
        raise ValueError("aggregate_votes needs at least one vote")
    pairs = {(v["instance_id"], v["criterion"]) for v in votes}
    if len(pairs) != 1:
        raise ValueError(f"votes of several (instance, criterion) pairs: {sorted(pairs)[:3]}")
    judge = judge or panel_name([str(v.get("judge")) for v in votes])
    scored = [v for v in votes if v.get("status") == Status.OK and _label(v.get("label")) is not None]
    tally = Counter(_label(v["label"]) for v in scored)
    summary = {"check": "votes", "rule": rule, "n_scored": len(scored), "n_unscored": len(votes) - len(scored),
               "votes": [_vote_summary(v) for v in votes]}
    base = {key: votes[0].get(key) for key in ("instance_id", "criterion", "prompt_id")}
    if not scored:
        status = Counter(str(v.get("status")) for v in votes).most_common(1)[0][0]
        first = next(v for v in votes if str(v.get("status")) == status)
        return {**base, "label": None, "status": status, "judge": judge,
                "rationale": f"no scored vote of {len(votes)}: {first.get('rationale')}",
                "evidence": [*(first.get("evidence") or []), summary], "confidence": float("nan"), "n_votes": 0}
    (top, top_n), *rest = tally.most_common()
    share = top_n / len(scored)
    tie = bool(rest) and rest[0][1] == top_n
    if tie and rule == "majority":
        label, status = None, NO_MAJORITY
    elif rule == "unanimous" and rest:
        label, status = None, NO_AGREEMENT
    else:
        label, status = top, Status.OK
    word = {0: "error", 1: "holds"}
    counts = ", ".join(f"{word[k]} {n}" for k, n in sorted(tally.items()))
    if label is None:
        first = scored[0]
        rationale = f"votes disagree ({counts}; rule: {rule}): {first.get('rationale')}"
    else:
        first = next(v for v in scored if _label(v["label"]) == label)
        rationale = f"{top_n} of {len(scored)} votes: {first.get('rationale')}"
    return {**base, "label": label, "status": status, "judge": judge, "rationale": rationale,
            "evidence": [*(first.get("evidence") or []), summary], "confidence": share, "n_votes": len(scored)}


def aggregate_frame(
    votes: pd.DataFrame, *, rule: AgreementRule = "majority", judge: str | None = None,
) -> pd.DataFrame:
    """:func:`aggregate_votes` for every (instance, criterion) of a long frame of votes, first-seen order."""
    import pandas as pd

    if votes is None or len(votes) == 0:
        return pd.DataFrame(columns=["instance_id", "criterion", "label", "status", "judge", "prompt_id",
                                     "rationale", "evidence", "confidence", "n_votes"])
    records = votes.to_dict("records")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["instance_id"], record["criterion"]), []).append(record)
    return pd.DataFrame([aggregate_votes(group, rule=rule, judge=judge) for group in groups.values()])
