"""Value normalisation and call matching against lists of acceptable values.

The conventions follow the Berkeley Function-Calling Leaderboard's AST checker (BFCL, Apache-2.0;
re-implemented here, not copied):

- A *possible answer* is a list of gold calls, each ``{function_name: {argument: [acceptable, ...]}}``.
  An argument whose acceptable list contains ``""`` may be omitted.
- Strings are compared after :func:`standardize_string`: lower-cased, with spaces and the characters
  ``, . / - _ * ^`` removed and single quotes turned into double quotes (so ``"April 1, 2024"``,
  ``"april 1 2024"`` and ``"April 1,2024"`` are equal).
- An ``int`` is accepted where a ``number`` (BFCL: ``float``) is expected; a ``float`` is *not* accepted for
  an ``integer`` parameter, and booleans never stand in for numbers (nor numbers for booleans).
- Lists are compared element-wise, in order, with the same normalisation per element; dicts are compared
  key by key, where the acceptable dict maps each key to its own acceptable list (a key whose list holds
  ``""`` may be missing); lists of dicts element-wise.
- Parallel calls are order-free: calls and gold entries are matched as sets, by a bipartite assignment
  (an exact maximum matching, so a greedy first choice can never block a valid pairing).
- An argument outside the tool's schema, or absent from the gold entry, is *unexpected*; a required
  argument (tool schema) or a gold argument without ``""`` that is missing is an error.

Pure module: standard library only.

Example:
    >>> from toolqual_utils.matching import calls_match
    >>> answer = [{"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
    ...           {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}}]
    >>> calls = [{"name": "spotify.play", "arguments": {"artist": "maroon 5", "duration": 15}},
    ...          {"name": "spotify.play", "arguments": {"artist": "Taylor swift", "duration": 20}}]
    >>> calls_match(calls, answer).ok
    True
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MatchResult",
    "standardize_string",
    "type_conforms",
    "values_match",
    "value_mismatch",
    "call_matches",
    "calls_match",
]

#: BFCL's standardisation removes spaces and these punctuation marks before comparing strings.
_STANDARDIZE_RE = re.compile(r"[ ,./\-_*^]")

#: JSON-Schema type names, plus the BFCL/Python spellings a loader may have kept.
_TYPE_ALIASES = {
    "string": "string", "str": "string", "any": "any",
    "integer": "integer", "int": "integer",
    "number": "number", "float": "number", "double": "number",
    "boolean": "boolean", "bool": "boolean",
    "array": "array", "list": "array", "tuple": "array",
    "object": "object", "dict": "object",
    "null": "null",
}


@dataclass
class MatchResult:
    """Outcome of matching calls against a possible answer.

    Attributes:
        ok: True when every call is matched to exactly one gold entry and every gold entry is matched.
        reasons: human-readable reasons for a failed match (empty when ``ok``); each names the call index,
            the function and, where relevant, the argument, the value and what was expected.
        assignment: ``(call_index, gold_index)`` pairs of the matching found (all pairs when ``ok``).
    """

    ok: bool
    reasons: list[str] = field(default_factory=list)
    assignment: list[tuple[int, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


def standardize_string(text: str) -> str:
    """Lower-case, drop spaces and ``, . / - _ * ^``, and turn ``'`` into ``"`` (BFCL's convention)."""
    return _STANDARDIZE_RE.sub("", text).lower().replace("'", '"')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _canonical_type(param_type: Any) -> str | None:
    if isinstance(param_type, str):
        return _TYPE_ALIASES.get(param_type.lower())
    return None


def type_conforms(value: Any, param_type: Any) -> bool:
    """Whether ``value`` has the schema type ``param_type`` (JSON-Schema or BFCL spelling).

    ``int`` conforms to ``number``; ``bool`` conforms only to ``boolean``; a type list conforms when any
    member does; an unknown or missing type always conforms.
    """
    if isinstance(param_type, list):
        return any(type_conforms(value, member) for member in param_type) if param_type else True
    kind = _canonical_type(param_type)
    if kind is None or kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, (list, tuple))
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "null":
        return value is None
    return True


def _is_spec_dict(candidate: Mapping[str, Any]) -> bool:
    """A dict whose values are all lists reads as ``{key: [acceptable, ...]}`` (BFCL dict answers)."""
    return bool(candidate) and all(isinstance(v, list) for v in candidate.values())


def _element_equal(value: Any, expected: Any) -> bool:
    """One value against one acceptable value, with BFCL's normalisation applied recursively."""
    if isinstance(expected, str):
        return isinstance(value, str) and standardize_string(value) == standardize_string(expected)
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and value == expected
    if _is_number(expected):
        if not _is_number(value):
            return False
        if value == expected:
            return True
        try:
            return math.isclose(float(value), float(expected), rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:  # an integer beyond the float range equals only itself
            return False
    if isinstance(expected, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(expected):
            return False
        return all(_element_equal(v, e) for v, e in zip(value, expected))
    if isinstance(expected, Mapping):
        if not isinstance(value, Mapping):
            return False
        if _is_spec_dict(expected) and _dict_spec_match(value, expected):
            return True
        if set(value) != set(expected):
            return False
        return all(_element_equal(value[k], expected[k]) for k in expected)
    return value == expected


def _dict_spec_match(value: Mapping[str, Any], spec: Mapping[str, list[Any]]) -> bool:
    for key, item in value.items():
        if key not in spec:
            return False
        if not any(item == "" if accepted == "" else _element_equal(item, accepted) for accepted in spec[key]):
            return False
    return all(key in value or "" in accepted for key, accepted in spec.items())


def value_mismatch(value: Any, acceptable: Sequence[Any], param_type: Any = None) -> str | None:
    """Why ``value`` is not one of ``acceptable`` (None when it is).

    Args:
        value: the value passed in the call.
        acceptable: the acceptable values (``""`` marks "may be omitted"; a passed ``""`` still matches it,
            as in BFCL).
        param_type: the schema type of the parameter, if known; the value must conform to it (``int`` for
            ``number`` is fine), unless the gold answer itself uses the value's type.
    """
    if not isinstance(acceptable, (list, tuple)):
        acceptable = [acceptable]
    concrete = [a for a in acceptable if a != ""]
    if param_type is not None and not type_conforms(value, param_type):
        # BFCL accepts a value of the gold answer's own type even when the schema says otherwise.
        if not any(type_conforms(value, _type_of(a)) for a in concrete):
            return f"expected type {param_type}, got {type(value).__name__}"
    for accepted in acceptable:
        if accepted == "":
            if value == "":
                return None
            continue
        if _element_equal(value, accepted):
            return None
    shown = [a for a in acceptable if a != ""] or acceptable
    return f"value {value!r} is not one of the acceptable values {list(shown)!r}"


def values_match(value: Any, acceptable: Sequence[Any], param_type: Any = None) -> bool:
    """True when ``value`` equals one of ``acceptable`` under BFCL's normalisation (see module docs)."""
    return value_mismatch(value, acceptable, param_type) is None


def _type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return None


# --- calls --------------------------------------------------------------------------------------------

def _call_parts(call: Any) -> tuple[str, Mapping[str, Any] | None]:
    """(name, arguments) of a ``Call``, a ``{"name", "arguments"}`` dict or a BFCL ``{name: {args}}`` dict."""
    name = getattr(call, "name", None)
    if name is not None:
        return str(name), getattr(call, "arguments", None)
    if isinstance(call, Mapping):
        if "name" in call and ("arguments" in call or len(call) <= 2):
            arguments = call.get("arguments")
            return str(call["name"]), arguments if isinstance(arguments, Mapping) or arguments is None else None
        if len(call) == 1:
            (only_name, arguments), = call.items()
            return str(only_name), arguments if isinstance(arguments, Mapping) else None
    raise TypeError(f"cannot read a call from {type(call).__name__}: expected Call, "
                    "{'name': ..., 'arguments': {...}} or {name: {...}}")


def _gold_parts(gold_spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(gold_spec, Mapping) or len(gold_spec) != 1:
        raise TypeError("a gold entry must be a one-key dict {function_name: {argument: [acceptable, ...]}}")
    (name, spec), = gold_spec.items()
    return str(name), spec if isinstance(spec, Mapping) else {}


def _tool_schema(tool: Any) -> tuple[dict[str, Any], list[str]] | None:
    if tool is None:
        return None
    parameters = getattr(tool, "parameters", None)
    if parameters is None and isinstance(tool, Mapping):
        parameters = tool.get("parameters", {})
    parameters = parameters or {}
    properties = parameters.get("properties") or {}
    required = parameters.get("required") or []
    return dict(properties), list(required)


def _tool_name(tool: Any) -> str | None:
    name = getattr(tool, "name", None)
    if name is None and isinstance(tool, Mapping):
        name = tool.get("name")
    return name


def _names_equal(actual: str, expected: str, loose_names: bool) -> bool:
    if actual == expected:
        return True
    # OpenAI-style APIs forbid "." in function names; BFCL accepts "_" for "." for such models.
    return loose_names and actual.replace(".", "_") == expected.replace(".", "_")


def _call_problems(call: Any, gold_spec: Mapping[str, Any], tool: Any, loose_names: bool) -> list[str]:
    name, arguments = _call_parts(call)
    gold_name, spec = _gold_parts(gold_spec)
    if not _names_equal(name, gold_name, loose_names):
        return [f"function {name!r} is not the expected {gold_name!r}"]
    if arguments is None:
        return [f"{name}: arguments could not be parsed"]
    schema = _tool_schema(tool)
    properties, required = schema if schema is not None else ({}, [])
    problems = []
    for param in required:
        if param not in arguments:
            problems.append(f"{name}: missing required argument {param!r}")
    for param, value in arguments.items():
        if schema is not None and param not in properties:
            problems.append(f"{name}: unexpected argument {param!r} (not in the tool's schema)")
            continue
        if param not in spec:
            problems.append(f"{name}: unexpected argument {param!r}={value!r} (not in the gold answer)")
            continue
        param_schema = properties.get(param) if isinstance(properties.get(param), Mapping) else {}
        reason = value_mismatch(value, spec[param], param_schema.get("type") if param_schema else None)
        if reason is not None:
            problems.append(f"{name}: argument {param!r}: {reason}")
    for param, accepted in spec.items():
        if param not in arguments and param not in required and "" not in accepted:
            problems.append(f"{name}: argument {param!r} is missing and may not be omitted "
                            f"(expected one of {list(accepted)!r})")
    return problems


def call_matches(call: Any, gold_spec: Mapping[str, Any], tool: Any = None, *,
                 loose_names: bool = False) -> MatchResult:
    """Match one call against one gold entry ``{function_name: {argument: [acceptable, ...]}}``.

    Args:
        call: a :class:`~toolqual_utils.schema.Call`, a ``{"name", "arguments"}`` dict, or ``{name: {args}}``.
        gold_spec: the gold entry.
        tool: the tool's :class:`~toolqual_utils.schema.ToolSpec` (or its dict); gives the required
            arguments, the known arguments and their types. ``None`` skips the schema checks.
        loose_names: accept ``_`` for ``.`` in function names.
    """
    problems = _call_problems(call, gold_spec, tool, loose_names)
    return MatchResult(ok=not problems, reasons=problems, assignment=[] if problems else [(0, 0)])


def _max_matching(compatible: list[list[bool]], n_gold: int) -> list[int | None]:
    """Maximum bipartite matching (Kuhn's augmenting paths): gold index per call, or None."""
    gold_owner: list[int | None] = [None] * n_gold

    def augment(call_index: int, seen: list[bool]) -> bool:
        for gold_index in range(n_gold):
            if compatible[call_index][gold_index] and not seen[gold_index]:
                seen[gold_index] = True
                owner = gold_owner[gold_index]
                if owner is None or augment(owner, seen):
                    gold_owner[gold_index] = call_index
                    return True
        return False

    for call_index in range(len(compatible)):
        augment(call_index, [False] * n_gold)
    call_to_gold: list[int | None] = [None] * len(compatible)
    for gold_index, owner in enumerate(gold_owner):
        if owner is not None:
            call_to_gold[owner] = gold_index
    return call_to_gold


def calls_match(calls: Sequence[Any], possible_answer: Sequence[Mapping[str, Any]],
                tools: Sequence[Any] | Mapping[str, Any] | None = None, *, ordered: bool = False,
                loose_names: bool = False) -> MatchResult:
    """Match a call sequence against a possible answer (a list of gold entries).

    Args:
        calls: the calls to check (``Call`` objects or dicts, see :func:`call_matches`).
        possible_answer: ``[{function_name: {argument: [acceptable, ...]}}, ...]``; ``[]`` means "no call".
        tools: the offered tools (list of ``ToolSpec``/dicts, or a name -> tool mapping) for schema checks;
            None skips them.
        ordered: if True, call i must match gold entry i (sequential gold); otherwise calls are matched as a
            set (BFCL's parallel categories).
        loose_names: accept ``_`` for ``.`` in function names.

    Returns:
        A :class:`MatchResult`. With the wrong number of calls, ``ok`` is False and the reasons say so
        (and still list the calls that have no counterpart).
    """
    if isinstance(tools, Mapping):
        by_name = dict(tools)
    else:
        by_name = {_tool_name(t): t for t in (tools or [])}
    gold_names = [_gold_parts(g)[0] for g in possible_answer]

    def tool_for(gold_name: str) -> Any:
        tool = by_name.get(gold_name)
        if tool is None and loose_names:
            tool = next((t for n, t in by_name.items() if n and _names_equal(n, gold_name, True)), None)
        return tool

    problems = [[_call_problems(call, gold, tool_for(gold_names[j]), loose_names)
                 for j, gold in enumerate(possible_answer)] for call in calls]
    compatible = [[not p for p in row] for row in problems]
    reasons: list[str] = []
    if len(calls) != len(possible_answer):
        reasons.append(f"wrong number of calls: got {len(calls)}, expected {len(possible_answer)}")

    if ordered:
        assignment = [(i, i) for i in range(min(len(calls), len(possible_answer))) if compatible[i][i]]
        for i in range(min(len(calls), len(possible_answer))):
            if not compatible[i][i]:
                reasons.extend(f"call {i}: {p}" for p in problems[i][i])
    else:
        call_to_gold = _max_matching(compatible, len(possible_answer))
        assignment = [(i, j) for i, j in enumerate(call_to_gold) if j is not None]
        matched_gold = {j for _, j in assignment}
        for i, j in enumerate(call_to_gold):
            if j is not None:
                continue
            # Explain with the closest unmatched gold entry of the same function, else any unmatched one.
            open_gold = [g for g in range(len(possible_answer)) if g not in matched_gold]
            same_name = [g for g in open_gold if _names_equal(_call_parts(calls[i])[0], gold_names[g], loose_names)]
            candidates = same_name or open_gold
            if candidates:
                best = min(candidates, key=lambda g: len(problems[i][g]))
                reasons.extend(f"call {i}: {p}" for p in problems[i][best])
            else:
                reasons.append(f"call {i}: {_call_parts(calls[i])[0]!r} has no counterpart in the gold answer")
        for g in range(len(possible_answer)):
            if g not in matched_gold and not any(compatible[i][g] for i in range(len(calls))) and len(calls) < len(possible_answer):
                reasons.append(f"gold call {g} ({gold_names[g]!r}) is not served by any call")
    ok = not reasons and len(assignment) == len(possible_answer) == len(calls)
    return MatchResult(ok=ok, reasons=reasons, assignment=sorted(assignment))
