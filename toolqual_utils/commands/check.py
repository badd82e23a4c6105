"""``toolqual check``: offline rule and heuristic verdicts for every instance (no network)."""
from __future__ import annotations

import argparse

import pandas as pd

from ..checks import check_findings
from ..heuristics import offline_verdicts
from ..io import TABLE_FORMATS, write_table
from ..schema import CRITERIA
from ._inputs import check_table_path, read_canonical_inputs

HELP = "rule and heuristic verdicts for the six criteria, offline (no model calls)"
DESCRIPTION = """\
Run the deterministic checks (unknown function, missing/unexpected/empty parameters, type and enum
mismatches, unparseable arguments, placeholders, values not grounded in the instruction, identical
repeated calls, no call for a request) and the offline heuristics (specificity, coherence, solvability)
on canonical JSONL files. Writes one verdict row per instance x criterion: label 0 = error, 1 = holds,
empty with status unscored:needs_model where only a model can decide (the judge command fills those).

example:
  toolqual check data/toolalpaca_eval.jsonl --out results/rules.csv --findings results/findings.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", metavar="DATA.jsonl", help="canonical JSONL file(s)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="verdict table; format from the extension: " + ", ".join(TABLE_FORMATS))
    parser.add_argument("--findings", metavar="FILE",
                        help="also write one row per finding (check, call, argument, value, expected)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first bad line instead of skipping it")


def run(args: argparse.Namespace) -> int:
    check_table_path(args.out, "--out")
    if args.findings:
        check_table_path(args.findings, "--findings")
    instances, n_rejected = read_canonical_inputs(args.data, strict=args.strict)

    verdicts = offline_verdicts(instances)
    write_table(verdicts, args.out)
    if args.findings:
        write_table(check_findings(instances), args.findings)

    print(f"{len(instances)} instances checked ({n_rejected} lines skipped); verdicts -> {args.out}"
          + (f"; findings -> {args.findings}" if args.findings else ""))
    print(summary_table(verdicts).to_string(index=False))
    return 0


def summary_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per criterion: n_errors (label 0), n_holds (label 1), n_unscored, in ``CRITERIA`` order."""
    rows = []
    for criterion in CRITERIA:
        part = verdicts[verdicts["criterion"] == criterion]
        rows.append({
            "criterion": criterion,
            "n_errors": int((part["label"] == 0).sum()),
            "n_holds": int((part["label"] == 1).sum()),
            "n_unscored": int(part["label"].isna().sum()),
        })
    return pd.DataFrame(rows, columns=["criterion", "n_errors", "n_holds", "n_unscored"])
