"""Function definitions as training sets write them -> canonical tools.

Accepted shapes: ``{"name", "description", "parameters"}`` (Glaive, ToolACE, ToolLLaMA, LLaMA-Factory's
``tools`` column) and OpenAI's ``{"type": "function", "function": {...}}`` (Hermes, TRL, axolotl).
Parameter schemas are JSON Schema, sometimes with Python type names (ToolACE writes ``"type": "dict"``
and ``"float"``): they go through :func:`toolqual_utils.loaders.bfcl.convert_schema`, which maps those
names recursively and leaves JSON-Schema names as they are. ToolBench's non-standard ``optional`` list
is dropped (its names stay in ``properties``).
"""
from __future__ import annotations

from typing import Any

from ._common import dedupe_tools, tool_record
from .bfcl import convert_schema


def unwrap(definition: Any) -> dict[str, Any] | None:
    """The bare definition of ``{"type": "function", "function": {...}}`` or of a bare definition."""
    if not isinstance(definition, dict):
        return None
    inner = definition.get("function")
    if isinstance(inner, dict) and isinstance(inner.get("name"), str):
        return inner
    return definition if isinstance(definition.get("name"), str) else None


def canonical_tool(definition: Any) -> dict[str, Any] | None:
    """One definition -> a canonical tool dict, or None when it has no name."""
    bare = unwrap(definition)
    if bare is None or not bare["name"]:
        return None
    parameters = bare.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    schema = convert_schema(parameters)
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    return tool_record(bare["name"], str(bare.get("description") or ""), dict(properties), required)


def canonical_tools(definitions: Any, *, exclude: frozenset[str] = frozenset()) -> tuple[list[dict[str, Any]], list[str]]:
    """(tools, dropped duplicate names) of a list of definitions; entries without a name are skipped."""
    tools = []
    for definition in definitions if isinstance(definitions, list) else []:
        tool = canonical_tool(definition)
        if tool is not None and tool["name"] not in exclude:
            tools.append(tool)
    return dedupe_tools(tools)


__all__ = ["canonical_tool", "canonical_tools", "unwrap"]
