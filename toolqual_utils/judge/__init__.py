"""The model judge of the intrinsic criteria (rules first, then an LLM through ``toolqual_utils.llm``).

Public names are re-exported lazily, so importing a pure submodule (``toolqual_utils.judge.summary``,
``.parse``, ``.context``, ``.prompts``) does not import the model client.

- :func:`judge`, :func:`judge_from_batch`, :func:`build_requests`, :func:`plan_judging`, :class:`JudgeRun`
  (``engine``);
- :func:`load_prompt`, :func:`available_prompts` (``prompts``);
- :func:`parse_answer`, :func:`parse_combined`, :class:`ParseFailure` (``parse``).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "judge": "engine",
    "judge_from_batch": "engine",
    "build_requests": "engine",
    "plan_judging": "engine",
    "collect_verdicts": "engine",
    "JudgeRun": "engine",
    "JudgePlan": "engine",
    "ENGINE_PROMPT_ID": "engine",
    "COMBINED_PROMPT_ID": "engine",
    "load_prompt": "prompts",
    "available_prompts": "prompts",
    "PromptError": "prompts",
    "parse_answer": "parse",
    "parse_combined": "parse",
    "ParseFailure": "parse",
    "build_context": "context",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
