"""``toolqual evaluate``: a served model on a tool-use test set, one outcome row per item and run."""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from .. import __version__
from ..errors import ConfigError, InputError
from ..io import atomic_write_text, write_records, write_table
from ._endpoint import add_endpoint_arguments, check_endpoint_arguments, llm_config, require_key, stopped_error
from ._gc import long_run_gc
from ._inputs import check_table_path, read_canonical_inputs

HELP = "run a served model on a tool-use test set (static call matching, or multi-step with simulated tools)"
DESCRIPTION = """\
Evaluate a model served behind any OpenAI-compatible endpoint (vLLM serving your fine-tuned checkpoint,
Ollama, OpenAI) on a test set of canonical instances with gold calls, and write one outcome row per test
item: run, item_id, passed, score, predicted_calls, reason (+ status, benchmark, model, ...). Notebook 06
turns the outcome files of several runs (one per training subset) into Table 6 with intervals and paired
tests. The bundled data/bfcl.jsonl and data/toolalpaca_eval.jsonl work as they are.

--mode static (default, deterministic): the model sees the instruction and the tools and answers with
calls; they are matched with the gold calls by BFCL's rules (acceptable values, type coercion, order-free
parallel calls). passed = exact match; score = matched calls / max(calls, gold calls). An unreadable
answer fails (--parse-errors unscored keeps it out instead).

--mode multistep (the ToolAlpaca / ToolEval setting): the model calls tools step by step (up to
--max-steps); each call is answered with the gold observation when it matches a gold call that has one,
else by a simulator model (--simulator-model, default the judge model); then a judge model (--judge-model)
decides: --judge toolalpaca (process and final response, each Yes/No/Uncertain; passed = both Yes) or
--judge tooleval (Solved/Unsolved/Unsure). Uncertain verdicts, unreadable judge or simulator answers and
failed requests are unscored with their reason, never passed or failed. Trajectories go to
<out stem>.trajectories.jsonl.

--format tools sends the tools in the request and reads native tool_calls (or, from servers without a
tool-call parser, <tool_call> tags, Action/Action Input blocks or a JSON list in the text; add
--tool-choice none for a vLLM server started without --enable-auto-tool-choice); json and react put the
APIs and the answer format in a system prompt. --api completions sends one plain-text prompt to
/v1/completions (json or react) for models without a chat template.

--exclude-verdicts FILE drops the test items that a verdict table (toolqual check / judge) flags with an
error on --exclude-criteria (default overall_ok: any of the six), as the paper cleaned ToolBench's test
set (an item whose right answer is to call nothing is not dropped for being unsolvable: that is what it
tests); the manifest (<out>.manifest.json) lists every dropped and skipped item.

Answers are cached (--cache): a killed run resumes without paying twice; --replay works offline from the
cache; --plan prints requests and estimated cost; --export-batch / --import-batch write and read OpenAI
Batch files (multi-step: one round per export, repeat until the outcomes are written).

examples:
  toolqual evaluate data/bfcl.jsonl --model my-ft --base-url http://localhost:8000/v1 --run random --out runs/random.csv
  toolqual evaluate data/toolalpaca_eval.jsonl --mode multistep --model my-ft --base-url http://localhost:8000/v1 \\
      --judge-model gpt-4o-mini --judge-base-url https://api.openai.com/v1 --run high_instruction_seq --out runs/hiseq.csv
  toolqual evaluate data/bfcl.jsonl --model my-ft --exclude-verdicts judge.csv --plan --out runs/a.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", metavar="TEST.jsonl", help="canonical JSONL test file(s) with gold calls")
    parser.add_argument("--out", metavar="FILE", help="outcome table (.csv, .jsonl or .parquet); not needed with --plan")
    parser.add_argument("--model", required=True, help="served model name (the model under test)")
    parser.add_argument("--run", help="label of this run in the outcome rows, e.g. the training subset (default: --model)")
    parser.add_argument("--benchmark", help="benchmark label in the outcome rows (default: stem of the first test file)")
    add_endpoint_arguments(parser, max_tokens=1024, max_tokens_help="answer length limit per request (default 1024)")
    parser.add_argument("--mode", choices=("static", "multistep"), default="static",
                        help="static call matching (default) or multi-step with simulated tools and a judge")
    parser.add_argument("--format", dest="call_format", choices=("tools", "json", "react"), default="tools",
                        help="how the model is asked to call: native tool calling (default), a JSON list, or ReAct")
    parser.add_argument("--api", choices=("chat", "completions"), default="chat",
                        help="chat (default) or completions: one plain-text prompt for models without a chat template")
    parser.add_argument("--tool-choice", choices=("auto", "none", "required"),
                        help="send tool_choice with the tools (none: for servers without a tool-call parser)")
    parser.add_argument("--ordered", action="store_true", help="calls must come in the gold order (default: order-free)")
    parser.add_argument("--parse-errors", choices=("fail", "unscored"), default="fail",
                        help="an unreadable answer of the model under test fails (default) or is left unscored")
    parser.add_argument("--exclude-verdicts", metavar="FILE",
                        help="verdict table (toolqual check/judge); test items it flags are dropped (test-set cleaning)")
    parser.add_argument("--exclude-criteria", nargs="+", default=["overall_ok"], metavar="CRITERION",
                        help="criteria whose error drops an item (default overall_ok = any of the six)")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N test items")
    multi = parser.add_argument_group("multi-step mode")
    multi.add_argument("--max-steps", type=int, default=5, metavar="N", help="agent steps per item (default 5)")
    multi.add_argument("--judge", choices=("toolalpaca", "tooleval"), default="toolalpaca",
                       help="ToolAlpaca's process + response verdict (default) or ToolEval's Solved/Unsolved")
    multi.add_argument("--uncertain", choices=("unscored", "fail"), default="unscored",
                       help="an Uncertain/Unsure verdict is unscored (default) or counts as not passed")
    multi.add_argument("--judge-model", help="judge model (required for --mode multistep)")
    multi.add_argument("--judge-base-url", help="judge endpoint (default: --base-url)")
    multi.add_argument("--judge-api-key-env", metavar="NAME", help="variable holding the judge's key (default: --api-key-env)")
    multi.add_argument("--simulator-model", help="tool simulator model (default: the judge model)")
    multi.add_argument("--simulator-base-url", help="simulator endpoint (default: the judge's)")
    multi.add_argument("--simulator-api-key-env", metavar="NAME", help="variable holding the simulator's key (default: the judge's)")
    parser.add_argument("--plan", action="store_true", help="print requests, cached, estimated tokens and cost; send nothing")
    parser.add_argument("--export-batch", metavar="FILE", help="write OpenAI Batch request files for what is not cached, and stop")
    parser.add_argument("--import-batch", nargs="+", metavar="FILE", help="read Batch result files into the cache, then score")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input line instead of skipping it")


def _public_url(url: str | None) -> str | None:
    """The endpoint without user info, query or fragment (nothing secret goes into the manifest)."""
    if not url:
        return None
    parts = urlparse(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunparse((parts.scheme, netloc, parts.path, "", "", ""))


def _role_path(path: str, role: str) -> Path:
    target = Path(path)
    suffix = "".join(target.suffixes) or ".jsonl"
    stem = target.name[: -len("".join(target.suffixes))] if target.suffixes else target.name
    return target.with_name(f"{stem}.{role}{suffix}")


def trajectories_path(out: str) -> Path:
    target = Path(out)
    return target.with_name(f"{target.stem}.trajectories.jsonl")


def manifest_path(out: str) -> Path:
    return Path(str(out) + ".manifest.json")


@long_run_gc()  # the run keeps every answer and row to its end (see commands._gc)
def run(args: argparse.Namespace) -> int:
    if not args.out and not args.plan:
        raise InputError("--out FILE is needed (the outcome table to write); only --plan runs without it")
    check_table_path(args.out, "--out")
    check_endpoint_arguments(args)
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}", field="--limit")
    if args.max_steps < 1:
        raise InputError(f"--max-steps must be at least 1, got {args.max_steps}", field="--max-steps")

    from ..evaluate.engine import (BatchResolver, PendingRound, assemble_static, multistep_labels, run_multistep_items,
                                   run_static, static_labels, static_requests, summarise)
    from ..evaluate.multistep import MultiStepSettings, trajectory_record
    from ..evaluate.static import StaticSettings
    from ..evaluate.testset import build_test_items, exclusions, flagged_by_verdicts
    from ..export import _file_digest
    from ..llm import LLMClient
    from ..stats import proportion_interval

    multistep = args.mode == "multistep"
    try:
        if multistep:
            settings = MultiStepSettings(api=args.api, call_format=args.call_format, max_steps=args.max_steps,
                                         max_tokens=args.max_tokens, tool_choice=args.tool_choice, judge=args.judge,
                                         uncertain=args.uncertain, parse_errors=args.parse_errors)
        else:
            settings = StaticSettings(api=args.api, call_format=args.call_format, max_tokens=args.max_tokens,
                                      tool_choice=args.tool_choice, parse_errors=args.parse_errors)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if multistep and not args.judge_model:
        raise ConfigError("--mode multistep needs --judge-model (the model that simulates tools and judges the "
                          "solutions; give --simulator-model to simulate with another one).")

    flagged: dict[str, list[str]] = {}
    if args.exclude_verdicts:
        if not Path(args.exclude_verdicts).is_file():
            raise InputError("no such verdict file", file=args.exclude_verdicts, field="--exclude-verdicts")
        flagged = flagged_by_verdicts(args.exclude_verdicts, args.exclude_criteria)
    instances, n_rejected = read_canonical_inputs(args.data, strict=args.strict)
    items, skipped = build_test_items(instances, ordered=args.ordered, partial_gold=multistep)
    excluded = exclusions(items, flagged)
    dropped = {entry["id"] for entry in excluded}
    items = [item for item in items if item.id not in dropped]
    if args.limit:
        items = items[: args.limit]
    if not items:
        raise InputError("no test item left to evaluate (every instance was skipped or excluded; see --exclude-verdicts "
                         "and the gold calls of the input)", file=", ".join(args.data))
    benchmark = args.benchmark or Path(args.data[0]).name.split(".")[0]
    run_name = args.run or args.model
    labels = (multistep_labels if multistep else static_labels)(run_name, benchmark, args.model, settings)
    print(f"{len(items)} test items from {len(args.data)} file(s) ({n_rejected} bad lines skipped, {len(skipped)} "
          f"instances without a usable gold answer, {len(excluded)} excluded by verdicts) -> {args.mode}, "
          f"{args.call_format} format, {args.api} API; run {run_name!r}, benchmark {benchmark!r}")

    batch_mode = bool(args.export_batch or args.import_batch)
    base_config = llm_config(args, replay=args.replay or batch_mode)
    agent = LLMClient(base_config)
    clients = [("agent", agent)]
    if multistep:
        judge_config = replace(base_config, model=args.judge_model, base_url=args.judge_base_url or args.base_url,
                               api_key_env=args.judge_api_key_env or args.api_key_env, prices=None)
        judge = LLMClient(judge_config)
        simulator = LLMClient(replace(judge_config, model=args.simulator_model or args.judge_model,
                                      base_url=args.simulator_base_url or judge_config.base_url,
                                      api_key_env=args.simulator_api_key_env or judge_config.api_key_env))
        clients += [("simulator", simulator), ("judge", judge)]
    trajectories = None
    try:
        if multistep:
            from ..evaluate.multistep import agent_request
            from ..evaluate.multistep import Trajectory
            from ..evaluate.prompting import ToolNames

            if args.plan:
                first = [agent_request(Trajectory(i, ToolNames(i.instance.tools) if settings.call_format == "tools"
                                                  else None), settings) for i in items]
                plan = agent.plan(first)
                print(f"plan (first agent round only): {plan.n_requests} requests, {plan.n_cached} cached, "
                      f"{plan.n_to_send} to send; ~{plan.est_prompt_tokens:,} prompt + ~{plan.est_completion_tokens:,} "
                      f"completion tokens; cost {_cost(plan.est_cost_usd)}")
                print(f"a full run sends up to {settings.max_steps} agent requests per item (each with the growing "
                      f"conversation), one simulator request per call without a gold observation, and one judge "
                      f"request per item that reaches a final response")
                return 0
            if batch_mode:
                resolver = BatchResolver(args.import_batch or ())
                try:
                    outcomes, trajectories = run_multistep_items(items, agent, simulator, judge, settings, labels,
                                                                 resolve=resolver)
                except PendingRound as pending:
                    if not args.export_batch:
                        raise ConfigError(
                            f"round {resolver.rounds} of the multi-step run needs {len(pending.requests)} "
                            f"{pending.role} request(s) that are neither cached nor in the result files given; "
                            "add --export-batch FILE to write them (rounds depend on earlier answers, so a "
                            "multi-step Batch run takes one export and import per round).") from None
                    files = pending.client.export_batch(pending.requests, _role_path(args.export_batch, pending.role))
                    print(f"round {resolver.rounds} needs {len(pending.requests)} {pending.role} request(s) "
                          f"(model {pending.client.config.model}): wrote {', '.join(map(str, files))}. Run them, then "
                          "rerun with --import-batch RESULTS.jsonl (and --export-batch for the next round).")
                    return 0
            else:
                outcomes, trajectories = run_multistep_items(items, agent, simulator, judge, settings, labels)
        else:
            requests, _ = static_requests(items, settings)
            if args.plan:
                plan = agent.plan(requests)
                print(f"plan: {plan.n_requests} requests, {plan.n_cached} cached, {plan.n_to_send} to send; "
                      f"~{plan.est_prompt_tokens:,} prompt + ~{plan.est_completion_tokens:,} completion tokens; "
                      f"cost {_cost(plan.est_cost_usd)}")
                return 0
            if args.export_batch:
                files = agent.export_batch(requests, args.export_batch)
                print(f"batch request files: {', '.join(map(str, files)) or 'none (everything is cached)'}; run "
                      "them, then rerun with --import-batch RESULTS.jsonl")
                return 0
            if args.import_batch:
                results = agent.import_batch(args.import_batch, requests)
                outcomes = assemble_static(items, results, settings, labels)
            else:
                if not args.replay and agent.plan(requests).n_to_send:
                    require_key(agent)
                outcomes = run_static(items, agent, settings, labels, progress=sys.stderr.isatty())
    finally:
        for _, client in clients:
            client.close()

    write_table(outcomes, args.out)
    if trajectories is not None:
        write_records((trajectory_record(t) for t in trajectories), trajectories_path(args.out))
    summary = summarise(outcomes)
    low, high = proportion_interval(summary["n_passed"], summary["n_scored"], method="wilson")
    manifest = {
        "toolqual_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "evaluate",
        "run": run_name, "benchmark": benchmark, "mode": args.mode, "api": args.api, "format": args.call_format,
        "model": args.model, "base_url": _public_url(agent.base_url),
        "prompt_id": labels.prompt_id,
        "settings": {k: v for k, v in vars(settings).items()},
        "test_files": [{"path": str(p), "sha256": _file_digest(Path(p))} for p in args.data],
        "n_instances": len(instances), "n_rejected_lines": n_rejected,
        "n_skipped": len(skipped), "skipped": skipped,
        "exclude_verdicts": ({"path": args.exclude_verdicts, "sha256": _file_digest(Path(args.exclude_verdicts)),
                              "criteria": args.exclude_criteria} if args.exclude_verdicts else None),
        "n_excluded": len(excluded), "excluded": excluded,
        "limit": args.limit, "n_items": len(items),
        "summary": summary | {"pass_rate_wilson_95": [low, high]},
        "outcomes": str(args.out),
        "trajectories": str(trajectories_path(args.out)) if trajectories is not None else None,
        "ledger": {role: client.ledger.totals() for role, client in clients},
    }
    if multistep:
        manifest.update(judge=args.judge, judge_model=args.judge_model, judge_prompt_id=settings.judge_prompt_id,
                        judge_base_url=_public_url(judge.base_url), simulator_model=simulator.config.model,
                        simulator_base_url=_public_url(simulator.base_url), simulator_prompt_id="simulator.v1")
    target = manifest_path(args.out)
    atomic_write_text(target, json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n")

    rate = summary["pass_rate"]
    print(f"run {run_name!r}: passed {summary['n_passed']} of {summary['n_scored']} scored items"
          + ("" if math.isnan(rate) else f" (pass rate {rate:.3f}, Wilson 95% {low:.3f}-{high:.3f})")
          + f"; parse errors {summary['n_parse_errors']} (not passed); unscored {summary['n_unscored']}"
          + (f" {json.dumps(summary['unscored_by_reason'])}" if summary["unscored_by_reason"] else ""))
    print(f"outcomes -> {args.out}; manifest -> {target}"
          + (f"; trajectories -> {trajectories_path(args.out)}" if trajectories is not None else ""))
    for role, client in clients:
        totals = client.ledger.totals()
        print(f"{role} ({client.config.model}): requests {totals['n_requests']}, cache hits {totals['n_cache_hits']}, "
              f"shared with an identical request {totals['n_shared']}, sent {totals['n_sent']}, "
              f"tokens {totals['prompt_tokens']:,} in / {totals['completion_tokens']:,} out"
              + (f", cost ${totals['cost_usd']:.4f}" if totals.get("cost_usd") else ""))
    for _, client in clients:
        if client.stopped:
            raise stopped_error(client, f"Kept what was done: {len(outcomes)} outcome rows written to {args.out}.")
    return 0


def _cost(value: float | None) -> str:
    return "unknown (give --price-in/--price-out)" if value is None else f"${value:.2f}"
