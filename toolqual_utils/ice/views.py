"""Tables for the ICE notebook (04): the test bed, one rendered prompt, the planned cost, query summary,
and :func:`ice_results_section`, which decides where the plotted results come from (a results file, a
live run against the configured target model, or none) so the notebook only displays.

Each table function returns a DataFrame at a stated grain; the notebook only displays them.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


# --- the results section of notebook 04 ------------------------------------------------------------


@dataclass
class IceResultsSection:
    """What notebook 04 shows under "ICE score distributions" (like ``judge.report.ModelJudgeSection``).

    Attributes:
        status: ``"file"`` (a results file), ``"live"`` (a run against the configured target model) or
            ``"none"`` (neither: the page says how to get results).
        per_instance: one row per instance (``ice_score``, ``strict_score``, ``status``, ``source``, ...).
        per_query: one row per instance x test query, when available.
        origin: where the results come from, in words (for the page and the provenance).
        ledger: the model calls of a live run (cache hits, tokens, cost).
        message: what to do when there are no results.
        target_model: the target model's name (live runs), else None.
    """

    status: str
    per_instance: pd.DataFrame | None = None
    per_query: pd.DataFrame | None = None
    origin: str = ""
    ledger: pd.DataFrame | None = None
    message: str = ""
    target_model: str | None = None

    @property
    def scored(self) -> pd.DataFrame | None:
        """The per-instance rows with status ``ok`` (all rows when the table has no status)."""
        if self.per_instance is None:
            return None
        if "status" not in self.per_instance:
            return self.per_instance
        return self.per_instance.loc[self.per_instance["status"].astype(str) == Status.OK]


NO_RESULTS_MESSAGE = (
    "No ICE results to plot. Either run `toolqual ice DATA.jsonl --model M [--base-url URL] --out results/ice.csv` "
    "and set the parameter ice_results_path = \"results/ice.csv\", or set the environment variables "
    "TOOLQUAL_ICE_MODEL (target model name) and OPENAI_API_KEY and/or TOOLQUAL_BASE_URL (an OpenAI-compatible "
    "endpoint) before rendering this notebook to score live_data_path here."
)


def _queries_file(results: Path) -> Path:
    return results.with_name(f"{results.stem}.queries{results.suffix}")


def ice_results_section(
    *,
    ice_results_path: str | os.PathLike[str] | None,
    live_instances: Callable[[], Sequence[Instance]],
    testbed: TestBed,
    call_format: str = "json",
    live_description: str = "the data",
    endpoint: Mapping[str, Any] | None | Literal["env"] = "env",
    root: str | os.PathLike[str] | None = None,
) -> IceResultsSection:
    """The ICE results notebook 04 plots: from a results file, else a live run, else none (with why).

    Args:
        ice_results_path: the per-instance table ``toolqual ice --out`` wrote (relative to ``root``); its
            ``<stem>.queries<suffix>`` sibling is read too when present. Empty: no file.
        live_instances: called only for a live run; returns the instances to score (already capped).
        testbed: the ICE test bed.
        call_format: ``json``, ``react`` or ``tools``.
        live_description: what ``live_instances`` are, in words (for the origin line).
        endpoint: ``LLMConfig`` keyword arguments of the target model; ``"env"`` (default) reads them with
            :func:`live_endpoint_from_env` (``TOOLQUAL_ICE_MODEL`` and a key or a local base URL).
        root: the project root for a relative ``ice_results_path`` (default: the working directory).

    Raises:
        ConfigError: ``ice_results_path`` is set but no such file exists.
    """
    from ..io import read_table

    if ice_results_path:
        path = Path(ice_results_path)
        path = path if path.is_absolute() else Path(root or os.getcwd()) / path
        if not path.is_file():
            from ..errors import ConfigError

            raise ConfigError(f"ice_results_path = {str(ice_results_path)!r}: no such file (paths are relative to "
                              "the project root)")
        queries = _queries_file(path)
        return IceResultsSection("file", per_instance=read_table(path),
                                 per_query=read_table(queries) if queries.is_file() else None,
                                 origin=f"results file {ice_results_path}")
    config = live_endpoint_from_env() if endpoint == "env" else endpoint
    if not config:
        return IceResultsSection("none", message=NO_RESULTS_MESSAGE)
    from ..llm import LLMClient, LLMConfig
    from .engine import run_ice

    instances = list(live_instances())
    client = LLMClient(LLMConfig(**config))
    run = run_ice(instances, testbed, client, call_format=call_format, progress=False)  # type: ignore[arg-type]
    model = str(config.get("model"))
    return IceResultsSection("live", per_instance=run.per_instance, per_query=run.per_query,
                             origin=f"live run of {model} on {len(instances)} instances of {live_description}",
                             ledger=run.ledger, target_model=model)


BUNDLED_PROBE = "data/judge_runs/ice-v1-probe/ice.csv"
PROBE_COLUMNS = ("instance_id", "source", "n_scored", "ice_score", "ci_low", "ci_high", "strict_score", "status")


@dataclass
class IceProbe:
    """Real ICE answers bundled with the project: one model as the target, a few instances (notebook 04
    shows them beside the user's own results, labelled; they are never mixed into those).

    Attributes:
        per_instance: one row per instance (:data:`PROBE_COLUMNS` that the file has).
        per_query: one row per test query (:func:`query_summary`), when the ``.queries`` table is there.
        target_model: the target model as the results name it.
        origin: where the answers come from, in words.
    """

    per_instance: pd.DataFrame
    per_query: pd.DataFrame | None
    target_model: str
    origin: str


def ice_probe(path: str | os.PathLike[str] | None = BUNDLED_PROBE, *,
              root: str | os.PathLike[str] | None = None) -> IceProbe | None:
    """The bundled real-model ICE probe (``data/judge_runs/ice-v1-probe``: a frontier chat model answered
    the 14 test-bed queries with each of 3 bundled instances as its demonstration, through exported Batch
    requests imported with ``toolqual ice --import-batch``). None when ``path`` is empty.

    Raises:
        ConfigError: ``path`` is set but no such file exists (relative paths are read from ``root``).
    """
    from ..io import read_table

    if not path:
        return None
    file = Path(path)
    file = file if file.is_absolute() else Path(root or os.getcwd()) / file
    if not file.is_file():
        from ..errors import ConfigError

        raise ConfigError(f"ice_probe_path = {str(path)!r}: no such file (paths are relative to the project root)")
    table = read_table(file)
    queries = _queries_file(file)
    models = sorted(table["target_model"].astype(str).unique()) if "target_model" in table else []
    shown = table.reindex(columns=[c for c in PROBE_COLUMNS if c in table.columns])
    return IceProbe(
        per_instance=shown.sort_values("ice_score", ascending=False, kind="stable").reset_index(drop=True),
        per_query=query_summary(read_table(queries)) if queries.is_file() else None,
        target_model=", ".join(models) or "unnamed",
        origin=f"{len(table)} instance(s) scored by one real target model ({', '.join(models) or 'unnamed'}) "
               f"from {file.parent.name}/{file.name}: recorded answers, not a run of this page",
    )


def example_instance(data: Any, instance_id: str = "") -> Instance | None:
    """The instance whose ICE prompt notebook 04 shows: ``instance_id`` among the instances with gold
    calls of ``data`` (a ``LoadedData`` or a list of instances), else the first with gold calls; None when
    none has gold calls (an ICE demonstration needs its call sequence)."""
    instances = getattr(data, "instances", data)
    with_calls = [instance for instance in instances if instance.calls is not None]
    if instance_id:
        chosen = next((instance for instance in with_calls if instance.id == instance_id), None)
        if chosen is not None:
            return chosen
    return with_calls[0] if with_calls else None
