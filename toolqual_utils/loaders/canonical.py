"""Canonical toolqual JSON Lines (the format ``toolqual load`` writes; described in docs/format.md).

One ``{"id", "source", "instruction", "tools", "calls", "final_answer", "meta"}`` object per line, read
with :func:`toolqual_utils.io.iter_canonical`: every line is validated against the pydantic schema and a
bad line becomes a Reject (file, line, field, reason) while the good lines are kept. No configuration is
needed: a file whose first object has ``id``, ``source`` and ``instruction`` is taken to be canonical.
Ids and sources are kept exactly as written. The same records are also read from the containers of
:mod:`~toolqual_utils.loaders.containers` (``.jsonl.gz``, Parquet, ``datasets`` folders).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..io import Reject, iter_canonical
from ..schema import Instance
from ._common import Probe, build_instance
from .containers import head_records, iter_items

FORMAT = "jsonl"

_MARKERS = ("id", "source", "instruction")


def sniff(probe: Probe) -> bool:
    if probe.kind not in ("jsonl", "records"):
        return False
    return any(all(key in record for key in _MARKERS) for record in head_records(probe))


def iter_records(path: Path, probe: Probe) -> Iterator[Instance | Reject]:
    if probe.kind == "jsonl":
        yield from iter_canonical(path)
        return
    for location, item in iter_items(probe):
        yield item if isinstance(item, Reject) else build_instance(item, file=path, location=location)
