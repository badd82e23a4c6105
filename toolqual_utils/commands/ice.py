"""``toolqual ice``: in-context evaluation scores (each instance as the only demonstration)."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from ..errors import ConfigError, InputError
from ..io import TABLE_FORMATS, write_table
from ._endpoint import add_endpoint_arguments, check_endpoint_arguments, llm_config, print_plan, require_key, \
    stopped_error
from ._gc import long_run_gc
from ._inputs import read_canonical_inputs

HELP = "ICE scores: how well each instance, as the only example, teaches a target model the test bed"
DESCRIPTION = """\
In-context evaluation (ICE): every instance is shown to a target model as its one-shot demonstration,
the model answers each query of a fixed test bed (bundled: data/ice_testbed/v1, 10 APIs, 14 queries)
with a call sequence, and the answer is scored against the gold calls: similarity = 1 - Levenshtein /
max length on a canonical serialisation (the paper's score, in [0, 1]) and a strict BFCL-style match
beside it. ICE = mean similarity over the queries, with a t-interval over queries.

Writes the per-instance table to --out and the per-query table beside it (<stem>.queries.<ext>).
Answers are cached (--cache), so an interrupted run resumes without paying twice; --replay works from
the cache only. --plan prints the request count and estimated tokens/cost and sends nothing.
--adaptive --goal top --k K asks queries in rounds and stops asking an instance once it is confidently
inside or outside the top (bottom) K. The key is read from OPENAI_API_KEY, or from the variable that
--api-key-env names (never an option).

examples:
  toolqual ice data/annotations/reference_dev_instances.jsonl --model gpt-4o-mini --plan --price-in 0.15 --price-out 0.6
  toolqual ice data.jsonl --model Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --out ice.csv
  toolqual ice data.jsonl --model M --adaptive --goal top --k 200 --out ice_top.csv
  toolqual ice data.jsonl --model huggyllama/llama-7b --base-url http://localhost:8000/v1 --api completions \
      --out ice_base.csv                 # a base model served by vLLM, as in the paper

--api completions sends /v1/completions requests: one plain-text prompt (the APIs, the instance as a
worked example, the test query and an open answer line) cut at a stop sequence, for models without a
chat template, which vLLM refuses to serve through the chat route. Parsing and scores are the same.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", metavar="DATA.jsonl", help="canonical JSONL file(s)")
    parser.add_argument("--out", metavar="FILE",
                        help="per-instance table (needed unless --plan or --export-batch); format from the "
                             "extension: " + ", ".join(TABLE_FORMATS))
    parser.add_argument("--model", required=True, help="target model name sent to the endpoint")
    add_endpoint_arguments(parser, max_tokens=512, max_tokens_help="answer length limit (default 512)")
    parser.add_argument("--testbed", metavar="DIR", help="test-bed directory (default: bundled data/ice_testbed/v1)")
    parser.add_argument("--format", dest="call_format", choices=("json", "react", "tools"), default="json",
                        help="call format of demonstration and answer (default json)")
    parser.add_argument("--observations", action="store_true",
                        help="show the demonstration's observations (API results) too")
    parser.add_argument("--api", choices=("chat", "completions"), default="chat",
                        help="chat: /v1/chat/completions (default); completions: /v1/completions with one plain-text "
                             "prompt and a stop sequence, for base models without a chat template (the paper's "
                             "LLaMA/Vicuna targets; json or react format)")
    parser.add_argument("--adaptive", action="store_true", help="adaptive ICE for a top/bottom-K selection")
    parser.add_argument("--goal", choices=("top", "bottom"), default="top", help="with --adaptive (default top)")
    parser.add_argument("--k", type=int, help="with --adaptive: size of the selected bucket")
    parser.add_argument("--bound", choices=("pooled_normal", "bernstein", "hoeffding"), default="pooled_normal",
                        help="with --adaptive: confidence bound (default pooled_normal)")
    parser.add_argument("--seed", type=int, default=0, help="with --adaptive: seed of the query orders")
    parser.add_argument("--epsilon", type=float, default=0.0,
                        help="with --adaptive: indifference zone on the ICE scale; instances within it of the cut "
                             "are not told apart, which saves generations (default 0 = exact)")
    parser.add_argument("--plan", action="store_true", help="print requests, cached, estimated tokens and cost; send nothing")
    parser.add_argument("--answer-tokens", type=int, default=None, metavar="N",
                        help="with --plan: completion tokens assumed per answer (default 120, as notebook 04)")
    parser.add_argument("--export-batch", metavar="FILE",
                        help="write OpenAI Batch API request files for the uncached requests and stop")
    parser.add_argument("--import-batch", nargs="+", metavar="FILE",
                        help="read Batch API result files into the cache, then score (from the cache)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad input line instead of skipping it")


def queries_path(out: str | os.PathLike) -> Path:
    """Where the per-query table goes: ``<stem>.queries.<ext>`` beside ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.queries{out.suffix}")


@long_run_gc()  # the run keeps every answer and row to its end (see commands._gc)
def run(args: argparse.Namespace) -> int:
    if not args.out and not (args.plan or args.export_batch):
        raise InputError("--out FILE is needed to write the scores (only --plan and --export-batch run without it)")
    if args.out and Path(args.out).suffix.lower() not in TABLE_FORMATS:
        raise InputError(f"--out must end in one of {', '.join(TABLE_FORMATS)}, got {args.out!r}")
    if args.adaptive and not args.k:
        raise ConfigError("--adaptive needs --k (the size of the top or bottom bucket to select).")
    if args.adaptive and (args.export_batch or args.import_batch):
        raise ConfigError("--adaptive asks queries in rounds that depend on earlier answers, so it cannot run "
                          "from batch files; run the full grid with --export-batch/--import-batch, or drop --adaptive.")
    check_endpoint_arguments(args)
    if args.api == "completions" and args.call_format == "tools":
        raise ConfigError("--api completions sends plain text, so it carries --format json or react; tool calling "
                          "(--format tools) needs the chat API.")

    from ..ice.adaptive import AdaptiveConfig
    from ..ice.engine import PLAN_ANSWER_TOKENS, assemble, build_requests, plan_cost, run_ice, run_ice_adaptive
    from ..ice.testbed import load_testbed
    from ..llm import LLMClient

    testbed = load_testbed(args.testbed)
    instances, n_rejected = read_canonical_inputs(args.data, strict=args.strict)
    client = LLMClient(llm_config(args, role="ice", replay=args.replay or bool(args.import_batch)))
    try:
        prompts, requests = build_requests(instances, testbed, args.call_format,
                                           include_observations=args.observations, max_tokens=args.max_tokens,
                                           api=args.api)
        n_no_gold = sum(inst.calls is None for inst in instances)
        print(f"{len(instances)} instances ({n_rejected} lines skipped, {n_no_gold} without gold calls) x "
              f"{len(testbed.queries)} queries of test bed {testbed.version} -> {len(requests)} requests "
              f"({args.call_format} format, {args.api} API)")
        if args.plan:
            print_plan(plan_cost(client, requests, answer_tokens=args.answer_tokens or PLAN_ANSWER_TOKENS),
                       len(instances))
            if args.adaptive:
                print("adaptive runs usually send fewer requests; the plan shows the full grid (the upper bound).")
            return 0
        if args.export_batch:
            files = client.export_batch(requests, args.export_batch)
            print(f"batch request files: {', '.join(map(str, files)) or 'none (everything is cached)'}; run them, "
                  "then rerun with --import-batch RESULTS.jsonl")
            return 0
        if args.import_batch:
            results = client.import_batch(args.import_batch, requests)
            result = assemble(instances, testbed, prompts, results, client, call_format=args.call_format,
                              prompt_id=prompts[0].prompt_id if prompts else None)
            per_query, per_instance, summary = result.per_query, result.per_instance, result.summary
        elif args.adaptive:
            # which queries get asked depends on the answers, so no key check up front: the client refuses
            # (naming the key variable) only if a query really has to be sent
            try:
                adaptive_config = AdaptiveConfig(goal=args.goal, k=args.k, bound=args.bound, seed=args.seed,
                                                 epsilon=args.epsilon)
            except ValueError as exc:
                raise ConfigError(f"--adaptive settings: {exc}") from None
            result = run_ice_adaptive(instances, testbed, client, adaptive_config, call_format=args.call_format,
                                      include_observations=args.observations, max_tokens=args.max_tokens,
                                      progress=sys.stderr.isatty(), api=args.api)
            per_query, per_instance, summary = result.per_query, result.per_instance, result.summary
        else:
            if not args.replay and client.plan(requests).n_to_send:
                require_key(client)
            result = run_ice(instances, testbed, client, call_format=args.call_format,
                             include_observations=args.observations, max_tokens=args.max_tokens,
                             progress=sys.stderr.isatty(), api=args.api)
            per_query, per_instance, summary = result.per_query, result.per_instance, result.summary
    finally:
        client.close()

    write_table(per_instance, args.out)
    write_table(per_query, queries_path(args.out))
    ledger = client.ledger.totals()
    mean = summary["mean_ice_score"]
    print(f"per-instance -> {args.out}; per-query -> {queries_path(args.out)}")
    print(f"scored {summary['n_instances_scored']}/{summary['n_instances']} instances; "
          f"mean ICE {'n/a' if math.isnan(mean) else f'{mean:.3f}'}; query answers ok {summary['n_ok']}, "
          f"parse errors {summary['n_parse_errors']} (scored 0), unscored {summary['n_unscored']} "
          f"{json.dumps(summary['unscored_by_reason']) if summary['unscored_by_reason'] else ''}".rstrip())
    print(f"requests {ledger['n_requests']}: cache hits {ledger['n_cache_hits']}, shared with an identical request "
          f"{ledger['n_shared']}, sent {ledger['n_sent']}, "
          f"tokens {ledger['prompt_tokens']:,} in / {ledger['completion_tokens']:,} out"
          + (f", cost ${ledger['cost_usd']:.4f}" if ledger.get("cost_usd") else ""))
    if args.adaptive:
        print(f"adaptive ({summary['goal']} {summary['k']}, {summary['bound']} bound, epsilon {summary['epsilon']:g}): "
              f"{summary['adaptive_generations']} generations vs {summary['full_generations']} for full ICE "
              f"({summary['saved_fraction']:.0%} saved, {summary['rounds']} rounds)")
    if client.stopped:
        raise stopped_error(client, f"Kept what was done: {len(per_instance)} instance rows written to {args.out} and "
                                    f"{len(per_query)} query rows to {queries_path(args.out)}.")
    return 0
