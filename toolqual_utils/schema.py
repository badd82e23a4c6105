"""Canonical records for tool-use instances, and their DataFrame views.

The contract (explained for users in docs/format.md): one JSON object per line::

    {"id": str, "source": str, ["context": [turn, ...],] "instruction": str,
     "tools": [{"name": str, "description": str,
                "parameters": {"type": "object", "properties": {...}, "required": [...]}}],
     "calls": [{"name": str, "arguments": object|null, "raw_arguments": str|null,
                "observation": str|null}] | null,
     "final_answer": str|null, "meta": object}

``calls`` is ``None`` when no gold calls are known (e.g. ToolBench query files) and ``[]`` when the gold
answer is "call nothing" (e.g. BFCL irrelevance). A call whose ``arguments`` is ``None`` while
``raw_arguments`` holds text is an *argument parse failure*: the raw text is kept, never guessed at.

Multi-turn dialogues: ``context`` holds the earlier turns of the dialogue, before the user turn that
``instruction`` is (``{"role": "user"|"assistant"|"tool", "content": str|null, "calls": [call...],
"name": str|null}``; an assistant turn's calls carry their tool results in ``observation``; a ``tool``
turn is a result that could not be paired with a call). It is absent (empty) for single-turn data, and
an empty ``context`` is never written, so single-turn records look exactly as before.

Pure module: standard library, pandas and pydantic only. pandas is imported by the frame functions that
use it, so reading and validating records (the model judge's first request) does not load it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .criteria import CRITERIA as CRITERIA, INSTRUCTION_CRITERIA as INSTRUCTION_CRITERIA, \
    SEQUENCE_CRITERIA as SEQUENCE_CRITERIA  # defined without pydantic; re-exported
from .verdicts import VERDICT_COLUMNS as VERDICT_COLUMNS  # defined with the statuses; re-exported

if TYPE_CHECKING:
    import pandas as pd

# --- names defined once ---------------------------------------------------------------------------

# INSTRUCTION_CRITERIA, SEQUENCE_CRITERIA, CRITERIA: defined without pydantic in toolqual_utils.criteria and
# imported above, so they can still be imported from here with the other names.
COARSE_CRITERIA: Final = ("instruction_ok", "sequence_ok", "overall_ok")
Criterion = Literal[
    "specificity", "coherence", "solvability", "parameter_alignment", "sufficiency", "minimality"
]

#: Agent pseudo-tools that are not API calls (ToolAlpaca's agent helpers, ToolBench's ``Finish``).
PSEUDO_CALLS: Final = frozenset({"Finish", "getDetails", "retrievalDataFromFile", "getCurrentDateTime"})

# VERDICT_COLUMNS (the verdict table, one row per instance x criterion) is defined with the statuses in
# toolqual_utils.verdicts and imported above, so it can still be imported from here with the other names.

#: Columns of the per-instance ICE table.
ICE_COLUMNS: Final = (
    "instance_id", "target_model", "testbed_version", "n_queries", "ice_score", "ci_low", "ci_high",
)
#: Columns of the annotation table (appended, never overwritten).
ANNOTATION_COLUMNS: Final = ("instance_id", "annotator", *CRITERIA, "note")

JSON_SCHEMA_TYPES: Final = frozenset(
    {"string", "integer", "number", "boolean", "array", "object", "null"}
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=False)


class ToolSpec(_Record):
    """One available tool (API), its parameters as a JSON-Schema object."""

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "required": []}
    )

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError(f"must be a JSON-Schema object (type 'object'), got type {value.get('type')!r}")
        properties = value.get("properties", {})
        if not isinstance(properties, Mapping):
            raise ValueError("'properties' must be an object mapping parameter names to schemas")
        required = value.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ValueError("'required' must be a list of parameter names")
        return {"type": "object", **value, "properties": dict(properties), "required": list(required)}

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.parameters.get("properties", {}))


class Call(_Record):
    """One call of the gold sequence."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | None = None
    raw_arguments: str | None = None
    observation: str | None = None

    @property
    def parse_failed(self) -> bool:
        """True when the arguments text could not be parsed into an object (kept in ``raw_arguments``)."""
        return self.arguments is None and self.raw_arguments is not None and self.raw_arguments.strip() != ""

    @property
    def is_pseudo(self) -> bool:
        return self.name in PSEUDO_CALLS


TurnRole = Literal["user", "assistant", "tool"]


class Turn(_Record):
    """One earlier turn of a dialogue (an element of :attr:`Instance.context`).

    ``user``: ``content`` is what the user said. ``assistant``: ``content`` is its text (None when it
    only called tools) and ``calls`` the calls it made, each with its tool result in ``observation``
    when known. ``tool``: a tool result that could not be paired with a call (``name`` = the tool, when
    the source says).
    """

    role: TurnRole
    content: str | None = None
    calls: list[Call] = Field(default_factory=list)
    name: str | None = None

    @model_validator(mode="after")
    def _calls_only_on_assistant_turns(self) -> Turn:
        if self.calls and self.role != "assistant":
            raise ValueError(f"only assistant turns make calls (this turn's role is {self.role!r})")
        return self


