"""Notebook 06 renders Table 6 from three outcome files (written here by hand, as `toolqual evaluate` writes
them; no model ran), with the right intervals, paired tests and noise verdicts, beside the paper's table."""
from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from test_extrinsic_runs import mcnemar_exact, outcome_file, wald, wilson
from toolqual_utils.report import external_references
from conftest import ROOT

TOOLQUAL = Path(sys.executable).with_name("toolqual")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebook06_shows_table6_from_three_runs(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    files = [outcome_file(runs, "random", 16, unscored={39}), outcome_file(runs, "high_instruction_seq", 28),
             outcome_file(runs, "original", 20, unscored={38})]
    params = tmp_path / "table6.yaml"
    params.write_text(json.dumps({"outcomes_path": [str(f) for f in files], "export_dir": str(tmp_path / "exports")}))
    out = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if k != "TOOLQUAL_ROOT"}
    done = subprocess.run([str(TOOLQUAL), "report", "--only", "06", "--parameters-file", str(params), "--out", str(out),
                           "--timeout", "240"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (out / "06_selection_and_extrinsic.html").read_text(encoding="utf-8")
    executed = nbformat.read(out / "_work" / "06_selection_and_extrinsic.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == [] and external_references(page) == []
    text = html.unescape(page)
    assert "Your runs: pass rate with Wald and Wilson 95% intervals" in text
    for k, n in ((16, 39), (28, 40), (20, 39)):
        assert "{:.3f}–{:.3f}".format(*wald(k, n)) in text, (k, n)
        assert "{:.3f}–{:.3f}".format(*wilson(k, n)) in text, (k, n)
    # the paired comparisons: hiseq vs random beyond the noise, original vs random inside it
    assert f"high_instruction_seq vs random (all): +{28 / 39 - 16 / 39:.3f}" not in text  # benchmark is named
    assert f"high_instruction_seq vs random (bfcl): +{28 / 39 - 16 / 39:.3f}" in text
    assert f"p = {mcnemar_exact(12, 0):.3g}" in text and "beyond the noise" in text
    assert f"original vs random (bfcl): +{20 / 38 - 16 / 38:.3f}" in text and "inside the noise" in text
    # the paper's table is still there, and the forest plot holds both (one panel per benchmark)
    assert "Paper, Table 6" in text and "Your runs beside the paper's Table 6" in text
    # the page's summary (and so the index) answers from the user's runs, not the paper's
    assert "Your runs: high instruction + seq vs random — bfcl 72% vs 41% (+30.8 pts, p < 0.001)" in text
    assert "Extrinsic numbers: your outcome files." in text
    assert "ToolAlpaca" in text and "ToolBench" in text
