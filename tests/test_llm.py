"""The LLM client, driven over real HTTP against the OpenAI-compatible test double."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from toolqual_utils.errors import ConfigError, InputError
from toolqual_utils.llm import (
    ChatRequest,
    CostPlan,
    LLMClient,
    LLMConfig,
    cache_key,
    request_body,
)
from toolqual_utils.testing import OpenAIDouble, Reply
from conftest import ROOT, closed_port_url



def make_requests(n: int, prompt_id: str = "test.v1", **kwargs) -> list[ChatRequest]:
    return [
        ChatRequest(f"r{i}", ({"role": "user", "content": f"question {i}"},), prompt_id, **kwargs) for i in range(n)
    ]


def make_client(double: OpenAIDouble, tmp_path: Path, **overrides) -> LLMClient:
    settings = dict(
        model="judge-model",
        base_url=double.base_url,
        concurrency=8,
        max_retries=2,
        timeout_s=10.0,
        cache_path=str(tmp_path / "cache.sqlite"),
    )
    settings.update(overrides)
    return LLMClient(LLMConfig(**settings))




# ---------------------------------------------------------------------------------------------- happy path
def test_text_answer_and_exact_request_body(openai_double, tmp_path):
    openai_double.script = Reply(content="Yes.", prompt_tokens=12, completion_tokens=3)
    client = make_client(openai_double, tmp_path)
    request = ChatRequest(
        "a",
        ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is it?"}),
        "demo.v1",
        temperature=0.3,
        max_tokens=40,
    )
    [result] = client.complete([request], progress=False)
    assert result.status == "ok" and result.text == "Yes." and result.tool_calls is None
    assert (result.prompt_tokens, result.completion_tokens, result.cached) == (12, 3, False)
    assert result.error is None and result.finish_reason == "stop"
    [body] = openai_double.bodies
    assert body["model"] == "judge-model"
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is it?"}]
    assert body["temperature"] == 0.3 and body["max_tokens"] == 40
    assert "tools" not in body and "response_format" not in body
    assert openai_double.request_headers[0]["authorization"] == "Bearer test-key-not-a-secret"


def test_tool_calls_and_tools_sent(openai_double, tmp_path):
    openai_double.script = Reply(
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "noop", "arguments": "{bad"}],
        finish_reason="tool_calls",
    )
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    client = make_client(openai_double, tmp_path)
    [result] = client.complete(
        [ChatRequest("t", ({"role": "user", "content": "Weather in Oslo?"},), "ice.v1", tools=(tool,))],
        progress=False,
    )
    assert result.status == "ok" and result.text is None
    assert result.tool_calls == [
        {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"name": "noop", "arguments": "{bad"},
    ]
    assert openai_double.bodies[0]["tools"] == [tool]


def test_json_schema_response_format(openai_double, tmp_path):
    openai_double.script = Reply(content='{"label": 1}')
    schema = {"type": "object", "properties": {"label": {"type": "integer"}}, "required": ["label"]}
    strict = {"name": "verdict", "schema": schema, "strict": True}
    client = make_client(openai_double, tmp_path)
    requests = [
        ChatRequest("bare", ({"role": "user", "content": "x"},), "judge_combined.v1", response_schema=schema),
        ChatRequest("wrapped", ({"role": "user", "content": "y"},), "judge_combined.v1", response_schema=strict),
    ]
    results = client.complete(requests, progress=False)
    assert [r.text for r in results] == ['{"label": 1}', '{"label": 1}']
    by_content = {b["messages"][0]["content"]: b for b in openai_double.bodies}
    assert by_content["x"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "judge_combined_v1", "schema": schema, "strict": False},
    }
    assert by_content["y"]["response_format"] == {"type": "json_schema", "json_schema": strict}


def test_results_in_request_order_and_concurrency_bounded(openai_double, tmp_path):
    openai_double.script = lambda body: Reply(content=body["messages"][0]["content"].upper(), delay_s=0.05)
    client = make_client(openai_double, tmp_path, concurrency=4)
    results = client.complete(make_requests(24), progress=False)
    assert [r.custom_id for r in results] == [f"r{i}" for i in range(24)]
    assert [r.text for r in results] == [f"QUESTION {i}" for i in range(24)]
    assert openai_double.max_in_flight == 4


def test_identical_requests_in_one_call_are_sent_once(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)
    message = ({"role": "user", "content": "same"},)
    results = client.complete([ChatRequest("a", message, "p.v1"), ChatRequest("b", message, "p.v1")], progress=False)
    assert openai_double.hits == 1
    assert [r.custom_id for r in results] == ["a", "b"] and all(r.status == "ok" for r in results)


@pytest.mark.parametrize("cache", ["file", "none"])
def test_identical_requests_are_counted_as_shared_not_as_cache_hits(openai_double, tmp_path, cache, capsys):
    """A request identical to another of the same run takes its answer: the ledger counts it as shared, not
    as a cache hit (with no cache at all it used to say "from the cache"), and the plan says so beforehand.
    A rerun is served by the cache: cache hits, nothing shared."""
    client = make_client(openai_double, tmp_path, cache_path=str(tmp_path / "c.sqlite") if cache == "file" else None)
    same = ({"role": "user", "content": "same"},)
    requests = [ChatRequest(i, same, "p.v1") for i in "abc"] + [ChatRequest("d", ({"role": "user", "content": "x"},),
                                                                            "p.v1")]
    plan = client.plan(requests)
    assert (plan.n_requests, plan.n_cached, plan.n_shared, plan.n_to_send) == (4, 0, 2, 2)
    from toolqual_utils.commands._endpoint import print_plan

    print_plan(plan, 4)
    assert "0 already in the cache, 2 identical to another request (answered once), 2 to send" in capsys.readouterr().out
    results = client.complete(requests, progress=False)
    assert openai_double.hits == 2
    assert [r.shared for r in results] == [False, True, True, False] and all(r.ok for r in results)
    totals = client.ledger.totals()
    assert (totals["n_requests"], totals["n_cache_hits"], totals["n_cache_misses"], totals["n_shared"],
            totals["n_sent"]) == (4, 0, 2, 2, 2)
    assert list(client.ledger.to_frame().columns) == client.ledger.COLUMNS
    if cache == "file":
        again = make_client(openai_double, tmp_path, cache_path=str(tmp_path / "c.sqlite"))
        rerun = again.complete(requests, progress=False)
        assert openai_double.hits == 2 and all(r.cached and not r.shared for r in rerun)
        assert (again.ledger.totals()["n_cache_hits"], again.ledger.totals()["n_shared"]) == (4, 0)


# ---------------------------------------------------------------------------------------------- failures
def test_429_retry_after_is_honoured(openai_double, tmp_path):
    openai_double.script = [Reply(status=429, headers={"Retry-After": "1"}), Reply(content="after wait")]
    client = make_client(openai_double, tmp_path, max_retries=2)
    start = time.perf_counter()
    [result] = client.complete(make_requests(1), progress=False)
    elapsed = time.perf_counter() - start
    assert result.status == "ok" and result.text == "after wait"
    assert openai_double.hits == 2
    # The SDK's own first backoff is at most 0.5 s; waiting >= 1 s means Retry-After (seconds) was used.
    assert elapsed >= 0.95


def test_500_then_success(openai_double, tmp_path):
    openai_double.script = [Reply(status=500), Reply(content="fine")]
    client = make_client(openai_double, tmp_path, max_retries=2)
    [result] = client.complete(make_requests(1), progress=False)
    assert result.status == "ok" and result.text == "fine" and openai_double.hits == 2


def test_persistent_error_after_retries_is_api_error_and_not_cached(openai_double, tmp_path):
    openai_double.script = Reply(status=400, content="bad request: unknown field")
    client = make_client(openai_double, tmp_path, max_retries=3)
    [result] = client.complete(make_requests(1), progress=False)
    assert result.status == "unscored:api_error"
    assert result.text is None and "400" in result.error and "unknown field" in result.error
    assert openai_double.hits == 1  # 400 is not retried
    client.complete(make_requests(1), progress=False)
    assert openai_double.hits == 2  # errors are never cached


def test_timeout_becomes_api_error(openai_double, tmp_path):
    openai_double.script = Reply(content="too late", delay_s=3.0)
    client = make_client(openai_double, tmp_path, timeout_s=0.3, max_retries=1)
    start = time.perf_counter()
    [result] = client.complete(make_requests(1), progress=False)
    assert result.status == "unscored:api_error" and "timed out" in result.error
    assert openai_double.hits == 2  # first try + one retry
    assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize("status", [200, 502])
def test_malformed_json_body(openai_double, tmp_path, status):
    openai_double.script = Reply(raw_body=b'{"choices": [ this is not json', status=status)
    client = make_client(openai_double, tmp_path, max_retries=1)
    [result] = client.complete(make_requests(1), progress=False)
    assert result.status == "unscored:api_error" and result.error
    # A 200 with a broken body is not retried (the SDK saw success); a 502 is retried once.
    assert openai_double.hits == (1 if status == 200 else 2)
    assert client.ledger.totals()["n_unscored"] == 1


def test_connection_refused_is_api_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-a-secret")
    client = LLMClient(
        LLMConfig(model="m", base_url=closed_port_url(), max_retries=0, cache_path=str(tmp_path / "c.sqlite"))
    )
    [result] = client.complete(make_requests(1), progress=False)
    assert result.status == "unscored:api_error" and "connection error" in result.error


def test_refusal_is_unscored_and_not_cached(openai_double, tmp_path):
    openai_double.script = Reply(content=None, refusal="I can't help with that.")
    client = make_client(openai_double, tmp_path)
    [result] = client.complete(make_requests(1), progress=False)
    assert result.status == "unscored:refusal" and "can't help" in result.error
    client.complete(make_requests(1), progress=False)
    assert openai_double.hits == 2
    assert len(client.cache) == 0


def test_content_filter_is_refusal(openai_double, tmp_path):
    openai_double.script = Reply(content="", finish_reason="content_filter")
    [result] = make_client(openai_double, tmp_path).complete(make_requests(1), progress=False)
    assert result.status == "unscored:refusal"


def test_length_is_truncated_and_not_cached(openai_double, tmp_path):
    openai_double.script = Reply(content='{"label": ', finish_reason="length")
    client = make_client(openai_double, tmp_path)
    [result] = client.complete(make_requests(1, max_tokens=3), progress=False)
    assert result.status == "unscored:truncated" and result.text == '{"label": ' and "length" in result.error
    client.complete(make_requests(1, max_tokens=3), progress=False)
    assert openai_double.hits == 2 and len(client.cache) == 0


# ---------------------------------------------------------------------------------------------- cache & modes
def test_second_run_is_served_from_cache(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)
    first = client.complete(make_requests(10), progress=False)
    assert openai_double.hits == 10 and not any(r.cached for r in first)
    openai_double.reset()
    # A new client on the same file, other timeouts/concurrency/base URL: same keys.
    again = make_client(openai_double, tmp_path, concurrency=2, timeout_s=99.0)
    second = again.complete(make_requests(10), progress=False)
    assert openai_double.hits == 0
    assert all(r.cached and r.status == "ok" for r in second)
    assert [r.text for r in second] == [r.text for r in first]


def test_cache_key_covers_what_changes_the_answer():
    base = ChatRequest("a", ({"role": "user", "content": "q"},), "p.v1")
    key = cache_key("m", base)
    assert cache_key("m", ChatRequest("other-id", base.messages, "p.v1")) == key  # custom_id is not content
    variants = [
        ("m2", base),
        ("m", ChatRequest("a", ({"role": "user", "content": "q2"},), "p.v1")),
        ("m", ChatRequest("a", base.messages, "p.v2")),
        ("m", ChatRequest("a", base.messages, "p.v1", temperature=0.7)),
        ("m", ChatRequest("a", base.messages, "p.v1", max_tokens=10)),
        ("m", ChatRequest("a", base.messages, "p.v1", response_schema={"type": "object"})),
        ("m", ChatRequest("a", base.messages, "p.v1", tools=({"type": "function", "function": {"name": "f"}},))),
        ("m", ChatRequest("a", base.messages, "p.v1", sample_index=1)),
    ]
    keys = {cache_key(model, request) for model, request in variants}
    assert key not in keys and len(keys) == len(variants)


def test_replay_mode_is_offline(openai_double, tmp_path, monkeypatch):
    live = make_client(openai_double, tmp_path)
    live.complete(make_requests(3), progress=False)
    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key
    openai_double.stop()  # and no server
    replay = LLMClient(
        LLMConfig(model="judge-model", base_url=openai_double.base_url, mode="replay",
                  cache_path=str(tmp_path / "cache.sqlite"))
    )
    results = replay.complete(make_requests(5), progress=False)
    assert [r.status for r in results] == ["ok"] * 3 + ["unscored:not_cached"] * 2
    assert all(r.cached for r in results[:3]) and results[3].text is None
    assert openai_double.hits == 3
    totals = replay.ledger.totals()
    assert (totals["n_requests"], totals["n_cache_hits"], totals["n_cache_misses"], totals["n_sent"]) == (5, 3, 2, 0)


def test_no_cache_when_cache_path_is_none(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path, cache_path=None)
    client.complete(make_requests(2), progress=False)
    client.complete(make_requests(2), progress=False)
    assert openai_double.hits == 4 and client.cache is None


def test_killed_run_resumes_without_paying_twice(openai_double, tmp_path):
    n = 40
    cache_file = tmp_path / "resume.sqlite"
    openai_double.script = Reply(content="answer", delay_s=0.15)
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from toolqual_utils.llm import ChatRequest, LLMClient, LLMConfig
            config = LLMConfig(model="judge-model", base_url=sys.argv[1], concurrency=4, max_retries=0,
                               cache_path={str(cache_file)!r})
            requests = [ChatRequest(f"r{{i}}", ({{"role": "user", "content": f"question {{i}}"}},), "test.v1")
                        for i in range({n})]
            results = LLMClient(config).complete(requests, progress=False)
            print(sum(r.status == "ok" for r in results))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), openai_double.base_url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    n_cached_at_kill = 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if cache_file.exists():
                try:
                    with sqlite3.connect(cache_file, timeout=5) as conn:
                        n_cached_at_kill = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                except sqlite3.OperationalError:  # table not created yet
                    pass
            if n_cached_at_kill >= 8:
                break
            time.sleep(0.03)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode != 0, "the run finished before it could be killed midway"
    with sqlite3.connect(cache_file) as conn:
        cached_ids = {row[0] for row in conn.execute("SELECT custom_id FROM responses")}
    assert 8 <= len(cached_ids) < n
    first_hits = openai_double.hits
    assert first_hits - len(cached_ids) <= 4  # at most the in-flight requests were lost

    openai_double.reset()
    resumed = subprocess.run(
        [sys.executable, str(script), openai_double.base_url], env=env, capture_output=True, text=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == str(n)  # all N ok
    resent = {body["messages"][0]["content"].replace("question ", "r") for body in openai_double.bodies}
    assert not resent & cached_ids  # no answered (cached) request was paid twice
    assert openai_double.hits == n - len(cached_ids)  # cached + resent answers == N


# ---------------------------------------------------------------------------------------------- ledger & plan
def test_ledger_counts_and_cost(openai_double, tmp_path):
    openai_double.script = Reply(content="ok", prompt_tokens=100, completion_tokens=20)
    client = make_client(openai_double, tmp_path, prices={"judge-model": (2.0, 8.0)})
    client.complete(make_requests(3), progress=False)
    openai_double.script = Reply(content="cut", finish_reason="length", prompt_tokens=100, completion_tokens=20)
    client.complete(make_requests(4), progress=False)  # 3 cache hits + 1 truncated (paid, not cached)
    frame = client.ledger.to_frame()
    assert list(frame.columns) == client.ledger.COLUMNS and len(frame) == 1
    row = frame.iloc[0]
    assert (row.n_requests, row.n_cache_hits, row.n_cache_misses, row.n_sent) == (7, 3, 4, 4)
    assert (row.n_ok, row.n_unscored) == (6, 1)
    assert (row.prompt_tokens, row.completion_tokens) == (400, 80)
    assert row.cost_usd == pytest.approx((400 * 2.0 + 80 * 8.0) / 1e6)
    assert client.ledger.cost_usd() == pytest.approx(row.cost_usd)


def test_ledger_empty_and_unknown_price(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)
    assert client.ledger.to_frame().empty and list(client.ledger.to_frame().columns) == client.ledger.COLUMNS
    client.complete(make_requests(1), progress=False)
    assert client.ledger.cost_usd() is None


def test_plan(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path, prices={"judge-model": (1.0, 4.0)})
    client.complete(make_requests(2), progress=False)
    requests = make_requests(5) + [ChatRequest("short", ({"role": "user", "content": "x"},), "test.v1", max_tokens=16)]
    plan = client.plan(requests, expected_output_tokens=100)
    assert isinstance(plan, CostPlan)
    assert (plan.n_requests, plan.n_cached, plan.n_to_send) == (6, 2, 4)
    chars = sum(len(json.dumps({"messages": list(r.messages)})) for r in requests[2:])
    assert plan.est_prompt_tokens == round(chars / 4)
    assert plan.est_completion_tokens == 3 * 100 + 16
    assert plan.est_cost_usd == pytest.approx((plan.est_prompt_tokens * 1.0 + plan.est_completion_tokens * 4.0) / 1e6)
    assert openai_double.hits == 2  # planning sends nothing
    assert make_client(openai_double, tmp_path, model="unpriced").plan(requests).est_cost_usd is None
    assert client.plan([]) == CostPlan("judge-model", 0, 0, 0, 0, 0, 0.0)


# ---------------------------------------------------------------------------------------------- batch files
def test_export_batch_splits_and_skips_cached(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)
    client.complete(make_requests(1), progress=False)  # r0 is cached
    requests = make_requests(6, max_tokens=50)
    requests[0] = make_requests(1)[0]
    paths = client.export_batch(requests, tmp_path / "out" / "batch.jsonl", max_per_file=2)
    assert [p.name for p in paths] == ["batch-000.jsonl", "batch-001.jsonl", "batch-002.jsonl"]
    lines = [json.loads(line) for p in paths for line in p.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["r1", "r2", "r3", "r4", "r5"]
    assert lines[0] == {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": request_body("judge-model", requests[1]),
    }
    assert lines[0]["body"] == {
        "model": "judge-model",
        "messages": [{"role": "user", "content": "question 1"}],
        "temperature": 0.0,
        "max_tokens": 50,
    }
    single = client.export_batch(requests, tmp_path / "all.jsonl", include_cached=True)
    assert single == [tmp_path / "all.jsonl"] and len(single[0].read_text().splitlines()) == 6
    assert client.export_batch(make_requests(1), tmp_path / "none.jsonl") == []
    assert not (tmp_path / "none.jsonl").exists()
    with pytest.raises(InputError, match="custom_id"):
        client.export_batch(make_requests(2) + make_requests(1), tmp_path / "dup.jsonl")


def test_export_batch_body_matches_live_body(openai_double, tmp_path):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    request = ChatRequest("s", ({"role": "user", "content": "z"},), "judge.v1", response_schema=schema)
    client = make_client(openai_double, tmp_path, cache_path=None)
    [path] = client.export_batch([request], tmp_path / "b.jsonl")
    client.complete([request], progress=False)
    assert json.loads(path.read_text())["body"] == openai_double.bodies[0]


def test_import_batch_then_replay(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path, prices={"judge-model": (1.0, 1.0)})
    requests = make_requests(5)
    ok_body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "judge-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "batch answer"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }
    lines = [
        {"id": "b1", "custom_id": "r0", "response": {"status_code": 200, "request_id": "x", "body": ok_body}, "error": None},
        {"id": "b2", "custom_id": "r1", "response": None, "error": {"code": "batch_expired", "message": "expired"}},
        {
            "id": "b3",
            "custom_id": "r2",
            "response": {"status_code": 400, "body": {"error": {"message": "Invalid schema", "type": "invalid"}}},
            "error": None,
        },
        {"id": "b4", "custom_id": "r3", "response": {"status_code": 200, "body": {**ok_body, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "cut"}, "finish_reason": "length"}]}},
         "error": None},
        {"id": "b5", "custom_id": "not-asked", "response": {"status_code": 200, "body": ok_body}, "error": None},
    ]
    results_path = tmp_path / "results.jsonl"
    results_path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    results = client.import_batch([results_path], requests)
    assert [r.custom_id for r in results] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r.status for r in results] == ["ok", "unscored:api_error", "unscored:api_error", "unscored:truncated",
                                           "unscored:api_error"]
    assert results[0].text == "batch answer" and results[0].prompt_tokens == 7
    assert "expired" in results[1].error and "400" in results[2].error and "Invalid schema" in results[2].error
    assert "no result line for custom_id 'r4'" in results[4].error
    assert len(client.cache) == 1
    totals = client.ledger.totals()
    assert totals["n_sent"] == 0 and totals["n_imported"] == 4 and totals["prompt_tokens"] == 14  # imported, not sent

    replay = make_client(openai_double, tmp_path, mode="replay")
    again = replay.complete(requests, progress=False)
    assert again[0].status == "ok" and again[0].cached and again[0].text == "batch answer"
    assert [r.status for r in again[1:]] == ["unscored:not_cached"] * 4
    live = make_client(openai_double, tmp_path).complete(requests, progress=False)
    assert openai_double.hits == 4 and live[0].cached  # the imported answer is not paid again


def test_import_batch_serves_requests_export_skipped(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)
    client.complete(make_requests(1), progress=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    [result] = client.import_batch(empty, make_requests(1))
    assert result.status == "ok" and result.cached


def test_import_batch_bad_line_names_file_and_line(openai_double, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "r0", "response": null, "error": null}\n{oops\n')
    with pytest.raises(InputError, match=r"bad\.jsonl.*line 2"):
        make_client(openai_double, tmp_path).import_batch([bad], make_requests(1))


# ---------------------------------------------------------------------------------------------- environment
def test_complete_inside_a_running_event_loop(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)

    def notebook_cell():  # synchronous code run by a kernel that already has a loop running
        return client.complete(make_requests(3), progress=False)

    async def kernel():
        asyncio.get_running_loop()
        return notebook_cell()

    results = asyncio.run(kernel())
    assert [r.status for r in results] == ["ok"] * 3 and openai_double.hits == 3

    async def awaiting_kernel():
        return await client.acomplete(make_requests(4), progress=False)

    assert [r.cached for r in asyncio.run(awaiting_kernel())] == [True] * 3 + [False]


def test_base_url_resolution(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-env/v1")
    monkeypatch.setenv("TOOLQUAL_BASE_URL", "http://toolqual-env/v1")
    assert LLMClient(LLMConfig(model="m", cache_path=None)).base_url == "http://toolqual-env/v1"
    assert LLMClient(LLMConfig(model="m", base_url="http://cfg/v1", cache_path=None)).base_url == "http://cfg/v1"
    monkeypatch.delenv("TOOLQUAL_BASE_URL")
    assert LLMClient(LLMConfig(model="m", cache_path=None)).base_url == "http://openai-env/v1"


def test_missing_key(openai_double, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    # Local server: the "EMPTY" placeholder is sent.
    make_client(openai_double, tmp_path).complete(make_requests(1), progress=False)
    assert openai_double.request_headers[0]["authorization"] == "Bearer EMPTY"
    # Remote endpoint: a clear error before anything is sent ...
    remote = LLMClient(LLMConfig(model="m", base_url="https://api.example.invalid/v1", cache_path=None))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        remote.complete(make_requests(1), progress=False)
    # ... and a key from a differently named variable.
    monkeypatch.setenv("MY_JUDGE_KEY", "other-key-value")
    make_client(openai_double, tmp_path, api_key_env="MY_JUDGE_KEY", cache_path=None).complete(
        make_requests(1), progress=False
    )
    assert openai_double.request_headers[-1]["authorization"] == "Bearer other-key-value"


def test_config_validation():
    with pytest.raises(ConfigError):
        LLMConfig(model="")
    with pytest.raises(ConfigError):
        LLMConfig(model="m", mode="offline")
    with pytest.raises(ConfigError):
        LLMConfig(model="m", concurrency=0)


def test_api_key_never_leaks(openai_double, tmp_path, monkeypatch, caplog, capsys):
    secret = "sk-proj-SECRETvalue0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    caplog.set_level(logging.DEBUG)
    openai_double.script = [
        Reply(status=401, content=f"Incorrect API key provided: {secret}."),
        Reply(status=500, content=f"upstream said Bearer {secret}"),
        Reply(content="fine"),
    ]
    client = make_client(openai_double, tmp_path, max_retries=0, concurrency=1)
    results = [client.complete([r], progress=True)[0] for r in make_requests(3)]
    assert [r.status for r in results] == ["unscored:api_error", "unscored:api_error", "ok"]
    assert openai_double.request_headers[0]["authorization"] == f"Bearer {secret}"  # it was really used
    captured = capsys.readouterr()
    for text in [r.error or "" for r in results] + [caplog.text, captured.out, captured.err]:
        assert secret not in text
    assert "<redacted>" in results[0].error
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes()


def test_two_clients_write_one_cache_file_concurrently(openai_double, tmp_path):
    import threading

    openai_double.script = Reply(content="shared", delay_s=0.01)
    clients = [make_client(openai_double, tmp_path, concurrency=16) for _ in range(2)]
    outcomes: list[list] = [[], []]

    def work(which: int) -> None:
        outcomes[which] = clients[which].complete(make_requests(60, prompt_id=f"w{which}.v1"), progress=False)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r.status == "ok" for results in outcomes for r in results) and len(outcomes[0]) == 60
    assert len(clients[0].cache) == 120


def test_double_holds_up_at_concurrency_64(openai_double, tmp_path):
    openai_double.script = Reply(content="fast")
    client = make_client(openai_double, tmp_path, concurrency=64, max_retries=0, cache_path=None)
    results = client.complete(make_requests(400), progress=False)
    assert all(r.status == "ok" for r in results) and openai_double.hits == 400


def test_interrupt_inside_a_running_loop_stops_the_worker(openai_double, tmp_path):
    import _thread
    import threading

    # Interrupt once the server has seen its 4th request (an event, not a timer: importing the SDK on a
    # cold start can take longer than any fixed delay), i.e. mid-run with answers already received.
    fourth_request = threading.Event()
    seen = []
    interrupted_at: list[float] = []

    def slow_server(body: dict) -> Reply:
        seen.append(body)
        if len(seen) == 4:
            fourth_request.set()
        return Reply(content="slow", delay_s=0.2)

    def interrupt_when_due() -> None:
        if fourth_request.wait(60):
            interrupted_at.append(time.perf_counter())
            _thread.interrupt_main()

    openai_double.script = slow_server
    client = make_client(openai_double, tmp_path, concurrency=2)
    threading.Thread(target=interrupt_when_due, daemon=True).start()

    async def kernel():
        return client.complete(make_requests(40), progress=False)  # ~4 s if not interrupted

    # A plain loop, like a kernel's: asyncio.run() would install its own SIGINT handler instead.
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(kernel())
    finally:
        loop.close()
    stopped_at = time.perf_counter()
    assert interrupted_at and stopped_at - interrupted_at[0] < 2.0  # the interrupt is honoured promptly
    hits_at_stop = openai_double.hits
    time.sleep(0.5)
    assert openai_double.hits == hits_at_stop < 40  # the worker really stopped sending
    assert 0 < len(client.cache) < 40  # answers received before the interrupt were kept


# ---------------------------------------------------------------------------------------------- token-limit field
OPENAI_REASONING_400 = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                        "Use 'max_completion_tokens' instead.")


def _reasoning_server(body: dict) -> Reply:
    """Answers like OpenAI's reasoning models: max_tokens is rejected, max_completion_tokens accepted."""
    if "max_tokens" in body:
        return Reply(status=400, content=OPENAI_REASONING_400)
    return Reply(content=f"limit {body.get('max_completion_tokens')}")