def _no_context(value: list[Turn]) -> bool:
    return not value


class Instance(_Record):
    """One training instance: (earlier turns,) instruction, tools, gold call sequence."""

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    #: earlier turns of the dialogue; empty for single-turn data and then never serialised
    context: list[Turn] = Field(default_factory=list, exclude_if=_no_context)
    instruction: str
    tools: list[ToolSpec] = Field(default_factory=list)
    calls: list[Call] | None = None
    final_answer: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_tool_names(self) -> Instance:
        names = [tool.name for tool in self.tools]
        if len(set(names)) == len(names):  # the common case, checked at C speed
            return self
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"tool name {name!r} appears twice in 'tools'")
            seen.add(name)
        return self

    def tool(self, name: str) -> ToolSpec | None:
        """The tool called ``name``, or None when the instance does not offer it."""
        for tool in self.tools:
            if tool.name == name:
                return tool
        return None

    @property
    def is_multi_turn(self) -> bool:
        """True when earlier turns of a dialogue precede the instruction."""
        return bool(self.context)

    def to_record(self) -> dict[str, Any]:
        """The canonical JSON object (key order as in docs/format.md; no ``context`` key when there are no
        earlier turns)."""
        return self.model_dump(mode="json")


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """(field path, reason) of the first problem in a pydantic error, in words for people."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "<record>"
    reason = first.get("msg", str(error))
    if first.get("type") == "extra_forbidden":
        reason = ("unknown field (the canonical format has: id, source, context, instruction, tools, calls, "
                  "final_answer, meta)")
    elif first.get("type") == "missing":
        reason = "required field is missing"
    return field, reason


class ToolCache:
    """Validated tools by their JSON text, for readers of many instances that offer the same tools (BFCL,
    Seal-Tools, ToolAlpaca and ToolBench files repeat tool definitions across instances).

    A reader (:func:`toolqual_utils.io.canonical_from_line` with a cache) validates each distinct tool
    text once and gives every instance that offers it the same :class:`ToolSpec` object, so that what is
    derived from a tool (its schema table, its words) can be kept with it (:func:`shared_tool_facts`).
    Those objects are shared: treat them as read-only (the checks never change an instance). The same
    text always parses to the same tool, so an instance read through the cache equals one read without.
    Holds at most ``limit`` tools (then starts again).
    """

    #: characters of a tool's text that index it (:meth:`candidates`)
    PREFIX = 64

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._specs: dict[str, ToolSpec] = {}
        self._by_prefix: dict[str, list[tuple[str, ToolSpec]]] = {}

    def get(self, text: str) -> ToolSpec | None:
        """The tool validated from exactly this JSON text, or None."""
        return self._specs.get(text)

    def candidates(self, prefix: str) -> list[tuple[str, ToolSpec]]:
        """(text, tool) of the cached tools whose text starts with ``prefix`` (``PREFIX`` characters)."""
        return self._by_prefix.get(prefix, _NONE)

    def add(self, text: str, value: Any) -> ToolSpec | None:
        """Validate the tool parsed from ``text``; cached and returned, or None when it is not valid."""
        try:
            spec = ToolSpec.model_validate(value)
        except ValidationError:
            return None
        if len(self._specs) >= self.limit:
            self.clear()
        self._specs[text] = spec
        if len(text) > self.PREFIX:
            same_start = self._by_prefix.setdefault(text[:self.PREFIX], [])
            if len(same_start) < 16:
                same_start.append((text, spec))
        _SHARED_FACTS[id(spec)] = {}
        return spec

    def clear(self) -> None:
        for spec in self._specs.values():
            _SHARED_FACTS.pop(id(spec), None)
        self._specs.clear()
        self._by_prefix.clear()

    def __len__(self) -> int:
        return len(self._specs)

    def __del__(self) -> None:
        try:
            self.clear()
        except Exception:  # noqa: BLE001 - at interpreter shutdown the module may be gone
            pass


_NONE: list[tuple[str, ToolSpec]] = []
#: id of a ToolSpec held by a ToolCache -> facts derived from it (the cache keeps the object alive, so the
#: id stays its own while the entry exists)
_SHARED_FACTS: dict[int, dict[str, Any]] = {}


def shared_tool_facts(tool: ToolSpec) -> dict[str, Any] | None:
    """A dict to keep facts derived from ``tool`` in, when ``tool`` is shared through a :class:`ToolCache`
    (read-only, so the facts stay true); None for any other tool (derive what you need each time)."""
    return _SHARED_FACTS.get(id(tool))


def parse_instance(record: Any) -> Instance:
    """Validate one canonical record. Raises ``pydantic.ValidationError`` on a bad record."""
    return Instance.model_validate(record)


# --- DataFrame views ------------------------------------------------------------------------------

INSTANCE_FRAME_COLUMNS: Final = (
    "instance_id", "source", "subset", "instruction", "instruction_chars", "n_tools", "has_gold_calls",
    "n_calls", "n_parse_failures", "n_unknown_calls", "n_pseudo_calls", "has_final_answer",
)
CALL_FRAME_COLUMNS: Final = (
    "instance_id", "source", "call_index", "name", "is_known_tool", "arguments_parsed", "n_arguments",
    "argument_names", "has_observation",
)
PARAMETER_FRAME_COLUMNS: Final = (
    "instance_id", "source", "tool_name", "parameter", "type", "is_required", "has_enum", "has_default",
)


def source_of_id(instance_id: str) -> str:
    """The source named by an id (``toolbench/G1/10`` -> ``toolbench``): the part before the first ``/``.

    The one place a source is read from an id; use ``Instance.source`` when the instance is at hand.
    """
    return str(instance_id).split("/", 1)[0]


def subset_of_id(instance_id: str) -> str:
    """The subset named by an id (``toolbench/G1/10`` -> ``G1``); the source when the id has < 3 parts."""
    parts = str(instance_id).split("/")
    return parts[1] if len(parts) >= 3 else parts[0]


def subset_of(instance: Instance) -> str:
    """The part of the id between source and item (``toolbench/G1/10`` -> ``G1``), or the source."""
    parts = instance.id.split("/")
    return parts[1] if len(parts) >= 3 else instance.source


def instances_frame(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per instance.

    Columns: ``INSTANCE_FRAME_COLUMNS``. ``n_calls`` counts API calls (pseudo-calls are never in
    ``calls``; loaders record them in ``meta["pseudo_calls"]``, counted in ``n_pseudo_calls``);
    ``has_gold_calls`` is False when ``calls`` is None, and then ``n_calls`` is 0. Empty input gives
    an empty frame with these columns.
    """
    import pandas as pd

    rows = []
    for inst in instances:
        calls = inst.calls or []
        tool_names = {t.name for t in inst.tools}
        rows.append(
            {
                "instance_id": inst.id,
                "source": inst.source,
                "subset": subset_of(inst),
                "instruction": inst.instruction,
                "instruction_chars": len(inst.instruction),
                "n_tools": len(inst.tools),
                "has_gold_calls": inst.calls is not None,
                "n_calls": len(calls),
                "n_parse_failures": sum(c.parse_failed for c in calls),
                "n_unknown_calls": sum(c.name not in tool_names for c in calls),
                "n_pseudo_calls": len(inst.meta.get("pseudo_calls", []) or []),
                "has_final_answer": inst.final_answer is not None,
            }
        )
    return pd.DataFrame(rows, columns=list(INSTANCE_FRAME_COLUMNS))


