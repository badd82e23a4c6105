"""Benchmark `toolqual check` (deterministic checks + offline heuristics) on 125,000 instances.

Two workloads, both measured side by side in one run:

1. **The bundled mix** (the target of issue 12): every bundled canonical file (ToolAlpaca, ToolBench /
   StableToolBench, Seal-Tools, BFCL, with their long tool lists) replicated with new ids up to 125,000
   instances and written to one JSONL file. `toolqual check FILE --out rules.csv` runs as a subprocess (what
   a user runs: reading, validation, checks, heuristics, writing), and its wall time is compared with the
   time it takes merely to parse the same file (``json.loads`` of every line, measured in this process
   before and after the check run; the mean is used, so load on a shared machine hits both sides).
   Targets: check wall time <= 6x parse time, peak memory of the check (all its processes, sampled from
   /proc) < 2 GiB. CPU time is printed too: on a machine other processes share, wall times stretch by
   how much CPU the check gets, while its CPU time is the work itself. The check runs as installed (the
   compiled checks once `make compiled` has built them: `make bench` does) and, side by side, on the pure
   Python modules (``TOOLQUAL_COMPILED=0``); the two verdict tables must be identical. The targets are
   judged on the run as installed; both ratios are printed.
2. With ``--functions``, the in-process functions on the same instances, all held in memory:
   ``run_checks`` (rules only) and ``offline_verdicts`` (rules + heuristics, what `check` writes).

Usage: .venv/bin/python benchmarks/bench_checks.py [--n 125000] [--jobs N] [--functions]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import BUNDLED_FILES, write_mix  # noqa: E402

from toolqual_utils.checks import run_checks  # noqa: E402
from toolqual_utils.compiled import status  # noqa: E402
from toolqual_utils.heuristics import offline_verdicts  # noqa: E402
from toolqual_utils.io import read_instances  # noqa: E402

RATIO_TARGET = 6.0
INSTALLED = status()  # this process imported the package as `toolqual check` will
MEMORY_TARGET_MB = 2048
MISSED = 2  # exit status: the benchmark ran and printed its figures, and a target was missed


def parse_seconds(path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to parse every line with json.loads."""
    start, start_cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            json.loads(line)
    return time.perf_counter() - start, time.process_time() - start_cpu


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc), in KiB; 0 when unreadable."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_measured(command: list[str], env: dict[str, str] | None = None
                 ) -> tuple[subprocess.CompletedProcess, float, float, float]:
    """Run ``command``; returns (result, wall seconds, CPU seconds of it and its workers, peak MiB of the
    whole process tree, sampled every 0.2 s; the largest single process's max RSS where /proc is missing)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = 0
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}) as proc:
        sampler_stop = threading.Event()

        def sample() -> None:
            nonlocal peak_kib
            while not sampler_stop.wait(0.2):
                peak_kib = max(peak_kib, _tree_rss_kib(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = proc.communicate()
        sampler_stop.set()
        sampler.join()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if not peak_kib:
        peak_kib = after.ru_maxrss
    done = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    return done, wall, cpu, peak_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=125_000)
    parser.add_argument("--functions", action="store_true",
                        help="also time run_checks and offline_verdicts in-process (holds every instance)")
    parser.add_argument("--jobs", type=int, help="pass --jobs N to toolqual check (default: its own default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="toolqual_bench_checks_") as tmp:
        mix = Path(tmp) / "mix.jsonl"
        write_mix(mix, args.n)
        size = mix.stat().st_size
        print(f"bundled mix: {args.n:,} instances replicated from {len(BUNDLED_FILES)} bundled files, "
              f"{size / 2**20:,.0f} MiB")

        parse_before, parse_cpu_before = parse_seconds(mix)
        # The check as installed (compiled checks once `make compiled` built them), then the same run on the pure
        # Python modules (TOOLQUAL_COMPILED=0), side by side; the parse is timed before and after both.
        runs = {}
        modes = [("as installed", {})] + ([("pure Python", {"TOOLQUAL_COMPILED": "0"})] if INSTALLED.active else [])
        for label, env in modes:
            out = Path(tmp) / f"rules-{len(runs)}.csv"
            command = [sys.executable, "-m", "toolqual_utils.cli", "check", str(mix), "--out", str(out)]
            if args.jobs is not None:
                command += ["--jobs", str(args.jobs)]
            done, check_time, check_cpu, peak_mb = run_measured(command, env)
            if done.returncode != 0:
                print(done.stdout, done.stderr, sep="\n")
                return 1
            runs[label] = (done, check_time, check_cpu, peak_mb, out)
        parse_after, parse_cpu_after = parse_seconds(mix)
        parse_time = (parse_before + parse_after) / 2
        parse_cpu = (parse_cpu_before + parse_cpu_after) / 2
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} CPUs, load average {load} (other processes share them: wall times stretch)")
        print(f"checks as installed: {INSTALLED.label} ({INSTALLED.reason})")
        print(f"parse (json.loads per line)    {parse_time:8.2f} s wall  {parse_cpu:8.2f} s CPU  "
              f"(before {parse_before:.2f} s, after {parse_after:.2f} s)")
        for label, (done, check_time, check_cpu, peak_mb, _) in runs.items():
            print(f"toolqual check, {label:<14} {check_time:8.2f} s wall  {check_cpu:8.2f} s CPU (all processes)  "
                  f"{args.n / check_time:,.0f} inst/s; check / parse {check_time / parse_time:.2f} wall, "
                  f"{check_cpu / parse_cpu:.2f} CPU")
        done, check_time, check_cpu, peak_mb, out = runs["as installed"]
        print(done.stdout.splitlines()[0])
        if "pure Python" in runs:
            pure = runs["pure Python"]
            same = out.read_bytes() == pure[4].read_bytes()
            print(f"compiled / pure Python: {check_time / pure[1]:.2f} wall, {check_cpu / pure[2]:.2f} CPU; "
                  f"the same verdict table: {'yes' if same else 'NO'}")
            if not same:
                return 1
        ratio = check_time / parse_time
        print(f"check / parse, wall time: {ratio:.2f} (target <= {RATIO_TARGET:g}: "
              f"{'met' if ratio <= RATIO_TARGET else 'MISSED'}); CPU time: {check_cpu / parse_cpu:.2f} "
              f"(the work, whatever the load; split over the worker processes)")
        print(f"peak memory of the check (all its processes) {peak_mb / 1024:.2f} GiB (target < "
              f"{MEMORY_TARGET_MB / 1024:g} GiB: {'met' if peak_mb < MEMORY_TARGET_MB else 'MISSED'})")

        met = ratio <= RATIO_TARGET and peak_mb < MEMORY_TARGET_MB
        if not args.functions:
            return 0 if met else MISSED
        start = time.perf_counter()
        instances = read_instances(mix)
        print(f"\nin-process, read_instances (parse + validate) {time.perf_counter() - start:.2f} s")
        for label, function in (("run_checks (rules)", run_checks), ("offline_verdicts (rules + heuristics)",
                                                                      offline_verdicts)):
            start = time.perf_counter()
            rows = function(instances)
            elapsed = time.perf_counter() - start
            print(f"{label:<38} {elapsed:8.2f} s  {len(instances) / elapsed:10,.0f} inst/s  {len(rows):,} rows")
    return 0 if met else MISSED


if __name__ == "__main__":
    sys.exit(main())
