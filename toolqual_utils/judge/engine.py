"""The model judge: rules first, then one cached model request per instance (or per criterion).

Layers, in the order they decide (the ``judge`` column of the verdict table says which one did):

1. **Rules** (``toolqual_utils.checks``, ``judge="rules"``): a rules verdict with status ``ok`` is
   *decided* — that criterion is not sent to the model unless ``recheck=True``. That is every label 0,
   and the few label-1 rows the checks emit only where a pass is reliable by construction (no calls
   means nothing misaligned; one call cannot be redundant; BFCL irrelevance). Unscored rules rows
   (``needs_model``) are not decisions, and neither are ``judge="heuristic"`` rows: the model is asked.
2. **Engine code** (``judge="engine"``, ``prompt_id="judge_engine.v1"``): what the judge settles without
   a model (see :func:`toolqual_utils.judge.decide.pre_decide`): sequence criteria without gold calls
   (``unscored:not_applicable``), one-sentence instructions (coherent), parameter alignment when every
   argument is found in the instruction / schema default / is a credential (aligned) or a required
   parameter is absent (error).
3. **Model** (``judge=<model name>``), through :class:`toolqual_utils.llm.LLMClient` (cache, retries,
   ledger). ``mode="combined"``: one ``judge_combined.v<N>`` request per instance that asks ONLY the
   criteria still undecided (its JSON schema requires exactly those keys); an instance with nothing
   left to ask is not sent at all. ``mode="per_criterion"``: one request per undecided criterion (v1:
   the criterion's own prompt ``specificity.v1`` …; v2: ``judge_combined.v2`` asking that one criterion).
4. **Offline heuristic, combined** (``judge="heuristic"``): where the offline layer is more reliable than
   a model — coherence of requests glued together from unrelated tool groups — a model verdict
   "coherent" is overridden when the heuristic found disconnected requests (the model's answer is kept
   in the evidence). ``combine_heuristics=False`` turns this off.

Confidence (:mod:`.votes`): ``samples=N`` asks every request N times at a temperature above 0 (each
sample cached on its own), ``judges=[M1, M2, ...]`` asks every model; the answers of each (instance,
criterion) vote, by majority or unanimity, and the verdict records ``confidence`` (share of agreeing
votes) and ``n_votes``. One answer gives confidence 1.0 from one vote.

Prompt versions: v2 (``judge_combined.v2``, the default) follows the annotation guide's rulings and asks
structured parts per request/argument/call; v1 (``judge_combined.v1`` and the per-criterion v1 prompts)
is kept unchanged so the bundled v1 answers stay matched to their requests.

Statuses: the client's ``unscored:refusal|truncated|api_error|not_cached`` pass through; a reply that
does not validate is ``unscored:parse_error`` with the raw reply kept in ``rationale`` and
``evidence``. Unscored rows have label None and are never counted as pass or fail. With ``recheck``,
a model verdict that comes back unscored falls back to the rules verdict it was re-checking.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import InputError
from ..llm import RESPONSE_FORMATS, ChatRequest, ChatResult, LLMClient, LLMConfig, wire_form
from ..criteria import CRITERIA
from .context import InstanceContext, build_context
from .prompts import ENGINE_PROMPT_ID, load_prompt, prompt_version
from .votes import AgreementRule, aggregate_votes, panel_name
from ..verdicts import ENGINE_JUDGE, OFFLINE_JUDGES, RULES_JUDGE, VERDICT_COLUMNS, Status, decode_evidence, scored_mask, \
    verdict_frame

# The answer models (.parse, .decide) and the record schema load pydantic: the sending process imports them when
# its first answer arrives (or the planner when it plans), so that its first request is not kept waiting.
if TYPE_CHECKING:  # pandas is imported where tables are made: a streaming run sends its first request without it
    import pandas as pd

    from ..schema import Instance
    from .decide import Decision

JudgeMode = Literal["combined", "per_criterion"]
MODES: Final = ("combined", "per_criterion")

#: Prompt versions the engine can render and decide; the default is the newest.
PROMPT_VERSIONS: Final = (1, 2)
DEFAULT_PROMPT_VERSION: Final = 2
COMBINED_PROMPT_ID: Final = "judge_combined.v1"  # the v1 id (kept for callers that name it)
PER_CRITERION_PROMPT_IDS: Final[Mapping[str, str]] = {c: f"{c}.v1" for c in CRITERIA}
#: completion token limits (a longer answer is ``unscored:truncated``); v2 answers are structured and longer
DEFAULT_MAX_TOKENS: Final[Mapping[str, int]] = {"combined": 3000, "per_criterion": 1500}
DEFAULT_MAX_TOKENS_V2: Final[Mapping[str, int]] = {"combined": 4000, "per_criterion": 1500}
#: temperature of self-consistency samples (``samples`` > 1) unless one is given
DEFAULT_SAMPLE_TEMPERATURE: Final = 0.7


def combined_prompt_id(version: int = DEFAULT_PROMPT_VERSION) -> str:
    """``judge_combined.v<version>`` (raises for a version the engine does not know)."""
    if version not in PROMPT_VERSIONS:
        raise InputError(f"unknown judge prompt version {version}; use one of "
                         + ", ".join(f"v{v}" for v in PROMPT_VERSIONS), field="prompt_version")
    return f"judge_combined.v{version}"
RAW_REPLY_LIMIT: Final = 4000

CALLS_COLUMNS: Final = (
    "instance_id", "n_requests", "criteria_asked", "n_decided_by_rules", "n_decided_by_engine",
    "n_cached", "prompt_tokens", "completion_tokens",
)


@dataclass(frozen=True)
class PlannedRequest:
    """One request and what it asks: which instance, which criteria."""

    request: ChatRequest
    instance_id: str
    criteria: tuple[str, ...]
    sample_index: int = 0


@dataclass
class JudgePlan:
    """Everything decided before any model is asked, and the requests still to send.

    Attributes:
        planned: the model requests, with the instance and criteria each one asks.
        fixed: verdict rows (dicts with ``VERDICT_COLUMNS``) settled without the model: rules-decided
            and engine-decided.
        rule_rows: the decided rules verdicts by (instance_id, criterion), re-checked or not.
        contexts: instance id -> :class:`InstanceContext`.
    """

    mode: str
    criteria: tuple[str, ...]
    instance_ids: list[str]
    planned: list[PlannedRequest]
    fixed: list[dict[str, Any]]
    rule_rows: dict[tuple[str, str], dict[str, Any]]
    contexts: dict[str, InstanceContext]
    recheck: bool = False
    heuristic_rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    lenient: bool = False  # parse replies leniently (JSON found in free text): --response-format none
    samples: int = 1
    #: wire forms of the requests by custom_id, made by a planning process for the client (not kept here)
    wires: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> list[ChatRequest]:
        return [p.request for p in self.planned]

    def absorb(self, part: JudgePlan) -> list[PlannedRequest]:
        """Add one instance's plan (a part from :func:`plan_parts`) to this plan; returns its requests."""
        self.instance_ids.extend(part.instance_ids)
        self.planned.extend(part.planned)
        self.fixed.extend(part.fixed)
        self.rule_rows.update(part.rule_rows)
        self.contexts.update(part.contexts)
        self.heuristic_rows.update(part.heuristic_rows)
        return part.planned

    @property
    def prompt_ids(self) -> list[str]:
        return sorted({p.request.prompt_id for p in self.planned})


