"""Multi-step evaluation with simulated tools (the ToolAlpaca / ToolEval setting).

For each test item the model under test (the *agent*) works in steps, up to ``max_steps``:

1. it answers with calls (native ``tool_calls``, or ``Action:`` / ``Action Input:`` text) or with its
   final response to the user;
2. every call gets an observation, never from a real API:

   - the **gold observation** when the call matches a gold call (BFCL rules, :func:`call_matches`)
     that has one;
   - an error (``no API named ...``) for a function the item does not offer;
   - otherwise the **simulator**: an LLM told to stand in for the API (prompt ``simulator.v1``, in the
     style of ToolAlpaca's simulator: the API's documentation, this session's earlier replies, the
     request; it answers ``Status Code`` / ``Response`` / ``Explanation``), at temperature 0 and cached,
     so a rerun replays the same world;

3. the observations go back to the agent (``tool`` messages, or ``Observation:`` lines) and the next
   step starts.

Then a **judge** reads the whole solution:

- ``toolalpaca`` (default, ``judge_toolalpaca.v1``, after ToolAlpaca's evaluator): the documentation,
  the instruction, the reference answer (the gold calls) and the solution (calls, returns, final
  response) -> ``Process Correctness`` and ``Final Response Correctness``, each Yes / No / Uncertain.
  ``passed`` = both Yes; ``score`` = the share of the two that are Yes.
- ``tooleval`` (``judge_tooleval.v1``, after ToolEval's pass rate): the query, the calls with their
  results and the final answer -> ``answer_status`` Solved / Unsolved / Unsure. ``passed`` = Solved.

Strict parsing and no guessing: an agent answer that cannot be read ends the item as ``parse_error``
(not passed; or unscored with ``parse_errors="unscored"``); an item with no final response within
``max_steps`` is not passed (reason says so; the judge is not asked); a simulator or judge answer that
does not follow its format, and any failed request, makes the item ``unscored:<reason>``; Uncertain /
Unsure is ``unscored:judge_uncertain`` unless ``uncertain="fail"``.

All requests go through :class:`toolqual_utils.llm.LLMClient` instances handed in by the caller, via a
``resolve(role, client, requests)`` function (live by default; the engine uses it to run from Batch
files one round at a time). Pure apart from building request objects.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..ice.parse import ParsedAnswer, parse_react_calls, parse_tool_calls
from ..ice.score import canonical_calls
from ..llm import ChatRequest, ChatResult, CompletionRequest, LLMClient
from ..matching import call_matches
from ..verdicts import Status
from . import prompting
from .answers import final_response, parse_text_calls
from .testset import TestItem

__all__ = ["MultiStepSettings", "Trajectory", "run_multistep", "parse_simulator_reply", "parse_toolalpaca_verdict",
           "parse_tooleval_verdict", "trajectory_row", "trajectory_record", "JUDGES"]

JUDGES: Final = ("toolalpaca", "tooleval")
_WORDS: Final = {"yes": "Yes", "no": "No", "uncertain": "Uncertain"}
_STATUSES: Final = {"solved": "Solved", "unsolved": "Unsolved", "unsure": "Unsure"}

Resolve = Callable[[str, LLMClient, Sequence[Any]], list[ChatResult]]


def live_resolve(role: str, client: LLMClient, requests: Sequence[Any]) -> list[ChatResult]:
    return client.complete(list(requests), progress=False) if requests else []


@dataclass(frozen=True)
class MultiStepSettings:
    """Settings of a multi-step run (see the module docstring).

    ``api``/``call_format``: ``chat`` with ``tools`` or ``react``; ``completions`` with ``react``.
    """

    api: str = "chat"
    call_format: str = "tools"
    max_steps: int = 5
    max_tokens: int | None = 1024
    tool_choice: str | None = None
    judge: str = "toolalpaca"
    uncertain: str = "unscored"
    parse_errors: str = "fail"
    judge_max_tokens: int | None = 2048
    simulator_max_tokens: int | None = 1024

    def __post_init__(self) -> None:
        allowed = {("chat", "tools"), ("chat", "react"), ("completions", "react")}
        if (self.api, self.call_format) not in allowed:
            raise ValueError(f"multi-step evaluation takes --format tools or react over the chat API, or react over "
                             f"--api completions; not {self.call_format} over {self.api} (a one-shot JSON list "
                             "cannot use the results of earlier calls)")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {self.max_steps}")
        if self.judge not in JUDGES:
            raise ValueError(f"judge must be one of {', '.join(JUDGES)}, not {self.judge!r}")
        if self.uncertain not in ("unscored", "fail"):
            raise ValueError(f"uncertain must be 'unscored' or 'fail', not {self.uncertain!r}")
        if self.parse_errors not in ("fail", "unscored"):
            raise ValueError(f"parse_errors must be 'fail' or 'unscored', not {self.parse_errors!r}")

    @property
    def agent_prompt_id(self) -> str:
        if self.api == "completions":
            return prompting.prompt_id("agent_completion_react")
        return prompting.prompt_id("agent_react" if self.call_format == "react" else "agent_tools")

    @property
    def judge_prompt_id(self) -> str:
        return prompting.prompt_id(f"judge_{self.judge}")


@dataclass
class Observation:
    text: str
    origin: str  # "gold" | "simulator" | "error"
    status_code: int | None = None


@dataclass
class Step:
    answer_text: str | None
    calls: list[dict[str, Any]]                 # with the item's own function names
    sent_names: list[str]                       # names as the agent wrote them
    observations: list[Observation] = field(default_factory=list)
    pending: list[tuple[int, ChatRequest]] = field(default_factory=list)


@dataclass
class Trajectory:
    """One item's run: the steps, the final response, the judge's verdict or why it stopped."""

    item: TestItem
    names: prompting.ToolNames | None
    steps: list[Step] = field(default_factory=list)
    final: str | None = None
    done: bool = False
    status: str | None = None   # Status.OK, Status.PARSE_ERROR or an unscored status, once decided
    reason: str | None = None
    passed: float = math.nan
    score: float = math.nan
    judge_text: str | None = None
    verdict: dict[str, str] | None = None
    cached: bool = True

    @property
    def calls(self) -> list[dict[str, Any]]:
        return [call for step in self.steps for call in step.calls]

    def stop(self, status: str, reason: str | None, *, passed: float = math.nan, score: float = math.nan) -> None:
        self.done, self.status, self.reason, self.passed, self.score = True, status, reason, passed, score


# ---------------------------------------------------------------------------------------------- the agent
def _call_id(step: int, index: int) -> str:
    return f"call_{step}_{index}"


def _arguments_text(arguments: Any) -> str:
    return json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)


def _react_turn(step: Step) -> str:
    return (step.answer_text or "").split("\nObservation:")[0].rstrip()


def _observation_lines(step: Step) -> str:
    return "\n".join(f"Observation: {o.text}" for o in step.observations)


def agent_request(t: Trajectory, settings: MultiStepSettings) -> ChatRequest | CompletionRequest:
    """The agent's request for the next step of ``t`` (the whole conversation so far)."""
    instance = t.item.instance
    custom_id = f"evaluate|agent|{t.item.id}|step{len(t.steps)}"
    pid = settings.agent_prompt_id
    if settings.api == "completions":
        text = prompting.render("agent_completion_react", apis=prompting.render_apis(instance.tools),
                                instruction=instance.instruction)
        for step in t.steps:
            text += f"{_react_turn(step)}\n{_observation_lines(step)}\n"
        return CompletionRequest(custom_id, text, pid, stop=prompting.AGENT_COMPLETION_STOP, temperature=0.0,
                                 max_tokens=settings.max_tokens)
    if settings.call_format == "react":
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": prompting.render("agent_react", apis=prompting.render_apis(instance.tools))},
            {"role": "user", "content": instance.instruction},
        ]
        for step in t.steps:
            messages.append({"role": "assistant", "content": _react_turn(step)})
            messages.append({"role": "user", "content": _observation_lines(step)})
        return ChatRequest(custom_id, tuple(messages), pid, temperature=0.0, max_tokens=settings.max_tokens)
    names = t.names
    assert names is not None
    messages = [{"role": "user", "content": instance.instruction}]
    for k, step in enumerate(t.steps):
        tool_calls = [{"id": _call_id(k, j), "type": "function",
                       "function": {"name": sent, "arguments": _arguments_text(call.get("arguments"))}}
                      for j, (call, sent) in enumerate(zip(step.calls, step.sent_names))]
        messages.append({"role": "assistant", "content": step.answer_text or None, "tool_calls": tool_calls})
        for j, observation in enumerate(step.observations):
            messages.append({"role": "tool", "tool_call_id": _call_id(k, j), "content": observation.text})
    tools = names.openai_tools(instance.tools)
    return ChatRequest(custom_id, tuple(messages), pid, temperature=0.0, max_tokens=settings.max_tokens,
                       tools=tools or None, tool_choice=settings.tool_choice if tools else None)


