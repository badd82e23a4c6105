"""ipywidgets wiring for notebook 05: the filter explorer and the annotator.

Wiring only. Every callback reads widget values and calls a pure function:
:func:`toolqual_utils.selection.filter_instances` (the same filter the static report uses),
:func:`toolqual_utils.tables.error_rate_table`, :mod:`toolqual_utils.export`,
:mod:`toolqual_utils.annotations` and :mod:`toolqual_utils.analysis`. The widgets keep their state
in plain attributes (``kept_ids``, ``counts``, ``index`` ...) and expose the methods the buttons call
(``update()``, ``export()``, ``save()``, ``next()`` ...), so tests drive them without a browser.

Dataset text reaches the page only through escaped HTML (``analysis.instance_html``,
``notebook.table_html``).
"""
from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from . import analysis, plots_analysis, views
from .annotations import ADJUDICATOR, annotation_file, annotator_agreement, append_annotation, read_annotations
from .errors import ToolqualError
from .export import EXPORT_FORMATS, export_selection, manifest_path
from .notebook import figure_html, table_html
from .schema import COARSE_CRITERIA, CRITERIA, Instance
from .selection import Selection, filter_instances, selection_frame
from .tables import error_rate_table

__all__ = ["FilterExplorer", "Annotator"]

_LABEL_OPTIONS = (("1 holds", 1), ("0 error", 0))


def _message(text: str, kind: str = "info") -> str:
    colour = {"info": "#1d4ed8", "ok": "#15803d", "warning": "#b45309"}[kind]
    return f"<div style='color:{colour};font-family:system-ui,sans-serif;font-size:13px'>{html.escape(text)}</div>"


class _Displayable:
    """Lets ``display(obj)`` (or a bare ``obj`` at the end of a cell) show the widget.

    The plain-text part of the bundle (what a page without a widget manager, such as the HTML
    report, falls back to) is a one-line explanation instead of the widget tree's repr.
    """

    widget: w.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and "text/plain" in bundle:
            bundle["text/plain"] = (f"{type(self).__name__}: an interactive widget; it works in JupyterLab "
                                    "with a running kernel (not in a static report).")
        return bundle


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# --- filter explorer --------------------------------------------------------------------------------

_CONDITION_OPTIONS = ("any", "holds", "error", "unscored")


