"""Display helpers shared by every notebook: one way to show summaries, tables, figures, notes and provenance.

Every notebook starts with ``root = nb.setup()``, opens with ``nb.summary(...)`` (the page's question
answered in three lines of numbers, which ``toolqual report`` also copies into ``index.html``) and ends
with ``nb.provenance()`` (which lists the parameters the kernel ran with, read from the notebook's
parameters cell and the cell papermill injected). In between it only calls :func:`show_table`,
:func:`show_figure`, :func:`details` and :func:`note`, so the same cells look the same in JupyterLab and
in the offline HTML report written by ``toolqual report``:

- all text that can come from a dataset is HTML-escaped;
- numbers are written for people (:mod:`toolqual_utils.formatting`: thousands separators,
  percentages with sensible digits, no scientific notation, ``–`` for a missing value, ``unscored``
  as a grey category); long tables and long text are collapsed behind ``<details>`` with a count;
- plotly.js is inlined once per page (the first figure carries it, later figures reference it); no
  CDN, no require.js, no MathJax, so the report works without network; figures use the colour-blind
  safe colours of :mod:`toolqual_utils.palette`;
- ``fig.show()`` goes through the same offline path once :func:`setup` has run;
- :func:`export_figure` writes static PDF/PNG figures when ``toolqual report --figures DIR`` asks.

Environment variable values are never displayed (provenance names the variables it used, at most).
"""
from __future__ import annotations

import datetime as _dt
import glob as _glob
import html
import json
import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from . import formatting as fmt
from .palette import SERIES_COLOURS, UNSCORED_GREY

__all__ = [
    "setup",
    "project_root",
    "data_files",
    "load_data",
    "LoadedData",
    "relative_path",
    "rejects_files",
    "show_table",
    "show_figure",
    "note",
    "provenance",
    "provenance_record",
    "table_html",
    "mask_secrets",
    "figure_html",
    "details",
    "details_html",
    "summary",
    "summary_html",
    "SUMMARY_METADATA_KEY",
    "notebook_parameters",
    "export_figure",
    "FIGURES_ENV",
    "COLLAPSE_ROWS",
]

#: Packages whose versions the provenance cell lists (distribution names).
KEY_PACKAGES = (
    "toolqual", "pandas", "numpy", "pydantic", "plotly", "openai", "papermill", "nbconvert",
    "ipywidgets", "scipy", "statsmodels", "rapidfuzz", "matplotlib", "seaborn",
)

_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|passw(or)?d|credential|auth|bearer|private[_-]?key)", re.I)
_SECRET_VALUE = re.compile(r"^(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+|gh[pousr]_[A-Za-z0-9]{16,}|xox[abp]-\S+)$")
MASK = "***"

_STATE: dict[str, Any] = {"plotlyjs_emitted": False, "root": None, "parameters": {}, "injected": set()}

