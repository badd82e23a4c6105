"""Expert annotations: append-only per-annotator CSV files, agreement, adjudicated labels.

File format (``ANNOTATION_COLUMNS`` + optional ``recorded_at``)::

    instance_id,annotator,specificity,coherence,solvability,parameter_alignment,sufficiency,minimality,note,recorded_at

Criterion cells hold ``1`` (holds), ``0`` (error) or nothing (not labelled yet). Coarse labels are
never annotated; they are derived (:func:`toolqual_utils.tables.derive_coarse`).

**A label is never lost.** :func:`append_annotation` only appends: it locks the file (several notebook
kernels may append at once), writes the whole row with one ``write`` in append mode and ``fsync``s
before returning; rows already written are never changed (a row torn by a killed writer is moved to
``<file>.torn``, see :func:`append_annotations`). Correcting a label = appending a new row for the same (instance_id, annotator);
:func:`read_annotations` takes the *last* row per (instance_id, annotator) as current and keeps the
history on request (``current_only=False``).

Pure apart from the file reading and appending; imports stdlib, numpy and pandas only.
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import warnings
from contextlib import contextmanager
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from .errors import InputError
from .io import csv_escape, csv_unescape, fsync_directory
from .schema import ANNOTATION_COLUMNS, CRITERIA
from .stats import agreement_summary
from .tables import CRITERION_LABELS, TABLE_CRITERIA, derive_coarse

#: Columns written to a new annotation file (the contract columns plus a UTC timestamp).
ANNOTATION_FILE_COLUMNS: Final = (*ANNOTATION_COLUMNS, "recorded_at")
#: Annotator name of adjudicated rows in the reference files.
ADJUDICATOR: Final = "adjudicated"

__all__ = [
    "ANNOTATION_FILE_COLUMNS", "ADJUDICATOR",
    "annotation_file", "validate_annotation_row", "append_annotation", "append_annotations", "torn_path",
    "read_annotations", "current_annotations", "annotator_agreement", "adjudicated_labels",
]

_LABEL_TEXT: Final = {"1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0, "": math.nan}


def annotation_file(directory: str | os.PathLike[str], annotator: str) -> Path:
    """Path of an annotator's own CSV inside ``directory`` (``<dir>/<annotator>.csv``, name made file-safe)."""
    if not annotator or not annotator.strip():
        raise InputError("an annotator name is required", field="annotator")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", annotator.strip()).strip("._") or "annotator"
    return Path(directory) / f"{safe}.csv"


def _label_value(value: Any, *, file: str, record: str, field: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
        return float(value)
    text = str(value).strip()
    if text in _LABEL_TEXT:
        return _LABEL_TEXT[text]
    raise InputError(
        f"label {value!r} is not allowed; expected 1 (holds), 0 (error) or empty (not labelled)",
        file=file, record=record, field=field,
    )


def validate_annotation_row(
    row: Mapping[str, Any], *, file: str = "<annotation>", record: str = "row"
) -> dict[str, Any]:
    """Check one annotation row and return it normalised.

    Returns:
        ``{"instance_id", "annotator", <six criteria as 1.0/0.0/NaN>, "note", "recorded_at"}``.

    Raises:
        InputError: naming ``file``, ``record`` and the bad field: a missing or empty ``instance_id`` or
            ``annotator``, a label other than 1/0/empty, an unknown column, or a row labelling nothing.
    """
    unknown = set(row) - set(ANNOTATION_FILE_COLUMNS) - {None}
    if unknown:
        raise InputError(
            f"unknown column(s) {sorted(map(str, unknown))}; expected {', '.join(ANNOTATION_FILE_COLUMNS)}",
            file=file, record=record, field=sorted(map(str, unknown))[0],
        )
    if None in row:  # csv.DictReader puts surplus cells under the key None
        raise InputError("the row has more cells than the header has columns", file=file, record=record)
    clean: dict[str, Any] = {}
    for key in ("instance_id", "annotator"):
        value = row.get(key)
        if value is None or not str(value).strip() or (isinstance(value, float) and math.isnan(value)):
            raise InputError("must be a non-empty string", file=file, record=record, field=key)
        clean[key] = str(value).strip()
    for criterion in CRITERIA:
        clean[criterion] = _label_value(row.get(criterion), file=file, record=record, field=criterion)
    if all(math.isnan(clean[c]) for c in CRITERIA):
        raise InputError("the row labels no criterion (all six empty)", file=file, record=record,
                         field="specificity")
    note = row.get("note")
    clean["note"] = "" if note is None or (isinstance(note, float) and math.isnan(note)) else str(note)
    recorded = row.get("recorded_at")
    clean["recorded_at"] = "" if recorded is None or (isinstance(recorded, float) and math.isnan(recorded)) else str(recorded)
    return clean


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else str(int(value))
    return csv_escape(str(value))


def _check_header(header: list[str] | None, path: Path) -> list[str] | None:
    if not header:
        return None
    missing = [c for c in ANNOTATION_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"the header lacks column(s) {missing}; an annotation file needs {', '.join(ANNOTATION_COLUMNS)}",
            file=str(path), record="header",
        )
    return header


def _existing_header(path: Path) -> list[str] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("r", encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), None)
    return _check_header(header, path)