class FilterExplorer(_Displayable):
    """Interactive filter over instances: criterion conditions, ICE threshold, sources -> what is kept.

    Every change calls :meth:`update`, which runs ``selection.filter_instances`` on the frame built by
    ``selection.selection_frame`` (the same call the static report makes), then
    ``analysis.filter_counts``, ``tables.error_rate_table`` on the kept instances and
    ``plots_analysis.error_rate_bars``.

    Args:
        instances: ``Instance`` objects (needed for export) or an instances frame
            (``schema.instances_frame``; export is then unavailable).
        verdicts: verdict table, one row per (instance, criterion) (merge judges first).
        ice_scores: optional ICE table (``instance_id, ice_score``) or ``{id: score}``; without it the
            ICE slider is not shown.
        include_criteria: initial conditions ``{criterion: "holds"|"error"|"unscored"|"any"}``.
        unscored_as_pass: initial value of "count unscored as holding".
        ice_min: initial ICE threshold (None = ICE filter off).
        min_confidence: initial minimum verdict confidence (share of agreeing votes, from ``judge
            --samples``/``--judges``): weaker verdicts count as unscored (``selection.mask_low_confidence``);
            the slider is shown when some verdict has a confidence below 1.
        sources: initial sources (None = all).
        export_path: initial export file path.
        max_rows: kept instances shown in the table.

    State after :meth:`update`: ``kept`` (frame), ``kept_ids``, ``counts`` (``filter_counts``),
    ``error_rates`` (``error_rate_table`` long form), ``figure``. :meth:`settings` returns the
    keyword arguments passed to ``filter_instances``.
    """

    def __init__(
        self,
        instances: Sequence[Instance] | pd.DataFrame,
        verdicts: pd.DataFrame | None,
        ice_scores: pd.DataFrame | dict[str, float] | None = None,
        *,
        include_criteria: dict[str, str] | None = None,
        unscored_as_pass: bool = False,
        ice_min: float | None = None,
        sources: Sequence[str] | None = None,
        export_path: str | os.PathLike[str] = "reports/exports/filtered.jsonl",
        max_rows: int = 50,
        min_confidence: float | None = None,
    ) -> None:
        if isinstance(instances, pd.DataFrame):
            self.instances: dict[str, Instance] = {}
            base = instances
        else:
            self.instances = {inst.id: inst for inst in instances}
            base = list(self.instances.values())
        self.verdicts = verdicts
        self._base, self._ice_scores = base, ice_scores
        self.min_confidence = min_confidence
        self.frame = selection_frame(base, verdicts, ice_scores, min_confidence=min_confidence)
        self.max_rows = max_rows
        confidence = (pd.to_numeric(verdicts["confidence"], errors="coerce")
                      if verdicts is not None and "confidence" in verdicts.columns else pd.Series(dtype=float))
        self.has_confidence = bool(confidence.lt(1.0).any())
        self.has_ice = bool(self.frame["ice_score"].notna().any())

        initial = dict(include_criteria or {})
        unknown = set(initial) - set(CRITERIA) - set(COARSE_CRITERIA)
        if unknown:
            raise ValueError(f"unknown criteria {sorted(unknown)}; use {', '.join((*CRITERIA, *COARSE_CRITERIA))}")
        self.criterion_controls = {
            criterion: w.ToggleButtons(
                options=_CONDITION_OPTIONS, value=self._condition_word(initial.get(criterion, "any")),
                description=criterion, style={"description_width": "150px", "button_width": "72px"})
            for criterion in (*CRITERIA, *COARSE_CRITERIA)
        }
        self.unscored_as_pass = w.Checkbox(value=bool(unscored_as_pass), description="count unscored as holding",
                                           indent=False)
        scores = self.frame["ice_score"].dropna()
        self.ice_enabled = w.Checkbox(value=self.has_ice and ice_min is not None, description="filter by ICE score",
                                      indent=False, disabled=not self.has_ice)
        low = float(min(0.0, scores.min())) if self.has_ice else 0.0
        self.ice_slider = w.FloatSlider(
            value=float(ice_min) if ice_min is not None else low, min=low, max=1.0, step=0.01,
            description="ICE ≥", continuous_update=False, readout_format=".2f", disabled=not self.has_ice)
        self.confidence_slider = w.FloatSlider(
            value=float(min_confidence or 0.0), min=0.0, max=1.0, step=0.05, description="confidence ≥",
            continuous_update=False, readout_format=".2f", disabled=not self.has_confidence)
        all_sources = sorted(map(str, pd.unique(self.frame["source"].astype(str))))
        self.source_select = w.SelectMultiple(options=all_sources,
                                              value=tuple(sources) if sources is not None else tuple(all_sources),
                                              description="sources", rows=min(6, max(2, len(all_sources))))
        self.counts_view = w.HTML()
        self.figure_out = w.Output()
        self.kept_view = w.HTML()
        self.export_path = w.Text(value=str(export_path), description="export to", layout=w.Layout(width="60%"))
        self.export_format = w.Dropdown(options=EXPORT_FORMATS, value="canonical", description="format")
        self.export_button = w.Button(description="export kept", icon="download",
                                      disabled=not self.instances)
        self.export_status = w.HTML(
            "" if self.instances else _message("export needs Instance objects, not just a frame", "warning"))
        self.export_button.on_click(lambda _: self.export())

        for control in (*self.criterion_controls.values(), self.unscored_as_pass, self.ice_enabled, self.ice_slider,
                        self.source_select):
            control.observe(self._on_change, names="value")
        self.confidence_slider.observe(self._on_confidence, names="value")

        ice_row: list[w.Widget] = [self.ice_enabled, self.ice_slider] if self.has_ice else [
            w.HTML(_message("no ICE scores given: the ICE filter is unavailable", "info"))]
        confidence_row: list[w.Widget] = [self.confidence_slider] if self.has_confidence else [
            w.HTML(_message("every verdict rests on one answer (confidence 1.0): judge with --samples or --judges "
                            "for a confidence filter", "info"))]
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.criterion_controls.values())),
                    w.VBox([self.unscored_as_pass, *ice_row, *confidence_row, self.source_select])]),
            self.counts_view, self.figure_out, self.kept_view,
            w.HBox([self.export_path, self.export_format, self.export_button]), self.export_status,
        ])
        self.update()

    @staticmethod
    def _condition_word(value: Any) -> str:
        words = {1: "holds", 0: "error", None: "any"}
        word = words.get(value, value) if not isinstance(value, str) else value
        if word not in _CONDITION_OPTIONS:
            raise ValueError(f"condition {value!r} is not one of {', '.join(_CONDITION_OPTIONS)}")
        return word

    def settings(self) -> dict[str, Any]:
        """The keyword arguments the current widget values give ``selection.filter_instances``."""
        chosen_sources = list(self.source_select.value)
        all_sources = list(self.source_select.options)
        return {
            "include_criteria": {c: t.value for c, t in self.criterion_controls.items() if t.value != "any"},
            "ice_min": float(self.ice_slider.value) if (self.has_ice and self.ice_enabled.value) else None,
            "sources": None if sorted(chosen_sources) == sorted(all_sources) else chosen_sources,
            "unscored_as_pass": bool(self.unscored_as_pass.value),
        }

    def _on_change(self, _change: Any) -> None:
        self.update()

    def _on_confidence(self, change: Any) -> None:
        self.set_min_confidence(change["new"] or None)

    def set_min_confidence(self, min_confidence: float | None) -> None:
        """Rebuild the frame with verdicts below ``min_confidence`` counted as unscored, then update."""
        self.min_confidence = min_confidence
        self.frame = selection_frame(self._base, self.verdicts, self._ice_scores, min_confidence=min_confidence)
        self.update()

    def update(self) -> None:
        """Re-run the filter with the current settings and refresh counts, bars and the kept table."""
        self.kept = filter_instances(self.frame, **self.settings())
        self.kept_ids = [str(i) for i in self.kept["instance_id"]]
        self.counts = analysis.filter_counts(self.frame, self.kept)
        self.error_rates = error_rate_table(analysis.verdicts_of(self.verdicts, self.kept_ids),
                                            instances=self.kept, by="source")
        self.figure = plots_analysis.error_rate_bars(self.error_rates,
                                                     title="Error rates among the kept instances")
        # every rate zero by construction (e.g. "overall_ok holds"): a sentence, not a chart of whiskers
        self.statement = views.kept_error_statement(self.error_rates)
        total = self.counts.iloc[-1]
        self.counts_view.value = (
            _message(f"kept {int(total['n_kept'])} of {int(total['n_instances'])} instances")
            + table_html(self.counts, max_rows=0)
        )
        self.kept_view.value = table_html(views.kept_display(analysis.kept_table(self.kept)), max_rows=self.max_rows,
                                          caption="Kept instances", max_chars=200, collapsed=False)
        self._render_figure()

    def _render_figure(self) -> None:
        if not _in_kernel():  # tests and scripts: the figure object is the result
            return
        from IPython.display import HTML, display

        # plotly.js (~4.6 MB) is inlined only if no earlier figure of this kernel session carried it
        # (notebook.figure_html keeps track): pushing it through an Output widget on every update is
        # slow in JupyterLab and stalls papermill's output capture.
        with self.figure_out:
            self.figure_out.clear_output(wait=True)
            display(HTML(_message(self.statement) if self.statement else figure_html(self.figure)))

    def export(self, path: str | os.PathLike[str] | None = None, fmt: str | None = None) -> dict[str, Any] | None:
        """Write the kept instances with ``export.export_selection`` (data file + ``.manifest.json``).

        The manifest records the filter settings as ``thresholds`` (recipe ``"explorer filter"``).
        Returns the manifest, or None when nothing could be written (the reason shows in the widget).
        """
        target = Path(path if path is not None else self.export_path.value)
        fmt = fmt or self.export_format.value
        if not self.instances:
            self.export_status.value = _message("export needs Instance objects, not just a frame", "warning")
            return None
        selection = Selection(ids=tuple(self.kept_ids), recipe="explorer filter",
                              thresholds={**self.settings(), "min_confidence": self.min_confidence},
                              n_candidates=len(self.kept_ids), n_pool=len(self.frame),
                              notes=("instances kept by the filter explorer (notebook 05)",))
        try:
            manifest = export_selection(self.instances.values(), selection, target, format=fmt)  # type: ignore[arg-type]
        except (ToolqualError, OSError) as exc:
            self.export_status.value = _message(f"not exported: {exc}", "warning")
            return None
        self.export_status.value = _message(
            f"wrote {manifest['n_written']} of {len(self.kept_ids)} kept instances to {target} "
            f"({manifest['n_skipped']} skipped: no gold calls) + {manifest_path(target).name}", "ok")
        self.last_manifest = manifest
        return manifest


