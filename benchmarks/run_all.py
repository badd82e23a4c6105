"""Run every benchmark in turn (``make bench``); each prints its own figures and targets.

Exit status of a benchmark: 0 = ran and met its targets, 2 = ran and printed its figures but missed a
target (wall-time targets stretch on a shared or busy machine: read the CPU-time and ratio lines), any
other = it failed. ``make bench`` fails only when a benchmark failed; missed targets are listed at the
end so they are not lost in the output.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_load.py", "bench_load_xlam.py", "bench_checks.py", "bench_llm_throughput.py", "bench_judge_e2e.py",
           "bench_ice_adaptive.py")
MISSED = 2


def main() -> int:
    outcome: dict[str, str] = {}
    for script in SCRIPTS:
        print(f"\n=== {script} ===", flush=True)
        code = subprocess.run([sys.executable, str(HERE / script)]).returncode
        outcome[script] = "ok" if code == 0 else "ran, target missed" if code == MISSED else f"FAILED (exit {code})"
    print(f"\n=== summary ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}) ===")
    for script, result in outcome.items():
        print(f"  {script:28s} {result}")
    return 1 if any(result.startswith("FAILED") for result in outcome.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
