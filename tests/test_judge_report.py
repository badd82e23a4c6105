"""Summaries for the criterion-scoring report and its model-judge section (double, never a model)."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from toolqual_utils.errors import ConfigError
from toolqual_utils.io import write_table
from toolqual_utils.judge.report import model_judge_section
from toolqual_utils.judge.scripted import ScriptedJudge
from toolqual_utils.judge.summary import (
    example_verdicts,
    judge_identity,
    read_verdicts,
    sample_per_source,
)
from toolqual_utils.schema import VERDICT_COLUMNS, Instance
from toolqual_utils.tables import error_rate_table, error_rate_wide
from conftest import ROOT



def _instances() -> list[Instance]:
    return [
        Instance.model_validate({"id": f"{src}/x/{i}", "source": src, "instruction": f"Do <b>thing</b> {i}.",
                                 "tools": [], "calls": []})
        for src in ("alpha", "beta") for i in range(3)
    ]


def _verdicts() -> pd.DataFrame:
    rows = [
        ("alpha/x/0", "coherence", 0, "ok", "rules"), ("alpha/x/1", "coherence", 1, "ok", "heuristic"),
        ("alpha/x/2", "coherence", None, "unscored:needs-model", "rules"),
        ("beta/x/0", "coherence", 1, "ok", "gpt-x"), ("beta/x/1", "coherence", None, "unscored:parse_error", "gpt-x"),
        ("beta/x/2", "minimality", 0, "ok", "gpt-x"),
    ]
    return pd.DataFrame(
        [{"instance_id": i, "criterion": c, "label": label, "status": s, "judge": j,
          "prompt_id": "judge_combined.v1" if j == "gpt-x" else f"{j}.v1", "rationale": "why",
          "evidence": [{"check": "c", "value": "<script>"}]} for i, c, label, s, j in rows],
        columns=list(VERDICT_COLUMNS),
    )


def test_error_rates_count_unscored_separately():
    # the report's per-source rates come from the one error-rate computation (tables.error_rate_table)
    rates = error_rate_table(_verdicts(), _instances(), by="source", include_total=True)
    by_cell = rates.set_index(["group", "criterion"])
    alpha = by_cell.loc[("alpha", "coherence")]
    assert (alpha.n, alpha.n_errors, alpha.n_unscored, alpha.error_rate) == (2, 1, 1, 0.5)
    beta = by_cell.loc[("beta", "coherence")]
    assert (beta.n, beta.n_errors, beta.n_unscored, beta.error_rate) == (1, 0, 2, 0.0)  # beta/x/2: no verdict
    everything = by_cell.loc[("all", "coherence")]
    assert (everything.n, everything.n_errors) == (3, 1)
    assert rates.group.iloc[-1] == "all"
    matrix = error_rate_wide(rates, value="counts", human_headers=False)
    assert matrix.loc["alpha", "coherence"] == "50.0% (1/2); 1 unscored"
    assert matrix.loc["alpha", "minimality"] == "–; 3 unscored"  # alpha has no minimality verdicts
    assert error_rate_table(pd.DataFrame(columns=list(VERDICT_COLUMNS))).empty


def test_examples_and_identity():
    examples = example_verdicts(_verdicts(), _instances(), label=0, per_criterion=1)
    assert examples["instance_id"].tolist() == ["alpha/x/0", "beta/x/2"]
    assert examples["instruction"].iloc[0] == "Do <b>thing</b> 0."  # raw here; nb.show_table escapes
    assert '"<script>"' in examples["evidence"].iloc[0]
    assert judge_identity(_verdicts()) == {"judge_models": ["gpt-x"], "prompt_ids": ["judge_combined.v1"]}
    assert judge_identity(None) == {"judge_models": [], "prompt_ids": []}
    assert [i.id for i in sample_per_source(_instances(), 2)] == ["alpha/x/0", "alpha/x/1", "beta/x/0", "beta/x/1"]


def test_read_verdicts_round_trip_csv(tmp_path):
    path = write_table(_verdicts(), tmp_path / "v.csv")
    frame = read_verdicts(path)
    assert list(frame.columns) == list(VERDICT_COLUMNS)
    assert frame["evidence"].iloc[0] == [{"check": "c", "value": "<script>"}]
    assert str(frame["label"].dtype) == "Int64" and pd.isna(frame["label"].iloc[2])


def test_model_section_not_configured_says_what_to_set(tmp_path):
    section = model_judge_section(_instances(), None, cache_path=str(tmp_path / "none.sqlite"), environ={})
    assert section.status == "not_configured" and section.verdicts is None
    for name in ("TOOLQUAL_JUDGE_MODEL", "OPENAI_API_KEY", "TOOLQUAL_BASE_URL", "TOOLQUAL_JUDGE_REPLAY",
                 "judge_verdicts_path"):
        assert name in section.message


def test_model_section_from_file_names_the_model_from_the_file(tmp_path):
    path = write_table(_verdicts(), tmp_path / "v.jsonl")
    section = model_judge_section(_instances(), None, judge_verdicts_path=str(path), environ={})
    assert section.status == "verdicts_file"
    assert section.judge_models == ["gpt-x"] and "gpt-x" in section.description
    assert "judge_combined.v1" in section.description


def test_model_section_bundled_run_comes_after_the_environment_and_covers_only_reported_instances(tmp_path):
    path = write_table(_verdicts(), tmp_path / "bundled.csv")
    section = model_judge_section(_instances(), None, bundled_verdicts_path=str(path), environ={},
                                  cache_path=str(tmp_path / "none.sqlite"))
    assert section.status == "bundled_run" and "not labels" in section.description
    assert set(section.verdicts["instance_id"]) <= {i.id for i in _instances()}
    # a report on other data never shows these verdicts
    other = [Instance.model_validate({"id": "mine/x/1", "source": "mine", "instruction": "Hi.", "tools": [],
                                      "calls": None})]
    elsewhere = model_judge_section(other, None, bundled_verdicts_path=str(path), environ={},
                                    cache_path=str(tmp_path / "none.sqlite"))
    assert elsewhere.status == "not_configured" and elsewhere.verdicts is None
    # an explicit file restricted the same way, and it says how many it covers
    some = model_judge_section(_instances()[:2], None, judge_verdicts_path=str(path), environ={})
    assert set(some.verdicts["instance_id"]) <= {i.id for i in _instances()[:2]}
    assert "of the 2 instances of this report" in some.description


def test_model_section_live_then_replay_with_the_double(openai_double, tmp_path):
    openai_double.script = ScriptedJudge()
    instances = [
        Instance.model_validate({"id": f"s{i}/1", "source": f"s{i}", "instruction": f"Book taxi {i}. Then pay it.",
                                 "tools": [], "calls": None})
        for i in range(2)
    ]
    cache = str(tmp_path / "cache.sqlite")
    env = {"TOOLQUAL_JUDGE_MODEL": "double-not-a-model", "TOOLQUAL_BASE_URL": openai_double.base_url}
    live = model_judge_section(instances, None, cache_path=cache, sample_size_per_source=1, environ=env)
    assert live.status == "live" and openai_double.hits == 2
    assert live.judge_models == ["double-not-a-model"] and live.prompt_ids == ["judge_combined.v2"]
    replay = model_judge_section(instances, None, cache_path=cache, sample_size_per_source=1,
                                 environ={**env, "TOOLQUAL_JUDGE_REPLAY": "1"})
    assert replay.status == "replay" and openai_double.hits == 2
    pd.testing.assert_frame_equal(replay.verdicts, live.verdicts)
    # answers are kept per endpoint: a replay naming no endpoint (OpenAI) does not get the double's answers
    elsewhere = model_judge_section(instances, None, cache_path=cache, sample_size_per_source=1,
                                    environ={"TOOLQUAL_JUDGE_MODEL": "double-not-a-model", "TOOLQUAL_JUDGE_REPLAY": "1"})
    assert set(elsewhere.verdicts.loc[elsewhere.verdicts["judge"] == "double-not-a-model", "status"]) == {
        "unscored:not_cached"}


def test_model_section_takes_wire_options_from_the_environment(openai_double, tmp_path):
    """TOOLQUAL_TOKEN_LIMIT_PARAM / TOOLQUAL_NO_TEMPERATURE reach the requests a report sends."""
    openai_double.script = ScriptedJudge()
    instances = [Instance.model_validate({"id": "s/1", "source": "s", "instruction": "Book a taxi. Then pay it.",
                                          "tools": [], "calls": None})]
    env = {"TOOLQUAL_JUDGE_MODEL": "double-not-a-model", "TOOLQUAL_BASE_URL": openai_double.base_url,
           "TOOLQUAL_TOKEN_LIMIT_PARAM": "max_completion_tokens", "TOOLQUAL_NO_TEMPERATURE": "1"}
    section = model_judge_section(instances, None, cache_path=str(tmp_path / "c.sqlite"), environ=env)
    assert section.status == "live" and openai_double.hits == 1
    [body] = openai_double.bodies
    assert "temperature" not in body and "max_tokens" not in body and body["max_completion_tokens"] > 0
    with pytest.raises(ConfigError, match="TOOLQUAL_TOKEN_LIMIT_PARAM"):
        model_judge_section(instances, None, cache_path=str(tmp_path / "c.sqlite"),
                            environ={**env, "TOOLQUAL_TOKEN_LIMIT_PARAM": "max_new_tokens"})


def test_pure_judge_modules_do_not_import_the_model_client():
    code = (
        "import sys\n"
        "import toolqual_utils.judge.summary, toolqual_utils.judge.parse, toolqual_utils.judge.context\n"
        "import toolqual_utils.judge.decide, toolqual_utils.judge.prompts\n"
        "bad = [m for m in ('openai', 'plotly', 'ipywidgets', 'toolqual_utils.llm') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
