"""Reading the JSON-ish and Python-ish text that training sets embed in their strings. Never ``eval``.

- :func:`parse_value`: JSON first, then a Python literal (``True``, ``None``, single quotes,
  tuples), read from the syntax tree by :func:`literal` (which also accepts JSON's ``true``/``false``/
  ``null`` inside Python-style text, a mix that Hermes and ToolLLaMA files contain).
- :func:`parse_python_calls`: ``[get_weather(city="Paris"), Search Hotels(n=2)]`` -> calls, the syntax
  ToolACE and BFCL-style data use for assistant turns. Function names may contain spaces, dots or
  hyphens (ToolACE API names do); each argument list is parsed with :mod:`ast` and every value must be
  a literal.
- :func:`find_embedded` / :func:`embedded_objects`: a JSON (or Python) list or the successive objects
  embedded in free text (tool lists inside system prompts).
"""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_NAMED_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


class NotALiteral(ValueError):
    """The text is neither JSON nor a Python literal."""


def literal(node: ast.AST) -> Any:
    """The value of a literal syntax-tree node (constants, lists, tuples, sets, dicts, signed numbers,
    ``true``/``false``/``null``); raises :class:`NotALiteral` for anything else (names, calls...)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [literal(element) for element in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise NotALiteral("dict unpacking is not a literal")
        return {_key(literal(key)): literal(value) for key, value in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name) and node.id in _NAMED_CONSTANTS:
        return _NAMED_CONSTANTS[node.id]
    raise NotALiteral(f"{type(node).__name__} is not a literal value")


def _key(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)


def parse_value(text: str) -> tuple[Any, str]:
    """``(value, "json" | "python")`` of a JSON text or a Python literal.

    Raises:
        NotALiteral: neither.
    """
    try:
        return json.loads(text, strict=False), "json"
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return literal(tree.body), "python"
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise NotALiteral(str(exc)) from None


def find_embedded(text: str, *, want: type = list, accept: Callable[[Any], bool] | None = None) -> Any | None:
    """The first JSON (or Python-literal) value of type ``want`` embedded in free text (and accepted by
    ``accept``, when given), or None.

    Tries every ``[`` (or ``{``) in order and decodes from there; a Python literal is tried when no JSON
    value decodes (ToolLLaMA's system prompt holds ``str(list_of_dicts)``)."""
    def ok(value: Any) -> bool:
        return isinstance(value, want) and (accept is None or accept(value))

    opener = "[" if want is list else "{"
    decoder = json.JSONDecoder(strict=False)
    start = text.find(opener)
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if ok(value):
            return value
        start = text.find(opener, start + 1)
    start = text.find(opener)
    while start != -1:
        end = _matching_bracket(text, start)
        if end is not None:
            try:
                value, _how = parse_value(text[start:end + 1])
            except NotALiteral:
                value = None
            if ok(value):
                return value
        start = text.find(opener, start + 1)
    return None


def is_tool_list(value: Any) -> bool:
    """A non-empty list of objects that each have a string ``name`` (a list of function definitions)."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and isinstance(item.get("name") or (item.get("function") or {}).get("name"), str)
        for item in value)


def embedded_objects(text: str) -> list[dict[str, Any]]:
    """The successive JSON objects written one after another in free text (Glaive's function list)."""
    decoder = json.JSONDecoder(strict=False)
    objects: list[dict[str, Any]] = []
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            end = _matching_bracket(text, position)
            value = None
            if end is not None:
                try:
                    value, _how = parse_value(text[position:end + 1])
                except NotALiteral:
                    value = None
                end += 1
            else:
                break
        if isinstance(value, dict):
            objects.append(value)
        position = text.find("{", end if end is not None else position + 1)
    return objects


def _matching_bracket(text: str, start: int) -> int | None:
    """Index of the bracket closing the one at ``start`` (quotes respected), or None."""
    pairs = {"[": "]", "{": "}", "(": ")"}
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in ("'", '"'):
            quote = char
        elif char in pairs:
            stack.append(pairs[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return index
        elif char in ")]}":
            return None
    return None


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on ``separator`` outside brackets and quotes."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    escaped = False
    current: list[str] = []
    for char in text:
        if quote is not None:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in ("'", '"'):
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


@dataclass
class PythonCall:
    """One call read from Python-call syntax; ``arguments`` None (with ``raw`` kept) when it failed."""

    name: str
    arguments: dict[str, Any] | None
    raw: str
    problem: str = ""


_CALL_HEAD = re.compile(r"^\s*([A-Za-z_][\w .\-]*?)\s*\((.*)\)\s*$", re.S)
_LOOKS_LIKE_CALLS = re.compile(r"^\s*\[?\s*[A-Za-z_][\w .\-]*?\s*\(.*\)\s*\]?\s*$", re.S)


def looks_like_python_calls(text: str) -> bool:
    """``[f(...), g(...)]`` or ``f(...)`` (a whole message that is calls, not prose)."""
    stripped = text.strip()
    if not stripped or "\n\n" in stripped:
        return False
    return bool(_LOOKS_LIKE_CALLS.match(stripped)) and not stripped.endswith(".")


def parse_python_calls(text: str, parameter_order: dict[str, list[str]] | None = None) -> list[PythonCall]:
    """The calls of ``[f(a=1), g(b="x")]`` (brackets optional), each argument list parsed with ``ast``.

    Positional arguments are named from ``parameter_order`` (tool name -> parameter names) when the tool
    is known, else the call is a parse failure. A call whose arguments are not literals is kept with
    ``arguments`` None and its raw text. Text that does not split into calls gives one failed call
    whose name is the first identifier found (or ``""``).
    """
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        stripped = stripped[1:-1]
    calls: list[PythonCall] = []
    for piece in split_top_level(stripped):
        if not piece.strip():
            continue
        match = _CALL_HEAD.match(piece)
        if match is None:
            head = re.match(r"\s*([A-Za-z_][\w.\-]*)", piece)
            calls.append(PythonCall(head.group(1) if head else "", None, piece.strip(), "not a call"))
            continue
        name, inside = match.group(1).strip(), match.group(2)
        try:
            tree = ast.parse(f"f({inside})", mode="eval")
            node = tree.body
            assert isinstance(node, ast.Call)
            arguments: dict[str, Any] = {}
            order = (parameter_order or {}).get(name)
            if node.args:
                if order is None or len(node.args) > len(order):
                    raise NotALiteral("positional arguments whose parameter names are unknown")
                for position, value in enumerate(node.args):
                    arguments[order[position]] = literal(value)
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise NotALiteral("**kwargs is not a literal")
                arguments[keyword.arg] = literal(keyword.value)
            calls.append(PythonCall(name, arguments, piece.strip()))
        except (SyntaxError, NotALiteral, ValueError, RecursionError, MemoryError) as exc:
            calls.append(PythonCall(name, None, piece.strip(), str(exc)))
    if not calls:
        calls.append(PythonCall("", None, text.strip(), "no call found"))
    return calls


__all__ = ["NotALiteral", "PythonCall", "embedded_objects", "find_embedded", "is_tool_list", "literal", "looks_like_python_calls",
           "parse_python_calls", "parse_value", "split_top_level"]
