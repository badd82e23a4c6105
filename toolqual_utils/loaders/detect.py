"""Format detection and the one entry point that loads any supported source into canonical instances.

:func:`detect_format` looks at a file's *content* (never its name alone): JSON Lines vs one JSON
document, then the keys of the first records. :func:`iter_load` streams instances and rejects from
files and directories (JSON Lines are read line by line, so memory stays flat); :func:`load` collects
them into a :class:`LoadResult`.

Rules:

- One bad record never stops a load: it becomes a :class:`~toolqual_utils.io.Reject` (file, line or
  index, field, reason).
- A file that is missing, empty, truncated, not UTF-8, or not any supported format raises
  :class:`~toolqual_utils.errors.InputError` with one paragraph naming the file and listing the
  supported formats.
- Directories are walked recursively (sorted paths). Only ``.json`` / ``.jsonl`` files and the
  containers of :mod:`~toolqual_utils.loaders.containers` (``.parquet``, ``.arrow``, ``.jsonl.gz``,
  ``.json.gz``, Hugging Face ``datasets`` folders, each read as one source) are considered; companion files (anything under a ``possible_answer/`` folder, ``tool.jsonl``) are read through their
  main file, never on their own; a JSON file inside a directory whose content is not a supported format
  (e.g. StableToolBench's ``test_query_ids/*.json``) is skipped and reported in the summary. Broken
  files (empty, truncated, not UTF-8) fail even inside a directory.
- An id seen twice in one load is rejected the second time ("duplicate id").
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

import pandas as pd

from ..errors import InputError
from ..io import Reject
from ..schema import Instance
from . import bfcl, canonical, containers, glaive, openai_chat, seal_tools, sharegpt, toolace, toolalpaca, toolbench
from . import toolllama, xlam
from ._common import SUPPORTED_FORMATS, Probe, probe_file, supported_formats_sentence

FormatName = Literal["auto", "toolalpaca", "toolbench", "bfcl", "seal_tools", "xlam", "toolace", "toolllama",
                     "glaive", "sharegpt", "jsonl", "openai"]

#: Loader modules in sniffing order: the specific ShareGPT-shaped formats (Seal-Tools' fine-tuning files,
#: ToolACE, ToolLLaMA) before the generic ``sharegpt``; canonical before openai (a canonical record
#: never has "messages").
LOADERS: dict[str, ModuleType] = {
    "toolalpaca": toolalpaca,
    "toolbench": toolbench,
    "bfcl": bfcl,
    "seal_tools": seal_tools,
    "xlam": xlam,
    "toolace": toolace,
    "toolllama": toolllama,
    "glaive": glaive,
    "sharegpt": sharegpt,
    "jsonl": canonical,
    "openai": openai_chat,
}
FORMATS: tuple[str, ...] = ("auto", *LOADERS)

#: Columns of :attr:`LoadResult.summary` (one row per file).
SUMMARY_COLUMNS = (
    "file", "format", "n_read", "n_converted", "n_rejected", "n_parse_failures", "n_pseudo_calls", "note",
)


@dataclass
class FileSummary:
    """Counts for one file: ``n_read`` = instances converted + records rejected (a dialogue with k
    tool-calling turns converts to k instances)."""

    file: str
    format: str
    n_converted: int = 0
    n_rejected: int = 0
    n_parse_failures: int = 0
    n_pseudo_calls: int = 0
    note: str = ""

    @property
    def n_read(self) -> int:
        return self.n_converted + self.n_rejected

    def to_row(self) -> dict[str, object]:
        return {
            "file": self.file, "format": self.format, "n_read": self.n_read, "n_converted": self.n_converted,
            "n_rejected": self.n_rejected, "n_parse_failures": self.n_parse_failures,
            "n_pseudo_calls": self.n_pseudo_calls, "note": self.note,
        }


@dataclass
class LoadResult:
    """What :func:`load` read.

    Attributes:
        instances: converted instances, in file order then record order.
        rejects: records that could not be converted.
        summary: one row per file, columns :data:`SUMMARY_COLUMNS` (``n_read`` = converted + rejected;
            ``n_parse_failures`` counts calls whose argument text did not parse; ``n_pseudo_calls``
            counts pseudo-tool calls moved to meta). Empty frame with these columns when no file was read.
    """

    instances: list[Instance]
    rejects: list[Reject]
    summary: pd.DataFrame


class LoadSession:
    """Streams items from many sources and keeps the per-file summary (used by the CLI)."""

    def __init__(self, format: str = "auto") -> None:
        if format not in FORMATS:
            raise InputError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
        self.format = format
        self.files: list[FileSummary] = []
        self._seen_ids: dict[str, str] = {}

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([f.to_row() for f in self.files], columns=list(SUMMARY_COLUMNS))

    def iter(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Instance | Reject]:
        for path, in_directory in expand_paths(paths):
            yield from self._iter_file(path, in_directory=in_directory)

    def _iter_file(self, path: Path, *, in_directory: bool) -> Iterator[Instance | Reject]:
        probe = probe_file(path)
        if _is_companion(path, probe):
            if in_directory:
                return
            raise InputError(_companion_message(path, probe), file=str(path))
        fmt = self.format if self.format != "auto" else _sniff(probe)
        if fmt is None:
            if in_directory:
                self.files.append(FileSummary(str(path), "-", note="skipped: not a supported format"))
                return
            raise InputError(
                "is not a supported input: its content matches none of the known formats. " + supported_formats_sentence(),
                file=str(path),
            )
        module = LOADERS[fmt]
        if self.format != "auto" and not module.sniff(probe):
            raise InputError(
                f"does not look like the {fmt!r} format ({SUPPORTED_FORMATS[fmt]}); "
                f"try --format auto. " + supported_formats_sentence(),
                file=str(path),
            )
        summary = FileSummary(str(path), fmt)
        if fmt == "bfcl":
            summary.note = bfcl.answers_path_note(path) or ""
        self.files.append(summary)
        for item in module.iter_records(path, probe):
            if isinstance(item, Instance):
                first_file = self._seen_ids.get(item.id)
                if first_file is not None:
                    item = Reject(str(path), "-", f"duplicate id (first seen in {first_file})", field="id",
                                  record_id=item.id)
                else:
                    self._seen_ids[item.id] = str(path)
            if isinstance(item, Reject):
                summary.n_rejected += 1
            else:
                summary.n_converted += 1
                summary.n_parse_failures += sum(call.parse_failed for call in item.calls or [])
                summary.n_pseudo_calls += len(item.meta.get("pseudo_calls") or [])
            yield item


def _sniff(probe: Probe) -> str | None:
    for name, module in LOADERS.items():
        if module.sniff(probe):
            return name
    if probe.is_array:
        probe.document  # a JSON array no format claims: parse it all, so a broken file says what is wrong
    return None


def _is_companion(path: Path, probe: Probe) -> bool:
    return bfcl.is_possible_answer_file(probe) or seal_tools.is_tool_pool(probe)


def _companion_message(path: Path, probe: Probe) -> str:
    if bfcl.is_possible_answer_file(probe):
        return ("is a BFCL possible_answer file (gold answers only); load the question file with the same "
                "name instead, and its possible_answer is found automatically.")
    return ("is the Seal-Tools tool pool (tool.jsonl); load dev.jsonl or a test file beside it instead, "
            "and the tool pool is joined automatically.")


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, bool]]:
    """(file, found-in-a-directory) for each source; directories are walked recursively and sorted.

    Raises:
        InputError: a path that does not exist.
    """
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError("no such file or directory", file=str(path))
        if path.is_dir() and not containers.is_dataset_folder(path):
            for child in containers.folder_sources(path):
                if not containers.is_source_name(child):
                    continue
                if "possible_answer" in child.relative_to(path).parts[:-1] or child.name == "tool.jsonl":
                    continue
                if child.name.endswith(".rejects.jsonl"):
                    continue
                key = child.resolve()
                if key not in seen:
                    seen.add(key)
                    yield child, True
        else:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield path, False


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format name of a file or ``datasets`` folder (a key of :data:`LOADERS`: ``toolalpaca``,
    ``toolbench``, ``bfcl``, ``seal_tools``, ``xlam``, ``toolace``, ``toolllama``, ``glaive``, ``sharegpt``,
    ``jsonl``, ``openai``), from its content.

    Raises:
        InputError: missing, empty, truncated, not UTF-8, a companion file, or no known format.
    """
    path = Path(path)
    probe = probe_file(path)
    if _is_companion(path, probe):
        raise InputError(_companion_message(path, probe), file=str(path))
    fmt = _sniff(probe)
    if fmt is None:
        raise InputError(
            "is not a supported input: its content matches none of the known formats. " + supported_formats_sentence(),
            file=str(path),
        )
    return fmt


