"""Verdicts: the statuses, the typed row, and every read, check and merge of a verdict table.

A *verdict* is one judge's word on one (instance, criterion) pair; a verdict table has the columns
``VERDICT_COLUMNS`` (``instance_id, criterion, label, status, judge, prompt_id, rationale, evidence,
confidence, n_votes``), one row per pair. ``confidence`` is the share of the answers behind the verdict
that agree with its label (several self-consistency samples or a panel of models; see
:mod:`toolqual_utils.judge.votes`), in [0, 1], and ``n_votes`` how many scored answers there were. A
verdict from one answer — a single model answer, a rule, a heuristic — has confidence 1.0 from 1 vote; an
unscored verdict has no confidence (NaN) and 0 votes. Tables written before these columns existed read
back with those defaults. This module is the one place that says

- which statuses exist (:class:`Status`: ``ok``, or ``unscored:<reason>``);
- what a row holds (:class:`VerdictRow`; a :class:`Decision` is its label, status, rationale and evidence
  before they are tied to an instance and a judge) and how rows become a table (:func:`verdict_frame`);
- what **scored** means (:func:`is_scored`, :func:`scored_mask`): the label is 0 or 1 *and* the status
  is ``ok``. A row without a status (a plain label table, e.g. annotations, or a blank cell) counts as
  ``ok``; any ``unscored:<reason>`` row is unscored whatever label it carries. Unscored verdicts are
  never counted as pass or fail;
- how a table is read back (:func:`read_verdicts`), checked (:func:`validate_verdicts`), how tables of
  several judges are merged (:func:`merge_verdicts`) and how the evidence cell is decoded
  (:func:`decode_evidence`: lists in memory, JSON text in CSV/Parquet files).

Pure module: standard library and pandas only. pandas is imported on first use of a table function, so
the model client (``llm.py``) takes its statuses from here without loading pandas.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from .compiled import reduce_fields
from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Status", "Decision", "VerdictRow", "VERDICT_COLUMNS", "REQUIRED_COLUMNS", "RULES_JUDGE", "ENGINE_JUDGE",
    "HEURISTICS_JUDGE", "OFFLINE_JUDGES",
    "verdict_frame", "empty_verdicts", "is_missing", "is_scored", "scored_mask", "clean_labels", "decode_evidence",
    "read_verdicts", "validate_verdicts", "merge_verdicts", "VerdictTableError",
]

#: Columns of the verdict table (one row per instance x criterion).
VERDICT_COLUMNS: Final = (
    "instance_id", "criterion", "label", "status", "judge", "prompt_id", "rationale", "evidence",
    "confidence", "n_votes",
)
#: the columns without which a table is not a verdict table at all
REQUIRED_COLUMNS: Final = ("instance_id", "criterion", "label")
#: the ``judge`` of the deterministic checks, of what the model judge settles in its own code (no model
#: asked: no gold calls, no parameter to fill, a required argument absent) and of the offline heuristics;
#: every other judge name is a model's (or a panel's, ``panel:m1+m2``)
RULES_JUDGE: Final = "rules"
ENGINE_JUDGE: Final = "engine"
HEURISTICS_JUDGE: Final = "heuristic"
#: judges that are not models (their verdicts are never labelled as a model's)
OFFLINE_JUDGES: Final = frozenset({RULES_JUDGE, ENGINE_JUDGE, HEURISTICS_JUDGE})


class VerdictTableError(InputError, ValueError):
    """A table that is not one verdict per (instance_id, criterion) with labels 1 / 0 / missing.

    An :class:`~toolqual_utils.errors.InputError` (the CLI shows it as one paragraph) and a ``ValueError``
    (what the table functions raise for bad arguments)."""


class Status:
    """The values of the ``status`` column. ``ok`` = the label stands; ``unscored:<reason>`` = no label.

    Written by the rules and heuristics (``UNSCORED_NEEDS_MODEL``, ``UNSCORED_NOT_APPLICABLE``), the
    model client (``UNSCORED_REFUSAL``, ``UNSCORED_TRUNCATED``, ``UNSCORED_API_ERROR``,
    ``UNSCORED_NOT_CACHED``, ``UNSCORED_TOO_LONG``: the prompt exceeds its ceiling, ``UNSCORED_NOT_SENT``:
    the run stopped at an unreachable endpoint before sending it), the judge (``UNSCORED_PARSE_ERROR``; for
    several votes ``UNSCORED_NO_MAJORITY``, ``UNSCORED_NO_AGREEMENT``; a verdict below a minimum
    confidence set by ``select`` or the explorer, ``UNSCORED_LOW_CONFIDENCE``) and ICE (``UNSCORED_NO_GOLD_CALLS``,
    ``UNSCORED_NO_QUERIES``, ``UNSCORED_MIXED``; and ``PARSE_ERROR`` for a per-query answer that did not
    parse, which ICE scores 0 rather than leaving unscored). ``toolqual evaluate`` writes them for its
    outcome rows too, with ``UNSCORED_JUDGE_UNPARSEABLE``, ``UNSCORED_JUDGE_UNCERTAIN`` and
    ``UNSCORED_SIMULATOR_UNPARSEABLE`` for multi-step runs.
    """

    OK: Final = "ok"
    UNSCORED: Final = "unscored"
    UNSCORED_NEEDS_MODEL: Final = "unscored:needs_model"
    UNSCORED_NOT_APPLICABLE: Final = "unscored:not_applicable"
    UNSCORED_PARSE_ERROR: Final = "unscored:parse_error"
    UNSCORED_REFUSAL: Final = "unscored:refusal"
    UNSCORED_TRUNCATED: Final = "unscored:truncated"
    UNSCORED_API_ERROR: Final = "unscored:api_error"
    UNSCORED_NOT_CACHED: Final = "unscored:not_cached"
    UNSCORED_TOO_LONG: Final = "unscored:too_long"
    UNSCORED_NOT_SENT: Final = "unscored:not_sent"
    UNSCORED_NO_GOLD_CALLS: Final = "unscored:no_gold_calls"
    UNSCORED_NO_QUERIES: Final = "unscored:no_queries"
    UNSCORED_MIXED: Final = "unscored:mixed"
    UNSCORED_NO_MAJORITY: Final = "unscored:no_majority"
    UNSCORED_NO_AGREEMENT: Final = "unscored:no_agreement"
    UNSCORED_LOW_CONFIDENCE: Final = "unscored:low_confidence"
    UNSCORED_JUDGE_UNPARSEABLE: Final = "unscored:judge_unparseable"
    UNSCORED_JUDGE_UNCERTAIN: Final = "unscored:judge_uncertain"
    UNSCORED_SIMULATOR_UNPARSEABLE: Final = "unscored:simulator_unparseable"
    PARSE_ERROR: Final = "parse_error"

    #: spellings written by earlier versions -> today's (read back by :func:`normalise`)
    LEGACY: Final[Mapping[str, str]] = {"unscored:needs-model": "unscored:needs_model"}

    @staticmethod
    def unscored(reason: str) -> str:
        """``unscored:<reason>`` (reasons are snake_case words: ``api_error``, ``needs_model``)."""
        return f"unscored:{reason}"

    @staticmethod
    def is_unscored(status: Any) -> bool:
        """True for ``unscored`` and ``unscored:<reason>``."""
        return isinstance(status, str) and (status == Status.UNSCORED or status.startswith("unscored:"))

    @staticmethod
    def reason(status: str) -> str:
        """The reason of an unscored status (``unscored:api_error`` -> ``api_error``); "" otherwise."""
        return status.split(":", 1)[1] if Status.is_unscored(status) and ":" in status else ""

    @staticmethod
    def normalise(status: Any) -> Any:
        """Today's spelling of a status read from a file (legacy spellings mapped; others unchanged)."""
        return Status.LEGACY.get(status, status) if isinstance(status, str) else status


