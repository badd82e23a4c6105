"""Display helpers shared by every notebook: one way to show tables, figures, notes and provenance.

Every notebook starts with ``root = nb.setup()`` and ends with ``nb.provenance(parameters, ...)``.
In between it only calls :func:`show_table`, :func:`show_figure` and :func:`note`, so the same cells
look the same in JupyterLab and in the offline HTML report written by ``toolqual report``:

- all text that can come from a dataset is HTML-escaped;
- plotly.js is inlined once per page (the first figure carries it, later figures reference it); no
  CDN, no require.js, no MathJax, so the report works without network;
- ``fig.show()`` goes through the same offline path once :func:`setup` has run.

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
]

#: Packages whose versions the provenance cell lists (distribution names).
KEY_PACKAGES = (
    "toolqual", "pandas", "numpy", "pydantic", "plotly", "openai", "papermill", "nbconvert",
    "ipywidgets", "scipy", "statsmodels", "rapidfuzz",
)

_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|passw(or)?d|credential|auth|bearer|private[_-]?key)", re.I)
_SECRET_VALUE = re.compile(r"^(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+|gh[pousr]_[A-Za-z0-9]{16,}|xox[abp]-\S+)$")
MASK = "***"

_STATE: dict[str, Any] = {"plotlyjs_emitted": False, "root": None}

# Selectors start with ".tq-table-wrap table.tq-table" so they outrank JupyterLab's
# ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td" (which right-aligns every cell), both in Lab
# and in the exported report.
_TABLE_CSS = """<style>
.tq-table-wrap{max-width:100%;overflow-x:auto;margin:0.4em 0 1em 0}
.tq-table-wrap table.tq-table{border-collapse:collapse;table-layout:auto;width:auto;margin:0;font-size:12.5px;
  font-family:system-ui,-apple-system,"Segoe UI",sans-serif;border:none}
.tq-table-wrap table.tq-table th{background:#f2f4f7;text-align:left;padding:4px 8px;border:none;
  border-bottom:2px solid #c9ced6;white-space:nowrap;vertical-align:bottom}
.tq-table-wrap table.tq-table td{text-align:left;padding:3px 8px;border:none;border-bottom:1px solid #e4e7eb;
  vertical-align:top;min-width:4em;max-width:42em;white-space:pre-wrap;overflow-wrap:break-word;word-break:normal}
.tq-table-wrap table.tq-table tbody tr:nth-child(odd){background:#fff}
.tq-table-wrap table.tq-table tbody tr:nth-child(even){background:#fafbfc}
.tq-table-wrap table.tq-table tbody tr:hover{background:#eef4ff}
.tq-table-wrap table.tq-table td.tq-text{min-width:14em}
.tq-table-wrap table.tq-table td.tq-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;min-width:0}
.tq-caption{font-weight:600;margin:0.8em 0 0.2em 0;font-family:system-ui,sans-serif}
.tq-foot{color:#5f6b7a;font-size:11.5px;margin-top:2px;font-family:system-ui,sans-serif}
.tq-note{border-left:4px solid #3b82f6;background:#eff6ff;padding:8px 12px;margin:0.6em 0;white-space:pre-wrap;
  font-family:system-ui,sans-serif;font-size:13px}
.tq-note.tq-warning{border-left-color:#d97706;background:#fffbeb}
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
    _configure_plotly()
    pd.set_option("display.max_colwidth", 200)
    return root


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
    pio.templates.default = "plotly_white"


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


def _cell_text(value: Any, max_chars: int) -> str:
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    elif value is None:
        text = ""
    else:
        try:
            if pd.isna(value):
                return ""
        except (TypeError, ValueError):
            pass
        if isinstance(value, float):
            text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
        else:
            text = str(value)
    if max_chars and len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


def table_html(
    df: pd.DataFrame, max_rows: int = 50, caption: str | None = None, *, max_chars: int = 400
) -> str:
    """The escaped HTML :func:`show_table` displays (handy for tests and for composing pages)."""
    frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame(df)
    show_index = not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None
    if show_index:
        frame = frame.reset_index()
    n_rows = len(frame)
    shown = frame.head(max_rows) if max_rows and max_rows > 0 else frame
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    # long-text columns (instructions, answers) get a minimum width so they do not collapse
    long_text = [
        not is_num and max((len(_cell_text(v, max_chars)) for v in shown[c]), default=0) > 60
        for c, is_num in zip(frame.columns, numeric)
    ]
    parts = [_TABLE_CSS]
    if caption:
        parts.append(f'<div class="tq-caption">{html.escape(str(caption))}</div>')
    parts.append('<div class="tq-table-wrap"><table class="tq-table"><thead><tr>')
    parts.extend(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    parts.append("</tr></thead><tbody>")
    for row in shown.itertuples(index=False, name=None):
        parts.append("<tr>")
        for value, is_num, is_long in zip(row, numeric, long_text):
            cls = ' class="tq-num"' if is_num else (' class="tq-text"' if is_long else "")
            parts.append(f"<td{cls}>{html.escape(_cell_text(value, max_chars))}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table></div>")
    if n_rows == 0:
        parts.append('<div class="tq-foot">(no rows)</div>')
    elif len(shown) < n_rows:
        parts.append(f'<div class="tq-foot">showing {len(shown):,} of {n_rows:,} rows</div>')
    else:
        parts.append(f'<div class="tq-foot">{n_rows:,} row{"s" if n_rows != 1 else ""}</div>')
    return "".join(parts)


def show_table(
    df: pd.DataFrame, max_rows: int = 50, caption: str | None = None, *, max_chars: int = 400
) -> None:
    """Display a table with every cell, header and the caption HTML-escaped.

    Args:
        df: any frame; a meaningful index (not a plain RangeIndex) is shown as leading columns.
        max_rows: rows shown (the first ``max_rows``); a footer says how many there are.
        caption: a title shown above the table.
        max_chars: longer cell texts are cut with an ellipsis (dicts/lists are shown as JSON).
    """
    _display_html(table_html(df, max_rows=max_rows, caption=caption, max_chars=max_chars))


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


def provenance_record(parameters: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The provenance facts :func:`provenance` shows, as a dict (secrets masked)."""
    root = _STATE["root"] or project_root()
    env = _secret_env_values()
    record: dict[str, Any] = {
        "generated_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_revision": _git_revision(root),
        "parameters": mask_secrets(dict(parameters), "", env),
    }
    for key, value in extra.items():
        record[key] = mask_secrets(value, key, env)
    record["python"] = f"{platform.python_version()} ({platform.python_implementation()})"
    record["packages"] = package_versions()
    return record


def provenance(parameters: Mapping[str, Any], **extra: Any) -> None:
    """Display the closing provenance table (use :func:`provenance_record` to get it as a dict).

    Args:
        parameters: the notebook's parameter values (pass a dict of the parameters-cell names).
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
        lambda v: json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else v
    )
    show_table(frame, max_rows=0, caption="Provenance", max_chars=1000)