def calls_frame(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per gold call (instances with ``calls`` None or empty contribute no rows).

    Columns: ``CALL_FRAME_COLUMNS``; ``call_index`` is 0-based within the instance;
    ``argument_names`` is a sorted, comma-joined string ("" when unparsed or empty).
    """
    import pandas as pd

    rows = []
    for inst in instances:
        tool_names = {t.name for t in inst.tools}
        for index, call in enumerate(inst.calls or []):
            arguments = call.arguments or {}
            rows.append(
                {
                    "instance_id": inst.id,
                    "source": inst.source,
                    "call_index": index,
                    "name": call.name,
                    "is_known_tool": call.name in tool_names,
                    "arguments_parsed": not call.parse_failed,
                    "n_arguments": len(arguments),
                    "argument_names": ",".join(sorted(arguments)),
                    "has_observation": call.observation is not None,
                }
            )
    return pd.DataFrame(rows, columns=list(CALL_FRAME_COLUMNS))


def parameters_frame(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per (instance, tool, parameter) of the offered tools: the parameter-type mix.

    ``type`` is the JSON-Schema type, ``"unspecified"`` when absent, or ``"a|b"`` for a type list.
    """
    import pandas as pd

    rows = []
    for inst in instances:
        for tool in inst.tools:
            required = set(tool.required)
            for name, spec in tool.properties.items():
                spec = spec if isinstance(spec, Mapping) else {}
                kind = spec.get("type", "unspecified")
                if isinstance(kind, list):
                    kind = "|".join(str(k) for k in kind)
                rows.append(
                    {
                        "instance_id": inst.id,
                        "source": inst.source,
                        "tool_name": tool.name,
                        "parameter": name,
                        "type": str(kind),
                        "is_required": name in required,
                        "has_enum": "enum" in spec,
                        "has_default": "default" in spec,
                    }
                )
    return pd.DataFrame(rows, columns=list(PARAMETER_FRAME_COLUMNS))
