"""The earlier turns of a multi-turn instance (``Instance.context``), as the checks and the judge use them.

An instance of a dialogue is judged with its context: a value the user gave in an earlier turn, or one
an earlier turn's tool returned, supports an argument of this turn's calls just as the instruction or an
earlier call's output of the same turn does; specificity reads the whole dialogue. For single-turn
instances (empty context) every function here returns the instruction alone or nothing, so single-turn
results are unchanged.

Pure module: standard library and the canonical schema.
"""
from __future__ import annotations

import json
from typing import Any, Final

from .schema import Instance, Turn

#: characters kept of each earlier tool result / text in :func:`dialogue_text`
TURN_TEXT_LIMIT: Final = 400


def earlier_user_texts(instance: Instance) -> list[str]:
    """What the user said before this turn, in order."""
    return [turn.content or "" for turn in instance.context if turn.role == "user" and turn.content]


def user_text(instance: Instance) -> str:
    """Everything the user said up to and including this turn: earlier user turns, then the
    instruction, one per paragraph. Equals ``instance.instruction`` for single-turn instances."""
    earlier = earlier_user_texts(instance)
    return "\n\n".join([*earlier, instance.instruction]) if earlier else instance.instruction


def earlier_outputs(instance: Instance) -> list[str]:
    """Texts of earlier turns that later values may be taken from: tool results (of the calls of
    earlier assistant turns, and unpaired ``tool`` turns), the arguments those calls passed, and the
    assistant's earlier texts (an id it read out to the user)."""
    texts: list[str] = []
    for turn in instance.context:
        if turn.role == "tool" and turn.content:
            texts.append(turn.content)
        elif turn.role == "assistant":
            if turn.content:
                texts.append(turn.content)
            for call in turn.calls:
                if call.observation:
                    texts.append(call.observation)
                if call.arguments:
                    texts.append(json.dumps(call.arguments, ensure_ascii=False))
                elif call.raw_arguments:
                    texts.append(call.raw_arguments)
    return texts


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def _call_text(call: Any) -> str:
    if call.arguments is not None:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
    else:
        arguments = call.raw_arguments or ""
    return f"{call.name}({arguments})"


def render_turn(turn: Turn, limit: int = TURN_TEXT_LIMIT) -> list[str]:
    """Plain-text lines of one earlier turn."""
    if turn.role == "user":
        return [f"User: {turn.content or ''}"]
    if turn.role == "tool":
        name = f" ({turn.name})" if turn.name else ""
        return [f"Tool result{name}: {_clip(turn.content or '', limit)}"]
    lines = []
    for call in turn.calls:
        lines.append(f"Assistant calls {_call_text(call)}")
        if call.observation is not None:
            lines.append(f"Tool result ({call.name}): {_clip(call.observation, limit)}")
    if turn.content:
        lines.append(f"Assistant: {_clip(turn.content, limit)}")
    return lines


def dialogue_text(instance: Instance, limit: int = TURN_TEXT_LIMIT) -> str:
    """The earlier turns as plain text, one line per message or call ("" for single-turn instances)."""
    return "\n".join(line for turn in instance.context for line in render_turn(turn, limit))


__all__ = ["TURN_TEXT_LIMIT", "dialogue_text", "earlier_outputs", "earlier_user_texts", "render_turn", "user_text"]
