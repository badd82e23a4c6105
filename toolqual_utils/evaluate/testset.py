"""Test items for ``toolqual evaluate``: gold answers from canonical instances, and test-set cleaning.

A **test item** is a canonical instance with a usable gold answer, written as a BFCL-style *possible
answer*: a list of gold entries ``{function_name: {argument: [acceptable, ...]}}`` (see
:mod:`toolqual_utils.matching`).

- BFCL instances carry their own (``meta["bfcl_possible_answer"]``, kept verbatim by the loader), with
  every acceptable value and ``""`` for arguments that may be left out.
- Any other instance may carry one in ``meta["possible_answer"]`` (same shape).
- Otherwise it is derived from the gold calls: each argument's value is the one acceptable value; ``""``
  is added (may be left out) when the argument is optional in the tool's schema and the value equals
  the schema's ``default``, or when the loader dropped it as empty (ToolAlpaca's ``""`` arguments,
  ``meta["dropped_empty_arguments"]``).

Instances that cannot be test items are skipped with a reason: no gold calls known (``calls`` null), or
(static mode) a gold call whose arguments could not be parsed, such as ToolAlpaca's ``${x from f}``
references to an earlier result. Multi-step mode keeps those (``partial_gold=True``): the judge reads the
reference answer as text, and only the parsed gold calls can serve gold observations.
``calls == []`` is a test item whose right answer is "call nothing" (BFCL irrelevance).

**Test-set cleaning** (the paper discarded 37.7% of ToolBench's test items as low quality):
:func:`flagged_by_verdicts` reads a verdict table (``toolqual check`` / ``judge`` output) and names the
items with an error (label 0) on the chosen criteria; unscored verdicts never exclude an item.
:func:`exclusions` applies them to test items, with one exception: an item whose gold answer is to call
nothing (BFCL's irrelevance category) is not dropped for being unsolvable, since that is what it tests.

Pure module (standard library, pandas and the toolqual pure modules).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from ..errors import InputError
from ..io import read_table
from ..schema import CRITERIA, INSTRUCTION_CRITERIA, SEQUENCE_CRITERIA, Instance
from ..tables import labels_wide

__all__ = ["TestItem", "possible_answer_for", "build_test_items", "flagged_by_verdicts", "exclusions",
           "CLEANING_CRITERIA"]

#: Names ``--exclude-criteria`` accepts: the six criteria and the three coarse labels.
CLEANING_CRITERIA: Final = {
    **{c: (c,) for c in CRITERIA},
    "instruction_ok": INSTRUCTION_CRITERIA,
    "sequence_ok": SEQUENCE_CRITERIA,
    "overall_ok": CRITERIA,
}


@dataclass(frozen=True)
class TestItem:
    """One test item: the instance (instruction, tools, gold calls) and its possible answer.

    Attributes:
        instance: the canonical instance.
        possible_answer: ``[{function_name: {argument: [acceptable, ...]}}]``; ``[]`` = call nothing.
        gold_from: ``"bfcl"``, ``"meta"`` or ``"calls"`` (where the possible answer came from), or
            ``"calls (partial)"`` when gold calls with unparsed arguments were left out of it.
        ordered: the calls must come in the gold order (default: order-free, as BFCL's parallel calls).
    """

    __test__ = False  # not a pytest class

    instance: Instance
    possible_answer: tuple[dict[str, Any], ...]
    gold_from: str
    ordered: bool = False

    @property
    def complete_gold(self) -> bool:
        """True when ``possible_answer`` has one entry per gold call (in order)."""
        return self.gold_from != "calls (partial)"

    @property
    def n_gold_calls(self) -> int:
        calls = self.instance.calls
        return len(calls) if self.gold_from.startswith("calls") and calls is not None else len(self.possible_answer)

    @property
    def id(self) -> str:
        return self.instance.id


def _dropped_empty(instance: Instance) -> dict[int, set[str]]:
    dropped: dict[int, set[str]] = {}
    for entry in instance.meta.get("dropped_empty_arguments") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("call_index"), int):
            dropped.setdefault(entry["call_index"], set()).update(str(n) for n in entry.get("names") or [])
    return dropped


def _valid_possible_answer(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(entry, Mapping) and len(entry) == 1 and isinstance(next(iter(entry.values())), Mapping)
        and all(isinstance(v, list) for v in next(iter(entry.values())).values())
        for entry in value
    )


def possible_answer_for(instance: Instance, *, partial_gold: bool = False
                        ) -> tuple[tuple[dict[str, Any], ...] | None, str]:
    """The instance's possible answer and where it came from, or ``(None, reason)`` when it has none.

    With ``partial_gold``, gold calls whose arguments could not be parsed are left out instead of
    making the instance unusable (origin ``"calls (partial)"``).
    """
    for key, origin in (("bfcl_possible_answer", "bfcl"), ("possible_answer", "meta")):
        value = instance.meta.get(key)
        if value is not None:
            if not _valid_possible_answer(value):
                return None, (f"meta[{key!r}] is not a list of {{function_name: {{argument: [acceptable, ...]}}}} "
                              "entries")
            return tuple(dict(entry) for entry in value), origin
    if instance.calls is None:
        return None, "no gold calls known (calls is null)"
    dropped = _dropped_empty(instance)
    entries = []
    partial = False
    for index, call in enumerate(instance.calls):
        if call.arguments is None and call.parse_failed:
            if partial_gold:
                partial = True
                continue
            return None, f"gold call {index} ({call.name}) has arguments that could not be parsed"
        tool = instance.tool(call.name)
        properties = tool.properties if tool is not None else {}
        required = set(tool.required) if tool is not None else set()
        spec: dict[str, list[Any]] = {}
        for name, value in (call.arguments or {}).items():
            acceptable = [value]
            schema = properties.get(name) if isinstance(properties.get(name), Mapping) else {}
            if name not in required and "default" in schema and schema["default"] == value:
                acceptable.append("")
            spec[name] = acceptable
        for name in dropped.get(index, ()):
            spec.setdefault(name, [""])
        entries.append({call.name: spec})
    return tuple(entries), "calls (partial)" if partial else "calls"


def build_test_items(instances: Iterable[Instance], *, ordered: bool = False, partial_gold: bool = False
                     ) -> tuple[list[TestItem], list[dict[str, str]]]:
    """Test items in input order, and the skipped instances as ``[{"id", "reason"}]``.

    ``partial_gold`` (multi-step mode) keeps instances whose gold calls are only partly parsed.
    """
    items: list[TestItem] = []
    skipped: list[dict[str, str]] = []
    for instance in instances:
        answer, origin = possible_answer_for(instance, partial_gold=partial_gold)
        if answer is None:
            skipped.append({"id": instance.id, "reason": origin})
            continue
        items.append(TestItem(instance, answer, origin, ordered))
    return items, skipped


def flagged_by_verdicts(verdicts: pd.DataFrame | str | os.PathLike[str],
                        criteria: Sequence[str] = ("overall_ok",)) -> dict[str, list[str]]:
    """Items the verdicts flag: instance id -> the criteria with an error (label 0), among ``criteria``.

    Args:
        verdicts: a verdict table (columns ``instance_id, criterion, label``, optional ``status``) or its
            file; one row per (instance, criterion).
        criteria: criterion names or coarse labels (``instruction_ok``, ``sequence_ok``, ``overall_ok`` =
            any of the six).

    Raises:
        InputError: unknown criterion name, or a table without the verdict columns (names the file).
    """
    where = None
    if not isinstance(verdicts, pd.DataFrame):
        where = str(verdicts)
        verdicts = read_table(verdicts)
    unknown = [c for c in criteria if c not in CLEANING_CRITERIA]
    if unknown:
        raise InputError(f"unknown criterion {unknown[0]!r} for test-set cleaning; use one of "
                         f"{', '.join(CLEANING_CRITERIA)}", field="--exclude-criteria")
    wanted = [c for name in criteria for c in CLEANING_CRITERIA[name]]
    wanted = list(dict.fromkeys(wanted))
    try:
        wide = labels_wide(verdicts, criteria=CRITERIA)
    except ValueError as exc:
        raise InputError(f"not a verdict table: {exc}", file=where) from None
    flagged: dict[str, list[str]] = {}
    for record in wide.to_dict("records"):
        errors = [c for c in wanted if record.get(c) == 0.0]
        if errors:
            flagged[str(record["instance_id"])] = errors
    return flagged


def exclusions(items: Sequence[TestItem], flagged: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The items to drop, as ``[{"id", "criteria"}]`` in item order (see the module docstring)."""
    dropped = []
    for item in items:
        criteria = list(flagged.get(item.id, ()))
        if not item.possible_answer and item.instance.calls == []:
            criteria = [c for c in criteria if c != "solvability"]  # unsolvable on purpose: the gold is no call
        if criteria:
            dropped.append({"id": item.id, "criteria": criteria})
    return dropped
