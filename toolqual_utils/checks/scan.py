"""What the check functions are given: one instance, one call, one argument, each worked out once.

The runner (:mod:`toolqual_utils.checks.run`) builds an :class:`InstanceScan` per instance and a
:class:`CallScan` per API call, in order; checks read them and never change them.

Pure module: standard library only.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..dialogue import earlier_outputs, user_text
from ..schema import PSEUDO_CALLS, Call, Instance, ToolSpec
from .text import InstructionText
from .tool_schema import ParamInfo, ToolTable, param_info, table_of
from .values import REFERENCE_RE, TEMPLATE_RE, call_key, is_empty, repair_raw, scalars

__all__ = ["InstanceScan", "CallScan", "ArgumentScan", "instruction_text"]

#: the instance the last :func:`instruction_text` was made for, what it was made from, and that text
_LAST_TEXT: list[tuple[Instance, str, list[Any], int, InstructionText]] = []


def instruction_text(instance: Instance) -> InstructionText:
    """What the user said (:func:`~toolqual_utils.dialogue.user_text`) as an
    :class:`~toolqual_utils.checks.text.InstructionText` whose ``earlier`` list starts with the earlier
    turns' tool results (:func:`~toolqual_utils.dialogue.earlier_outputs`).

    Each call returns a new text with its own ``earlier`` list; for the same instance object as the call
    before (the checks, then the heuristics), the normalised forms are shared, not computed again.
    """
    if _LAST_TEXT:
        last, instruction, context, n_turns, text = _LAST_TEXT[0]
        if last is instance and instance.instruction is instruction and instance.context is context \
                and len(context) == n_turns:
            return text.fork(text.earlier)
    text = InstructionText(user_text(instance))
    text.earlier.extend(earlier_outputs(instance))
    _LAST_TEXT[:] = [(instance, instance.instruction, instance.context, len(instance.context), text)]
    return text.fork(text.earlier)


class InstanceScan:
    """One instance as the checks see it.

    Attributes:
        instance: the canonical :class:`~toolqual_utils.schema.Instance`.
        id: its id.
        category: BFCL's ``meta["bfcl_category"]`` ("" when absent).
        text: what the user said, normalised (:class:`~toolqual_utils.checks.text.InstructionText`): the
            instruction, after the user's earlier turns of a dialogue; its ``earlier`` list starts with the
            earlier turns' tool results and grows with each call's output as the calls are checked in order.
        api_calls: ``(index, call)`` of the calls that are not pseudo-calls (empty when ``calls`` is None).
    """

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.id = instance.id
        self.category = str(instance.meta.get("bfcl_category", "")) if instance.meta else ""
        # Multi-turn: what the user said earlier grounds values like the instruction does, and earlier turns'
        # tool results like earlier outputs (for single-turn data: the instruction, and nothing).
        self.text = instruction_text(instance)
        self.api_calls = [(i, c) for i, c in enumerate(instance.calls or []) if c.name not in PSEUDO_CALLS]
        self._n_words: int | None = None  # worked out on first use (functools.cached_property takes a lock)
        self._tools: dict[str, ToolSpec] | None = None

    @property
    def irrelevance(self) -> bool:
        """A BFCL ``irrelevance`` instance: by construction no offered tool serves the request."""
        return self.category == "irrelevance"

    @property
    def has_gold_calls(self) -> bool:
        return self.instance.calls is not None

    @property
    def n_words(self) -> int:
        """Words of the instruction (split on white space)."""
        if self._n_words is None:
            self._n_words = len(self.instance.instruction.split())
        return self._n_words

    @property
    def tools(self) -> dict[str, ToolSpec]:
        """The offered tools by name."""
        if self._tools is None:
            self._tools = {t.name: t for t in self.instance.tools}
        return self._tools


class ArgumentScan:
    """One argument of a call: its schema entry (a blank one when the schema does not define it).

    ``exempt`` arguments (credentials, empty values, references to earlier outputs) are not examined by
    the value checks.
    """

    __slots__ = ("name", "value", "info", "known", "required", "exempt")

    def __init__(self, name: str, value: Any, info: ParamInfo | None, required: bool) -> None:
        self.name = name
        self.value = value
        self.known = info is not None
        self.info = info if info is not None else param_info(name, {})
        self.required = required
        self.exempt = self.info.is_credential or is_empty(value) or (
            isinstance(value, str) and TEMPLATE_RE.search(value) is not None
            and REFERENCE_RE.match(value.strip()) is not None)

    @property
    def scalars(self) -> tuple[Any, ...]:
        """The value's scalar leaves (the value itself when it is a scalar)."""
        value = self.value
        return (value,) if isinstance(value, (str, int, float)) else tuple(scalars(value))


