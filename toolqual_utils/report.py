"""The one render path: execute every notebook with papermill and export offline HTML reports.

``render_reports`` runs ``notebooks/NN_*.ipynb`` in order (kernel ``python3``, working directory =
project root, ``TOOLQUAL_ROOT`` set), writes the executed copies to ``<out>/_work/`` (never back into
``notebooks/``), exports each to ``<out>/NN_name.html`` with code hidden, and writes
``<out>/index.html`` listing every report with the question it answers and its headline numbers (what
the page's ``nb.summary(...)`` shows at its top, read from the executed notebook), its status, run
time and, for failures, the error (with ``only``, notebooks rendered by an earlier run stay listed,
marked as such). With ``figures_dir`` the notebooks also write static PDF/PNG figures there.

The HTML is self-contained: nbconvert's CDN tags (require.js, MathJax, mermaid, widget manager) are
switched off by a template, plotly.js is inlined by :mod:`toolqual_utils.notebook`, and every page is
checked for external resource URLs (``<script src>``, ``<link href>``, ``<img src>``, ...) before it
is written; a page that still has one counts as failed.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import re
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .io import atomic_write_text

NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_[\w\-]+\.ipynb$")
KERNEL_NAME = "python3"


def _ipc_kernel_manager_class():
    """A kernel manager that talks to the kernel over Unix sockets instead of loopback TCP.

    The kernel is private to the run: no TCP port is opened, and ipykernel does not print its
    "running over TCP without encryption" warning once per notebook. (Imported lazily: jupyter_client
    is only needed when notebooks run.)
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts (SIGINT) every kernel before asking it to shut down; a kernel
            # that is still flushing its last reply then logs "KeyboardInterrupt caught in kernel" on
            # a good render. A finished notebook has nothing to interrupt: skip it while shutting down.
            if getattr(self, "shutting_down", False):
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager
WORK_DIR = "_work"

# Extends nbconvert's "lab" template; the blocks below are the ones that add CDN <script> tags.
_TEMPLATE_NAME = "toolqual_report.html.j2"
_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}
<style type="text/css">
main { max-width: 1200px; margin: 0 auto; padding: 1em 1.5em 3em 1.5em; }
.jp-Cell { padding: 0; }
.jp-OutputArea-output { overflow-x: auto; }
.jp-RenderedHTMLCommon { font-size: 14px; }
</style>
{% endblock extra_css %}
"""

#: Tags/attributes that make a browser fetch something (anchors are links, not loads: allowed).
_RESOURCE_ATTRS = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
    "embed": ("src",), "object": ("data",), "source": ("src", "srcset"), "video": ("src", "poster"),
    "audio": ("src",), "track": ("src",), "input": ("src",), "frame": ("src",),
}
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*([a-z][a-z0-9+.\-]*:|//)""", re.I)


class _ExternalRefFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in _RESOURCE_ATTRS.get(tag, ()):
                for url in value.split(",") if name == "srcset" else [value]:
                    url = url.strip().split(" ")[0]
                    if is_external_url(url):
                        self.found.append(f"<{tag} {name}={url}>")
            if name == "style" and _CSS_URL.search(value) and not _only_data_urls(value):
                self.found.append(f"<{tag} style=...url(...)>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _CSS_URL.search(data) and not _only_data_urls(data):
            self.found.append("<style> with an external url(...) or @import")


def _only_data_urls(css: str) -> bool:
    return all(m.group(1).lower().startswith("data:") for m in _CSS_URL.finditer(css))


def is_external_url(url: str) -> bool:
    """True for URLs a browser would fetch from elsewhere: any scheme but ``data:``, or ``//host``."""
    url = url.strip()
    if not url or url.startswith("#"):
        return False
    if url.startswith("//"):
        return True
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):", url)
    return bool(scheme) and scheme.group(1).lower() != "data"


def external_references(page: str) -> list[str]:
    """External resource references in an HTML page (script/link/img/iframe... and CSS url()).

    Relative URLs and ``data:`` URLs are fine; ``<a href>`` links are not resource loads and are
    not reported. Returns an empty list for a self-contained page.
    """
    finder = _ExternalRefFinder()
    finder.feed(page)
    finder.close()
    return finder.found


