"""``toolqual judge``: rules first, then a model judge (cached) for the intrinsic criteria."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ConfigError, InputError
from ..criteria import CRITERIA
from ..table_formats import TABLE_FORMATS
from ..verdicts import OFFLINE_JUDGES, RULES_JUDGE, Status, read_verdicts
from ._endpoint import add_endpoint_arguments, check_endpoint_arguments, endpoint, llm_config, print_plan, \
    require_key, stopped_error
from ._gc import long_run_gc
from ._inputs import CanonicalInputs, check_table_path, read_canonical_inputs, usable_cpus

if TYPE_CHECKING:
    import pandas as pd

    from ..schema import Instance

# A live run imports the checks, pandas and the table writer where it needs them (the checks in the planning
# process), not here: what this process loads before its first request delays that request.

HELP = "model-judge verdicts for the six criteria (rules first; live with cache, replay, or Batch files)"
DESCRIPTION = """\
Judge canonical instances on the six intrinsic criteria. The deterministic checks run first (in-process,
or read from --rules FILE); a criterion they decide is not sent to the model unless --recheck. Criteria the
judge can settle in code (no gold calls, no parameter to fill, a required argument absent) are not sent
either. The rest go to an OpenAI-compatible model through a persistent cache: a killed run resumes
without paying twice, and --replay answers from the cache only (offline).

Prompts: v2 (default) follows docs/annotation_guide.md, rulings included; v1 is the first version, kept
unchanged (the bundled real-model answers in data/judge_runs/ are v1). The offline coherence heuristic
overrides a model's "coherent" for requests served by unrelated tool groups (--no-heuristics: off).

Secrets come only from the environment: the API key from OPENAI_API_KEY (or the variable named by
--api-key-env); the endpoint from --base-url, else TOOLQUAL_BASE_URL, else OPENAI_BASE_URL, else OpenAI.

examples:
  toolqual judge data/toolalpaca_eval.jsonl --model gpt-4o-mini --plan --price-in 0.15 --price-out 0.6
  toolqual judge data/toolalpaca_eval.jsonl --model gpt-4o-mini --out results/judge.jsonl
  toolqual judge data/bfcl.jsonl --model gpt-4o-mini --export-batch batch/requests.jsonl
  toolqual judge data/bfcl.jsonl --model gpt-4o-mini --import-batch batch/results.jsonl --out results/judge.csv
  toolqual judge data/bfcl.jsonl --model gpt-4o-mini --replay --out results/judge.csv
