"""The six criteria of the paper, by name: the names every table, prompt and command uses.

Defined here, apart from the pydantic record schema (:mod:`toolqual_utils.schema` re-exports them), so that
what only needs the names (the judge's sending process before its first request, the command line) does not
load pydantic.

Pure module: standard library only.
"""
from __future__ import annotations

from typing import Final

__all__ = ["INSTRUCTION_CRITERIA", "SEQUENCE_CRITERIA", "CRITERIA"]

#: criteria of the instruction
INSTRUCTION_CRITERIA: Final = ("specificity", "coherence", "solvability")
#: criteria of the ground-truth call sequence
SEQUENCE_CRITERIA: Final = ("parameter_alignment", "sufficiency", "minimality")
#: all six, in the paper's order
CRITERIA: Final = INSTRUCTION_CRITERIA + SEQUENCE_CRITERIA
