"""Reading and writing canonical instances and result tables, with the limits and safety every reader
and writer of toolqual shares.

- Canonical JSONL: :func:`read_instances` / :func:`write_instances`. A bad line never stops a read: it
  becomes a :class:`Reject` (file, line, field, reason) and the good lines are kept.
- Tables: :func:`write_table` / :func:`read_table` pick the format from the extension
  (``.jsonl``, ``.csv``, ``.parquet``); :class:`TableWriter` writes one chunk by chunk.
- **Strict JSON** (:func:`loads_strict`): ``NaN``, ``Infinity``, a number too large for a float
  (``1e999999``), an integer of more than 4,300 digits and a key repeated within one object are errors,
  not silent changes (they would become ``null`` or keep only the last value); in JSON Lines such a line
  is a Reject with the reason.
- **Limits** per record (:func:`record_problem`): a line of at most ``max_line_bytes()`` (32 MiB; env
  ``TOOLQUAL_MAX_LINE_BYTES``), values nested at most ``MAX_DEPTH`` (200) deep, strings of at most
  ``max_value_chars()`` (4 Mi characters; env ``TOOLQUAL_MAX_VALUE_CHARS``), and no unpaired UTF-16
  surrogate (``"\\ud800"``, which no UTF-8 file can hold). A line over a limit is a Reject; a longer line
  is skipped without being held in memory. Devices (``/dev/zero``) are refused.
- **Atomic outputs** (:func:`atomic_path`, :func:`atomic_open`, :func:`atomic_write_text`): every output is
  written to a temporary file beside the target, flushed to disk and renamed over it, so a killed run
  leaves either the previous file or the complete new one, never a truncated one.
- **CSV cells** that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return) are written with a leading ``'``; :func:`read_table` removes it again
  (:func:`csv_escape` / :func:`csv_unescape`). JSONL and Parquet hold the raw values.
"""
from __future__ import annotations

import csv
import io as io_module
import json
import json.decoder
import json.encoder
import json.scanner
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import ValidationError

from .compiled import reduce_fields
from .errors import InputError
from .schema import Instance, ToolCache, ToolSpec, describe_validation_error, parse_instance
from .table_formats import TABLE_FORMATS as TABLE_FORMATS  # defined where the CLI reads it without pandas

if TYPE_CHECKING:  # the table functions import pandas; reading canonical instances needs none
    import pandas as pd

#: Deepest nesting of objects and lists accepted in one record (deeper values would exhaust Python's
#: recursion limit in later processing).
MAX_DEPTH = 200
#: Default longest line (one JSON Lines record), in bytes; ``TOOLQUAL_MAX_LINE_BYTES`` overrides it.
DEFAULT_MAX_LINE_BYTES = 32 * 2**20
#: Default longest string value, in characters; ``TOOLQUAL_MAX_VALUE_CHARS`` overrides it.
DEFAULT_MAX_VALUE_CHARS = 4 * 2**20
#: Characters that make a spreadsheet treat a CSV cell as a formula.
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")

_SURROGATE = re.compile(r"[\ud800-\udfff]")  # (raw: the regex engine reads the escapes)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SKIP_CHUNK = 2**20


