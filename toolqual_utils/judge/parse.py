"""Strict parsing of judge replies: one pydantic model per prompt, and the JSON schemas sent with them.

A reply either validates against its model or is a :class:`ParseFailure` — which the engine records
as ``unscored:parse_error`` with the raw reply kept; it is never counted as pass or fail.

Strictness: the reply must be one JSON object (a single surrounding Markdown code fence is tolerated,
as some OpenAI-compatible servers add one even under ``response_format``); types are strict (``"true"``
is not a boolean, ``"1"`` is not an integer); keys the schema does not name are ignored (they change
nothing the code reads). In the combined reply each criterion is validated on its own, so one bad
sub-answer makes only that criterion unscored.

Pure module: standard library and pydantic.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..schema import CRITERIA

MISSING: Final = "#missing"
CREDENTIAL: Final = "#credential"
NOT_NEEDED: Final = "#not_needed"


class ParseFailure(Exception):
    """A reply that does not validate; ``reason`` says why (shown in the verdict's rationale)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _Answer(_Strict):
    rationale: str


class Extraction(_Strict):
    tool: str
    parameter: str
    value: str


class SpecificityAnswer(_Answer):
    """``specificity.v1``: one extracted value (or ``#missing``) per required parameter."""

    extractions: list[Extraction]


class PairJudgement(_Strict):
    index: int
    follows: bool


class CoherenceAnswer(_Answer):
    """``coherence.v1``: next-sentence prediction per consecutive sentence pair."""

    pairs: list[PairJudgement]


class ArgumentExtraction(_Strict):
    call_index: int
    argument: str
    instruction_value: str
    equivalent: bool
    from_earlier_call: bool


class ParameterAlignmentAnswer(_Answer):
    """``parameter_alignment.v1``: instruction value per call argument, plus fuzzy-equivalence flags."""

    arguments: list[ArgumentExtraction]


class DirectAnswer(_Answer):
    """``solvability.v1`` / ``sufficiency.v1`` / ``minimality.v1``: yes = the criterion holds."""

    answer: Literal["yes", "no"]


ANSWER_MODELS: Final[Mapping[str, type[_Answer]]] = {
    "specificity": SpecificityAnswer,
    "coherence": CoherenceAnswer,
    "solvability": DirectAnswer,
    "parameter_alignment": ParameterAlignmentAnswer,
    "sufficiency": DirectAnswer,
    "minimality": DirectAnswer,
}

# --- JSON schemas (OpenAI strict structured outputs: every key required, no extra keys) ----------------


def _obj(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def _arr(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(item)}


_STR: Final = {"type": "string"}
_BOOL: Final = {"type": "boolean"}
_INT: Final = {"type": "integer"}

# rationale first: the model states its reason before it commits to the answer
_ANSWER_SCHEMAS: Final[Mapping[str, dict[str, Any]]] = {
    "specificity": _obj(
        {"rationale": _STR, "extractions": _arr(_obj({"tool": _STR, "parameter": _STR, "value": _STR}))}
    ),
    "coherence": _obj({"rationale": _STR, "pairs": _arr(_obj({"index": _INT, "follows": _BOOL}))}),
    "parameter_alignment": _obj(
        {
            "rationale": _STR,
            "arguments": _arr(
                _obj(
                    {
                        "call_index": _INT,
                        "argument": _STR,
                        "instruction_value": _STR,
                        "equivalent": _BOOL,
                        "from_earlier_call": _BOOL,
                    }
                )
            ),
        }
    ),
    "solvability": _obj({"rationale": _STR, "answer": {"type": "string", "enum": ["yes", "no"]}}),
    "sufficiency": _obj({"rationale": _STR, "answer": {"type": "string", "enum": ["yes", "no"]}}),
    "minimality": _obj({"rationale": _STR, "answer": {"type": "string", "enum": ["yes", "no"]}}),
}


def _check_criteria(criteria: Iterable[str]) -> list[str]:
    criteria = list(criteria)
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
    if not criteria:
        raise ValueError("at least one criterion is needed")
    return criteria


def answer_schema(criterion: str) -> dict[str, Any]:
    """The JSON schema of one per-criterion answer (a fresh copy)."""
    _check_criteria([criterion])
    return json.loads(json.dumps(_ANSWER_SCHEMAS[criterion]))


def combined_schema(criteria: Iterable[str]) -> dict[str, Any]:
    """The JSON schema of a combined answer asking exactly ``criteria`` (in canonical order)."""
    asked = set(_check_criteria(criteria))
    return _obj({c: answer_schema(c) for c in CRITERIA if c in asked})


def response_schema(prompt_id: str, criteria: Iterable[str]) -> dict[str, Any]:
    """The ``response_format`` json_schema object: ``{"name", "strict", "schema"}``."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", prompt_id)
    criteria = list(criteria)
    schema = combined_schema(criteria) if prompt_id.startswith("judge_combined.") else answer_schema(criteria[0])
    return {"name": name, "strict": True, "schema": schema}


# --- parsing ------------------------------------------------------------------------------------------

_CODE_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(?P<body>.*)\n\s*```\s*$", re.DOTALL)


def decode_json_object(text: str | None) -> dict[str, Any]:
    """The JSON object a reply holds. Raises :class:`ParseFailure` for anything else."""
    if text is None or not text.strip():
        raise ParseFailure("empty reply")
    body = text
    fenced = _CODE_FENCE.match(text)
    if fenced:
        body = fenced.group("body")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseFailure(f"reply is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ParseFailure(f"reply is JSON {type(value).__name__}, expected an object")
    return value


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "<answer>"
        problems.append(f"{where}: {item.get('msg')}")
    more = f" (+{error.error_count() - 3} more)" if error.error_count() > 3 else ""
    return "; ".join(problems) + more


def validate_answer(criterion: str, value: Any) -> _Answer:
    """Validate one criterion's answer object. Raises :class:`ParseFailure`."""
    model = ANSWER_MODELS[criterion]
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ParseFailure(f"{criterion} answer does not match the schema: {_describe(exc)}") from None


def parse_answer(criterion: str, text: str | None) -> _Answer:
    """Parse a per-criterion reply into its model. Raises :class:`ParseFailure`."""
    return validate_answer(criterion, decode_json_object(text))


def parse_combined(text: str | None, criteria: Iterable[str]) -> dict[str, _Answer | ParseFailure]:
    """Parse a combined reply: ``{criterion: answer model | ParseFailure}`` for every asked criterion.

    A reply that is not a JSON object makes every criterion a failure; otherwise each criterion is
    validated on its own (a missing key is a failure of that criterion only).
    """
    criteria = _check_criteria(criteria)
    try:
        value = decode_json_object(text)
    except ParseFailure as failure:
        return {c: failure for c in criteria}
    parsed: dict[str, _Answer | ParseFailure] = {}
    for criterion in criteria:
        if criterion not in value:
            parsed[criterion] = ParseFailure(f"combined reply has no '{criterion}' key")
            continue
        try:
            parsed[criterion] = validate_answer(criterion, value[criterion])
        except ParseFailure as failure:
            parsed[criterion] = failure
    return parsed
