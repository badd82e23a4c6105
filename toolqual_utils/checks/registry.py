"""The check registry: every deterministic check is one function registered with its name, criterion,
severity and description (its docstring says when it fires).

Adding a check is one function and one registration::

    from toolqual_utils.checks import Hit, register

    @register("zero_quantity", "parameter_alignment", "a quantity of zero is ordered")
    def zero_quantity(call):
        \"\"\"An order call passes quantity 0 (nobody orders nothing).\"\"\"
        for argument in call.open_arguments():
            if argument.name == "quantity" and argument.value == 0:
                yield Hit(f"call {call.index} ({call.name}) orders 0 items", argument=argument.name, value=0)

From then on ``toolqual check --help`` lists it, :func:`~toolqual_utils.checks.find_issues` reports its
findings, ``check_flags`` has an ``is_zero_quantity_issue`` column, and ``run_checks`` /
``toolqual check`` give a rule verdict for its criterion (label 0 when it fires with severity ``error``;
a ``suspect`` finding travels as evidence to the model judge). Register in a module that is imported
before the checks run (the CLI also imports the modules named in ``TOOLQUAL_CHECK_MODULES``).

A check has a *scope*:

- ``"call"`` (default): called once per API call of the gold sequence, in order, with a
  :class:`~toolqual_utils.checks.scan.CallScan` (the call, its tool and schema table, its arguments,
  the instruction as normalised text, and the earlier outputs a value may come from);
- ``"instance"``: called once per instance, before the calls, with an
  :class:`~toolqual_utils.checks.scan.InstanceScan`.

It returns a :class:`Hit`, several (a list or a generator), or None. A hit of a call check is located at
that call unless it says otherwise. ``exclusive=True`` (the argument-value checks) means: an argument this
check reported is not examined by the checks registered after it, so an argument gets one value finding
(placeholder before type before allowed values before grounding).

Pure module: standard library only.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..compiled import reduce_fields
from ..schema import CRITERIA

__all__ = [
    "Severity", "SEVERITIES", "Scope", "Hit", "Finding", "Check", "CHECKS", "register", "unregister", "get_check",
    "registered_checks", "rule_criteria",
]

Severity = Literal["error", "suspect"]
SEVERITIES: Final = ("error", "suspect")
Scope = Literal["instance", "call"]


@dataclass(frozen=True, slots=True)
class Hit:
    """What a check function reports; the runner turns it into a :class:`Finding`.

    ``severity`` None = the check's registered severity. For a call check, ``call_index`` and
    ``function`` default to the call being checked.
    """

    message: str
    severity: Severity | None = None
    argument: str | None = None
    value: Any = None
    expected: Any = None
    call_index: int | None = None
    function: str | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable when compiled (see reduce_fields)
        return reduce_fields(self)


@dataclass(frozen=True, slots=True)
class Finding:
    """One fired check. ``call_index`` is 0-based over ``instance.calls`` (None for instance-level checks)."""

    instance_id: str
    check: str
    severity: Severity
    message: str
    call_index: int | None = None
    function: str | None = None
    argument: str | None = None
    value: Any = None
    expected: Any = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable when compiled (see reduce_fields)
        return reduce_fields(self)

    @property
    def criterion(self) -> str:
        return get_check(self.check).criterion

    def evidence(self) -> dict[str, Any]:
        """JSON-serialisable evidence dict for the verdict table."""
        from .values import jsonable

        record: dict[str, Any] = {"check": self.check, "severity": self.severity}
        if self.call_index is not None:
            record["call_index"] = self.call_index
        if self.function is not None:
            record["function"] = self.function
        if self.argument is not None:
            record["argument"] = self.argument
        if self.value is not None:
            record["value"] = jsonable(self.value)
        if self.expected is not None:
            record["expected"] = jsonable(self.expected)
        record["message"] = self.message
        return record


@dataclass(frozen=True)
class Check:
    """A registered check. ``doc`` is the function's docstring: when the check fires, in words."""

    name: str
    criterion: str
    severity: Severity
    description: str
    function: Callable[..., Any]
    scope: Scope = "call"
    exclusive: bool = False

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable when compiled (see reduce_fields)
        return reduce_fields(self)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.function) or self.description


_REGISTRY: dict[str, Check] = {}


def register(
    name: str,
    criterion: str,
    description: str,
    *,
    severity: Severity = "error",
    scope: Scope = "call",
    exclusive: bool = False,
    replace: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a check function (see the module docstring). Returns the function unchanged.

    Args:
        name: the check's name (snake_case; it names the finding, the evidence and ``is_<name>_issue``).
        criterion: the intrinsic criterion a finding of severity ``error`` sets to 0.
        description: one line for ``toolqual check --help`` and ``CHECKS``.
        severity: ``"error"`` (reliable alone: the criterion gets label 0) or ``"suspect"`` (evidence for
            the model judge); a hit may override it.
        scope: ``"call"`` or ``"instance"``.
        exclusive: an argument this check reports is not examined by later checks.
        replace: allow re-registering an existing name (otherwise that is an error).

    Raises:
        ValueError: bad name, criterion, severity or scope, or a name taken (without ``replace``).
    """
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"check name {name!r}: use snake_case letters, digits and underscores")
    if criterion not in CRITERIA:
        raise ValueError(f"check {name!r}: unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    if severity not in SEVERITIES:
        raise ValueError(f"check {name!r}: severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    if scope not in ("instance", "call"):
        raise ValueError(f"check {name!r}: scope must be 'instance' or 'call', not {scope!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"a check named {name!r} is already registered (pass replace=True to replace it)")

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = Check(name, criterion, severity, description, function, scope, exclusive)
        _VIEWS.clear()
        return function

    return decorate


def unregister(name: str) -> Check:
    """Remove a check; returns it (so a test can add a check and take it away again)."""
    try:
        check = _REGISTRY.pop(name)
    except KeyError:
        raise KeyError(f"no check named {name!r} is registered") from None
    _VIEWS.clear()
    return check


def get_check(name: str) -> Check:
    """The registered check called ``name`` (KeyError naming the registered ones otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no check named {name!r}; registered: {', '.join(_REGISTRY)}") from None


_VIEWS: dict[Any, tuple[Any, ...]] = {}  # registered_checks / rule_criteria results, until the registry changes


def registered_checks(scope: Scope | None = None) -> tuple[Check, ...]:
    """The registered checks in registration order (the order they run in), optionally of one scope."""
    view = _VIEWS.get(scope)
    if view is None:
        view = _VIEWS[scope] = tuple(c for c in _REGISTRY.values() if scope is None or c.scope == scope)
    return view


def rule_criteria() -> tuple[str, ...]:
    """The criteria some registered check addresses, in ``CRITERIA`` order (one rule verdict each)."""
    view = _VIEWS.get("criteria")
    if view is None:
        covered = {c.criterion for c in _REGISTRY.values()}
        view = _VIEWS["criteria"] = tuple(c for c in CRITERIA if c in covered)
    return view


class _ChecksView(Mapping[str, tuple[str, str]]):
    """Live read-only view: check name -> (criterion, one-line description), in registration order."""

    def __getitem__(self, name: str) -> tuple[str, str]:
        check = _REGISTRY[name]
        return check.criterion, check.description

    def __iter__(self) -> Iterator[str]:
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"CHECKS({dict(self)!r})"


#: check name -> (criterion, one-line description) of every registered check (a live view).
#: Flag columns of ``check_flags`` are ``is_<check>_issue``.
CHECKS: Final[Mapping[str, tuple[str, str]]] = _ChecksView()
