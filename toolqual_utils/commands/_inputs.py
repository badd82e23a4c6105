"""Shared input handling of the sub-commands: canonical files in, table paths out."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..io import TABLE_FORMATS, Reject, iter_canonical
from ..schema import Instance

#: How many skipped lines are reported one by one on stderr before only the count is kept.
MAX_SKIPS_SHOWN = 3


def check_table_path(path: str | None, option: str) -> None:
    """Refuse an output table path whose extension names no table format (before any work is done)."""
    if path and Path(path).suffix.lower() not in TABLE_FORMATS:
        raise InputError(f"{option} must end in one of {', '.join(TABLE_FORMATS)} (the table format is taken "
                         f"from the extension), got {path!r}")


def read_canonical_inputs(paths: Sequence[str], *, strict: bool = False) -> tuple[list[Instance], int]:
    """Instances from one or more canonical JSONL files, and how many bad lines were skipped.

    A bad line is skipped (the first few are named on stderr) unless ``strict``, when it raises
    :class:`InputError` naming file, line and field. Ids must be unique across the files; a file with no
    valid instance at all is an error (usually a raw source file that needs ``toolqual load``).
    """
    instances: list[Instance] = []
    seen: dict[str, str] = {}
    n_rejected = 0
    for path in paths:
        n_in_file = 0
        for item in iter_canonical(path):
            if isinstance(item, Reject):
                if strict:
                    raise InputError(item.reason, file=item.file, record=item.location, field=item.field)
                n_rejected += 1
                if n_rejected <= MAX_SKIPS_SHOWN:
                    print(f"skipped {item.file} {item.location}: {item.reason}", file=sys.stderr)
                continue
            if item.id in seen:
                raise InputError(f"instance id {item.id!r} also appears in {seen[item.id]}; ids must be unique "
                                 "across the input files", file=str(path), field="id")
            seen[item.id] = str(path)
            instances.append(item)
            n_in_file += 1
        if n_in_file == 0:
            raise InputError("contains no valid canonical instance (is it a raw source file? convert it with "
                             "`toolqual load` first)", file=str(path))
    return instances, n_rejected