# --- annotator --------------------------------------------------------------------------------------


class Annotator(_Displayable):
    """Label instances on the six criteria; every save appends a row to the annotator's own CSV.

    Args:
        instances: the instances to label, in the order they are shown.
        annotator: the annotator's name (one CSV per annotator).
        path: the annotator's CSV file, or a folder (then ``<folder>/<annotator>.csv``). Other CSV
            files in the same folder are read for the agreement table.
        verdicts: optional rule/model verdicts (long) to compare with.
        other_annotator: optional second annotator to compare with (takes precedence over
            ``verdicts`` for "next disagreement"); their rows are read from ``other_path`` (a file or
            folder; default: the folder of ``path``).

    State: ``index`` (position in ``instances``), ``current_id``, ``toggles`` (criterion ->
    ToggleButtons; value 1, 0 or None = not labelled), ``note``. Methods ``save()``, ``next()``,
    ``previous()``, ``go_to(i)``, ``jump_to_next_disagreement()``. Saved labels are never rewritten:
    a new save for the same instance appends a row that supersedes the earlier one when read.
    """

    def __init__(
        self,
        instances: Sequence[Instance],
        annotator: str,
        path: str | os.PathLike[str],
        *,
        verdicts: pd.DataFrame | None = None,
        other_annotator: str | None = None,
        other_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.instances = list(instances)
        if not self.instances:
            raise ValueError("the annotator needs at least one instance")
        self.annotator = annotator.strip()
        path = Path(path)
        self.path = path if path.suffix.lower() == ".csv" else annotation_file(path, self.annotator)
        self.directory = self.path.parent
        self.verdicts = verdicts
        self.other_annotator = other_annotator
        self.other_path = Path(other_path) if other_path is not None else self.directory
        self.order = [inst.id for inst in self.instances]
        self.index = 0

        self.view = w.HTML()
        self.position = w.HTML()
        self.comparison = w.HTML()
        self.status = w.HTML()
        self.agreement = w.HTML()
        self.toggles = {
            criterion: w.ToggleButtons(options=_LABEL_OPTIONS, value=None, description=criterion,
                                       style={"description_width": "150px", "button_width": "80px"})
            for criterion in CRITERIA
        }
        self.note = w.Textarea(placeholder="why (optional)", layout=w.Layout(width="95%", height="60px"))
        self.previous_button = w.Button(description="◀ previous")
        self.next_button = w.Button(description="next ▶")
        self.jump_button = w.Button(description="next disagreement", tooltip="jump to the next instance "
                                    "where your saved labels differ from the comparison labels")
        self.save_button = w.Button(description="save", button_style="primary", icon="save")
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.jump_button.on_click(lambda _: self.jump_to_next_disagreement())
        self.save_button.on_click(lambda _: self.save())

        controls = w.VBox([*self.toggles.values(), self.note,
                           w.HBox([self.previous_button, self.next_button, self.jump_button, self.save_button]),
                           self.status, self.comparison])
        self.widget = w.VBox([
            w.HTML(_message(f"annotator: {self.annotator} · file: {self.path}")), self.position,
            w.HBox([w.Box([self.view], layout=w.Layout(width="60%", max_height="640px", overflow="auto")),
                    w.Box([controls], layout=w.Layout(width="40%"))]),
            self.agreement,
        ])
        self.go_to(0)
        self.refresh_agreement()

    # -- labels ----------------------------------------------------------------------------------

    @property
    def current_id(self) -> str:
        return self.order[self.index]

    def own_labels(self, *, with_notes: bool = False) -> pd.DataFrame:
        """This annotator's current saved labels (last row per instance wins), wide, 1.0/0.0/NaN."""
        if not self.path.exists():
            return analysis.as_wide_labels(None)
        frame = read_annotations(self.path)
        frame = frame.loc[frame["annotator"] == self.annotator]
        wide = analysis.as_wide_labels(frame, annotator=self.annotator)
        if with_notes:
            wide["note"] = frame.drop_duplicates("instance_id", keep="last")["note"].to_numpy()
        return wide

    def comparison_labels(self) -> tuple[str, pd.DataFrame]:
        """(what is compared, its wide labels): the other annotator when given, else the verdicts."""
        if self.other_annotator:
            frame = read_annotations(self.other_path)
            frame = frame.loc[frame["annotator"] == self.other_annotator]
            return self.other_annotator, analysis.as_wide_labels(frame, annotator=self.other_annotator)
        if self.verdicts is not None and len(self.verdicts):
            return "verdicts", analysis.as_wide_labels(self.verdicts)
        return "", analysis.as_wide_labels(None)

    def disagreements(self) -> pd.DataFrame:
        """``analysis.label_disagreements`` of the saved labels vs the comparison labels."""
        _, other = self.comparison_labels()
        return analysis.label_disagreements(self.own_labels(), other)

    # -- navigation --------------------------------------------------------------------------------

    def go_to(self, index: int) -> None:
        """Show instance ``index`` (clamped), with this annotator's saved labels and note, if any."""
        self.index = max(0, min(int(index), len(self.order) - 1))
        instance = self.instances[self.index]
        self.view.value = analysis.instance_html(instance)
        own = self.own_labels(with_notes=True)
        saved = own.loc[own["instance_id"] == instance.id]
        for criterion, toggle in self.toggles.items():
            value = saved[criterion].iloc[0] if len(saved) else math.nan
            toggle.value = None if pd.isna(value) else int(value)
        self.note.value = str(saved["note"].iloc[0]) if len(saved) else ""
        n_labelled = int(own["instance_id"].isin(self.order).sum())
        self.position.value = _message(
            f"instance {self.index + 1} of {len(self.order)} · {n_labelled} labelled by {self.annotator}"
            + (" · showing your saved labels" if len(saved) else " · not labelled yet")
        )
        self._show_comparison()

    def next(self) -> None:
        self.go_to(min(self.index + 1, len(self.order) - 1))

    def previous(self) -> None:
        self.go_to(max(self.index - 1, 0))

    def jump_to_next_disagreement(self) -> int | None:
        """Go to the next instance (wrapping) where saved labels and comparison labels differ."""
        what, _ = self.comparison_labels()
        if not what:
            self.status.value = _message("nothing to compare with: pass verdicts= or other_annotator=", "warning")
            return None
        target = analysis.next_disagreement(self.order, self.index, self.disagreements()["instance_id"])
        if target is None:
            self.status.value = _message(f"no disagreement with {what} among your saved labels", "ok")
            return None
        self.go_to(target)
        self.status.value = _message(f"disagreement with {what}")
        return target

    # -- saving ------------------------------------------------------------------------------------

    def current_row(self) -> dict[str, Any]:
        """The annotation row the toggles and note describe (None toggles -> not labelled)."""
        row: dict[str, Any] = {"instance_id": self.current_id, "annotator": self.annotator}
        for criterion, toggle in self.toggles.items():
            row[criterion] = toggle.value if toggle.value is not None else math.nan
        row["note"] = self.note.value
        return row

    def save(self) -> bool:
        """Append the current labels to the annotator's CSV; True when a row was written."""
        try:
            written = append_annotation(self.path, self.current_row())
        except ToolqualError as exc:
            self.status.value = _message(f"not saved: {exc}", "warning")
            return False
        labelled = sum(not pd.isna(written[c]) for c in CRITERIA)
        self.status.value = _message(f"saved {labelled} label(s) for {self.current_id} at {written['recorded_at']}", "ok")
        self.go_to(self.index)
        self.refresh_agreement()
        return True

    # -- display helpers ---------------------------------------------------------------------------

    def _show_comparison(self) -> None:
        try:
            what, other = self.comparison_labels()
        except ToolqualError as exc:
            self.comparison.value = _message(f"comparison labels unreadable: {exc}", "warning")
            return
        if not what:
            self.comparison.value = ""
            return
        row = other.loc[other["instance_id"] == self.current_id]
        if row.empty:
            self.comparison.value = _message(f"{what}: no labels for this instance")
            return
        words = {1.0: "holds", 0.0: "error"}
        cells = [(c, words.get(row[c].iloc[0], "unscored")) for c in CRITERIA]
        self.comparison.value = table_html(pd.DataFrame(cells, columns=["criterion", what]), max_rows=0)

    def agreement_table(self) -> pd.DataFrame:
        """Agreement (``annotations.annotator_agreement``) of the annotators whose CSVs share the folder.

        Pairs involving this annotator when they have labels, else every pair; empty when fewer than
        two annotators (besides the adjudicator) have labels.
        """
        files = sorted(self.directory.glob("*.csv"))
        if not files:
            return pd.DataFrame()
        frame = read_annotations(files)
        names = [a for a in pd.unique(frame["annotator"]) if a != ADJUDICATOR]
        if len(names) < 2:
            return pd.DataFrame()
        if self.annotator in names:
            parts = [annotator_agreement(frame, self.annotator, other) for other in names if other != self.annotator]
            return pd.concat(parts, ignore_index=True)
        return annotator_agreement(frame)

    def refresh_agreement(self) -> None:
        try:
            table = self.agreement_table()
        except (ToolqualError, ValueError) as exc:
            self.agreement.value = _message(f"agreement not available: {exc}", "warning")
            return
        if table.empty:
            self.agreement.value = ""
            return
        shown = table.loc[:, ["annotator_a", "annotator_b", "criterion_label", "n", "raw_agreement", "kappa", "pabak",
                              "n_disagree"]]
        self.agreement.value = table_html(shown, max_rows=0, caption="Agreement between annotators (this folder)")
