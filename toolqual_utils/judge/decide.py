"""From a parsed judge answer (or from code alone) to a verdict: label, status, rationale, evidence.

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
from typing import Any, Final

from .context import ArgumentCheck, InstanceContext, normalise
from .parse import (
    CoherenceAnswer,
    DirectAnswer,
    MISSING,
    ParameterAlignmentAnswer,
    ParseFailure,
    SpecificityAnswer,
)
from ..schema import SEQUENCE_CRITERIA

#: prompt id of verdicts the judge settles in code (no model asked; judge column "rules")
ENGINE_PROMPT_ID: Final = "judge_engine.v1"


@dataclass(frozen=True)
class Decision:
    label: int | None
    status: str
    rationale: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


def _holds(label: bool) -> int:
    return 1 if label else 0


def pre_decide(context: InstanceContext, criterion: str) -> Decision | None:
    """The verdict the code can give without a model, or None when the model must be asked."""
    if criterion in SEQUENCE_CRITERIA and not context.has_calls:
        return Decision(None, "unscored:not_applicable", "no gold calls are known for this instance")
    if criterion == "coherence" and len(context.sentences) <= 1:
        return Decision(
            1, "ok", "the instruction is a single sentence: coherent without asking",
            [{"check": "coherence", "n_sentences": len(context.sentences)}],
        )
    if criterion == "specificity" and not context.required_parameters:
        scope = "the tools the gold calls use" if context.needed_tools_known else "the offered tools"
        return Decision(
            1, "ok", f"{scope} have no required parameters: nothing can be missing",
            [{"check": "specificity", "n_required_parameters": 0}],
        )
    if criterion == "parameter_alignment":
        if context.n_calls == 0:
            return Decision(None, "unscored:not_applicable", "the gold answer makes no call: no arguments to align")
        missing = [a for a in context.argument_checks if a.settled_by == "required_missing"]
        if missing:
            names = ", ".join(f"{a.argument} of call {a.call_index} ({a.call_name})" for a in missing)
            return Decision(
                0, "ok", f"required parameter(s) absent or empty: {names}",
                [{**a.evidence(), "supported": False, "by": "required_missing"} for a in missing],
            )
        if not context.open_arguments:
            return Decision(
                1, "ok", "every argument value was found in the instruction, an earlier output or the schema default",
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
    return Decision(_holds(not missing), "ok", rationale, evidence)


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
    return Decision(_holds(not broken), "ok", rationale, evidence)


def _decide_direct(criterion: str, answer: DirectAnswer) -> Decision:
    return Decision(
        _holds(answer.answer == "yes"), "ok", answer.rationale,
        [{"check": criterion, "question": f"{criterion}.yes_no", "answer": answer.answer}],
    )


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
    return Decision(_holds(not unsupported), "ok", rationale, evidence)


def decide(criterion: str, answer: Any, context: InstanceContext) -> Decision:
    """Label one criterion from its validated answer. Raises ParseFailure on incomplete answers."""
    if criterion == "specificity":
        return _decide_specificity(answer, context)
    if criterion == "coherence":
        return _decide_coherence(answer, context)
    if criterion == "parameter_alignment":
        return _decide_alignment(answer, context)
    if criterion in ("solvability", "sufficiency", "minimality"):
        return _decide_direct(criterion, answer)
    raise ValueError(f"unknown criterion {criterion!r}")
