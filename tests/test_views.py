"""Display tables and page headlines (toolqual_utils.views, toolqual_utils.headlines): laid out for reading,
never a statistic of their own, and never a rate that only says who decided."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from toolqual_utils import formatting as fmt
from toolqual_utils import headlines, tables, views
from toolqual_utils.schema import CRITERIA, Call, Instance, ToolSpec

SCIENTIFIC = re.compile(r"\d[eE][-+]?\d")


def _instances(n_per_source: int = 10) -> list[Instance]:
    return [Instance(id=f"{source}/x/{k}", source=source, instruction=f"do {k}", tools=[ToolSpec(name="t")],
                     calls=[Call(name="t", arguments={})])
            for source in ("alpha", "beta") for k in range(n_per_source)]


def _verdicts(instances: list[Instance], *, decided: dict[str, int], errors: dict[str, int]) -> pd.DataFrame:
    """Per criterion: the first ``decided[c]`` instances of each source scored (the first ``errors[c]`` of
    them errors), the rest unscored:needs_model."""
    rows = []
    for criterion in CRITERIA:
        for instance in instances:
            k = int(instance.id.rsplit("/", 1)[1])
            if k < decided.get(criterion, 0):
                label, status = (0 if k < errors.get(criterion, 0) else 1), "ok"
            else:
                label, status = None, "unscored:needs_model"
            rows.append({"instance_id": instance.id, "criterion": criterion, "label": label, "status": status,
                         "judge": "rules", "prompt_id": "rules.v1", "rationale": "", "evidence": []})
    return pd.DataFrame(rows)


@pytest.fixture
def rates():
    instances = _instances()
    # specificity: all decided (2 errors per source); solvability: 1 of 10 decided, an error (rules-style)
    decided = {"specificity": 10, "coherence": 10, "solvability": 1, "parameter_alignment": 10,
               "sufficiency": 10, "minimality": 10}
    errors = {"specificity": 2, "solvability": 1}
    return tables.error_rate_table(_verdicts(instances, decided=decided, errors=errors), instances, by="source",
                                   include_total=True)


def test_rate_shown_needs_half_decided_and_every_member_of_a_coarse_label(rates):
    shown = dict(zip(zip(rates["group"], rates["criterion"]), views.rate_shown(rates)))
    assert shown[("all", "specificity")] and shown[("alpha", "coherence")]
    assert not shown[("all", "solvability")]          # 1 of 10 decided: 100% would only say who decided
    # instruction correctness is decided for all 20 instances that have a specificity error or the one
    # solvability error... but solvability is mostly unscored, so the coarse rate is not shown either
    assert not shown[("all", "instruction_ok")] and not shown[("all", "overall_ok")]
    assert shown[("all", "sequence_ok")]


def test_error_rate_matrix_is_transposed_and_shows_bounds_instead_of_artefacts(rates):
    matrix = views.error_rate_matrix(rates)
    assert list(matrix.columns) == ["all", "alpha", "beta"]       # groups as columns, "all" first
    assert matrix.index[0] == "instances" and matrix.loc["instances", "all"] == "20"
    assert matrix.loc["specificity", "all"] == "20% (8–42)\n20 scored"
    assert matrix.loc["solvability", "all"] == "bound 10–100%\n2 of 20 decided"
    assert not matrix.loc["solvability", "all"].startswith("100%")
    for cell in matrix.to_numpy().ravel():
        assert cell and cell.lower() != "nan" and not SCIENTIFIC.search(cell)


def test_bounds_matrix_and_side_by_side(rates):
    bounds = views.error_rate_bounds_matrix(rates)
    assert bounds.loc["solvability", "alpha"] == "10–100%" and bounds.loc["specificity", "beta"] == "20%"
    paper = pd.DataFrame({"group": ["ToolBench"], "n_instances": [125000], "criterion": ["specificity"],
                          "error_rate": [0.204]})
    side = views.error_rates_side_by_side({"judge A": rates, "judge B": rates}, paper_table5=paper)
    assert list(side.columns) == ["judge A", "judge B", "paper: ToolBench (125,000, ChatGPT)"]
    assert side.loc["specificity", "paper: ToolBench (125,000, ChatGPT)"] == "20%"
    assert side.loc["coherence", "paper: ToolBench (125,000, ChatGPT)"] == fmt.MISSING


def test_decision_table_counts_unscored_as_its_own_category():
    instances = _instances(4)
    verdicts = _verdicts(instances, decided={"specificity": 4, "coherence": 1}, errors={"coherence": 1})
    table = views.decision_table(verdicts).set_index("criterion")
    assert table.loc["specificity", ["error", "holds", "unscored"]].tolist() == [0, 8, 0]
    assert table.loc["coherence", ["error", "holds", "unscored"]].tolist() == [2, 0, 6]
    assert table.loc["coherence", "why unscored"] == "needs_model 6"
    assert table.loc["specificity", "decided by"] == "rules 8"
    shares = views.decision_shares({"offline": verdicts})
    coherence = shares.loc[shares["criterion"] == "coherence"].set_index("outcome")["share"]
    assert coherence.to_dict() == {"error": 0.25, "holds": 0.0, "unscored": 0.75}


def test_kept_display_writes_labels_as_words_and_zero_by_construction_is_a_sentence():
    kept = pd.DataFrame({"instance_id": ["a/x/1"], "source": ["a"], "instruction": ["hi"],
                         **{c: [1.0 if c == "specificity" else float("nan")] for c in CRITERIA},
                         "overall_ok": [float("nan")], "ice_score": [0.71234]})
    shown = views.kept_display(kept)
    assert shown.loc[0, "specificity"] == "holds" and shown.loc[0, "coherence"] == "unscored"
    assert shown.loc[0, "overall correctness (any error)"] == "unscored" and shown.loc[0, "ice_score"] == "0.71"
    instances = _instances(3)
    clean = tables.error_rate_table(_verdicts(instances, decided={"specificity": 3}, errors={}), instances,
                                    by="source")
    statement = views.kept_error_statement(clean)
    assert statement.startswith("None of the 6 kept instances has a scored error")
    assert "6 of 36 (17%) were scored" in statement and "30 are unscored" in statement
    dirty = tables.error_rate_table(_verdicts(instances, decided={"specificity": 3}, errors={"specificity": 1}),
                                    instances, by="source")
    assert views.kept_error_statement(dirty) is None


def test_examples_agreement_and_manifest_collapse_long_material():
    examples = pd.DataFrame([{"instance_id": "a/x/1", "criterion": "parameter_alignment", "label": 0, "judge": "rules",
                              "prompt_id": "rules.v1", "instruction": "x" * 400, "rationale": "call 0 bad",
                              "evidence": '[{"check": "type_mismatch", "call_index": 0, "argument": "q", '
                                          '"value": 3, "expected": "string", "message": "call 0 bad"}]'}])
    shown = views.examples_display(examples)
    assert shown.loc[0, "criterion"] == "parameter alignment" and shown.loc[0, "decided by"] == "rules (rules.v1)"
    assert len(shown.loc[0, "instruction"]) == 300
    evidence = shown.loc[0, "evidence"]
    assert isinstance(evidence, fmt.Details)
    assert evidence.summary == "type_mismatch · call 0 · argument 'q' · value 3 · expected 'string'"
    cells = pd.DataFrame({"criterion": ["coherence"], "reference": ["holds"], "rules": ["holds"], "model": ["no verdicts"],
                          "rules_outcome": ["TN"], "model_outcome": ["no verdicts"], "n": [3],
                          "instance_ids": [["a", "b", "c"]]})
    agreement = views.agreement_cells(cells)
    assert "model judge" not in agreement.columns and "no verdicts" not in agreement.to_string()
    assert agreement.loc[0, "instances"].summary == "3 ids"
    manifest = views.manifest_display({"ids": [f"id{k}" for k in range(40)], "n_selected": 1680, "seed": 0,
                                       "source_files": [{"path": f"/x/{k}", "sha256": "ab" * 32} for k in range(6)]})
    values = manifest.set_index("field")["value"]
    assert values["ids"].summary == "id0, id1, id2, … (40 ids)" and values["n_selected"] == "1,680"
    assert values["source_files"].summary == "6 entries"


def test_extrinsic_and_comparison_displays():
    table = pd.DataFrame({"benchmark": ["ToolAlpaca"], "fine_tune_set": ["high_instruction_seq"], "origin": ["paper"],
                          "n": [100], "pass_rate": [0.54], "ci_low": [0.4423], "ci_high": [0.6377], "ci_method": ["wald"]})
    shown = views.extrinsic_display(table, label_names={"high_instruction_seq": "high instruction + seq"})
    assert shown.loc[0].tolist() == ["ToolAlpaca", "high instruction + seq", "paper", "54% (44–64)", "100", "wald"]
    comparisons = pd.DataFrame({"benchmark": ["ToolAlpaca"], "model": ["high_instruction_seq"], "baseline": ["random"],
                                "kind": ["aggregate"], "n_shared": [100.0], "pass_rate": [0.54],
                                "baseline_pass_rate": [0.48], "diff": [0.06], "ci_low": [-0.0773], "ci_high": [0.1942],
                                "pvalue": [0.396], "test": ["z"], "model_only": [float("nan")],
                                "baseline_only": [float("nan")], "note": [""]})
    row = views.comparisons_display(comparisons).loc[0]
    assert row["difference (95% interval)"] == "+6.0 pts (−7.7 pts to +19.4 pts)"
    assert row["p"] == "0.40" and row["pass rates"] == "54% vs 48%"


def test_headlines_answer_in_three_lines_with_formatted_numbers(rates):
    summary = headlines.error_rate_summary(rates, data="test data", model_rates=rates, model_label="m · p1")
    assert summary.question.startswith("How many instances have an error")
    assert len(summary.lines) == 3
    assert "specificity 20% (8–42)" in summary.lines[0]
    assert "solvability 10–100%" in summary.lines[1]                # a bound, never "100%"
    assert summary.lines[2].startswith("Model judge m · p1 on 20 instances")
    assert summary.numbers["rates"]["solvability"]["upper"] == 1.0
    assert "error_rate" not in summary.numbers["rates"]["solvability"]
    for line in summary.lines:
        assert not SCIENTIFIC.search(line) and "nan" not in line.lower()


def test_filter_and_profile_headlines():
    counts = pd.DataFrame({"source": ["a", "b", "all"], "n_instances": [10, 30, 40], "n_kept": [5, 3, 8],
                           "share_kept": [0.5, 0.1, 0.2]})
    instances = _instances(3)
    kept_rates = tables.error_rate_table(_verdicts(instances, decided={"specificity": 3}, errors={}), instances,
                                         by="source")
    words = headlines.filter_words({"overall_ok": "holds"}, unscored_as_pass=True)
    assert words == "Overall correctness holds (unscored counted as holding)"
    summary = headlines.filter_summary(counts, kept_rates, settings=words, verdicts="offline judge")
    assert summary.lines[0] == "Overall correctness holds (unscored counted as holding): 8 of 40 (20%) instances kept."
    assert summary.lines[1] == "Kept share per source: a 50%, b 10%."
    assert summary.lines[2].startswith("None of them has a scored error (by construction)")
    source_summary = pd.DataFrame({"source": ["a"], "n_instances": [1680], "n_with_gold_calls": [1428],
                                   "n_calls": [2756], "n_no_call": [118], "n_parse_failures": [40],
                                   "n_pseudo_calls": [26]})
    profile = headlines.profile_summary(source_summary, n_files=6, data="the bundled sample", n_rejected=0)
    assert profile.lines[0] == "1,680 instances from 6 files and 1 source; largest: a 1,680."
    assert profile.numbers["n_instances"] == 1680
