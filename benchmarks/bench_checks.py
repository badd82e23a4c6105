"""Benchmark the deterministic checks (and, separately, the heuristics) on 125,000 instances.

The bundled canonical files are replicated with new ids up to the target count (ToolBench's training set is
~125K instances). Prints wall time, instances per second and peak memory (ru_maxrss) for:

1. ``run_checks`` (rule verdicts, 4 rows per instance),
2. ``run_heuristics`` given the findings (3 rows per instance),
3. ``offline_verdicts`` (what ``toolqual check`` writes: both, merged, 6 rows per instance).

Loading/replication time is reported apart and not counted. Target: (1) under 10 s.

Usage: .venv/bin/python benchmarks/bench_checks.py [--n 125000]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolqual_utils.checks import find_issues, run_checks  # noqa: E402
from toolqual_utils.heuristics import offline_verdicts, run_heuristics  # noqa: E402
from toolqual_utils.io import read_instances  # noqa: E402

FILES = ("bfcl.jsonl", "seal_tools_dev.jsonl", "toolalpaca_eval.jsonl", "toolalpaca_train_format.jsonl",
         "toolbench_answers.jsonl", "toolbench_queries.jsonl")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(label: str, n: int, fn):
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {elapsed:8.2f} s  {n / elapsed:10,.0f} inst/s  peak RSS {peak_mb():7.0f} MB")
    return result, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=125_000)
    args = parser.parse_args()

    start = time.perf_counter()
    base = [inst for name in FILES for inst in read_instances(ROOT / "data" / name)]
    instances = []
    copy_index = 0
    while len(instances) < args.n:
        for inst in base:
            if len(instances) >= args.n:
                break
            instances.append(inst if copy_index == 0 else inst.model_copy(update={"id": f"{inst.id}~{copy_index}"}))
        copy_index += 1
    n = len(instances)
    n_calls = sum(len(i.calls or []) for i in instances)
    print(f"{n:,} instances ({len(base):,} bundled, replicated x{copy_index}), {n_calls:,} calls; "
          f"load+replicate {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB\n")

    verdicts, t_rules = timed("1. run_checks (rules)", n, lambda: run_checks(instances))
    findings, _ = timed("   find_issues (findings only)", n, lambda: find_issues(instances))
    heuristic, t_heur = timed("2. run_heuristics (given findings)", n, lambda: run_heuristics(instances, findings))
    merged, t_all = timed("3. offline_verdicts (check command)", n, lambda: offline_verdicts(instances))
    print(f"\nrows: rules {len(verdicts):,}, heuristics {len(heuristic):,}, merged {len(merged):,}; "
          f"findings {len(findings):,}")
    print(f"rules target < 10 s: {'met' if t_rules < 10 else 'MISSED'} ({t_rules:.2f} s); "
          f"heuristics/rules time ratio {t_heur / t_rules:.2f}; merged/rules {t_all / t_rules:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
