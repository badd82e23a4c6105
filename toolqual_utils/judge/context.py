"""What the judge needs to know about one instance, derived in code before any model is asked.

- the instruction split into sentences and consecutive sentence pairs (coherence as next-sentence
  prediction; one sentence = coherent without asking);
- the required parameters of the needed APIs (specificity as extraction): the tools the gold calls use,
  or every offered tool when no gold calls are known. A called tool whose schema marks nothing
  required (common in ToolAlpaca's OpenAPI specs) contributes the parameters the gold call passes
  instead — otherwise an instruction that omits every value would pass unexamined;
- every argument of every gold call, with the deterministic part of parameter alignment already done:
  a value found (normalised, on word boundaries) in the instruction, a value equal to the parameter's
  schema default, and credential arguments are supported without asking; required parameters that
  are absent or empty are errors without asking. Only the remaining arguments go to the model, which
  extracts the instruction's value and judges fuzzy equivalence. A value found in an earlier call's
  output is NOT settled in code (a list output holds many ids; the right one must be the entity the
  user named): it goes to the model with ``found_in_earlier_output: true``;
- multi-turn instances (``Instance.context``): in the v1 settlement a value found in what the user said
  in an earlier turn is supported (``earlier_user_turn``), and so is a value found in an earlier turn's
  tool results or calls (``earlier_turn_output``); in both settlements a required parameter whose gold
  value an earlier turn gives is not asked of the instruction for specificity (the dialogue gives it).
  Single-turn instances are settled exactly as before;
- the text blocks (instruction, tools, calls) exactly as they are fenced into prompts.

That is the v1 settlement (``build_context(instance, version=1)``), kept as it was so the bundled v1
requests and answers stay matched. The v2 settlement (``version=2``) settles in code only what cannot be
wrong — credentials (by name or a redacted value), empty optional values (nothing passed) and absent
required parameters (errors) — and sends every other argument to the model with hints
(``found_in_instruction``, ``documented_default``, ``found_in_earlier_output``): a value found in the
instruction can still be a placeholder ("lake" for "the lake") or contradict the request (limit 50 for
"the first 50 excluding the first 10"), and only the model sees constraints the calls drop.

Pure module: standard library, pydantic models from ``toolqual_utils.schema``.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # the sending process unpickles contexts before its first request: no pydantic there
    from ..schema import Call, Instance, ToolSpec

TOOL_TEXT_LIMIT: Final = 300      # characters kept of each description string in the tools block
OBSERVATION_LIMIT: Final = 400    # characters kept of each observation in the calls block
VALUE_LIMIT: Final = 500          # characters kept of an argument value in the arguments block

_CREDENTIAL_NAME = re.compile(
    r"^(x[-_])?(rapid[-_]?)?api[-_]?key$|^apikey$|^(access[-_]?|auth[-_]?|bearer[-_]?)?token$|"
    r"^authori[sz]ation$|^auth$|^password$|^passwd$|^(client[-_]?)?secret$|^credentials?$|^key$|"
    r"^app[-_]?id$|^app[-_]?key$|^subscription[-_]?key$",
    re.IGNORECASE,
)
_ABBREVIATIONS: Final = ("e.g.", "i.e.", "vs.", "mr.", "mrs.", "ms.", "dr.", "approx.")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\s*\n+\s*")
_WORD = re.compile(r"[^\W_]+")


def split_sentences(text: str) -> list[str]:
    """Sentences of an instruction: breaks after ``.``/``!``/``?`` before a capital or digit, and at
    newlines; common abbreviations (e.g., i.e., Dr.) do not break. Empty pieces are dropped."""
    pieces = [p.strip() for p in _SENTENCE_BREAK.split(text or "") if p and p.strip()]
    sentences: list[str] = []
    for piece in pieces:
        if sentences and sentences[-1].lower().endswith(_ABBREVIATIONS):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


#: More credential names (v2 settlement and the shared decision code): access_key, secret_key, api_token...
_CREDENTIAL_NAME_MORE = re.compile(
    r"^(access|secret|private|consumer|master)[-_]?key$|^(api|session|refresh|id|bot)[-_]?token$|"
    r"^(client|consumer|app)[-_]?secret$",
    re.IGNORECASE,
)
#: Argument values that are credentials whatever the parameter is called (the bundled ToolAlpaca
#: eval_real file redacts live keys to this literal).
CREDENTIAL_VALUES: Final = frozenset({"<REDACTED_CREDENTIAL>"})
_DOCUMENTED_DEFAULT = re.compile(
    r"\bdefaults?(?:\s+value)?(?:\s+is|\s+to|\s*:|\s*=)\s*[\"'`]?(?P<value>[^\"'`)\].;,]+)", re.IGNORECASE
)


def is_credential(argument: str) -> bool:
    """True for argument names that carry credentials (API keys, tokens, passwords): exempt (v1 list)."""
    return bool(_CREDENTIAL_NAME.match(argument.strip()))


def is_credential_argument(argument: str, value: Any = None) -> bool:
    """True when an argument is a credential by its name (the v1 list and more: ``access_key``,
    ``api_token``, ...) or by its value (``<REDACTED_CREDENTIAL>``). Credentials never need grounding."""
    name = argument.strip()
    if _CREDENTIAL_NAME.match(name) or _CREDENTIAL_NAME_MORE.match(name):
        return True
    return isinstance(value, str) and value.strip() in CREDENTIAL_VALUES


def is_empty_value(value: Any) -> bool:
    """None, "", [] or {}: passing it is passing nothing."""
    return value is None or value == "" or value == [] or value == {}


def documented_default(spec: Mapping[str, Any] | Any) -> Any:
    """A parameter's documented default: the schema's ``default``, else one its description states
    ("default is 30", "defaults to 'en'", "Default: 1"); None when there is none."""
    if not isinstance(spec, Mapping):
        return None
    if "default" in spec:
        return spec["default"]
    match = _DOCUMENTED_DEFAULT.search(str(spec.get("description") or ""))
    return match.group("value").strip() if match else None


def equals_documented_default(spec: Mapping[str, Any] | Any, value: Any) -> bool:
    """True when ``value`` equals the parameter's documented default (normalised text comparison)."""
    default = documented_default(spec)
    return default is not None and not is_empty_value(value) and normalise(default) == normalise(value)


