"""``toolqual check``: offline rule and heuristic verdicts for every instance (no network)."""
from __future__ import annotations

import argparse
import heapq
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import pandas as pd

from ..checks import (
    CHECK_MODULES_ENV, FINDING_COLUMNS, Finding, finding_records, findings_frame, instance_findings,
    load_check_modules, registered_checks,
)
from ..errors import ConfigError
from ..heuristics import offline_rows
from ..io import TABLE_FORMATS, TableWriter
from ..schema import CRITERIA, Instance
from ..verdicts import VERDICT_COLUMNS, VerdictRow, verdict_frame
from ._inputs import CanonicalInputs, check_table_path

HELP = "rule and heuristic verdicts for the six criteria, offline (no model calls)"
DESCRIPTION = """\
Run the deterministic checks and the offline heuristics (specificity, coherence, solvability) on
canonical JSONL files. Writes one verdict row per instance x criterion: label 0 = error, 1 = holds,
empty with status unscored:needs_model where only a model can decide (the judge command fills those).
The summary counts the verdicts per criterion and names the instances with the most suspect findings
(left to the model judge, worth a look).

example:
  toolqual check data/toolalpaca_eval.jsonl --out results/rules.csv --findings results/findings.csv
"""
#: instances per chunk written (rows are streamed out, never all held)
CHUNK_SIZE = 2000
#: instances listed under "most suspect findings" in the summary
N_SUSPECTS_SHOWN = 5


def _checks_listing() -> str:
    lines = ["checks (name, criterion, severity when it is sure, when it fires):"]
    for check in registered_checks():
        lines.append(f"  {check.name:<28} {check.criterion:<20} {check.severity}")
        lines.extend(textwrap.wrap(" ".join(check.doc.replace("``", "").split()), width=96,
                                   initial_indent="      ", subsequent_indent="      "))
    lines.append(f"Add your own: a function registered with toolqual_utils.checks.register, in a module named in "
                 f"{CHECK_MODULES_ENV} (comma-separated import paths).")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        load_check_modules()
        extra = ""
    except ConfigError as exc:  # shown here; `check` itself then stops with this message
        extra = f"\n({exc})\n"
    parser.description = DESCRIPTION + "\n" + _checks_listing() + "\n" + extra
    parser.add_argument("data", nargs="+", metavar="DATA.jsonl", help="canonical JSONL file(s)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="verdict table; format from the extension: " + ", ".join(TABLE_FORMATS))
    parser.add_argument("--findings", metavar="FILE",
                        help="also write one row per finding (check, call, argument, value, expected)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first bad line instead of skipping it")


@dataclass
class CheckSummary:
    """What ``toolqual check`` prints: verdicts per criterion, and the instances with the most suspects."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {c: {"n_errors": 0, "n_holds": 0, "n_unscored": 0} for c in CRITERIA})
    n_instances: int = 0
    n_findings: int = 0
    n_suspect: int = 0
    n_instances_with_suspects: int = 0
    _top: list[tuple[int, int, str, list[str]]] = field(default_factory=list)

    def add(self, instance: Instance, rows: Iterable[VerdictRow], findings: list[Finding]) -> None:
        self.n_instances += 1
        self.n_findings += len(findings)
        for row in rows:
            entry = self.counts.setdefault(row.criterion, {"n_errors": 0, "n_holds": 0, "n_unscored": 0})
            entry["n_errors" if row.label == 0 else "n_holds" if row.label == 1 else "n_unscored"] += 1
        suspects = [f for f in findings if f.severity == "suspect"]
        if not suspects:
            return
        self.n_suspect += len(suspects)
        self.n_instances_with_suspects += 1
        item = (len(suspects), -self.n_instances, instance.id, [f.message for f in suspects])
        if len(self._top) < N_SUSPECTS_SHOWN:
            heapq.heappush(self._top, item)
        elif item[:2] > self._top[0][:2]:
            heapq.heapreplace(self._top, item)

    def table(self) -> pd.DataFrame:
        """Per criterion: n_errors (label 0), n_holds (label 1), n_unscored, in ``CRITERIA`` order."""
        return pd.DataFrame([{"criterion": c, **self.counts[c]} for c in self.counts],
                            columns=["criterion", "n_errors", "n_holds", "n_unscored"])

    def strongest_suspects(self) -> list[tuple[str, int, list[str]]]:
        """(instance id, number of suspect findings, their messages), most suspects first."""
        ranked = sorted(self._top, key=lambda item: (-item[0], -item[1]))
        return [(iid, n, messages) for n, _, iid, messages in ranked]

    def suspects_text(self) -> str:
        if not self.n_suspect:
            return "no suspect findings."
        lines = [f"{self.n_suspect} suspect findings on {self.n_instances_with_suspects} instances are left to the "
                 f"model judge (`toolqual judge`); the instances with the most:"]
        for iid, n, messages in self.strongest_suspects():
            shown = "; ".join(messages[:3]) + (f"; and {len(messages) - 3} more" if len(messages) > 3 else "")
            lines.append("  " + textwrap.shorten(f"{iid} ({n}): {shown}", width=220, placeholder=" ..."))
        return "\n".join(lines)


def check_chunks(instances: Iterable[Instance], summary: CheckSummary | None = None,
                 chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[list[VerdictRow], list[Finding]]]:
    """Offline verdict rows (rules + heuristics, :func:`~toolqual_utils.heuristics.offline_rows`) and
    findings, ``chunk_size`` instances at a time; ``summary`` is updated as they go."""
    rows: list[VerdictRow] = []
    findings: list[Finding] = []
    n = 0
    for instance in instances:
        found = instance_findings(instance)
        merged = offline_rows(instance, found)
        if summary is not None:
            summary.add(instance, merged, found)
        rows.extend(merged)
        findings.extend(found)
        n += 1
        if n >= chunk_size:
            yield rows, findings
            rows, findings, n = [], [], 0
    if n:
        yield rows, findings


def run(args: argparse.Namespace) -> int:
    check_table_path(args.out, "--out")
    if args.findings:
        check_table_path(args.findings, "--findings")
    load_check_modules()
    inputs = CanonicalInputs(args.data, strict=args.strict)
    summary = CheckSummary()
    findings_out = TableWriter(args.findings, FINDING_COLUMNS) if args.findings else nullcontext()
    with TableWriter(args.out, VERDICT_COLUMNS) as verdicts_out, findings_out as findings_writer:
        for rows, findings in check_chunks(inputs, summary):
            verdicts_out.write(verdict_frame(rows))
            if findings_writer is not None and findings:
                findings_writer.write(findings_frame(finding_records(findings)))

    print(f"{inputs.n_instances} instances checked ({inputs.n_rejected} lines skipped); verdicts -> {args.out}"
          + (f"; findings -> {args.findings}" if args.findings else ""))
    print(summary.table().to_string(index=False))
    print(summary.suspects_text())
    return 0