def test_switches_to_max_completion_tokens_when_the_server_asks(openai_double, tmp_path, caplog):
    openai_double.script = _reasoning_server
    client = make_client(openai_double, tmp_path, concurrency=1)
    with caplog.at_level(logging.WARNING, logger="toolqual.llm"):
        results = client.complete(make_requests(4, max_tokens=64), progress=False)
    assert [r.status for r in results] == ["ok"] * 4
    assert {r.text for r in results} == {"limit 64"}
    # one rejected request, then every request (the rejected one resent) carries max_completion_tokens
    assert openai_double.hits == 5
    assert "max_tokens" in openai_double.bodies[0]
    assert all("max_tokens" not in b and b["max_completion_tokens"] == 64 for b in openai_double.bodies[1:])
    assert client.token_limit_param == "max_completion_tokens"
    assert "sending 'max_completion_tokens' from now on" in caplog.text
    # the cache key holds the limit's value, not the field's name: a second run is served from the cache
    again = make_client(openai_double, tmp_path).complete(make_requests(4, max_tokens=64), progress=False)
    assert all(r.cached for r in again) and openai_double.hits == 5


def test_switch_under_concurrency_never_double_counts(openai_double, tmp_path):
    openai_double.script = _reasoning_server
    client = make_client(openai_double, tmp_path, concurrency=8)
    results = client.complete(make_requests(20, max_tokens=32), progress=False)
    assert all(r.ok for r in results)
    answered = [b for b in openai_double.bodies if "max_completion_tokens" in b]
    assert len(answered) == 20 and openai_double.hits <= 40   # at most one rejection per request


