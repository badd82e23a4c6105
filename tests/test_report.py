"""The render path: `toolqual report` -> offline, self-contained HTML; notebook display helpers."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from toolqual_utils import notebook as nb
from toolqual_utils.errors import ConfigError
from toolqual_utils.report import discover_notebooks, export_html, external_references, parameters_for
from conftest import ROOT

TOOLQUAL = Path(sys.executable).with_name("toolqual")
XSS = "<script>alert(1)</script>"
PLOTLY_BANNER = re.compile(r"plotly\.js v\d+\.\d+\.\d+")


def _toolqual(*args: str, cwd: Path = ROOT, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TOOLQUAL_ROOT"}
    return subprocess.run([str(TOOLQUAL), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


class _Resources(HTMLParser):
    """Collects resource URLs (script src, link href, img src, iframe src) and anchor hrefs."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[str] = []
        self.anchors: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "data"):
            value = attrs.get(name)
            if value is None:
                continue
            if tag == "a":
                self.anchors.append(value)
            else:
                self.resources.append(value)


def _resources(page: str) -> _Resources:
    parser = _Resources()
    parser.feed(page)
    return parser


def _is_local(url: str) -> bool:
    return url.startswith(("data:", "#")) or not re.match(r"^([a-zA-Z][\w+.\-]*:|//)", url)


# --- fast unit tests: no kernel ------------------------------------------------------------------


def test_external_references_finds_resource_loads_only():
    page = """<html><head>
    <script src="https://cdn.example.org/require.js"></script>
    <link rel="stylesheet" href="http://fonts.example.org/a.css">
    <script src="//cdn.example.org/x.js"></script>
    <script src="local.js"></script><img src="data:image/png;base64,AAAA">
    <style>.a{background:url('https://x.example.org/i.png')} .b{background:url(data:image/png;base64,AA)}</style>
    </head><body><a href="https://arxiv.org/abs/2409.16341">paper</a><a href="01_x.html">next</a></body></html>"""
    found = external_references(page)
    assert "<script src=https://cdn.example.org/require.js>" in found
    assert "<link href=http://fonts.example.org/a.css>" in found
    assert "<script src=//cdn.example.org/x.js>" in found
    assert any("style" in item for item in found)
    assert not any("local.js" in item or "data:" in item or "arxiv" in item for item in found)
    assert external_references("<html><body><script>var a=1;</script></body></html>") == []


def test_export_html_drops_cdn_tags_and_code():
    """nbconvert's lab template adds require.js / MathJax / widget-manager CDN tags; ours does not."""
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# Title\n\nSome math $x^2$ and text."),
            new_code_cell(
                "secret_code_marker = 1\nprint('hi')",
                outputs=[new_output("display_data", data={"text/html": "<b>shown output</b>", "text/plain": "x"})],
                execution_count=1,
            ),
        ]
    )
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    page = export_html(notebook, "Title")
    assert external_references(page) == []
    assert not [u for u in _resources(page).resources if not _is_local(u)]
    assert "<b>shown output</b>" in page
    assert "secret_code_marker" not in page
    assert "require.min.js" not in page and "cdnjs" not in page and "unpkg" not in page
    assert "MathJax.Hub" not in page and "mathjax/2" not in page.lower()


def test_parameters_for_sections_globals_and_secrets(tmp_path):
    notebook = tmp_path / "00_load_and_profile.ipynb"
    declared = {"data_glob": {}, "max_examples": {}}
    overrides = {"max_examples": 2, "unrelated": 1, "00": {"data_glob": "x/*.jsonl"}, "01": {"other": 3}}
    assert parameters_for(notebook, overrides, declared) == {"max_examples": 2, "data_glob": "x/*.jsonl"}
    assert parameters_for(notebook, None, declared) == {}
    with pytest.raises(ConfigError, match="no parameter"):
        parameters_for(notebook, {"00_load_and_profile": {"nope": 1}}, declared)
    with pytest.raises(ConfigError, match="secret"):
        parameters_for(notebook, {"api_key": "sk-x"}, {"api_key": {}})


def test_discover_notebooks_order_and_only(tmp_path):
    for name in ("01_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in discover_notebooks(tmp_path)] == ["00_a.ipynb", "01_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in discover_notebooks(tmp_path, ["10", "0"])] == ["00_a.ipynb", "10_c.ipynb"]
    with pytest.raises(ConfigError, match="--only 07"):
        discover_notebooks(tmp_path, ["07"])


