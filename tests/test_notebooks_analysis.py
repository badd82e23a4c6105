"""Notebooks 01–06 render headless with their defaults on the bundled data.

The session's one `toolqual report` run into a temporary folder (the one render path, see
conftest.rendered_reports), then the pages are checked for their key content, for escaped dataset
text and for being self-contained.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from toolqual_utils.report import external_references
from conftest import ROOT

TOOLQUAL = Path(sys.executable).with_name("toolqual")
NOTEBOOKS = ("01_criterion_scoring", "02_error_rate_tables", "03_judge_validation", "04_ice_scores",
             "05_filter_explorer", "06_selection_and_extrinsic")


@pytest.fixture(scope="module")
def rendered(rendered_reports):
    """The session's one render of every notebook (conftest.rendered_reports), checked as a whole first."""
    result = rendered_reports.result
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # kernels are reached over Unix sockets: no TCP port, and no ipykernel warning per notebook
    assert "running over TCP" not in result.stderr, result.stderr[-2000:]
    # nothing left behind in the system temp folder
    assert rendered_reports.temp_left == []
    out = rendered_reports.out
    return {name: rendered_reports.page(name) for name in NOTEBOOKS} | {"_out": out}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pages_are_self_contained_and_error_free(rendered, name):
    page = rendered[name]
    assert external_references(page) == []
    assert "Traceback" not in page
    executed = nbformat.read(rendered["_out"] / "_work" / f"{name}.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert "Provenance" in page and "git_revision" in page


def test_committed_notebooks_are_thin_and_clean():
    for name in NOTEBOOKS:
        notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), name
        source = "\n".join(c.source for c in code)
        assert "\ndef " not in "\n" + source and "\nclass " not in "\n" + source, name


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_error_rate_page(rendered):
    page = rendered["02_error_rate_tables"]
    for text in ("Error rate per source and criterion", "1,091 scored, 589 unscored", "instruction correctness",
                 "overall correctness (any error)", "lower–upper bound", "Paper, Table 5", "paper: ToolBench",
                 "seal_tools", "stabletoolbench", "Data: the bundled sample data: 1,680 instances from 6 files",
                 # where the offline judge decided too few instances: a bound, never a rate of 100%
                 "bound 2.4–100%\n40 of 1,680 decided",
                 # the bundled real model run beside the offline judge on the same instances, and the paper
                 "Model judge, on the instances it judged", "strong-judge · judge_combined.v1",
                 "130 judged instances: model judge vs offline judge on the same instances",
                 "ChatGPT judge, full training sets"):
        assert text in page, text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ice_page_shows_the_bundled_probe_apart_from_the_distributions(rendered):
    page = rendered["04_ice_scores"]
    for text in ("A real target model on three instances (bundled probe)", "Recorded answers, not a run of this page",
                 "3 instance(s) scored by one real target model (target-model)", "ICE per instance, target target-model",
                 "No ICE results to plot"):                            # the probe is not passed off as the page's results
        assert text in page, text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_criterion_scoring_page_shows_the_bundled_model_run_labelled(rendered):
    page = rendered["01_criterion_scoring"]
    for text in ("Bundled real-model verdicts (one model's recorded answers, not labels)",
                 "130 of the 1,680 instances of this report", "on the 130 instances the model judged",
                 "model judge (strong-judge · judge_combined.v1)", "paper: ToolAlpaca", "Errors with the judge",
                 # one real model's verdicts, labelled as such in the page's summary too
                 "bundled real-model run: one model's recorded verdicts; not labels"):
        assert text in page, text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_judge_validation_page(rendered):
    page = rendered["03_judge_validation"]
    for text in ("vs adjudicated labels", "Paper, Table 4", "Agreement cells", "Agreement: annotator_a vs annotator_b",
                 "toolalpaca/eval_simulated/Apache Superset#6", "in-sample", "kappa", "pabak",
                 # the bundled real model run, labelled as such, on both development splits
                 "165 annotated instances", "strong-judge · judge_combined.v1", "one real model's answers",
                 # per source dataset, as the paper reports them, and F1 per prompt version and split
                 "F1 per source and criterion", "seal_tools", "toolalpaca-train-format",
                 "per judge and development split", "reference_dev2",
                 # the disagreements with both reasons side by side
                 "disagreements with the annotators", "annotators' note",
                 # precision/recall against confidence, and why the bundled run shows one row per threshold
                 "Precision and recall against confidence", "rests on one answer (confidence 1.0, n_votes 1)"):
        assert text in page, text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_filter_explorer_page(rendered):
    page = rendered["05_filter_explorer"]
    for text in ("Instances kept per source", "Kept instances", "identical ids", "Error rates among the kept instances",
                 "annotator widget is off"):
        assert text in page, text
    # dataset text is escaped: a BFCL instruction starting with "<<question>>" is among the kept rows
    assert "&lt;&lt;question&gt;&gt;" in page
    assert "<<question>>" not in page
    assert "VBox(children" not in page


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_selection_and_extrinsic_page(rendered):
    page = rendered["06_selection_and_extrinsic"]
    for text in ("Recipes available on these inputs", "needs ICE scores", "Unavailable here: low_ice, high_ice, "
                 "high_instruction_seq_ice", "high instruction + seq", "Manifest of the export",
                 "Paper, Table 6", "paper (Table 6)", "two-proportion z"):
        assert text in page, text
    executed = nbformat.read(rendered["_out"] / "_work" / "06_selection_and_extrinsic.ipynb", as_version=4)
    written = [o for c in executed.cells for o in c.get("outputs", []) if "Wrote" in json.dumps(o.get("data", {}))]
    assert written, "the export example wrote nothing"
    note = json.dumps(written[0]["data"])
    assert "high_instruction_seq.openai.jsonl" in note and str(ROOT / "data") not in note
    assert str(ROOT / "reports" / "exports") in note  # where the user finds it (not committed), never a temp folder