def test_configured_max_completion_tokens_is_sent_live_and_in_batch_files(openai_double, tmp_path):
    openai_double.script = _reasoning_server
    client = make_client(openai_double, tmp_path, token_limit_param="max_completion_tokens")
    results = client.complete(make_requests(2, max_tokens=16), progress=False)
    assert all(r.ok for r in results) and openai_double.hits == 2
    [path] = client.export_batch(make_requests(3, "other.v1", max_tokens=16), tmp_path / "batch.jsonl")
    bodies = [json.loads(line)["body"] for line in path.read_text().splitlines()]
    assert [b["max_completion_tokens"] for b in bodies] == [16, 16, 16]
    assert all("max_tokens" not in b for b in bodies)
    assert "max_tokens" not in request_body("m", make_requests(1, max_tokens=5)[0], "max_completion_tokens")


def test_switches_back_when_a_server_does_not_know_max_completion_tokens(openai_double, tmp_path):
    def older_server(body: dict) -> Reply:
        if "max_completion_tokens" in body:
            return Reply(status=400, content="Unrecognized request argument supplied: max_completion_tokens")
        return Reply(content="ok")

    openai_double.script = older_server
    client = make_client(openai_double, tmp_path, concurrency=1, token_limit_param="max_completion_tokens")
    results = client.complete(make_requests(3, max_tokens=8), progress=False)
    assert all(r.ok for r in results) and openai_double.hits == 4
    assert client.token_limit_param == "max_tokens"


