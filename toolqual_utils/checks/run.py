"""Running the registered checks: findings per instance, rule verdicts per instance x criterion.

- :func:`instance_findings` runs every registered check on one instance (instance checks first, then
  the call checks call by call, each call seeing the outputs of the calls before it);
- :func:`rule_decisions` / :func:`rule_rows` turn one instance's findings into one
  :class:`~toolqual_utils.verdicts.Decision` / :class:`~toolqual_utils.verdicts.VerdictRow` per criterion
  of :func:`~toolqual_utils.checks.registry.rule_criteria`;
- :func:`find_issues`, :func:`check_findings`, :func:`check_flags` and :func:`run_checks` do it for many
  instances and return lists or tables.

Pure module: standard library and pandas.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ..schema import PSEUDO_CALLS, SEQUENCE_CRITERIA, Call, Instance
from ..verdicts import RULES_JUDGE, Decision, Status, VerdictRow, verdict_frame
from .registry import CHECKS, Check, Finding, Hit, registered_checks, rule_criteria
from .scan import CallScan, InstanceScan
from .values import ERROR_OBSERVATION, call_key, jsonable

if TYPE_CHECKING:  # imported by the table functions: the model judge's planner runs checks without pandas
    import pandas as pd

__all__ = [
    "RULES_PROMPT_ID", "FINDING_COLUMNS", "instance_findings", "rule_decisions", "rule_rows", "find_issues",
    "check_findings", "check_flags", "run_checks", "finding_records",
]

RULES_PROMPT_ID: Final = "rules.v1"

FINDING_COLUMNS: Final = (
    "instance_id", "check", "criterion", "severity", "call_index", "function", "argument", "value",
    "expected", "message",
)


class _Repeats:
    """Marks calls identical to an earlier one. Only a name seen before can repeat, so most calls never
    serialise their arguments."""

    __slots__ = ("calls", "seen", "names_seen", "first_key_of")

    def __init__(self, calls: Sequence[Call]) -> None:
        self.calls = calls
        self.seen: dict[str, int] = {}
        self.names_seen: set[str] = set()
        self.first_key_of: dict[str, int] = {}

    def mark(self, call: CallScan) -> None:
        name = call.name
        key = call.key() if name in self.names_seen else name
        if name not in self.names_seen:
            self.names_seen.add(name)
            self.first_key_of[name] = call.index
        elif self.first_key_of.get(name) is not None:
            first_index = self.first_key_of.pop(name)
            earlier = self.calls[first_index]
            self.seen[call_key(earlier.name, earlier.arguments, earlier.raw_arguments)] = first_index
        if key in self.seen and key != name:
            call.repeat_of = self.seen[key]
            index = call.index
            previous = self.calls[index - 1] if index > 0 else None
            call.retries_failure = bool(
                previous is not None and previous.observation
                and call_key(previous.name, previous.arguments, previous.raw_arguments) == key
                and ERROR_OBSERVATION.search(previous.observation[:2000]))
        elif key != name:
            self.seen.setdefault(key, call.index)


def _collect(findings: list[Finding], check: Check, result: Any, instance_id: str, call: CallScan | None) -> None:
    if result is None:
        return
    for hit in (result,) if isinstance(result, Hit) else result:
        if not isinstance(hit, Hit):
            raise TypeError(f"check {check.name!r} returned {type(hit).__name__}; a check returns Hit objects")
        call_index, function = hit.call_index, hit.function
        if call is not None:
            call_index = call.index if call_index is None else call_index
            function = call.name if function is None else function
            if check.exclusive and hit.argument is not None:
                call.claim(hit.argument)
        findings.append(Finding(instance_id, check.name, hit.severity or check.severity, hit.message, call_index,
                                function, hit.argument, hit.value, hit.expected))


def instance_findings(instance: Instance) -> list[Finding]:
    """Every finding of every registered check on one instance: instance checks, then call by call."""
    findings: list[Finding] = []
    scan = InstanceScan(instance)
    iid = instance.id
    for check in registered_checks("instance"):
        _collect(findings, check, check.function(scan), iid, None)
    if not scan.api_calls:
        return findings
    call_checks = registered_checks("call")
    earlier = scan.text.earlier
    pseudo = instance.meta.get("pseudo_calls") if instance.meta else None
    if isinstance(pseudo, list):
        for entry in pseudo:
            if isinstance(entry, Mapping):
                earlier.extend(str(v) for v in entry.values() if v)
    calls = instance.calls or []
    repeats = _Repeats(calls)
    for index, call in enumerate(calls):
        if call.name in PSEUDO_CALLS:  # not API calls; their text can ground later values
            earlier.extend(t for t in (call.raw_arguments, call.observation) if t)
            if call.arguments:
                earlier.append(json.dumps(call.arguments))
            continue
        scanned = CallScan(scan, index, call)
        repeats.mark(scanned)
        for check in call_checks:
            result = check.function(scanned)
            if result:  # most checks find nothing: None or []
                _collect(findings, check, result, iid, scanned)
        if call.observation:  # later calls may take values from this call's output
            earlier.append(call.observation)
    return findings


def find_issues(instances: Iterable[Instance]) -> list[Finding]:
    """All findings of all checks, in instance order then call order. Empty input gives []."""
    findings: list[Finding] = []
    for instance in instances:
        findings.extend(instance_findings(instance))
    return findings


def finding_records(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Findings as ``FINDING_COLUMNS`` dicts (value and expected as JSON text; None when not applicable)."""
    return [{
        "instance_id": f.instance_id, "check": f.check, "criterion": f.criterion, "severity": f.severity,
        "call_index": f.call_index, "function": f.function, "argument": f.argument,
        "value": None if f.value is None else json.dumps(jsonable(f.value), ensure_ascii=False),
        "expected": None if f.expected is None else json.dumps(jsonable(f.expected), ensure_ascii=False),
        "message": f.message,
    } for f in findings]