def _env_limit(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise InputError(f"{name} must be a whole number of bytes/characters, got {value!r}") from None
    if limit < 1:
        raise InputError(f"{name} must be positive, got {value!r}")
    return limit


def max_line_bytes() -> int:
    """The longest JSON Lines record read, in bytes (``TOOLQUAL_MAX_LINE_BYTES``, default 32 MiB)."""
    return _env_limit("TOOLQUAL_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)


def max_value_chars() -> int:
    """The longest string value accepted, in characters (``TOOLQUAL_MAX_VALUE_CHARS``, default 4 Mi)."""
    return _env_limit("TOOLQUAL_MAX_VALUE_CHARS", DEFAULT_MAX_VALUE_CHARS)


@dataclass(frozen=True)
class Reject:
    """One record that could not be converted; written to ``<out>.rejects.jsonl``."""

    file: str
    location: str  # "line 12" or "index 3" or "Instances[4]"
    reason: str
    field: str | None = None
    record_id: str | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable when compiled (see reduce_fields)
        return reduce_fields(self)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line naming the file, the record, the field (when known) and the reason, as a run that skips
        the record prints it."""
        where = f"{self.file} {self.location}" + (f", field {self.field!r}" if self.field else "")
        return f"{where}: {self.reason}"


# --------------------------------------------------------------------------------------- strict JSON
class StrictJSONError(ValueError):
    """Text that is valid JSON for Python's lenient parser but not for toolqual (see :func:`loads_strict`)."""


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number (write null or a number)")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise StrictJSONError(f"the number {text[:40]} is too large for a float")
    return value


def _object(pairs: list[tuple[str, Any]], dict: Any = dict, len: Any = len) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        repeated = ""
        for key, _ in pairs:
            if key in seen:
                repeated = key
                break
            seen.add(key)
        raise StrictJSONError(f"the key {repeated!r} appears twice in one object (which value is meant is "
                              "ambiguous)")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)


def loads_strict(text: str | bytes) -> Any:
    """Parse JSON strictly.

    Raises:
        json.JSONDecodeError: not JSON at all (with line and column).
        StrictJSONError: NaN/Infinity, a number too large for a float, an integer of more than 4,300
            digits, a key repeated within one object, or nesting deeper than Python's parser can follow.
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise StrictJSONError(f"values are nested too deeply to read (the limit is {MAX_DEPTH} levels)") from None
    except StrictJSONError:
        raise
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # Python's limit on integer digits
        if "digits" in str(exc):
            raise StrictJSONError("an integer has more than 4,300 digits") from None
        raise StrictJSONError(str(exc)) from None


def _path_text(path: list[Any]) -> str | None:
    if not path:
        return None
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def record_problem(value: Any, *, max_depth: int = MAX_DEPTH, max_chars: int | None = None) -> tuple[str, str | None] | None:
    """Why ``value`` (a parsed record) is over a limit: ``(reason, field path)``, or None when it is fine.

    Checks nesting depth (``max_depth``), string length (``max_chars``, default :func:`max_value_chars`)
    and unpaired surrogates in strings and keys. Iterative: any depth is safe to check.
    """
    max_chars = max_value_chars() if max_chars is None else max_chars
    stack: list[tuple[Any, int, list[Any]]] = [(value, 1, [])]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if len(item) > max_chars:
                return (f"a value of {len(item):,} characters is over the limit of {max_chars:,} "
                        "(TOOLQUAL_MAX_VALUE_CHARS)", _path_text(path))
            if _SURROGATE.search(item):
                return "a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not text", _path_text(path)
            continue
        if isinstance(item, dict):
            if depth > max_depth:
                return f"values are nested more than {max_depth} levels deep", _path_text(path)
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return "a key holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)", _path_text(path)
                stack.append((child, depth + 1, [*path, key]))
        elif isinstance(item, list):
            if depth > max_depth:
                return f"values are nested more than {max_depth} levels deep", _path_text(path)
            stack.extend((child, depth + 1, [*path, index]) for index, child in enumerate(item))
    return None


def _may_be_over_limits(text: str, max_chars: int) -> bool:
    """Cheap bound: can the JSON ``text`` hold a value over a limit of :func:`record_problem`? (A string
    longer than the limit needs that many characters, nesting needs that many brackets, and a surrogate
    can only arrive as a ``\\uD800``-``\\uDFFF`` escape.)"""
    return (len(text) > max_chars
            or ("\\u" in text and _SURROGATE_ESCAPE.search(text) is not None)
            or text.count("{") + text.count("[") > MAX_DEPTH)


def parse_record_line(line: str) -> Any:
    """One JSON Lines record, strictly parsed and checked against the limits.

    Raises:
        json.JSONDecodeError: not JSON. StrictJSONError: see :func:`loads_strict` and :func:`record_problem`
        (the message names the field).
    """
    value = loads_strict(line)
    max_chars = max_value_chars()
    if _may_be_over_limits(line, max_chars):
        problem = record_problem(value, max_chars=max_chars)
        if problem is not None:
            reason, where = problem
            raise StrictJSONError(f"{reason}{f' (at {where})' if where else ''}")
    return value


# --------------------------------------------------------------------------------------- reading files
def check_readable_file(path: Path) -> None:
    """Refuse what is not a readable data file: a missing path, a directory, a device such as /dev/zero.

    Pipes (``<(zcat data.jsonl.gz)``) are allowed.

    Raises:
        InputError: naming the path and what it is.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", file=str(path)) from None
    if stat.S_ISDIR(mode):
        raise InputError("is a directory; give the JSON Lines files inside it (or convert the folder with "
                         "`toolqual load DIR --out FILE.jsonl`)", file=str(path))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise InputError("is a device or socket, not a data file", file=str(path))


def iter_lines(path: str | os.PathLike[str], *, not_utf8_hint: str = "re-encode it as UTF-8",
               ) -> Iterator[tuple[int, str | Reject]]:
    """Stream the non-blank lines of a text file: ``(line number, text)``, or ``(line number, Reject)`` for a
    line longer than :func:`max_line_bytes` (skipped without being held in memory). A UTF-8 byte-order
    mark is dropped.

    Raises:
        InputError: missing, a directory or device, unreadable, or not UTF-8 (with the byte offset).
    """
    path = Path(path)
    check_readable_file(path)
    limit = max_line_bytes()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", file=str(path)) from None
    offset = 0
    with handle:
        line_no = 0
        while True:
            raw = handle.readline(limit + 1)
            if not raw:
                return
            line_no += 1
            start = offset
            offset += len(raw)
            if len(raw) > limit and not raw.endswith(b"\n"):
                skipped = len(raw)
                while True:  # drop the rest of the line, a chunk at a time
                    more = handle.readline(_SKIP_CHUNK)
                    offset += len(more)
                    skipped += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                yield line_no, Reject(str(path), f"line {line_no}",
                                      f"line of {skipped:,} bytes is longer than the limit of {limit:,} bytes per "
                                      "record (TOOLQUAL_MAX_LINE_BYTES)")
                continue
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
                start += 3
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"is not UTF-8 text (undecodable byte at offset {start + exc.start}); {not_utf8_hint}",
                    file=str(path),
                ) from None
            yield line_no, text


