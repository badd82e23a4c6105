"""Static figures for papers (matplotlib + seaborn) and the one colour-blind-safe palette shared with plotly."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from toolqual_utils import figures, palette, plots_analysis, tables, views
from toolqual_utils.extrinsic import extrinsic_table, read_reference_table, reference_outcomes
from toolqual_utils.schema import CRITERIA
from toolqual_utils.selection import RECIPE_LABELS, RECIPES
from conftest import ROOT


def _rates() -> pd.DataFrame:
    rows = []
    for source in ("toolbench", "toolalpaca"):
        for k in range(20):
            for c_index, criterion in enumerate(CRITERIA):
                decided = criterion != "solvability" or k == 0
                rows.append({"instance_id": f"{source}/x/{k}", "criterion": criterion,
                             "label": (0 if (k + c_index) % 5 == 0 else 1) if decided else None,
                             "status": "ok" if decided else "unscored:needs_model"})
    return tables.error_rate_table(pd.DataFrame(rows), by="source", include_total=True)


def _validation_by_source() -> pd.DataFrame:
    rows = []
    for source in ("toolbench", "toolalpaca"):
        for k in range(12):
            rows.append({"instance_id": f"{source}/x/{k}", "annotator": "adjudicated",
                         **{c: (0 if k % 4 == 0 else 1) for c in CRITERIA}})
    annotations = pd.DataFrame(rows)
    verdicts = pd.DataFrame([{"instance_id": r["instance_id"], "criterion": c, "label": 0 if int(r["instance_id"].rsplit("/", 1)[1]) % 3 == 0 else 1,
                              "status": "ok"} for r in rows for c in CRITERIA])
    return (tables.validation_table(verdicts, annotations, by="source"),
            tables.validation_table(verdicts, annotations))


def test_criteria_have_one_colour_each_everywhere():
    colours = [palette.CRITERION_COLOURS[c] for c in CRITERIA]
    assert len(set(colours)) == 6
    # the six are the Okabe–Ito colour-blind-safe colours
    assert set(colours) <= {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert palette.criterion_colour("parameter alignment") == palette.criterion_colour("parameter_alignment")
    assert palette.STATUS_COLOURS["unscored"] == palette.UNSCORED_GREY
    # plotly figures colour each criterion's dot with the same colour
    fig = plots_analysis.error_rate_dots(_rates())
    dot_colours = {t.y[0]: t.marker.color for t in fig.data if t.type == "scatter" and t.y and t.y[0] and t.x[0] is not None
                   and t.legendgroup == "rate"}
    assert dot_colours["specificity"] == palette.CRITERION_COLOURS["specificity"]
    assert dot_colours["parameter alignment"] == palette.CRITERION_COLOURS["parameter_alignment"]


def test_plotly_figures_show_unscored_and_bounds_in_grey():
    fig = plots_analysis.error_rate_dots(_rates())
    bounds = [t for t in fig.data if t.type == "bar"]
    assert bounds and all(t.marker.color == palette.UNSCORED_GREY for t in bounds)
    assert {t.y[0] for t in bounds} >= {"solvability"}            # 1 of 20 decided: a bound, not a rate
    assert any("unscored" in (t.name or "") and t.showlegend is not False for t in bounds)
    shares = views.decision_shares({"offline": pd.DataFrame([
        {"instance_id": "a/x/1", "criterion": "coherence", "label": None, "status": "unscored:needs_model", "judge": "rules"},
        {"instance_id": "a/x/2", "criterion": "coherence", "label": 0, "status": "ok", "judge": "rules"}])})
    decisions = plots_analysis.decision_chart(shares)
    unscored = [t for t in decisions.data if t.legendgroup == "unscored"]
    assert unscored[0].marker.color == palette.UNSCORED_GREY and unscored[0].showlegend
    assert [t.name for t in decisions.data] == ["error", "holds", "unscored (not decided)"]



def test_plotly_figures_without_criterion_colours_use_the_series_colours():
    from toolqual_utils import plots
    from toolqual_utils.ice import plots as ice_plots

    summary = pd.DataFrame({"source": ["bfcl", "toolbench"], "n_instances": [10, 20], "n_with_gold_calls": [9, 5]})
    histogram = pd.DataFrame({"source": ["a", "a", "b"], "bin_left": [0.0, 0.5, 0.0], "bin_right": [0.5, 1.0, 0.5],
                              "share": [0.4, 0.6, 1.0], "n_instances": [2, 3, 1]})
    built = [plots.instances_per_source(summary), plots_analysis.agreement_chart(
        pd.DataFrame({"criterion": ["coherence"], "raw_agreement": [0.9], "kappa": [0.5]})),
        ice_plots.ice_histogram(histogram)]
    for fig in built:
        # plotly's default colourway is not colour-blind safe; every trace without its own colour takes Tol's
        assert list(fig.layout.colorway) == list(palette.SERIES_COLOURS)
    # sources in the same order as the static ICE figure (sorted): the same source, the same colour
    assert [t.name for t in built[2].data] == ["a", "b"]

@pytest.fixture(scope="module")
def matplotlib_agg():
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def test_static_figures_are_written_as_pdf_and_png(tmp_path, matplotlib_agg):
    rates = _rates()
    written = figures.save_figure(figures.error_rate_figure(rates, read_reference_table(5)), tmp_path, "rates")
    by_source, pooled = _validation_by_source()
    written += figures.save_figure(figures.validation_matrix_figure(by_source, pooled), tmp_path, "matrix")
    forest = extrinsic_table(reference_outcomes(), order=RECIPES)
    written += figures.save_figure(figures.forest_figure(forest, label_names=RECIPE_LABELS), tmp_path, "forest")
    rng = np.random.default_rng(0)
    ice = pd.DataFrame({"instance_id": [f"a/{k}" for k in range(80)], "source": ["a", "b"] * 40,
                        "ice_score": rng.uniform(0, 1, 80), "status": ["ok"] * 79 + ["unscored:api_error"]})
    written += figures.save_figure(figures.ice_distribution_figure(ice, {"k": 10, "high_threshold": 0.8,
                                                                         "low_threshold": 0.1}), tmp_path, "ice")
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in ("rates", "matrix", "forest", "ice")
                                                     for e in ("pdf", "png"))
    for path in written:
        head = path.read_bytes()[:8]
        assert head.startswith(b"%PDF") if path.suffix == ".pdf" else head == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000


def test_static_error_rate_figure_draws_rates_in_criterion_colours_and_bounds_in_grey(matplotlib_agg):
    from matplotlib.colors import to_hex

    fig = figures.error_rate_figure(_rates(), groups=["all"])
    bars = [patch for patch in fig.axes[0].patches]
    colours = {to_hex(bar.get_facecolor()).upper() for bar in bars}
    assert palette.CRITERION_COLOURS["specificity"].upper() in colours
    assert palette.UNSCORED_GREY.upper() in colours
    assert any(bar.get_hatch() for bar in bars)                     # bounds are hatched grey
    # three groups in two columns: the panel above the empty slot carries the x labels too
    fig = figures.error_rate_figure(_rates(), columns=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    fig.canvas.draw()
    labelled = [ax for ax in visible if any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())]
    assert len(labelled) == 2, "each column's lowest panel shows the percentages"


def test_nothing_to_draw_gives_no_figure(matplotlib_agg):
    assert figures.error_rate_figure(pd.DataFrame()) is None
    assert figures.ice_distribution_figure(pd.DataFrame({"ice_score": [np.nan], "status": ["ok"]})) is None
    assert figures.forest_figure(pd.DataFrame()) is None


def test_an_ordinary_render_imports_no_matplotlib():
    """nb.export_figure does nothing (and imports nothing) unless toolqual report --figures asked."""
    code = ("import sys, json, os\nos.environ.pop('TOOLQUAL_FIGURES_DIR', None)\n"
            "from toolqual_utils import notebook as nb, figures\n"
            "nb.export_figure('x', figures.error_rate_figure, None)\n"
            "print(json.dumps([m for m in ('matplotlib', 'seaborn') if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_export_figure_writes_when_asked(tmp_path, monkeypatch, matplotlib_agg):
    from toolqual_utils import notebook as nb

    monkeypatch.setenv(nb.FIGURES_ENV, str(tmp_path / "figs"))
    assert nb.export_figure("02_rates", figures.error_rate_figure, _rates()) is None
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["02_rates.pdf", "02_rates.png"]
    nb.export_figure("nothing", figures.error_rate_figure, pd.DataFrame())
    assert not (tmp_path / "figs" / "nothing.pdf").exists()