@dataclass
class NotebookRun:
    """Outcome of rendering one notebook."""

    name: str                     # "00_load_and_profile"
    source: Path                  # notebooks/00_load_and_profile.ipynb
    title: str
    status: Literal["ok", "failed"] = "ok"
    seconds: float = 0.0
    html_path: Path | None = None
    executed_path: Path | None = None
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    rendered_at: str = ""
    current: bool = True          # False: kept from an earlier run (``--only`` rendered others)
    summary: dict[str, Any] | None = None   # the page's nb.summary(...) (question, lines, source, numbers)

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name, "source": self.source.name, "title": self.title, "status": self.status,
            "seconds": round(self.seconds, 2), "html": self.html_path.name if self.html_path else None,
            "error": self.error, "rendered_at": self.rendered_at, "summary": self.summary,
        }


_RUNS_FILE = "runs.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _merge_with_earlier(runs: list[NotebookRun], out: Path, all_notebooks: Sequence[Path]) -> list[NotebookRun]:
    """This run's results plus earlier results of notebooks not rendered this time (``--only``)."""
    record_file = out / WORK_DIR / _RUNS_FILE
    earlier: dict[str, dict[str, Any]] = {}
    if record_file.is_file():
        try:
            earlier = {r["name"]: r for r in json.loads(record_file.read_text(encoding="utf-8"))}
        except (ValueError, KeyError, TypeError):
            earlier = {}
    current = {r.name: r for r in runs}
    merged = []
    for notebook in all_notebooks:
        if notebook.stem in current:
            merged.append(current[notebook.stem])
            continue
        record = earlier.get(notebook.stem)
        page = out / record["html"] if record and record.get("html") else None
        if record is None or (page is not None and not page.is_file()):
            continue
        merged.append(
            NotebookRun(
                name=notebook.stem, source=notebook, title=record.get("title") or notebook.stem,
                status="ok" if record.get("status") == "ok" else "failed",
                seconds=float(record.get("seconds") or 0.0), html_path=page, error=record.get("error"),
                rendered_at=record.get("rendered_at", ""), current=False,
                summary=record.get("summary") if isinstance(record.get("summary"), dict) else None,
            )
        )
    record_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record_file, json.dumps([r.to_record() for r in merged], indent=1))
    return merged


