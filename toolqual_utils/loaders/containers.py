"""Containers of records: the files and folders a training set comes in, read one record at a time.

Besides JSON Lines and whole-document JSON, ``toolqual load`` reads:

- **JSON arrays of any size**, streamed with `ijson <https://pypi.org/project/ijson/>`_ (its C backend):
  the first few items are parsed to detect the format, then the array is read item by item, so a
  60,000-record xLAM file loads in flat memory. A truncated or broken array stops the load with one
  paragraph naming the file and the last good item.
- **Parquet** (``.parquet``, the Hugging Face Hub's own conversion format), read with pyarrow in
  batches of :data:`BATCH_ROWS` rows.
- **Arrow IPC** files and streams (``.arrow``), and a **Hugging Face ``datasets`` folder** written by
  ``Dataset.save_to_disk`` (``state.json`` + ``dataset_info.json`` + ``data-*.arrow``; a
  ``DatasetDict`` folder holds one such folder per split and each split is read as its own source).
  These are read with pyarrow directly, so the ``datasets`` library is not needed and nothing is
  downloaded; the tests write the folders with the real ``datasets`` library.
- **gzip** (``.jsonl.gz``, ``.json.gz``): JSON Lines or a JSON array inside, decompressed as it is read.

Containers are recognised by content (magic bytes: ``PAR1``, ``ARROW1`` or an Arrow stream's
continuation marker, gzip's ``1f 8b``), never by name alone. Rows come out as plain dicts (Arrow
structs become dicts, lists become lists) and go to the same record loaders as JSON Lines; record
locations read ``row <n>`` (0-based over the whole container) or ``index <n>`` for JSON arrays.

Every record is held to the same rules as a JSON Lines line (:func:`toolqual_utils.io.record_problem`:
nesting depth, value size, unpaired surrogates): one over a limit is a reject naming the field; gzipped
JSON Lines are parsed strictly like plain ones. (A key repeated inside one object of a streamed array or
a Parquet row cannot be seen: the parser keeps the last value.)

Only the record-oriented formats (xLAM, ToolACE, ShareGPT/Hermes, Glaive, ToolLLaMA, OpenAI chat,
canonical) are read from containers; the formats that join companion files (BFCL, Seal-Tools) or need a
whole document (ToolAlpaca, ToolBench answer files) keep their own files.
"""
from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..io import Reject, StrictJSONError, parse_record_line, record_problem
from ._common import PROBE_LINES, Probe, iter_jsonl_objects, load_json_document, supported_formats_sentence

#: rows converted per Arrow batch (bounded memory whatever the file size)
BATCH_ROWS = 1024
#: file name endings ``toolqual load`` considers when it walks a folder
CONTAINER_SUFFIXES = (".parquet", ".arrow", ".jsonl.gz", ".json.gz")

_PARQUET = b"PAR1"
_ARROW_FILE = b"ARROW1"
_ARROW_STREAM = b"\xff\xff\xff\xff"
_GZIP = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"

Items = Iterator[tuple[str, "dict[str, Any] | Reject"]]


# --- recognising containers -------------------------------------------------------------------------

