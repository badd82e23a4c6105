"""From a parsed judge answer (or from code alone) to a verdict: label, status, rationale, evidence.

v2 (``judge_combined.v2``) answers are structured parts that the code turns into labels: specificity =
0 when any listed parameter's values include ``#missing``; coherence = 0 when any consecutive pair of the
user's requests has no common goal; solvability = 0 when some request has no tool ("none");
parameter alignment = 0 when an argument's source is "unsupported" or a stated constraint is dropped;
sufficiency = 0 when a solvable request has no call aimed at it; minimality = 0 when a call serves no
request or is a needless identical repeat. The v1 formulations follow.

Two entry points:
- :func:`pre_decide` — what the engine settles WITHOUT a model (so nothing is sent): sequence criteria
  without gold calls (``unscored:not_applicable``), a one-sentence instruction (coherent), needed tools
  with no required parameters (specific), parameter alignment when the code already found a required
  parameter missing (error) or settled every argument (aligned).
- :func:`decide` — turn a validated answer into a label, following the paper's task formulations:
  specificity = 0 when any required parameter's extracted value is ``#missing``; coherence = 0 when any
  consecutive sentence pair does not follow; parameter alignment = extract-then-compare (the code
  compares the extracted instruction value with the call's value, normalised exact match first; the
  model's ``equivalent`` / ``from_earlier_call`` flags only decide what exact matching cannot);
  solvability / sufficiency / minimality = the yes/no answer (yes = holds).
  An answer that does not cover what was asked raises :class:`~toolqual_utils.judge.parse.ParseFailure`.

Labels: 1 = the criterion holds, 0 = error, None = unscored. Pure module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .context import ArgumentCheck, InstanceContext, is_credential_argument, is_empty_value, normalise
from .parse import (
    MISSING,
    NONE,
    UNSUPPORTED,
    CoherenceAnswer,
    CoherenceAnswerV2,
    DirectAnswer,
    MinimalityAnswerV2,
    ParameterAlignmentAnswer,
    ParameterAlignmentAnswerV2,
    ParseFailure,
    SolvabilityAnswerV2,
    SpecificityAnswer,
    SpecificityAnswerV2,
    SufficiencyAnswerV2,
)
from ..criteria import SEQUENCE_CRITERIA
from ..verdicts import Status
from .prompts import ENGINE_PROMPT_ID as ENGINE_PROMPT_ID  # defined with the prompts; re-exported


@dataclass(frozen=True)
class Decision:
    label: int | None
    status: str
    rationale: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


def _holds(label: bool) -> int:
    return 1 if label else 0


def pre_decide(context: InstanceContext, criterion: str) -> Decision | None:
    """The verdict the code can give without a model, or None when the model must be asked.

    v1 and v2 share: sequence criteria without gold calls are not applicable; specificity holds when no
    parameter must be filled; parameter alignment is an error when a required parameter is absent or
    empty. v1 also settles coherence for a one-sentence instruction and alignment when every argument
    was found in the instruction; v2 asks the model (one sentence can glue two requests together, and a
    value found in the instruction can still be a placeholder or contradict the request).
    """
    if criterion in SEQUENCE_CRITERIA and not context.has_calls:
        return Decision(None, Status.UNSCORED_NOT_APPLICABLE, "no gold calls are known for this instance")
    if context.version >= 2:
        return _pre_decide_shared(context, criterion, settle_aligned=False)
    if criterion == "coherence" and len(context.sentences) <= 1:
        return Decision(
            1, Status.OK, "the instruction is a single sentence: coherent without asking",
            [{"check": "coherence", "n_sentences": len(context.sentences)}],
        )
    return _pre_decide_shared(context, criterion, settle_aligned=True)


def _pre_decide_shared(context: InstanceContext, criterion: str, *, settle_aligned: bool) -> Decision | None:
    if criterion == "specificity" and not context.required_parameters:
        scope = "the tools the gold calls use" if context.needed_tools_known else "the offered tools"
        return Decision(
            1, Status.OK, f"{scope} have no required parameters: nothing can be missing",
            [{"check": "specificity", "n_required_parameters": 0}],
        )
    if criterion == "parameter_alignment":
        if context.n_calls == 0:
            return Decision(None, Status.UNSCORED_NOT_APPLICABLE, "the gold answer makes no call: no arguments to align")
        missing = [a for a in context.argument_checks if a.settled_by == "required_missing"]
        if missing:
            names = ", ".join(f"{a.argument} of call {a.call_index} ({a.call_name})" for a in missing)
            return Decision(
                0, Status.OK, f"required parameter(s) absent or empty: {names}",
                [{**a.evidence(), "supported": False, "by": "required_missing"} for a in missing],
            )
        if settle_aligned and not context.open_arguments:
            return Decision(
                1, Status.OK, "every argument value was found in the instruction, an earlier output or the schema default",
                [{**a.evidence(), "supported": True, "by": a.settled_by} for a in context.argument_checks],
            )
    return None


def _decide_specificity(answer: SpecificityAnswer, context: InstanceContext) -> Decision:
    by_key = {(e.tool, e.parameter): e.value for e in answer.extractions}
    uncovered = [p for p in context.required_parameters if (p.tool, p.parameter) not in by_key]
    if uncovered:
        names = ", ".join(f"{p.tool}.{p.parameter}" for p in uncovered[:5])
        raise ParseFailure(f"specificity answer gives no extraction for {names}")
    evidence = []
    missing = []
    for param in context.required_parameters:
        value = by_key[(param.tool, param.parameter)]
        is_missing = value.strip().casefold() == MISSING
        if is_missing:
            missing.append(f"{param.tool}.{param.parameter}")
        evidence.append(
            {"check": "specificity", "tool": param.tool, "parameter": param.parameter, "value": value,
             "missing": is_missing}
        )
    rationale = answer.rationale
    if missing:
        rationale = f"#missing: {', '.join(missing)}. {rationale}"
    return Decision(_holds(not missing), Status.OK, rationale, evidence)


def _decide_coherence(answer: CoherenceAnswer, context: InstanceContext) -> Decision:
    pairs = context.sentence_pairs
    by_index = {p.index: p.follows for p in answer.pairs}
    uncovered = [i for i in range(len(pairs)) if i not in by_index]
    if uncovered:
        raise ParseFailure(f"coherence answer gives no judgement for sentence pair(s) {uncovered[:5]}")
    evidence = [
        {"check": "coherence", "pair_index": i, "sentence_a": a, "sentence_b": b, "follows": by_index[i]}
        for i, (a, b) in enumerate(pairs)
    ]
    broken = [i for i in range(len(pairs)) if not by_index[i]]
    rationale = answer.rationale
    if broken:
        rationale = f"pair(s) {broken} do not follow. {rationale}"
    return Decision(_holds(not broken), Status.OK, rationale, evidence)


def _decide_direct(criterion: str, answer: DirectAnswer) -> Decision:
    return Decision(
        _holds(answer.answer == "yes"), Status.OK, answer.rationale,
        [{"check": criterion, "question": f"{criterion}.yes_no", "answer": answer.answer}],
    )


def code_support(arg: ArgumentCheck, context: InstanceContext) -> str | None:
    """What the code knows supports an argument whatever the model answered: a credential (by name or
    a redacted value), or an empty value of an optional parameter (passing it passes nothing)."""
    if arg.argument != "*" and is_credential_argument(arg.argument, arg.value):
        return "credential"
    if arg.argument != "*" and is_empty_value(arg.value):
        return "empty_optional"
    return None


def _model_support(arg: ArgumentCheck, instruction_value: str, equivalent: bool, earlier: bool) -> str | None:
    stated = instruction_value.strip().casefold() != MISSING
    if stated and normalise(instruction_value) == normalise(arg.value):
        return "extracted_exact"
    if stated and equivalent:
        return "model_equivalent"
    if earlier and arg.call_index > 0:
        return "model_earlier_call"
    return None


def _decide_alignment(answer: ParameterAlignmentAnswer, context: InstanceContext) -> Decision:
    by_key = {(a.call_index, a.argument): a for a in answer.arguments}
    open_args = context.open_arguments
    uncovered = [a for a in open_args if a.key not in by_key]
    if uncovered:
        names = ", ".join(f"{a.argument} of call {a.call_index}" for a in uncovered[:5])
        raise ParseFailure(f"parameter_alignment answer gives no extraction for {names}")
    evidence = []
    unsupported = []
    for arg in context.argument_checks:
        row = arg.evidence()
        if arg.settled_by is not None:
            row.update(supported=arg.settled_by != "required_missing", by=arg.settled_by)
        else:
            extraction = by_key[arg.key]
            by = _model_support(arg, extraction.instruction_value, extraction.equivalent, extraction.from_earlier_call)
            by = by or code_support(arg, context) or (
                "documented_default" if _documented_default_of(arg, context) else None)
            row.update(
                supported=by is not None, by=by or "unsupported", instruction_value=extraction.instruction_value,
                equivalent=extraction.equivalent, from_earlier_call=extraction.from_earlier_call,
            )
        if not row["supported"]:
            unsupported.append(f"{arg.argument} of call {arg.call_index}")
        evidence.append(row)
    rationale = answer.rationale
    if unsupported:
        rationale = f"unsupported value(s): {', '.join(unsupported)}. {rationale}"
    return Decision(_holds(not unsupported), Status.OK, rationale, evidence)


def _documented_default_of(arg: ArgumentCheck, context: InstanceContext) -> bool:
    """v1 settles schema defaults in code; a default stated only in the description counts the same."""
    return context.version == 1 and arg.is_documented_default


# --- v2 -------------------------------------------------------------------------------------------------


def _is(text: str, marker: str) -> bool:
    return text.strip().casefold() == marker


def _decide_specificity_v2(answer: SpecificityAnswerV2, context: InstanceContext) -> Decision:
    by_key = {(e.tool, e.parameter): e.values for e in answer.extractions}
    uncovered = [p for p in context.required_parameters if (p.tool, p.parameter) not in by_key]
    if uncovered:
        names = ", ".join(f"{p.tool}.{p.parameter}" for p in uncovered[:5])
        raise ParseFailure(f"specificity answer gives no extraction for {names}")
    empty = [f"{p.tool}.{p.parameter}" for p in context.required_parameters if not by_key[(p.tool, p.parameter)]]
    if empty:
        raise ParseFailure(f"specificity answer lists no value for {', '.join(empty[:5])}")
    evidence, missing = [], []
    for param in context.required_parameters:
        values = by_key[(param.tool, param.parameter)]
        is_missing = any(_is(v, MISSING) for v in values)
        if is_missing:
            missing.append(f"{param.tool}.{param.parameter}")
        evidence.append({"check": "specificity", "tool": param.tool, "parameter": param.parameter,
                         "values": list(values), "missing": is_missing})
    rationale = f"#missing: {', '.join(missing)}. {answer.rationale}" if missing else answer.rationale
    return Decision(_holds(not missing), Status.OK, rationale, evidence)


def _decide_coherence_v2(answer: CoherenceAnswerV2, context: InstanceContext) -> Decision:
    requests = list(answer.requests)
    n_pairs = max(len(requests) - 1, 0)
    by_index = {p.index: p.common_goal for p in answer.pairs}
    uncovered = [i for i in range(n_pairs) if i not in by_index]
    if uncovered:
        raise ParseFailure(f"coherence answer judges no pair {uncovered[:5]} of its {len(requests)} requests")
    evidence = [
        {"check": "coherence", "pair_index": i, "request_a": requests[i], "request_b": requests[i + 1],
         "common_goal": by_index[i]}
        for i in range(n_pairs)
    ] or [{"check": "coherence", "n_requests": len(requests), "requests": requests}]
    broken = [i for i in range(n_pairs) if not by_index[i]]
    rationale = answer.rationale
    if broken:
        names = "; ".join(f"{requests[i]!r} / {requests[i + 1]!r}" for i in broken[:3])
        rationale = f"no common goal: {names}. {rationale}"
    return Decision(_holds(not broken), Status.OK, rationale, evidence)


def _decide_solvability_v2(answer: SolvabilityAnswerV2, context: InstanceContext) -> Decision:
    evidence = [{"check": "solvability", "request": r.request, "tool": r.tool} for r in answer.requests]
    unsolvable = [r.request for r in answer.requests if _is(r.tool, NONE) or not r.tool.strip()]
    rationale = answer.rationale
    if unsolvable:
        rationale = f"no listed tool provides: {'; '.join(map(repr, unsolvable[:3]))}. {rationale}"
    return Decision(_holds(not unsolvable), Status.OK, rationale, evidence)


def _decide_alignment_v2(answer: ParameterAlignmentAnswerV2, context: InstanceContext) -> Decision:
    by_key = {(a.call_index, a.argument): a for a in answer.arguments}
    uncovered = [a for a in context.open_arguments if a.key not in by_key]
    if uncovered:
        names = ", ".join(f"{a.argument} of call {a.call_index}" for a in uncovered[:5])
        raise ParseFailure(f"parameter_alignment answer gives no source for {names}")
    evidence, unsupported = [], []
    for arg in context.argument_checks:
        row = arg.evidence()
        if arg.settled_by is not None:
            row.update(supported=arg.settled_by != "required_missing", by=arg.settled_by)
        else:
            source = by_key[arg.key]
            row.update(supported=source.source != UNSUPPORTED, by=source.source, user_value=source.user_value)
        if not row["supported"]:
            unsupported.append(f"{arg.argument} of call {arg.call_index}")
        evidence.append(row)
    dropped = [d for d in answer.dropped if d.constraint.strip()]
    evidence += [{"check": "parameter_alignment", "call_index": d.call_index, "dropped_constraint": d.constraint}
                 for d in dropped]
    problems = []
    if unsupported:
        problems.append(f"unsupported value(s): {', '.join(unsupported)}")
    if dropped:
        problems.append("dropped: " + "; ".join(f"{d.constraint!r} (call {d.call_index})" for d in dropped[:3]))
    rationale = f"{'. '.join(problems)}. {answer.rationale}" if problems else answer.rationale
    return Decision(_holds(not problems), Status.OK, rationale, evidence)


def _decide_sufficiency_v2(answer: SufficiencyAnswerV2, context: InstanceContext) -> Decision:
    valid = set(context.call_indices)
    evidence, unserved = [], []
    for r in answer.requests:
        served_by = [i for i in r.served_by if i in valid]
        evidence.append({"check": "sufficiency", "request": r.request, "solvable": r.solvable, "served_by": served_by})
        if r.solvable and not served_by:
            unserved.append(r.request)
    rationale = answer.rationale
    if unserved:
        rationale = f"no call aimed at: {'; '.join(map(repr, unserved[:3]))}. {rationale}"
    return Decision(_holds(not unserved), Status.OK, rationale, evidence)


def _decide_minimality_v2(answer: MinimalityAnswerV2, context: InstanceContext) -> Decision:
    by_index = {c.index: c for c in answer.calls}
    uncovered = [i for i in context.call_indices if i not in by_index]
    if uncovered:
        raise ParseFailure(f"minimality answer says nothing about call(s) {uncovered[:5]}")
    evidence, needless = [], []
    for index in context.call_indices:
        use = by_index[index]
        serves_nothing = _is(use.serves, NONE) or not use.serves.strip()
        evidence.append({"check": "minimality", "call_index": index, "serves": use.serves,
                         "needless_repeat": use.needless_repeat})
        if serves_nothing:
            needless.append(f"call {index} serves no request")
        elif use.needless_repeat:
            needless.append(f"call {index} repeats an earlier call")
    rationale = f"{'; '.join(needless)}. {answer.rationale}" if needless else answer.rationale
    return Decision(_holds(not needless), Status.OK, rationale, evidence)


_DECIDE_V2 = {
    "specificity": _decide_specificity_v2,
    "coherence": _decide_coherence_v2,
    "solvability": _decide_solvability_v2,
    "parameter_alignment": _decide_alignment_v2,
    "sufficiency": _decide_sufficiency_v2,
    "minimality": _decide_minimality_v2,
}


def decide(criterion: str, answer: Any, context: InstanceContext) -> Decision:
    """Label one criterion from its validated answer. Raises ParseFailure on incomplete answers."""
    if context.version >= 2:
        try:
            return _DECIDE_V2[criterion](answer, context)
        except KeyError:
            raise ValueError(f"unknown criterion {criterion!r}") from None
    if criterion == "specificity":
        return _decide_specificity(answer, context)
    if criterion == "coherence":
        return _decide_coherence(answer, context)
    if criterion == "parameter_alignment":
        return _decide_alignment(answer, context)
    if criterion in ("solvability", "sufficiency", "minimality"):
        return _decide_direct(criterion, answer)
    raise ValueError(f"unknown criterion {criterion!r}")
