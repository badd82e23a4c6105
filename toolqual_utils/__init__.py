"""toolqual: find the wrong instances in synthetic tool-use training data.

Nothing is re-exported here (importing the package stays cheap); import from the submodules, e.g.
``from toolqual_utils.checks import run_checks``, ``from toolqual_utils.heuristics import offline_verdicts``,
``from toolqual_utils.verdicts import Status, read_verdicts``, ``from toolqual_utils.tables import
error_rate_table``, ``from toolqual_utils.judge.engine import judge``. The command line is
``toolqual`` (:mod:`toolqual_utils.cli`).

Importing the package first decides whether the compiled checks run (:mod:`toolqual_utils.compiled`: only a
build made from exactly this source, and not with ``TOOLQUAL_COMPILED=0``).
"""
from .compiled import install as _install_compiled

__version__ = "0.1.0"
_install_compiled()
