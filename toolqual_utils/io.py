"""Reading and writing canonical instances and result tables.

- Canonical JSONL: :func:`read_instances` / :func:`write_instances`. A bad line never stops a read: it
  becomes a :class:`Reject` (file, line, field, reason) and the good lines are kept.
- Tables: :func:`write_table` / :func:`read_table` pick the format from the extension
  (``.jsonl``, ``.csv``, ``.parquet``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from .errors import InputError
from .schema import Instance, describe_validation_error, parse_instance

TABLE_FORMATS = (".jsonl", ".csv", ".parquet")


@dataclass(frozen=True)
class Reject:
    """One record that could not be converted; written to ``<out>.rejects.jsonl``."""

    file: str
    location: str  # "line 12" or "index 3" or "Instances[4]"
    reason: str
    field: str | None = None
    record_id: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def iter_jsonl_objects(
    path: str | os.PathLike[str], *, not_utf8_hint: str = "re-encode it as UTF-8"
) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Stream a JSON Lines file: ``(line number, object)`` or ``(line number, Reject)`` per non-blank line.

    A UTF-8 byte-order mark is tolerated. A line that is not JSON, or not a JSON object, is a
    :class:`Reject` naming the file and line; the caller decides whether that stops the read.

    Raises:
        InputError: the file is missing, or is not UTF-8 (with the byte offset and ``not_utf8_hint``).
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    with handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"line {line_no}"
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield line_no, Reject(str(path), where, f"not valid JSON ({exc.msg} at column {exc.colno})")
                    continue
                if not isinstance(value, dict):
                    yield line_no, Reject(str(path), where, f"expected a JSON object, got {type(value).__name__}")
                    continue
                yield line_no, value
        except UnicodeDecodeError as exc:
            raise InputError(
                f"is not UTF-8 text (undecodable byte at offset {exc.start}); {not_utf8_hint}", file=str(path)
            ) from None


def iter_canonical(path: str | os.PathLike[str]) -> Iterator[Instance | Reject]:
    """Yield an :class:`Instance` or a :class:`Reject` for every non-blank line of a canonical JSONL file.

    Raises:
        InputError: the file is missing or not UTF-8 (a per-line problem is a Reject instead).
    """
    for line_no, record in iter_jsonl_objects(path, not_utf8_hint="canonical JSONL must be UTF-8"):
        if isinstance(record, Reject):
            yield record
            continue
        try:
            yield parse_instance(record)
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)
            record_id = record.get("id") if isinstance(record.get("id"), str) else None
            yield Reject(str(path), f"line {line_no}", reason, field=field, record_id=record_id)


def read_instances(path: str | os.PathLike[str], *, strict: bool = False) -> list[Instance]:
    """Read a canonical JSONL file into instances.

    Args:
        strict: if True, the first bad line raises :class:`InputError` naming file, line and field;
            if False (default), bad lines are skipped (use :func:`iter_canonical` to see them).
    """
    instances: list[Instance] = []
    for item in iter_canonical(path):
        if isinstance(item, Reject):
            if strict:
                raise InputError(item.reason, file=item.file, record=item.location, field=item.field)
            continue
        instances.append(item)
    return instances


def write_instances(instances: Iterable[Instance], path: str | os.PathLike[str]) -> int:
    """Write instances as canonical JSONL (UTF-8, one object per line). Returns the count written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for inst in instances:
            handle.write(json.dumps(inst.to_record(), ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def write_records(records: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write plain dicts as JSONL. Returns the count written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise InputError(
            f"cannot tell the table format from the extension {suffix!r}; use one of "
            + ", ".join(TABLE_FORMATS),
            file=str(path),
        )
    return suffix


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table in the format its extension names (.jsonl, .csv, .parquet).

    Object columns holding dicts/lists are JSON-encoded for CSV and Parquet.
    """
    path = Path(path)
    fmt = _table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
        return path
    encoded = frame.copy()
    for column in encoded.columns:
        if encoded[column].dtype == object and encoded[column].map(lambda v: isinstance(v, (dict, list))).any():
            encoded[column] = encoded[column].map(
                lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
            )
    if fmt == ".csv":
        encoded.to_csv(path, index=False)
    else:
        encoded.to_parquet(path, index=False)
    return path


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (format from the extension)."""
    path = Path(path)
    fmt = _table_format(path)
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if fmt == ".jsonl":
        if path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_json(path, orient="records", lines=True, dtype=False)
    if fmt == ".csv":
        return pd.read_csv(path, keep_default_na=True)
    return pd.read_parquet(path)