class CallScan:
    """One API call of the gold sequence as the call checks see it.

    Attributes:
        scan: the :class:`InstanceScan` it belongs to (``scan.text.earlier`` holds the outputs of the
            calls before this one).
        index: 0-based position in ``instance.calls``; ``call``: the canonical call; ``name``.
        tool: the offered tool it names, or None.
        arguments: the parsed arguments; for unparsed text whose only defect is unquoted ``${...}``
            templates, the repaired arguments; else None.
        raw_templates: the templates of argument text that could not be repaired.
        unparseable: argument text that is neither JSON nor repairable.
        table: the tool's :class:`~toolqual_utils.checks.tool_schema.ToolTable` (None without tool or
            arguments).
        repeat_of: index of an earlier call identical to this one (name + arguments), else None.
        retries_failure: the call directly before is identical and its output says it failed.
    """

    __slots__ = ("scan", "index", "call", "name", "tool", "arguments", "raw_templates", "unparseable", "table",
                 "repeat_of", "retries_failure", "_arguments", "_claimed", "_open")

    def __init__(self, scan: InstanceScan, index: int, call: Call) -> None:
        self.scan = scan
        self.index = index
        self.call = call
        self.name = call.name
        self.tool = scan.tools.get(call.name)
        arguments = call.arguments
        self.raw_templates: list[str] = []
        self.unparseable = False
        if arguments is None and call.raw_arguments and call.raw_arguments.strip():
            arguments, templates = repair_raw(call.raw_arguments)
            self.unparseable = arguments is None
            if arguments is None:
                self.raw_templates = templates
        self.arguments: Mapping[str, Any] | None = arguments
        self.table: ToolTable | None = (
            table_of(self.tool) if self.tool is not None and arguments is not None else None)
        self.repeat_of: int | None = None
        self.retries_failure = False
        self._arguments: list[ArgumentScan] | None = None
        self._claimed: set[str] = set()
        self._open: tuple[ArgumentScan, ...] | None = None  # open_arguments(), until the next claim

    @property
    def text(self) -> InstructionText:
        return self.scan.text

    def argument_scans(self) -> list[ArgumentScan]:
        """Every argument (schema-checked calls only: a tool and parsed arguments), in call order."""
        if self._arguments is None:
            if self.table is None or self.arguments is None:
                self._arguments = []
            else:
                infos, required, _ = self.table
                self._arguments = [ArgumentScan(name, value, infos.get(name), name in required)
                                   for name, value in self.arguments.items()]
        return self._arguments

    def open_arguments(self) -> tuple[ArgumentScan, ...]:
        """The arguments the value checks still examine: not exempt, not reported by an exclusive check."""
        if self._open is None:
            claimed = self._claimed
            self._open = tuple(a for a in self.argument_scans() if not a.exempt and a.name not in claimed)
        return self._open

    def claim(self, argument: str) -> None:
        """Mark an argument as reported (the runner does this for exclusive checks)."""
        self._claimed.add(argument)
        self._open = None

    def key(self) -> str:
        """What makes two calls identical (name + arguments, or the raw text when unparsed)."""
        return call_key(self.name, self.call.arguments, self.call.raw_arguments)