def _last_record_start(text: str) -> int:
    """Offset where the last CSV record of ``text`` starts (after the last line break outside quotes)."""
    start, quoted = 0, False
    for match in re.finditer(r'["\n]', text):
        if match.group() == '"':
            quoted = not quoted
        elif not quoted:
            start = match.end()
    return start


def _complete_row(tail: str, header: list[str], path: Path) -> bool:
    """Is ``tail`` (text after the last line break, no newline at its end) one whole valid row?"""
    if tail.count('"') % 2:  # a quoted cell never closed: the writer stopped mid-row
        return False
    try:
        rows = list(csv.reader(io.StringIO(tail)))
        if len(rows) != 1 or len(rows[0]) != len(header):
            return False
        validate_annotation_row(dict(zip(header, rows[0])), file=str(path))
    except (csv.Error, InputError):
        return False
    return True


def _split_torn_tail(text: str, header: list[str] | None, path: Path) -> tuple[str, str]:
    """(the file's complete rows, a torn last row or ""): a last row without its line break is torn
    unless it is a whole valid row (a file edited by hand may just lack the final newline)."""
    if not text or text.endswith("\n") or header is None:
        return text, ""
    start = _last_record_start(text)
    if start == 0:  # the header line itself
        return text, ""
    tail = text[start:]
    if _complete_row(tail, header, path):
        return text, ""
    return text[:start], tail


@contextmanager
def _locked(fd: int):
    """An exclusive lock on the open file ``fd`` for the duration (other appenders wait)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def torn_path(path: str | os.PathLike[str]) -> Path:
    """Where torn rows of an annotation file are moved (``<file>.torn``)."""
    path = Path(path)
    return path.with_name(path.name + ".torn")


def append_annotations(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Append validated rows to an annotation CSV (created with a header when absent). Returns the count.

    Every row is validated before anything is written (one bad row = nothing appended). Rows without
    ``recorded_at`` get the current UTC time. Safe for several writers at once (two notebook kernels of
    one annotator): each append holds an exclusive lock on the file while it checks the header and
    writes, so a new file gets exactly one header. The rows are written with one ``write`` call in
    append mode, then ``fsync``ed; rows already in the file are never changed. One exception: a last row
    left incomplete by a writer that was killed mid-write (no line break, not a whole row) is moved to
    ``<file>.torn`` before appending, so it cannot swallow the new rows (a last row that is whole but
    lacks its line break just gets one). Text cells a spreadsheet would run as a formula are written with
    a leading ``'`` (removed again on reading).
    """
    path = Path(path)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clean_rows = []
    for index, row in enumerate(rows, start=1):
        clean = validate_annotation_row(row, file=str(path), record=f"new row {index}")
        clean["recorded_at"] = clean["recorded_at"] or now
        clean_rows.append(clean)
    if not clean_rows:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        with _locked(fd):
            existing = b""
            size = os.fstat(fd).st_size
            if size:
                os.lseek(fd, 0, os.SEEK_SET)
                existing = _read_all(fd, size)
            text = existing.decode("utf-8", errors="surrogateescape")
            creating = not text.strip()
            header = None if creating else _check_header(next(csv.reader(io.StringIO(text)), None), path)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            if creating or header is None:
                header = list(ANNOTATION_FILE_COLUMNS)
                if creating and size:
                    os.ftruncate(fd, 0)  # only blank lines: start the file afresh
                writer.writerow(header)
            else:
                kept, torn = _split_torn_tail(text, header, path)
                if torn:
                    with torn_path(path).open("a", encoding="utf-8", errors="surrogateescape") as aside:
                        aside.write(torn + "\n")
                    os.ftruncate(fd, len(kept.encode("utf-8", errors="surrogateescape")))
                elif not text.endswith("\n"):
                    buffer.write("\n")
            for clean in clean_rows:
                writer.writerow([_cell(clean.get(column, "")) for column in header])
            _write_all(fd, buffer.getvalue().encode("utf-8"))
            os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)
    return len(clean_rows)


