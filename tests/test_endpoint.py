"""One endpoint resolver (llm.endpoint_from_env) for the CLI, the notebooks and the views; the judge
command runs the judge engine instead of re-implementing it. Runs against the test double only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolqual_utils.errors import ConfigError
from toolqual_utils.ice.views import live_endpoint_from_env
from toolqual_utils.judge.report import environment_mode
from toolqual_utils.llm import LLMClient, LLMConfig, endpoint_from_env

KEY = "sk-test-not-a-secret-987654"
REMOTE = "https://models.example.org/v1"
LOCAL = "http://127.0.0.1:8000/v1"


def test_base_url_order_and_what_can_be_sent():
    assert endpoint_from_env(environ={}).base_url is None  # OpenAI itself
    env = {"OPENAI_BASE_URL": REMOTE}
    assert endpoint_from_env(environ=env).base_url == REMOTE
    env["TOOLQUAL_BASE_URL"] = LOCAL
    assert endpoint_from_env(environ=env).base_url == LOCAL
    assert endpoint_from_env(environ=env, base_url="http://localhost:9/v1").base_url == "http://localhost:9/v1"
    # a remote endpoint needs a key; a local one does not; a key makes any endpoint usable
    assert not endpoint_from_env(environ={"TOOLQUAL_BASE_URL": REMOTE}).can_send
    assert endpoint_from_env(environ={"TOOLQUAL_BASE_URL": LOCAL}).can_send
    assert endpoint_from_env(environ={"TOOLQUAL_BASE_URL": REMOTE, "OPENAI_API_KEY": KEY}).can_send
    assert endpoint_from_env(environ={"MY_KEY": KEY}, api_key_env="MY_KEY").can_send
    assert not endpoint_from_env(environ={"OPENAI_API_KEY": KEY}, api_key_env="MY_KEY").can_send


def test_roles_models_replay_and_wire_options_never_the_key():
    env = {"TOOLQUAL_JUDGE_MODEL": "judge-m", "TOOLQUAL_ICE_MODEL": "ice-m", "TOOLQUAL_JUDGE_REPLAY": "1",
           "OPENAI_API_KEY": KEY, "TOOLQUAL_TOKEN_LIMIT_PARAM": "max_completion_tokens",
           "TOOLQUAL_NO_TEMPERATURE": "yes"}
    judge = endpoint_from_env("judge", env)
    assert (judge.model, judge.replay, judge.key_set) == ("judge-m", True, True)
    assert endpoint_from_env("ice", env).model == "ice-m" and not endpoint_from_env("ice", env).replay
    assert endpoint_from_env("judge", env, model="given").model == "given"
    config = judge.config(cache_path=None)
    assert isinstance(config, LLMConfig) and config.mode == "replay"
    assert config.token_limit_param == "max_completion_tokens" and config.send_temperature is False
    assert KEY not in json.dumps(judge.config_kwargs()) and KEY not in repr(judge)
    with pytest.raises(ConfigError, match="unknown endpoint role"):
        endpoint_from_env("teacher", env)
    with pytest.raises(ConfigError, match="TOOLQUAL_JUDGE_MODEL"):
        endpoint_from_env("judge", {}).config()


def test_the_client_resolves_its_base_url_the_same_way(monkeypatch):
    monkeypatch.delenv("TOOLQUAL_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", REMOTE)
    assert LLMClient(LLMConfig(model="m", cache_path=None)).base_url == REMOTE
    monkeypatch.setenv("TOOLQUAL_BASE_URL", LOCAL)
    assert LLMClient(LLMConfig(model="m", cache_path=None)).base_url == LOCAL
    assert LLMClient(LLMConfig(model="m", base_url=REMOTE, cache_path=None)).base_url == REMOTE


def test_ice_view_honours_openai_base_url_and_needs_a_key_for_a_remote_endpoint(monkeypatch):
    for name in ("TOOLQUAL_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "TOOLQUAL_TOKEN_LIMIT_PARAM",
                 "TOOLQUAL_NO_TEMPERATURE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOOLQUAL_ICE_MODEL", "target-model")
    monkeypatch.setenv("TOOLQUAL_BASE_URL", REMOTE)
    assert live_endpoint_from_env() is None  # a remote base URL is not keyless (it used to be treated so)
    monkeypatch.delenv("TOOLQUAL_BASE_URL")
    monkeypatch.setenv("OPENAI_BASE_URL", LOCAL)
    endpoint = live_endpoint_from_env()  # OPENAI_BASE_URL was ignored before
    assert endpoint is not None and endpoint["base_url"] == LOCAL


def test_report_and_ice_view_agree_with_the_resolver(tmp_path):
    cache = str(tmp_path / "none.sqlite")
    assert environment_mode({"TOOLQUAL_JUDGE_MODEL": "m", "OPENAI_BASE_URL": LOCAL}, cache) == ("live", "m")
    assert environment_mode({"TOOLQUAL_JUDGE_MODEL": "m", "TOOLQUAL_BASE_URL": REMOTE}, cache) == \
        ("not_configured", "m")
    Path(cache).write_bytes(b"")
    assert environment_mode({"TOOLQUAL_JUDGE_MODEL": "m", "TOOLQUAL_BASE_URL": REMOTE}, cache) == ("replay", "m")


def test_judge_command_runs_the_engine(openai_double, tmp_path, monkeypatch, capsys):
    """`toolqual judge` runs the engine (judge.engine.judge_stream for live and replay runs, judge_from_batch
    for imports) instead of re-implementing the request/verdict loop; the verdicts it writes are the engine's."""
    from toolqual_utils.cli import main
    from toolqual_utils.io import read_table
    from toolqual_utils.judge import engine
    from toolqual_utils.judge.scripted import ScriptedJudge

    openai_double.script = ScriptedJudge()
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({
        "id": "e/t/1", "source": "e", "instruction": "Weather in Oslo. Then a hotel there.", "tools": [],
        "calls": None}) + "\n", encoding="utf-8")
    calls = []
    real_judge = engine.judge_stream

    def spy(*args, **kwargs):
        run = real_judge(*args, **kwargs)
        calls.append(run.plan)
        return run

    monkeypatch.setattr(engine, "judge_stream", spy)
    out = tmp_path / "v.csv"
    assert main(["judge", str(data), "--model", "double-not-a-model", "--base-url", openai_double.base_url,
                 "--cache", "none", "--out", str(out), "--quiet"]) == 0
    assert len(calls) == 1 and calls[0].instance_ids == ["e/t/1"]  # one engine run, which planned the instance
    verdicts = read_table(out)
    assert set(verdicts["criterion"]) == {"specificity", "coherence", "solvability", "parameter_alignment",
                                         "sufficiency", "minimality"}
    assert "decided by:" in capsys.readouterr().out