@dataclass
class JudgeRun:
    """The result of :func:`judge`.

    Attributes:
        verdicts: one row per instance x requested criterion, columns ``VERDICT_COLUMNS``; ``judge`` says
            which layer decided (``rules`` or the model name).
        model_verdicts: the model's own rows only (same columns), including re-checked ones.
        calls_per_instance: one row per instance, columns ``CALLS_COLUMNS`` (``n_requests`` = model
            requests the instance needed: 0 when everything was decided without the model).
        ledger: the client's ledger frame (requests, cache hits/misses, tokens, cost by model).
        judge_model, mode, prompt_ids: what judged (a panel's judge_model is ``panel:m1+m2``).
        results: the client's result of each model request, in plan order (statuses, tokens, errors); for a
            panel, the first model's.
        votes: every model answer as its own verdict row (columns ``VERDICT_COLUMNS`` + ``sample_index``),
            before votes were combined: one row per request x criterion x model.
        judge_models: the models asked.
        plan: the plan the run followed (set by :func:`judge_stream`, which plans as it goes; its contexts
            are dropped once the answers are parsed).
    """

    verdicts: pd.DataFrame
    model_verdicts: pd.DataFrame
    calls_per_instance: pd.DataFrame
    ledger: pd.DataFrame
    judge_model: str
    mode: str
    prompt_ids: list[str] = field(default_factory=list)
    results: list[ChatResult] = field(default_factory=list)
    votes: pd.DataFrame | None = None
    judge_models: list[str] = field(default_factory=list)
    plan: JudgePlan | None = None

    def summary(self) -> dict[str, Any]:
        """Counts for a one-line report: instances, requests, mean calls per instance, statuses."""
        calls = self.calls_per_instance
        return {
            "judge_model": self.judge_model,
            "mode": self.mode,
            "prompt_ids": list(self.prompt_ids),
            "n_instances": int(len(calls)),
            "n_requests": int(calls["n_requests"].sum()) if len(calls) else 0,
            "mean_calls_per_instance": float(calls["n_requests"].mean()) if len(calls) else 0.0,
            "status_counts": {str(k): int(v) for k, v in self.verdicts["status"].value_counts().items()},
            # only verdicts with a label were decided by someone; unscored rows are counted by their status
            "decided_by": {str(k): int(v) for k, v in
                           self.verdicts.loc[scored_mask(self.verdicts), "judge"].value_counts().items()},
        }


# --- input checks -------------------------------------------------------------------------------------


def _check_inputs(instances: Sequence[Instance], criteria: Iterable[str], mode: str) -> tuple[str, ...]:
    if mode not in MODES:
        raise InputError(f"unknown judge mode {mode!r}; use one of {', '.join(MODES)}", field="mode")
    criteria = tuple(criteria)
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown or not criteria:
        raise InputError(
            f"unknown or no criteria {unknown or list(criteria)}; choose from {', '.join(CRITERIA)}", field="criteria"
        )
    if instances:  # (none: checking the settings alone, which needs no schema)
        for _ in _unique_instances(instances):
            pass
    return tuple(c for c in CRITERIA if c in criteria)  # canonical order


def _unique_instances(instances: Iterable[Instance]) -> Iterator[Instance]:
    """The instances, as they come; raises at the first that is not an Instance or repeats an id."""
    from ..schema import Instance

    seen: set[str] = set()
    for instance in instances:
        if not isinstance(instance, Instance):
            raise InputError(f"expected canonical Instance objects, got {type(instance).__name__}")
        if instance.id in seen:
            raise InputError(
                "instance id appears twice; verdicts and request ids need unique instance ids",
                record=instance.id, field="id",
            )
        seen.add(instance.id)
        yield instance


def _decided_rule_rows(rule_verdicts: pd.DataFrame | None) -> dict[tuple[str, str], dict[str, Any]]:
    """Rules verdicts that decide a criterion: judge 'rules', status ok, label 0 or 1."""
    if rule_verdicts is None or len(rule_verdicts) == 0:
        return {}
    import pandas as pd

    missing = [c for c in ("instance_id", "criterion", "label") if c not in rule_verdicts.columns]
    if missing:
        raise InputError(
            f"rules verdict table lacks column(s) {missing}; expected the verdict columns "
            + ", ".join(VERDICT_COLUMNS)
        )
    decided: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rule_verdicts.to_dict("records"):
        judge = row.get("judge", RULES_JUDGE)
        status = row.get("status", Status.OK)
        label = row.get("label")
        if judge != RULES_JUDGE or status != Status.OK or label is None or pd.isna(label) or int(label) not in (0, 1):
            continue
        key = (str(row["instance_id"]), str(row["criterion"]))
        if key not in decided:
            kept = {c: row.get(c) for c in VERDICT_COLUMNS}
            kept["label"] = int(label)
            kept["evidence"] = decode_evidence(kept.get("evidence"))
            decided[key] = kept
    return decided


# --- rendering ----------------------------------------------------------------------------------------


def _data_values(context: InstanceContext) -> dict[str, str]:
    """Every DATA block a judge prompt may fence, by slot name (a template takes the ones it declares)."""
    return {
        "instruction": context.instruction,
        "dialogue": context.dialogue_text,
        "tools": context.tools_text,
        "calls": context.calls_text,
        "required_parameters": context.required_parameters_text(),
        "sentence_pairs": context.sentence_pairs_text(),
        "arguments": context.arguments_text(),
    }


