"""What the checks ask of one argument value: is it a placeholder, is it grounded, is it empty.

- :func:`placeholder_problem`: a literal placeholder passed as the value: a type name (``"string"``), a
  template (``<name>``, ``{x}``, ``${some permission}``), the parameter's own name (``"country"`` for
  ``country``), or a vague phrase (``"specific actor"``, ``"a certain year"``).
- :func:`ungrounded`: a value not supported by the instruction, an earlier output, a reference or an
  exemption, with a severity: ``error`` when nothing of it appears and it is optional (or it is the
  schema's own example), ``suspect`` when partly found, a short code, a number, a date or a required
  value (an inference the model judge decides).

Grounding exemptions (never ungrounded): the schema's default; booleans; the integers 0 and 1 (flags,
first page); the only value of a one-value enum; values with no content words ("all", "any"); values
seen in an earlier call's observation, in an earlier call's arguments or in a pseudo-call; references to
earlier outputs (``API_call_1``, ``${x from f}``); dates when the instruction speaks of relative time
("next year", "past three months"). Credentials are exempt before these are asked (see
:class:`~toolqual_utils.checks.tool_schema.ParamInfo`).

Pure module: standard library only.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

from .registry import Severity
from .text import DATE_HINT, STOPWORDS, InstructionText, compact, initials_supported, norm, param_words, parse_date, \
    token_supported
from .tool_schema import ParamInfo, is_numeric_string

__all__ = [
    "REFERENCE_RE", "TEMPLATE_RE", "ERROR_OBSERVATION", "Gap", "placeholder_problem", "ungrounded", "unstated",
    "is_empty", "scalars",
    "repair_raw", "call_key", "jsonable", "short",
]

#: a reference to an earlier call's output, passed instead of a value (acceptable)
REFERENCE_RE: Final = re.compile(
    r"^\s*(api_call_\d+(\.\w+)*|\$\{[^}]*\bfrom\b[^}]*\}|\$\w+|\{\{[^}]*\bfrom\b[^}]*\}\}|"
    r"<[^>]*\bfrom\b[^>]*>|@\w+)\s*$",
    re.IGNORECASE,
)
#: an unfilled template in a value or in argument text: ``${...}``, ``{{...}}``
TEMPLATE_RE: Final = re.compile(r"\$\{[^}]*\}|\{\{[^}]*\}\}")
#: an observation that says the call failed
ERROR_OBSERVATION: Final = re.compile(
    r"(\"error\"\s*:\s*\"[^\"]+\"|'error'\s*:\s*'[^']+'|status code:\s*[45]\d\d|internal server error|"
    r"\btimed? ?out\b|\bexception\b|\bnot found\b|\bdoes not exist\b|\binvalid\b|\bunauthori[sz]ed\b|"
    r"\bforbidden\b|\brate limit|\bfailed\b)",
    re.IGNORECASE,
)
_PLACEHOLDER_WORDS: Final = frozenset(
    "string str integer int number float double boolean bool object array dict null nil undefined "
    "n/a tbd todo xxx xxxx placeholder your_value insert_value dummy lorem ipsum ... ? ??".split()
)
_VAGUE_RE: Final = re.compile(
    r"^(a |an |the )?(specific|certain|particular|given|some|insert|enter|your|specified|desired|"
    r"unknown|any given)\b\s*\w*", re.IGNORECASE
)
#: how a vague phrase's first word begins (a cheap necessary test before _VAGUE_RE)
_VAGUE_WORDS: Final = tuple("specific certain particular given some insert enter your specified desired unknown "
                             "any".split())
_ANGLE_TEMPLATE: Final = re.compile(r"<[^<>]{1,40}>")
_BRACE_TEMPLATE: Final = re.compile(r"\{\{?[^{}]{1,40}\}?\}")
_REFERENCE_INSIDE: Final = re.compile(r"\bapi_call_\d+\b|\$\{[^}]*\bfrom\b", re.IGNORECASE)


def jsonable(value: Any) -> Any:
    """``value`` when JSON can hold it, else its ``repr``."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_empty(value: Any) -> bool:
    """None, blank text, an empty list or object."""
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (list, dict)) and not value)


def scalars(value: Any) -> Iterable[Any]:
    """The scalar leaves of a value (lists and objects walked)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from scalars(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from scalars(item)
    else:
        yield value


def repair_raw(raw: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse argument text whose only defect is unquoted ``${...}`` templates; returns (arguments, templates).

    (None, []) when the text holds no template; (None, templates) when quoting them does not help.
    """
    templates = TEMPLATE_RE.findall(raw)
    if not templates:
        return None, []
    quoted = TEMPLATE_RE.sub(lambda m: json.dumps(m.group(0)), raw)
    quoted = quoted.replace('""${', '"${').replace('}""', '}"')
    try:
        parsed = json.loads(quoted)
    except (ValueError, RecursionError):  # not JSON, an integer too long, nested too deeply
        return None, templates
    return (parsed if isinstance(parsed, dict) else None), templates


def call_key(name: str, arguments: Any, raw: str | None) -> str:
    """What makes two calls identical: the name and the arguments (or the raw text when unparsed)."""
    if arguments is None:
        return name + "\x00raw\x00" + (raw or "").strip()
    return name + "\x00" + json.dumps(arguments, sort_keys=True, default=str)