# Selectors start with ".tq-table-wrap table.tq-table" so they outrank JupyterLab's
# ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td" (which right-aligns every cell), both in Lab
# and in the exported report.
_TABLE_CSS = """<style>
.tq-table-wrap{max-width:100%;overflow-x:auto;margin:0.4em 0 0.2em 0}
.tq-table-wrap table.tq-table{border-collapse:collapse;table-layout:auto;width:auto;max-width:100%;margin:0;font-size:12.5px;
  font-family:system-ui,-apple-system,"Segoe UI",sans-serif;border:none}
.tq-table-wrap table.tq-table th{background:#f2f4f7;text-align:left;padding:4px 8px;border:none;
  border-bottom:2px solid #c9ced6;white-space:normal;overflow-wrap:break-word;vertical-align:bottom;min-width:3.5em}
.tq-table-wrap table.tq-table td{text-align:left;padding:3px 8px;border:none;border-bottom:1px solid #e4e7eb;
  vertical-align:top;min-width:3em;max-width:42em;white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal}
.tq-table-wrap table.tq-table tbody tr:nth-child(odd){background:#fff}
.tq-table-wrap table.tq-table tbody tr:nth-child(even){background:#fafbfc}
.tq-table-wrap table.tq-table tbody tr:hover{background:#eef4ff}
.tq-table-wrap table.tq-table td.tq-text{min-width:12em}
.tq-table-wrap table.tq-table td.tq-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;min-width:0}
.tq-table-wrap table.tq-table td.tq-na{color:#8a94a3}
.tq-table-wrap table.tq-table td.tq-unscored{color:#4b5563;background:#BDBDBD33}
.tq-table-wrap table.tq-table td.tq-error{color:#9b1c1c;font-weight:600}
.tq-table-wrap table.tq-table td.tq-holds{color:#1f5f8b}
.tq-more-text{white-space:pre-wrap}
details.tq-more{margin-top:2px}
details.tq-more>summary{cursor:pointer;color:#2563eb;font-size:11.5px}
details.tq-more pre,pre.tq-pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:11.5px;background:#f6f8fa;
  padding:6px 8px;margin:4px 0;max-height:40em;overflow-y:auto}
details.tq-block{margin:0.6em 0 0.8em 0;border:1px solid #e4e7eb;border-radius:4px;padding:4px 10px}
details.tq-block>summary{cursor:pointer;padding:2px 0}
details.tq-block>summary .tq-caption{display:inline;margin:0}
.tq-count{color:#5f6b7a;font-weight:400;font-family:system-ui,sans-serif;font-size:12.5px}
.tq-caption{font-weight:600;margin:0.8em 0 0.2em 0;font-family:system-ui,sans-serif}
.tq-foot{color:#5f6b7a;font-size:11.5px;margin:2px 0 0.9em 0;font-family:system-ui,sans-serif}
.tq-note{border-left:4px solid #3b82f6;background:#eff6ff;padding:8px 12px;margin:0.6em 0;white-space:pre-wrap;
  font-family:system-ui,sans-serif;font-size:13px}
.tq-note.tq-warning{border-left-color:#d97706;background:#fffbeb}
.tq-summary{border:1px solid #c9d7ea;border-left:6px solid #1d4ed8;background:#f5f8ff;padding:10px 16px 8px 16px;
  margin:0.4em 0 1em 0;font-family:system-ui,-apple-system,"Segoe UI",sans-serif;border-radius:4px}
.tq-summary .tq-summary-q{font-weight:700;font-size:15px;margin-bottom:4px;color:#1e3a8a}
.tq-summary ul{margin:0 0 4px 0;padding-left:1.2em}
.tq-summary li{font-size:14px;line-height:1.45;margin:1px 0}
.tq-summary .tq-summary-src{color:#4b5563;font-size:12px}
</style>"""


def _display_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


# --- setup -----------------------------------------------------------------------------------------