def _fill(slots: frozenset[str], data: Mapping[str, str], params: Mapping[str, str]) -> tuple[dict, dict]:
    return ({k: v for k, v in data.items() if k in slots}, {k: v for k, v in params.items() if k in slots})


def render_messages(
    context: InstanceContext, criteria: Sequence[str], mode: JudgeMode, prompt_id: str | None = None
) -> tuple[dict[str, str], ...]:
    """The chat messages asking ``criteria`` about one instance (dataset text fenced as DATA).

    A combined prompt (``judge_combined.v<N>``) renders one task section per criterion; in v2 that is
    also how one criterion is asked in per-criterion mode. The v1 per-criterion prompts are their own files.
    """
    data = _data_values(context)
    params = {"scope_note": context.scope_note()}
    pid = prompt_id or (combined_prompt_id(context.version) if mode == "combined" or context.version >= 2
                        else PER_CRITERION_PROMPT_IDS[criteria[0]])
    template = load_prompt(pid)
    if pid.startswith("judge_combined."):
        tasks = []
        for number, criterion in enumerate(criteria, start=1):
            section = f"task:{criterion}"
            section_data, section_params = _fill(template.section_slots(section), data, params)
            text = template.render_section(section, data=section_data, params=section_params)
            tasks.append(f"{number}. {text}")
        base_data, _ = _fill(template.slots, data, {})
        return template.render(
            data=base_data,
            params={"tasks": "\n\n".join(tasks), "criteria_keys": ", ".join(f'"{c}"' for c in criteria)},
        )
    section_data, section_params = _fill(template.slots, data, params)
    return template.render(data=section_data, params=section_params)


def custom_id_for(instance_id: str, criterion: str | None) -> str:
    """Request id: ``<instance id>::combined`` or ``<instance id>::<criterion>``."""
    return f"{instance_id}::{criterion or 'combined'}"


# --- planning -----------------------------------------------------------------------------------------


def _engine_row(instance_id: str, criterion: str, decision: Decision) -> dict[str, Any]:
    return {
        "instance_id": instance_id, "criterion": criterion, "label": decision.label, "status": decision.status,
        "judge": ENGINE_JUDGE, "prompt_id": ENGINE_PROMPT_ID, "rationale": decision.rationale,
        "evidence": decision.evidence,
    }


@dataclass(frozen=True)
class _Settings:
    """What every instance of one plan is planned with (checked once)."""

    mode: str
    criteria: tuple[str, ...]
    recheck: bool
    version: int
    combined_id: str
    limit: int
    samples: int
    temperature: float | None
    response_format: str
    combine_heuristics: bool


def _settings(criteria: Iterable[str], mode: str, recheck: bool, *, max_tokens: int | None, prompt_id: str | None,
              prompt_version: int, combine_heuristics: bool, response_format: str, samples: int,
              temperature: float | None) -> _Settings:
    criteria = _check_inputs((), criteria, mode)
    if response_format not in RESPONSE_FORMATS:
        raise InputError(f"unknown response format {response_format!r}; use one of {', '.join(RESPONSE_FORMATS)}",
                         field="response_format")
    if int(samples) < 1:
        raise InputError(f"samples must be 1 or more, not {samples!r}", field="samples")
    if temperature is not None and not 0.0 <= float(temperature) <= 2.0:
        raise InputError(f"temperature must be between 0 and 2, not {temperature!r}", field="temperature")
    samples = int(samples)
    sample_temperature = (temperature if temperature is not None else (0.0 if samples == 1 else DEFAULT_SAMPLE_TEMPERATURE))
    version = prompt_version_of(prompt_id) if prompt_id else prompt_version
    combined_id = prompt_id or combined_prompt_id(version)
    limit = max_tokens if max_tokens is not None else (DEFAULT_MAX_TOKENS_V2 if version >= 2 else DEFAULT_MAX_TOKENS)[mode]
    return _Settings(mode, criteria, bool(recheck), version, combined_id, limit, samples, sample_temperature,
                     response_format, bool(combine_heuristics))


def _empty_plan(settings: _Settings) -> JudgePlan:
    return JudgePlan(settings.mode, settings.criteria, [], [], [], {}, {}, settings.recheck,
                     heuristic_rows={}, lenient=settings.response_format == "none", samples=settings.samples)


@lru_cache(maxsize=256)
def _response_schema(prompt_id: str, criteria: tuple[str, ...]) -> dict[str, Any]:
    """:func:`response_schema`, made once per (prompt, criteria asked) and shared by the requests (read-only)."""
    from .parse import response_schema

    return response_schema(prompt_id, list(criteria))


def _plan_instance(plan: JudgePlan, settings: _Settings, instance: Instance,
                   decided: Mapping[tuple[str, str], dict[str, Any]]) -> list[PlannedRequest]:
    """Add one instance to ``plan`` (its context, the verdicts settled without a model, the offline coherence
    error, the decided rules rows it keeps) and return its model requests (also appended to ``plan.planned``).
    ``decided``: the decided rules rows by (instance id, criterion)."""
    from .decide import pre_decide

    criteria, mode, version = settings.criteria, settings.mode, settings.version
    context = build_context(instance, version)
    plan.contexts[instance.id] = context
    plan.instance_ids.append(instance.id)
    if settings.combine_heuristics and "coherence" in criteria:
        heuristic = _heuristic_coherence_error(instance)
        if heuristic is not None:
            plan.heuristic_rows[(instance.id, "coherence")] = heuristic
    ask: list[str] = []
    for criterion in criteria:
        rule_row = decided.get((instance.id, criterion))
        if rule_row is not None:
            plan.rule_rows[(instance.id, criterion)] = rule_row
        decision = pre_decide(context, criterion)
        if rule_row is not None and (not settings.recheck or (decision is not None and decision.status != Status.OK)):
            plan.fixed.append(rule_row)  # decided by rules (a re-check of a not-applicable criterion is moot)
            continue
        if decision is not None and rule_row is None:
            plan.fixed.append(_engine_row(instance.id, criterion, decision))
            continue
        ask.append(criterion)
    if not ask:
        return []
    planned: list[PlannedRequest] = []
    groups = [(None, tuple(ask))] if mode == "combined" else [(c, (c,)) for c in ask]
    for criterion, asked in groups:
        pid = settings.combined_id if (mode == "combined" or version >= 2) else PER_CRITERION_PROMPT_IDS[criterion]
        messages = render_messages(context, list(asked), mode, pid)
        schema = _response_schema(pid, asked)
        base_id = custom_id_for(instance.id, criterion)
        for sample in range(settings.samples):
            request = ChatRequest(
                custom_id=base_id if settings.samples == 1 else f"{base_id}::s{sample}",
                messages=messages,
                prompt_id=pid,
                temperature=settings.temperature,
                max_tokens=settings.limit,
                response_schema=schema,
                response_format=settings.response_format,
                sample_index=sample,
            )
            planned.append(PlannedRequest(request, instance.id, asked, sample))
    plan.planned.extend(planned)
    return planned