def test_only_unknown_notebook_exits_2_with_message(tmp_path):
    result = _toolqual("report", "--only", "97", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "--only 97" in result.stderr and "Traceback" not in result.stderr


def test_table_html_escapes_everything():
    frame = pd.DataFrame({"<th>": [XSS, "plain"], "n": [1, 2], "obj": [{"k": "<i>"}, None]})
    page = nb.table_html(frame, caption="<b>cap</b>")
    assert XSS not in page
    assert re.search(r"<th[^>]*>&lt;th&gt;</th>", page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;cap&lt;/b&gt;" in page
    assert "&lt;i&gt;" in page
    assert 'class="tq-num"' in page


def test_table_html_max_rows_and_truncation():
    frame = pd.DataFrame({"text": ["x" * 1000] * 120})
    page = nb.table_html(frame, max_rows=10, max_chars=50)
    assert page.count("<tr>") == 11  # header + 10
    assert "showing 10 of 120 rows" in page
    assert "x" * 51 not in page


def test_table_html_formats_numbers_collapses_long_tables_and_shows_unscored():
    frame = pd.DataFrame({"n_instances": [1680, 3], "share_kept": [0.003077, 0.5], "ci_low": [1.735e-18, float("nan")],
                          "label": ["unscored", "error"], "note": [None, ""]})
    page = nb.table_html(frame, caption="Kept", percent=["ci_low"])
    assert "1,680" in page and "0.3%" in page and "50%" in page and "e-18" not in page
    assert re.search(r'<td class="tq-num">0%</td>', page)                     # 1.735e-18 as a share
    assert ">nan<" not in page.lower() and "<td></td>" not in page             # missing and empty are a dash
    assert '<td class="tq-unscored">unscored</td>' in page and '<td class="tq-error">error</td>' in page
    assert ">n_<wbr>instances</th>" in page                                    # long names may wrap
    judged = nb.table_html(pd.DataFrame({"model judge (j · judge_combined.v1)": [1]}))
    assert ">model judge (j · judge_combined.v1)</th>" in judged                 # other headers as written
    long = nb.table_html(pd.DataFrame({"x": range(40)}), caption="<Long>")
    assert long.count("<details") == 1 and "&lt;Long&gt;" in long and "(40 rows)" in long
    assert nb.table_html(pd.DataFrame({"x": range(40)}), collapsed=False).count("<details") == 0


def test_details_cells_are_escaped_and_collapsed():
    from toolqual_utils.formatting import Details

    page = nb.table_html(pd.DataFrame({"evidence": [Details("call 0 <b>", XSS, label="JSON")]}))
    assert XSS not in page and "&lt;script&gt;" in page and "call 0 &lt;b&gt;" in page
    assert "<details class=\"tq-more\"><summary>JSON</summary>" in page


def test_summary_block_carries_its_numbers_in_the_output_metadata():
    from toolqual_utils.headlines import Summary
    from toolqual_utils.report import summary_of

    markup = nb.summary_html("Q <x>?", ["1,680 <b>instances</b>"], "Data: d")
    assert 'class="tq-summary"' in markup and "&lt;b&gt;instances&lt;/b&gt;" in markup and "<b>instances" not in markup
    record = Summary("What?", ["a", "b", "c"], "Data: x", {"n": 3, "rate": None}).to_record()
    executed = new_notebook(cells=[new_code_cell("x", outputs=[
        new_output("display_data", data={"text/html": "<p>x</p>"}, metadata={}),
        new_output("display_data", data={"text/html": markup}, metadata={nb.SUMMARY_METADATA_KEY: record})])])
    assert summary_of(executed) == {"question": "What?", "lines": ["a", "b", "c"], "source": "Data: x",
                                    "numbers": {"n": 3, "rate": None}}
    assert summary_of(new_notebook(cells=[new_code_cell("x")])) is None


def test_index_puts_each_pages_headline_beside_its_link(tmp_path):
    from toolqual_utils.report import NotebookRun, index_html

    page = tmp_path / "02_x.html"
    page.write_text("x", encoding="utf-8")
    runs = [NotebookRun(name="02_x", source=Path("02_x.ipynb"), title="02 · X", html_path=page, seconds=8.5,
                        summary={"question": "How many <errors>?", "lines": ["31% (29–34)", "bound 5.6–93.0%"],
                                 "source": "Data: bundled", "numbers": {}}),
            NotebookRun(name="03_y", source=Path("03_y.ipynb"), title="03 · Y", status="failed", error="cell 2: boom")]
    index = index_html(runs, tmp_path)
    assert 'href="02_x.html"' in index and "How many &lt;errors&gt;?" in index and "<li>31% (29–34)</li>" in index
    assert index.count('class="tq-headline"') == 1 and "no summary: the page stopped before it" in index
    assert "cell 2: boom" in index and external_references(index) == []


def test_notebook_parameters_come_from_the_parameters_cell_and_papermills_injected_cell():
    history = ["", "# Parameters (papermill overrides these)\ndata_glob = 'data/*.jsonl'  # any\nk = 50\n",
               "# Parameters\ndata_glob = ['/home/me/x.jsonl']\n", "import os\nx = os.getcwd()\n",
               "%matplotlib inline\n", "root = nb.setup()"]
    namespace = {"data_glob": ["/home/me/x.jsonl"], "k": 50, "x": "/tmp"}
    parameters, injected = nb.notebook_parameters(history, namespace)
    assert parameters == {"data_glob": ["/home/me/x.jsonl"], "k": 50}
    assert injected == {"data_glob"}


def test_provenance_lists_the_parameters_setup_read(monkeypatch):
    monkeypatch.setitem(nb._STATE, "root", ROOT)
    monkeypatch.setitem(nb._STATE, "parameters", {"data_glob": "mine/*.jsonl", "api_token": "t0ps3cret"})
    monkeypatch.setitem(nb._STATE, "injected", {"data_glob"})
    record = nb.provenance_record(n_instances=3)
    assert record["parameters"] == {"data_glob": "mine/*.jsonl", "api_token": nb.MASK}
    assert record["injected_parameters"] == ["data_glob"] and record["n_instances"] == 3
    assert "t0ps3cret" not in json.dumps(record)


def test_figure_html_inlines_plotly_once(monkeypatch):
    import plotly.graph_objects as go

    monkeypatch.setitem(nb._STATE, "plotlyjs_emitted", False)
    fig = go.Figure(go.Bar(x=[1], y=[2]))
    first, second = nb.figure_html(fig), nb.figure_html(fig)
    assert len(PLOTLY_BANNER.findall(first)) == 1
    assert not PLOTLY_BANNER.search(second)
    for markup in (first, second):
        assert external_references(markup) == []  # no CDN plotly.js, no MathJax <script src>


def test_mask_secrets(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "value-of-the-token-123")
    masked = nb.mask_secrets(
        {
            "api_key": "abc",
            "api_key_env": "OPENAI_API_KEY",
            "model": "gpt-4o",
            "nested": {"password": "p", "url": "sk-abcdefghijklmnop"},
            "copy": "value-of-the-token-123",
            "items": ["Bearer xyz", 3],
        }
    )
    assert masked["api_key"] == nb.MASK
    assert masked["api_key_env"] == "OPENAI_API_KEY"  # the NAME of a variable is not a secret
    assert masked["model"] == "gpt-4o"
    assert masked["nested"] == {"password": nb.MASK, "url": nb.MASK}
    assert masked["copy"] == nb.MASK
    assert masked["items"] == [nb.MASK, 3]


def test_provenance_record_has_revision_versions_and_masks(monkeypatch):
    monkeypatch.setenv("TOOLQUAL_ROOT", str(ROOT))
    monkeypatch.setitem(nb._STATE, "root", ROOT)
    record = nb.provenance_record({"data_glob": "data/*.jsonl", "token": "t0ps3cret"}, judge_model="m", cache_hits=3)
    assert record["parameters"] == {"data_glob": "data/*.jsonl", "token": nb.MASK}
    assert record["judge_model"] == "m" and record["cache_hits"] == 3
    assert re.match(r"^[0-9a-f]{7,}", record["git_revision"])
    assert record["packages"]["pandas"] == pd.__version__
    assert "t0ps3cret" not in json.dumps(record)


def test_project_root_from_env_and_from_subfolder(monkeypatch, tmp_path):
    monkeypatch.delenv("TOOLQUAL_ROOT", raising=False)
    assert nb.project_root(ROOT / "notebooks") == ROOT
    monkeypatch.setenv("TOOLQUAL_ROOT", str(tmp_path))
    assert nb.project_root() == tmp_path.resolve()


def test_data_files_skips_rejects_and_accepts_absolute(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "a.rejects.jsonl").write_text("")
    assert [p.name for p in nb.data_files("*.jsonl", root=tmp_path)] == ["a.jsonl"]
    assert [p.name for p in nb.data_files(str(tmp_path / "*.jsonl"), root=ROOT)] == ["a.jsonl"]
    assert nb.data_files("nothing/*.jsonl", root=tmp_path) == []


# --- slow: real kernels --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_render(rendered_reports):
    """Every notebook rendered on the repository with its defaults (the session's one render)."""
    return rendered_reports.out, rendered_reports.result


@pytest.mark.slow
def test_report_renders_notebook_00_self_contained(repo_render):
    out, result = repo_render
    assert result.returncode == 0, result.stderr
    assert "KeyboardInterrupt" not in result.stderr and "ERROR" not in result.stderr
    page_path = out / "00_load_and_profile.html"
    assert page_path.is_file()
    page = page_path.read_text(encoding="utf-8")
    external = [u for u in _resources(page).resources if not _is_local(u)]
    assert external == [], external
    assert external_references(page) == []
    assert len(PLOTLY_BANNER.findall(page)) == 1, "plotly.js must be inlined exactly once"
    assert page.count("Plotly.newPlot(") >= 6
    # no input code: neither the source nor code-cell input areas
    assert "nb.setup()" not in page and "profile.profile_frames" not in page
    assert "jp-InputPrompt" not in page.split("</style>")[-1]
    assert not re.search(r'class="jp-Cell jp-CodeCell[^"]*"[^>]*>\s*<div class="jp-Cell-inputWrapper', page)
    assert "Provenance" in page
    # executed copy goes to _work, never into notebooks/
    assert (out / "_work" / "00_load_and_profile.ipynb").is_file()
    source = nbformat.read(ROOT / "notebooks" / "00_load_and_profile.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in source.cells if c.cell_type == "code")


@pytest.mark.slow
def test_index_links_the_report(repo_render):
    out, _ = repo_render
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "00_load_and_profile.html" in _resources(index).anchors
    assert external_references(index) == []
    assert ">ok<" in index


@pytest.mark.slow
def test_dataset_text_is_escaped(tmp_path):
    record = {
        "id": "evil/x/1", "source": "evil", "instruction": f"Say hi {XSS} please",
        "tools": [{"name": "greet", "description": "<img src=x onerror=alert(2)>",
                   "parameters": {"type": "object", "properties": {"who": {"type": "string"}}, "required": []}}],
        "calls": [{"name": "greet", "arguments": {"who": XSS}, "raw_arguments": None, "observation": None}],
        "final_answer": "<b>bold</b>", "meta": {"pseudo_calls": [{"name": "Finish", "raw_arguments": XSS}]},
    }
    data = tmp_path / "evil.jsonl"
    data.write_text(json.dumps(record) + "\n", encoding="utf-8")
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"00": {"data_glob": str(tmp_path / "*.jsonl")}}), encoding="utf-8")
    out = tmp_path / "out"
    result = _toolqual("report", "--only", "00", "--out", str(out), "--parameters-file", str(params))
    assert result.returncode == 0, result.stderr
    page = (out / "00_load_and_profile.html").read_text(encoding="utf-8")
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page


