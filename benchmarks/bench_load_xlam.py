"""Benchmark: load and check a 60,000-record xLAM/APIGen file (the size of ``xlam-function-calling-60k``).

What is measured, each in a child process running the real CLI (wall time with ``time.perf_counter``,
peak memory = the child's ``ru_maxrss`` from ``os.wait4``):

1. ``toolqual load xlam_60k.json --out data.jsonl``: one JSON array of 60,000 records, streamed
   (ijson), converted (xLAM types -> JSON Schema, answers -> calls), validated and written;
2. ``toolqual check data.jsonl --out rules.csv``: the deterministic checks and heuristics on all of them.

Targets: load + check under 60 s, and each step under 2 GiB peak memory, on 2 cores.

Side by side, to show what streaming buys: the same load at 10,000 records (flat memory means the peak
barely grows with the file), the same 60,000 records as JSON Lines, and a bare ``python -c json.load``
of the 60,000- and 10,000-record arrays (reading the file whole: its peak grows with the file).

Input (built in a temporary folder, not timed): the five valid records of the hand-written fixture
``tests/fixtures/formats/xlam_sample.json`` (single and parallel calls, call-nothing, tools given as a
list and answers as a Python literal, a parse failure) replicated round-robin with new ids, written as
one indented JSON array like the released file.

Usage: ``python benchmarks/bench_load_xlam.py [--records 60000] [--keep]``
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

FIXTURE = ROOT / "tests" / "fixtures" / "formats" / "xlam_sample.json"
TARGET_SECONDS = 60.0
TARGET_BYTES = 2 * 1024**3
VALID_IDS = (0, 1, 2, 3, 6)  # the fixture's records that convert (4 and 5 are its planted rejects)


def build(path: Path, n_records: int, *, lines: bool = False) -> int:
    templates = [r for r in json.loads(FIXTURE.read_text(encoding="utf-8")) if r["id"] in VALID_IDS]
    with path.open("w", encoding="utf-8") as handle:
        if not lines:
            handle.write("[\n")
        for index in range(n_records):
            record = {**templates[index % len(templates)], "id": index}
            if lines:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                text = json.dumps(record, ensure_ascii=False, indent=4)
                handle.write(("    " + text.replace("\n", "\n    ")) + (",\n" if index + 1 < n_records else "\n"))
        if not lines:
            handle.write("]\n")
    return path.stat().st_size


def run(command: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit status) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and child.stderr is not None:
        print(child.stderr.read().decode("utf-8", "replace"), file=sys.stderr)
    return wall, usage.ru_maxrss * 1024, code


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "toolqual_utils.cli", *args]


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--small", type=int, default=10_000, help="the smaller load, for the memory comparison")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    mib = 2**20
    with work_folder("toolqual_bench_xlam_", args.keep) as work:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        array = work / "xlam_60k.json"
        began = time.perf_counter()
        size = build(array, args.records)
        print(f"built {args.records:,} xLAM records as one JSON array ({size / mib:,.0f} MiB) "
              f"in {time.perf_counter() - began:.1f} s")

        data = work / "data.jsonl"
        load_wall, load_rss, load_code = run(cli("load", str(array), "--out", str(data), "--quiet"))
        written = count_lines(data) if load_code == 0 else 0
        print(f"load  {args.records:,} records (streamed array): {load_wall:6.2f} s, peak RSS {load_rss / mib:7.1f} MiB, "
              f"{written:,} instances ({args.records / load_wall:,.0f} records/s)")
        rules = work / "rules.csv"
        check_wall, check_rss, check_code = run(cli("check", str(data), "--out", str(rules)))
        verdict_rows = count_lines(rules) - 1 if check_code == 0 else 0
        print(f"check {written:,} instances:                 {check_wall:6.2f} s, peak RSS {check_rss / mib:7.1f} MiB, "
              f"{verdict_rows:,} verdict rows")
        total = load_wall + check_wall
        if load_code != 0 or check_code != 0 or written != args.records:
            print(f"failed: load exit {load_code}, check exit {check_code}, {written:,} of {args.records:,} loaded")
            return 1
        ok = total < TARGET_SECONDS and max(load_rss, check_rss) < TARGET_BYTES
        print(f"target load + check < {TARGET_SECONDS:.0f} s and < 2 GiB: {'met' if ok else 'MISSED'} "
              f"(time {total / TARGET_SECONDS:.2f} of budget, memory {max(load_rss, check_rss) / TARGET_BYTES:.2f} of budget)")

        print("side by side:")
        small = work / "xlam_small.json"
        build(small, args.small)
        small_wall, small_rss, _ = run(cli("load", str(small), "--out", str(work / "small.jsonl"), "--quiet"))
        print(f"  load {args.small:,} records (streamed array):   {small_wall:6.2f} s, peak RSS {small_rss / mib:7.1f} MiB; "
              f"{args.records:,}/{args.small:,} records -> peak x{load_rss / small_rss:.2f}, time x{load_wall / small_wall:.2f}")
        lines = work / "xlam_60k.jsonl"
        build(lines, args.records, lines=True)
        lines_wall, lines_rss, _ = run(cli("load", str(lines), "--out", str(work / "lines.jsonl"), "--quiet"))
        print(f"  load {args.records:,} records as JSON Lines:     {lines_wall:6.2f} s, peak RSS {lines_rss / mib:7.1f} MiB; "
              f"array/JSONL time x{load_wall / lines_wall:.2f}, peak x{load_rss / lines_rss:.2f}")
        parse = [sys.executable, "-c", "import json, sys; json.load(open(sys.argv[1]))"]
        parse_wall, parse_rss, _ = run([*parse, str(array)])
        _small_parse_wall, small_parse_rss, _ = run([*parse, str(small)])
        print(f"  json.load of the whole array, parse only:   {parse_wall:6.2f} s, peak RSS {parse_rss / mib:7.1f} MiB; "
              f"{args.records:,}/{args.small:,} records -> peak x{parse_rss / small_parse_rss:.2f} "
              f"(grows with the file; the streamed load's peak x{load_rss / small_rss:.2f})")
        return 0 if ok else 2  # 2: ran, a target missed (1: something failed)


if __name__ == "__main__":
    sys.exit(main())