def plan_judging(
    instances: Sequence[Instance],
    criteria: Iterable[str] = CRITERIA,
    mode: JudgeMode = "combined",
    rule_verdicts: pd.DataFrame | None = None,
    recheck: bool = False,
    *,
    max_tokens: int | None = None,
    prompt_id: str | None = None,
    prompt_version: int = DEFAULT_PROMPT_VERSION,
    combine_heuristics: bool = True,
    response_format: str = "json_schema",
    samples: int = 1,
    temperature: float | None = None,
) -> JudgePlan:
    """Decide what can be decided without a model and build the requests for the rest.

    Args:
        instances: canonical instances (unique ids).
        criteria: the criteria to judge (any subset of ``CRITERIA``).
        mode: ``"combined"`` (one request per instance, undecided criteria only) or ``"per_criterion"``.
        rule_verdicts: verdict table from ``toolqual_utils.checks.run_checks`` (or None).
        recheck: also send criteria that rules decided.
        max_tokens: completion limit per request (default: ``DEFAULT_MAX_TOKENS[mode]``, v2 its own).
        prompt_id: override the combined prompt (e.g. ``"judge_combined.v1"``); its version wins.
        prompt_version: 2 (default: the annotation guide's rulings) or 1 (the first prompts, kept as
            they were).
        combine_heuristics: override a model's "coherent" where the offline heuristic found
            disconnected requests (see the module docstring).
        response_format: ``"json_schema"`` (structured output, default), ``"json_object"`` or ``"none"``
            for servers without json_schema support; with ``"none"`` replies are parsed leniently (the
            first JSON object in the text). Part of each request, so of its cache key.
        samples: answers per request (self-consistency): N > 1 sends each request N times with
            ``sample_index`` 0..N-1 (its own cache entry) at ``temperature`` (default 0.7); 1 = one greedy
            answer (temperature 0 unless ``temperature`` says otherwise).
        temperature: sampling temperature (see ``samples``).

    Returns:
        A :class:`JudgePlan`. Empty input gives an empty plan.
    """
    instances = list(instances)
    _check_inputs(instances, criteria, mode)
    settings = _settings(criteria, mode, recheck, max_tokens=max_tokens, prompt_id=prompt_id,
                         prompt_version=prompt_version, combine_heuristics=combine_heuristics,
                         response_format=response_format, samples=samples, temperature=temperature)
    decided = _decided_rule_rows(rule_verdicts)
    plan = _empty_plan(settings)
    for instance in instances:
        _plan_instance(plan, settings, instance, decided)
    return plan


def prompt_version_of(prompt_id: str) -> int:
    """The version of a judge prompt id, checked against what the engine knows."""
    try:
        version = prompt_version(prompt_id)
    except ValueError as exc:
        raise InputError(str(exc), field="prompt_id") from None
    if version not in PROMPT_VERSIONS:
        combined_prompt_id(version)  # raises with the known versions
    return version


def _heuristic_coherence_error(instance: Instance) -> dict[str, Any] | None:
    """The offline coherence error (disconnected requests) of one instance as a verdict dict, or None."""
    from ..heuristics import coherence_row

    row = coherence_row(instance)
    if row.status != Status.OK or row.label != 0:
        return None
    return {**row.as_record(), "label": 0, "evidence": decode_evidence(row.evidence)}


def build_requests(
    instances: Sequence[Instance],
    criteria: Iterable[str] = CRITERIA,
    mode: JudgeMode = "combined",
    rule_verdicts: pd.DataFrame | None = None,
    recheck: bool = False,
    **options: Any,
) -> list[ChatRequest]:
    """The model requests :func:`judge` would send (see :func:`plan_judging`), in instance order."""
    return plan_judging(instances, criteria, mode, rule_verdicts, recheck, **options).requests


# --- from results to verdicts -------------------------------------------------------------------------


def _raw(text: str | None) -> str:
    if text is None:
        return ""
    return text if len(text) <= RAW_REPLY_LIMIT else text[:RAW_REPLY_LIMIT] + f"… [{len(text) - RAW_REPLY_LIMIT} more chars]"


def _model_row(
    instance_id: str, criterion: str, judge_model: str, prompt_id: str, label: int | None, status: str,
    rationale: str, evidence: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "instance_id": instance_id, "criterion": criterion, "label": label, "status": status,
        "judge": judge_model, "prompt_id": prompt_id, "rationale": rationale, "evidence": evidence,
    }


def _rows_for_result(plan: JudgePlan, item: PlannedRequest, result: ChatResult, judge_model: str) -> list[dict]:
    prompt_id = item.request.prompt_id
    context = plan.contexts[item.instance_id]
    if not result.ok:
        reason = result.error or result.status
        evidence = [{"check": "model_call", "status": result.status, "error": result.error,
                     "raw_reply": _raw(result.text)}]
        return [
            _model_row(item.instance_id, c, judge_model, prompt_id, None, result.status, reason, evidence)
            for c in item.criteria
        ]
    from .decide import decide
    from .parse import ParseFailure, parse_answer, parse_combined

    version = prompt_version(prompt_id)
    if prompt_id.startswith("judge_combined."):
        parsed = parse_combined(result.text, item.criteria, version, lenient=plan.lenient)
    else:
        (criterion,) = item.criteria
        try:
            parsed = {criterion: parse_answer(criterion, result.text, version, lenient=plan.lenient)}
        except ParseFailure as failure:
            parsed = {criterion: failure}
    rows = []
    for criterion in item.criteria:
        answer = parsed[criterion]
        if not isinstance(answer, ParseFailure):
            try:
                decision = decide(criterion, answer, context)
            except ParseFailure as failure:
                answer = failure
            else:
                rows.append(
                    _model_row(item.instance_id, criterion, judge_model, prompt_id, decision.label, decision.status,
                               decision.rationale, decision.evidence)
                )
                continue
        rows.append(
            _model_row(
                item.instance_id, criterion, judge_model, prompt_id, None, Status.UNSCORED_PARSE_ERROR,
                f"parse_error: {answer.reason}. Raw reply: {_raw(result.text)}",
                [{"check": "parse", "error": answer.reason, "raw_reply": _raw(result.text)}],
            )
        )
    return rows