def normalise(value: Any) -> str:
    """Comparable text of a value: NFKC, casefolded, whitespace and underscores collapsed, integral
    floats as integers, containers as sorted-key JSON, surrounding quotes/punctuation stripped."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[\s_]+", " ", text).strip()
    return text.strip("\"'`.,;:!? ")


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    first = needle[0]
    width = len(needle)
    return any(
        haystack[i] == first and haystack[i : i + width] == needle for i in range(len(haystack) - width + 1)
    )


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def found_in(value: Any, text_words: list[str]) -> bool:
    """True when every scalar leaf of ``value`` (strings and numbers; not booleans or None) occurs as
    a contiguous word sequence of ``text_words``."""
    leaves = _leaves(value)
    if not leaves:
        return False
    for leaf in leaves:
        if leaf is None or isinstance(leaf, bool):
            return False
        if isinstance(leaf, float) and leaf.is_integer():
            leaf = int(leaf)
        if not _contains_words(text_words, _words(str(leaf))):
            return False
    return True


def _truncate(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"… [{len(value) - limit} more chars]"
    if isinstance(value, dict):
        return {k: _truncate(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate(v, limit) for v in value]
    return value


def json_lines(items: list[Any]) -> str:
    """A JSON array written one compact item per line (readable, and cheaper in tokens than indent)."""
    if not items:
        return "[]"
    return "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]"


@dataclass(frozen=True)
class RequiredParameter:
    tool: str
    parameter: str
    description: str
    why: str = "required"  # or "used by the reference call" (schema marks nothing required)


@dataclass(frozen=True)
class ArgumentCheck:
    """One argument of one gold call and what the code could settle about it.

    ``settled_by`` is None when the model must be asked; otherwise one of ``instruction_text``,
    ``earlier_user_turn``, ``earlier_turn_output``, ``schema_default``, ``credential`` (supported) or
    ``required_missing`` (error).
    ``in_earlier_output`` records whether the value occurs in an earlier call's observation (a hint
    for the model, not a decision).
    ``argument == "*"`` stands for the whole raw text of a call whose arguments did not parse.
    """

    call_index: int
    call_name: str
    argument: str
    value: Any
    settled_by: str | None
    in_earlier_output: bool = False
    in_instruction: bool = False       # v2 hint: the value occurs in the instruction or earlier turns
    is_documented_default: bool = False  # v2 hint: equals the schema's or the description's default

    @property
    def key(self) -> tuple[int, str]:
        return (self.call_index, self.argument)

    def evidence(self) -> dict[str, Any]:
        return {
            "check": "parameter_alignment",
            "call_index": self.call_index,
            "call": self.call_name,
            "argument": self.argument,
            "value": _truncate(self.value, VALUE_LIMIT),
        }


@dataclass(frozen=True)
class InstanceContext:
    """Derived facts and prompt text blocks for one instance (see the module docstring)."""

    instance_id: str
    instruction: str
    has_calls: bool
    n_calls: int
    sentences: tuple[str, ...]
    required_parameters: tuple[RequiredParameter, ...]
    needed_tools_known: bool
    argument_checks: tuple[ArgumentCheck, ...]
    tools_text: str
    calls_text: str
    version: int = 1
    dialogue_text: str = ""
    call_indices: tuple[int, ...] = ()   # indices of the API calls (pseudo-calls left out)

    @property
    def sentence_pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.sentences, self.sentences[1:]))

    @property
    def open_arguments(self) -> list[ArgumentCheck]:
        """Arguments the code could not settle: these go to the model."""
        return [a for a in self.argument_checks if a.settled_by is None]

    # --- text blocks fenced into prompts ------------------------------------------------------------

    def sentence_pairs_text(self) -> str:
        return json_lines([{"index": i, "A": a, "B": b} for i, (a, b) in enumerate(self.sentence_pairs)])

    def required_parameters_text(self) -> str:
        return json_lines(
            [
                {"tool": p.tool, "parameter": p.parameter, "why_listed": p.why, "description": p.description}
                for p in self.required_parameters
            ]
        )

    def arguments_text(self) -> str:
        rows = []
        for arg in self.open_arguments:
            row: dict[str, Any] = {
                "call_index": arg.call_index,
                "call": arg.call_name,
                "argument": arg.argument,
                "value": _truncate(arg.value, VALUE_LIMIT),
            }
            if self.version >= 2 and arg.in_instruction:
                row["found_in_instruction"] = True
            if self.version >= 2 and arg.is_documented_default:
                row["documented_default"] = True
            if arg.in_earlier_output:
                row["found_in_earlier_output"] = True
            if arg.argument == "*":
                row["note"] = "the arguments of this call could not be parsed; judge the raw text as a whole"
            rows.append(row)
        return json_lines(rows)

    def scope_note(self) -> str:
        if self.version >= 2:
            if self.needed_tools_known:
                return (
                    "The list holds the parameters of the tools the reference calls use that must be filled: "
                    "those the schema requires, or, when a schema marks nothing required, those a reference "
                    "call passes (why_listed says which; such a parameter may well be optional: then "
                    "#not_needed unless the user asked about it)."
                )
            return (
                "No reference calls are known: the list holds the required parameters of every offered tool; "
                "write #not_needed for every parameter of a tool the instruction does not need."
            )
        if self.needed_tools_known:
            return (
                "The listed parameters belong to the tools that the reference solution calls; give a value "
                "or #missing for each."
            )
        return (
            "Which tools are needed is not known: write #not_needed for every parameter of a tool that the "
            "instruction does not need."
        )


def _tools_text(instance: Instance) -> str:
    tools = [
        {"name": t.name, "description": t.description, "parameters": t.parameters} for t in instance.tools
    ]
    return json_lines(_truncate(tools, TOOL_TEXT_LIMIT)) if tools else "[] (no tools)"


def _calls_text(instance: Instance) -> str:
    if instance.calls is None:
        return "(no reference calls are known for this instance)"
    rows = []
    for index, call in enumerate(instance.calls):
        row: dict[str, Any] = {"index": index, "name": call.name}
        if call.parse_failed:
            row["raw_arguments"] = call.raw_arguments
        else:
            row["arguments"] = call.arguments or {}
        if call.observation is not None:
            row["observation"] = _truncate(call.observation, OBSERVATION_LIMIT)
        rows.append(row)
    text = json_lines(rows) if rows else "[] (the reference answer makes no call)"
    if instance.final_answer:
        text += "\nFinal answer: " + str(_truncate(instance.final_answer, OBSERVATION_LIMIT))
    return text


_RAW_KEY = re.compile(r'"([^"\\]{1,80})"\s*:')


def raw_argument_names(raw: str | None) -> list[str]:
    """Argument names readable from unparsable argument text (``{"a": ${x from f}, ...}`` -> ``["a"]``)."""
    names: list[str] = []
    for name in _RAW_KEY.findall(raw or ""):
        if name not in names:
            names.append(name)
    return names


def _passed_names(call: Call) -> list[str]:
    if call.parse_failed:
        return raw_argument_names(call.raw_arguments)
    return list((call.arguments or {}).keys())


def _required_parameters(instance: Instance) -> tuple[tuple[RequiredParameter, ...], bool]:
    api_calls = [c for c in instance.calls or [] if not c.is_pseudo]
    params: list[RequiredParameter] = []
    seen: set[tuple[str, str]] = set()

    def add(tool: ToolSpec, name: str, why: str) -> None:
        if (tool.name, name) in seen or is_credential(name):
            return
        seen.add((tool.name, name))
        spec = tool.properties.get(name, {})
        description = spec.get("description", "") if isinstance(spec, Mapping) else ""
        params.append(RequiredParameter(tool.name, name, str(_truncate(str(description), 200)), why))

    if api_calls:
        given = _given_earlier(instance, api_calls)
        for call in api_calls:
            tool = instance.tool(call.name)
            if tool is None:
                continue
            if tool.required:
                for name in tool.required:
                    if (tool.name, name) not in given:
                        add(tool, name, "required")
            else:
                for name in _passed_names(call):
                    if (tool.name, name) not in given:
                        add(tool, name, "used by the reference call")
        return tuple(params), True
    for tool in instance.tools:
        for name in tool.required:
            add(tool, name, "required")
    return tuple(params), False


def dialogue_turns(instance: Instance) -> list[dict[str, Any]]:
    """The earlier turns of a multi-turn instance as plain dicts (empty for single-turn data)."""
    turns = getattr(instance, "context", None) or []
    rows = []
    for turn in turns:
        if hasattr(turn, "model_dump"):
            turn = turn.model_dump(exclude_none=True)
        if isinstance(turn, Mapping):
            rows.append({k: v for k, v in turn.items() if v not in (None, "", [], {})})
    return rows


def _dialogue_text(instance: Instance) -> str:
    turns = dialogue_turns(instance)
    if not turns:
        return "(none: the instruction is the whole conversation)"
    return json_lines(_truncate(turns, OBSERVATION_LIMIT))


def _dialogue_words(instance: Instance) -> list[str]:
    words: list[str] = []
    for turn in dialogue_turns(instance):
        words += _words(json.dumps(turn, ensure_ascii=False))
    return words


def _argument_checks_v2(instance: Instance) -> tuple[ArgumentCheck, ...]:
    """v2: settle only credentials, empty optional values and absent required parameters; hint the rest."""
    if not instance.calls:
        return ()
    stated_words = _words(instance.instruction) + _dialogue_words(instance)
    checks: list[ArgumentCheck] = []
    earlier_words: list[str] = []
    for index, call in enumerate(instance.calls):
        if call.is_pseudo:
            continue
        tool = instance.tool(call.name)
        properties = tool.properties if tool is not None else {}
        required = set(tool.required) if tool is not None else set()
        if call.parse_failed:
            checks.append(ArgumentCheck(index, call.name, "*", call.raw_arguments, None))
        else:
            arguments = call.arguments or {}
            for name, value in arguments.items():
                spec = properties.get(name, {})
                spec = spec if isinstance(spec, Mapping) else {}
                if is_credential_argument(name, value):
                    settled = "credential"
                elif is_empty_value(value):
                    settled = "required_missing" if name in required else "empty_optional"
                else:
                    settled = None
                checks.append(ArgumentCheck(
                    index, call.name, name, value, settled,
                    in_earlier_output=bool(earlier_words) and found_in(value, earlier_words),
                    in_instruction=found_in(value, stated_words),
                    is_documented_default=equals_documented_default(spec, value),
                ))
            for name in sorted(required - set(arguments)):
                if not is_credential_argument(name):
                    checks.append(ArgumentCheck(index, call.name, name, None, "required_missing"))
        if call.observation:
            earlier_words = earlier_words + _words(call.observation)
    return tuple(checks)


def _given_earlier(instance: Instance, api_calls: list[Call]) -> set[tuple[str, str]]:
    """(tool, parameter) pairs whose gold value an earlier turn of the dialogue gives (what the user said
    before, or an earlier turn's tool result): specificity does not ask the instruction for them.
    Empty for single-turn instances."""
    if not instance.context:
        return set()
    from ..dialogue import earlier_outputs, earlier_user_texts  # (imports the schema: here, not at module import)

    earlier = _words(" \n ".join([*earlier_user_texts(instance), *earlier_outputs(instance)]))
    given: set[tuple[str, str]] = set()
    for call in api_calls:
        for name, value in (call.arguments or {}).items():
            if value not in (None, "", [], {}) and found_in(value, earlier):
                given.add((call.name, name))
    return given


def _argument_checks(instance: Instance) -> tuple[ArgumentCheck, ...]:
    if not instance.calls:
        return ()
    from ..dialogue import earlier_outputs, earlier_user_texts  # (imports the schema: here, not at module import)

    instruction_words = _words(instance.instruction)
    earlier_user_words = _words(" \n ".join(earlier_user_texts(instance)))
    earlier_turn_words = _words(" \n ".join(earlier_outputs(instance)))
    checks: list[ArgumentCheck] = []
    earlier_words: list[str] = []
    for index, call in enumerate(instance.calls):
        if call.is_pseudo:
            continue
        tool = instance.tool(call.name)
        properties = tool.properties if tool is not None else {}
        if call.parse_failed:
            checks.append(ArgumentCheck(index, call.name, "*", call.raw_arguments, None))
        else:
            arguments = call.arguments or {}
            for name, value in arguments.items():
                spec = properties.get(name, {})
                spec = spec if isinstance(spec, Mapping) else {}
                in_earlier = bool(earlier_words) and found_in(value, earlier_words)
                if is_credential(name):
                    settled = "credential"
                elif value is None or value == "" or value == [] or value == {}:
                    # empty: an error when required; otherwise the model judges whether it was meant
                    settled = "required_missing" if tool is not None and name in tool.required else None
                elif found_in(value, instruction_words):
                    settled = "instruction_text"
                elif earlier_user_words and found_in(value, earlier_user_words):
                    settled = "earlier_user_turn"
                elif earlier_turn_words and found_in(value, earlier_turn_words):
                    settled = "earlier_turn_output"
                elif "default" in spec and normalise(spec["default"]) == normalise(value):
                    settled = "schema_default"
                else:
                    settled = None
                checks.append(ArgumentCheck(index, call.name, name, value, settled, in_earlier,
                                            is_documented_default=equals_documented_default(spec, value)))
            if tool is not None:
                for name in tool.required:
                    if name not in arguments and not is_credential(name):
                        checks.append(ArgumentCheck(index, call.name, name, None, "required_missing"))
        if call.observation:
            earlier_words = earlier_words + _words(call.observation)
    return tuple(checks)


def build_context(instance: Instance, version: int = 1) -> InstanceContext:
    """Derive the :class:`InstanceContext` of one instance (pure; no model involved).

    Args:
        instance: a canonical instance.
        version: the prompt version it is built for: 1 (the v1 settlement, unchanged) or 2.
    """
    if version not in (1, 2):
        raise ValueError(f"no judge context for prompt version {version}")
    required, known = _required_parameters(instance)
    return InstanceContext(
        instance_id=instance.id,
        instruction=instance.instruction,
        has_calls=instance.calls is not None,
        n_calls=len(instance.calls or []),
        sentences=tuple(split_sentences(instance.instruction)),
        required_parameters=required,
        needed_tools_known=known,
        argument_checks=_argument_checks(instance) if version == 1 else _argument_checks_v2(instance),
        tools_text=_tools_text(instance),
        calls_text=_calls_text(instance),
        version=version,
        dialogue_text=_dialogue_text(instance),
        call_indices=tuple(i for i, c in enumerate(instance.calls or []) if not c.is_pseudo),
    )