def _read_step(result: ChatResult, t: Trajectory, settings: MultiStepSettings) -> tuple[ParsedAnswer, str | None, bool]:
    """(parsed calls, final response or None, calls came from text) of one agent answer."""
    text = result.text
    if settings.call_format == "react":
        turn = (text or "").split("\nObservation:")[0]
        if re.search(r"(?m)^\s*Action\s*:", turn):
            parsed = parse_react_calls(turn)
            if parsed.ok and not parsed.calls:  # "Action: None" / "Final Answer" only
                return parsed, final_response(turn), True
            return parsed, None, True
        return ParsedAnswer([]), final_response(turn), True
    if result.tool_calls:
        return parse_tool_calls(result.tool_calls), None, False
    parsed = parse_text_calls(text)
    if parsed.ok and not parsed.calls:
        return parsed, final_response(text), True
    return parsed, None, True


# ---------------------------------------------------------------------------------------------- the world
def _gold_observation(call: Mapping[str, Any], t: Trajectory) -> str | None:
    instance = t.item.instance
    gold_calls = instance.calls or []
    if not t.item.complete_gold or len(gold_calls) != len(t.item.possible_answer):
        return None
    for gold, spec in zip(gold_calls, t.item.possible_answer):
        if gold.observation is None:
            continue
        if call_matches(call, spec, instance.tool(gold.name)).ok:
            return gold.observation
    return None


