"""What the checks read from a tool's JSON schema, cached (real datasets repeat the same tools).

:func:`tool_table` turns a tool's ``parameters`` object into a :class:`ToolTable`: per parameter a
:class:`ParamInfo` (type, allowed values, default, example values from the description, whether it
carries a credential), the required names, and whether the schema lists any parameter at all.
:func:`type_problem` and :func:`enum_problem` compare a value with a parameter.

Type leniency (decided here, documented): ``int`` is a ``number``; integral floats and numeric strings are
accepted for ``integer``/``number`` (many APIs take query strings); scalars are accepted for ``string``;
``"true"``/``"false"``/0/1 for ``boolean``; a list for a ``string`` parameter only when its description
says array/list. Everything else of the wrong JSON type is a type problem. Allowed values come from the
schema's ``enum`` or ToolAlpaca's "One of: [...]" in the description and are compared case-insensitively.

Pure module: standard library only (and :mod:`toolqual_utils.matching`, :mod:`toolqual_utils.schema`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from ..compiled import reduce_fields
from ..matching import standardize_string
from ..schema import ToolSpec, shared_tool_facts
from .text import CAMEL

__all__ = ["ParamInfo", "ToolTable", "param_info", "tool_table", "table_of", "type_problem", "enum_problem",
           "is_numeric_string"]

_CREDENTIAL_NAME: Final = re.compile(
    r"(^|_)(api_?key|apikey|api_?token|access_?key|access_?token|secret(_?key)?|token|auth(_?token)?|"
    r"authorization|app_?id|appid|app_?key|password|passwd|client_?(id|secret)|rapidapi_?key|x_rapidapi_key|"
    r"key|license_?key|subscription_?key|bearer)$"
)
_ONE_OF_RE: Final = re.compile(r"one of:?\s*\[([^\]]*)\]", re.IGNORECASE)
_EXAMPLE_RE: Final = re.compile(r"(?:e\.g\.|for example|for instance|such as|example:)\s*,?\s*([^;)]*)", re.IGNORECASE)
_ARRAY_HINT: Final = re.compile(r"\b(array|list|comma[- ]separated|multiple)\b", re.IGNORECASE)
_TYPE_ALIASES: Final = {"float": "number", "int": "integer", "dict": "object", "tuple": "array", "bool": "boolean",
                        "str": "string", "list": "array"}


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as the checks see it.

    Attributes:
        kind: the JSON type (first non-null of a type list), or None when the schema gives none.
        enum: the allowed values as text, or None.
        default, has_default: the schema's default.
        examples: example values named in the description ("e.g. Paris") or ``example_value``.
        is_credential: an API key, token or password (never needs to appear in the instruction).
        array_hint: the description says a list is expected.
    """

    kind: str | None
    enum: tuple[str, ...] | None
    default: Any
    has_default: bool
    examples: tuple[str, ...]
    is_credential: bool
    array_hint: bool

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable when compiled (see reduce_fields)
        return reduce_fields(self)


class ToolTable(NamedTuple):
    """A tool's parameters: ``infos`` by name, the ``required`` names, ``has_properties`` (False when the
    schema lists no parameter at all, as in ToolBench records that lost their optional ones upstream)."""

    infos: dict[str, ParamInfo]
    required: frozenset[str]
    has_properties: bool


def param_info(name: str, spec: Mapping[str, Any]) -> ParamInfo:
    """The :class:`ParamInfo` of parameter ``name`` with JSON-schema ``spec`` (``{}`` for an unknown one)."""
    description = str(spec.get("description") or "")
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    enum: tuple[str, ...] | None = None
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        enum = tuple(str(v) for v in spec["enum"])
    else:
        found = _ONE_OF_RE.search(description)
        if found:
            options = tuple(o.strip().strip("'\"` ") for o in found.group(1).split(","))
            enum = tuple(o for o in options if o) or None
    examples: list[str] = []
    for match in _EXAMPLE_RE.finditer(description):
        examples.extend(e.strip().strip("'\"`. ") for e in re.split(r",|\bor\b", match.group(1)))
    if spec.get("example_value") not in (None, ""):
        examples.append(str(spec["example_value"]))
    snake = CAMEL.sub("_", name).lower().replace("-", "_")
    is_credential = bool(_CREDENTIAL_NAME.search(snake)) or "REDACTED_CREDENTIAL" in description
    return ParamInfo(
        kind=kind if isinstance(kind, str) else None,
        enum=enum,
        default=spec.get("default"),
        has_default="default" in spec,
        examples=tuple(e for e in examples if e),
        is_credential=is_credential,
        array_hint=bool(_ARRAY_HINT.search(description)),
    )


