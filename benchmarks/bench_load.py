"""Benchmark ``toolqual load`` at ToolBench scale: 125,000 answer records -> canonical JSONL.

What is measured: the real CLI (``python -m toolqual_utils.cli load SRC --out OUT --quiet``) in a child
process: format detection, streaming read, conversion, pydantic validation and writing canonical JSONL.
Wall time with ``time.perf_counter`` and the child's CPU time (user + system, which holds on a busy
machine); peak memory is the child's ``ru_maxrss`` from ``os.wait4``
(tracemalloc would slow the run several-fold). Target: under 30 s of CPU and under 2 GiB for 125,000 records; merely parsing the same file is
measured beside it and the ratio printed.

Input (built in a temporary folder, not timed):

1. **JSON Lines of answer records** (the main figure): each line is one real ToolBench /
   StableToolBench answer file (the 18 with a trajectory in ``data/sources``, replicated round-robin
   with new ``id`` s). The search tree (``tree``, ``compare_candidates``) and the earlier attempts in
   ``train_messages`` are left out: the loader never reads them, and with them the 125,000 records
   would be ~6.9 GB (55 KB each on average) -- that is not a file anyone would stream in 30 s, and the
   ToolBench training release (``toolllama_G123_dfs_train.json``) does not carry them either. Each
   record keeps ``answer_generation`` {query, function, train_messages: [final attempt], final_answer,
   finish_type, valid_data} and ``win``: the fields the loader uses, in ToolBench's own layout.
2. **One file per record, full upstream layout** (``G1_answer/<n>_ChatGPT_DFS_woFilter_w2.json`` with the
   tree), for a smaller count (``--files``, default 5,000): the real on-disk format; the rate is
   extrapolated to 125,000 and reported as such.

Usage: ``python benchmarks/bench_load.py [--records 125000] [--files 2000] [--keep]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, work_folder  # benchmarks/ is first on sys.path when a script runs

SOURCES = ROOT / "data" / "sources"
TARGET_SECONDS = 30.0
TARGET_BYTES = 2 * 1024**3
MISSED = 2  # exit status: the benchmark ran and printed its figures, and a target was missed


def real_answer_files() -> list[Path]:
    files = sorted((SOURCES / "toolbench" / "data_example" / "answer").rglob("*.json"))
    files += sorted((SOURCES / "stabletoolbench" / "data_example" / "answer").rglob("*.json"))
    files = [f for f in files if json.loads(f.read_text(encoding="utf-8"))["answer_generation"].get("train_messages")]
    if not files:
        raise SystemExit(f"bench_load: no ToolBench answer files with a trajectory under {SOURCES}")
    return files


def trimmed_line_template(path: Path) -> tuple[str, str]:
    """(prefix, suffix) of a JSONL line so that ``prefix + id + suffix`` is the record with that id."""
    record = json.loads(path.read_text(encoding="utf-8"))
    generation = record["answer_generation"]
    kept = {key: generation[key] for key in ("query", "function", "final_answer", "finish_type", "valid_data")
            if key in generation}
    kept["train_messages"] = [generation["train_messages"][-1]]
    line = json.dumps({"id": "\x00", "win": record.get("win"), "answer_generation": kept}, ensure_ascii=False)
    prefix, suffix = line.split('"\\u0000"')
    return prefix + '"', '"' + suffix


def build_jsonl(out: Path, n_records: int) -> int:
    templates = [trimmed_line_template(f) for f in real_answer_files()]
    with out.open("w", encoding="utf-8") as handle:
        for index in range(n_records):
            prefix, suffix = templates[index % len(templates)]
            handle.write(f"{prefix}bench-{index}{suffix}\n")
    return out.stat().st_size


def build_files(folder: Path, n_files: int) -> int:
    sources = [f.read_bytes() for f in real_answer_files()]
    total = 0
    for index in range(n_files):
        group = folder / f"G{index % 3 + 1}_answer"
        group.mkdir(parents=True, exist_ok=True)
        target = group / f"{index}_ChatGPT_DFS_woFilter_w2.json"
        target.write_bytes(sources[index % len(sources)])
        total += len(sources[index % len(sources)])
    return total


def run_cli(*args: str) -> tuple[float, int, int, float]:
    """(wall seconds, peak RSS bytes, exit status, CPU seconds) of one ``toolqual`` run in a child process."""
    command = [sys.executable, "-m", "toolqual_utils.cli", *args]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stderr = child.stderr.read().decode("utf-8", "replace") if child.stderr else ""
    exit_status = os.waitstatus_to_exitcode(status)
    if exit_status != 0:
        print(stderr, file=sys.stderr)
    return wall, usage.ru_maxrss * 1024, exit_status, usage.ru_utime + usage.ru_stime


def parse_only(path: Path) -> tuple[float, float]:
    """(wall, CPU seconds) of merely reading ``path`` and ``json.loads`` on every line, in this process:
    the floor any loader of this file stands on, measured beside it."""
    start, start_cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
    return time.perf_counter() - start, time.process_time() - start_cpu


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=125_000)
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    with work_folder("toolqual_bench_load_", args.keep) as work:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        tiny = work / "tiny.jsonl"
        tiny.write_text((ROOT / "tests" / "fixtures" / "loaders" / "handwritten_canonical.jsonl").read_text())
        startups = [run_cli("load", str(tiny), "--out", str(work / "tiny_out.jsonl"), "--quiet")[:2] for _ in range(3)]
        startup, startup_rss = min(startups)  # the least-disturbed of three runs (the machine is shared)
        print(f"CLI start-up (3-record file):            {startup:6.2f} s, peak RSS {startup_rss / 2**20:7.1f} MiB")

        source = work / "answers.jsonl"
        began = time.perf_counter()
        size = build_jsonl(source, args.records)
        print(f"built {args.records:,} JSONL answer records ({size / 2**20:,.0f} MiB) in {time.perf_counter() - began:.1f} s")
        out = work / "answers_canonical.jsonl"
        parse_wall, parse_cpu = parse_only(source)
        print(f"parse only (json.loads per line):     {parse_wall:6.2f} s wall, {parse_cpu:6.2f} s CPU")
        wall, rss, code, cpu = run_cli("load", str(source), "--out", str(out), "--quiet")
        written = count_lines(out) if code == 0 else 0
        print(f"load {args.records:,} records -> canonical:  {wall:6.2f} s wall, {cpu:6.2f} s CPU, peak RSS "
              f"{rss / 2**20:7.1f} MiB, {written:,} written ({args.records / wall:,.0f} records/s, "
              f"{size / 2**20 / wall:,.0f} MiB/s), output {out.stat().st_size / 2**20 if out.exists() else 0:,.0f} MiB")
        print(f"load / parse: wall x{wall / parse_wall:.1f}, CPU x{cpu / max(parse_cpu, 1e-9):.1f} "
              f"(CPU time holds whatever else the machine runs; load average now {os.getloadavg()[0]:.1f})")
        if code != 0 or written != args.records:
            print(f"load failed (exit {code}, {written:,} of {args.records:,} written)")
            return 1
        budget = TARGET_SECONDS * args.records / 125_000  # the target is for 125,000 records; scaled for --records
        met = cpu < budget and rss < TARGET_BYTES
        print(f"target < {budget:.0f} s and < 2 GiB for {args.records:,} records: {'met' if met else 'MISSED'} "
              f"(CPU time {cpu / budget:.2f} of budget, wall {wall / budget:.2f}, "
              f"memory {rss / TARGET_BYTES:.2f} of budget)")

        if args.files:
            folder = work / "answer"
            size_files = build_files(folder, args.files)
            out_files = work / "files_canonical.jsonl"
            wall_f, rss_f, code_f, _cpu_f = run_cli("load", str(folder), "--out", str(out_files), "--quiet")
            written_f = count_lines(out_files) if code_f == 0 else 0
            per_record = max(wall_f - startup, wall_f / 2) / max(args.files, 1)  # never below half the wall time
            print(f"load {args.files:,} one-file-per-record full answer trees ({size_files / 2**20:,.0f} MiB): "
                  f"{wall_f:6.2f} s, peak RSS {rss_f / 2**20:7.1f} MiB, {written_f:,} written; "
                  f"extrapolated to {args.records:,} files: {startup + per_record * args.records:,.0f} s "
                  f"({size_files / args.files * args.records / 2**30:,.1f} GiB of JSON to parse)")
        return 0 if met else MISSED


if __name__ == "__main__":
    sys.exit(main())
