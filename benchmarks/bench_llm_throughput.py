"""Judge-style throughput: toolqual's LLMClient vs a bare AsyncOpenAI loop, against the test double.

The OpenAI-compatible TEST DOUBLE (no model) runs in its own process, answering every chat request after
a fixed latency (default 100 ms) with a small JSON verdict. Both clients send the same judge-like
requests (a ~2 KB prompt with a JSON-schema response format) at the same concurrency:

* baseline: ``AsyncOpenAI`` + ``asyncio.gather`` with an ``asyncio.Semaphore`` (no cache, no ledger);
* toolqual: ``LLMClient.complete`` with a FRESH sqlite cache file per run (caching each answer as it
  arrives is part of the real path), ledger and tqdm progress bar on (stderr). It posts the exact JSON
  body through the SDK's raw route (same retries/timeouts), skipping the SDK's per-request parameter
  transform and pydantic parsing, which is where the bare loop spends most of its client CPU.

Runs alternate baseline/toolqual (ABBA for two rounds) to spread machine noise evenly. Prints req/s of
each run, the means, the ratio toolqual/baseline (target >= 0.95), the theoretical bound
concurrency / latency, and the client process's CPU time per request (steadier than req/s on a shared
machine).

    .venv/bin/python benchmarks/bench_llm_throughput.py [--n 5000] [--concurrency 64] [--latency 0.1]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openai import AsyncOpenAI  # noqa: E402  (the baseline; toolqual itself imports openai only in llm.py)

from _common import bare_loop  # noqa: E402

from toolqual_utils.llm import ChatRequest, LLMClient, LLMConfig, request_body  # noqa: E402

MODEL = "bench-judge"
SCHEMA = {
    "type": "object",
    "properties": {c: {"type": "integer", "enum": [0, 1]} for c in ("specificity", "coherence", "solvability")},
    "required": ["specificity", "coherence", "solvability"],
}
VERDICT = json.dumps({"specificity": 1, "coherence": 1, "solvability": 0, "rationale": "The date is missing."})


def judge_requests(n: int, tag: str) -> list[ChatRequest]:
    tools_doc = "\n".join(
        f"- api_{k}(city: string, date: string, units: string = 'metric'): returns the forecast #{k}" for k in range(20)
    )
    return [
        ChatRequest(
            custom_id=f"{tag}-{i}",
            messages=(
                {"role": "system", "content": "You audit synthetic tool-use data. Answer in JSON."},
                {"role": "user", "content": f"Tools:\n{tools_doc}\n\nInstruction #{i} ({tag}): what is the weather "
                 f"in city {i % 97} next week, in imperial units?"},
            ),
            prompt_id="judge_combined.v1",
            response_schema=SCHEMA,
            max_tokens=256,
        )
        for i in range(n)
    ]


async def run_baseline(base_url: str, requests: list[ChatRequest], concurrency: int) -> tuple[float, float]:
    client = AsyncOpenAI(api_key="bench-key-not-a-secret", base_url=base_url, max_retries=5, timeout=60)
    answers, elapsed, cpu = await bare_loop(client, [request_body(MODEL, r) for r in requests], concurrency)
    assert all(a == VERDICT for a in answers)
    return len(requests) / elapsed, cpu / len(requests)


def run_toolqual(base_url: str, requests: list[ChatRequest], concurrency: int, cache_dir: str) -> tuple[float, float]:
    cache_path = tempfile.mktemp(suffix=".sqlite", dir=cache_dir)
    config = LLMConfig(model=MODEL, base_url=base_url, concurrency=concurrency, max_retries=5, timeout_s=60,
                       cache_path=cache_path)
    client = LLMClient(config)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = client.complete(requests, progress=True)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert all(r.status == "ok" and not r.cached and r.text == VERDICT for r in results)
    assert len(client.cache) == len(requests)
    client.close()
    return len(requests) / elapsed, cpu / len(requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the double waits per request")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (baseline, toolqual), ABBA-ordered")
    args = parser.parse_args()

    os.environ["OPENAI_API_KEY"] = "bench-key-not-a-secret"
    server = subprocess.Popen(
        [sys.executable, "-m", "toolqual_utils.testing.openai_double", "--delay", str(args.latency),
         "--content", VERDICT],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = server.stdout.readline().split()
        assert line and line[0] == "BASE_URL", f"double did not start: {line}"
        base_url = line[1]
        bound = args.concurrency / args.latency
        print(f"test double (separate process) at {base_url}: latency {args.latency * 1000:.0f} ms, "
              f"concurrency {args.concurrency}, {args.n} requests per run, {os.cpu_count()} CPUs")
        print(f"theoretical bound: concurrency / latency = {bound:.0f} req/s")

        with tempfile.TemporaryDirectory() as cache_dir:
            warm = judge_requests(300, "warmup")
            asyncio.run(run_baseline(base_url, warm, args.concurrency))
            run_toolqual(base_url, warm, args.concurrency, cache_dir)

            figures: dict[str, list[float]] = {"baseline": [], "toolqual": []}
            cpu_per_request: dict[str, list[float]] = {"baseline": [], "toolqual": []}
            order: list[str] = []
            for round_index in range(args.rounds):
                order += ["baseline", "toolqual"] if round_index % 2 == 0 else ["toolqual", "baseline"]
            for run_index, which in enumerate(order):
                requests = judge_requests(args.n, f"run{run_index}")
                if which == "baseline":
                    rate, cpu = asyncio.run(run_baseline(base_url, requests, args.concurrency))
                else:
                    rate, cpu = run_toolqual(base_url, requests, args.concurrency, cache_dir)
                figures[which].append(rate)
                cpu_per_request[which].append(cpu)
                print(f"  run {run_index + 1}: {which:<8} {rate:7.1f} req/s  ({rate / bound:.2f} of bound)  "
                      f"client CPU {cpu * 1e6:6.0f} us/request", flush=True)

        baseline = statistics.mean(figures["baseline"])
        toolqual = statistics.mean(figures["toolqual"])
        print(f"bare AsyncOpenAI + gather + semaphore: {baseline:7.1f} req/s (mean of {len(figures['baseline'])})")
        print(f"toolqual LLMClient (fresh cache)     : {toolqual:7.1f} req/s (mean of {len(figures['toolqual'])})")
        print(f"ratio toolqual / baseline            : {toolqual / baseline:.3f}  (target >= 0.95)")
        print(f"baseline / bound                     : {baseline / bound:.3f}")
        cpu_baseline = statistics.mean(cpu_per_request["baseline"]) * 1e6
        cpu_toolqual = statistics.mean(cpu_per_request["toolqual"]) * 1e6
        print(f"client CPU per request (less noisy)  : baseline {cpu_baseline:.0f} us, toolqual {cpu_toolqual:.0f} us "
              f"(ratio {cpu_toolqual / cpu_baseline:.2f})")
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