#: ``(confidence, n_votes)`` of a verdict from one answer (a single model answer, a rule, a heuristic):
#: scored, 1.0 from 1 vote; unscored, no confidence from 0 votes. The one statement of these defaults:
#: rows, decisions and tables that do not set their own votes take them from here.
_SINGLE_ANSWER: Final = (1.0, 1)
_NO_ANSWER: Final = (math.nan, 0)


class Decision(NamedTuple):
    """What a rule or heuristic says about one criterion of one instance: a :class:`VerdictRow` without the
    instance, criterion and judge (``label`` 1, 0 or None with an ``unscored:<reason>`` status)."""

    label: int | None
    status: str
    rationale: str
    evidence: list[dict[str, Any]]

    def row(self, instance_id: str, criterion: str, judge: str, prompt_id: str,
            evidence: list[dict[str, Any]] | None = None) -> VerdictRow:
        """The :class:`VerdictRow` of this decision (with ``evidence`` instead of its own, when given)."""
        return VerdictRow(instance_id, criterion, self.label, self.status, judge, prompt_id, self.rationale,
                          self.evidence if evidence is None else evidence)

    def values(self, instance_id: str, criterion: str, judge: str, prompt_id: str) -> tuple[Any, ...]:
        """What ``self.row(...).values()`` gives (the table row in ``VERDICT_COLUMNS`` order), without
        building the row: the path of a reader that writes many verdicts and keeps none."""
        share, count = _SINGLE_ANSWER if _row_scored(self.label, self.status) else _NO_ANSWER
        return (instance_id, criterion, self.label, self.status, judge, prompt_id, self.rationale, self.evidence,
                share, count)


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """One verdict: ``label`` 1 (holds), 0 (error) or None (unscored, see ``status``).

    ``evidence`` is a list of JSON-serialisable dicts (check, call_index, argument, value, ...).
    """

    instance_id: str
    criterion: str
    label: int | None
    status: str
    judge: str
    prompt_id: str
    rationale: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    vote_share: float | None = None  # set for verdicts of several answers (see ``confidence``)
    vote_count: int | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable when compiled (see reduce_fields)
        return reduce_fields(self)

    @property
    def scored(self) -> bool:
        return _row_scored(self.label, self.status)

    @property
    def confidence(self) -> float:
        """Share of the answers agreeing with the label; 1.0 for a single scored answer, NaN unscored."""
        if self.vote_share is not None:
            return self.vote_share
        return (_SINGLE_ANSWER if self.scored else _NO_ANSWER)[0]

    @property
    def n_votes(self) -> int:
        """Scored answers behind the verdict (1 for a single scored answer, 0 unscored)."""
        if self.vote_count is not None:
            return self.vote_count
        return (_SINGLE_ANSWER if self.scored else _NO_ANSWER)[1]

    def with_evidence(self, extra: Sequence[dict[str, Any]], *, first: bool = False) -> VerdictRow:
        """A copy with ``extra`` evidence appended (or put first)."""
        evidence = [*extra, *self.evidence] if first else [*self.evidence, *extra]
        return VerdictRow(self.instance_id, self.criterion, self.label, self.status, self.judge, self.prompt_id,
                          self.rationale, evidence, self.vote_share, self.vote_count)

    def as_record(self) -> dict[str, Any]:
        """The row as a dict in ``VERDICT_COLUMNS`` order."""
        return dict(zip(VERDICT_COLUMNS, self.values()))

    def values(self) -> tuple[Any, ...]:
        """The row's values in ``VERDICT_COLUMNS`` order (what a table row holds)."""
        share, count = _SINGLE_ANSWER if self.scored else _NO_ANSWER
        if self.vote_share is not None:
            share = self.vote_share
        if self.vote_count is not None:
            count = self.vote_count
        return (self.instance_id, self.criterion, self.label, self.status, self.judge, self.prompt_id,
                self.rationale, self.evidence, share, count)


