"""Strict parsing of judge replies: one pydantic model per prompt version, and the JSON schemas sent with them.

Two answer formats: v1 (``judge_combined.v1`` and the per-criterion ``<criterion>.v1`` prompts: extraction,
sentence pairs, extract-then-compare, yes/no questions) and v2 (``judge_combined.v2``: structured parts
per request / argument / call that the decision code turns into labels; see :mod:`.decide`).

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

from ..criteria import CRITERIA
from .prompts import prompt_version as prompt_version  # defined with the prompts (no pydantic); re-exported

MISSING: Final = "#missing"
CREDENTIAL: Final = "#credential"
NOT_NEEDED: Final = "#not_needed"
#: v2 parameter_alignment sources; every one but "unsupported" supports the value.
SOURCES: Final = ("stated", "earlier_output", "inferred", "default", "credential", "unsupported")
UNSUPPORTED: Final = "unsupported"
NONE: Final = "none"


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


# --- v2 answers ---------------------------------------------------------------------------------------


class ExtractionV2(_Strict):
    tool: str
    parameter: str
    values: list[str]


class SpecificityAnswerV2(_Answer):
    """v2: the stated value(s) of each listed parameter, or #missing / #not_needed / #credential."""

    extractions: list[ExtractionV2]


class RequestPair(_Strict):
    index: int
    common_goal: bool


class CoherenceAnswerV2(_Answer):
    """v2: the user's requests, and for each consecutive pair whether they share a common goal."""

    requests: list[str]
    pairs: list[RequestPair]


class RequestTool(_Strict):
    request: str
    tool: str


class SolvabilityAnswerV2(_Answer):
    """v2: the listed tool that provides each request's capability, or "none"."""

    requests: list[RequestTool]


class ArgumentSource(_Strict):
    call_index: int
    argument: str
    source: Literal["stated", "earlier_output", "inferred", "default", "credential", "unsupported"]
    user_value: str


class DroppedConstraint(_Strict):
    call_index: int
    constraint: str


class ParameterAlignmentAnswerV2(_Answer):
    """v2: where each argument's value comes from, and the stated constraints the calls drop."""

    arguments: list[ArgumentSource]
    dropped: list[DroppedConstraint]


class RequestService(_Strict):
    request: str
    solvable: bool
    served_by: list[int]


class SufficiencyAnswerV2(_Answer):
    """v2: the calls aimed at each request (solvable requests only count)."""

    requests: list[RequestService]


class CallUse(_Strict):
    index: int
    serves: str
    needless_repeat: bool


class MinimalityAnswerV2(_Answer):
    """v2: what each call serves ("none" = nothing) and whether it is a needless identical repeat."""

    calls: list[CallUse]


ANSWER_MODELS_V2: Final[Mapping[str, type[_Answer]]] = {
    "specificity": SpecificityAnswerV2,
    "coherence": CoherenceAnswerV2,
    "solvability": SolvabilityAnswerV2,
    "parameter_alignment": ParameterAlignmentAnswerV2,
    "sufficiency": SufficiencyAnswerV2,
    "minimality": MinimalityAnswerV2,
}


def answer_models(version: int = 1) -> Mapping[str, type[_Answer]]:
    """The answer models of a prompt version (1 or 2)."""
    if version == 1:
        return ANSWER_MODELS
    if version == 2:
        return ANSWER_MODELS_V2
    raise ValueError(f"no judge answer format for prompt version {version}")

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


_ARGUMENT_SOURCE: Final = {"type": "string", "enum": list(SOURCES)}
_ANSWER_SCHEMAS_V2: Final[Mapping[str, dict[str, Any]]] = {
    "specificity": _obj(
        {"rationale": _STR, "extractions": _arr(_obj({"tool": _STR, "parameter": _STR, "values": _arr(_STR)}))}
    ),
    "coherence": _obj(
        {"rationale": _STR, "requests": _arr(_STR), "pairs": _arr(_obj({"index": _INT, "common_goal": _BOOL}))}
    ),
    "solvability": _obj({"rationale": _STR, "requests": _arr(_obj({"request": _STR, "tool": _STR}))}),
    "parameter_alignment": _obj(
        {
            "rationale": _STR,
            "arguments": _arr(
                _obj({"call_index": _INT, "argument": _STR, "source": _ARGUMENT_SOURCE, "user_value": _STR})
            ),
            "dropped": _arr(_obj({"call_index": _INT, "constraint": _STR})),
        }
    ),
    "sufficiency": _obj(
        {
            "rationale": _STR,
            "requests": _arr(_obj({"request": _STR, "solvable": _BOOL, "served_by": _arr(_INT)})),
        }
    ),
    "minimality": _obj(
        {"rationale": _STR, "calls": _arr(_obj({"index": _INT, "serves": _STR, "needless_repeat": _BOOL}))}
    ),
}