def placeholder_problem(value: Any, param: str, text: InstructionText,
                        enum: tuple[str, ...] | None = None) -> str | None:
    """Why a scalar value is a placeholder rather than a value (see the module docstring), or None."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    lowered = stripped.lower()
    if not stripped or "REDACTED_CREDENTIAL" in stripped:
        return None
    if enum is not None and any(lowered == e.lower() for e in enum):
        return None
    if stripped[0] in "$@{<" or "api_call" in lowered:
        if REFERENCE_RE.match(stripped):
            return None

    # A type or parameter name the user actually wrote ("from the format of String") is a value, not a
    # placeholder; vague phrases stay placeholders even when the instruction uses them ("a specific actor").
    def said_by_user() -> bool:
        return norm(stripped) in text.norm

    if lowered in _PLACEHOLDER_WORDS and not said_by_user():
        return f"the type name or filler {stripped!r} is passed as the value"
    if stripped[0] in "<{" and (_ANGLE_TEMPLATE.fullmatch(stripped) or _BRACE_TEMPLATE.fullmatch(stripped)):
        return f"the template {stripped!r} is passed as the value"
    if ("${" in stripped or "{{" in stripped) and TEMPLATE_RE.search(stripped):
        return f"the unfilled template {stripped!r} is passed as the value"
    if len(lowered) > 2 and lowered.replace("_", " ") == param_words(param) and not said_by_user():
        return f"the parameter's own name {stripped!r} is passed as the value"
    if lowered.split(" ", 2)[lowered.startswith(("a ", "an ", "the "))].startswith(_VAGUE_WORDS) \
            and _VAGUE_RE.match(lowered) and len(lowered.split()) <= 4:
        return f"the vague phrase {stripped!r} stands in for a concrete value"
    return None


class Gap(NamedTuple):
    """Why a value is not grounded: ``severity``, ``reason`` (words), and ``coverage``: the share of its
    content words the instruction backs (0 = nothing of it appears)."""

    severity: Severity
    reason: str
    coverage: float = 0.0


def ungrounded(value: Any, info: ParamInfo, text: InstructionText, required: bool = True) -> Gap | None:
    """Why a scalar value is not grounded (a :class:`Gap`), or None when it is (see the module docstring)."""
    if isinstance(value, bool) or value is None:
        return None
    if info.has_default and value == info.default:
        return None
    if info.enum is not None and len(info.enum) == 1:
        return None
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return None
        try:
            as_float: float | None = float(value)
        except OverflowError:  # an integer beyond the float range: only its text can match
            as_float = None
        if as_float in text.numbers:
            return None
        written = repr(value) if isinstance(value, float) else str(value)
        if text.in_earlier(" " + written + " ", compact(written)):
            return None
        if str(value) in text.compact:  # e.g. an id written inside a token ("order#4521")
            return None
        if written in info.examples or (isinstance(value, float) and value.is_integer()
                                        and str(int(value)) in info.examples):
            return Gap("error", f"{value!r} is the schema's example value and does not appear in the instruction")
        return Gap("suspect", f"the number {value!r} does not appear in the instruction")
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    lowered = stripped.lower()
    if len(lowered) >= 4 and lowered in text.lower:  # fast path: verbatim in the instruction
        return None
    if not stripped or "REDACTED_CREDENTIAL" in stripped or REFERENCE_RE.match(stripped):
        return None
    if lowered in ("true", "false", "none", "null", "yes", "no"):  # booleans written as text
        return None
    if _REFERENCE_INSIDE.search(stripped):
        return None
    value_norm = norm(stripped)
    value_compact = compact(stripped)
    if not value_compact:
        return None
    if value_norm in text.norm or (len(value_compact) >= 4 and value_compact in text.compact):
        return None
    if is_numeric_string(stripped):
        number = float(stripped.replace(",", ""))
        if number in text.numbers or number in (0.0, 1.0):
            return None
    date = parse_date(stripped) if DATE_HINT.search(stripped) else None
    if date is not None:
        if date in text.dates or (None, date[1], date[2]) in text.dates:
            return None
        if text.has_relative_time:
            return None
    if text.in_earlier(value_norm, value_compact):
        return None
    tokens = [t for t in value_norm.split() if t not in STOPWORDS]
    if not tokens:
        return None
    found = sum(1 for token in tokens if token_supported(token, text))
    if found < len(tokens) and initials_supported(tokens, text):
        found = len(tokens)
    coverage = found / len(tokens)
    if coverage >= 0.5:
        return None
    if date is not None:
        return Gap("suspect", f"the date {stripped!r} does not appear in the instruction")  # its parts are no words
    if coverage == 0 and len(value_compact) > 3 and info.examples and not required and any(
            compact(e) == value_compact for e in info.examples):
        return Gap("error", f"{stripped!r} is the schema's example value and does not appear in the instruction")
    if coverage > 0:
        return Gap("suspect", f"{stripped!r} is only partly supported by the instruction ({found}/{len(tokens)} words)",
                   coverage)
    if len(value_compact) <= 3:
        return Gap("suspect", f"the short value {stripped!r} does not appear in the instruction (a code or "
                   "abbreviation the model must resolve?)")
    if required or info.enum is not None:
        # A required value, or a choice from a closed list, is often an inference ("Apple" -> "AAPL",
        # "comic" -> "Comedy"): the model decides.
        return Gap("suspect", f"nothing of {stripped!r} appears in the instruction (an inference, or invented?)")
    return Gap("error", f"nothing of {stripped!r} appears in the instruction or in earlier outputs, and the "
               "optional parameter was not asked for")


def unstated(value: Any, info: ParamInfo, text: InstructionText) -> bool:
    """True when nothing of a scalar value appears in the instruction or an earlier output and no exemption
    applies (a number it does not state, a name none of whose words it uses); False for booleans and None."""
    if isinstance(value, bool) or value is None:
        return False
    gap = ungrounded(value, info, text, required=True)
    return gap is not None and gap.coverage == 0