def _history(t: Trajectory, upto_step: int, upto_call: int) -> str:
    lines = []
    for k, step in enumerate(t.steps[: upto_step + 1]):
        for j, (call, observation) in enumerate(zip(step.calls, step.observations)):
            if (k, j) >= (upto_step, upto_call):
                break
            if observation.origin == "error" or not observation.text:  # errors, and replies not known yet
                continue
            lines.append(f"Request: {json.dumps(call, ensure_ascii=False)}\nReply: {observation.text}")
    return "\n".join(lines) or "(none)"


def simulator_request(t: Trajectory, step_index: int, call_index: int, settings: MultiStepSettings) -> ChatRequest:
    call = t.steps[step_index].calls[call_index]
    tool = t.item.instance.tool(str(call["name"]))
    assert tool is not None
    text = prompting.render(
        "simulator", tool_name=tool.name, tool_description=tool.description or "(none)",
        parameters=json.dumps(tool.parameters, ensure_ascii=False), history=_history(t, step_index, call_index),
        request=json.dumps({"api": tool.name, "arguments": call.get("arguments") or {}}, ensure_ascii=False),
    )
    return ChatRequest(f"evaluate|simulator|{t.item.id}|step{step_index}|call{call_index}",
                       ({"role": "user", "content": text},), prompting.prompt_id("simulator"), temperature=0.0,
                       max_tokens=settings.simulator_max_tokens)


