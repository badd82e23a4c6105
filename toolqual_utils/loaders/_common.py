"""Helpers shared by the source loaders: file reading, argument parsing, record building.

Every loader module exposes the same small interface (see :mod:`toolqual_utils.loaders.detect`):

- ``FORMAT``: the format name used by ``--format``;
- ``sniff(probe) -> bool``: does a probed file look like this format (content, not file name);
- ``iter_records(path, probe) -> Iterator[Instance | Reject]``: convert one file, one record at a time.

A record that cannot be converted becomes a :class:`~toolqual_utils.io.Reject` (file, location, field,
reason); a file that cannot be read at all raises :class:`~toolqual_utils.errors.InputError`.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import InputError
from ..io import MAX_DEPTH, Reject, StrictJSONError, check_readable_file, iter_lines, loads_strict, record_problem
from ..io import iter_jsonl_objects as io_iter_jsonl_objects
from ..schema import PSEUDO_CALLS, Instance, describe_validation_error

#: Formats ``load`` understands, with the one-line description used in error messages.
SUPPORTED_FORMATS: dict[str, str] = {
    "toolalpaca": "ToolAlpaca JSON (a list of tool records with Instructions + Golden_Answers or Instances)",
    "toolbench": "ToolBench / StableToolBench answer files (answer_generation.train_messages), "
    "JSON Lines of such answer records, or query files (a list of {query, query_id, api_list})",
    "bfcl": "BFCL question files (JSON Lines of {id, question, function}) with possible_answer/<same name>",
    "seal_tools": "Seal-Tools dev/test JSON Lines ({id, query, calling}) with tool.jsonl beside them, "
    "or the dataset_for_finetune JSON (conversations with Python literals)",
    "xlam": "xLAM / APIGen function calling ({id, query, tools, answers}, tools and answers as JSON strings)",
    "toolace": "ToolACE ({system with a JSON tool list, conversations: [{from, value}]}, Python-call syntax)",
    "toolllama": "ToolLLaMA training conversations (system/user/assistant/function turns, Thought/Action/Action Input)",
    "glaive": "Glaive function calling v2 ({system, chat} with USER:/ASSISTANT: <functioncall>/FUNCTION RESPONSE:)",
    "sharegpt": "ShareGPT function calling ({conversations: [{from, value}]}: Hermes <tools>/<tool_call>/<tool_response> "
    "tags, or LLaMA-Factory function_call/observation turns with a tools column)",
    "jsonl": "canonical toolqual JSON Lines ({id, source, instruction, tools, calls, final_answer, meta})",
    "openai": "OpenAI chat fine-tuning data ({messages: [...], tools: [...]}, also TRL/axolotl messages+tools)",
}
#: containers the record formats (xlam ... openai) are also read from
CONTAINERS_SENTENCE = ("Besides .json and .jsonl: .jsonl.gz/.json.gz, .parquet, .arrow and Hugging Face "
                       "datasets folders (save_to_disk)")

#: How many bytes of a file the sniffer looks at for JSON Lines (whole-document JSON is parsed fully).
PROBE_LINES = 5


def supported_formats_sentence() -> str:
    """The supported formats as one sentence, for error messages."""
    return ("Supported formats: " + "; ".join(f"{name} = {text}" for name, text in SUPPORTED_FORMATS.items()) + ". "
            + CONTAINERS_SENTENCE + ".")


@dataclass
class Probe:
    """What the sniffer learned about a file.

    Attributes:
        path: the file (or a Hugging Face ``save_to_disk`` folder).
        kind: ``"jsonl"`` when the first non-blank lines are JSON objects one per line, ``"json"`` when
            the whole file is one JSON document, ``"records"`` for a container of records read one at a
            time (Parquet, Arrow, a ``datasets`` folder, gzipped JSON Lines or arrays; see
            :mod:`toolqual_utils.loaders.containers`), ``"unknown"`` otherwise.
        first_records: the JSON objects parsed from the first non-blank lines (JSON Lines), the first
            object items of a JSON array, or the first rows of a container.
        document: the parsed document (whole-document JSON only). A JSON array is parsed only when a
            loader asks for it: sniffers look at :meth:`first_item`, and record-oriented loaders
            stream the array (:func:`toolqual_utils.loaders.containers.iter_items`), so a large array
            never has to fit in memory.
        records: for ``"records"``: a function returning a fresh stream of ``(location, record)``.
    """

    path: Path
    kind: Literal["jsonl", "json", "records", "unknown"]
    first_records: list[dict[str, Any]] = field(default_factory=list)
    loaded_document: Any = None
    reason: str = ""
    is_array: bool = False
    array_head: list[Any] = field(default_factory=list)
    document_loader: Callable[[], Any] | None = None
    records: Callable[[], Iterator[tuple[str, dict[str, Any] | Reject]]] | None = None
    container: str = ""

    @property
    def document(self) -> Any:
        if self.document_loader is not None:
            self.loaded_document = self.document_loader()
            self.document_loader = None
        return self.loaded_document

    def first_item(self) -> Any:
        """The first element of a whole-document JSON array (None otherwise), without parsing the rest."""
        if self.kind != "json" or not self.is_array or not self.array_head:
            return None
        return self.array_head[0]


#: Largest whole-document JSON file read (it is parsed in memory); JSON Lines files have no total limit.
MAX_DOCUMENT_BYTES = 1024 * 2**20


def _check_source_file(path: Path) -> int:
    """The size of a source file, after refusing what is not one (missing, folder, device, pipe)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError("no such file. " + supported_formats_sentence(), file=str(path)) from None
    check_readable_file(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("is not a regular file (a pipe?): the format is detected from the content before the "
                         "file is read, so save the data to a file first", file=str(path))
    return info.st_size


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text.

    Raises:
        InputError: missing, a folder or device, empty, over ``MAX_DOCUMENT_BYTES``, or not UTF-8.
    """
    size = _check_source_file(path)
    if size > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"is one JSON document of {size:,} bytes, over the limit of {MAX_DOCUMENT_BYTES:,} bytes for a file "
            "that is parsed as a whole; convert it to JSON Lines (one record per line), which is streamed",
            file=str(path),
        )
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", file=str(path)) from None
    if not data.strip():
        raise InputError("the file is empty. " + supported_formats_sentence(), file=str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None


def not_utf8(path: str | os.PathLike[str], exc: UnicodeDecodeError) -> InputError:
    """The one-paragraph error for a source file that is not UTF-8 (byte offset and supported formats)."""
    return InputError(f"is not UTF-8 text (undecodable byte at offset {exc.start}); {_not_utf8_hint()}", file=str(path))


def _not_utf8_hint() -> str:
    return "re-encode it as UTF-8. " + supported_formats_sentence()


def _sniff_object(line: str) -> dict[str, Any] | None:
    """The line as a JSON object for format sniffing (lenient: strictness is the reader's job), else None."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_document(path: Path, text: str) -> Any:
    """A whole-document JSON file, strictly parsed (see :func:`toolqual_utils.io.loads_strict`) and checked
    against the per-record limits (see :func:`toolqual_utils.io.record_problem`).

    Raises:
        InputError: not JSON (truncated or malformed, with line and column), or strict JSON or a limit
            refused (naming the reason and, for limits, where in the document).
    """
    try:
        document = loads_strict(text)
    except json.JSONDecodeError as exc:
        problem = "truncated" if exc.pos >= len(text.rstrip()) - 1 else "not valid JSON"
        raise InputError(
            f"is neither JSON Lines nor a valid JSON document ({problem}: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}). " + supported_formats_sentence(),
            file=str(path),
        ) from None
    except StrictJSONError as exc:
        raise InputError(f"is not accepted: {exc}; fix the file (toolqual reads JSON strictly so that no value "
                         "changes silently)", file=str(path)) from None
    problem = record_problem(document, max_depth=MAX_DEPTH + 3)
    if problem is not None:
        reason, where = problem
        raise InputError(f"is not accepted: {reason}; fix that record or remove it", file=str(path), record=where)
    return document


def probe_file(path: str | os.PathLike[str]) -> Probe:
    """Look at a file's content to tell JSON Lines from one JSON document.

    JSON Lines: one of the first few non-blank lines parses as a JSON object on its own (a bad first line
    among good ones is still JSON Lines; so is a first line over the line limit followed by an object
    line). Otherwise the whole file is parsed as one JSON document (strictly, within the limits).

    Raises:
        InputError: the file is missing, a folder, a device or pipe, empty, not UTF-8, or neither JSON
            Lines nor valid JSON (e.g. truncated), or its document is not accepted.
    """
    path = Path(path)
    from .containers import first_character, probe_container, probe_json_array

    container = probe_container(path)  # Parquet, Arrow, gzip, a datasets folder
    if container is not None:
        return container
    size = _check_source_file(path)
    if size == 0:
        raise InputError("the file is empty. " + supported_formats_sentence(), file=str(path))
    if first_character(path) == "[":  # one JSON array: probe its first items without reading the rest
        array = probe_json_array(path)
        if array is not None:
            return array
        return Probe(path, "json", loaded_document=load_json_document(path))  # names the JSON problem
    records: list[dict[str, Any]] = []
    first_is_object = first_too_long = False
    n_lines = 0
    for _, line in iter_lines(path, not_utf8_hint=_not_utf8_hint()):
        n_lines += 1
        if isinstance(line, Reject):  # over the line limit: its content is not looked at
            first_too_long = first_too_long or n_lines == 1
        else:
            value = _sniff_object(line)
            if value is not None:
                records.append(value)
                first_is_object = first_is_object or n_lines == 1
        if n_lines >= PROBE_LINES:
            break
    if n_lines == 0:
        raise InputError("the file is empty (only blank lines). " + supported_formats_sentence(), file=str(path))
    if first_is_object or len(records) >= 2 or (first_too_long and records):
        # A first line that is a whole object (or two object lines among the first few, when the first
        # line is a bad record) means JSON Lines. A one-line file holding one object is also read this
        # way; the per-format sniffers accept a compact single document either way.
        return Probe(path, "jsonl", first_records=records)
    return Probe(path, "json", loaded_document=load_json_document(path))


def load_json_document(path: Path) -> Any:
    """The whole file as one JSON document, strictly parsed within the limits (:func:`parse_document`).

    Raises:
        InputError: empty, not UTF-8, not valid JSON (e.g. truncated), or not accepted, naming the file.
    """
    return parse_document(path, read_text(path))


#: ``json.loads(text, strict=False)`` builds a decoder per call; one shared decoder saves that at 100K+ calls
_LENIENT_DECODER = json.JSONDecoder(strict=False)


def parse_arguments(raw: Any) -> dict[str, Any] | None:
    """Parse a call's argument text into an object; None when it is not a JSON object.

    An empty or blank string means "no arguments" (``{}``). An already-parsed dict is returned as is.
    ``strict=False`` accepts raw control characters inside strings, as ToolBench's own runner did.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if raw is None:
        return {}
    if not isinstance(raw, str):
        return None
    if not raw.strip():
        return {}
    try:
        value = _LENIENT_DECODER.decode(raw)
    except (ValueError, RecursionError):  # not JSON, an integer too long, nested too deeply
        return None
    return value if isinstance(value, dict) else None


def raw_text(raw: Any) -> str | None:
    """The argument text as the source wrote it (objects are serialised compactly)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, ensure_ascii=False)


def pseudo_call(name: str, raw: Any) -> dict[str, Any]:
    """The ``meta["pseudo_calls"]`` entry for an agent pseudo-tool call."""
    return {"name": name, "raw_arguments": raw_text(raw)}


def is_pseudo(name: str) -> bool:
    return name in PSEUDO_CALLS


def build_instance(record: dict[str, Any], *, file: Path, location: str) -> Instance | Reject:
    """Validate a canonical dict into an :class:`Instance`, or a :class:`Reject` naming the field."""
    try:
        return Instance.model_validate(record)
    except ValidationError as exc:
        field_name, reason = describe_validation_error(exc)
        record_id = record.get("id") if isinstance(record.get("id"), str) else None
        return Reject(str(file), location, reason, field=field_name, record_id=record_id)


def reject(file: Path, location: str, reason: str, *, field: str | None = None, record_id: str | None = None) -> Reject:
    return Reject(str(file), location, reason, field=field, record_id=record_id)


def iter_jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Stream a JSON Lines file (see :func:`toolqual_utils.io.iter_jsonl_objects`); a file that is not
    UTF-8 is reported with the byte offset and the supported formats."""
    return io_iter_jsonl_objects(path, not_utf8_hint=_not_utf8_hint())


def tool_record(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A canonical tool dict (JSON-Schema object parameters; ``required`` restricted to known names)."""
    return {
        "name": name,
        "description": description or "",
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": [r for r in dict.fromkeys(required) if r in properties],
        },
    }


def dedupe_tools(tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Drop repeated tool names (the canonical schema forbids them); returns (tools, dropped names)."""
    seen: set[str] = set()
    kept, dropped = [], []
    for tool in tools:
        if tool["name"] in seen:
            dropped.append(tool["name"])
            continue
        seen.add(tool["name"])
        kept.append(tool)
    return kept, dropped
