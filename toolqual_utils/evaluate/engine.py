"""``toolqual evaluate`` engine: test items through the one LLM client, one outcome row per item and run.

Outcome columns (:data:`OUTCOME_COLUMNS`; the file notebook 06 and :mod:`toolqual_utils.extrinsic`
read):

``run``            the label of this run (one per fine-tuned model / training subset, e.g. ``random``)
``item_id``        the test item (canonical instance id)
``passed``         1 / 0, empty when unscored
``score``          partial credit in [0, 1] (static: matched calls / max(calls, gold calls); multi-step:
                   share of the judge's two verdicts that are Yes, or 1/0 for ToolEval), empty when unscored
``predicted_calls`` the model's calls, canonical JSON (all steps for multi-step)
``reason``         why not passed / why unscored (matcher reasons, parse error, API error, judge verdict)
``status``         ``ok`` | ``parse_error`` | ``unscored:<reason>``
``benchmark, model, mode, api, call_format, prompt_id``  what was run
``n_predicted_calls, n_gold_calls, cached, answer_text``  details (multi-step adds ``n_steps``,
                   ``n_simulated``, ``n_gold_observations``, ``judge_verdict``)

Batch files: static runs export every uncached request at once (``export_static_batch``); multi-step runs
advance one round at a time (each round's requests depend on the previous answers), so a
:class:`BatchResolver` runs everything it can from the cache and the result files given, and stops at
the first round that still needs answers (:class:`PendingRound`), whose requests the command writes.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from ..llm import ChatResult, LLMClient
from ..verdicts import Status
from .multistep import MultiStepSettings, run_multistep, trajectory_row
from .static import StaticSettings, score_answer, static_prompt_id, static_request
from .testset import TestItem

__all__ = ["OUTCOME_COLUMNS", "MULTISTEP_COLUMNS", "run_static", "static_requests", "assemble_static",
           "run_multistep_items", "outcome_frame", "summarise", "BatchResolver", "PendingRound", "batch_custom_ids"]

OUTCOME_COLUMNS: Final = (
    "run", "item_id", "passed", "score", "predicted_calls", "reason", "status", "benchmark", "model", "mode", "api",
    "call_format", "prompt_id", "n_predicted_calls", "n_gold_calls", "cached", "answer_text",
)
MULTISTEP_COLUMNS: Final = ("n_steps", "n_simulated", "n_gold_observations", "judge_verdict")


@dataclass(frozen=True)
class RunLabels:
    """What every outcome row of a run repeats."""

    run: str
    benchmark: str
    model: str
    mode: str
    api: str
    call_format: str
    prompt_id: str


def outcome_frame(rows: Sequence[dict[str, Any]], labels: RunLabels, *, multistep: bool = False) -> pd.DataFrame:
    """Rows (from ``static.score_answer`` or ``multistep.trajectory_row``) with the run's labels, in
    :data:`OUTCOME_COLUMNS` order (plus :data:`MULTISTEP_COLUMNS` for multi-step runs)."""
    columns = list(OUTCOME_COLUMNS) + (list(MULTISTEP_COLUMNS) if multistep else [])
    records = [{**row, **vars(labels)} for row in rows]
    frame = pd.DataFrame(records, columns=columns)
    for column in ("passed", "score", "n_predicted_calls"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def summarise(outcomes: pd.DataFrame) -> dict[str, Any]:
    """Counts for the command line and the manifest: passed, failed, unscored by reason, pass rate."""
    status = outcomes["status"].astype(str) if len(outcomes) else pd.Series(dtype=str)
    scored = outcomes["passed"].notna() if len(outcomes) else pd.Series(dtype=bool)
    n_scored = int(scored.sum())
    n_passed = int((outcomes["passed"] == 1).sum()) if len(outcomes) else 0
    unscored = status[~scored.to_numpy()] if len(outcomes) else status
    return {
        "n_items": int(len(outcomes)),
        "n_scored": n_scored,
        "n_passed": n_passed,
        "n_failed": n_scored - n_passed,
        "n_parse_errors": int((status == Status.PARSE_ERROR).sum()),
        "n_unscored": int(len(outcomes) - n_scored),
        "unscored_by_reason": {str(k): int(v) for k, v in unscored.value_counts().items()},
        "pass_rate": n_passed / n_scored if n_scored else math.nan,
        "mean_score": float(outcomes.loc[scored, "score"].mean()) if n_scored else math.nan,
    }


# ---------------------------------------------------------------------------------------------- static
def static_requests(items: Sequence[TestItem], settings: StaticSettings):
    """(requests, tool-name maps) for every item, in item order."""
    pairs = [static_request(item, settings) for item in items]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def assemble_static(items: Sequence[TestItem], results: Sequence[ChatResult], settings: StaticSettings,
                    labels: RunLabels) -> pd.DataFrame:
    """Score client results (same order as ``items``) into the outcome frame."""
    _, names = static_requests(items, settings)
    rows = [score_answer(item, result, settings, name_map) for item, result, name_map in zip(items, results, names)]
    return outcome_frame(rows, labels)


def run_static(items: Sequence[TestItem], client: LLMClient, settings: StaticSettings, labels: RunLabels, *,
               progress: bool = False) -> pd.DataFrame:
    """Static call evaluation of every item (see :mod:`.static`)."""
    requests, _ = static_requests(items, settings)
    results = client.complete(requests, progress=progress) if requests else []
    return assemble_static(items, results, settings, labels)


def static_labels(run: str, benchmark: str, model: str, settings: StaticSettings) -> RunLabels:
    return RunLabels(run, benchmark, model, "static", settings.api, settings.call_format, static_prompt_id(settings))


# ---------------------------------------------------------------------------------------------- multi-step
def multistep_labels(run: str, benchmark: str, model: str, settings: MultiStepSettings) -> RunLabels:
    return RunLabels(run, benchmark, model, "multistep", settings.api, settings.call_format, settings.agent_prompt_id)


def run_multistep_items(items: Sequence[TestItem], agent: LLMClient, simulator: LLMClient, judge: LLMClient,
                        settings: MultiStepSettings, labels: RunLabels, resolve=None):
    """Multi-step evaluation (see :mod:`.multistep`): (outcome frame, trajectories)."""
    kwargs = {"resolve": resolve} if resolve is not None else {}
    trajectories = run_multistep(items, agent, simulator, judge, settings, **kwargs)
    return outcome_frame([trajectory_row(t) for t in trajectories], labels, multistep=True), trajectories


# ---------------------------------------------------------------------------------------------- batch rounds
class PendingRound(Exception):
    """A multi-step round needs answers that are neither cached nor in the result files given."""

    def __init__(self, role: str, client: LLMClient, requests: list[Any]) -> None:
        super().__init__(f"{len(requests)} {role} request(s) still need answers")
        self.role, self.client, self.requests = role, client, requests


def batch_custom_ids(paths: Sequence[str | os.PathLike[str]]) -> set[str]:
    """The ``custom_id`` values of Batch result files (to import only what they hold)."""
    ids: set[str] = set()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # import_batch names the bad line
                if isinstance(record, dict) and "custom_id" in record:
                    ids.add(str(record["custom_id"]))
    return ids


class BatchResolver:
    """Answers a round from the cache, importing the given Batch result files first; raises
    :class:`PendingRound` with the requests still unanswered (the clients run in replay mode)."""

    def __init__(self, result_files: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.result_files = [Path(p) for p in result_files]
        self.available = batch_custom_ids(self.result_files) if self.result_files else set()
        self.rounds = 0

    def __call__(self, role: str, client: LLMClient, requests: Sequence[Any]) -> list[ChatResult]:
        requests = list(requests)
        if not requests:
            return []
        self.rounds += 1
        present = client.in_cache(requests)
        importable = [r for r, p in zip(requests, present) if not p and r.custom_id in self.available]
        failed: dict[str, ChatResult] = {}  # result lines that carry an error: unscored, not pending
        if importable:
            for request, result in zip(importable, client.import_batch(self.result_files, importable)):
                if not result.ok:
                    failed[request.custom_id] = result
            present = client.in_cache(requests)
        missing = [r for r, p in zip(requests, present) if not p and r.custom_id not in failed]
        if missing:
            raise PendingRound(role, client, missing)
        cached = iter(client.complete([r for r, p in zip(requests, present) if p], progress=False))
        return [next(cached) if p else failed[r.custom_id] for r, p in zip(requests, present)]
