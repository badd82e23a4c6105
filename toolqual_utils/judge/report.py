"""The model-judge section of the criterion-scoring report: where model verdicts come from, if anywhere.

Order of sources (:func:`model_judge_section`):

1. ``judge_verdicts_path`` (a notebook parameter): a verdict table written by ``toolqual judge``; the
   model name and prompt ids are read from the file.
2. The environment (never notebook parameters, so no secret reaches papermill's output):
   ``TOOLQUAL_JUDGE_MODEL`` names the model; with ``OPENAI_API_KEY`` set, or ``TOOLQUAL_BASE_URL`` /
   ``OPENAI_BASE_URL`` pointing at a local server, the judge runs live (through the cache); with
   ``TOOLQUAL_JUDGE_REPLAY=1`` it answers from the cache only (offline; misses are
   ``unscored:not_cached``).
3. ``bundled_verdicts_path``: the bundled real-model verdicts (``data/judge_runs/``), shown for the
   instances they cover, labelled as one real model's answers to the prompt version they name.
4. Otherwise nothing runs and :attr:`ModelJudgeSection.message` says exactly what to set.

Verdicts from a file are restricted to the instances being reported; a file that covers none of them is
skipped (with a note), so a report on your own data never shows another dataset's verdicts.

Secrets are only ever read by :mod:`toolqual_utils.llm`; this module checks whether variables are SET
and names them, never shows their values.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from ..llm import endpoint_from_env
from ..schema import CRITERIA, Instance
from .summary import judge_identity, read_verdicts, sample_per_source

SectionStatus = Literal["verdicts_file", "bundled_run", "live", "replay", "not_configured"]


@dataclass
class ModelJudgeSection:
    """What the report's model-judge section shows.

    Attributes:
        status: where verdicts came from (``not_configured`` = none).
        verdicts: verdict table (``VERDICT_COLUMNS``) or None.
        description: one sentence naming the source, model(s) and prompt ids.
        message: what to set to get model verdicts (when ``not_configured``), else "".
        judge_models, prompt_ids: read from the verdicts (never assumed).
        calls_per_instance, ledger: for live/replay runs.
    """

    status: SectionStatus
    verdicts: pd.DataFrame | None = None
    description: str = ""
    message: str = ""
    judge_models: list[str] = field(default_factory=list)
    prompt_ids: list[str] = field(default_factory=list)
    calls_per_instance: pd.DataFrame | None = None
    ledger: pd.DataFrame | None = None

    @property
    def source_phrase(self) -> str:
        """Where the verdicts come from, in a few words (for a page's summary line)."""
        return {
            "bundled_run": "bundled real-model run: one model's recorded verdicts",
            "verdicts_file": "model verdicts read from a file",
            "live": "model judge run live",
            "replay": "model judge answered from the cache",
        }.get(self.status, "no model verdicts")


def how_to_configure(cache_path: str) -> str:
    """The message shown when no model verdicts are available (variable names only)."""
    return (
        "No model judge is configured, so this section shows no model verdicts. To run it, set in the "
        "environment (never as notebook parameters): TOOLQUAL_JUDGE_MODEL=<model name, e.g. gpt-4o-mini> and "
        "OPENAI_API_KEY=<key>, or TOOLQUAL_BASE_URL=<http://localhost:8000/v1> for a local OpenAI-compatible "
        f"server. To render from earlier answers without calling a model, set TOOLQUAL_JUDGE_MODEL and "
        f"TOOLQUAL_JUDGE_REPLAY=1 (cache: {cache_path}; keep TOOLQUAL_BASE_URL as in the run that filled it, "
        "since answers are cached per endpoint). Or pass a verdict table written by `toolqual judge "
        "... --out FILE` as the parameter judge_verdicts_path. For OpenAI reasoning models also set "
        "TOOLQUAL_TOKEN_LIMIT_PARAM=max_completion_tokens and TOOLQUAL_NO_TEMPERATURE=1."
    )


def _from_file(path: str, instances: Sequence[Instance], status: SectionStatus, what: str) -> ModelJudgeSection:
    """Verdicts of a file restricted to the reported instances (no verdicts + a note when it covers none)."""
    verdicts = read_verdicts(path)
    ids = {instance.id for instance in instances}
    verdicts = verdicts.loc[verdicts["instance_id"].astype(str).isin(ids)].reset_index(drop=True)
    if verdicts.empty:
        return ModelJudgeSection(status, message=f"The verdicts in {path} cover none of the instances of this report.")
    identity = judge_identity(verdicts)
    models = ", ".join(identity["judge_models"]) or "no model (rules only)"
    n_covered = verdicts["instance_id"].nunique()
    return ModelJudgeSection(
        status, verdicts,
        f"{what} {path}: judge model(s) {models}; prompt ids {', '.join(identity['prompt_ids']) or '-'}; "
        f"{n_covered:,} of the {len(ids):,} instances of this report.",
        judge_models=identity["judge_models"], prompt_ids=identity["prompt_ids"],
    )


def environment_mode(environ: Mapping[str, str], cache_path: str) -> tuple[SectionStatus, str | None]:
    """(``live`` | ``replay`` | ``not_configured``, model name) from the environment
    (:func:`toolqual_utils.llm.endpoint_from_env` with role ``judge``)."""
    endpoint = endpoint_from_env("judge", environ)
    if endpoint.model is None:
        return "not_configured", None
    if endpoint.replay:
        return "replay", endpoint.model
    if endpoint.can_send:
        return "live", endpoint.model
    if Path(cache_path).is_file():
        return "replay", endpoint.model
    return "not_configured", endpoint.model


def model_judge_section(
    instances: Sequence[Instance],
    rule_verdicts: pd.DataFrame | None,
    *,
    judge_verdicts_path: str = "",
    cache_path: str = ".toolqual_cache/llm.sqlite",
    sample_size_per_source: int = 5,
    mode: Literal["combined", "per_criterion"] = "combined",
    criteria: Sequence[str] = CRITERIA,
    environ: Mapping[str, str] | None = None,
    progress: bool = False,
    bundled_verdicts_path: str = "",
) -> ModelJudgeSection:
    """Model verdicts for the report, from a file, a live/replayed run, or nothing (see module doc).

    A live or replayed run judges a deterministic sample (:func:`sample_per_source`) with the rules
    verdicts first, so the report's cost is bounded and a replay asks exactly what the live run asked.
    """
    if judge_verdicts_path:
        section = _from_file(judge_verdicts_path, instances, "verdicts_file", "Verdicts read from")
        if section.verdicts is not None:
            return section
        return ModelJudgeSection("not_configured", message=section.message)
    environ = os.environ if environ is None else environ
    status, model = environment_mode(environ, cache_path)
    if status == "not_configured" and bundled_verdicts_path and Path(bundled_verdicts_path).is_file():
        section = _from_file(bundled_verdicts_path, instances, "bundled_run",
                             "Bundled real-model verdicts (one model's recorded answers, not labels) from")
        if section.verdicts is not None:
            return section
    if status == "not_configured":
        message = how_to_configure(cache_path)
        if model:
            message = (f"TOOLQUAL_JUDGE_MODEL is set ({model}), but no key or local endpoint is configured and there "
                       f"is no cache file at {cache_path}. ") + message
        return ModelJudgeSection("not_configured", message=message)

    from .engine import judge

    sample = sample_per_source(instances, sample_size_per_source)
    config = endpoint_from_env("judge", environ).config(mode="replay" if status == "replay" else "live",
                                                         cache_path=cache_path)
    run = judge(sample, config, criteria, mode, rule_verdicts, progress=progress)
    identity = judge_identity(run.verdicts)
    how = "answered from the cache only (replay)" if status == "replay" else "run live through the cache"
    return ModelJudgeSection(
        status, run.verdicts,
        f"Model judge {model} {how} on {len(sample)} instances ({sample_size_per_source} per source), "
        f"{mode} prompts: {', '.join(run.prompt_ids) or '-'}; rules decided first.",
        judge_models=identity["judge_models"] or [model], prompt_ids=run.prompt_ids,
        calls_per_instance=run.calls_per_instance, ledger=run.ledger,
    )
