"""The ICE engine: instances x test queries through the one LLM client, scored and aggregated.

Every model call goes through :class:`toolqual_utils.llm.LLMClient` (cache, concurrency, retries,
ledger, batch export/import live there). The engine builds the requests (:mod:`.prompt`), parses the
answers (:mod:`.parse`) and scores them (:mod:`.score`).

Per-query statuses: ``ok``; ``parse_error`` (answer unreadable: scored 0, counted in
``n_parse_errors``); ``unscored:<reason>`` from the client (``api_error``, ``refusal``, ``truncated``,
``not_cached``) or ``unscored:no_gold_calls`` (the instance has no call sequence to demonstrate) —
unscored queries are left out of the instance's mean and counted in ``n_unscored``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from ..llm import ChatRequest, ChatResult, CompletionRequest, LLMClient
from ..schema import Instance
from ..verdicts import Status
from .adaptive import AdaptiveConfig, AdaptiveResult, adaptive_select
from .parse import parse_answer
from .prompt import (Api, CallFormat, IcePrompt, build_completion_prompts, build_prompts, completion_prompt_id_for,
                     prompt_id_for)
from .score import aggregate_instances, canonical_calls, similarity, strict_match
from .testbed import TestBed

#: Columns of the per-query table (one row per instance x test query).
QUERY_COLUMNS: Final = (
    "instance_id", "source", "query_id", "target_model", "testbed_version", "prompt_id", "call_format",
    "status", "similarity", "strict", "n_predicted_calls", "predicted", "answer_text", "error",
    "strict_reasons", "cached",
)
#: Generation limit of an ICE answer (a call list for a test query is short).
DEFAULT_MAX_TOKENS: Final = 512
#: Completion tokens per answer that cost plans assume (a test query's call list is about 120 tokens).
PLAN_ANSWER_TOKENS: Final = 120


@dataclass
class IceRun:
    """Result of an ICE run.

    Attributes:
        per_query: one row per instance x test query asked, columns :data:`QUERY_COLUMNS`.
        per_instance: one row per instance, columns ``score.INSTANCE_COLUMNS`` (plus, for adaptive runs,
            ``adaptive_decision``, ``adaptive_lower``, ``adaptive_upper``, ``selected``).
        ledger: the client's ledger as a frame (requests, cache hits, tokens, cost).
        adaptive: the :class:`AdaptiveResult` of an adaptive run, else None.
    """

    per_query: pd.DataFrame
    per_instance: pd.DataFrame
    ledger: pd.DataFrame
    adaptive: AdaptiveResult | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def to_chat_request(prompt: IcePrompt, *, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> ChatRequest | CompletionRequest:
    """The client request for one prompt (greedy: temperature 0): a text completion when the prompt is
    text (``api="completions"``), else a chat request."""
    if prompt.text is not None:
        return CompletionRequest(custom_id=prompt.custom_id, prompt=prompt.text, prompt_id=prompt.prompt_id,
                                 stop=prompt.stop, temperature=0.0, max_tokens=max_tokens)
    return ChatRequest(
        custom_id=prompt.custom_id,
        messages=prompt.messages,
        prompt_id=prompt.prompt_id,
        temperature=0.0,
        max_tokens=max_tokens,
        tools=prompt.tools,
    )


def build_requests(
    instances: Iterable[Instance],
    testbed: TestBed,
    call_format: CallFormat = "json",
    *,
    include_observations: bool = False,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    api: Api = "chat",
) -> tuple[list[IcePrompt], list[ChatRequest | CompletionRequest]]:
    """All prompts and their client requests, instance-major (instances without gold calls skipped).

    ``api="completions"`` builds plain-text prompts for ``/v1/completions`` (json or react format).
    """
    prompts = _prompts_for(instances, testbed, call_format, include_observations, api)
    return prompts, [to_chat_request(p, max_tokens=max_tokens) for p in prompts]


def plan_cost(client: LLMClient, requests: Sequence[ChatRequest], *, answer_tokens: int = PLAN_ANSWER_TOKENS):
    """The one ICE cost estimate (``toolqual ice --plan`` and notebook 04 both use it).

    Prompt tokens from the request text (characters / 4), ``answer_tokens`` per answer (capped by
    ``max_tokens``); requests already in the client's cache are counted as cached, not as cost.
    Returns the client's :class:`toolqual_utils.llm.CostPlan`.
    """
    return client.plan(requests, expected_output_tokens=answer_tokens)


def _prompts_for(instances: Iterable[Instance], testbed: TestBed, call_format: CallFormat,
                 include_observations: bool, api: str) -> list[IcePrompt]:
    if api == "completions":
        return build_completion_prompts(instances, testbed, call_format, include_observations=include_observations)
    if api != "chat":
        raise ValueError(f"api must be 'chat' or 'completions', not {api!r}")
    return build_prompts(instances, testbed, call_format, include_observations=include_observations)


def score_result(prompt: IcePrompt, result: ChatResult, testbed: TestBed, target_model: str,
                 source: str = "") -> dict[str, Any]:
    """One per-query row (columns :data:`QUERY_COLUMNS`) from a client result."""
    query = testbed.query(prompt.query_id)
    row: dict[str, Any] = {
        "instance_id": prompt.instance_id, "source": source, "query_id": prompt.query_id,
        "target_model": target_model, "testbed_version": testbed.version, "prompt_id": prompt.prompt_id,
        "call_format": prompt.call_format, "status": result.status, "similarity": math.nan,
        "strict": math.nan, "n_predicted_calls": None, "predicted": None, "answer_text": result.text,
        "error": result.error, "strict_reasons": None, "cached": bool(result.cached),
    }
    if not result.ok:
        return row
    parsed = parse_answer(prompt.call_format, result.text, result.tool_calls)
    if not parsed.ok:
        row.update(status=Status.PARSE_ERROR, similarity=0.0, strict=0.0, error=parsed.error)
        return row
    calls = parsed.calls or []
    ok, reasons = strict_match(calls, query.possible_answer, testbed.tools, order_free=query.order_free)
    row.update(
        status=Status.OK,
        similarity=similarity(calls, query.calls, order_free=query.order_free),
        strict=1.0 if ok else 0.0,
        n_predicted_calls=len(calls),
        predicted=canonical_calls(calls),
        strict_reasons="; ".join(reasons) if reasons else None,
    )
    if result.tool_calls and not row["answer_text"]:
        row["answer_text"] = canonical_calls(calls)
    return row


def _no_gold_rows(instance: Instance, testbed: TestBed, target_model: str, call_format: str,
                  prompt_id: str | None = None) -> list[dict[str, Any]]:
    return [
        {"instance_id": instance.id, "source": instance.source, "query_id": query.id,
         "target_model": target_model, "testbed_version": testbed.version,
         "prompt_id": prompt_id or prompt_id_for(call_format), "call_format": call_format,
         "status": Status.UNSCORED_NO_GOLD_CALLS, "similarity": math.nan, "strict": math.nan,
         "n_predicted_calls": None, "predicted": None, "answer_text": None,
         "error": "the instance has no gold call sequence to demonstrate", "strict_reasons": None,
         "cached": False}
        for query in testbed.queries
    ]


def run_ice(
    instances: Sequence[Instance],
    testbed: TestBed,
    client: LLMClient,
    *,
    call_format: CallFormat = "json",
    include_observations: bool = False,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    progress: bool = True,
    api: Api = "chat",
) -> IceRun:
    """Full ICE: every instance (as the demonstration) x every test query.

    ``api="completions"`` sends plain-text prompts to ``/v1/completions`` (base models without a chat
    template); parsing and scores are the same.

    Returns:
        :class:`IceRun`. ``per_instance.ice_score`` in [0, 1], higher = the instance teaches the target
        model better. Empty input -> empty tables.
    """
    prompts, requests = build_requests(instances, testbed, call_format, include_observations=include_observations,
                                       max_tokens=max_tokens, api=api)
    results = client.complete(requests, progress=progress) if requests else []
    return assemble(instances, testbed, prompts, results, client, call_format=call_format,
                    prompt_id=prompts[0].prompt_id if prompts else None)


def assemble(
    instances: Sequence[Instance],
    testbed: TestBed,
    prompts: Sequence[IcePrompt],
    results: Sequence[ChatResult],
    client: LLMClient,
    *,
    call_format: str | None = None,
    prompt_id: str | None = None,
) -> IceRun:
    """Score client results for ``prompts`` (same order) into an :class:`IceRun`.

    Used by :func:`run_ice` and after :meth:`LLMClient.import_batch` (batch results). ``prompt_id`` is
    recorded on the rows of instances without gold calls (default: the chat prompt id of the format).
    """
    target_model = client.config.model
    call_format = call_format or (prompts[0].call_format if prompts else "json")
    sources = {inst.id: inst.source for inst in instances}
    rows = [score_result(p, r, testbed, target_model, sources.get(p.instance_id, ""))
            for p, r in zip(prompts, results)]
    for instance in instances:
        if instance.calls is None:
            rows.extend(_no_gold_rows(instance, testbed, target_model, call_format, prompt_id))
    per_query = _order(pd.DataFrame(rows, columns=list(QUERY_COLUMNS)), instances, testbed)
    per_instance = aggregate_instances(per_query)
    return IceRun(per_query, per_instance, client.ledger.to_frame(), None,
                  summarise(per_query, per_instance, n_full=len(instances) * len(testbed.queries)))


def run_ice_adaptive(
    instances: Sequence[Instance],
    testbed: TestBed,
    client: LLMClient,
    config: AdaptiveConfig,
    *,
    call_format: CallFormat = "json",
    include_observations: bool = False,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    progress: bool = False,
    api: Api = "chat",
) -> IceRun:
    """Adaptive ICE for a top-K / bottom-K goal (see :mod:`toolqual_utils.ice.adaptive`).

    Queries are asked in rounds through the same client (each round is one concurrent batch, cached
    like a full run, so a later full run reuses every answer). Instances without gold calls are not
    ranked. ``per_instance`` carries the adaptive decision and bounds; ``ice_score`` there is the mean
    over the queries actually asked.
    """
    target_model = client.config.model
    rankable = [inst for inst in instances if inst.calls is not None]
    by_id = {inst.id: inst for inst in rankable}
    prompts = {
        (p.instance_id, p.query_id): p
        for p in _prompts_for(rankable, testbed, call_format, include_observations, api)
    }
    no_gold_prompt_id = completion_prompt_id_for(call_format) if api == "completions" else None
    query_ids = [q.id for q in testbed.queries]
    rows: list[dict[str, Any]] = []

    def score_batch(pairs: list[tuple[str, int]]) -> list[float | None]:
        batch = [prompts[(iid, query_ids[qi])] for iid, qi in pairs]
        results = client.complete([to_chat_request(p, max_tokens=max_tokens) for p in batch], progress=progress)
        scores: list[float | None] = []
        for prompt, result in zip(batch, results):
            row = score_result(prompt, result, testbed, target_model, by_id[prompt.instance_id].source)
            rows.append(row)
            scores.append(None if Status.is_unscored(row["status"]) else float(row["similarity"]))
        return scores

    adaptive = adaptive_select([inst.id for inst in rankable], len(query_ids), score_batch, config)
    for instance in instances:
        if instance.calls is None:
            rows.extend(_no_gold_rows(instance, testbed, target_model, call_format, no_gold_prompt_id))
    per_query = _order(pd.DataFrame(rows, columns=list(QUERY_COLUMNS)), instances, testbed)
    per_instance = aggregate_instances(per_query)
    decisions = adaptive.table.set_index("instance_id")
    per_instance["adaptive_decision"] = per_instance["instance_id"].map(decisions["decision"])
    per_instance["adaptive_lower"] = per_instance["instance_id"].map(decisions["lower"])
    per_instance["adaptive_upper"] = per_instance["instance_id"].map(decisions["upper"])
    per_instance["selected"] = per_instance["instance_id"].map(decisions["selected"]).fillna(False).astype(bool)
    summary = summarise(per_query, per_instance, n_full=len(instances) * len(query_ids))
    summary.update(
        goal=config.goal, k=config.k, bound=config.bound, epsilon=config.epsilon,
        adaptive_generations=adaptive.n_generations, full_generations=adaptive.n_generations_full,
        generations_saved=adaptive.generations_saved, saved_fraction=adaptive.saved_fraction,
        rounds=adaptive.n_rounds,
    )
    return IceRun(per_query, per_instance, client.ledger.to_frame(), adaptive, summary)


def _order(per_query: pd.DataFrame, instances: Sequence[Instance], testbed: TestBed) -> pd.DataFrame:
    if per_query.empty:
        return per_query
    instance_rank = {inst.id: i for i, inst in enumerate(instances)}
    query_rank = {q.id: i for i, q in enumerate(testbed.queries)}
    keys = per_query["instance_id"].map(instance_rank) * (len(query_rank) + 1) + per_query["query_id"].map(query_rank)
    return per_query.iloc[keys.argsort(kind="stable")].reset_index(drop=True)


def summarise(per_query: pd.DataFrame, per_instance: pd.DataFrame, *, n_full: int) -> dict[str, Any]:
    """Counts for the command-line summary and the notebook."""
    status = per_query["status"].astype(str) if not per_query.empty else pd.Series(dtype=str)
    unscored = status.map(Status.is_unscored).astype(bool)
    scored = per_instance[per_instance["status"] == Status.OK] if not per_instance.empty else per_instance
    return {
        "n_instances": int(len(per_instance)),
        "n_instances_scored": int(len(scored)),
        "n_query_rows": int(len(per_query)),
        "n_full_grid": int(n_full),
        "n_ok": int((status == Status.OK).sum()),
        "n_parse_errors": int((status == Status.PARSE_ERROR).sum()),
        "n_unscored": int(unscored.sum()),
        "unscored_by_reason": status[unscored].value_counts().to_dict(),
        "mean_ice_score": float(scored["ice_score"].mean()) if len(scored) else math.nan,
        "mean_strict_score": float(scored["strict_score"].mean()) if len(scored) else math.nan,
    }
