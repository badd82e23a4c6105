"""A scripted stand-in for a judge model, for tests and benchmarks — NOT a model, never a judgement.

:class:`ScriptedJudge` is a script for :class:`toolqual_utils.testing.OpenAIDouble`: it reads a judge
request (which criteria its JSON schema asks, the fenced DATA blocks of its prompt) and returns a
well-formed answer in which each criterion holds or fails according to a ``policy`` callable. Its
answers are whatever the test scripted; they must never be shown as a model's verdicts.

Example:
    >>> from toolqual_utils.testing import OpenAIDouble
    >>> judge_script = ScriptedJudge(policy=lambda instruction, criterion: "bad" not in instruction)
    >>> # with OpenAIDouble() as double: double.script = judge_script
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from ..criteria import CRITERIA

Policy = Callable[[str, str], bool]
_BLOCK = re.compile(r"<<<DATA (?P<label>[a-z0-9_]+)\n(?P<body>.*?)\nDATA>>>", re.DOTALL)


def data_blocks(body: dict[str, Any]) -> dict[str, str]:
    """The fenced DATA blocks of a chat request body, by label (last message wins on repeats)."""
    blocks: dict[str, str] = {}
    for message in body.get("messages", []):
        for match in _BLOCK.finditer(str(message.get("content") or "")):
            blocks[match.group("label")] = match.group("body")
    return blocks


def prompt_version_of(body: dict[str, Any]) -> int:
    """The judge prompt version of a request (from its response schema name, else its prompt text)."""
    json_schema = ((body.get("response_format") or {}).get("json_schema")) or {}
    match = re.search(r"_v(\d+)$", str(json_schema.get("name", "")))
    if match:
        return int(match.group(1))
    text = " ".join(str(m.get("content") or "") for m in body.get("messages", []))
    return 2 if '"source": "stated"' in text or "Earlier turns of the conversation" in text else 1


def asked_criteria(body: dict[str, Any]) -> tuple[bool, list[str]]:
    """(combined?, criteria asked) from the request's response_format schema, else from its task headings
    (requests sent with ``--response-format json_object`` or ``none`` carry no schema)."""
    json_schema = ((body.get("response_format") or {}).get("json_schema")) or {}
    if not json_schema:
        text = " ".join(str(m.get("content") or "") for m in body.get("messages", []))
        found = [c for c in CRITERIA if f'Task "{c}"' in text]
        return bool(found), found
    name = str(json_schema.get("name", ""))
    properties = (json_schema.get("schema") or {}).get("properties", {})
    if name.startswith("judge_combined"):
        return True, [c for c in properties if c in CRITERIA]
    for criterion in CRITERIA:
        if name.startswith(criterion + "_v"):
            return False, [criterion]
    return False, []


def _load_list(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


_CALL_INDEX = re.compile(r'^\{"index": (\d+), "name"', re.MULTILINE)


def _call_indices(blocks: dict[str, str]) -> list[int]:
    return [int(m) for m in _CALL_INDEX.findall(blocks.get("calls", ""))]


def scripted_answer_v2(criterion: str, holds: bool, blocks: dict[str, str]) -> dict[str, Any]:
    """A schema-valid ``judge_combined.v2`` answer object for ``criterion`` that makes it hold (or fail)."""
    rationale = f"scripted test answer: {criterion} {'holds' if holds else 'fails'}"
    calls = _call_indices(blocks)
    if criterion == "specificity":
        params = _load_list(blocks.get("required_parameters"))
        return {"rationale": rationale, "extractions": [
            {"tool": p.get("tool"), "parameter": p.get("parameter"), "values": ["value" if holds or i else "#missing"]}
            for i, p in enumerate(params)]}
    if criterion == "coherence":
        return {"rationale": rationale, "requests": ["first request", "second request"],
                "pairs": [{"index": 0, "common_goal": holds}]}
    if criterion == "solvability":
        return {"rationale": rationale, "requests": [{"request": "the request", "tool": "a tool" if holds else "none"}]}
    if criterion == "parameter_alignment":
        args = _load_list(blocks.get("arguments"))
        return {"rationale": rationale, "dropped": [], "arguments": [
            {"call_index": a.get("call_index"), "argument": a.get("argument"),
             "source": "unsupported" if not holds and i == 0 else "stated", "user_value": "stated value"}
            for i, a in enumerate(args)]}
    if criterion == "sufficiency":
        served = calls[:1] if holds else []
        return {"rationale": rationale, "requests": [{"request": "the request", "solvable": True, "served_by": served}]}
    if criterion == "minimality":
        return {"rationale": rationale, "calls": [
            {"index": index, "serves": "none" if not holds and i == 0 else "the request", "needless_repeat": False}
            for i, index in enumerate(calls)]}
    raise ValueError(f"unknown criterion {criterion!r}")


def scripted_answer(criterion: str, holds: bool, blocks: dict[str, str], version: int = 1) -> dict[str, Any]:
    """A schema-valid answer object for ``criterion`` that makes it hold (or fail)."""
    if version >= 2:
        return scripted_answer_v2(criterion, holds, blocks)
    rationale = f"scripted test answer: {criterion} {'holds' if holds else 'fails'}"
    if criterion == "specificity":
        params = _load_list(blocks.get("required_parameters"))
        extractions = [
            {"tool": p.get("tool"), "parameter": p.get("parameter"), "value": "value" if holds or i else "#missing"}
            for i, p in enumerate(params)
        ]
        return {"rationale": rationale, "extractions": extractions}
    if criterion == "coherence":
        pairs = _load_list(blocks.get("sentence_pairs"))
        return {
            "rationale": rationale,
            "pairs": [{"index": p.get("index"), "follows": holds or i > 0} for i, p in enumerate(pairs)],
        }
    if criterion == "parameter_alignment":
        args = _load_list(blocks.get("arguments"))
        return {
            "rationale": rationale,
            "arguments": [
                {
                    "call_index": a.get("call_index"), "argument": a.get("argument"),
                    "instruction_value": "#missing" if not holds and i == 0 else "stated value",
                    "equivalent": holds or i > 0, "from_earlier_call": False,
                }
                for i, a in enumerate(args)
            ],
        }
    return {"rationale": rationale, "answer": "yes" if holds else "no"}


class ScriptedJudge:
    """Callable script for the test double: ``(request body) -> Reply``. Thread-safe counters.

    Args:
        policy: ``(instruction text, criterion) -> holds``; default: everything holds.
        override: optional ``(body) -> Reply | None``; a non-None reply is sent instead (to script
            refusals, invalid JSON, errors for particular requests).

    Attributes:
        asked: list of ``(instruction, tuple of criteria)`` per request received.
    """

    def __init__(self, policy: Policy | None = None, override: Callable[[dict], Any] | None = None) -> None:
        self.policy = policy or (lambda instruction, criterion: True)
        self.override = override
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]):
        from ..testing import Reply

        blocks = data_blocks(body)
        instruction = blocks.get("instruction", "")
        combined, criteria = asked_criteria(body)
        with self._lock:
            self.asked.append((instruction, tuple(criteria)))
        if self.override is not None:
            reply = self.override(body)
            if reply is not None:
                return reply
        version = prompt_version_of(body)
        answers = {c: scripted_answer(c, bool(self.policy(instruction, c)), blocks, version) for c in criteria}
        content = answers if combined else (answers[criteria[0]] if criteria else {})
        return Reply(content=json.dumps(content), prompt_tokens=100, completion_tokens=20)
