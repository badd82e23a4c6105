"""ICE engine end to end through the local OpenAI-compatible test double (a scripted target)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from toolqual_utils.ice.adaptive import AdaptiveConfig
from toolqual_utils.ice.engine import QUERY_COLUMNS, build_requests, run_ice, run_ice_adaptive
from toolqual_utils.ice.score import INSTANCE_COLUMNS, canonical_calls
from toolqual_utils.ice.scripted import demo_sensitive_script
from toolqual_utils.ice.testbed import load_testbed
from toolqual_utils.io import read_table
from toolqual_utils.llm import LLMClient, LLMConfig
from toolqual_utils.schema import ICE_COLUMNS, Instance
from conftest import ROOT

SMALL_BUNDLED = ROOT / "data" / "annotations" / "reference_dev_instances.jsonl"


@pytest.fixture(scope="module")
def testbed():
    return load_testbed()


def _inst(iid, calls, instruction="Weather in Oslo?"):
    return Instance(id=f"t/{iid}", source="t", instruction=instruction, tools=[], calls=calls)


GOOD = _inst("good", [{"name": "get_city_weather", "arguments": {"city": "Oslo"}}])
BAD = _inst("bad", [{"name": "get_city_weather", "arguments": {}}])  # missing argument: a bad teacher
GARBLE = _inst("garble", [{"name": "w", "arguments": {"q": 1}}], instruction="GARBLE this")
FAIL = _inst("fail", [{"name": "w", "arguments": {"q": 1}}], instruction="FAIL always")
NO_GOLD = _inst("nogold", None)


def _client(double, tmp_path=None, **overrides):
    settings = dict(model="scripted-target", base_url=double.base_url, max_retries=0, concurrency=8,
                    cache_path=str(tmp_path / "cache.sqlite") if tmp_path else None)
    settings.update(overrides)
    return LLMClient(LLMConfig(**settings))


def _expected_bad_score(testbed):
    # the bad teacher's target answers "[]": Levenshtein("[]", s) = len(s) - 2, so similarity = 2/len(s)
    values = [2 / len(canonical_calls(list(q.calls), order_free=q.order_free)) if q.calls else 1.0 for q in testbed.queries]
    return sum(values) / len(values)


@pytest.mark.parametrize("call_format", ["json", "react", "tools"])
def test_scores_follow_the_demonstration(openai_double, testbed, call_format):
    openai_double.script = demo_sensitive_script(testbed)
    client = _client(openai_double)
    run = run_ice([GOOD, BAD, GARBLE, FAIL, NO_GOLD], testbed, client, call_format=call_format, progress=False)
    n_queries = len(testbed.queries)
    assert openai_double.hits == 4 * n_queries  # no request for the instance without gold calls
    assert list(run.per_query.columns) == list(QUERY_COLUMNS)
    assert list(run.per_instance.columns)[: len(ICE_COLUMNS)] == list(ICE_COLUMNS)
    assert list(run.per_instance.columns) == list(INSTANCE_COLUMNS)
    table = run.per_instance.set_index("instance_id")
    assert table.loc["t/good", "ice_score"] == 1.0 and table.loc["t/good", "strict_score"] == 1.0
    assert table.loc["t/bad", "ice_score"] == pytest.approx(_expected_bad_score(testbed))
    assert table.loc["t/bad", "strict_score"] == pytest.approx(1 / n_queries)  # only the no-call query
    assert table.loc["t/good", "ice_score"] - table.loc["t/bad", "ice_score"] > 0.8
    assert table.loc["t/garble", ["ice_score", "n_parse_errors", "n_unscored"]].tolist() == [0.0, n_queries, 0]
    assert table.loc["t/fail", "status"] == "unscored:api_error" and table.loc["t/fail", "n_unscored"] == n_queries
    assert table.loc["t/nogold", "status"] == "unscored:no_gold_calls"
    assert run.summary["n_parse_errors"] == n_queries and run.summary["n_unscored"] == 2 * n_queries
    # the request really carried the format: tools only in tools mode, demo first, query last
    body = openai_double.bodies[0]
    assert ("tools" in body) == (call_format == "tools")
    assert body["temperature"] == 0.0 and body["messages"][-1]["role"] == "user"


def test_resume_from_cache_sends_nothing_new(openai_double, testbed, tmp_path):
    openai_double.script = demo_sensitive_script(testbed)
    first = run_ice([GOOD, BAD], testbed, _client(openai_double, tmp_path), progress=False)
    hits_after_first = openai_double.hits
    assert hits_after_first == 2 * len(testbed.queries)
    second_client = _client(openai_double, tmp_path)
    second = run_ice([GOOD, BAD], testbed, second_client, progress=False)
    assert openai_double.hits == hits_after_first  # zero new requests on the double
    assert second.per_query["cached"].all()
    assert second.per_instance["ice_score"].tolist() == first.per_instance["ice_score"].tolist()
    assert second_client.ledger.totals()["n_cache_hits"] == 2 * len(testbed.queries)


def test_batch_export_import_round_trip(openai_double, testbed, tmp_path):
    script = demo_sensitive_script(testbed)
    client = _client(openai_double, tmp_path, mode="replay")
    prompts, requests = build_requests([GOOD, BAD], testbed)
    files = client.export_batch(requests, tmp_path / "batch.jsonl")
    results_path = tmp_path / "results.jsonl"
    with results_path.open("w") as out:  # play the Batch API: answer each line with the scripted target
        for line in files[0].read_text().splitlines():
            request = json.loads(line)
            reply = script(request["body"])
            body = {"choices": [{"message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
            out.write(json.dumps({"custom_id": request["custom_id"], "response": {"status_code": 200, "body": body}}) + "\n")
    from toolqual_utils.ice.engine import assemble

    run = assemble([GOOD, BAD], testbed, prompts, client.import_batch([results_path], requests), client)
    assert openai_double.hits == 0
    table = run.per_instance.set_index("instance_id")
    assert table.loc["t/good", "ice_score"] == 1.0
    assert table.loc["t/bad", "ice_score"] == pytest.approx(_expected_bad_score(testbed))


def test_adaptive_engine_stops_early_for_clear_cases(openai_double, testbed):
    openai_double.script = demo_sensitive_script(testbed)
    goods = [_inst(f"good{i}", [{"name": "f", "arguments": {"x": i}}], f"Do f with {i}") for i in range(4)]
    bads = [_inst(f"bad{i}", [{"name": "f", "arguments": {}}], f"Do f for case {i}") for i in range(8)]
    run = run_ice_adaptive(goods + bads + [NO_GOLD], testbed, _client(openai_double),
                           AdaptiveConfig(goal="top", k=4, min_queries=2))
    assert run.adaptive is not None
    assert set(run.adaptive.selected) == {g.id for g in goods}
    assert openai_double.hits == run.adaptive.n_generations < 12 * len(testbed.queries)
    assert run.summary["saved_fraction"] > 0.5
    table = run.per_instance.set_index("instance_id")
    assert table.loc[[g.id for g in goods], "selected"].all() and not table.loc["t/nogold", "selected"]


def test_cli_end_to_end_writes_both_tables(openai_double, testbed, tmp_path):
    openai_double.script = demo_sensitive_script(testbed)
    small = tmp_path / "small.jsonl"
    small.write_text("".join(SMALL_BUNDLED.read_text().splitlines(keepends=True)[:4]))
    out = tmp_path / "x.csv"
    env = {**os.environ, "OPENAI_API_KEY": "test-key-not-a-secret"}
    command = [sys.executable, "-m", "toolqual_utils.cli", "ice", str(small), "--model", "M",
               "--base-url", openai_double.base_url, "--out", str(out), "--cache", str(tmp_path / "c.sqlite")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    per_instance = read_table(out)
    per_query = read_table(tmp_path / "x.queries.csv")
    assert len(per_instance) == 4 and len(per_query) == 4 * len(testbed.queries)
    assert list(per_instance.columns)[: len(ICE_COLUMNS)] == list(ICE_COLUMNS)
    assert per_instance["ice_score"].between(0, 1).all() and "mean ICE" in done.stdout
    hits = openai_double.hits
    plan = subprocess.run(command + ["--plan"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert plan.returncode == 0 and f"{4 * len(testbed.queries)} already in the cache, 0 to send" in plan.stdout
    assert openai_double.hits == hits


def test_cli_bad_testbed_is_one_paragraph(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(SMALL_BUNDLED.read_text().splitlines()[0] + "\n")
    done = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "ice", str(data), "--model", "M",
                           "--testbed", str(tmp_path), "--out", str(tmp_path / "o.csv")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "manifest.json" in done.stderr


def test_cli_names_the_missing_key_variable_before_sending(openai_double, tmp_path):
    """A remote endpoint and no key in --api-key-env: one paragraph naming the variable; nothing sent."""
    data = tmp_path / "d.jsonl"
    data.write_text(SMALL_BUNDLED.read_text().splitlines()[0] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "TOOLQUAL"))}
    done = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "ice", str(data), "--model", "M",
                           "--base-url", "https://api.example.invalid/v1", "--api-key-env", "MY_TEAM_KEY",
                           "--timeout", "5", "--out", str(tmp_path / "o.csv"), "--cache", "none"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "MY_TEAM_KEY is not set" in done.stderr and "--replay" in done.stderr
    assert not (tmp_path / "o.csv").exists()


def test_cli_endpoint_options_are_checked_before_any_work(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(SMALL_BUNDLED.read_text().splitlines()[0] + "\n")
    for extra, message in [(["--timeout", "0"], "--timeout must be positive"),
                           (["--max-tokens", "0"], "--max-tokens must be at least 1"),
                           (["--price-in", "1"], "give both --price-in and --price-out")]:
        done = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "ice", str(data), "--model", "M",
                               "--out", str(tmp_path / "o.csv"), *extra], capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_cli_adaptive_with_an_indifference_zone(openai_double, testbed, tmp_path):
    openai_double.script = demo_sensitive_script(testbed)
    small = tmp_path / "small.jsonl"
    small.write_text("".join(SMALL_BUNDLED.read_text().splitlines(keepends=True)[:6]))
    env = {**os.environ, "OPENAI_API_KEY": "test-key-not-a-secret"}
    command = [sys.executable, "-m", "toolqual_utils.cli", "ice", str(small), "--model", "M",
               "--base-url", openai_double.base_url, "--out", str(tmp_path / "a.csv"), "--cache", "none",
               "--adaptive", "--k", "2", "--epsilon", "0.05"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pooled_normal bound, epsilon 0.05" in done.stdout
    table = read_table(tmp_path / "a.csv")
    assert table["selected"].sum() == 2 and openai_double.hits <= 6 * len(testbed.queries)
    bad = subprocess.run(command[:-1] + ["1.5"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode != 0 and "epsilon must be in [0, 1)" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("adaptive", [False, True])
def test_cli_rerun_from_the_cache_needs_no_key_even_for_a_remote_endpoint(openai_double, testbed, tmp_path, adaptive):
    """Answers are cached per endpoint name: two URLs given one --cache-endpoint name (replicas of one model)
    share them, so a finished run replays against the other URL without a key."""
    openai_double.script = demo_sensitive_script(testbed)
    small = tmp_path / "small.jsonl"
    small.write_text("".join(SMALL_BUNDLED.read_text().splitlines(keepends=True)[:4]))
    extra = ["--adaptive", "--k", "2"] if adaptive else []
    common = [sys.executable, "-m", "toolqual_utils.cli", "ice", str(small), "--model", "M",
              "--out", str(tmp_path / "x.csv"), "--cache", str(tmp_path / "c.sqlite"), "--cache-endpoint", "prod-m",
              *extra]
    first = subprocess.run(common + ["--base-url", openai_double.base_url], capture_output=True, text=True,
                           env={**os.environ, "OPENAI_API_KEY": "test-key-not-a-secret"}, cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    hits = openai_double.hits
    no_key = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "TOOLQUAL"))}
    again = subprocess.run(common + ["--base-url", "https://api.example.invalid/v1"], capture_output=True,
                           text=True, env=no_key, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert openai_double.hits == hits and "sent 0" in again.stdout


def test_cli_plan_needs_no_out_and_matches_the_notebook_estimate(testbed, tmp_path):
    """`ice --plan` and notebook 04's plan table are the same estimator: same instances, same cost."""
    from toolqual_utils.ice import views
    from toolqual_utils.io import read_instances

    small = tmp_path / "small.jsonl"
    small.write_text("".join(SMALL_BUNDLED.read_text().splitlines(keepends=True)[:20]))
    done = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "ice", str(small), "--model", "gpt-4o-mini",
                           "--plan", "--price-in", "0.15", "--price-out", "0.6", "--cache", "none"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    table = views.cost_plan_table({"small.jsonl": read_instances(small)}, testbed, model="gpt-4o-mini",
                                  price_per_1m_input=0.15, price_per_1m_output=0.6)
    total = table.set_index("file").loc["total"]
    assert f"~{int(total['est_prompt_tokens']):,} prompt + ~{int(total['est_completion_tokens']):,} completion" in done.stdout
    assert f"cost ${total['est_cost_usd']:,.4f}" in done.stdout
    missing_out = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "ice", str(small), "--model", "m"],
                                 capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert missing_out.returncode == 2 and "--out FILE is needed" in missing_out.stderr