"""



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", metavar="DATA.jsonl", help="canonical JSONL file(s)")
    parser.add_argument("--model", help="judge model name (default: env TOOLQUAL_JUDGE_MODEL)")
    add_endpoint_arguments(parser, max_tokens=None,
                           max_tokens_help="completion token limit per request (default: per prompt)")
    parser.add_argument("--mode", choices=["combined", "per-criterion"], default="combined",
                        help="one request per instance asking the undecided criteria (default), or one request "
                        "per criterion with its own prompt")
    parser.add_argument("--prompt-version", choices=["v1", "v2"], default="v2",
                        help="judge prompt version (default v2, which follows the annotation guide's rulings)")
    parser.add_argument("--response-format", choices=["json_schema", "json_object", "none"], default="json_schema",
                        help="how structured answers are asked for: json_schema (default), json_object, or none "
                        "(servers without json_schema support: older vLLM, some Ollama models, LiteLLM routes; "
                        "with none the JSON object is found in the reply's free text). Part of the cache key")
    parser.add_argument("--no-heuristics", action="store_true",
                        help="do not let the offline coherence heuristic override a model's 'coherent'")
    parser.add_argument("--samples", type=int, default=1, metavar="N",
                        help="self-consistency: ask each request N times at --temperature (each sample cached); the "
                        "answers vote and the verdict gets a confidence (share of agreeing votes) and n_votes")
    parser.add_argument("--temperature", type=float, default=None, metavar="T",
                        help="sampling temperature (default 0 for one answer, 0.7 with --samples > 1)")
    parser.add_argument("--judges", metavar="M1,M2,...",
                        help="a panel of models on the same endpoint instead of --model; their answers vote")
    parser.add_argument("--agreement", choices=["majority", "unanimous"], default="majority",
                        help="how votes combine: majority (a tie is unscored) or unanimous (any split is unscored)")
    parser.add_argument("--criteria", nargs="+", metavar="CRITERION",
                        help="criteria to judge (default all six): " + ", ".join(CRITERIA))
    rules = parser.add_mutually_exclusive_group()
    rules.add_argument("--rules", metavar="FILE", help="rules verdict table (from `toolqual check`) instead of "
                       "running the checks in-process")
    rules.add_argument("--no-rules", action="store_true", help="do not use rules verdicts: ask the model everything")
    parser.add_argument("--recheck", action="store_true", help="also ask the model criteria the rules decided")
    parser.add_argument("--plan", action="store_true",
                        help="print the cost plan (requests, cached, tokens, cost) and exit without calling")
    parser.add_argument("--limit", type=int, metavar="N", help="judge only the first N instances")
    parser.add_argument("--export-batch", metavar="FILE.jsonl",
                        help="write OpenAI Batch request file(s) for the requests not cached, split at 50,000, "
                        "and exit")
    parser.add_argument("--import-batch", nargs="+", metavar="RESULTS.jsonl",
                        help="read Batch result file(s) into verdicts (answers also fill the cache)")
    parser.add_argument("--out", metavar="FILE", help="verdict table; format from the extension: "
                        + ", ".join(TABLE_FORMATS))
    parser.add_argument("--calls-out", metavar="FILE", help="also write the calls-per-instance table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--planner", choices=["auto", "inline", "process"], default="auto",
                        help="where a live or replay run reads, checks and builds prompts: in a process of its own "
                             "while this one sends (process), or between sends (inline); auto = process when 2 or "
                             "more CPUs are available (same verdicts either way)")


def _criteria(values: list[str] | None) -> list[str]:
    if not values:
        return list(CRITERIA)
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [n for n in names if n not in CRITERIA]
    if unknown:
        raise InputError(f"unknown criterion {unknown[0]!r}; choose from {', '.join(CRITERIA)}", field="--criteria")
    return names


def _rule_verdicts(args: argparse.Namespace, instances: list[Instance]) -> tuple[pd.DataFrame | None, str]:
    if args.no_rules:
        return None, "none (--no-rules)"
    if args.rules:
        rules = read_verdicts(args.rules)
        rules["judge"] = rules["judge"].replace("", RULES_JUDGE)  # a --rules row that names no judge is the rules'
        return rules, f"from {args.rules}"
    from ..checks import load_check_modules, run_checks

    load_check_modules()
    return run_checks(instances), "deterministic checks (in-process)"


def _warn_if_answers_do_not_fit(result, args: argparse.Namespace) -> None:
    """Batch answers are matched by custom_id only: when most imported answers fail to parse, they were
    probably given to requests of another prompt version (e.g. the bundled v1 answers read as v2)."""
    votes = result.votes
    if votes is None or not len(votes):
        return
    imported = votes.loc[~votes["judge"].isin(OFFLINE_JUDGES)]
    n_parse = int((imported["status"] == Status.UNSCORED_PARSE_ERROR).sum())
    if imported.empty or n_parse <= len(imported) / 2:
        return
    other = "v1" if args.prompt_version == "v2" else "v2"
    print(f"warning: {n_parse} of {len(imported)} imported answers do not parse as answers to "
          f"{', '.join(result.prompt_ids)} requests. Answers are matched to requests by custom_id only: were they "
          f"given to requests of another prompt version? Rerun with --prompt-version {other} if so "
          "(the bundled data/judge_runs answers are v1).", file=sys.stderr)


@long_run_gc()  # the run keeps every answer and row to its end (see commands._gc)
def run(args: argparse.Namespace) -> int:
    from ..judge.engine import judge_from_batch, plan_judging
    from ..llm import LLMClient

    judges = [name.strip() for name in (args.judges or "").split(",") if name.strip()]
    if judges:
        args.model = judges[0]
    args.model = endpoint(args, "judge").model
    if not args.model:
        raise ConfigError("no judge model: pass --model NAME or set the environment variable TOOLQUAL_JUDGE_MODEL.")
    if len(judges) > 1 and (args.export_batch or args.import_batch):
        raise ConfigError("a Batch file holds one model's requests or answers: export and import each judge of the "
                          "panel with --model on its own, or run the panel live (--judges).")
    if args.samples < 1:
        raise InputError(f"--samples must be 1 or more, got {args.samples}", field="--samples")
    if not (args.plan or args.export_batch) and not args.out:
        raise InputError("--out FILE is required (unless --plan or --export-batch)", field="--out")
    check_table_path(args.out, "--out")
    check_table_path(args.calls_out, "--calls-out")
    check_endpoint_arguments(args)
    if args.limit is not None and args.limit < 0:
        raise InputError(f"--limit must be 0 or more, got {args.limit}", field="--limit")

    criteria = _criteria(args.criteria)
    mode = "per_criterion" if args.mode == "per-criterion" else "combined"
    options = dict(max_tokens=args.max_tokens, prompt_version=int(args.prompt_version[1:]),
                   combine_heuristics=not args.no_heuristics, response_format=args.response_format,
                   samples=args.samples, temperature=args.temperature)
    panel = f" x {len(judges)} judges ({', '.join(judges)})" if len(judges) > 1 else ""
    samples = f", {args.samples} samples each" if args.samples > 1 else ""

    def plan_line(n_instances: int, rules_source: str, plan) -> str:
        return (f"{n_instances} instances x {len(criteria)} criteria; rules: {rules_source}; "
                f"{len(plan.fixed)} verdicts decided without the model; {len(plan.requests)} model requests{panel} "
                f"({mode}, prompts {', '.join(plan.prompt_ids) or '-'}, response format {args.response_format}"
                f"{samples})")

    if not (args.plan or args.export_batch or args.import_batch):
        return _run_streaming(args, criteria, mode, options, judges, plan_line)

    instances, _ = read_canonical_inputs(args.data)
    if args.limit is not None:
        instances = instances[: args.limit]
    rules, rules_source = _rule_verdicts(args, instances)
    plan = plan_judging(instances, criteria, mode, rules, args.recheck, **options)

    client = LLMClient(llm_config(args, role="judge"))
    try:
        print(plan_line(len(instances), rules_source, plan))
        if args.plan:
            print_plan(client.plan(plan.requests), len(instances))
            for name in judges[1:]:  # each judge of a panel has its own cache entries
                planner = LLMClient(replace(client.config, model=name))
                try:
                    print_plan(planner.plan(plan.requests), len(instances))
                finally:
                    planner.close()
            return 0
        if args.export_batch:
            files = client.export_batch(plan.requests, args.export_batch)
            if not files:
                print("nothing to export: every request is already answered in the cache")
            for path in files:
                n_lines = sum(1 for _ in open(path, encoding="utf-8"))
                print(f"batch request file {path}: {n_lines} requests")
            return 0
        engine = dict(criteria=criteria, mode=mode, rule_verdicts=rules, recheck=args.recheck, plan=plan,
                      agreement=args.agreement, **options)
        result = judge_from_batch(instances, client.config, args.import_batch, client=client, **engine)
        _warn_if_answers_do_not_fit(result, args)
        _report(args, client, judges, result)
        return 0
    finally:
        client.close()


def _run_streaming(args: argparse.Namespace, criteria: list[str], mode: str, options: dict, judges: list[str],
                   plan_line) -> int:
    """A live or replay run: instances are read, checked and sent as a stream (judge.engine.judge_stream)."""
    from ..judge.engine import judge_stream
    from ..llm import LLMClient

    if args.no_rules:
        rules, rules_source = None, "none (--no-rules)"
    elif args.rules:
        rules, rules_source = _rule_verdicts(args, [])
    else:  # the planner imports the checks and the modules TOOLQUAL_CHECK_MODULES names (judge.engine.plan_parts)
        rules, rules_source = "checks", "deterministic checks (in-process)"
    instances = CanonicalInputs(args.data, limit=args.limit)
    planner = args.planner if args.planner != "auto" else "process" if usable_cpus() >= 2 else "inline"
    client = LLMClient(llm_config(args, role="judge"))
    try:
        before_first_send = None if args.replay else (lambda: require_key(client))
        engine = dict(criteria=criteria, mode=mode, rules=rules, recheck=args.recheck, agreement=args.agreement,
                      progress=not args.quiet, before_first_send=before_first_send, planner=planner, **options)
        if len(judges) > 1:
            result = judge_stream(instances, client.config, judges=judges, **engine)
        else:
            result = judge_stream(instances, client.config, client=client, **engine)
        print(plan_line(len(result.plan.instance_ids), rules_source, result.plan))
        _report(args, client, judges, result)
        return 0
    finally:
        client.close()


def _report(args: argparse.Namespace, client, judges: list[str], result) -> None:
    """Write the verdict tables and print what was done (raises the stop error after writing)."""
    from ..io import write_table

    write_table(result.verdicts, args.out)
    if args.calls_out:
        write_table(result.calls_per_instance, args.calls_out)
    summary = result.summary()
    ledger = result.ledger.sum(numeric_only=True) if len(result.ledger) else {}
    status_counts = ", ".join(f"{k} {v}" for k, v in summary["status_counts"].items())
    decided = ", ".join(f"{k} {v}" for k, v in summary["decided_by"].items())
    cost = client.ledger.cost_usd() if len(judges) <= 1 else None
    print(f"verdicts -> {args.out} ({len(result.verdicts)} rows; {status_counts}; decided by: {decided})")
    print(f"model requests: {int(ledger.get('n_requests', 0))} answered: {int(ledger.get('n_sent', 0))} sent now, "
          f"{int(ledger.get('n_imported', 0))} imported from Batch results, {int(ledger.get('n_cache_hits', 0))} "
          f"from the cache, {int(ledger.get('n_shared', 0))} shared with an identical request; "
          f"{summary['mean_calls_per_instance']:.2f} per instance; tokens paid: "
          f"{int(ledger.get('prompt_tokens', 0)):,} prompt + {int(ledger.get('completion_tokens', 0)):,} completion"
          + (f"; cost ${cost:,.4f}" if cost is not None and client.config.prices else ""))
    if client.stopped:
        n_not_sent = sum(r.status == Status.UNSCORED_NOT_SENT for r in result.results)
        raise stopped_error(client, f"Kept what was done: {len(result.verdicts)} verdict rows written to "
                                    f"{args.out} ({len(result.results) - n_not_sent} model requests finished "
                                    f"before the stop, {n_not_sent} not sent).")
