"""The table formats toolqual reads and writes, chosen by a file's extension.

Kept apart from :mod:`toolqual_utils.io` (which loads pydantic and the schema, and pandas for its table
functions) so that a command can check an output path, and list the formats in its help, before it loads
anything heavy.
"""
from __future__ import annotations

from typing import Final

TABLE_FORMATS: Final = (".jsonl", ".csv", ".parquet")