def formats_of(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """``{path: format}`` for each path, ``"unknown"`` where the file is gone or matches no format (never
    raises: for profiles that name the format of a reject's source file)."""
    found: dict[str, str] = {}
    for path in paths:
        try:
            found[str(path)] = detect_format(path)
        except (InputError, OSError):
            found[str(path)] = "unknown"
    return found


def iter_load(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], format: str = "auto",
              session: LoadSession | None = None) -> Iterator[Instance | Reject]:
    """Stream instances and rejects from files/directories (see the module docstring for the rules)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    session = session or LoadSession(format)
    yield from session.iter(paths)


def load(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], format: str = "auto") -> LoadResult:
    """Load files and directories of any supported format into canonical instances.

    Args:
        paths: one path or several; directories are walked.
        format: ``"auto"`` (content sniffing) or a key of :data:`LOADERS` to insist on a format.

    Returns:
        A :class:`LoadResult` (instances, rejects, per-file summary).

    Raises:
        InputError: a missing, empty, truncated, non-UTF-8 or unrecognised file (one paragraph, naming it).

    Example:
        >>> from toolqual_utils.loaders import load
        >>> result = load("data/toolalpaca_eval.jsonl")  # doctest: +SKIP
        >>> len(result.instances), len(result.rejects)    # doctest: +SKIP
        (214, 0)
    """
    session = LoadSession(format)
    instances: list[Instance] = []
    rejects: list[Reject] = []
    for item in iter_load(paths, format, session=session):
        (rejects if isinstance(item, Reject) else instances).append(item)
    return LoadResult(instances, rejects, session.summary)


__all__ = ["FORMATS", "LOADERS", "SUMMARY_COLUMNS", "FileSummary", "LoadResult", "LoadSession", "detect_format",
           "expand_paths", "formats_of", "iter_load", "load"]
