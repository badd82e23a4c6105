"""Load and validate an ICE test bed: the fixed ruler every instance is measured with.

A test bed is a directory (``data/ice_testbed/v1`` is bundled) holding::

    manifest.json   {"version": "v1", "reference_date": "YYYY-MM-DD", "files": {name: sha256}, ...}
    tools.json      [ToolSpec, ...]   canonical tool schemas (see ``toolqual_utils.schema.ToolSpec``)
    queries.jsonl   one test query per line:
                    {"id", "query", "calls": [{"name", "arguments"}], "possible_answer":
                     [{name: {arg: [acceptable values...]}}], "order_free": bool, "tags": [...], "note": str}

``possible_answer`` has BFCL's shape: one entry per gold call, each argument with a list of acceptable
values, ``""`` meaning "may be omitted". Loading validates every record and raises
:class:`~toolqual_utils.errors.InputError` naming the file, the record and the field.

Pure module (standard library and pydantic only).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ..io import Reject, iter_jsonl_objects
from ..schema import ToolSpec, describe_validation_error

#: The bundled test bed (relative to the project root).
DEFAULT_TESTBED = Path(__file__).resolve().parents[2] / "data" / "ice_testbed" / "v1"

_QUERY_FIELDS = {"id", "query", "calls", "possible_answer", "order_free", "tags", "note"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class TestQuery:
    """One test query with its gold call sequence and acceptable values."""

    __test__ = False  # not a pytest class

    id: str
    query: str
    calls: tuple[dict[str, Any], ...]            # gold calls: {"name": str, "arguments": dict}
    possible_answer: tuple[dict[str, Any], ...]  # [{name: {arg: [acceptable...]}}], BFCL shape
    order_free: bool = False
    tags: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class TestBed:
    """A loaded, validated test bed."""

    __test__ = False

    version: str
    reference_date: str
    tools: tuple[ToolSpec, ...]
    queries: tuple[TestQuery, ...]
    path: Path
    manifest: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def query(self, query_id: str) -> TestQuery:
        for query in self.queries:
            if query.id == query_id:
                return query
        raise KeyError(query_id)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_testbed(directory: str | Path | None = None, *, check_hashes: bool = True) -> TestBed:
    """Load and validate the test bed in ``directory`` (default: the bundled v1).

    Args:
        directory: a folder with ``manifest.json``, ``tools.json`` and ``queries.jsonl``.
        check_hashes: compare file checksums with ``manifest.json["files"]`` when it lists them, so an
            edited test bed cannot pass for the version it claims to be.

    Raises:
        InputError: naming the file, the record (tool or query id / line) and the field at fault.
    """
    root = Path(directory) if directory is not None else DEFAULT_TESTBED
    if not root.is_dir():
        raise InputError("is not a test-bed directory (expected manifest.json, tools.json, queries.jsonl)", file=str(root))
    manifest = _load_manifest(root)
    if check_hashes:
        for name, digest in (manifest.get("files") or {}).items():
            path = root / name
            if path.exists() and sha256_file(path) != digest:
                raise InputError(
                    f"checksum differs from manifest.json ({digest[:12]}…): a released test bed is never "
                    "edited in place; copy it to a new version folder, edit there and update its manifest",
                    file=str(path),
                )
    tools = _load_tools(root / "tools.json")
    queries = _load_queries(root / "queries.jsonl", {tool.name: tool for tool in tools})
    return TestBed(
        version=str(manifest["version"]),
        reference_date=str(manifest["reference_date"]),
        tools=tuple(tools),
        queries=tuple(queries),
        path=root,
        manifest=manifest,
    )


def _load_manifest(root: Path) -> dict[str, Any]:
    path = root / "manifest.json"
    if not path.exists():
        raise InputError("missing; a test bed needs manifest.json with 'version' and 'reference_date'", file=str(path))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno})", file=str(path)) from None
    if not isinstance(manifest, dict):
        raise InputError("expected a JSON object", file=str(path))
    for key in ("version", "reference_date"):
        if not isinstance(manifest.get(key), str) or not manifest[key].strip():
            raise InputError("expected a non-empty string", file=str(path), field=key)
    if not _DATE.match(manifest["reference_date"]):
        raise InputError("expected a date YYYY-MM-DD (the 'today' of the test queries)", file=str(path), field="reference_date")
    return manifest


def _load_tools(path: Path) -> list[ToolSpec]:
    if not path.exists():
        raise InputError("missing; expected a JSON list of tool schemas", file=str(path))
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno})", file=str(path)) from None
    if not isinstance(records, list) or not records:
        raise InputError("expected a non-empty JSON list of tool schemas", file=str(path))
    tools: list[ToolSpec] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        where = f"tools[{index}]" + (f" ({record.get('name')})" if isinstance(record, dict) and record.get("name") else "")
        try:
            tool = ToolSpec.model_validate(record)
        except ValidationError as exc:
            field_path, reason = describe_validation_error(exc)
            raise InputError(reason, file=str(path), record=where, field=field_path) from None
        if tool.name in seen:
            raise InputError("tool name appears twice", file=str(path), record=where, field="name")
        for required in tool.required:
            if required not in tool.properties:
                raise InputError(f"required parameter {required!r} is not in 'properties'", file=str(path),
                                 record=where, field="parameters.required")
        seen.add(tool.name)
        tools.append(tool)
    return tools


def _load_queries(path: Path, tools: Mapping[str, ToolSpec]) -> list[TestQuery]:
    if not path.exists():
        raise InputError("missing; expected one JSON object per line", file=str(path))
    queries: list[TestQuery] = []
    seen: set[str] = set()
    for line_no, record in iter_jsonl_objects(path, not_utf8_hint="test-bed files must be UTF-8"):
        where = f"line {line_no}"
        if isinstance(record, Reject):
            raise InputError(record.reason, file=str(path), record=where)
        if isinstance(record.get("id"), str):
            where = f"{where} ({record['id']})"
        queries.append(_validate_query(record, tools, str(path), where))
        if queries[-1].id in seen:
            raise InputError("query id appears twice", file=str(path), record=where, field="id")
        seen.add(queries[-1].id)
    if not queries:
        raise InputError("holds no queries", file=str(path))
    return queries


def _validate_query(record: dict[str, Any], tools: Mapping[str, ToolSpec], file: str, where: str) -> TestQuery:
    def fail(message: str, field_name: str) -> InputError:
        return InputError(message, file=file, record=where, field=field_name)

    unknown = set(record) - _QUERY_FIELDS
    if unknown:
        raise fail(f"unknown field; a query has {sorted(_QUERY_FIELDS)}", sorted(unknown)[0])
    for key in ("id", "query"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise fail("expected a non-empty string", key)
    calls = record.get("calls")
    if not isinstance(calls, list):
        raise fail("expected a list of gold calls ([] = the query needs no call)", "calls")
    possible = record.get("possible_answer")
    if not isinstance(possible, list) or len(possible) != len(calls):
        raise fail(f"expected a list with one entry per gold call ({len(calls)})", "possible_answer")
    for index, (call, answer) in enumerate(zip(calls, possible)):
        at = f"calls[{index}]"
        if not isinstance(call, dict) or set(call) - {"name", "arguments"}:
            raise fail("expected {'name': str, 'arguments': object}", at)
        name, arguments = call.get("name"), call.get("arguments")
        if name not in tools:
            raise fail(f"calls {name!r}, which is not in tools.json", f"{at}.name")
        if not isinstance(arguments, dict):
            raise fail("expected an object of argument values", f"{at}.arguments")
        tool = tools[name]
        for argument, value in arguments.items():
            if argument not in tool.properties:
                raise fail(f"{name} has no parameter {argument!r}", f"{at}.arguments.{argument}")
            problem = _schema_mismatch(value, tool.properties[argument])
            if problem:
                raise fail(problem, f"{at}.arguments.{argument}")
        for required in tool.required:
            if required not in arguments:
                raise fail(f"required parameter of {name} is missing", f"{at}.arguments.{required}")
        pat = f"possible_answer[{index}]"
        if not isinstance(answer, dict) or list(answer) != [name]:
            raise fail(f"expected {{{name!r}: {{argument: [acceptable values]}}}} (same tool as {at})", pat)
        acceptable = answer[name]
        if not isinstance(acceptable, dict):
            raise fail("expected an object mapping arguments to lists of acceptable values", pat)
        for argument, values in acceptable.items():
            if argument not in tool.properties:
                raise fail(f"{name} has no parameter {argument!r}", f"{pat}.{name}.{argument}")
            if not isinstance(values, list) or not values:
                raise fail("expected a non-empty list of acceptable values ('' = may be omitted)", f"{pat}.{name}.{argument}")
            if argument in arguments and arguments[argument] not in values:
                raise fail(f"gold value {arguments[argument]!r} is not among the acceptable values {values!r}",
                           f"{pat}.{name}.{argument}")
            if argument not in arguments and "" not in values:
                raise fail("the gold call omits this argument, so its acceptable values must include ''",
                           f"{pat}.{name}.{argument}")
        for argument in arguments:
            if argument not in acceptable:
                raise fail("gold argument has no acceptable-values list", f"{pat}.{name}.{argument}")
    order_free = record.get("order_free", False)
    if not isinstance(order_free, bool):
        raise fail("expected true or false", "order_free")
    tags = record.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise fail("expected a list of strings", "tags")
    return TestQuery(
        id=record["id"],
        query=record["query"],
        calls=tuple({"name": c["name"], "arguments": c["arguments"]} for c in calls),
        possible_answer=tuple(possible),
        order_free=order_free,
        tags=tuple(tags),
        note=str(record.get("note", "")),
    )


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,),
}


def _schema_mismatch(value: Any, schema: Any) -> str | None:
    """Why a gold value does not fit its parameter schema (type, enum), or None when it fits."""
    if not isinstance(schema, Mapping):
        return None
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _JSON_TYPES:
        if isinstance(value, bool) and kind in ("integer", "number"):
            return f"expected a {kind}, got a boolean"
        if not isinstance(value, _JSON_TYPES[kind]):
            return f"expected a {kind} (parameter schema), got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} is not one of the parameter's enum values {schema['enum']!r}"
    return None