def findings_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The findings table of :func:`finding_records` rows (``call_index`` as nullable Int64)."""
    import pandas as pd

    frame = pd.DataFrame(list(records), columns=list(FINDING_COLUMNS))
    frame["call_index"] = frame["call_index"].astype("Int64")
    return frame


def check_findings(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per finding.

    Columns: ``FINDING_COLUMNS`` = instance_id, check, criterion, severity (``error`` | ``suspect``),
    call_index (0-based; NA for instance-level checks), function, argument, value and expected (JSON
    text, so that every table format can hold them; None when not applicable), message. Empty input, or
    no finding, gives an empty frame with these columns.
    """
    return findings_frame(finding_records(find_issues(instances)))


def check_flags(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per instance, cleanlab style: ``instance_id`` then one boolean ``is_<check>_issue`` per check.

    A flag is True when the check fired with severity ``error`` (suspects do not raise flags); plus
    ``n_findings`` (all severities). Empty input gives an empty frame with these columns.
    """
    import pandas as pd

    instances = list(instances)
    by_instance = {instance.id: instance_findings(instance) for instance in instances}
    columns: dict[str, list[Any]] = {"instance_id": [instance.id for instance in instances]}
    for check in CHECKS:
        columns[f"is_{check}_issue"] = [
            any(f.check == check and f.severity == "error" for f in by_instance[instance.id])
            for instance in instances
        ]
    columns["n_findings"] = [len(by_instance[instance.id]) for instance in instances]
    return pd.DataFrame(columns)


# --- verdicts -----------------------------------------------------------------------------------------


def _no_finding_verdict(instance: Instance, criterion: str, n_api_calls: int) -> tuple[int | None, str, str]:
    """(label, status, rationale) when no check fired for ``criterion``.

    Reliable passes, measured on the reference annotations (``tests/test_checks_reference.py``): an empty
    gold sequence cannot misalign parameters or be redundant, and an empty sequence for a BFCL irrelevance
    instance is sufficient; a single call cannot repeat another. Everything else needs the model.
    """
    irrelevance = instance.meta.get("bfcl_category") == "irrelevance" if instance.meta else False
    if criterion == "parameter_alignment" and n_api_calls == 0:
        return 1, Status.OK, "no calls, so no argument can be misaligned"
    if criterion == "minimality" and n_api_calls <= 1:
        return 1, Status.OK, "at most one call: nothing is repeated or redundant"
    if criterion == "sufficiency" and n_api_calls == 0 and irrelevance:
        return 1, Status.OK, "BFCL irrelevance: calling nothing is the expected behaviour"
    return None, Status.UNSCORED_NEEDS_MODEL, "no rule fired; the rules cannot confirm this criterion on their own"


def rule_decisions(instance: Instance, findings: Sequence[Finding],
                   criteria: Sequence[str] | None = None) -> dict[str, Decision]:
    """The rules' :class:`~toolqual_utils.verdicts.Decision` per criterion (default :func:`rule_criteria`,
    in that order) from one instance's findings.

    A finding of severity ``error`` decides the criterion (label 0, status ok); suspects leave it
    ``unscored:needs_model`` with the findings as evidence; with no finding, only the reliable passes
    of :func:`_no_finding_verdict` are decided. Sequence criteria of an instance without gold calls are
    ``unscored:not_applicable``.
    """
    n_api_calls = sum(c.name not in PSEUDO_CALLS for c in instance.calls or [])
    by_criterion: dict[str, list[Finding]] = {}
    for finding in findings:
        by_criterion.setdefault(finding.criterion, []).append(finding)
    decisions = {}
    for criterion in rule_criteria() if criteria is None else criteria:
        relevant = by_criterion.get(criterion, ())
        if instance.calls is None and criterion in SEQUENCE_CRITERIA:
            label, status, rationale = None, Status.UNSCORED_NOT_APPLICABLE, "no gold calls are known"
        elif not relevant:
            label, status, rationale = _no_finding_verdict(instance, criterion, n_api_calls)
        else:
            errors = [f for f in relevant if f.severity == "error"]
            if errors:
                label, status = 0, Status.OK
                rationale = "; ".join(f.message for f in errors[:5]) + (
                    f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
            else:
                label, status = None, Status.UNSCORED_NEEDS_MODEL
                rationale = "suspect, for the model to decide: " + "; ".join(f.message for f in relevant[:5])
        decisions[criterion] = Decision(label, status, rationale, [f.evidence() for f in relevant])
    return decisions


def rule_rows(instance: Instance, findings: Sequence[Finding],
              criteria: Sequence[str] | None = None) -> list[VerdictRow]:
    """One rules verdict per criterion (default :func:`rule_criteria`) from one instance's findings: the
    :func:`rule_decisions` as :class:`~toolqual_utils.verdicts.VerdictRow` rows (judge ``rules``)."""
    return [decision.row(instance.id, criterion, RULES_JUDGE, RULES_PROMPT_ID)
            for criterion, decision in rule_decisions(instance, findings, criteria).items()]


def run_checks(instances: Iterable[Instance]) -> pd.DataFrame:
    """Rule verdicts: one row per instance x criterion some registered check addresses (``rule_criteria()``).

    Columns: ``VERDICT_COLUMNS`` (instance_id, criterion, label, status, judge="rules",
    prompt_id="rules.v1", rationale, evidence). ``label`` is 0 (error) when a check of severity ``error``
    fired for that criterion, 1 (holds) only where the absence of findings is a reliable pass (an empty
    gold sequence for parameter alignment, at most one call for minimality, calling nothing on a BFCL
    irrelevance instance for sufficiency), and None otherwise with status ``unscored:needs_model`` —
    suspect findings then travel in ``evidence`` for the model judge. Instances with ``calls`` None get
    ``unscored:not_applicable`` for the sequence criteria. ``evidence`` is a list of dicts (check,
    severity, call_index, function, argument, value, expected, message). Empty input gives an empty frame
    with these columns.
    """
    criteria = rule_criteria()
    return verdict_frame(row for instance in instances
                         for row in rule_rows(instance, instance_findings(instance), criteria))