def verdict_frame(rows: Iterable[VerdictRow | Mapping[str, Any] | tuple[Any, ...]]) -> pd.DataFrame:
    """A verdict table from rows (``VerdictRow``, dicts with ``VERDICT_COLUMNS``, or plain tuples of the
    values in that order, as :meth:`VerdictRow.values` gives them), in row order.

    ``label`` is nullable Int64 (NA = unscored). No rows give an empty frame with the columns.
    """
    import pandas as pd

    records = [row.values() if isinstance(row, VerdictRow) else row if type(row) is tuple
               else [cast(Mapping[str, Any], row).get(name) for name in VERDICT_COLUMNS] for row in rows]
    columns: dict[str, list[Any]] = {name: list(values) for name, values in
                                     zip(VERDICT_COLUMNS, zip(*records) if records else [()] * len(VERDICT_COLUMNS))}
    columns["label"] = [None if is_missing(value) else int(value) for value in columns["label"]]
    columns["confidence"], columns["n_votes"] = _vote_columns(
        columns["status"], columns["label"], columns["confidence"], columns["n_votes"])
    frame = pd.DataFrame(columns, columns=list(VERDICT_COLUMNS))
    frame["label"] = pd.array(columns["label"], dtype="Int64")
    frame["confidence"] = frame["confidence"].astype(float)
    frame["n_votes"] = frame["n_votes"].astype(int)
    return frame


