"""`toolqual report --figures DIR`: static PDF/PNG figures for papers, and notebook 04 with ICE results."""
from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from toolqual_utils.io import read_instances
from toolqual_utils.report import external_references
from conftest import DATA, ROOT

TOOLQUAL = Path(sys.executable).with_name("toolqual")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_figures_for_papers_and_the_ice_page_with_results(tmp_path):
    ids = [i.id for path in sorted(DATA.glob("*.jsonl")) if not path.name.endswith(".rejects.jsonl")
           for i in read_instances(path) if i.calls is not None][:200]
    results = tmp_path / "ice.csv"
    # a results table as `toolqual ice --out` writes it (two modes, one unscored instance)
    rows = [f'"{i}",{(0.15 if k % 2 else 0.75) + (k % 7) / 50:.3f},0.5,14,14,0,0,{"ok" if k else "unscored:api_error"},'
            f'{i.split("/")[0]}' for k, i in enumerate(ids)]
    results.write_text("instance_id,ice_score,strict_score,n_queries,n_scored,n_parse_errors,n_unscored,status,source\n"
                       + "\n".join(rows) + "\n", encoding="utf-8")
    params = tmp_path / "params.yaml"
    params.write_text(f'"04": {{ice_results_path: "{results}", k: 20}}\nexport_dir: "{tmp_path / "exports"}"\n')
    figures, out = tmp_path / "figures", tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if k not in ("TOOLQUAL_ROOT", "TOOLQUAL_ICE_MODEL")}
    done = subprocess.run([str(TOOLQUAL), "report", "--only", "04,06", "--parameters-file", str(params), "--out",
                           str(out), "--figures", str(figures), "--timeout", "240"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = sorted(p.name for p in figures.iterdir())
    assert written == sorted(f"{name}.{ext}" for name in ("04_ice_distributions", "06_table6_forest_paper")
                             for ext in ("pdf", "png"))
    assert "2 static figure(s) (PDF + PNG)" in done.stdout and "04_ice_distributions.pdf" in done.stdout
    for path in figures.iterdir():
        assert path.stat().st_size > 5_000
    page = (out / "04_ice_scores.html").read_text(encoding="utf-8")
    executed = nbformat.read(out / "_work" / "04_ice_scores.ipynb", as_version=4)
    assert not [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert external_references(page) == []
    text = html.unescape(page)
    assert f"ICE scores of {len(ids) - 1} instances (results file {results}): median" in text
    assert "With K = 20: high-ICE subset scores ≥" in text and "Per source: spread and bimodality" in text
    assert "No ICE results" not in text
    # the index carries the same headline beside the link
    index = html.unescape((out / "index.html").read_text(encoding="utf-8"))
    assert f"ICE scores of {len(ids) - 1} instances" in index