def _is_project_root(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "toolqual_utils").is_dir()


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The toolqual project root (the checkout holding ``pyproject.toml``, ``toolqual_utils/`` and ``notebooks/``).

    ``$TOOLQUAL_ROOT`` if set; else the nearest such folder from ``start`` (default: the working
    directory) upwards; else the checkout this package was installed from (``pip install -e .``), so
    ``toolqual report --data ~/my_data/x.jsonl`` works from any folder.

    Raises:
        ConfigError: none of these is a toolqual checkout.
    """
    env_root = os.environ.get("TOOLQUAL_ROOT")
    if env_root:
        return Path(env_root).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_project_root(folder):
            return folder
    installed = Path(__file__).resolve().parents[1]
    if _is_project_root(installed):
        return installed
    from .errors import ConfigError

    raise ConfigError(
        f"cannot find the toolqual project (a folder with pyproject.toml and toolqual_utils/) in {here} or "
        "above; run inside the checkout or set TOOLQUAL_ROOT to it"
    )


def setup(*, chdir: bool = True) -> Path:
    """Prepare a notebook: find the project root, make plotly render offline, return the root.

    With ``chdir=True`` (default) the working directory becomes the project root, so the relative
    paths in parameters (``data/*.jsonl``) mean the same in JupyterLab and in ``toolqual report``.
    Registers a plotly renderer ``"toolqual"`` (the default afterwards) so that ``fig.show()`` embeds
    the figure exactly like :func:`show_figure`.
    """
    root = project_root()
    if chdir:
        os.chdir(root)
    _STATE["root"] = root
    _STATE["plotlyjs_emitted"] = False
    _STATE["parameters"], _STATE["injected"] = notebook_parameters()
    _configure_plotly()
    pd.set_option("display.max_colwidth", 200)
    return root


#: The first line papermill writes into the cell it injects (tag ``injected-parameters``).
_INJECTED_HEADER = "# Parameters"


def _literal_assignments(source: str) -> dict[str, Any] | None:
    """``name = literal`` pairs of a cell made only of such assignments (and comments), else None."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics, shell escapes: not a parameters cell
        return None
    found: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return None
        try:
            found[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            return None
    return found or None


def notebook_parameters(history: Sequence[str] | None = None,
                        namespace: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], set[str]]:
    """The notebook's parameters and which of them ``toolqual report`` (papermill) set.

    Read from the cells the kernel ran before the current one (IPython's ``In`` history): every cell
    made only of ``name = literal`` assignments is a parameters cell — the notebook's own (tag
    ``parameters``) and the one papermill injects after it (first line ``# Parameters``), whose names
    are the *injected* ones. Values come from the kernel's namespace (what the notebook actually used),
    else from the literals. Outside IPython both are empty.

    Args:
        history: cell sources in execution order, the current cell last (default: IPython's ``In``).
        namespace: the variables (default: IPython's user namespace).

    Returns:
        ``(parameters, injected_names)``; parameters in the order they were first assigned.
    """
    if history is None or namespace is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython ships with ipykernel
            return {}, set()
        shell = get_ipython()
        if shell is None:
            return {}, set()
        history = list(shell.user_ns.get("In", [])) if history is None else history
        namespace = shell.user_ns if namespace is None else namespace
    parameters: dict[str, Any] = {}
    injected: set[str] = set()
    for source in list(history)[:-1]:
        assigned = _literal_assignments(source or "")
        if assigned is None:
            continue
        if source.lstrip().splitlines()[0].strip() == _INJECTED_HEADER:
            injected.update(assigned)
        for name, value in assigned.items():
            parameters[name] = namespace.get(name, value)
    return parameters, injected


def _configure_plotly() -> None:
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class _ToolqualRenderer(MimetypeRenderer):
        """``fig.show()`` -> the same offline HTML as :func:`show_figure`."""

        def to_mimebundle(self, fig_dict: dict) -> dict:  # noqa: D401 - plotly's hook
            import plotly.graph_objects as go

            return {"text/html": figure_html(go.Figure(fig_dict))}

    pio.renderers["toolqual"] = _ToolqualRenderer()
    pio.renderers.default = "toolqual"
    template = go_template()
    pio.templates["toolqual"] = template
    pio.templates.default = "toolqual"


def go_template() -> Any:
    """plotly's ``plotly_white`` with the colour-blind-safe series colours of :mod:`toolqual_utils.palette`."""
    import plotly.graph_objects as go
    import plotly.io as pio

    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.colorway = list(SERIES_COLOURS)
    return template


#: The bundled sample data (what ``make reports`` profiles by default).
BUNDLED_DATA_GLOB = "data/*.jsonl"


def _patterns(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    return [os.fspath(item) for item in data]


def data_files(
    pattern: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Files matching one glob, file or folder (or a list of them), relative to the project root or absolute.

    A folder stands for every file under it (``toolqual load`` then keeps the ones in a supported
    format), except that a Hugging Face ``datasets`` folder (``save_to_disk``) inside it, or the folder
    itself, is one source. ``*.rejects.jsonl`` (records a loader could not convert) and ``*.tmp`` files never match.
    Returns the files sorted within each pattern, each file once; an empty list when nothing matches.
    """
    from .loaders.containers import folder_sources

    base = Path(root) if root is not None else (_STATE["root"] or project_root())
    found: dict[Path, None] = {}
    for item in _patterns(pattern):
        target = Path(item) if os.path.isabs(item) else base / item
        if target.is_dir():
            # a Hugging Face datasets folder is one source, never its Arrow/JSON parts
            matches = folder_sources(target)
        else:
            # glob.glob, not Path.glob: an absolute pattern (a user's own folder) must work too
            matches = sorted(Path(p) for p in _glob.glob(str(target), recursive=True) if os.path.isfile(p))
        for path in matches:
            if not path.name.endswith((".rejects.jsonl", ".tmp")):
                found.setdefault(path, None)
    return list(found)


@dataclass
class LoadedData:
    """What a notebook analyses: instances read through the loaders, with where they came from.

    Attributes:
        instances: every converted instance, file order then record order.
        by_file: project-relative file name -> its instances (files that gave none are left out).
        files: the files that matched, in order.
        summary: the loaders' per-file table (``format``, ``n_read``, ``n_converted``, ``n_rejected``, ...).
        rejects: records that could not be converted in this load, plus those listed in
            ``X.rejects.jsonl`` files that ``toolqual load`` wrote next to canonical inputs, as one frame
            per file (for :func:`toolqual_utils.profile.reject_summary`).
        is_bundled: True when the data is exactly the bundled sample (``data/*.jsonl``).
        patterns: the globs/paths as given.
    """

    instances: list[Any]
    by_file: dict[str, list[Any]]
    files: list[Path]
    summary: pd.DataFrame
    rejects: dict[str, pd.DataFrame] = field(default_factory=dict)
    is_bundled: bool = True
    patterns: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        """"the bundled sample data (…)" or "your data (…)", for the first lines of a report."""
        n_files = len(self.files)
        what = "the bundled sample data" if self.is_bundled else "your data"
        names = ", ".join(relative_path(p) for p in self.files[:3]) + (", …" if n_files > 3 else "")
        return f"{what}: {len(self.instances):,} instances from {n_files:,} file{'s' if n_files != 1 else ''} ({names})"


def load_data(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> LoadedData:
    """Read every file matching ``data`` through the loaders (any supported format, detected from content).

    Args:
        data: a glob, file or folder relative to the project root (or absolute), or a list of them: the
            ``data_glob`` parameter of the notebooks, which ``toolqual report --data PATH…`` sets.
        root: the project root (default: the one :func:`setup` found).

    Returns:
        :class:`LoadedData`.

    Raises:
        ConfigError: nothing matches, or the files hold no instance at all; the message names the
            patterns or the files (with what the loaders made of each) and says what to do. A report
            then fails visibly instead of rendering empty tables.
        InputError: a file that is not in any supported format (one paragraph naming it).
    """
    from .errors import ConfigError
    from .io import read_table
    from .loaders import load

    patterns = _patterns(data)
    files = data_files(patterns, root)
    if not files:
        raise ConfigError(
            f"no file matches {', '.join(repr(p) for p in patterns)} (relative to {_STATE['root'] or project_root()}). "
            "Give existing files or folders, e.g. `toolqual report --data my_data/train.jsonl`; any supported "
            "format works (see `toolqual load --help`)."
        )
    result = load(files)
    by_file: dict[str, list[Any]] = {}
    for instance, file in zip(result.instances, _instance_files(result)):
        by_file.setdefault(relative_path(file), []).append(instance)
    summary = result.summary.copy()
    if len(summary):
        summary["file"] = [relative_path(f) for f in summary["file"]]
    rejects: dict[str, pd.DataFrame] = {}
    if result.rejects:
        frame = pd.DataFrame([r.to_record() for r in result.rejects])
        for file, group in frame.groupby("file", sort=False):
            rejects[relative_path(file)] = group.reset_index(drop=True)
    for path in rejects_files([f for f in files if f.suffix == ".jsonl"]):
        rejects[relative_path(path)] = read_table(path)
    if not result.instances:
        per_file = "; ".join(
            f"{row.file}: {row.format}, {row.n_read} record(s) read, {row.n_rejected} rejected"
            + (f" ({row.note})" if row.note else "")
            for row in summary.itertuples()
        ) or "no file in a supported format"
        raise ConfigError(
            f"the files matching {', '.join(repr(p) for p in patterns)} hold no instance ({per_file}). "
            "Run `toolqual load FILE --out data.jsonl` on one of them to see each rejected record with its "
            "reason, and check that the files are tool-use data in a supported format."
        )
    bundled = sorted(data_files(BUNDLED_DATA_GLOB, root))
    return LoadedData(
        instances=result.instances, by_file=by_file, files=files, summary=summary, rejects=rejects,
        is_bundled=sorted(files) == bundled, patterns=patterns,
    )


def _instance_files(result: Any) -> list[str]:
    """The file of each instance of a load result (the summary's counts, in order)."""
    files: list[str] = []
    for row in result.summary.itertuples():
        files.extend([row.file] * int(row.n_converted))
    return files


def rejects_files(paths: list[Path]) -> list[Path]:
    """The ``X.rejects.jsonl`` files that ``toolqual load`` wrote next to the given ``X.jsonl`` files.

    Only existing files are returned, in the order of ``paths``.
    """
    siblings = [Path(p).with_name(Path(p).name[: -len(Path(p).suffix)] + ".rejects.jsonl") for p in paths]
    return [p for p in siblings if p.is_file()]


def relative_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the project root when inside it (POSIX style), else absolute."""
    root = _STATE["root"] or project_root()
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return resolved.as_posix()


# --- tables ----------------------------------------------------------------------------------------

#: Tables longer than this are shown collapsed (a ``<details>`` whose summary names the row count).
COLLAPSE_ROWS = 15

_LABEL_CLASSES = {"error": "tq-error", "holds": "tq-holds"}


def _cell_class(text: str, is_num: bool, is_long: bool) -> str:
    classes = []
    if is_num:
        classes.append("tq-num")
    elif is_long:
        classes.append("tq-text")
    if text == fmt.MISSING:
        classes.append("tq-na")
    elif text == fmt.UNSCORED or text.startswith(f"{fmt.UNSCORED}:"):
        classes.append("tq-unscored")
    elif text in _LABEL_CLASSES:
        classes.append(_LABEL_CLASSES[text])
    return f' class="{" ".join(classes)}"' if classes else ""


_NUMERIC_TEXT = re.compile(r"^[<>≈$+−-]*\d[\d,.]*(%| pts| s)?$")


def _looks_numeric(column: Sequence[Any]) -> bool:
    texts = [c for c in column if isinstance(c, str) and c != fmt.MISSING]
    return bool(texts) and all(_NUMERIC_TEXT.match(t) for t in texts)


def _min_width(header: Any, column: Sequence[Any], is_num: bool, cap: int = 15) -> str:
    """A column's minimum width: its cells' longest unbreakable word (capped), so ids are not split
    mid-word while long texts still wrap (cells break anywhere only beyond the cap). Numbers never wrap;
    headers wrap at their spaces, snake_case names after their underscores (:func:`_header_html`)."""
    if is_num:
        return ""
    longest = max((len(word) for cell in column for word in str(getattr(cell, "summary", cell)).split()), default=0)
    width = min(longest, cap)
    return f' style="min-width:{width * 0.62 + 1:.1f}em"' if width > 4 else ""


_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def _header_html(column: Any) -> str:
    """A column name as escaped header HTML; the text itself is never changed.

    A snake_case name (``n_with_gold_calls``) may wrap after its underscores (``n_with_/gold_calls``)
    when the column is narrow; any other header (``model judge (strong-judge · judge_combined.v1)``)
    wraps at its spaces and is written as it is."""
    text = html.escape(str(column))
    return text.replace("_", "_<wbr>") if _SNAKE_CASE.match(str(column)) else text


def details_html(item: fmt.Details) -> str:
    """A :class:`~toolqual_utils.formatting.Details` value as an escaped ``<details>`` element."""
    return (f'<div class="tq-more-text">{html.escape(item.summary)}</div>'
            f'<details class="tq-more"><summary>{html.escape(item.label)}</summary>'
            f"<pre>{html.escape(item.body)}</pre></details>")


def table_html(
    df: pd.DataFrame, max_rows: int = 50, caption: str | None = None, *, max_chars: int = 400,
    percent: Sequence[str] = (), collapsed: bool | None = None, foot: str | None = None,
) -> str:
    """The escaped HTML :func:`show_table` displays (handy for tests and for composing pages).

    Every cell goes through :mod:`toolqual_utils.formatting`: numbers with thousands separators and no
    scientific notation, share columns (``percent`` or named like ``share``/``*_rate``) as percentages,
    missing values as ``–``, the label words ``holds``/``error``/``unscored`` as coloured chips (unscored
    always grey), :class:`~toolqual_utils.formatting.Details` cells with their long part collapsed.
    """
    frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame(df)
    show_index = not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None
    if show_index:
        frame = frame.reset_index()
    n_rows = len(frame)
    shown = frame.head(max_rows) if max_rows and max_rows > 0 else frame
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    as_percent = [is_num and (c in percent or fmt.is_percent_column(c)) for c, is_num in zip(frame.columns, numeric)]
    texts = [
        [cell if isinstance(cell, fmt.Details) else fmt.cell_text(cell, as_percent=pct, max_chars=max_chars)
         for cell in shown.iloc[:, position]]
        for position, pct in enumerate(as_percent)
    ]
    # numbers already written as text (transposed tables, "1,680", "31%") are right-aligned too
    numeric = [is_num or _looks_numeric(column) for column, is_num in zip(texts, numeric)]
    # long-text columns (instructions, answers) get a minimum width so they do not collapse
    long_text = [
        not is_num and max((len(str(v)) for v in column), default=0) > 60
        for column, is_num in zip(texts, numeric)
    ]
    parts = ['<div class="tq-table-wrap"><table class="tq-table"><thead><tr>']
    parts.extend(f"<th{_min_width(c, column, is_num)}>{_header_html(c)}</th>"
                 for c, column, is_num in zip(frame.columns, texts, numeric))
    parts.append("</tr></thead><tbody>")
    for row_index in range(len(shown)):
        parts.append("<tr>")
        for column, is_num, is_long in zip(texts, numeric, long_text):
            cell = column[row_index]
            if isinstance(cell, fmt.Details):
                parts.append(f'<td class="tq-text">{details_html(cell)}</td>')
            else:
                parts.append(f"<td{_cell_class(cell, is_num, is_long)}>{html.escape(cell)}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table></div>")
    if n_rows == 0:
        count_text = "(no rows)"
    elif len(shown) < n_rows:
        count_text = f"showing {len(shown):,} of {n_rows:,} rows"
    else:
        count_text = f'{n_rows:,} row{"s" if n_rows != 1 else ""}'
    footer = count_text + (f" · {foot}" if foot else "")
    parts.append(f'<div class="tq-foot">{html.escape(footer)}</div>')
    body = "".join(parts)
    if collapsed is None:
        collapsed = n_rows > COLLAPSE_ROWS
    title = html.escape(str(caption)) if caption else "Table"
    if collapsed:
        return (f'{_TABLE_CSS}<details class="tq-block"><summary><span class="tq-caption">{title}</span> '
                f'<span class="tq-count">({n_rows:,} row{"s" if n_rows != 1 else ""})</span></summary>{body}</details>')
    head = f'<div class="tq-caption">{title}</div>' if caption else ""
    return _TABLE_CSS + head + body


def show_table(
    df: pd.DataFrame, max_rows: int = 50, caption: str | None = None, *, max_chars: int = 400,
    percent: Sequence[str] = (), collapsed: bool | None = None, foot: str | None = None,
) -> None:
    """Display a table with every cell, header and the caption HTML-escaped, numbers formatted for people.

    Args:
        df: any frame; a meaningful index (not a plain RangeIndex) is shown as leading columns.
        max_rows: rows shown (the first ``max_rows``; 0 = all); a footer says how many there are.
        caption: a title shown above the table (inside the disclosure's summary when collapsed).
        max_chars: longer cell texts are cut with an ellipsis (dicts/lists are shown as JSON).
        percent: numeric columns holding shares in [0, 1], written as percentages (columns named
            ``share``, ``share_*``, ``*_share`` or ``*_rate`` are recognised without it).
        collapsed: True to show the table behind a ``<details>`` whose summary gives the caption and the
            row count; None (default) collapses tables longer than :data:`COLLAPSE_ROWS` rows.
        foot: a remark appended to the row-count footer (e.g. what ``–`` means in this table).
    """
    _display_html(table_html(df, max_rows=max_rows, caption=caption, max_chars=max_chars, percent=percent,
                             collapsed=collapsed, foot=foot))


def details(title: str, text: str, *, count: str | None = None) -> None:
    """Display long text (a prompt, a list) collapsed: ``title (count)`` opens to the escaped text."""
    label = html.escape(title) + (f' <span class="tq-count">({html.escape(count)})</span>' if count else "")
    _display_html(f'{_TABLE_CSS}<details class="tq-block"><summary><span class="tq-caption">{label}</span></summary>'
                  f'<pre class="tq-pre">{html.escape(text)}</pre></details>')


# --- figures ---------------------------------------------------------------------------------------


def figure_html(fig: Any, *, include_plotlyjs: bool | None = None) -> str:
    """Offline HTML for one plotly figure; plotly.js inlined only the first time on the page.

    ``include_plotlyjs=None`` means "inline it unless an earlier figure of this kernel session did".
    """
    if include_plotlyjs is None:
        include_plotlyjs = not _STATE["plotlyjs_emitted"]
    height = fig.layout.height or 450
    markup = fig.to_html(
        full_html=False,
        include_plotlyjs=bool(include_plotlyjs),
        include_mathjax=False,
        default_width="100%",
        default_height=f"{int(height)}px",
        config={"displaylogo": False, "responsive": True},
    )
    if include_plotlyjs:
        _STATE["plotlyjs_emitted"] = True
    return markup


def show_figure(fig: Any) -> None:
    """Display a plotly figure, embedded for offline viewing (no CDN, no require.js, no MathJax)."""
    _display_html(figure_html(fig))


# --- notes -----------------------------------------------------------------------------------------


def note(text: str, kind: Literal["info", "warning"] = "info") -> None:
    """Display an escaped message box (``kind="warning"`` for things the reader must act on)."""
    if kind not in ("info", "warning"):
        raise ValueError(f"kind must be 'info' or 'warning', got {kind!r}")
    cls = "tq-note tq-warning" if kind == "warning" else "tq-note"
    _display_html(f'{_TABLE_CSS}<div class="{cls}">{html.escape(str(text))}</div>')


# --- provenance ------------------------------------------------------------------------------------


def _secret_env_values() -> set[str]:
    # Compared against, never shown: a parameter equal to a secret's value is masked.
    return {
        value
        for name, value in os.environ.items()
        if _SECRET_KEY.search(name) and value and len(value) >= 6
    }


def mask_secrets(value: Any, key: str = "", _env: set[str] | None = None) -> Any:
    """A copy of ``value`` where anything that looks like a secret is replaced by ``"***"``.

    Masked: values under keys naming a key/token/secret/password/credential/auth, strings shaped
    like API keys (``sk-…``, ``Bearer …``, GitHub/Slack tokens), and strings equal to the value of a
    secret-named environment variable. Dicts and lists are walked.
    """
    env = _secret_env_values() if _env is None else _env
    if key and _SECRET_KEY.search(key) and not key.endswith("_env") and value not in (None, "", False):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k), env) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, "", env) for v in value]
    if isinstance(value, str) and (_SECRET_VALUE.match(value.strip()) or value in env):
        return MASK
    return value


def _git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown (not a git checkout)"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )
        dirty = " (with uncommitted changes)" if status.stdout.strip() else ""
        return rev.stdout.strip() + dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def package_versions(packages: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (``"not installed"`` when absent), without importing them."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_record(parameters: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance facts :func:`provenance` shows, as a dict (secrets masked).

    ``parameters`` None means the notebook's own parameters as :func:`setup` read them (see
    :func:`notebook_parameters`); ``injected_parameters`` then names those ``toolqual report`` set.
    """
    root = _STATE["root"] or project_root()
    env = _secret_env_values()
    injected: set[str] = set()
    if parameters is None:
        parameters = _STATE.get("parameters") or {}
        injected = set(_STATE.get("injected") or ())
    record: dict[str, Any] = {
        "generated_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_revision": _git_revision(root),
        "parameters": mask_secrets(dict(parameters), "", env),
    }
    if injected:
        record["injected_parameters"] = sorted(injected)
    for key, value in extra.items():
        record[key] = mask_secrets(value, key, env)
    record["python"] = f"{platform.python_version()} ({platform.python_implementation()})"
    record["packages"] = package_versions()
    return record


def provenance(parameters: Mapping[str, Any] | None = None, **extra: Any) -> None:
    """Display the closing provenance table, collapsed (use :func:`provenance_record` to get it as a dict).

    Args:
        parameters: the parameter values to list; None (default) lists the notebook's parameters as
            the kernel ran them — the defaults of its ``parameters`` cell with what ``toolqual report``
            injected (papermill) — so a notebook never copies its parameters into this call.
            Anything that looks like a secret is shown as ``***``.
        **extra: more facts, e.g. ``judge_model=``, ``prompt_ids=``, ``cache_hits=``,
            ``cache_misses=``, ``n_instances=``. Dicts and lists are shown as JSON.
    """
    record = provenance_record(parameters, **extra)
    rows = []
    for key, value in record.items():
        if key in ("parameters", "packages") and isinstance(value, Mapping):
            rows.extend((f"{key}.{k}", v) for k, v in value.items())
            if not value:
                rows.append((key, "(none)"))
        else:
            rows.append((key, value))
    frame = pd.DataFrame(rows, columns=["item", "value"])
    frame["value"] = frame["value"].map(
        lambda v: json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else (v or "(empty)")
    )
    show_table(frame, max_rows=0, caption="Provenance: parameters, revision, package versions", max_chars=1000,
               collapsed=True)


# --- summary ---------------------------------------------------------------------------------------

#: Key of the executed notebook's output metadata under which :func:`summary` leaves its numbers
#: (``toolqual report`` reads it to write each page's headline into ``index.html``).
SUMMARY_METADATA_KEY = "toolqual_summary"


def summary_html(question: str, lines: Sequence[str], source: str = "") -> str:
    """The escaped summary block (CSS class ``tq-summary``)."""
    items = "".join(f"<li>{html.escape(str(line))}</li>" for line in lines)
    src = f'<div class="tq-summary-src">{html.escape(source)}</div>' if source else ""
    return (f'{_TABLE_CSS}<div class="tq-summary"><div class="tq-summary-q">{html.escape(question)}</div>'
            f"<ul>{items}</ul>{src}</div>")


def summary(question: Any, lines: Sequence[str] | None = None, *, source: str = "",
            numbers: Mapping[str, Any] | None = None) -> None:
    """Open a page with its answer: the question, three lines of numbers, and which judge and data.

    Displays a block with the CSS class ``tq-summary`` and leaves the same content, plus the
    machine-readable ``numbers``, in the output's metadata under :data:`SUMMARY_METADATA_KEY`, where
    ``toolqual report`` finds it for the index.

    Args:
        question: the question the page answers, or a :class:`toolqual_utils.headlines.Summary`
            (then the other arguments come from it).
        lines: up to three short lines answering it in numbers.
        source: which data and judge produced them.
        numbers: headline numbers (JSON-serialisable; NaN becomes null).
    """
    if lines is None and hasattr(question, "lines"):
        item = question
        question, lines, source, numbers = item.question, item.lines, item.source, item.numbers
    record = {"question": str(question), "lines": [str(line) for line in lines or []], "source": source,
              "numbers": json.loads(json.dumps(dict(numbers or {}), default=_json_default))}
    from IPython.display import HTML, display

    display(HTML(summary_html(record["question"], record["lines"], source)),
            metadata={SUMMARY_METADATA_KEY: record})


def _json_default(value: Any) -> Any:
    if fmt.is_missing(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# --- static figures --------------------------------------------------------------------------------

#: Environment variable naming the folder ``toolqual report --figures DIR`` asks notebooks to draw into.
FIGURES_ENV = "TOOLQUAL_FIGURES_DIR"


def export_figure(name: str, builder: Any, *args: Any, **kwargs: Any) -> None:
    """Save a static figure (PDF and PNG) for papers, when ``toolqual report --figures DIR`` asked for it.

    Does nothing (and imports no plotting library) unless ``$TOOLQUAL_FIGURES_DIR`` is set. Then calls
    ``builder(*args, **kwargs)`` (a function of :mod:`toolqual_utils.figures` returning a matplotlib
    figure, or None when there is nothing to draw) and writes ``DIR/<name>.pdf`` and ``DIR/<name>.png``.

    Returns nothing (so the page shows nothing); the files written are listed by ``toolqual report``.
    """
    folder = os.environ.get(FIGURES_ENV, "").strip()
    if not folder:
        return
    from .figures import save_figure

    figure = builder(*args, **kwargs)
    if figure is not None:
        save_figure(figure, Path(folder), name)