def discover_notebooks(notebooks_dir: str | os.PathLike[str], only: Iterable[str] | None = None) -> list[Path]:
    """``NN_*.ipynb`` files in ``notebooks_dir`` in number order, optionally only the given numbers.

    ``only`` holds two-digit numbers ("00") or full stems ("00_load_and_profile").

    Raises:
        ConfigError: the folder is missing, or ``only`` names a notebook that does not exist.
    """
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise ConfigError(f"notebook folder {folder} does not exist")
    found = sorted(p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if only is None:
        return found
    wanted = [w.strip() for w in only if w.strip()]
    picked = []
    for want in wanted:
        matches = [p for p in found if p.stem == want or p.name[:2] == want.zfill(2)]
        if not matches:
            raise ConfigError(
                f"--only {want}: no notebook {want}_*.ipynb in {folder} "
                f"(have: {', '.join(p.stem for p in found) or 'none'})"
            )
        picked.extend(m for m in matches if m not in picked)
    return sorted(picked)


def notebook_title(nb: Any, fallback: str) -> str:
    """The first Markdown ``# heading`` of a notebook, else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return fallback


_SECRET_NAME = re.compile(r"(api[_-]?key|token|secret|passw(or)?d|credential)", re.I)


def parameters_for(
    notebook: Path, overrides: Mapping[str, Any] | None, declared: Mapping[str, Any]
) -> dict[str, Any]:
    """Parameters to inject into one notebook from a parameters file.

    The file may hold plain ``name: value`` pairs (used by every notebook that declares ``name``;
    ignored by the others) and sections keyed by notebook number or stem (``"00":`` or
    ``00_load_and_profile:``) whose names must be declared by that notebook.

    Raises:
        ConfigError: a section names a parameter the notebook does not declare, or a name looks
            like a secret (papermill writes parameters into the executed notebook; secrets come from
            the environment only).
    """
    chosen: dict[str, Any] = {}
    if not overrides:
        return chosen
    number, stem = notebook.name[:2], notebook.stem
    sections = {k for k in overrides if NOTEBOOK_PATTERN.match(f"{k}.ipynb") or re.fullmatch(r"\d{2}", str(k))}
    for key, value in overrides.items():
        if key in sections:
            continue
        if key in declared:
            chosen[key] = value
    for key in sections:
        if str(key) not in (number, stem):
            continue
        section = overrides[key] or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"parameters file: section {key!r} must map parameter names to values")
        unknown = sorted(set(section) - set(declared))
        if unknown:
            raise ConfigError(
                f"parameters file: {stem} has no parameter(s) {', '.join(map(str, unknown))} "
                f"(it declares: {', '.join(declared) or 'none'})"
            )
        chosen.update(section)
    for key in chosen:
        if _SECRET_NAME.search(str(key)):
            raise ConfigError(
                f"parameter {key!r} looks like a secret; secrets come from the environment "
                "(OPENAI_API_KEY, TOOLQUAL_*), never from parameters"
            )
    return chosen


def data_parameters(paths: Sequence[str | os.PathLike[str]], cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parameters that point every notebook at the user's own data (``toolqual report --data``).

    Each path is made absolute from ``cwd`` (the user's shell, not the project root the notebooks run
    in); globs are kept as patterns. Notebooks that take a single example file (04) then use the same data.

    Raises:
        InputError: a path without glob characters that does not exist.
    """
    from .errors import InputError

    base = Path(cwd) if cwd is not None else Path.cwd()
    resolved: list[str] = []
    for raw in paths:
        path = Path(os.path.expanduser(os.fspath(raw)))
        path = path if path.is_absolute() else base / path
        if not any(ch in os.fspath(raw) for ch in "*?[") and not path.exists():
            raise InputError("no such file or folder (given with --data)", file=os.fspath(raw))
        resolved.append(os.fspath(path))
    return {"data_glob": resolved, "example_data_path": "", "live_data_path": ""}


def load_parameters_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Read a YAML (or JSON) parameters file; None -> {}."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameters file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        import yaml

        data = yaml.safe_load(text)
    except ImportError:  # pyyaml is a dev extra; JSON is valid YAML for the common case
        import json

        data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - yaml's error classes vary
        raise ConfigError(f"parameters file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"parameters file {path} must hold a mapping of parameter names to values")
    return data


def export_html(executed: Any, title: str) -> str:
    """Offline HTML of an executed notebook: outputs only (no code, no prompts), no CDN tags."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = executed
    nb.metadata.pop("widgets", None)  # would pull the widget manager from a CDN
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.template_file = _TEMPLATE_NAME
    body, _resources = exporter.from_notebook_node(nb)
    return body


def summary_of(executed: Any) -> dict[str, Any] | None:
    """The summary a notebook left with ``nb.summary(...)`` (the first one), from its executed copy.

    Returns ``{"question", "lines", "source", "numbers"}`` or None when the notebook has no summary
    (or stopped before it).
    """
    from .notebook import SUMMARY_METADATA_KEY

    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            found = output.get("metadata", {}).get(SUMMARY_METADATA_KEY)
            if isinstance(found, Mapping) and found.get("question"):
                return {
                    "question": str(found.get("question", "")),
                    "lines": [str(line) for line in found.get("lines") or []][:5],
                    "source": str(found.get("source") or ""),
                    "numbers": dict(found.get("numbers") or {}),
                }
    return None


def _error_text(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        evalue = " ".join(str(exc.evalue).split())
        return f"cell {exc.exec_count}: {exc.ename}: {evalue}"[:1000]
    message = " ".join(str(exc).split())
    if type(exc).__name__ == "CellTimeoutError":
        message = message.split(" The message was:")[0] + " (raise --timeout, or make the cell faster)"
    text = f"{type(exc).__name__}: {message}"
    if os.environ.get("TOOLQUAL_DEBUG"):
        text += "\n" + traceback.format_exc()
    return text[:2000]


def render_notebook(
    notebook: Path,
    out_dir: Path,
    root: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    figures_dir: Path | None = None,
) -> NotebookRun:
    """Execute one notebook and export it; never raises for a notebook's own failure.

    A notebook that fails still gets an HTML page (with the error output where it stopped) when the
    partial run can be exported; the run's ``status`` is ``failed`` and ``error`` says why.
    ``figures_dir`` asks the notebook's ``nb.export_figure`` calls to write static figures there.
    """
    import nbformat
    import papermill

    work = out_dir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    executed_path = work / notebook.name
    html_path = out_dir / f"{notebook.stem}.html"
    source_nb = nbformat.read(notebook, as_version=4)
    run = NotebookRun(name=notebook.stem, source=notebook, title=notebook_title(source_nb, notebook.stem))
    started = time.perf_counter()
    from .notebook import FIGURES_ENV

    saved_env = {name: os.environ.get(name) for name in ("TOOLQUAL_ROOT", FIGURES_ENV)}
    os.environ["TOOLQUAL_ROOT"] = str(root)
    if figures_dir is not None:
        os.environ[FIGURES_ENV] = str(figures_dir)
    else:
        os.environ.pop(FIGURES_ENV, None)
    try:
        declared = papermill.inspect_notebook(str(notebook))
        run.parameters = parameters_for(notebook, overrides, declared)
        if executed_path.exists():
            executed_path.unlink()
        papermill.execute_notebook(
            str(notebook),
            str(executed_path),
            parameters=run.parameters,
            kernel_name=KERNEL_NAME,
            cwd=str(root),
            log_output=False,
            progress_bar=False,
            request_save_on_cell_execute=False,
            execution_timeout=None if timeout is None else max(1, math.ceil(timeout)),  # nbclient wants int
            kernel_manager_class=_ipc_kernel_manager_class(),
        )
    except Exception as exc:  # noqa: BLE001 - one failing notebook must not stop the others
        run.status = "failed"
        run.error = _error_text(exc)
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if executed_path.exists():
        run.executed_path = executed_path
        try:
            executed = nbformat.read(executed_path, as_version=4)
            run.summary = summary_of(executed)
            page = export_html(executed, run.title)
            external = external_references(page)
            if external:
                run.status = "failed"
                run.error = (run.error + "; " if run.error else "") + (
                    "report is not self-contained, it references: " + ", ".join(sorted(set(external))[:10])
                )
            else:
                atomic_write_text(html_path, page)
                run.html_path = html_path
        except Exception as exc:  # noqa: BLE001
            run.status = "failed"
            run.error = (run.error + "; " if run.error else "") + "HTML export failed: " + _error_text(exc)
    if run.html_path is None and html_path.exists():
        html_path.unlink()  # never leave a stale page that looks current
    run.seconds = time.perf_counter() - started
    run.rendered_at = _now()
    return run


def _headline_html(run: NotebookRun) -> str:
    """The page's summary (question, lines, source) for the index, escaped; a hint when there is none."""
    found = run.summary
    if not found:
        why = "no summary: the page stopped before it" if run.status != "ok" else "no summary on this page"
        return f'<div class="tq-headline tq-missing">{html.escape(why)}</div>'
    items = "".join(f"<li>{html.escape(line)}</li>" for line in found.get("lines", []))
    source = found.get("source") or ""
    return (f'<div class="tq-headline"><div class="q">{html.escape(found.get("question", ""))}</div>'
            f"<ul>{items}</ul>"
            + (f'<div class="src">{html.escape(source)}</div>' if source else "") + "</div>")


def index_html(runs: Sequence[NotebookRun], out_dir: Path, generated_at: str | None = None) -> str:
    """The ``index.html`` page: one row per notebook with its question and headline numbers beside the link.

    The headline is what the page's ``nb.summary(...)`` displayed at its top (read from the executed
    notebook by :func:`summary_of`); status, run time and any error sit in a narrow column beside it.
    """
    generated_at = generated_at or _now()
    n_failed = sum(r.status != "ok" for r in runs)
    rows = []
    for run in runs:
        if run.html_path is not None:
            link = os.path.relpath(run.html_path, out_dir).replace(os.sep, "/")
            title = f'<a href="{html.escape(link, quote=True)}">{html.escape(run.title)}</a>'
        else:
            title = html.escape(run.title)
        status_cls = "ok" if run.status == "ok" else "failed"
        when = html.escape(run.rendered_at) + ("" if run.current else " (earlier run)")
        error = f'<div class="err">{html.escape(run.error)}</div>' if run.error else ""
        rows.append(
            "<tr>"
            f'<td class="report"><div class="title">{title}</div>{_headline_html(run)}{error}</td>'
            f'<td class="meta"><span class="{status_cls}">{html.escape(run.status)}</span> · '
            f'{run.seconds:,.1f} s<div class="when">{when}</div><div class="file">{html.escape(run.source.name)}</div></td>'
            "</tr>"
        )
    status_line = (
        f"{len(runs)} report{'s' if len(runs) != 1 else ''}, "
        + (f"{n_failed} failed" if n_failed else "all rendered")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>toolqual reports</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1f2933; }}
h1 {{ margin-bottom: 0.2em; }}
p.lead {{ color: #4b5563; margin-top: 0; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
th {{ text-align: left; background: #f2f4f7; border-bottom: 2px solid #c9ced6; padding: 6px 8px; }}
td {{ border-bottom: 1px solid #e4e7eb; padding: 10px 8px; vertical-align: top; }}
td.report .title {{ font-size: 16px; font-weight: 600; margin-bottom: 4px; }}
td.meta {{ width: 12em; color: #4b5563; font-size: 13px; white-space: nowrap; }}
.tq-headline .q {{ font-weight: 600; color: #1e3a8a; }}
.tq-headline ul {{ margin: 2px 0 2px 0; padding-left: 1.2em; }}
.tq-headline li {{ margin: 1px 0; line-height: 1.4; }}
.tq-headline .src {{ color: #5f6b7a; font-size: 12px; }}
.tq-headline.tq-missing {{ color: #8a94a3; font-style: italic; }}
.ok {{ color: #0f7b3f; font-weight: 600; }}
.failed {{ color: #b42318; font-weight: 600; }}
.when, .file {{ color: #5f6b7a; font-size: 12px; }}
.err {{ font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-word; color: #b42318; margin-top: 4px; }}
</style></head>
<body>
<h1>toolqual reports</h1>
<p class="lead">{html.escape(status_line)} · generated {html.escape(generated_at)} · regenerate with <code>toolqual report</code></p>
<table>
<thead><tr><th>report: the question it answers, and its answer</th><th>status · seconds</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""


def render_reports(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "reports",
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    only: Iterable[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    progress: Any = None,
    figures_dir: str | os.PathLike[str] | None = None,
) -> list[NotebookRun]:
    """Render every notebook (or ``only`` those) and write the index. Relative paths are from ``root``.

    Args:
        root: the project root (kernel working directory, ``TOOLQUAL_ROOT``).
        out_dir: where ``NN_name.html``, ``index.html`` and ``_work/`` go.
        notebooks_dir: where ``NN_*.ipynb`` live.
        only: notebook numbers or stems to render (default: all).
        parameters: a parsed parameters file (see :func:`parameters_for`).
        timeout: seconds per cell (papermill's execution timeout); None = no limit.
        progress: optional callable taking a message string (the CLI prints them).
        figures_dir: also write the static figures (PDF + PNG, :mod:`toolqual_utils.figures`) that the
            notebooks export with ``nb.export_figure``, into this folder (relative to ``root``).

    Returns:
        One :class:`NotebookRun` per notebook, in order. The index is written even when some failed.
    """
    root = Path(root).resolve()
    out = Path(out_dir)
    out = (root / out if not out.is_absolute() else out).resolve()
    nb_dir = Path(notebooks_dir)
    nb_dir = root / nb_dir if not nb_dir.is_absolute() else nb_dir
    notebooks = discover_notebooks(nb_dir, only)
    if not notebooks:
        raise ConfigError(f"no notebooks named NN_*.ipynb in {nb_dir}")
    if out.resolve() == nb_dir.resolve():
        raise ConfigError("--out must not be the notebook folder (executed copies never go into notebooks/)")
    out.mkdir(parents=True, exist_ok=True)
    figures = None
    if figures_dir is not None:
        figures = Path(figures_dir)
        figures = (root / figures if not figures.is_absolute() else figures).resolve()
        figures.mkdir(parents=True, exist_ok=True)
    runs = []
    for notebook in notebooks:
        if progress:
            progress(f"rendering {notebook.name} ...")
        run = render_notebook(notebook, out, root, overrides=parameters, timeout=timeout, figures_dir=figures)
        runs.append(run)
        if progress:
            where = run.html_path.relative_to(out) if run.html_path else "no page"
            progress(f"  {run.status} in {run.seconds:.1f} s -> {where}" + (f"\n  error: {run.error}" if run.error else ""))
    listed = _merge_with_earlier(runs, out, discover_notebooks(nb_dir))
    atomic_write_text(out / "index.html", index_html(listed, out))
    return runs
