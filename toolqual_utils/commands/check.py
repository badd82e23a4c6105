"""``toolqual check``: offline rule and heuristic verdicts for every instance (no network).

The input streams through in batches of lines; each batch is validated, checked and encoded for the
output format by :func:`check_batch`, in this process or in worker processes (``--jobs``), and written
out in input order. Nothing holds every instance or every verdict.
"""
from __future__ import annotations

import argparse
import heapq
import sys
import textwrap
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import (
    CHECK_MODULES_ENV, FINDING_COLUMNS, Finding, finding_records, findings_frame, instance_findings,
    load_check_modules, registered_checks,
)
from ..compiled import status as compiled_status
from ..errors import ConfigError, InputError
from ..heuristics import offline_decisions
from ..io import CANONICAL_NOT_UTF8, TABLE_FORMATS, Reject, TableWriter, canonical_from_line, encode_rows, \
    check_readable_file, encode_table, iter_lines, max_value_chars
from ..schema import CRITERIA, ToolCache
from ..verdicts import VERDICT_COLUMNS, verdict_frame
from ._gc import tune_for_throughput
from ._inputs import MAX_SKIPS_SHOWN, check_table_path, usable_cpus

if TYPE_CHECKING:  # a check written as CSV never loads pandas (it is most of a small run's time)
    import pandas as pd

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
#: lines per batch (a batch is checked as one unit, in this process or a worker)
BATCH_LINES = 1000
#: inputs smaller than this are checked in this process even when --jobs allows workers
PARALLEL_MIN_BYTES = 16 * 2**20
#: allocations between two young garbage collections in a worker process (Python's default: 700)
WORKER_GC_THRESHOLD = 20_000
#: instances listed under "most suspect findings" in the summary
N_SUSPECTS_SHOWN = 5
#: the columns of the summary table
SUMMARY_COLUMNS = ("criterion", "n_errors", "n_holds", "n_unscored")
#: tools validated once per process and shared by the instances that offer them (see ToolCache)
_TOOLS = ToolCache()


def _checks_listing() -> str:
    lines = ["checks (name, criterion, severity when it is sure, when it fires):"]
    for check in registered_checks():
        lines.append(f"  {check.name:<28} {check.criterion:<20} {check.severity}")
        lines.extend(textwrap.wrap(" ".join(check.doc.replace("``", "").split()), width=96,
                                   initial_indent="      ", subsequent_indent="      "))
    lines.append(f"Add your own: a function registered with toolqual_utils.checks.register, in a module named in "
                 f"{CHECK_MODULES_ENV} (comma-separated import paths).")
    return "\n".join(lines)


def default_jobs() -> int:
    """Worker processes used by default: the CPUs this process may use, at most 4."""
    return max(1, min(4, usable_cpus()))


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
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help=f"worker processes (default: the CPUs available, at most 4, for inputs of "
                             f"{PARALLEL_MIN_BYTES // 2**20} MiB or more; smaller inputs run in this process); "
                             "1 = everything in this process")