@pytest.mark.parametrize("call_format", ["json", "react"])
def test_completions_api_scores_like_chat(openai_double, testbed, call_format):
    openai_double.script = demo_sensitive_script(testbed)
    run = run_ice([GOOD, BAD, GARBLE, NO_GOLD], testbed, _client(openai_double), call_format=call_format,
                  progress=False, api="completions")
    n_queries = len(testbed.queries)
    assert openai_double.paths == ["/v1/completions"] * (3 * n_queries)
    body = openai_double.bodies[0]
    assert "messages" not in body and body["stop"] == ["\n###"] and body["prompt"].endswith("### Answer\n")
    assert body["prompt"].count("### Request\n") == 2  # the demonstration, then the test query
    table = run.per_instance.set_index("instance_id")
    assert table.loc["t/good", "ice_score"] == 1.0 and table.loc["t/good", "strict_score"] == 1.0
    assert table.loc["t/bad", "ice_score"] == pytest.approx(_expected_bad_score(testbed))
    assert table.loc["t/garble", "n_parse_errors"] == n_queries
    assert table.loc["t/nogold", "status"] == "unscored:no_gold_calls"
    assert set(run.per_query["prompt_id"]) == {f"ice_completion_{call_format}.v1"}


def test_completions_api_refuses_the_tools_format(testbed):
    with pytest.raises(ValueError, match="needs the chat API"):
        build_requests([GOOD], testbed, "tools", api="completions")


def test_cli_ice_completions_against_the_double(openai_double, testbed, tmp_path):
    openai_double.script = demo_sensitive_script(testbed)
    small = tmp_path / "small.jsonl"
    small.write_text("".join(SMALL_BUNDLED.read_text().splitlines(keepends=True)[:2]))
    out = tmp_path / "base.csv"
    env = {**os.environ, "OPENAI_API_KEY": "test-key-not-a-secret"}
    command = [sys.executable, "-m", "toolqual_utils.cli", "ice", str(small), "--model", "base-llama",
               "--base-url", openai_double.base_url, "--api", "completions", "--format", "react",
               "--out", str(out), "--cache", str(tmp_path / "c.sqlite")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "react format, completions API" in done.stdout
    assert set(openai_double.paths) == {"/v1/completions"} and openai_double.hits == 2 * len(testbed.queries)
    per_query = read_table(tmp_path / "base.queries.csv")
    assert set(per_query["prompt_id"]) == {"ice_completion_react.v1"} and per_query["status"].eq("ok").any()
    refused = subprocess.run(command[:-4] + ["--format", "tools", "--out", str(out)], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=120)
    assert refused.returncode != 0 and "needs the chat API" in refused.stderr and "Traceback" not in refused.stderr