def _schemas(version: int) -> Mapping[str, dict[str, Any]]:
    return _ANSWER_SCHEMAS if version == 1 else _ANSWER_SCHEMAS_V2


def _check_criteria(criteria: Iterable[str]) -> list[str]:
    criteria = list(criteria)
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
    if not criteria:
        raise ValueError("at least one criterion is needed")
    return criteria


def answer_schema(criterion: str, version: int = 1) -> dict[str, Any]:
    """The JSON schema of one criterion's answer object (a fresh copy)."""
    _check_criteria([criterion])
    return json.loads(json.dumps(_schemas(version)[criterion]))


def combined_schema(criteria: Iterable[str], version: int = 1) -> dict[str, Any]:
    """The JSON schema of a combined answer asking exactly ``criteria`` (in canonical order)."""
    asked = set(_check_criteria(criteria))
    return _obj({c: answer_schema(c, version) for c in CRITERIA if c in asked})


def response_schema(prompt_id: str, criteria: Iterable[str]) -> dict[str, Any]:
    """The ``response_format`` json_schema object: ``{"name", "strict", "schema"}``.

    Combined prompts answer one object keyed by criterion (v2 prompts always do, also when asked one
    criterion in per-criterion mode); the v1 per-criterion prompts answer the bare criterion object.
    """
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", prompt_id)
    criteria = list(criteria)
    version = prompt_version(prompt_id)
    if prompt_id.startswith("judge_combined."):
        schema = combined_schema(criteria, version)
    else:
        schema = answer_schema(criteria[0], version)
    return {"name": name, "strict": True, "schema": schema}


# --- parsing ------------------------------------------------------------------------------------------

_CODE_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(?P<body>.*)\n\s*```\s*$", re.DOTALL)


def find_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object embedded in free text (prose or a code fence around it), or None.

    Tries every ``{`` in order and keeps the first position from which a whole JSON object decodes, so
    braces inside the surrounding prose do not matter as long as the answer object itself is valid.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON here, an integer too long, nested too deeply
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def decode_json_object(text: str | None, *, lenient: bool = False) -> dict[str, Any]:
    """The JSON object a reply holds. Raises :class:`ParseFailure` for anything else.

    Strict by default (one JSON object, a single surrounding code fence tolerated). ``lenient=True`` is
    for servers asked without structured output (``--response-format none``): the first JSON object
    found anywhere in the reply is taken, prose around it is ignored.
    """
    if text is None or not text.strip():
        raise ParseFailure("empty reply")
    body = text
    fenced = _CODE_FENCE.match(text)
    if fenced:
        body = fenced.group("body")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        found = find_json_object(text) if lenient else None
        if found is None:
            where = "no JSON object in the reply" if lenient else "reply is not valid JSON"
            raise ParseFailure(f"{where} ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        value = found
    except (ValueError, RecursionError) as exc:  # an integer too long, values nested too deeply
        raise ParseFailure(f"reply is not usable JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
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


def validate_answer(criterion: str, value: Any, version: int = 1) -> _Answer:
    """Validate one criterion's answer object against its prompt version. Raises :class:`ParseFailure`."""
    model = answer_models(version)[criterion]
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ParseFailure(f"{criterion} answer does not match the schema: {_describe(exc)}") from None


def parse_answer(criterion: str, text: str | None, version: int = 1, *, lenient: bool = False) -> _Answer:
    """Parse a per-criterion (v1) reply into its model. Raises :class:`ParseFailure`."""
    return validate_answer(criterion, decode_json_object(text, lenient=lenient), version)


def parse_combined(
    text: str | None, criteria: Iterable[str], version: int = 1, *, lenient: bool = False
) -> dict[str, _Answer | ParseFailure]:
    """Parse a combined reply: ``{criterion: answer model | ParseFailure}`` for every asked criterion.

    A reply that is not a JSON object makes every criterion a failure; otherwise each criterion is
    validated on its own (a missing key is a failure of that criterion only; keys of criteria not asked
    are ignored).
    """
    criteria = _check_criteria(criteria)
    try:
        value = decode_json_object(text, lenient=lenient)
    except ParseFailure as failure:
        return {c: failure for c in criteria}
    parsed: dict[str, _Answer | ParseFailure] = {}
    for criterion in criteria:
        if criterion not in value:
            parsed[criterion] = ParseFailure(f"combined reply has no '{criterion}' key")
            continue
        try:
            parsed[criterion] = validate_answer(criterion, value[criterion], version)
        except ParseFailure as failure:
            parsed[criterion] = failure
    return parsed