@dataclass
class CheckSummary:
    """What ``toolqual check`` prints: verdicts per criterion, and the instances with the most suspects.

    Summaries of batches merge (:meth:`merge`); ``order`` keeps ties in input order.
    """

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {c: {"n_errors": 0, "n_holds": 0, "n_unscored": 0} for c in CRITERIA})
    n_instances: int = 0
    n_findings: int = 0
    n_suspect: int = 0
    n_instances_with_suspects: int = 0
    top: list[tuple[int, int, str, list[str]]] = field(default_factory=list)  # heap: (n, -order, id, messages)

    def add(self, instance_id: str, verdicts: Iterable[tuple[str, int | None]], findings: Sequence[Finding],
            order: int) -> None:
        """Count one instance: its (criterion, label) verdicts and its findings (``order``: its input position)."""
        self.n_instances += 1
        self.n_findings += len(findings)
        for criterion, label in verdicts:
            entry = self.counts.setdefault(criterion, {"n_errors": 0, "n_holds": 0, "n_unscored": 0})
            entry["n_errors" if label == 0 else "n_holds" if label == 1 else "n_unscored"] += 1
        suspects = [f for f in findings if f.severity == "suspect"]
        if suspects:
            self.n_suspect += len(suspects)
            self.n_instances_with_suspects += 1
            self._offer((len(suspects), -order, instance_id, [f.message for f in suspects]))

    def _offer(self, item: tuple[int, int, str, list[str]]) -> None:
        if len(self.top) < N_SUSPECTS_SHOWN:
            heapq.heappush(self.top, item)
        elif item[:2] > self.top[0][:2]:
            heapq.heapreplace(self.top, item)

    def merge(self, other: CheckSummary) -> None:
        for criterion, counts in other.counts.items():
            entry = self.counts.setdefault(criterion, {"n_errors": 0, "n_holds": 0, "n_unscored": 0})
            for key, value in counts.items():
                entry[key] += value
        self.n_instances += other.n_instances
        self.n_findings += other.n_findings
        self.n_suspect += other.n_suspect
        self.n_instances_with_suspects += other.n_instances_with_suspects
        for item in other.top:
            self._offer(item)

    def table(self) -> pd.DataFrame:
        """Per criterion: n_errors (label 0), n_holds (label 1), n_unscored, in ``CRITERIA`` order."""
        import pandas as pd

        return pd.DataFrame(self._table_rows(), columns=list(SUMMARY_COLUMNS))

    def _table_rows(self) -> list[tuple[Any, ...]]:
        return [(c, self.counts[c]["n_errors"], self.counts[c]["n_holds"], self.counts[c]["n_unscored"])
                for c in self.counts]

    def table_text(self) -> str:
        """:meth:`table` as printed: right-aligned columns two spaces apart, a header line first (the text
        ``table().to_string(index=False)`` gives, without loading pandas)."""
        rows = [SUMMARY_COLUMNS, *[tuple(str(value) for value in row) for row in self._table_rows()]]
        widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]
        return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)

    def strongest_suspects(self) -> list[tuple[str, int, list[str]]]:
        """(instance id, number of suspect findings, their messages), most suspects first."""
        ranked = sorted(self.top, key=lambda item: (-item[0], -item[1]))
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


@dataclass
class BatchResult:
    """One checked batch: its instance ids, its rejected lines, its rows encoded for the output formats."""

    path: str
    ids: list[str]
    rejects: list[Reject]
    verdicts: Any
    findings: Any
    n_verdicts: int
    n_findings: int
    summary: CheckSummary


def check_batch(path: str, lines: Sequence[tuple[int, str | Reject]], first_order: int, verdicts_format: str,
                findings_format: str | None) -> BatchResult:
    """Validate, check and encode one batch of canonical JSONL lines (pure: runs in a worker as well).

    Verdict rows are rules + heuristics merged (:func:`~toolqual_utils.heuristics.offline_decisions`, the
    rows of :func:`~toolqual_utils.heuristics.offline_rows` as value tuples: no row object is kept); they come
    back encoded for ``verdicts_format`` (and the findings for ``findings_format``; None = not wanted).
    """
    summary = CheckSummary()
    ids: list[str] = []
    rejects: list[Reject] = []
    rows: list[tuple[Any, ...]] = []
    found: list[Finding] = []
    max_chars = max_value_chars()
    for position, (line_no, line) in enumerate(lines):
        item = canonical_from_line(path, line_no, line, _TOOLS, max_chars=max_chars)
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        findings = instance_findings(item)
        iid = item.id
        merged = offline_decisions(item, findings)
        summary.add(iid, [(criterion, decision.label) for criterion, _, _, decision in merged], findings,
                    first_order + position)
        ids.append(iid)
        rows.extend(decision.values(iid, criterion, judge, prompt_id)
                    for criterion, judge, prompt_id, decision in merged)
        if findings_format is not None:
            found.extend(findings)
    verdicts = None
    if rows:
        verdicts = encode_rows(rows, verdicts_format, VERDICT_COLUMNS) if verdicts_format == ".csv" \
            else encode_table(verdict_frame(rows), verdicts_format)
    findings_payload = None
    if findings_format is not None and found:
        records = finding_records(found)
        findings_payload = encode_rows(([r[c] for c in FINDING_COLUMNS] for r in records), findings_format,
                                       FINDING_COLUMNS) if findings_format == ".csv" \
            else encode_table(findings_frame(records), findings_format)
    return BatchResult(path, ids, rejects, verdicts, findings_payload, len(rows), len(found), summary)


