"""The rules measured on the adjudicated reference annotations (both development splits).

For every registered check: on how many annotated instances it fires with severity ``error``, and how
many of those the adjudicated label of its criterion confirms (label 0). Run
``pytest tests/test_checks_reference.py -s`` to print the table. A rules verdict with status ``ok`` is
final (the model judge is not asked), so precision matters more than recall:

- the passes the rules decide without a finding (no calls -> aligned; at most one call -> minimal; calling
  nothing on a BFCL irrelevance instance -> sufficient) must all hold;
- the checks added for issue 8 (``unserved_request``, ``required_values_unstated``) must never contradict
  an adjudicated label;
- decided rule errors keep the precision measured when they were written (floors below, rounded down).
"""
from __future__ import annotations

import pandas as pd
import pytest

from toolqual_utils.checks import find_issues, registered_checks, run_checks
from toolqual_utils.io import read_instances
from conftest import ANNOTATIONS

SPLITS = {"dev": ("reference_dev_instances.jsonl", "reference_dev.csv"),
          "dev2": ("reference_dev2_instances.jsonl", "reference_dev2.csv")}
NEW_CHECKS = ("unserved_request", "required_values_unstated")
#: split -> minimum share of decided rule errors (label 0) the adjudicated label confirms
ERROR_PRECISION_FLOORS = {"dev": 0.99, "dev2": 0.8}


@pytest.fixture(scope="module")
def splits():
    loaded = {}
    for split, (instances_file, labels_file) in SPLITS.items():
        labels = pd.read_csv(ANNOTATIONS / labels_file)
        gold = labels[labels["annotator"] == "adjudicated"].set_index("instance_id")
        loaded[split] = (read_instances(ANNOTATIONS / instances_file), gold)
    return loaded


@pytest.fixture(scope="module")
def per_check(splits):
    rows = []
    for split, (instances, gold) in splits.items():
        findings = find_issues(instances)
        for check in registered_checks():
            fired = sorted({f.instance_id for f in findings if f.check == check.name and f.severity == "error"})
            agree = [i for i in fired if gold.loc[i, check.criterion] == 0]
            rows.append({"split": split, "check": check.name, "criterion": check.criterion, "n_fired": len(fired),
                         "n_agree": len(agree), "contradicted": [i for i in fired if i not in agree]})
    table = pd.DataFrame(rows)
    print("\nRule findings (severity error) vs adjudicated labels\n"
          + table.drop(columns="contradicted").to_string(index=False))
    return table


def test_rule_passes_hold_on_both_splits(splits):
    for split, (instances, gold) in splits.items():
        verdicts = run_checks(instances)
        passes = verdicts[verdicts["label"] == 1]
        wrong = [(r.instance_id, r.criterion) for r in passes.itertuples() if gold.loc[r.instance_id, r.criterion] != 1]
        assert len(passes) > 0 and wrong == [], (split, wrong)


@pytest.mark.parametrize("check", NEW_CHECKS)
def test_new_checks_never_contradict_the_reference(per_check, check):
    rows = per_check[per_check["check"] == check]
    assert rows["contradicted"].map(len).sum() == 0, rows.to_dict("records")


def test_unserved_request_is_confirmed_where_it_fires(per_check):
    row = per_check[(per_check["check"] == "unserved_request") & (per_check["split"] == "dev2")].iloc[0]
    assert row["n_fired"] >= 1 and row["n_agree"] == row["n_fired"]


@pytest.mark.parametrize("split", sorted(ERROR_PRECISION_FLOORS))
def test_decided_rule_errors_keep_their_precision(splits, split):
    instances, gold = splits[split]
    verdicts = run_checks(instances)
    errors = verdicts[verdicts["label"] == 0]
    confirmed = sum(gold.loc[r.instance_id, r.criterion] == 0 for r in errors.itertuples())
    assert len(errors) > 0 and confirmed / len(errors) >= ERROR_PRECISION_FLOORS[split], (confirmed, len(errors))
