"""End to end `toolqual judge` vs a bare AsyncOpenAI loop making the same requests, against the test double.

The OpenAI-compatible TEST DOUBLE (no model; its answers are scripted, never a judgement) runs in its own
process and answers every chat request after a fixed latency (default 100 ms) with a well-formed judge
answer (:class:`toolqual_utils.judge.scripted.ScriptedJudge`, every criterion holds).

Workload: ~4,000 distinct instances: the bundled canonical files replicated, each copy with a new id and
its instruction marked with a copy tag (so no two prompts are identical: the cache answers an identical
prompt once, and such requests would not measure the client).

Measured side by side in one run, alternating ABBA over ``--rounds``:

* **toolqual**: ``toolqual judge MIX --out verdicts.csv --concurrency 64`` as a subprocess with a fresh
  cache file: reading, validation, the deterministic checks, prompt building, the requests (cached as they
  arrive, ledger, progress bar), parsing the answers into verdicts, writing the table. Wall time of the
  whole process, interpreter start included.
* **bare loop**: ``AsyncOpenAI`` + ``asyncio.gather`` + ``asyncio.Semaphore(64)`` sending the same
  request bodies with ``client.chat.completions.create`` (taken from ``toolqual judge --export-batch``,
  made before the timed runs; identical bodies sent once), nothing else: the SDK as a user writes the
  loop, on its default HTTP layer (httpx). Wall time of the sends only. This is the baseline of the
  target.
* **bare loop, aiohttp** (shown, not the target's baseline): the same loop with
  ``http_client=DefaultAioHttpClient()``, the SDK's aiohttp layer that toolqual itself uses when aiohttp
  is installed; it shows how much of toolqual's speed is that layer and how much is the rest.

Prints the times, the ratio bare / toolqual (throughput of the whole command relative to the bare
client; target >= 0.9) and the same ratio against the aiohttp loop, and the CPU time of each side
(toolqual's includes its planning process).

**First request**: how long after its start (interpreter start included) toolqual's first request reached
the double, which records arrival times; target: every run within 1.0 s. Shown beside it, the same for a
bare script that imports the SDK, makes an ``AsyncOpenAI`` client on the aiohttp layer and sends one
request: what importing the SDK alone takes on this machine, below which no client built on it can go.

    .venv/bin/python benchmarks/bench_judge_e2e.py [--n 4000] [--concurrency 64] [--latency 0.1] [--rounds 1]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import BUNDLED_FILES, ROOT, bare_loop, write_mix

sys.path.insert(0, str(ROOT))

MODEL = "bench-judge"
RATIO_TARGET = 0.9
#: seconds from the start of `toolqual judge` to its first request at the server, interpreter start included
FIRST_REQUEST_TARGET = 1.0
#: the bare script of the first-request comparison: import the SDK, make a client, send one request
BARE_FIRST_REQUEST = '''
import asyncio, json, os, sys
from openai import AsyncOpenAI, DefaultAioHttpClient

async def main():
    client = AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=sys.argv[1],
                         http_client=DefaultAioHttpClient())
    await client.chat.completions.create(**json.loads(sys.argv[2]))
    await client.close()

asyncio.run(main())
'''
MISSED = 2  # exit status: the benchmark ran and printed its figures, and a target was missed


def serve(latency: float) -> int:
    """Run the double with the scripted judge until stdin closes (``--serve``): prints BASE_URL and, when
    asked (a line "FIRST" on stdin), the time of the first request received since the last "RESET"."""
    from toolqual_utils.judge.scripted import ScriptedJudge
    from toolqual_utils.testing import OpenAIDouble

    judge = ScriptedJudge()
    state = {"first": None}

    def script(body: dict):
        if state["first"] is None:
            state["first"] = time.time()
        return replace(judge(body), delay_s=latency)

    with OpenAIDouble(script) as double:
        print("BASE_URL", double.base_url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "RESET":
                state["first"] = None
                judge.asked.clear()
                print("OK", flush=True)
            elif command == "FIRST":
                print("FIRST", state["first"] if state["first"] is not None else "none", len(judge.asked), flush=True)
    return 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def judge_command(mix: Path, base_url: str, cache: Path, concurrency: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "toolqual_utils.cli", "judge", str(mix), "--model", MODEL, "--base-url", base_url,
            "--concurrency", str(concurrency), "--cache", str(cache), *extra]


def run_toolqual(mix: Path, base_url: str, tmp: Path, concurrency: int, run: int) -> tuple[float, float, str]:
    cache, out = tmp / f"cache{run}.sqlite", tmp / f"verdicts{run}.csv"
    command = judge_command(mix, base_url, cache, concurrency, "--out", str(out))
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"toolqual judge failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, _children_cpu() - cpu_before, done.stdout


def run_bare_first_request(base_url: str, body: dict) -> float:
    """Run the bare script (:data:`BARE_FIRST_REQUEST`) to its end; returns when it was started (time.time())."""
    started = time.time()
    done = subprocess.run([sys.executable, "-c", BARE_FIRST_REQUEST, base_url, json.dumps(body)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the bare first-request script failed:\n{done.stderr}")
    return started


async def run_bare(base_url: str, bodies: list[dict], concurrency: int, aiohttp: bool = False) -> tuple[float, float]:
    from openai import AsyncOpenAI, DefaultAioHttpClient  # the baseline; toolqual imports openai only in llm.py

    extra = {"http_client": DefaultAioHttpClient()} if aiohttp else {}
    client = AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=base_url, max_retries=5, timeout=60,
                         **extra)
    answers, elapsed, cpu = await bare_loop(client, bodies, concurrency)
    assert all(answers), "the double sent an empty answer"
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="distinct instances")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the double waits per request")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (bare, toolqual), ABBA-ordered")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.latency)

    os.environ["OPENAI_API_KEY"] = "bench-key-not-a-secret"
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(command: str) -> list[str]:
        server.stdin.write(command + "\n")
        server.stdin.flush()
        return server.stdout.readline().split()

    try:
        line = server.stdout.readline().split()
        assert line and line[0] == "BASE_URL", f"double did not start: {line}"
        base_url = line[1]
        with tempfile.TemporaryDirectory(prefix="toolqual_bench_judge_") as name:
            tmp = Path(name)
            mix = tmp / "mix.jsonl"
            n = write_mix(mix, args.n, tag_instructions=True)
            # the requests toolqual sends, as Batch request lines (not timed); identical bodies once
            exported = tmp / "requests.jsonl"
            done = subprocess.run(judge_command(mix, base_url, tmp / "export.sqlite", args.concurrency,
                                                "--export-batch", str(exported)), cwd=ROOT, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise SystemExit(f"export failed:\n{done.stdout}\n{done.stderr}")
            bodies: dict[str, dict] = {}
            for path in sorted(tmp.glob("requests*.jsonl")):
                for text in path.open(encoding="utf-8"):
                    body = json.loads(text)["body"]
                    bodies.setdefault(json.dumps(body, sort_keys=True), body)
            requests = list(bodies.values())
            print(f"test double (separate process) at {base_url}: latency {args.latency * 1000:.0f} ms, "
                  f"concurrency {args.concurrency}; {n:,} distinct instances from {len(BUNDLED_FILES)} bundled "
                  f"files -> {len(requests):,} distinct model requests; {os.cpu_count()} CPUs, load average "
                  + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
            print(f"theoretical bound: {len(requests) * args.latency / args.concurrency:.1f} s "
                  f"(requests x latency / concurrency)")

            times: dict[str, list[float]] = {"bare": [], "bare-aio": [], "toolqual": []}
            firsts: list[float] = []
            bare_firsts: list[float] = []
            order: list[str] = []
            for round_index in range(args.rounds):
                one_round = ["bare", "bare-aio", "toolqual"]
                order += one_round if round_index % 2 == 0 else one_round[::-1]
            for run, which in enumerate(order):
                ask("RESET")
                if which.startswith("bare"):
                    elapsed, cpu = asyncio.run(run_bare(base_url, requests, args.concurrency,
                                                        aiohttp=which == "bare-aio"))
                    detail = f"{len(requests):,} requests"
                else:
                    started = time.time()
                    elapsed, cpu, stdout = run_toolqual(mix, base_url, tmp, args.concurrency, run)
                    _, first, n_asked = ask("FIRST")
                    first_after = float(first) - started if first != "none" else float("nan")
                    firsts.append(first_after)
                    sent = next((x for x in stdout.splitlines() if x.startswith("model requests")), "")
                    detail = f"first request {first_after:.2f} s after start; double answered {n_asked}; {sent}"
                    ask("RESET")
                    bare_started = run_bare_first_request(base_url, requests[0])
                    _, bare_first, _ = ask("FIRST")
                    bare_firsts.append(float(bare_first) - bare_started if bare_first != "none" else float("nan"))
                    detail += f"; a bare SDK script's first request {bare_firsts[-1]:.2f} s after its start"
                times[which].append(elapsed)
                print(f"  run {run + 1}: {which:<8} {elapsed:6.2f} s wall  {cpu:6.2f} s CPU  {detail}", flush=True)

        bare, toolqual = statistics.mean(times["bare"]), statistics.mean(times["toolqual"])
        bare_aio = statistics.mean(times["bare-aio"])
        ratio = bare / toolqual
        print(f"bare AsyncOpenAI loop (sends only)   : {bare:6.2f} s (mean of {len(times['bare'])}; the SDK's default "
              f"httpx layer)")
        print(f"bare loop on the aiohttp layer       : {bare_aio:6.2f} s (mean of {len(times['bare-aio'])}; shown, not "
              f"the target's baseline)")
        print(f"toolqual judge end to end            : {toolqual:6.2f} s (mean of {len(times['toolqual'])})")
        print(f"ratio bare / toolqual (throughput)   : {ratio:.3f} (target >= {RATIO_TARGET:g}: "
              f"{'met' if ratio >= RATIO_TARGET else 'MISSED'})")
        print(f"ratio bare aiohttp / toolqual        : {bare_aio / toolqual:.3f} (same HTTP layer on both sides)")
        first_ok = max(firsts) <= FIRST_REQUEST_TARGET
        print(f"first request after the start       : toolqual {max(firsts):.2f} s (latest of {len(firsts)}; target "
              f"<= {FIRST_REQUEST_TARGET:.1f} s: {'met' if first_ok else 'MISSED'}); a bare SDK script "
              f"{max(bare_firsts):.2f} s (importing the SDK and sending one request: the least any client on it needs)")
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            print("  (PYTHONDONTWRITEBYTECODE is set: unless toolqual_utils was compiled before, its modules are "
                  "compiled at every start, which an installed toolqual does not do)")
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0 if ratio >= RATIO_TARGET and first_ok else MISSED


if __name__ == "__main__":
    raise SystemExit(main())