def _batches(paths: Sequence[str]) -> Iterator[tuple[str, list[tuple[int, str | Reject]], bool]]:
    """(file, lines, last batch of that file): batches never span files; a file without lines gives one
    empty batch, so that its emptiness is seen. A line over the length limit arrives as its Reject."""
    for path in paths:
        batch: list[tuple[int, str | Reject]] = []
        for line_no, line in iter_lines(path, not_utf8_hint=CANONICAL_NOT_UTF8):
            if len(batch) == BATCH_LINES:
                yield str(path), batch, False
                batch = []
            batch.append((line_no, line))
        yield str(path), batch, True


def _start_worker() -> None:
    """What a worker process does first: import the user's check modules, and tune its garbage collector
    for the batch loop. Everything it inherited (modules, caches) is frozen out of the collector's scans,
    and young collections run less often (a batch allocates many small containers that die together)."""
    load_check_modules()
    tune_for_throughput(WORKER_GC_THRESHOLD)


def _results(paths: Sequence[str], jobs: int, verdicts_format: str,
             findings_format: str | None) -> Iterator[tuple[BatchResult, bool]]:
    """Checked batches in input order (with "last batch of its file"), from workers when ``jobs`` > 1."""
    order = 0
    if jobs <= 1:
        for path, lines, last in _batches(paths):
            yield check_batch(path, lines, order, verdicts_format, findings_format), last
            order += len(lines)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker) as pool:
        pending: deque[tuple[Future[BatchResult], bool]] = deque()
        for path, lines, last in _batches(paths):
            pending.append((pool.submit(check_batch, path, lines, order, verdicts_format, findings_format), last))
            order += len(lines)
            if len(pending) >= 2 * jobs:  # bounded: the reader never runs far ahead of the writer
                future, is_last = pending.popleft()
                yield future.result(), is_last
        while pending:
            future, is_last = pending.popleft()
            yield future.result(), is_last


def run(args: argparse.Namespace) -> int:
    check_table_path(args.out, "--out")
    if args.findings:
        check_table_path(args.findings, "--findings")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}", field="--jobs")
    load_check_modules()
    for path in args.data:
        check_readable_file(Path(path))  # before any work: missing files, folders, devices
    size = sum(Path(path).stat().st_size for path in args.data)  # a pipe counts 0: checked in this process
    jobs = args.jobs if args.jobs is not None else default_jobs() if size >= PARALLEL_MIN_BYTES else 1

    summary = CheckSummary()
    seen: dict[str, str] = {}
    n_rejected = 0
    n_in_file = 0
    findings_out = TableWriter(args.findings, FINDING_COLUMNS) if args.findings else nullcontext()
    with TableWriter(args.out, VERDICT_COLUMNS) as verdicts_out, findings_out as findings_writer:
        formats = (verdicts_out.format, findings_writer.format if findings_writer is not None else None)
        for result, last_of_file in _results(args.data, jobs, *formats):
            for reject in result.rejects:
                if args.strict:
                    raise InputError(reject.reason, file=reject.file, record=reject.location, field=reject.field)
                n_rejected += 1
                if n_rejected <= MAX_SKIPS_SHOWN:
                    print(f"skipped {reject.summary()}", file=sys.stderr)
            for instance_id in result.ids:
                if instance_id in seen:
                    raise InputError(f"instance id {instance_id!r} also appears in {seen[instance_id]}; ids must be "
                                     "unique across the input files", file=result.path, field="id")
                seen[instance_id] = result.path
            if result.verdicts is not None:
                verdicts_out.write_encoded(result.verdicts, result.n_verdicts)
            if findings_writer is not None and result.findings is not None:
                findings_writer.write_encoded(result.findings, result.n_findings)
            summary.merge(result.summary)
            n_in_file += len(result.ids)
            if last_of_file:
                if n_in_file == 0:
                    raise InputError("contains no valid canonical instance (is it a raw source file? convert it "
                                     "with `toolqual load` first)", file=result.path)
                n_in_file = 0

    mode = compiled_status()
    print(f"{summary.n_instances} instances checked ({n_rejected} lines skipped); verdicts -> {args.out}"
          + (f"; findings -> {args.findings}" if args.findings else "")
          + f" ({f'{jobs} worker processes, ' if jobs > 1 else ''}{mode.label})")
    if not mode.active and jobs > 1:  # a large input: say how to make it faster, and why it is not
        print(f"  (compiled checks need about a quarter less CPU: {mode.reason})", file=sys.stderr)
    print(summary.table_text())
    print(summary.suspects_text())
    return 0
