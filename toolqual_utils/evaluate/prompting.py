"""Prompt files of ``toolqual evaluate`` and the pieces they are filled with.

Every prompt is a versioned file in ``toolqual_utils/evaluate/prompts/`` (``<name>.v1.txt``,
``string.Template`` slots); its id (``<name>.v1``) travels into the cache key and the outcome rows.
Two layouts have no file because they send no instructions of their own: ``evaluate_tools.v1`` (static
tool calling: the instruction as the one user turn, the tools in the request's ``tools``, as a model
fine-tuned on toolqual's ``openai`` export saw its training data) and ``agent_tools.v1`` (the same, over
several turns with ``tool`` results).

Tool names: OpenAI's API accepts function names made of letters, digits, ``_`` and ``-`` only, so in
the ``tools`` layouts other characters (BFCL's ``math.sum``) are sent as ``_`` and mapped back when the
answer is read (:class:`ToolNames`).

Pure module.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from string import Template
from typing import Any, Final

from ..schema import ToolSpec

PROMPT_DIR: Final = Path(__file__).resolve().parent / "prompts"
VERSION: Final = "v1"
#: Stop sequences of text-completion prompts: the next ``###`` heading a base model starts on its own.
COMPLETION_STOP: Final = ("\n###",)
#: ... and, for the multi-step ReAct agent, also where it starts to invent a call's result.
AGENT_COMPLETION_STOP: Final = ("\nObservation:", "\n###")
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def prompt_id(name: str) -> str:
    return f"{name}.{VERSION}"


def load(name: str) -> Template:
    """The template of ``<name>.v1.txt``."""
    return Template((PROMPT_DIR / f"{prompt_id(name)}.txt").read_text(encoding="utf-8"))


def render(name: str, **slots: str) -> str:
    """``<name>.v1.txt`` with its slots filled (every slot must be given)."""
    return load(name).substitute(**slots)


def render_apis(tools: Iterable[ToolSpec]) -> str:
    """One compact JSON schema per line: ``{"name", "description", "parameters"}``."""
    return "\n".join(json.dumps(tool.model_dump(mode="json"), ensure_ascii=False) for tool in tools)


class ToolNames:
    """Function names as sent in ``tools`` (``[A-Za-z0-9_-]`` only) and back to the instance's names."""

    def __init__(self, tools: Iterable[ToolSpec]) -> None:
        self.sent: dict[str, str] = {}
        self.original: dict[str, str] = {}
        for tool in tools:
            name = _INVALID_NAME_CHARS.sub("_", tool.name)[:64] or "tool"
            base, n = name, 1
            while name in self.original and self.original[name] != tool.name:
                n += 1
                name = f"{base[:60]}_{n}"
            self.sent[tool.name] = name
            self.original[name] = tool.name

    def openai_tools(self, tools: Iterable[ToolSpec]) -> tuple[dict[str, Any], ...]:
        return tuple(
            {"type": "function", "function": {"name": self.sent[t.name], "description": t.description,
                                              "parameters": t.parameters}}
            for t in tools
        )

    def restore(self, calls: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Calls with the instance's own function names (unknown names are kept as they are)."""
        return [{**dict(call), "name": self.original.get(str(call.get("name")), call.get("name"))} for call in calls]
