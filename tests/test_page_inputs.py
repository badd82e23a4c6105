"""What notebooks 01–06 compute before they display, moved out of the notebooks into tested helpers:
where notebook 04's ICE results come from, the scored inputs notebooks 05 and 06 share, and a model
judge beside the offline judge on the same instances (01, 02)."""
from __future__ import annotations

import pandas as pd
import pytest

from toolqual_utils import analysis
from toolqual_utils.errors import ConfigError
from toolqual_utils.heuristics import offline_verdicts
from toolqual_utils.ice import views as ice_views
from toolqual_utils.ice.testbed import load_testbed
from toolqual_utils.io import read_instances, read_table, write_table
from toolqual_utils.schema import CRITERIA, Instance
from toolqual_utils.ice.scripted import demo_sensitive_script
from conftest import DATA, REFERENCE_INSTANCES


@pytest.fixture(scope="module")
def reference():
    return read_instances(REFERENCE_INSTANCES)


@pytest.fixture(scope="module")
def testbed():
    return load_testbed()


def test_ice_results_from_a_file_with_its_query_table(tmp_path, testbed):
    per_instance = pd.DataFrame({"instance_id": ["a/1", "a/2"], "ice_score": [0.8, 0.2], "strict_score": [0.5, 0.0],
                                 "status": ["ok", "unscored:api_error"], "source": ["a", "a"]})
    write_table(per_instance, tmp_path / "ice.csv")
    write_table(pd.DataFrame({"instance_id": ["a/1"], "query_id": ["q01"], "similarity": [0.8], "strict": [1],
                              "status": ["ok"]}), tmp_path / "ice.queries.csv")
    section = ice_views.ice_results_section(ice_results_path="ice.csv", root=tmp_path, testbed=testbed,
                                            live_instances=lambda: pytest.fail("no live run when a file is given"))
    assert section.status == "file" and section.origin == "results file ice.csv"
    assert list(section.scored["instance_id"]) == ["a/1"]          # unscored rows are not plotted
    assert section.per_query is not None and section.target_model is None


def test_ice_results_none_without_file_or_endpoint(testbed, monkeypatch):
    monkeypatch.delenv("TOOLQUAL_ICE_MODEL", raising=False)
    section = ice_views.ice_results_section(ice_results_path="", testbed=testbed,
                                            live_instances=lambda: pytest.fail("nothing to run"))
    assert section.status == "none" and section.scored is None and "toolqual ice" in section.message
    with pytest.raises(ConfigError, match="ice_results_path"):
        ice_views.ice_results_section(ice_results_path="missing.csv", testbed=testbed, live_instances=list)


def test_bundled_ice_probe_is_read_labelled_and_kept_apart(tmp_path):
    from conftest import ROOT

    probe = ice_views.ice_probe(root=ROOT)                          # the default: data/judge_runs/ice-v1-probe
    assert probe is not None and len(probe.per_instance) == 3 and probe.target_model == "target-model"
    assert list(probe.per_instance.columns) == list(ice_views.PROBE_COLUMNS)
    assert probe.per_instance["ice_score"].between(0.9, 1.0).all()  # a strong target: the scores barely differ
    assert probe.per_query is not None and len(probe.per_query) == 14 and probe.per_query["n_scored"].eq(3).all()
    assert "recorded answers, not a run of this page" in probe.origin and "ice-v1-probe/ice.csv" in probe.origin
    assert ice_views.ice_probe("", root=ROOT) is None
    with pytest.raises(ConfigError, match="ice_probe_path = 'nope.csv'"):
        ice_views.ice_probe("nope.csv", root=tmp_path)