def is_dataset_folder(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` (``state.json`` and ``dataset_info.json``)."""
    return path.is_dir() and (path / "state.json").is_file() and (path / "dataset_info.json").is_file()


def dataset_dict_splits(path: Path) -> list[Path] | None:
    """The split folders of a ``DatasetDict.save_to_disk`` folder, in the order it lists them; None
    when ``path`` is not one."""
    marker = path / "dataset_dict.json"
    if not marker.is_file():
        return None
    try:
        splits = json.loads(marker.read_text(encoding="utf-8")).get("splits")
    except (OSError, ValueError, AttributeError):
        splits = None
    if not isinstance(splits, list):
        splits = sorted(p.name for p in path.iterdir() if is_dataset_folder(p))
    return [path / str(name) for name in splits if is_dataset_folder(path / str(name))]


def source_stem(path: Path) -> str:
    """The name ids are built from: the file name without its extensions (``train.jsonl.gz`` ->
    ``train``), or the folder name of a ``datasets`` folder."""
    if path.is_dir():
        return path.name
    name = path.name
    for suffix in (".gz",):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return Path(name).stem


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(8)
    except OSError:
        return b""


def first_character(path: Path, limit: int = 1 << 16) -> str:
    """The first non-blank character of a text file ("" when none within ``limit`` bytes)."""
    with path.open("rb") as handle:
        chunk = handle.read(limit)
    if chunk.startswith(_BOM):
        chunk = chunk[len(_BOM):]
    stripped = chunk.lstrip(_WHITESPACE)
    return chr(stripped[0]) if stripped and stripped[0] < 128 else ""


def probe_container(path: Path) -> Probe | None:
    """A :class:`Probe` of kind ``"records"`` when ``path`` is a container (see the module docstring);
    None for plain text files, which :func:`~toolqual_utils.loaders._common.probe_file` handles."""
    if path.is_dir():
        if is_dataset_folder(path):
            return _records_probe(path, "Hugging Face datasets folder", lambda: _iter_dataset_folder(path))
        return None
    if not path.is_file():
        return None
    magic = _magic(path)
    if magic.startswith(_PARQUET):
        return _records_probe(path, "Parquet", lambda: _iter_parquet(path))
    if magic.startswith(_ARROW_FILE) or magic.startswith(_ARROW_STREAM):
        return _records_probe(path, "Arrow", lambda: _rows(_arrow_batches(path), path, "Arrow"))
    if magic.startswith(_GZIP):
        return _records_probe(path, "gzip", lambda: _iter_gzip(path))
    return None


def _records_probe(path: Path, container: str, factory: Callable[[], Items]) -> Probe:
    first: list[dict[str, Any]] = []
    seen = 0
    stream = factory()
    try:
        for _location, item in stream:
            seen += 1
            if isinstance(item, dict):
                first.append(item)
            if len(first) >= PROBE_LINES or seen >= 4 * PROBE_LINES:
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if seen == 0:
        raise InputError(f"the {container} holds no records. " + supported_formats_sentence(), file=str(path))
    return Probe(path, "records", first_records=first, records=factory, container=container)


def _checked(path: Path, location: str, value: Any) -> dict[str, Any] | Reject:
    """A parsed record, or a Reject when it is not an object or is over a limit of :func:`record_problem`."""
    if not isinstance(value, dict):
        return Reject(str(path), location, f"expected a JSON object, got {type(value).__name__}")
    problem = record_problem(value)
    if problem is not None:
        reason, where = problem
        return Reject(str(path), location, f"not accepted: {reason}", field=where)
    return value


# --- JSON arrays -------------------------------------------------------------------------------------

def _skip_bom(handle: IO[bytes]) -> IO[bytes]:
    start = handle.read(len(_BOM))
    if start != _BOM:
        handle.seek(0)
    return handle


def _json_error(path: Path, index: int, exc: Exception) -> InputError:
    text = " ".join(str(exc).split())
    if "utf" in text.lower() and "invalid" in text.lower():
        problem = "it is not UTF-8 text; re-encode it as UTF-8"
    elif "premature eof" in text.lower() or "incomplete" in text.lower():
        problem = "truncated: the file ends inside the array"
    else:
        problem = f"not valid JSON ({text[:160]})"
    where = "before its first item" if index == 0 else f"after item {index - 1}"
    return InputError(f"is a JSON array that cannot be read {where}: {problem}. " + supported_formats_sentence(),
                      file=str(path))


def iter_json_array(handle: IO[bytes], path: Path) -> Items:
    """Stream the items of a JSON array: ``("index <i>", item)``; a non-object item is a Reject.

    Raises:
        InputError: the array is broken (truncated, invalid JSON, not UTF-8), naming the last good item.
    """
    import ijson

    index = 0
    try:
        for item in ijson.items(handle, "item", use_float=True):
            location = f"index {index}"
            yield location, _checked(path, location, item)
            index += 1
    except ijson.JSONError as exc:
        raise _json_error(path, index, exc) from None
    except (OSError, EOFError, zlib.error) as exc:  # a broken gzip stream underneath
        raise InputError(f"cannot be decompressed after item {index} ({exc}); the file may be truncated",
                         file=str(path)) from None


def _iter_json_array_file(path: Path) -> Items:
    with path.open("rb") as handle:
        yield from iter_json_array(_skip_bom(handle), path)


def probe_json_array(path: Path) -> Probe | None:
    """A lazy :class:`Probe` of a file holding one JSON array: its first items are parsed (for format
    detection), the rest only when a loader reads it. None when the head itself is not valid JSON
    (the caller then reports the problem from a full parse)."""
    import ijson

    head: list[Any] = []
    try:
        with path.open("rb") as handle:
            for item in ijson.items(_skip_bom(handle), "item", use_float=True):
                head.append(item)
                if len(head) >= PROBE_LINES:
                    break
    except (ijson.JSONError, UnicodeDecodeError):
        return None
    return Probe(path, "json", first_records=[item for item in head if isinstance(item, dict)], is_array=True,
                 array_head=head, document_loader=lambda: load_json_document(path))


# --- Parquet, Arrow, datasets folders ------------------------------------------------------------------

def _rows(batches: Iterator[Any], path: Path, container: str, start: int = 0) -> Items:
    index = start
    try:
        for batch in batches:
            for row in batch.to_pylist():
                yield f"row {index}", _checked(path, f"row {index}", row)
                index += 1
    except OSError as exc:
        raise InputError(f"is not a readable {container} file after row {index} ({exc})", file=str(path)) from None
    except Exception as exc:  # pyarrow.ArrowException and friends
        if type(exc).__module__.startswith("pyarrow"):
            raise InputError(f"is not a readable {container} file after row {index} ({exc})",
                             file=str(path)) from None
        raise


def _iter_parquet(path: Path) -> Items:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise InputError(f"is not a readable Parquet file ({exc})", file=str(path)) from None
    yield from _rows(parquet.iter_batches(batch_size=BATCH_ROWS), path, "Parquet")


def _arrow_batches(path: Path) -> Iterator[Any]:
    import pyarrow as pa

    source = pa.memory_map(str(path), "r")
    try:
        if _magic(path).startswith(_ARROW_FILE):
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
        else:
            yield from pa.ipc.open_stream(source)
    finally:
        source.close()


def _iter_dataset_folder(path: Path) -> Items:
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        files = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"looks like a Hugging Face datasets folder but its state.json cannot be read ({exc})",
                         file=str(path)) from None
    if state.get("_indices_data_files"):
        raise InputError("is a datasets folder saved with an indices mapping; save it again with "
                         "dataset.flatten_indices().save_to_disk(...) and load that folder", file=str(path))
    start = 0
    for name in files:
        data_file = path / name
        if not data_file.is_file():
            raise InputError(f"lists the data file {name!r} in state.json, but it is missing", file=str(path))
        for location, row in _rows(_arrow_batches(data_file), path, "Arrow", start):
            yield location, row
            start += 1


# --- gzip ---------------------------------------------------------------------------------------------

def _iter_gzip(path: Path) -> Items:
    try:
        with gzip.open(path, "rb") as handle:
            peek = handle.peek(1 << 12) if hasattr(handle, "peek") else b""
            text_start = peek[len(_BOM):] if peek.startswith(_BOM) else peek
            if text_start.lstrip(_WHITESPACE).startswith(b"["):
                yield from iter_json_array(_skip_bom(handle), path)
                return
            yield from _iter_jsonl_stream(handle, path)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"is not a readable gzip file ({exc}); the file may be truncated", file=str(path)) from None


def _iter_jsonl_stream(handle: IO[bytes], path: Path) -> Items:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig")
    line_no = 0
    try:
        for line_no, line in enumerate(text, start=1):
            if not line.strip():
                continue
            location = f"line {line_no}"
            try:
                value = parse_record_line(line)  # strict JSON within the limits, as for plain JSON Lines
            except json.JSONDecodeError as exc:
                yield location, Reject(str(path), location, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            except StrictJSONError as exc:
                yield location, Reject(str(path), location, f"not accepted: {exc}")
                continue
            yield location, _checked(path, location, value)
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text inside the gzip stream (line {line_no + 1}, byte {exc.start}); "
                         "re-encode it as UTF-8", file=str(path)) from None


# --- one interface for the record loaders -----------------------------------------------------------

def iter_items(probe: Probe) -> Items:
    """Every record of a probed source as ``(location, dict | Reject)``, whatever its container.

    JSON Lines: ``line <n>``; a JSON array (streamed): ``index <i>``; one JSON object: ``document``;
    containers: ``row <i>`` or, for gzipped JSON Lines, ``line <n>``.
    """
    if probe.kind == "jsonl":
        for line_no, item in iter_jsonl_objects(probe.path):
            yield f"line {line_no}", item
    elif probe.kind == "records" and probe.records is not None:
        yield from probe.records()
    elif probe.kind == "json" and probe.is_array:
        yield from _iter_json_array_file(probe.path)
    elif probe.kind == "json":
        document = probe.document
        if isinstance(document, dict):
            yield "document", document
        elif isinstance(document, list):
            for index, item in enumerate(document):
                yield f"index {index}", _checked(probe.path, f"index {index}", item)


def head_records(probe: Probe) -> list[dict[str, Any]]:
    """The first records of any probed source (for sniffers): JSON Lines, array items, container rows,
    or the single object of a one-object JSON document."""
    if probe.first_records:
        return probe.first_records
    if probe.kind == "json" and not probe.is_array and isinstance(probe.loaded_document, dict):
        return [probe.loaded_document]
    return []


def folder_sources(folder: Path) -> list[Path]:
    """Everything under a folder that may be a source, sorted by path: its files, except those inside
    a ``datasets`` folder, which is listed as one source instead (a ``DatasetDict``'s splits are such
    folders)."""
    datasets = sorted(p.parent for p in folder.rglob("state.json") if is_dataset_folder(p.parent))
    if is_dataset_folder(folder):
        return [folder]
    files = [p for p in folder.rglob("*") if p.is_file() and not any(d in p.parents for d in datasets)
             and not (p.name == "dataset_dict.json" and dataset_dict_splits(p.parent))]
    return sorted([*files, *datasets])


def is_source_name(path: Path) -> bool:
    """Whether a path found in a folder is worth probing: ``.json``, ``.jsonl``, a container suffix,
    or a ``datasets`` folder."""
    name = path.name.lower()
    return path.is_dir() or name.endswith((".json", ".jsonl", *CONTAINER_SUFFIXES))


__all__ = ["BATCH_ROWS", "CONTAINER_SUFFIXES", "dataset_dict_splits", "first_character", "folder_sources",
           "head_records", "is_dataset_folder", "is_source_name", "iter_items", "iter_json_array", "probe_container",
           "probe_json_array", "source_stem"]