def test_other_400s_about_the_limit_are_not_resent(openai_double, tmp_path):
    openai_double.script = Reply(status=400, content="max_tokens must be at most 4096, got 100000")
    client = make_client(openai_double, tmp_path)
    [result] = client.complete(make_requests(1, max_tokens=100_000), progress=False)
    assert result.status == "unscored:api_error" and "HTTP 400" in result.error and "4096" in result.error
    assert openai_double.hits == 1 and client.token_limit_param == "max_tokens"


def test_token_limit_param_is_validated():
    with pytest.raises(ConfigError, match="token_limit_param"):
        LLMConfig(model="m", token_limit_param="max_new_tokens")


def _default_temperature_only(body: dict) -> Reply:
    if "temperature" in body:
        return Reply(status=400, content="Unsupported value: 'temperature' does not support 0 with this model. "
                                         "Only the default (1) value is supported.")
    return Reply(content="fine")


def test_temperature_rejection_is_unscored_with_a_hint_then_left_out_on_request(openai_double, tmp_path):
    openai_double.script = _default_temperature_only
    [rejected] = make_client(openai_double, tmp_path).complete(make_requests(1), progress=False)
    assert rejected.status == "unscored:api_error" and "--no-temperature" in rejected.error
    assert openai_double.hits == 1   # a 400 is not retried

    client = make_client(openai_double, tmp_path, send_temperature=False)
    results = client.complete(make_requests(3), progress=False)
    assert [r.text for r in results] == ["fine"] * 3
    assert all("temperature" not in b for b in openai_double.bodies[1:])
    [path] = make_client(openai_double, tmp_path, send_temperature=False).export_batch(
        make_requests(2, "b.v1"), tmp_path / "b.jsonl")
    assert all("temperature" not in json.loads(x)["body"] for x in path.read_text().splitlines())
    # the cache tells the two apart: an answer sampled at the default temperature is not a greedy answer
    again = make_client(openai_double, tmp_path, mode="replay").complete(make_requests(3), progress=False)
    assert {r.status for r in again} == {"unscored:not_cached"}
    assert all(r.cached for r in make_client(openai_double, tmp_path, send_temperature=False)
               .complete(make_requests(3), progress=False))