def test_ice_results_live_against_the_test_double(openai_double, testbed, tmp_path):
    """The live branch sends real requests; here to the local test double (never a model's judgement)."""
    openai_double.script = demo_sensitive_script(testbed)
    good = Instance(id="t/good", source="t", instruction="Weather in Oslo?", tools=[],
                    calls=[{"name": "get_city_weather", "arguments": {"city": "Oslo"}}])
    section = ice_views.ice_results_section(
        ice_results_path="", testbed=testbed, live_instances=lambda: [good], live_description="one instance",
        endpoint={"model": "scripted-target", "base_url": openai_double.base_url, "max_retries": 0,
                  "cache_path": str(tmp_path / "c.sqlite")})
    assert section.status == "live" and section.target_model == "scripted-target"
    assert section.origin == "live run of scripted-target on 1 instances of one instance"
    assert list(section.per_instance["instance_id"]) == ["t/good"] and section.ledger is not None
    assert openai_double.hits == len(testbed.queries)


def test_example_instance_picks_the_asked_one_or_the_first_with_gold_calls(reference):
    with_calls = [i for i in reference if i.calls is not None]
    assert ice_views.example_instance(reference).id == with_calls[0].id
    assert ice_views.example_instance(reference, with_calls[2].id).id == with_calls[2].id
    assert ice_views.example_instance(reference, "no/such/id").id == with_calls[0].id
    assert ice_views.example_instance([Instance(id="x/1", source="x", instruction="hi", tools=[], calls=None)]) is None


def test_scored_instances_offline_then_with_a_model_table(tmp_path, reference):
    offline = analysis.scored_instances(reference, "the reference instances")
    assert offline.verdicts_label == "offline judge (rules + heuristics)" and offline.ice_scores is None
    assert len(offline.frame) == len(reference) and set(CRITERIA) <= set(offline.frame.columns)
    assert offline.description.startswith("The reference instances; verdicts: offline judge")
    model = offline.verdicts.assign(judge="some-model", prompt_id="judge_combined.v2", label=1, status="ok")
    write_table(model.iloc[:6], tmp_path / "model.csv")
    write_table(pd.DataFrame({"instance_id": [i.id for i in reference], "ice_score": 0.5}), tmp_path / "ice.csv")
    scored = analysis.scored_instances(reference, "x", judge_verdicts_path=tmp_path / "model.csv",
                                       ice_scores_path=tmp_path / "ice.csv", relative=lambda p: p.name)
    assert scored.verdicts_label.startswith("some-model · judge_combined.v2 from model.csv")
    assert scored.frame["ice_score"].eq(0.5).all() and "ICE scores: from ice.csv." in scored.description
    assert (scored.verdicts["judge"] == "some-model").sum() == 6    # the model's rows win where they are scored
    with pytest.raises(ConfigError, match="judge_verdicts_path"):
        analysis.scored_instances(reference, "x", judge_verdicts_path=tmp_path / "nope.csv")


def test_compare_on_same_instances_uses_only_the_judged_ones(reference):
    offline = offline_verdicts(reference)
    assert analysis.compare_on_same_instances(None, offline, reference) is None
    judged_ids = [i.id for i in reference[:5]]
    model = offline.loc[offline["instance_id"].isin(judged_ids)].assign(judge="m", prompt_id="p.v1", label=0,
                                                                        status="ok")
    other = model.assign(instance_id="elsewhere/x/1")                  # a verdict file may cover other data
    comparison = analysis.compare_on_same_instances(pd.concat([model, other]), offline, reference)
    assert comparison.label == "m · p.v1" and comparison.n_instances == 5
    overall = comparison.model_rates.set_index(["group", "criterion"]).loc[("all", "overall_ok")]
    assert (overall["n_instances"], overall["n_errors"]) == (5, 5)
    assert comparison.offline_rates.set_index(["group", "criterion"]).loc[("all", "overall_ok"), "n_instances"] == 5
    assert analysis.compare_on_same_instances(other, offline, reference) is None


def test_bundled_model_run_is_compared_on_its_130_instances():
    instances = [i for path in sorted(DATA.glob("*.jsonl")) if not path.name.endswith(".rejects.jsonl")
                 for i in read_instances(path)]
    model = read_table(DATA / "judge_runs" / "strong-v1-sample" / "verdicts.csv")
    comparison = analysis.compare_on_same_instances(model, offline_verdicts(instances), instances)
    assert comparison.n_instances == 130 and comparison.label == "strong-judge · judge_combined.v1"