def _build_table(parameters: Mapping[str, Any]) -> ToolTable:
    properties = parameters.get("properties") or {}
    infos = {name: param_info(name, spec if isinstance(spec, Mapping) else {}) for name, spec in properties.items()}
    return ToolTable(infos, frozenset(parameters.get("required") or []), bool(properties))


_BY_IDENTITY: dict[int, tuple[Mapping[str, Any], ToolTable]] = {}
_BY_CONTENT: dict[str, ToolTable] = {}
_CACHE_LIMIT: Final = 65536
#: the identity cache only spares the repr within one instance (checks, then heuristics): keep it small,
#: since it keeps the schemas it holds alive
_IDENTITY_LIMIT: Final = 4096


def tool_table(parameters: Mapping[str, Any]) -> ToolTable:
    """The :class:`ToolTable` of a tool's ``parameters`` schema; cached by object identity, then by content
    (its ``repr``: every instance read from a file holds its own copy of a tool that thousands share)."""
    hit = _BY_IDENTITY.get(id(parameters))
    if hit is not None and hit[0] is parameters:
        return hit[1]
    key = repr(parameters)
    table = _BY_CONTENT.get(key)
    if table is None:
        if len(_BY_CONTENT) > _CACHE_LIMIT:
            _BY_CONTENT.clear()
        table = _BY_CONTENT[key] = _build_table(parameters)
    if len(_BY_IDENTITY) > _IDENTITY_LIMIT:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(parameters)] = (parameters, table)  # keeps the object alive, so the id stays unique
    return table


def table_of(tool: ToolSpec) -> ToolTable:
    """The :class:`ToolTable` of an offered tool: :func:`tool_table` of its parameters, kept with the tool
    when it is shared through a :class:`~toolqual_utils.schema.ToolCache`."""
    facts = shared_tool_facts(tool)
    if facts is None:
        return tool_table(tool.parameters)
    table = facts.get("table")
    if table is None:
        table = facts["table"] = tool_table(tool.parameters)
    return table


def is_numeric_string(value: str) -> bool:
    """True for ``"12"``, ``"1,000"``, ``"-3.5"``."""
    try:
        float(value.replace(",", ""))
        return True
    except ValueError:
        return False


def type_problem(value: Any, info: ParamInfo) -> str | None:
    """Why ``value`` has the wrong JSON type for the parameter (see the leniency above), or None."""
    kind = info.kind
    if kind is None or value is None:
        return None
    kind = _TYPE_ALIASES.get(kind, kind)
    if kind == "string":
        if isinstance(value, (str, int, float, bool)):
            return None
        if isinstance(value, list) and info.array_hint:
            return None
    elif kind == "integer":
        if isinstance(value, bool):
            return "expected an integer, got a boolean"
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return None
        if isinstance(value, str) and is_numeric_string(value) and float(value.replace(",", "")).is_integer():
            return None
    elif kind == "number":
        if isinstance(value, bool):
            return "expected a number, got a boolean"
        if isinstance(value, (int, float)) or (isinstance(value, str) and is_numeric_string(value)):
            return None
    elif kind == "boolean":
        if isinstance(value, bool) or value in (0, 1) or (isinstance(value, str) and value.lower() in ("true", "false")):
            return None
    elif kind == "array":
        if isinstance(value, (list, tuple)):
            return None
    elif kind == "object":
        if isinstance(value, Mapping):
            return None
    else:
        return None
    return f"expected {kind}, got {type(value).__name__}"


def enum_problem(value: Any, enum: tuple[str, ...]) -> str | None:
    """Why ``value`` (or an item of a list value) is not among the allowed values, or None."""
    allowed = {standardize_string(e) for e in enum}
    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if isinstance(item, bool) or item is None or item == "":
            continue
        text = str(item)
        if standardize_string(text) not in allowed:
            return f"{text!r} is not one of the allowed values {list(enum)!r}"
    return None
