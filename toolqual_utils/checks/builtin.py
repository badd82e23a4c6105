"""The built-in checks, one function each, registered in the order they run.

Each is tied to one intrinsic criterion (``docs/method.md``) and leaves evidence: which check, which call,
which argument, which value, what was expected. Severity ``error`` = reliable alone (the criterion gets
label 0); ``suspect`` = worth a look but not reliable alone (the finding travels to the model judge as
evidence). ``toolqual check --help`` lists them; the docstrings say exactly when each fires.

Pure module: standard library only.
"""
from __future__ import annotations

from .registry import Hit, register
from .scan import CallScan, InstanceScan
from .tool_schema import enum_problem, type_problem
from .values import REFERENCE_RE, is_empty, placeholder_problem, short, ungrounded

__all__: list[str] = []  # nothing to import: the checks are reached through the registry


@register("unknown_function", "sufficiency", "call to an API the instance does not offer")
def unknown_function(call: CallScan) -> Hit | None:
    """A call names an API the instance does not offer: it cannot serve the request it stands for."""
    if call.tool is not None:
        return None
    return Hit(f"call {call.index} names {call.name!r}, which is not among the offered tools",
               expected=sorted(call.scan.tools)[:20])


@register("no_call_for_request", "sufficiency", "no call although the instruction makes a request",
          scope="instance")
def no_call_for_request(scan: InstanceScan) -> Hit | None:
    """The gold sequence is ``[]`` (no API call) although the instruction asks for something (three words
    or more). BFCL ``irrelevance`` instances are exempt: there, calling nothing is right."""
    if not scan.has_gold_calls or scan.api_calls or scan.irrelevance or len(scan.instance.instruction.split()) < 3:
        return None
    return Hit("the gold sequence makes no call although the instruction asks for something")


@register("irrelevance_by_design", "solvability", "BFCL irrelevance: no offered tool serves the request",
          scope="instance")
def irrelevance_by_design(scan: InstanceScan) -> Hit | None:
    """A BFCL ``irrelevance`` instance: by construction none of the offered tools serves the request."""
    if not scan.irrelevance:
        return None
    return Hit("BFCL irrelevance instance: by construction none of the offered tools serves the request "
               "(the correct behaviour is to call nothing)")


@register("unparseable_arguments", "parameter_alignment", "arguments are not valid JSON")
def unparseable_arguments(call: CallScan) -> Hit | None:
    """Argument text that is not JSON, and not repairable by quoting its ``${...}`` templates."""
    if not call.unparseable:
        return None
    return Hit(f"call {call.index} ({call.name}): the arguments are not valid JSON",
               value=(call.call.raw_arguments or "")[:200])


@register("placeholder_value", "parameter_alignment", "a placeholder literal is passed as a value", exclusive=True)
def placeholder_value(call: CallScan) -> list[Hit]:
    """A literal placeholder is passed: a type name (``"string"``), a template (``<name>``, ``{x}``,
    ``${some permission}``, also in argument text that is not JSON), the parameter's own name
    (``"country"`` for ``country``), or a vague phrase ("specific actor", "a certain year"). A type or
    parameter name the user actually wrote is a value."""
    hits = [Hit(f"call {call.index} ({call.name}): the unfilled template {template} is passed instead of a value",
                value=template)
            for template in call.raw_templates if not REFERENCE_RE.match(template)]
    for argument in call.open_arguments():
        for scalar in argument.scalars:
            problem = placeholder_problem(scalar, argument.name, call.text, argument.info.enum)
            if problem:
                hits.append(Hit(f"call {call.index} ({call.name}), {argument.name}: {problem}",
                                argument=argument.name, value=scalar))
                break
    return hits


@register("missing_required_parameter", "parameter_alignment", "a required parameter is missing")
def missing_required_parameter(call: CallScan) -> list[Hit] | None:
    """A parameter the tool's schema marks required is absent from the call."""
    if call.table is None or call.arguments is None:
        return None
    return [Hit(f"call {call.index} ({call.name}): required parameter {param!r} is missing", argument=param)
            for param in sorted(call.table.required) if param not in call.arguments]