_STATUS_LINE = re.compile(r"(?im)^\s*\**Status Code\**\s*:\s*\**\s*(\d{3})\b")
_RESPONSE = re.compile(r"(?is)^\s*\**Response\**\s*:\s*(.*?)(?=^\s*\**Explanation\**\s*:|\Z)", re.MULTILINE)
_FENCE = re.compile(r"^```(?:json|JSON)?\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_simulator_reply(text: str | None) -> tuple[int, Any] | str:
    """``(status_code, response JSON value)`` of a simulator answer, or the reason it is not readable."""
    if not text or not text.strip():
        return "empty simulator answer"
    status = _STATUS_LINE.findall(text)
    if len(status) != 1:
        return "simulator answer has no single 'Status Code: <number>' line"
    response = _RESPONSE.search(text)
    if response is None:
        return "simulator answer has no 'Response:' part"
    raw = response.group(1).strip()
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1).strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"simulator Response is not valid JSON ({exc.msg} at column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # an integer too long, values nested too deeply
        return f"simulator Response is not usable JSON ({type(exc).__name__})"
    return int(status[0]), value


def _simulated_text(status_code: int, value: Any) -> str:
    if 200 <= status_code < 300:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps({"error": {"status_code": status_code, "response": value}}, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- the judge
def _documentation(t: Trajectory) -> str:
    return "\n".join(f"{tool.name}: {tool.description}\nParameters: {json.dumps(tool.parameters, ensure_ascii=False)}"
                     for tool in t.item.instance.tools) or "(no APIs)"


def _standard(t: Trajectory) -> str:
    calls = t.item.instance.calls or []
    if not calls:
        return "No API call is needed; the right reply explains that no available API serves the request."
    return "\n".join(f"{i}. Function: {c.name}\nParameters: {_arguments_text(c.arguments) if c.arguments is not None else c.raw_arguments}"
                     for i, c in enumerate(calls, start=1))


def _execution(t: Trajectory) -> list[str]:
    lines, number = [], 0
    for step in t.steps:
        for call, observation in zip(step.calls, step.observations):
            number += 1
            lines.append(f"{number}. Function: {call['name']}\nParameters: {_arguments_text(call.get('arguments'))}\n"
                         f"Returns: {observation.text}")
    return lines


def judge_request(t: Trajectory, settings: MultiStepSettings) -> ChatRequest:
    instance = t.item.instance
    execution = _execution(t)
    if settings.judge == "toolalpaca":
        solution = "\n".join(execution + [f"{len(execution) + 1}. Final Response: {t.final}"])
        text = prompting.render("judge_toolalpaca", documentation=_documentation(t), instruction=instance.instruction,
                                standard=_standard(t), solution=solution)
    else:
        text = prompting.render("judge_tooleval", instruction=instance.instruction, documentation=_documentation(t),
                                execution="\n".join(execution) or "(no calls)", final_answer=t.final or "")
    return ChatRequest(f"evaluate|judge|{t.item.id}", ({"role": "user", "content": text},), settings.judge_prompt_id,
                       temperature=0.0, max_tokens=settings.judge_max_tokens)


def _word(raw: str, allowed: Mapping[str, str]) -> str | None:
    cleaned = re.sub(r"[^a-z]", "", raw.lower())
    return allowed.get(cleaned)


def parse_toolalpaca_verdict(text: str | None) -> dict[str, str] | str:
    """``{"process": Yes|No|Uncertain, "response": ...}`` from a ``judge_toolalpaca`` answer, or why not."""
    if not text or not text.strip():
        return "empty judge answer"
    section = re.split(r"(?im)^\s*#*\s*Results\s*:?\s*$", text)[-1]
    found = {}
    for key, label in (("process", "Process Correctness"), ("response", "Final Response Correctness")):
        values = re.findall(rf"(?im)^[\s*_`-]*{label}[\s*_`]*:\s*(.+)$", section)
        if len(values) != 1:
            return f"judge answer has {len(values)} '{label}:' lines in its results (expected one)"
        first = re.search(r"[A-Za-z]+", values[0])
        word = _word(first.group(0) if first else "", _WORDS)
        if word is None:
            return f"judge answer's {label} is {values[0].strip()[:40]!r}, not Yes, No or Uncertain"
        found[key] = word
    return found


def parse_tooleval_verdict(text: str | None) -> dict[str, str] | str:
    """``{"answer_status": Solved|Unsolved|Unsure, "reason": ...}`` from a ``judge_tooleval`` answer, or why not."""
    if not text or not text.strip():
        return "empty judge answer"
    start, end = text.find("{"), text.rfind("}")
    if not 0 <= start < end:
        return "judge answer holds no JSON object"
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        return f"judge answer is not valid JSON ({exc.msg})"
    except (ValueError, RecursionError) as exc:  # an integer too long, values nested too deeply
        return f"judge answer is not usable JSON ({type(exc).__name__})"
    if not isinstance(value, dict) or not isinstance(value.get("answer_status"), str):
        return "judge answer has no answer_status"
    status = _word(value["answer_status"], _STATUSES)
    if status is None:
        return f"judge answer_status is {value['answer_status'][:40]!r}, not Solved, Unsolved or Unsure"
    return {"answer_status": status, "reason": str(value.get("reason") or "")}


def _decide(t: Trajectory, text: str | None, settings: MultiStepSettings) -> None:
    t.judge_text = text
    if settings.judge == "toolalpaca":
        verdict = parse_toolalpaca_verdict(text)
        if isinstance(verdict, str):
            t.stop(Status.UNSCORED_JUDGE_UNPARSEABLE, verdict)
            return
        t.verdict = verdict
        words = (verdict["process"], verdict["response"])
        reason = f"process={words[0]}; final response={words[1]}"
        if "Uncertain" in words and settings.uncertain == "unscored" and "No" not in words:
            t.stop(Status.UNSCORED_JUDGE_UNCERTAIN, reason)
            return
        yes = sum(w == "Yes" for w in words)
        t.stop(Status.OK, reason, passed=float(yes == 2), score=yes / 2)
        return
    verdict = parse_tooleval_verdict(text)
    if isinstance(verdict, str):
        t.stop(Status.UNSCORED_JUDGE_UNPARSEABLE, verdict)
        return
    t.verdict = verdict
    reason = f"answer_status={verdict['answer_status']}: {verdict['reason']}".strip(": ")
    if verdict["answer_status"] == "Unsure" and settings.uncertain == "unscored":
        t.stop(Status.UNSCORED_JUDGE_UNCERTAIN, reason)
        return
    solved = float(verdict["answer_status"] == "Solved")
    t.stop(Status.OK, reason, passed=solved, score=solved)


# ---------------------------------------------------------------------------------------------- the loop
def run_multistep(items: Sequence[TestItem], agent: LLMClient, simulator: LLMClient, judge: LLMClient,
                  settings: MultiStepSettings, resolve: Resolve = live_resolve) -> list[Trajectory]:
    """Run every item to a verdict (see the module docstring); trajectories in item order.

    The items advance together, one round per step: all agent requests of the round, then all simulator
    requests, so each round is one concurrent batch through the client (and one Batch file).
    """
    trajectories = [Trajectory(item, prompting.ToolNames(item.instance.tools) if settings.call_format == "tools"
                               else None) for item in items]
    for step_number in range(settings.max_steps):
        active = [t for t in trajectories if not t.done and t.final is None]
        if not active:
            break
        results = resolve("agent", agent, [agent_request(t, settings) for t in active])
        needs_simulator: list[tuple[Trajectory, int]] = []
        for t, result in zip(active, results):
            t.cached = t.cached and bool(result.cached)
            if not result.ok:
                t.stop(result.status, f"agent step {step_number}: {result.error}")
                continue
            parsed, final, _ = _read_step(result, t, settings)
            if not parsed.ok:
                reason = f"agent step {step_number}: answer not readable: {parsed.error}"
                if settings.parse_errors == "unscored":
                    t.stop(Status.UNSCORED_PARSE_ERROR, reason)
                else:
                    t.stop(Status.PARSE_ERROR, reason, passed=0.0, score=0.0)
                continue
            if final is not None:
                t.final = final
                continue
            calls = list(parsed.calls or [])
            restored = t.names.restore(calls) if t.names is not None else calls
            step = Step(answer_text=result.text, calls=restored, sent_names=[str(c["name"]) for c in calls])
            t.steps.append(step)
            for j, call in enumerate(restored):
                if t.item.instance.tool(str(call["name"])) is None:
                    step.observations.append(Observation(json.dumps({"error": f"no API named {call['name']!r}"}),
                                                         "error", 404))
                    continue
                gold = _gold_observation(call, t)
                if gold is not None:
                    step.observations.append(Observation(gold, "gold"))
                    continue
                step.observations.append(Observation("", "simulator"))  # filled below
                needs_simulator.append((t, j))
        if needs_simulator:
            # one request per call, each with the session history up to that call
            requests = [simulator_request(t, len(t.steps) - 1, j, settings) for t, j in needs_simulator]
            replies = resolve("simulator", simulator, requests)
            for (t, j), reply in zip(needs_simulator, replies):
                if t.done:
                    continue
                if not reply.ok:
                    t.stop(reply.status, f"simulator: {reply.error}")
                    continue
                parsed_reply = parse_simulator_reply(reply.text)
                if isinstance(parsed_reply, str):
                    t.stop(Status.UNSCORED_SIMULATOR_UNPARSEABLE, parsed_reply)
                    continue
                code, value = parsed_reply
                t.steps[-1].observations[j] = Observation(_simulated_text(code, value), "simulator", code)
    for t in trajectories:
        if not t.done and t.final is None:
            t.stop(Status.OK, f"no final response within {settings.max_steps} steps", passed=0.0, score=0.0)
    to_judge = [t for t in trajectories if not t.done]
    if to_judge:
        verdicts = resolve("judge", judge, [judge_request(t, settings) for t in to_judge])
        for t, result in zip(to_judge, verdicts):
            if not result.ok:
                t.stop(result.status, f"judge: {result.error}")
                continue
            _decide(t, result.text, settings)
    return trajectories


def trajectory_row(t: Trajectory) -> dict[str, Any]:
    """The outcome fields of one trajectory (see ``static.ROW_FIELDS``) plus the step and judge fields."""
    calls = t.calls
    observations = [o for step in t.steps for o in step.observations]
    return {
        "item_id": t.item.id, "passed": t.passed, "score": t.score, "status": t.status, "reason": t.reason,
        "predicted_calls": canonical_calls(calls) if t.steps or t.final is not None else None,
        "n_predicted_calls": len(calls) if t.steps or t.final is not None else math.nan,
        "n_gold_calls": t.item.n_gold_calls, "answer_text": t.final, "cached": t.cached,
        "n_steps": len(t.steps), "n_simulated": sum(o.origin == "simulator" for o in observations),
        "n_gold_observations": sum(o.origin == "gold" for o in observations),
        "judge_verdict": json.dumps(t.verdict, ensure_ascii=False) if t.verdict else None,
    }


def trajectory_record(t: Trajectory) -> dict[str, Any]:
    """The whole trajectory as one JSON object (for the ``.trajectories.jsonl`` file beside the outcomes)."""
    return {
        "item_id": t.item.id,
        "instruction": t.item.instance.instruction,
        "steps": [{"answer_text": s.answer_text, "calls": s.calls,
                   "observations": [{"text": o.text, "origin": o.origin, "status_code": o.status_code}
                                    for o in s.observations]} for s in t.steps],
        "final_response": t.final,
        "status": t.status,
        "passed": None if math.isnan(t.passed) else t.passed,
        "reason": t.reason,
        "judge_answer": t.judge_text,
    }