def parse_jsonl_line(path: str | os.PathLike[str], line_no: int, line: str) -> dict[str, Any] | Reject:
    """One line of a JSON Lines file (as :func:`iter_lines` yields it): the object, or a :class:`Reject` naming
    the file and line when it is not JSON, not strict JSON (see :func:`loads_strict`), over a limit (see
    :func:`parse_record_line`) or not a JSON object."""
    where = f"line {line_no}"
    try:
        value = parse_record_line(line)
    except json.JSONDecodeError as exc:
        return Reject(str(path), where, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except StrictJSONError as exc:
        return Reject(str(path), where, f"not accepted: {exc}")
    if not isinstance(value, dict):
        return Reject(str(path), where, f"expected a JSON object, got {type(value).__name__}")
    return value


def iter_jsonl_objects(
    path: str | os.PathLike[str], *, not_utf8_hint: str = "re-encode it as UTF-8"
) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Stream a JSON Lines file: ``(line number, object)`` or ``(line number, Reject)`` per non-blank line.

    A UTF-8 byte-order mark is tolerated. A line that is not JSON, not strict JSON (see
    :func:`loads_strict`), over a limit (see :func:`parse_record_line`), or not a JSON object is a
    :class:`Reject` naming the file and line; the caller decides whether that stops the read.

    Raises:
        InputError: the file is missing, a directory or device, or not UTF-8 (with the byte offset and
            ``not_utf8_hint``).
    """
    path = Path(path)
    for line_no, line in iter_lines(path, not_utf8_hint=not_utf8_hint):
        yield line_no, line if isinstance(line, Reject) else parse_jsonl_line(path, line_no, line)


#: what canonical JSONL readers say about a file that is not UTF-8
CANONICAL_NOT_UTF8 = "canonical JSONL must be UTF-8"


# one JSON value at a position: (value, end); as _DECODER reads (typeshed types make_scanner's argument wrongly)
_SCAN_VALUE = json.scanner.make_scanner(_DECODER)  # type: ignore[arg-type]
_SCAN_STRING = json.decoder.scanstring  # type: ignore[attr-defined]  # (not in typeshed's stubs)
_SKIP_WHITESPACE = re.compile(r"[ \t\n\r]*").match  # what JSON counts as white space
_WHITESPACE = frozenset(" \t\n\r")


def _skip(line: str, at: int) -> int:
    """The position of the first character at or after ``at`` that is not JSON white space."""
    if line[at:at + 1] not in _WHITESPACE:
        return at
    found = _SKIP_WHITESPACE(line, at)  # always matches (possibly nothing)
    return found.end() if found is not None else at


def _tools_from(line: str, start: int, tools: ToolCache) -> tuple[list[ToolSpec], int] | None:
    """The tools of the array at ``line[start]`` (``[``) through ``tools``: a tool whose text was seen before
    is neither parsed nor validated again. (validated tools, end), or None when anything is unusual."""
    specs: list[ToolSpec] = []
    at = _skip(line, start + 1)
    if line.startswith("]", at):
        return specs, at + 1
    prefix = tools.PREFIX
    candidates = tools.candidates
    while True:
        if not line.startswith("{", at):
            return None
        spec = None
        # JSON objects are prefix-free: when the line continues with a whole tool text seen before, that
        # text is exactly the value that starts here
        for text, candidate in candidates(line[at:at + prefix]):
            if line.startswith(text, at):
                spec, end = candidate, at + len(text)
                break
        if spec is None:
            value, end = _SCAN_VALUE(line, at)
            text = line[at:end]
            spec = tools.get(text)
            if spec is None:
                spec = tools.add(text, value)
                if spec is None:
                    return None
        specs.append(spec)
        at = _skip(line, end)
        if line.startswith(",", at):
            at = _skip(line, at + 1)
        elif line.startswith("]", at):
            return specs, at + 1
        else:
            return None


#: a JSON string literal (read from outside any string: each match is one whole literal)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_TOOLS_KEY = re.compile(r'"tools"[ \t\n\r]*:[ \t\n\r]*\[')


def _canonical_through_cache(line: str, tools: ToolCache, max_chars: int) -> Instance | None:
    """The instance of a canonical line read with the tools taken from ``tools``, or None when this way
    does not apply (any problem, or a line near a limit): the caller then reads the line as usual, which
    gives the same instance, or the reject with its usual reason.

    The record's top-level ``tools`` array is read tool by tool through the cache; the rest of the line,
    with ``[]`` in its place, is read by the strict parser as usual.
    """
    if _may_be_over_limits(line, max_chars):
        return None
    try:
        found = _TOOLS_KEY.search(line)
        if found is None:
            return None
        # the key must be one of the record's own: outside any string, at depth 1, after "{" or ","
        before = _JSON_STRING.sub("", line[:found.start()])
        if '"' in before or before.count("{") + before.count("[") - before.count("}") - before.count("]") != 1 \
                or not before.rstrip(" \t\n\r").endswith(("{", ",")):
            return None
        start = found.end() - 1
        read = _tools_from(line, start, tools)
        if read is None:
            return None
        specs, end = read
        record = _DECODER.decode(line[:start] + "[]" + line[end:])
        if type(record) is not dict or record.get("tools") != []:
            return None
        record["tools"] = specs
        return Instance.model_validate(record)
    except Exception:  # noqa: BLE001 - read the usual way, which says what is wrong
        return None


def canonical_from_line(path: str | os.PathLike[str], line_no: int, line: str | Reject,
                        tools: ToolCache | None = None, *, max_chars: int | None = None) -> Instance | Reject:
    """One line of a canonical JSONL file (as :func:`iter_lines` yields it): the validated :class:`Instance`,
    or a :class:`Reject` naming file, line, field and reason.

    With ``tools`` (a :class:`~toolqual_utils.schema.ToolCache`), a tool whose JSON text was read before is
    not parsed or validated again: the instance shares the cached :class:`~toolqual_utils.schema.ToolSpec`
    (the same instance otherwise; rejects are unchanged). ``max_chars`` is :func:`max_value_chars` (read
    from the environment when not given; a reader of many lines passes it once read).
    """
    if isinstance(line, Reject):
        return line
    if tools is not None:
        instance = _canonical_through_cache(line, tools, max_value_chars() if max_chars is None else max_chars)
        if instance is not None:
            return instance
    record = parse_jsonl_line(path, line_no, line)
    if isinstance(record, Reject):
        return record
    try:
        return parse_instance(record)
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)
        record_id = record.get("id") if isinstance(record.get("id"), str) else None
        return Reject(str(path), f"line {line_no}", reason, field=field, record_id=record_id)


def iter_canonical(path: str | os.PathLike[str]) -> Iterator[Instance | Reject]:
    """Yield an :class:`Instance` or a :class:`Reject` for every non-blank line of a canonical JSONL file.

    Raises:
        InputError: the file is missing, a directory or device, or not UTF-8 (a per-line problem is a
            Reject instead).
    """
    for line_no, line in iter_lines(path, not_utf8_hint=CANONICAL_NOT_UTF8):
        yield canonical_from_line(path, line_no, line)


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


# --------------------------------------------------------------------------------------- atomic writing
def fsync_directory(directory: Path) -> None:
    """Flush a folder's entries to disk (after a rename or a new file in it), where the platform allows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the output to; on success it is flushed to disk and
    renamed over ``path`` (atomic on one file system), on failure deleted. Readers, and a run killed at
    any moment, see either the previous file or the complete new one.

    The temporary file is ``.<name>.<pid>.<random>.tmp`` in the same folder (a hard kill can leave one
    behind; it is safe to delete).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # permissions as the umask says
    except OSError as exc:  # name the output, not the temporary file
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        yield tmp
        if tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO[Any]]:
    """``open()`` for writing an output atomically (see :func:`atomic_path`); ``mode`` ``"w"`` or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes new files only (mode 'w' or 'wb'), not {mode!r}")
    with atomic_path(path) as tmp:
        if "b" in mode:
            handle = open(tmp, mode)
        else:
            handle = open(tmp, mode, encoding=encoding, newline=newline)
        with handle:
            yield handle


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`). Returns the path."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def write_instances(instances: Iterable[Instance], path: str | os.PathLike[str]) -> int:
    """Write instances as canonical JSONL (UTF-8, one object per line, atomically). Returns the count written."""
    count = 0
    with atomic_open(path) as handle:
        for inst in instances:
            handle.write(json.dumps(inst.to_record(), ensure_ascii=False) + "\n")
            count += 1
    return count


def write_records(records: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write plain dicts as JSONL (atomically). Returns the count written."""
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


# --------------------------------------------------------------------------------------- tables
def csv_escape(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula: text starting with ``=``, ``+``, ``-``, ``@``,
    tab or carriage return (after any leading ``'``) gets one more leading ``'``. Other values are
    returned unchanged. :func:`csv_unescape` is the exact inverse."""
    if isinstance(value, str) and value and value.lstrip("'")[:1] in FORMULA_CHARS and value.lstrip("'"):
        return "'" + value
    return value


def csv_unescape(value: Any) -> Any:
    """The value :func:`csv_escape` was given (drops the one ``'`` it added)."""
    if isinstance(value, str) and value.startswith("'") and value.lstrip("'")[:1] in FORMULA_CHARS \
            and value.lstrip("'"):
        return value[1:]
    return value


def _is_text_column(column: pd.Series) -> bool:
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
                or pd.api.types.is_datetime64_any_dtype(column))


def _is_escaped(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("'")


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise InputError(
            f"cannot tell the table format from the extension {suffix!r}; use one of "
            + ", ".join(TABLE_FORMATS),
            file=str(path),
        )
    return suffix


def _encoded(frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """For CSV and Parquet: object columns holding dicts/lists as JSON text (JSONL keeps them); for CSV also
    text cells a spreadsheet would run as a formula escaped (:func:`csv_escape`)."""
    import pandas as pd

    if fmt == ".jsonl":
        return frame
    encoded = frame.copy()
    for column in encoded.columns:
        if encoded[column].dtype != object:
            continue
        values = encoded[column].tolist()
        if not any(issubclass(kind, (dict, list)) for kind in set(map(type, values))):
            continue
        encoded[column] = pd.Series(
            [(json.dumps(value, ensure_ascii=False) if value else "[]" if isinstance(value, list) else "{}")
             if isinstance(value, (dict, list)) else value for value in values], index=encoded.index, dtype=object)
    if fmt == ".csv":
        for column in encoded.columns:
            if _is_text_column(encoded[column]):
                encoded[column] = encoded[column].map(csv_escape)
    return encoded


def encode_table(frame: pd.DataFrame, fmt: str) -> Any:
    """A table chunk as :class:`TableWriter` writes it in format ``fmt`` (``.csv``: CSV text without the
    header; ``.jsonl``: JSON Lines text; ``.parquet``: a pyarrow Table). Pure, so a worker process can
    encode and the writing process only appends."""
    encoded = _encoded(frame, fmt)
    if fmt == ".csv":
        return encoded.to_csv(index=False, header=False)
    if fmt == ".jsonl":
        return encoded.to_json(orient="records", lines=True, force_ascii=False) if len(encoded) else ""
    import pyarrow as pa

    return pa.Table.from_pandas(encoded, preserve_index=False)


#: first characters of text that :func:`csv_escape` may change (all other text is written as it is)
_MAYBE_ESCAPED = frozenset(("'", *FORMULA_CHARS))


def _json_cell_encoder() -> Any:
    """``json.dumps(value, ensure_ascii=False)`` for a list or dict, built once: the C encoder itself where
    the json module has it (``JSONEncoder.encode`` makes a new one for every call), else ``encode``."""
    encoder = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    iterencode = make(None, encoder.default, json.encoder.encode_basestring, None, encoder.key_separator,
                      encoder.item_separator, False, False, True)
    return lambda value: "".join(iterencode(value, 0))


_JSON_CELL = _json_cell_encoder()


def _csv_cell(value: Any) -> Any:
    kind = type(value)
    if kind is str:  # the common case first: most text needs no escape
        return value if value[:1] not in _MAYBE_ESCAPED else csv_escape(value)
    if kind is int or kind is float:  # numbers are written as they are (csv_escape leaves them); NaN empty
        return value if value == value else ""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _JSON_CELL(value) if value else "[]" if isinstance(value, list) else "{}"
    return csv_escape(value)


def _csv_line(row: Sequence[Any]) -> str | None:
    """``row`` as one line of :func:`encode_rows`' CSV, built with string methods: the text ``csv.writer``
    (minimal quoting, ``\\n`` line ends) writes for the cells :func:`_csv_cell` gives. None for a row this
    way does not cover (a carriage return anywhere, a value of another type, a single cell): the writer
    then writes it."""
    if len(row) < 2:
        return None
    cells = []
    for value in row:
        kind = type(value)
        if kind is str:
            if value[:1] in _MAYBE_ESCAPED:
                value = csv_escape(value)
        elif kind is int:
            cells.append(repr(value))
            continue
        elif kind is float:
            cells.append(repr(value) if value == value else "")  # NaN: an empty cell, as pandas writes it
            continue
        elif value is None:
            cells.append("")
            continue
        elif kind is list or kind is dict:
            value = _JSON_CELL(value) if value else "[]" if kind is list else "{}"
        else:
            return None
        if '"' in value or "," in value or "\n" in value:
            value = '"' + value.replace('"', '""') + '"'
        cells.append(value)
    line = ",".join(cells)
    return None if "\r" in line else line + "\n"  # a carriage return: quoting differs between Python versions


def encode_rows(rows: Iterable[Sequence[Any]], fmt: str, columns: Sequence[str]) -> Any:
    """Like :func:`encode_table` for rows given as tuples in ``columns`` order (None = missing). CSV is
    written straight from the tuples, as the ``csv`` module writes them (lists and dicts as JSON,
    formula-like text escaped, None and NaN empty, as pandas writes them); the other formats go through a
    DataFrame."""
    if fmt != ".csv":
        import pandas as pd

        return encode_table(pd.DataFrame(list(rows), columns=list(columns)), fmt)
    lines: list[str] = []
    buffer: io_module.StringIO | None = None
    writer: Any = None
    for row in rows:
        line = _csv_line(row)
        if line is None:  # rare: the csv module writes this row
            if buffer is None:
                buffer = io_module.StringIO()
                writer = csv.writer(buffer, lineterminator="\n")
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([_csv_cell(value) for value in row])
            line = buffer.getvalue()
        lines.append(line)
    return "".join(lines)


class TableWriter:
    """Write a table chunk by chunk (format from the extension), so a long run never holds every row.

    The file is the one :func:`write_table` would write for the chunks put together (read it back with
    :func:`read_table`). It is written atomically (see :func:`atomic_path`): the file appears, complete,
    only when the writer is closed without an error; a failed or aborted run leaves the previous file (or
    none). With no chunk at all, an empty table with ``columns`` is written.

    Example::

        with TableWriter("rules.csv", VERDICT_COLUMNS) as out:
            for chunk in chunks:
                out.write(chunk)
    """

    def __init__(self, path: str | os.PathLike[str], columns: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.format = _table_format(self.path)
        self.columns = list(columns)
        self.n_rows = 0
        self._atomic: Any = None
        self._tmp: Path | None = None
        self._parquet: Any = None
        self._schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (same columns as the chunks before)."""
        self.write_encoded(encode_table(frame, self.format), len(frame), columns=list(frame.columns))

    def write_encoded(self, payload: Any, n_rows: int, *, columns: Sequence[str] | None = None) -> None:
        """Append a chunk already encoded by :func:`encode_table` / :func:`encode_rows` for this format."""
        first = self._tmp is None
        if self._tmp is None:
            self._atomic = atomic_path(self.path)
            self._tmp = self._atomic.__enter__()
        if self.format in (".jsonl", ".csv"):
            with open(self._tmp, "w" if first else "a", encoding="utf-8", newline="") as handle:
                if self.format == ".csv" and first:  # the header line, as pandas writes it (no escaping)
                    csv.writer(handle, lineterminator="\n").writerow(list(columns or self.columns))
                handle.write(payload)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in payload.schema]
                self._schema = pa.schema(fields, metadata=payload.schema.metadata)
                self._parquet = pq.ParquetWriter(self._tmp, self._schema)
            self._parquet.write_table(payload.cast(self._schema))
        self.n_rows += n_rows

    def close(self) -> Path:
        """Finish the file (an empty table with ``columns`` when nothing was written) and move it in place."""
        if self._tmp is None:
            import pandas as pd

            self.write(pd.DataFrame(columns=self.columns))
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop what was written (the destination is left as it was)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            error = RuntimeError("table not completed")
            atomic.__exit__(RuntimeError, error, None)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table in the format its extension names (.jsonl, .csv, .parquet), atomically.

    Object columns holding dicts/lists are JSON-encoded for CSV and Parquet. In CSV, text cells that
    a spreadsheet would run as a formula get a leading ``'`` (see :func:`csv_escape`; :func:`read_table`
    removes it). One chunk of a :class:`TableWriter`.
    """
    with TableWriter(path, frame.columns) as writer:
        writer.write(frame)
    return writer.path


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (format from the extension; CSV cells unescaped)."""
    import pandas as pd

    path = Path(path)
    fmt = _table_format(path)
    if not path.exists():
        raise InputError("no such file", file=str(path))
    check_readable_file(path)
    if fmt == ".jsonl":
        if path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_json(path, orient="records", lines=True, dtype=False)
    if fmt == ".csv":
        frame = pd.read_csv(path, keep_default_na=True)
        for column in frame.columns:
            if _is_text_column(frame[column]) and frame[column].map(_is_escaped).any():
                frame[column] = frame[column].map(csv_unescape)
        return frame
    return pd.read_parquet(path)