def _vote_columns(statuses: Sequence[Any], labels: Sequence[Any], confidence: Sequence[Any],
                  n_votes: Sequence[Any]) -> tuple[list[float], list[int]]:
    """``confidence`` / ``n_votes`` with the single-answer defaults where a row does not set them."""
    shares, counts = [], []
    for status, label, share, count in zip(statuses, labels, confidence, n_votes):
        default_share, default_count = _SINGLE_ANSWER if is_scored(status, label) else _NO_ANSWER
        shares.append(default_share if is_missing(share) else float(share))
        counts.append(default_count if is_missing(count) else int(count))
    return shares, counts


def empty_verdicts() -> pd.DataFrame:
    """An empty verdict table with ``VERDICT_COLUMNS``."""
    return verdict_frame(())


# --- what "scored" means ------------------------------------------------------------------------------


def is_missing(value: Any) -> bool:
    """The one test of a missing value: None, a float NaN (numpy's and ``Decimal``'s too), pandas' NA and
    NaT, numpy's NaT. Text, containers and every other value are present (this never raises). Pure: no
    pandas, so a process that writes verdicts without tables never loads it; :mod:`toolqual_utils.formatting`
    shows missing values by the same test."""
    if value is None:
        return True
    kind = type(value)
    if kind is float:
        return value != value
    if kind is str or kind is int or kind is bool:
        return False
    if kind.__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return False
    try:  # a NaN or NaT of another type (numpy scalars, Decimal) is the one value unequal to itself
        return bool(value != value)
    except (TypeError, ValueError):  # no truth value (an array)
        return False


def _row_scored(label: Any, status: Any) -> bool:
    """:func:`is_scored` with the common cases of a row in memory first (no label; an int label with a
    text status)."""
    if label is None:
        return False
    if type(label) is int and type(status) is str:
        return (label == 0 or label == 1) and (status == Status.OK or status == "")
    return is_scored(status, label)


def is_scored(status: Any, label: Any) -> bool:
    """The one definition: label 0 or 1, and status ``ok`` (a missing or blank status counts as ok)."""
    if is_missing(label) or isinstance(label, str):
        return False
    try:
        if float(label) not in (0.0, 1.0):
            return False
    except (TypeError, ValueError):
        return False
    if is_missing(status) or status == "":
        return True
    return status == Status.OK


def clean_labels(values: pd.Series) -> pd.Series:
    """Labels as float 1.0 / 0.0 / NaN.

    Raises:
        ValueError: a label that is none of 1, 0 or missing (names the values found).
    """
    import pandas as pd

    numeric = pd.to_numeric(values.astype(object), errors="coerce").astype(float)
    bad = ~numeric.isna() & ~numeric.isin([0.0, 1.0])
    if bad.any():
        raise ValueError(f"labels must be 1 (holds), 0 (error) or missing; found {sorted(set(numeric[bad]))}")
    return numeric


def scored_mask(verdicts: pd.DataFrame) -> pd.Series:
    """Boolean Series: which rows are scored (see :func:`is_scored`; vectorised, same rule)."""
    import pandas as pd

    label = clean_labels(verdicts["label"])
    if "status" in verdicts.columns:
        status = verdicts["status"].astype(object)
        status_ok = status.isna() | status.eq("") | status.eq(Status.OK)
    else:
        status_ok = pd.Series(True, index=verdicts.index)
    return status_ok & label.notna()


# --- evidence -----------------------------------------------------------------------------------------


def decode_evidence(value: Any) -> list[Any]:
    """The evidence cell as a list: lists stay, JSON text (CSV/Parquet) is decoded, text that is not
    JSON becomes ``[{"text": value}]``, a missing cell ``[]``, any other single value ``[value]``."""
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            return [{"text": value}]
    if is_missing(value):
        return []
    if hasattr(value, "tolist") and not isinstance(value, (dict, str)):  # numpy arrays from Parquet
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --- reading and checking tables ----------------------------------------------------------------------