def _heuristic_override(heuristic: dict[str, Any], model_row: dict[str, Any]) -> dict[str, Any]:
    """The offline heuristic's coherence error replaces a model's "coherent" (the model's view kept)."""
    row = dict(heuristic)
    row["rationale"] = (f"{heuristic['rationale']} (offline heuristic; the model {model_row['judge']} found the "
                        f"requests related: {model_row['rationale']})")
    row["evidence"] = [*heuristic["evidence"], {"check": "model_answer", "judge": model_row["judge"],
                                                "prompt_id": model_row["prompt_id"], "label": 1,
                                                "rationale": model_row["rationale"]}]
    return row


def collect_verdicts(
    plan: JudgePlan,
    results: Sequence[ChatResult] | Mapping[str, Sequence[ChatResult]],
    judge_model: str | None = None,
    *,
    agreement: AgreementRule = "majority",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Turn results (in plan request order) into (verdicts, model_verdicts, calls_per_instance).

    ``results`` are one model's (named ``judge_model``), or ``{model: results}`` for a panel. Every answer
    is a vote; the votes of an (instance, criterion) — samples and models — combine by ``agreement``
    (:func:`toolqual_utils.judge.votes.aggregate_votes`); a single vote stands as it is.

    ``verdicts`` has one row per instance x plan criterion, instance order as given, criteria in
    canonical order. Merge rule: a model verdict that is ok wins; else a re-checked rules verdict
    stands; else the model's unscored row. Criteria settled without the model keep their rules/engine row.
    ``model_verdicts`` holds the (combined) model rows.
    """
    by_model = dict(results) if isinstance(results, Mapping) else {str(judge_model): results}
    return _collect(plan, by_model, _vote_rows(plan, by_model), agreement)


def _collect(plan: JudgePlan, by_model: Mapping[str, Sequence[ChatResult]], votes: list[dict[str, Any]],
             agreement: AgreementRule) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`collect_verdicts` from the vote rows already made (:func:`_vote_rows`; the streaming judge makes
    them as answers arrive). Reads no instance context."""
    import pandas as pd

    model_rows = _combine_votes(votes, list(by_model), agreement)
    usage: dict[str, dict[str, Any]] = {}
    for model_results in by_model.values():
        for item, result in zip(plan.planned, model_results):
            counts = usage.setdefault(item.instance_id, {"n_requests": 0, "n_cached": 0, "prompt_tokens": 0,
                                                         "completion_tokens": 0, "asked": []})
            counts["n_requests"] += 1
            counts["n_cached"] += int(bool(result.cached))
            counts["prompt_tokens"] += int(result.prompt_tokens)
            counts["completion_tokens"] += int(result.completion_tokens)
            counts["asked"].extend(item.criteria)

    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in plan.fixed:
        by_key[(row["instance_id"], row["criterion"])] = row
    for row in model_rows:
        key = (row["instance_id"], row["criterion"])
        rule_row = plan.rule_rows.get(key)
        if row["status"] != Status.OK and rule_row is not None:
            by_key[key] = rule_row  # the re-check failed: the rules decision stands
        else:
            by_key[key] = row
    for key, heuristic in plan.heuristic_rows.items():
        current = by_key.get(key)
        if current is not None and current["status"] == Status.OK and current["label"] == 1 and \
                current["judge"] not in OFFLINE_JUDGES:
            by_key[key] = _heuristic_override(heuristic, current)
    merged = [by_key[(i, c)] for i in plan.instance_ids for c in plan.criteria if (i, c) in by_key]

    fixed_judges: dict[str, dict[str, int]] = {}
    for row in plan.fixed:
        per = fixed_judges.setdefault(row["instance_id"], {"rules": 0, "engine": 0})
        per["engine" if row.get("prompt_id") == ENGINE_PROMPT_ID else "rules"] += 1
    calls_rows = []
    for instance_id in plan.instance_ids:
        counts = usage.get(instance_id, {"n_requests": 0, "n_cached": 0, "prompt_tokens": 0,
                                         "completion_tokens": 0, "asked": []})
        per = fixed_judges.get(instance_id, {"rules": 0, "engine": 0})
        calls_rows.append(
            {
                "instance_id": instance_id,
                "n_requests": counts["n_requests"],
                "criteria_asked": ",".join(dict.fromkeys(counts["asked"])),
                "n_decided_by_rules": per["rules"],
                "n_decided_by_engine": per["engine"],
                "n_cached": counts["n_cached"],
                "prompt_tokens": counts["prompt_tokens"],
                "completion_tokens": counts["completion_tokens"],
            }
        )
    return verdict_frame(merged), verdict_frame(model_rows), pd.DataFrame(calls_rows, columns=list(CALLS_COLUMNS))


def _vote_rows(plan: JudgePlan, by_model: Mapping[str, Sequence[ChatResult]]) -> list[dict[str, Any]]:
    """One row per model answer x criterion (a vote), with its ``sample_index``."""
    votes: list[dict[str, Any]] = []
    for model, model_results in by_model.items():
        if len(model_results) != len(plan.planned):
            raise ValueError(f"expected {len(plan.planned)} results of {model}, got {len(model_results)}")
        for item, result in zip(plan.planned, model_results):
            if result.custom_id != item.request.custom_id:
                raise ValueError(f"result {result.custom_id!r} does not match request {item.request.custom_id!r}")
            for row in _rows_for_result(plan, item, result, model):
                row["sample_index"] = item.sample_index
                votes.append(row)
    return votes


def _combine_votes(votes: list[dict[str, Any]], models: list[str], agreement: AgreementRule) -> list[dict[str, Any]]:
    """The model verdict per (instance, criterion): the one vote as it is, or the votes combined."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for vote in votes:
        grouped.setdefault((vote["instance_id"], vote["criterion"]), []).append(vote)
    return [
        {k: v for k, v in group[0].items() if k != "sample_index"} if len(group) == 1
        else aggregate_votes(group, rule=agreement, judge=panel_name(models))
        for group in grouped.values()
    ]


def _run(plan: JudgePlan, clients: Sequence[LLMClient], results: Mapping[str, Sequence[ChatResult]],
         agreement: AgreementRule = "majority", votes: list[dict[str, Any]] | None = None) -> JudgeRun:
    import pandas as pd

    if votes is None:
        votes = _vote_rows(plan, results)
    verdicts, model_verdicts, calls = _collect(plan, results, votes, agreement)
    models = list(results)
    vote_frame = verdict_frame(votes)
    vote_frame["sample_index"] = [v["sample_index"] for v in votes]
    ledgers = [client.ledger.to_frame() for client in clients]
    return JudgeRun(
        verdicts=verdicts, model_verdicts=model_verdicts, calls_per_instance=calls,
        ledger=pd.concat(ledgers, ignore_index=True) if len(ledgers) > 1 else ledgers[0],
        judge_model=panel_name(models), mode=plan.mode, prompt_ids=plan.prompt_ids,
        results=list(next(iter(results.values()), [])), votes=vote_frame, judge_models=models,
    )


def judge(
    instances: Sequence[Instance],
    config: LLMConfig,
    criteria: Iterable[str] = CRITERIA,
    mode: JudgeMode = "combined",
    rule_verdicts: pd.DataFrame | None = None,
    recheck: bool = False,
    *,
    client: LLMClient | None = None,
    progress: bool = True,
    max_tokens: int | None = None,
    prompt_version: int = DEFAULT_PROMPT_VERSION,
    combine_heuristics: bool = True,
    response_format: str = "json_schema",
    plan: JudgePlan | None = None,
    samples: int = 1,
    temperature: float | None = None,
    judges: Sequence[str] | None = None,
    agreement: AgreementRule = "majority",
) -> JudgeRun:
    """Judge instances on the intrinsic criteria: rules first, then the model (cached) for the rest.

    Args:
        instances: canonical instances (unique ids).
        config: model endpoint and cache (``mode="replay"`` answers from the cache only).
        criteria: criteria to judge (default all six).
        mode: ``"combined"`` or ``"per_criterion"`` (see the module docstring).
        rule_verdicts: rules verdict table (its status-ok rows are decided and not re-asked).
        recheck: re-ask criteria that rules decided (an ok model answer then replaces the rules row).
        client: reuse an existing client (its ledger accumulates); default a new one from ``config``.
        progress: show a progress bar.
        max_tokens: completion limit per request.
        prompt_version: 2 (default) or 1.
        combine_heuristics: let the offline coherence heuristic override a model's "coherent".
        plan: the :func:`plan_judging` result for these same arguments, when the caller already has it
            (``toolqual judge`` plans first to print it); planning is then not repeated.
        samples, temperature: self-consistency (see :func:`plan_judging`).
        judges: a panel: ask each of these models (same endpoint and cache) instead of ``config.model``.
        agreement: how votes combine: ``"majority"`` (default) or ``"unanimous"``.

    Returns:
        :class:`JudgeRun`. Labels: 1 holds, 0 error, None unscored (see ``status``). Empty input ->
        empty frames with their columns.
    """
    if plan is None:
        plan = plan_judging(instances, criteria, mode, rule_verdicts, recheck, max_tokens=max_tokens,
                            prompt_version=prompt_version, combine_heuristics=combine_heuristics,
                            response_format=response_format, samples=samples, temperature=temperature)
    models = list(dict.fromkeys(judges)) if judges else [config.model]
    if client is not None and (len(models) > 1 or models[0] != client.config.model):
        raise InputError("a panel of judges builds one client per model: pass config, not client", field="judges")
    clients = [client] if client is not None else [LLMClient(replace(config, model=m)) for m in models]
    try:
        results = {c.config.model: (c.complete(plan.requests, progress=progress) if plan.requests else [])
                   for c in clients}
        return _run(plan, clients, results, agreement)
    finally:
        if client is None:
            for own in clients:
                own.close()


def judge_from_batch(
    instances: Sequence[Instance],
    config: LLMConfig,
    result_paths: Sequence[str],
    criteria: Iterable[str] = CRITERIA,
    mode: JudgeMode = "combined",
    rule_verdicts: pd.DataFrame | None = None,
    recheck: bool = False,
    *,
    client: LLMClient | None = None,
    max_tokens: int | None = None,
    prompt_version: int = DEFAULT_PROMPT_VERSION,
    combine_heuristics: bool = True,
    response_format: str = "json_schema",
    plan: JudgePlan | None = None,
    samples: int = 1,
    temperature: float | None = None,
    agreement: AgreementRule = "majority",
) -> JudgeRun:
    """Verdicts from OpenAI Batch result files (same planning, parsing and cache as :func:`judge`).

    The requests are rebuilt from the same arguments that exported them; ok answers are stored in the
    cache, so a later ``mode="replay"`` run serves them. Requests missing from the result files are
    served from the cache when there, else ``unscored:api_error``. ``plan``, ``samples``, ``temperature``,
    ``agreement``: as in :func:`judge` (the result files hold one model's answers: a panel is several
    imports, one per model).
    """
    if plan is None:
        plan = plan_judging(instances, criteria, mode, rule_verdicts, recheck, max_tokens=max_tokens,
                            prompt_version=prompt_version, combine_heuristics=combine_heuristics,
                            response_format=response_format, samples=samples, temperature=temperature)
    own_client = client is None
    client = client or LLMClient(config)
    try:
        results = client.import_batch(list(result_paths), plan.requests) if plan.requests else []
        return _run(plan, [client], {client.config.model: results}, agreement)
    finally:
        if own_client:
            client.close()


# --- streaming ----------------------------------------------------------------------------------------

#: requests waiting between the planner and the network, per model, as a multiple of the concurrency
QUEUE_PER_SLOT: Final = 2
_DONE: Final = object()


@dataclass
class StreamProgress:
    """Where a streaming run is: instances planned (loaded, checked, prompts built), requests planned and
    answered (over every model of a panel). Updated as the run goes (read it from ``on_progress``)."""

    n_instances: int = 0
    n_planned: int = 0
    n_answered: int = 0


def _rules_of(instance: Instance, criteria: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The decided rules rows of one instance, computed now (as :func:`_decided_rule_rows` reads them
    from ``run_checks``)."""
    from ..checks import instance_findings, rule_rows

    decided: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rule_rows(instance, instance_findings(instance), criteria):
        if row.judge != RULES_JUDGE or row.status != Status.OK or row.label not in (0, 1):
            continue
        decided.setdefault((instance.id, row.criterion), {**row.as_record(), "label": int(row.label),
                                                           "evidence": decode_evidence(row.evidence)})
    return decided


def plan_parts(instances: Iterable[Instance], settings: _Settings,
               table: Mapping[tuple[str, str], dict[str, Any]] | None,
               rule_criteria_now: Sequence[str] | None, wire_for: tuple[str, str, bool] | None = None
               ) -> Iterator[JudgePlan]:
    """One plan per instance, in input order (what the streaming judge's planner makes, in this process
    or in a planning process): the instance checked (an Instance, an id not seen before), its rules run
    (``rule_criteria_now``) or looked up (``table``), its context built and its requests made.

    ``rule_criteria_now=None`` (with no ``table``): run the registered checks, those in the modules
    ``TOOLQUAL_CHECK_MODULES`` names included (imported here, before the first instance is read: a bad
    module is the first error), on the criteria they address. The checks (and pandas, which they import)
    are then loaded by whichever process plans, not by one that only sends.

    ``wire_for`` = (model, token-limit field, temperature sent): also work out each request's
    :class:`~toolqual_utils.llm.WireForm` (``part.wires``), so that a client in another process need not."""
    if table is None and rule_criteria_now is None:
        from ..checks import load_check_modules, rule_criteria

        load_check_modules()
        rule_criteria_now = rule_criteria()
    for instance in _unique_instances(instances):
        decided = table if table is not None else (
            _rules_of(instance, rule_criteria_now) if rule_criteria_now else {})
        part = _empty_plan(settings)
        _plan_instance(part, settings, instance, decided)
        if wire_for is not None:
            model, token_limit_param, send_temperature = wire_for
            for planned in part.planned:
                request = planned.request if send_temperature else replace(planned.request, temperature=None)
                try:
                    part.wires[request.custom_id] = wire_form(request, model, token_limit_param)
                except ValueError:  # not JSON (NaN): the client works it out, and says why it cannot send it
                    pass
        yield part


#: where a streaming run plans: on its event loop, or in a process of its own (see judge.planning)
PLANNERS: Final = ("inline", "process")


def judge_stream(
    instances: Iterable[Instance],
    config: LLMConfig,
    criteria: Iterable[str] = CRITERIA,
    mode: JudgeMode = "combined",
    rules: pd.DataFrame | Literal["checks"] | None = "checks",
    recheck: bool = False,
    *,
    client: LLMClient | None = None,
    judges: Sequence[str] | None = None,
    agreement: AgreementRule = "majority",
    progress: bool = True,
    queue_size: int | None = None,
    before_first_send: Any = None,
    on_progress: Any = None,
    max_tokens: int | None = None,
    prompt_id: str | None = None,
    prompt_version: int = DEFAULT_PROMPT_VERSION,
    combine_heuristics: bool = True,
    response_format: str = "json_schema",
    samples: int = 1,
    temperature: float | None = None,
    planner: Literal["inline", "process"] = "inline",
) -> JudgeRun:
    """:func:`judge` as a pipeline: instances flow load -> rules -> prompt -> request -> verdict.

    A planner takes instances from ``instances`` (any iterable: a file being read), runs the rules
    on each (``rules="checks"``: the registered checks and those of the modules ``TOOLQUAL_CHECK_MODULES``
    names, imported by the planner; or a rules verdict table; or None),
    settles what needs no model and builds the requests, and hands them over through a bounded queue
    (``queue_size`` requests per model, default ``QUEUE_PER_SLOT`` x concurrency): the first request
    leaves as soon as the first instance is planned, and the planner waits while the queue is full, so
    reading runs at most that far ahead of the network. Answers are parsed into votes as they arrive.
    The result is the same :class:`JudgeRun` :func:`judge` gives for the same instances (same verdicts,
    votes, calls per instance, ledger), with ``plan`` set. What only parsing needs is let go as the answers
    arrive, so that a long run does not hold every prompt: an instance's context once all its answers are
    parsed, and a request's messages and response schema once every model has answered it (``plan.planned``
    keeps each request's ids, prompt id, criteria and sample; ``plan.contexts`` ends empty).

    ``planner="process"`` plans in a worker process (:mod:`toolqual_utils.judge.planning`) while this
    process sends: the same result, with planning and sending on two cores instead of taking turns on one
    event loop (where that cannot be done, it plans in process); while the worker plans the first
    instances, this process loads the SDK, so the first request leaves about when the SDK is loaded.
    ``"inline"`` (default) plans here.

    ``before_first_send()`` is called once before the first request goes to a server (e.g. to refuse a
    run without a key); ``on_progress(StreamProgress)`` whenever an instance is planned or an answer
    arrives. The progress bar shows both: answered / planned requests, and instances planned.

    Raises what planning raises (bad input, duplicate ids) after the requests already in flight are
    answered (and cached); an interrupt stops the planner and the requests in flight.
    """
    import asyncio

    settings = _settings(criteria, mode, recheck, max_tokens=max_tokens, prompt_id=prompt_id,
                         prompt_version=prompt_version, combine_heuristics=combine_heuristics,
                         response_format=response_format, samples=samples, temperature=temperature)
    if isinstance(rules, str) and rules != "checks":
        raise InputError(f"rules must be a verdict table, 'checks' or None, not {rules!r}", field="rules")
    table = _decided_rule_rows(rules) if not isinstance(rules, str) else None
    # "checks": the planner imports them and reads their criteria (see plan_parts); None: no rules
    rule_criteria_now = None if table is None and rules is not None else ()
    models = list(dict.fromkeys(judges)) if judges else [config.model]
    if client is not None and (len(models) > 1 or models[0] != client.config.model):
        raise InputError("a panel of judges builds one client per model: pass config, not client", field="judges")
    if planner not in PLANNERS:
        raise InputError(f"planner must be one of {', '.join(PLANNERS)}, not {planner!r}", field="planner")
    clients = [client] if client is not None else [LLMClient(replace(config, model=m)) for m in models]
    process = None
    try:
        if planner == "process":
            from .planning import start_planner

            only = clients[0] if len(clients) == 1 else None
            wire_for = (only.config.model, only.token_limit_param, only.config.send_temperature) if only else None
            process = start_planner(instances, settings, table, rule_criteria_now, wire_for)
            if process is not None:  # while the worker plans the first instances, load what sending needs
                clients[0].load_sdk_in_background()
        # the outcome comes back through ``outcome``, not as the coroutine's value: asyncio.run's interrupt
        # handler holds the main task, and repr of a finished task would render the whole plan
        outcome: dict[str, Any] = {}
        coroutine = lambda: _stream(instances, settings, table, rule_criteria_now, clients, progress,  # noqa: E731
                                    queue_size, before_first_send, on_progress, outcome, process)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(coroutine())
        else:
            from ..llm import _run_in_worker_thread

            _run_in_worker_thread(coroutine)
        plan, results, votes = outcome["plan"], outcome["results"], outcome["votes"]
        run = _run(plan, clients, results, agreement, votes)
        run.plan = plan
        return run
    finally:
        if process is not None:
            process.close()
        if client is None:
            for own in clients:
                own.close()


async def _stream(instances: Iterable[Instance], settings: _Settings,
                  table: dict[tuple[str, str], dict[str, Any]] | None, rule_criteria_now: Sequence[str] | None,
                  clients: Sequence[LLMClient], progress: bool, queue_size: int | None, before_first_send: Any,
                  on_progress: Any, outcome: dict[str, Any], process: Any = None) -> None:
    """Run the pipeline; ``outcome`` receives ``plan``, ``results`` (by model, in plan order) and ``votes``.
    ``process``: a :class:`~toolqual_utils.judge.planning.PlannerProcess` planning the instances, or None
    to plan them here."""
    import asyncio

    from ..llm import _progress_bar

    plan = _empty_plan(settings)
    state = StreamProgress()
    size = queue_size or QUEUE_PER_SLOT * max(int(c.config.concurrency) for c in clients)
    planned_queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, size))
    failure: list[BaseException] = []

    async def planner() -> None:
        """Plans instance by instance: here, between network events (a thread would fight the loop for the
        GIL: each instance is a short step, then the loop serves the sockets), or received from the planning
        process. ``put`` waits while the queue is full, which keeps planning at most ``size`` ahead."""
        try:
            if process is not None:
                async for part in process.parts():
                    state.n_instances += 1
                    prepared.update(part.wires)
                    await planned_queue.put(plan.absorb(part))
            else:
                for part in plan_parts(instances, settings, table, rule_criteria_now):
                    state.n_instances += 1
                    await planned_queue.put(plan.absorb(part))
                    await asyncio.sleep(0)  # let answers and sends that are ready go first
        except Exception as exc:  # noqa: BLE001 - raised once the requests in flight are answered
            failure.append(exc)
        await planned_queue.put(_DONE)

    models = [c.config.model for c in clients]
    prepared: dict[str, Any] = {}  # wire forms from the planning process, taken out by the client as it sends
    items: list[PlannedRequest] = []
    unanswered: dict[int, int] = {}  # request index -> models still to answer it
    unparsed: dict[str, int] = {}  # instance id -> answers still to parse (its context is needed until then)
    results: dict[str, list[ChatResult | None]] = {m: [] for m in models}
    votes: dict[str, list[list[dict[str, Any]] | None]] = {m: [] for m in models}
    bar = _progress_bar(1, 0, models[0] if len(models) == 1 else panel_name(models), enabled=progress)
    if bar is not None:
        bar.total = 0

    def show() -> None:
        if bar is not None:
            bar.total = state.n_planned
            bar.set_postfix_str(f"{state.n_instances} instances planned", refresh=False)
            bar.update(state.n_answered - bar.n)  # redrawn at most every mininterval
        if on_progress is not None:
            on_progress(state)

    def answered(model: str):
        def on_result(index: int, result: ChatResult) -> None:
            item = items[index]
            results[model][index] = result
            rows = _rows_for_result(plan, item, result, model)
            for row in rows:
                row["sample_index"] = item.sample_index
            votes[model][index] = rows
            state.n_answered += 1
            _let_go(index, item)
            show()
        return on_result

    def _let_go(index: int, item: PlannedRequest) -> None:
        """Drop what only parsing needed, once nothing is left to parse with it (see judge_stream)."""
        unanswered[index] -= 1
        if not unanswered[index]:
            del unanswered[index]
            slim = replace(item, request=replace(item.request, messages=(), response_schema=None))
            items[index] = slim
            if index < len(plan.planned) and plan.planned[index] is item:  # the plan numbers them alike
                plan.planned[index] = slim
        unparsed[item.instance_id] -= 1
        if not unparsed[item.instance_id]:
            del unparsed[item.instance_id]
            plan.contexts.pop(item.instance_id, None)

    feeds: list[asyncio.Queue] = [asyncio.Queue() for _ in clients]

    async def chunks(feed: asyncio.Queue):
        while True:
            chunk = await feed.get()
            feed.task_done()
            if chunk is _DONE:
                return
            yield chunk

    async def dispatch() -> None:
        """Take planned requests from the planner, number them, and give them to every model."""
        while True:
            batch = await planned_queue.get()
            if batch is _DONE:
                break
            more = [batch]
            while not planned_queue.empty():  # take what is ready at once (one cache lookup for all)
                extra = planned_queue.get_nowait()
                if extra is _DONE:
                    planned_queue.put_nowait(_DONE)
                    break
                more.append(extra)
            chunk = [p for group in more for p in group]
            if chunk:
                for index, planned in enumerate(chunk, start=len(items)):
                    unanswered[index] = len(models)
                    unparsed[planned.instance_id] = unparsed.get(planned.instance_id, 0) + len(models)
                items.extend(chunk)
                for model in models:
                    results[model].extend([None] * len(chunk))
                    votes[model].extend([None] * len(chunk))
                state.n_planned += len(chunk) * len(models)
                requests = [p.request for p in chunk]
                for feed in feeds:
                    feed.put_nowait(requests)
            show()
            # backpressure: every model takes its share (when it has a free slot) before more is read
            for feed in feeds:
                await feed.join()
        for feed in feeds:
            feed.put_nowait(_DONE)

    sent_once = False

    def first_send() -> None:
        nonlocal sent_once
        if not sent_once:
            sent_once = True
            if before_first_send is not None:
                before_first_send()

    tasks = [asyncio.ensure_future(planner()), asyncio.ensure_future(dispatch())] + [
        asyncio.ensure_future(c.astream(chunks(feed), answered(c.config.model), before_first_send=first_send,
                                        prepared=prepared if len(clients) == 1 else None))
        for c, feed in zip(clients, feeds)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    if failure:
        raise failure[0]
    plan.planned = items
    plan.contexts = {}  # the answers are parsed: what the verdicts need is in the votes
    by_model = {m: [r for r in results[m] if r is not None] for m in models}
    outcome["votes"] = [row for m in models for rows in votes[m] if rows for row in rows]
    outcome["plan"], outcome["results"] = plan, by_model