@pytest.mark.slow
def test_failed_notebook_is_listed_and_others_still_render(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    ok = new_notebook(cells=[
        new_markdown_cell("# Fine report"),
        new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("from toolqual_utils import notebook as nb\nroot = nb.setup()\nnb.note('all good')"),
    ])
    broken = new_notebook(cells=[
        new_markdown_cell("# Broken report"),
        new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("raise ValueError('deliberate failure for the test')"),
    ])
    for notebook in (ok, broken):
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(broken, notebooks / "00_broken.ipynb")
    nbformat.write(ok, notebooks / "01_fine.ipynb")
    out = tmp_path / "out"
    result = _toolqual("report", "--out", str(out), "--notebooks", str(notebooks))
    assert result.returncode == 1
    assert "deliberate failure for the test" in result.stderr
    assert (out / "01_fine.html").is_file() and "all good" in (out / "01_fine.html").read_text()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Broken report" in index and "failed" in index
    assert "ValueError: deliberate failure for the test" in index
    assert "01_fine.html" in _resources(index).anchors
    assert not list(notebooks.glob("*.html")) and sorted(p.name for p in notebooks.iterdir()) == [
        "00_broken.ipynb", "01_fine.ipynb"
    ]
    # --only re-renders one notebook; the index keeps listing the other from the earlier run
    again = _toolqual("report", "--out", str(out), "--notebooks", str(notebooks), "--only", "01")
    assert again.returncode == 0, again.stderr
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Broken report" in index and "(earlier run)" in index and "deliberate failure" in index


def test_rejects_files_finds_existing_siblings(tmp_path):
    for name in ("a.jsonl", "a.rejects.jsonl", "b.jsonl"):
        (tmp_path / name).write_text("")
    assert nb.rejects_files([tmp_path / "a.jsonl", tmp_path / "b.jsonl"]) == [tmp_path / "a.rejects.jsonl"]


# --- reports on the user's own data --------------------------------------------------------------


def _openai_chat_file(path: Path, n: int) -> Path:
    """``n`` bundled instances written as an OpenAI chat fine-tuning file (what users bring)."""
    from toolqual_utils.export import to_openai_record
    from toolqual_utils.io import read_instances

    instances = [i for i in read_instances(ROOT / "data" / "toolalpaca_eval.jsonl") if i.calls][:n]
    path.write_text("".join(json.dumps(to_openai_record(i)) + "\n" for i in instances), encoding="utf-8")
    return path


def test_load_data_reads_any_supported_format_and_says_whose_data(tmp_path):
    mine = _openai_chat_file(tmp_path / "mine.jsonl", 7)
    data = nb.load_data(str(mine), root=ROOT)
    assert len(data.instances) == 7 and data.files == [mine]
    assert data.summary["format"].tolist() == ["openai"]
    assert not data.is_bundled and data.description.startswith("your data: 7 instances from 1 file")
    bundled = nb.load_data("data/*.jsonl", root=ROOT)
    assert bundled.is_bundled and bundled.description.startswith("the bundled sample data")
    assert sum(len(v) for v in bundled.by_file.values()) == len(bundled.instances) > 1000
    # a folder and a list work too, each file once
    both = nb.load_data([str(tmp_path), str(mine)], root=ROOT)
    assert len(both.instances) == 7


def test_load_data_refuses_nothing_to_analyse(tmp_path):
    with pytest.raises(ConfigError, match="no file matches 'nothing/\\*.jsonl'"):
        nb.load_data("nothing/*.jsonl", root=tmp_path)
    unusable = tmp_path / "chat.jsonl"  # OpenAI chat records, none with a tool call or a user turn
    unusable.write_text(json.dumps({"messages": [{"role": "system", "content": "hi"}]}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        nb.load_data(str(unusable), root=tmp_path)
    message = str(caught.value)
    assert "hold no instance" in message and "chat.jsonl" in message and "1 rejected" in message
    assert "toolqual load" in message


def test_data_parameters_resolve_from_the_working_directory(tmp_path):
    from toolqual_utils.errors import InputError
    from toolqual_utils.report import data_parameters

    (tmp_path / "x.jsonl").write_text("")
    params = data_parameters(["x.jsonl", "more/*.jsonl"], cwd=tmp_path)
    assert params["data_glob"] == [str(tmp_path / "x.jsonl"), str(tmp_path / "more" / "*.jsonl")]
    assert params["example_data_path"] == "" and params["live_data_path"] == ""
    with pytest.raises(InputError, match="missing.jsonl"):
        data_parameters(["missing.jsonl"], cwd=tmp_path)


@pytest.mark.slow
def test_report_on_own_openai_chat_file_from_any_folder(tmp_path):
    mine = _openai_chat_file(tmp_path / "mine.jsonl", 12)
    result = _toolqual("report", "--data", "mine.jsonl", "--only", "00,02", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "00_load_and_profile.html").read_text(encoding="utf-8")
    assert "your data: 12 instances from 1 file" in page and str(mine) in page
    assert "toolalpaca_eval" not in page  # the bundled data is not what was profiled
    rates = (tmp_path / "out" / "02_error_rate_tables.html").read_text(encoding="utf-8")
    assert "Data: your data: 12 instances" in rates


@pytest.mark.slow
def test_report_with_no_instances_fails_naming_the_files(tmp_path):
    result = _toolqual("report", "--data", "empty/*.jsonl", "--only", "00", "--out", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "no file matches" in result.stderr and "empty/*.jsonl" in result.stderr
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "failed" in index and "no file matches" in index


def test_report_kernels_are_not_interrupted_on_shutdown():
    """A finished notebook's kernel gets a shutdown request, not SIGINT first (which made a good render
    print "KeyboardInterrupt caught in kernel"); interrupts outside shutdown still go through."""
    import asyncio

    from toolqual_utils.report import _ipc_kernel_manager_class

    manager = _ipc_kernel_manager_class()()
    with pytest.raises(RuntimeError, match="No kernel is running"):
        asyncio.run(manager._async_interrupt_kernel())  # not shutting down: the normal path
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())  # shutting down: skipped, nothing raised