def validate_verdicts(verdicts: pd.DataFrame, *, what: str = "verdicts", file: str | None = None) -> None:
    """Refuse a table that is not one verdict per (instance_id, criterion) with labels 1 / 0 / missing.

    Raises:
        VerdictTableError: a column of ``REQUIRED_COLUMNS`` is missing, a label is not 1/0/missing, or a pair
            repeats (names the file when given, the pair and the judges, and says how to merge).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in verdicts.columns]
    if missing:
        raise VerdictTableError(f"{what} lack column(s) {', '.join(missing)}; a verdict table has "
                         + ", ".join(VERDICT_COLUMNS), file=file)
    try:
        clean_labels(verdicts["label"])
    except ValueError as exc:
        raise VerdictTableError(f"{what}: {exc}", file=file, field="label") from None
    duplicated = verdicts.duplicated(["instance_id", "criterion"], keep=False)
    if duplicated.any():
        first = verdicts.loc[duplicated].iloc[0]
        judges = ""
        if "judge" in verdicts.columns:
            judges = " (judges: " + ", ".join(sorted(verdicts.loc[duplicated, "judge"].astype(str).unique())) + ")"
        raise VerdictTableError(
            f"{what}: {int(duplicated.sum())} rows repeat an (instance_id, criterion) pair, e.g. "
            f"({first['instance_id']!r}, {first['criterion']!r}){judges}; pass one verdict per pair: merge "
            "the tables of several judges with merge_verdicts (the first scored verdict wins), or give each "
            "judge's table as its own file", file=file, field="criterion",
        )


def read_verdicts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a verdict table written by ``toolqual check`` / ``toolqual judge`` (.jsonl, .csv, .parquet).

    Returns ``VERDICT_COLUMNS`` in order: ``label`` nullable Int64, ``evidence`` as lists, text columns as
    str (a column the file lacks is blank; statuses of earlier versions read in today's spelling).

    Raises:
        InputError: the file is missing, is not a verdict table (names the missing columns), holds a
            label other than 1/0/missing, or repeats an (instance_id, criterion) pair.
    """
    import pandas as pd

    from .io import read_table

    frame = read_table(path)
    validate_verdicts(frame, what="the verdict table", file=str(path))
    frame = frame.reindex(columns=list(VERDICT_COLUMNS)).copy()
    frame["label"] = pd.array(
        [None if pd.isna(v) else int(v) for v in clean_labels(frame["label"])], dtype="Int64"
    )
    frame["evidence"] = frame["evidence"].map(decode_evidence)
    for column in ("instance_id", "criterion"):
        frame[column] = frame[column].astype(str)
    for column in ("rationale", "prompt_id", "judge", "status"):
        frame[column] = ["" if is_missing(value) else str(value) for value in frame[column]]
    frame["status"] = frame["status"].map(Status.normalise)
    frame["confidence"], frame["n_votes"] = _vote_columns(
        frame["status"], frame["label"], pd.to_numeric(frame["confidence"], errors="coerce"),
        pd.to_numeric(frame["n_votes"], errors="coerce"))
    frame["confidence"] = frame["confidence"].astype(float)
    frame["n_votes"] = frame["n_votes"].astype(int)
    return frame


def merge_verdicts(*verdict_frames: pd.DataFrame | None) -> pd.DataFrame:
    """Combine verdict tables from several judges into one verdict per (instance, criterion).

    Frames are in priority order: for each pair, the first *scored* row wins; when no frame scored the
    pair, the first frame's row is kept (so its unscored reason shows). Typical use:
    ``merge_verdicts(rule_verdicts, model_verdicts)``: a rule verdict decides where it is scored, the
    model fills the rest. ``None`` and empty frames are skipped. Returns the rows that won (index reset;
    the columns of the inputs, ``VERDICT_COLUMNS`` first); no rows at all give an empty verdict table.
    """
    import pandas as pd

    frames = [f for f in verdict_frames if f is not None and len(f)]
    if not frames:
        return empty_verdicts()
    stacked = []
    for priority, frame in enumerate(frames):
        part = frame.copy()
        part["_priority"] = priority
        part["_unscored"] = ~scored_mask(part)
        stacked.append(part)
    combined = pd.concat(stacked, ignore_index=True)
    combined = combined.sort_values(["_unscored", "_priority"], kind="stable")
    winners = combined.drop_duplicates(["instance_id", "criterion"], keep="first")
    winners = winners.sort_index()
    return winners.drop(columns=["_priority", "_unscored"]).reset_index(drop=True)
