"""Tables for the ICE notebook (04): the test bed, one rendered prompt, the planned cost, query summary.

Each function returns a DataFrame at a stated grain; the notebook only displays them.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..schema import Instance
from ..verdicts import Status
from .prompt import IcePrompt
from .testbed import TestBed


def tools_table(testbed: TestBed) -> pd.DataFrame:
    """One row per test-bed tool: name, description, required and optional parameters, enums."""
    rows = []
    for tool in testbed.tools:
        required = tool.required
        properties = tool.properties
        enums = {name: spec["enum"] for name, spec in properties.items() if isinstance(spec, Mapping) and "enum" in spec}
        rows.append({
            "tool": tool.name,
            "description": tool.description,
            "required": ", ".join(required),
            "optional": ", ".join(p for p in properties if p not in required),
            "enums": "; ".join(f"{k}: {'|'.join(map(str, v))}" for k, v in enums.items()),
        })
    return pd.DataFrame(rows, columns=["tool", "description", "required", "optional", "enums"])


def queries_table(testbed: TestBed) -> pd.DataFrame:
    """One row per test query: id, query, number of gold calls, the gold calls, order_free, tags."""
    rows = [{
        "query_id": q.id,
        "query": q.query,
        "n_gold_calls": len(q.calls),
        "gold_calls": json.dumps(list(q.calls), ensure_ascii=False),
        "order_free": q.order_free,
        "tags": ", ".join(q.tags),
    } for q in testbed.queries]
    return pd.DataFrame(rows, columns=["query_id", "query", "n_gold_calls", "gold_calls", "order_free", "tags"])


def prompt_table(prompt: IcePrompt) -> pd.DataFrame:
    """One row per message of a rendered request: position, role, part (shared prefix / query), content."""
    rows = []
    last = len(prompt.messages) - 1
    for index, message in enumerate(prompt.messages):
        content = message.get("content")
        if message.get("tool_calls"):
            content = (content or "") + json.dumps(message["tool_calls"], ensure_ascii=False)
        part = ("instructions + test-bed APIs (shared by all requests)" if index == 0
                else "test query" if index == last else "demonstration (shared by this instance's queries)")
        rows.append({"position": index, "role": message.get("role"), "part": part, "content": content or ""})
    if prompt.tools:
        rows.append({"position": len(rows), "role": "(tools parameter)", "part": "test-bed APIs as OpenAI tools",
                     "content": json.dumps(list(prompt.tools), ensure_ascii=False)})
    return pd.DataFrame(rows, columns=["position", "role", "part", "content"])


def cost_plan_table(
    instances_by_file: Mapping[str, Sequence[Instance]],
    testbed: TestBed,
    *,
    model: str,
    call_format: str = "json",
    price_per_1m_input: float | None = None,
    price_per_1m_output: float | None = None,
    expected_output_tokens: int | None = None,
) -> pd.DataFrame:
    """One row per file (+ a total row): instances, requests, estimated tokens and cost of full ICE.

    Nothing is sent and no cache is consulted; the estimate is :func:`toolqual_utils.ice.engine.plan_cost`,
    the same as ``toolqual ice --plan`` (``expected_output_tokens`` defaults to its
    ``PLAN_ANSWER_TOKENS``). ``est_cost_usd`` is NaN when no prices are given.
    """
    from ..llm import LLMClient, LLMConfig
    from .engine import PLAN_ANSWER_TOKENS, build_requests, plan_cost

    prices = None
    if price_per_1m_input is not None and price_per_1m_output is not None:
        prices = {model: (float(price_per_1m_input), float(price_per_1m_output))}
    client = LLMClient(LLMConfig(model=model, cache_path=None, prices=prices))
    rows = []
    for name, instances in instances_by_file.items():
        _, requests = build_requests(instances, testbed, call_format)  # type: ignore[arg-type]
        plan = plan_cost(client, requests, answer_tokens=expected_output_tokens or PLAN_ANSWER_TOKENS)
        rows.append({
            "file": name, "n_instances": len(instances),
            "n_with_gold_calls": sum(inst.calls is not None for inst in instances),
            "n_requests": plan.n_requests, "est_prompt_tokens": plan.est_prompt_tokens,
            "est_completion_tokens": plan.est_completion_tokens,
            "est_cost_usd": plan.est_cost_usd if plan.est_cost_usd is not None else float("nan"),
        })
    table = pd.DataFrame(rows, columns=["file", "n_instances", "n_with_gold_calls", "n_requests",
                                        "est_prompt_tokens", "est_completion_tokens", "est_cost_usd"])
    if len(table):
        total = {"file": "total", **{c: int(table[c].sum()) for c in table.columns[1:-1]},
                 "est_cost_usd": table["est_cost_usd"].sum(min_count=1)}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table


def query_summary(per_query: pd.DataFrame) -> pd.DataFrame:
    """One row per test query: scored answers, mean similarity, mean strict match, parse errors.

    Shows which queries separate teachers (a query every instance solves, or none does, carries
    little signal). Empty input -> empty frame with the columns.
    """
    columns = ["query_id", "n_scored", "mean_similarity", "mean_strict", "n_parse_errors", "n_unscored"]
    if per_query.empty:
        return pd.DataFrame(columns=columns)
    status = per_query["status"].astype(str)
    unscored = status.map(Status.is_unscored).astype(bool)
    scored = per_query[~unscored]
    table = pd.DataFrame({
        "n_scored": scored.groupby("query_id").size(),
        "mean_similarity": scored.groupby("query_id")["similarity"].mean(),
        "mean_strict": scored.groupby("query_id")["strict"].mean(),
        "n_parse_errors": per_query.assign(pe=status.eq(Status.PARSE_ERROR)).groupby("query_id")["pe"].sum(),
        "n_unscored": per_query.assign(u=unscored).groupby("query_id")["u"].sum(),
    }).reset_index().rename(columns={"index": "query_id"})
    return table.reindex(columns=columns)


def live_endpoint_from_env() -> dict[str, Any] | None:
    """``LLMConfig`` keyword arguments (model, base URL, key variable name and wire options, from
    :func:`toolqual_utils.llm.endpoint_from_env` with role ``ice``) when ``TOOLQUAL_ICE_MODEL`` is set and a
    request could be sent (the key is set, or the base URL is a local server), else None. Only names, URLs
    and options are returned, never the key."""
    from ..llm import endpoint_from_env

    endpoint = endpoint_from_env("ice")
    return endpoint.config_kwargs() if endpoint.model and endpoint.can_send else None