@register("empty_required_value", "parameter_alignment", "a required parameter is empty or None")
def empty_required_value(call: CallScan) -> list[Hit] | None:
    """A required parameter is passed as ``None``, ``""`` (or blank) or an empty list/object."""
    if call.table is None or call.arguments is None:
        return None
    arguments = call.arguments
    return [Hit(f"call {call.index} ({call.name}): required parameter {param!r} is empty ({short(arguments[param])})",
                argument=param, value=arguments[param])
            for param in sorted(call.table.required) if param in arguments and is_empty(arguments[param])]


@register("unexpected_parameter", "parameter_alignment", "an argument the schema does not define")
def unexpected_parameter(call: CallScan) -> list[Hit] | None:
    """An argument the tool's schema does not define. Only ``suspect`` when the schema lists no
    parameters at all (ToolBench lost optional ones upstream)."""
    if call.table is None:
        return None
    infos, _, has_properties = call.table
    return [Hit(f"call {call.index} ({call.name}): {argument.name!r} is not a parameter of {call.name}",
                severity="error" if has_properties else "suspect", argument=argument.name, value=argument.value,
                expected=sorted(infos)[:30])
            for argument in call.argument_scans() if not argument.known]


@register("type_mismatch", "parameter_alignment", "a value of the wrong type", exclusive=True)
def type_mismatch(call: CallScan) -> list[Hit]:
    """A value of the wrong JSON type. Lenient: an ``int`` is a ``number``; integral floats and numeric
    strings pass for numbers; scalars pass for strings; ``"true"``/``"false"``/0/1 for booleans; a list for a
    string only when its description says array or list."""
    hits = []
    for argument in call.open_arguments():
        problem = type_problem(argument.value, argument.info)
        if problem:
            hits.append(Hit(f"call {call.index} ({call.name}), {argument.name}: {problem}", argument=argument.name,
                            value=argument.value, expected=argument.info.kind))
    return hits


@register("enum_mismatch", "parameter_alignment", "a value outside the allowed values", exclusive=True)
def enum_mismatch(call: CallScan) -> list[Hit]:
    """A value outside the schema's ``enum`` (or ToolAlpaca's "One of: [...]" in the description),
    compared case-insensitively."""
    hits = []
    for argument in call.open_arguments():
        enum = argument.info.enum
        problem = enum_problem(argument.value, enum) if enum is not None else None
        if problem:
            hits.append(Hit(f"call {call.index} ({call.name}), {argument.name}: {problem}", argument=argument.name,
                            value=argument.value, expected=list(enum)))
    return hits


@register("ungrounded_value", "parameter_alignment",
          "a value not supported by the instruction or earlier outputs", exclusive=True)
def ungrounded_value(call: CallScan) -> list[Hit]:
    """A value not supported by the instruction, an earlier observation, a reference or an exemption.
    ``error`` when nothing of it appears (an optional parameter nobody asked for) or it is the schema's own
    example; ``suspect`` when partly found, or an unresolved short code, number, date or required value
    (often an inference the model judge decides)."""
    hits = []
    for argument in call.open_arguments():
        worst = None
        for scalar in argument.scalars:
            verdict = ungrounded(scalar, argument.info, call.text, argument.required)
            if verdict is not None and (worst is None or verdict[0] == "error"):
                worst = verdict
                if verdict[0] == "error":
                    break
        if worst is not None:
            hits.append(Hit(f"call {call.index} ({call.name}), {argument.name}: {worst[1]}", severity=worst[0],
                            argument=argument.name, value=argument.value))
    return hits


@register("repeated_identical_call", "minimality", "a call repeated identically")
def repeated_identical_call(call: CallScan) -> Hit | None:
    """A call identical (name + arguments) to an earlier one (a direct retry of a failed call is
    ``identical_retry_after_error`` instead)."""
    if call.repeat_of is None or call.retries_failure:
        return None
    return Hit(f"call {call.index} ({call.name}) repeats call {call.repeat_of} with identical arguments",
               expected=f"distinct from call {call.repeat_of}")


@register("identical_retry_after_error", "minimality", "a failed call retried identically")
def identical_retry_after_error(call: CallScan) -> Hit | None:
    """The call directly before failed (its output says error, not found, timeout, 4xx/5xx...) and this call
    retries it with identical arguments. A retry with changed arguments is fine."""
    if not call.retries_failure:
        return None
    return Hit(f"call {call.index} ({call.name}) retries call {call.index - 1} with identical arguments after it "
               "failed", expected=f"changed arguments (call {call.index - 1} failed)")