def _read_all(fd: int, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def append_annotation(path: str | os.PathLike[str], row: Mapping[str, Any]) -> dict[str, Any]:
    """Append one annotation row (see :func:`append_annotations`); returns the normalised row written."""
    clean = validate_annotation_row(row, file=str(path), record="new row")
    clean["recorded_at"] = clean["recorded_at"] or datetime.now(timezone.utc).isoformat(timespec="seconds")
    append_annotations(path, [clean])
    return clean


_FRAME_COLUMNS: Final = (*ANNOTATION_FILE_COLUMNS, "file", "row")


def read_annotations(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *, current_only: bool = True
) -> pd.DataFrame:
    """Read one or more annotation CSV files.

    Args:
        paths: a file, or several (e.g. one per annotator); a directory reads every ``*.csv`` in it.
        current_only: keep only the last row per (instance_id, annotator), in file order (files in
            the order given); False returns every row (the history).

    Returns:
        ``ANNOTATION_FILE_COLUMNS`` + ``file`` and ``row`` (1-based data row in its file); criteria as
        float 1.0 / 0.0 / NaN (not labelled). Empty files give an empty frame with these columns. A last
        row torn by a writer that was killed mid-row (no line break and not a whole row) is skipped with
        a warning and listed in ``frame.attrs["torn_rows"]`` (``{"file", "text"}``); it is not a saved label.

    Raises:
        InputError: a missing file, a header without the annotation columns, or a bad row (names the
            file, the row and the field).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for item in paths:
        item = Path(item)
        files.extend(sorted(item.glob("*.csv")) if item.is_dir() else [item])
    records = []
    torn_rows: list[dict[str, str]] = []
    for path in files:
        if not path.exists():
            raise InputError("no such annotation file", file=str(path))
        header = _existing_header(path)
        if header is None:
            continue
        text = path.read_text(encoding="utf-8")
        text, torn = _split_torn_tail(text, header, path)
        if torn:
            torn_rows.append({"file": str(path), "text": torn})
            warnings.warn(f"{path}: skipped a torn last row (a writer stopped mid-row; it is not a saved label): "
                          f"{torn[:80]!r}", stacklevel=2)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for number, row in enumerate(reader, start=1):
            if not any((v or "").strip() for k, v in row.items() if k is not None):
                continue  # a blank line
            row = {k: csv_unescape(v) for k, v in row.items()}
            clean = validate_annotation_row(row, file=str(path), record=f"row {number} (line {reader.line_num})")
            records.append({**clean, "file": str(path), "row": number})
    frame = pd.DataFrame(records, columns=list(_FRAME_COLUMNS))
    for criterion in CRITERIA:
        frame[criterion] = frame[criterion].astype(float)
    frame = current_annotations(frame) if current_only else frame
    frame.attrs["torn_rows"] = torn_rows
    return frame


def current_annotations(frame: pd.DataFrame) -> pd.DataFrame:
    """The last row per (instance_id, annotator) in frame order (later rows supersede earlier ones)."""
    return frame.drop_duplicates(["instance_id", "annotator"], keep="last").reset_index(drop=True)


def _annotators(frame: pd.DataFrame, adjudicator: str | None) -> list[str]:
    return [a for a in pd.unique(frame["annotator"].astype(str)) if a != adjudicator]


def annotator_agreement(
    frame: pd.DataFrame,
    annotator_a: str | None = None,
    annotator_b: str | None = None,
    *,
    criteria: Sequence[str] = TABLE_CRITERIA,
    adjudicator: str | None = ADJUDICATOR,
) -> pd.DataFrame:
    """Agreement between annotators, per criterion (coarse labels derived per annotator).

    Args:
        frame: annotations (current rows; e.g. from :func:`read_annotations`).
        annotator_a, annotator_b: the pair to compare; when both are None every pair of annotators
            other than ``adjudicator`` is compared.
        criteria: which criteria (default: six + three coarse, in table order).

    Returns:
        One row per pair x criterion: ``annotator_a, annotator_b, criterion, criterion_label, n`` (instances
        both labelled), ``n_agree, raw_agreement, kappa, pabak`` (kappa NaN when undefined, e.g. both
        annotators never saw an error), ``n_errors_a, n_errors_b, n_disagree, disagreeing_ids``.
        Raw agreement in [0, 1]; kappa and PABAK in [-1, 1]; higher = more agreement.
    """
    frame = current_annotations(frame)
    if annotator_a is None and annotator_b is None:
        pairs = list(itertools.combinations(_annotators(frame, adjudicator), 2))
    elif annotator_a is None or annotator_b is None:
        raise ValueError("give both annotators of the pair, or neither (all pairs)")
    else:
        pairs = [(annotator_a, annotator_b)]
    if not pairs:
        raise ValueError("agreement needs at least two annotators (besides the adjudicator)")
    labels = derive_coarse(frame.loc[:, ["instance_id", "annotator", *CRITERIA]])
    rows = []
    for first, second in pairs:
        for name in (first, second):
            if name not in set(labels["annotator"]):
                raise ValueError(f"no annotations by {name!r}; annotators present: {sorted(set(labels['annotator']))}")
        left = labels.loc[labels["annotator"] == first].set_index("instance_id")
        right = labels.loc[labels["annotator"] == second].set_index("instance_id")
        shared = left.index.intersection(right.index)
        for criterion in criteria:
            a, b = left.loc[shared, criterion], right.loc[shared, criterion]
            both = a.notna() & b.notna()
            summary = agreement_summary(a[both], b[both])
            disagreeing = sorted(shared[both & (a != b)].tolist())
            rows.append({
                "annotator_a": first, "annotator_b": second, "criterion": criterion,
                "criterion_label": CRITERION_LABELS[criterion], "n": summary["n"],
                "n_agree": summary["n_agree"], "raw_agreement": summary["raw_agreement"],
                "kappa": summary["kappa"], "pabak": summary["pabak"], "n_errors_a": summary["n_errors_a"],
                "n_errors_b": summary["n_errors_b"], "n_disagree": len(disagreeing),
                "disagreeing_ids": disagreeing,
            })
    return pd.DataFrame(rows)


def adjudicated_labels(
    frame: pd.DataFrame, *, adjudicator: str | None = ADJUDICATOR, min_annotators: int = 1
) -> pd.DataFrame:
    """One reference label set per instance.

    Per criterion: the adjudicator's label when the adjudicator labelled it; otherwise the label all
    other annotators agree on (at least ``min_annotators`` of them labelled it); otherwise NaN
    (disagreement not yet adjudicated, or too few labels).

    Returns:
        One row per annotated instance (first-seen order): ``instance_id``, six criteria and the three
        derived coarse labels (1.0 / 0.0 / NaN), ``n_annotators`` (non-adjudicator annotators),
        ``resolution``: ``"adjudicated"`` (adjudicator row present), ``"unanimous"`` (all criteria
        resolved by agreement), ``"unresolved"`` (some criterion left NaN by disagreement or too few
        labels). Usable directly as ``annotations`` in ``tables.validation_table(..., annotator=None)``.
    """
    frame = current_annotations(frame)
    rows = []
    for instance_id, part in frame.groupby("instance_id", sort=False):
        adjudicated = part.loc[part["annotator"] == adjudicator] if adjudicator is not None else part.iloc[0:0]
        others = part.loc[part["annotator"] != adjudicator] if adjudicator is not None else part
        row: dict[str, Any] = {"instance_id": instance_id}
        unresolved = False
        for criterion in CRITERIA:
            if len(adjudicated) and not math.isnan(adjudicated[criterion].iloc[-1]):
                row[criterion] = float(adjudicated[criterion].iloc[-1])
                continue
            values = others[criterion].dropna().unique()
            if len(values) == 1 and others[criterion].notna().sum() >= min_annotators:
                row[criterion] = float(values[0])
            else:
                row[criterion] = math.nan
                unresolved = True
        row["n_annotators"] = int(others["annotator"].nunique())
        row["resolution"] = "adjudicated" if len(adjudicated) else ("unresolved" if unresolved else "unanimous")
        rows.append(row)
    result = pd.DataFrame(rows, columns=["instance_id", *CRITERIA, "n_annotators", "resolution"])
    for criterion in CRITERIA:
        result[criterion] = result[criterion].astype(float)
    return derive_coarse(result)
