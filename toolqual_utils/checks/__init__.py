"""Deterministic checks of the gold call sequence, and the rule verdicts they imply.

Each check is one small function registered with its name, criterion, severity and description
(:mod:`~toolqual_utils.checks.registry`; the built-in ones are in :mod:`~toolqual_utils.checks.builtin`,
and ``toolqual check --help`` lists every registered check). A finding leaves evidence: which check,
which call, which argument, which value, what was expected. Its *severity*:

- ``error``: the rule is reliable on its own; the criterion gets label 0 (status ``ok``, "decided").
- ``suspect``: worth a look but not reliable alone (e.g. a value only partly found in the instruction);
  the criterion stays ``unscored:needs_model`` and the finding travels as evidence to the model judge.

Layout:

- :mod:`.text` — normalisation (casing, punctuation, plurals, numbers, dates, country/currency/state
  codes) and :class:`~.text.InstructionText`, also used by :mod:`toolqual_utils.heuristics`;
- :mod:`.tool_schema` — what the checks read from a tool's JSON schema, cached;
- :mod:`.values` — placeholder and grounding tests of one value;
- :mod:`.registry` and :mod:`.scan` — the check contract: :func:`register`, :class:`Hit`,
  :class:`Finding`, and what a check function is given (:class:`InstanceScan`, :class:`CallScan`);
- :mod:`.builtin` — the checks;
- :mod:`.run` — running them: :func:`find_issues`, :func:`check_findings`, :func:`check_flags`,
  :func:`run_checks` (rule verdicts, :class:`~toolqual_utils.verdicts.VerdictRow` rows).

Pure package: standard library, pandas and rapidfuzz; no I/O.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Final

from ..errors import ConfigError
from ..verdicts import RULES_JUDGE
from . import builtin as _builtin  # noqa: F401  (registers the built-in checks)
from .registry import (
    CHECKS, SEVERITIES, Check, Finding, Hit, Severity, get_check, register, registered_checks, rule_criteria, unregister,
)
from .run import (
    FINDING_COLUMNS, RULES_PROMPT_ID, check_findings, check_flags, find_issues, finding_records, findings_frame,
    instance_findings, rule_decisions, rule_rows, run_checks,
)
from .scan import ArgumentScan, CallScan, InstanceScan

__all__ = [
    "CHECKS", "CHECK_MODULES_ENV", "FINDING_COLUMNS", "RULE_CRITERIA", "RULES_JUDGE", "RULES_PROMPT_ID", "SEVERITIES", "ArgumentScan",
    "CallScan", "Check", "Finding", "Hit", "InstanceScan", "Severity", "check_findings", "check_flags",
    "find_issues", "finding_records", "findings_frame", "get_check", "instance_findings", "load_check_modules",
    "register", "registered_checks", "rule_criteria", "rule_decisions", "rule_rows", "run_checks", "unregister",
]

#: Criteria the built-in checks give a rule verdict for (one row per instance x criterion);
#: :func:`rule_criteria` also counts checks registered later.
RULE_CRITERIA: Final = rule_criteria()

#: environment variable naming extra check modules (comma-separated import paths) the CLI imports
CHECK_MODULES_ENV: Final = "TOOLQUAL_CHECK_MODULES"


def load_check_modules(environ: Mapping[str, str] | None = None) -> list[str]:
    """Import the modules named in ``TOOLQUAL_CHECK_MODULES`` (their ``@register`` calls add checks).

    Returns the module names imported.

    Raises:
        ConfigError: a named module cannot be imported (names it and says why).
    """
    environ = os.environ if environ is None else environ
    names = [n.strip() for n in (environ.get(CHECK_MODULES_ENV) or "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{CHECK_MODULES_ENV} names the check module {name!r}, which cannot be imported "
                              f"({exc}); install it or fix the name") from exc
    return names
