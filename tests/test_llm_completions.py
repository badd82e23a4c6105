"""Text completions (/v1/completions) through the one LLM client, over real HTTP against the test double."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.llm import (
    ChatRequest,
    CompletionRequest,
    LLMClient,
    LLMConfig,
    cache_key,
    completion_body,
    request_body,
)
from toolqual_utils.testing import OpenAIDouble, Reply


def make_client(double: OpenAIDouble, tmp_path: Path, **overrides) -> LLMClient:
    settings = dict(model="base-model", base_url=double.base_url, concurrency=4, max_retries=1, timeout_s=10.0,
                    cache_path=str(tmp_path / "cache.sqlite"))
    settings.update(overrides)
    return LLMClient(LLMConfig(**settings))


def completion(i: int = 0, **kwargs) -> CompletionRequest:
    return CompletionRequest(f"c{i}", f"### Request\nquestion {i}\n### Answer\n", "demo_completion.v1",
                             stop=("\n###",), max_tokens=64, **kwargs)


def test_completion_request_goes_to_the_completions_route_with_its_exact_body(openai_double, tmp_path):
    openai_double.script = Reply(content='[{"name": "f", "arguments": {}}]', prompt_tokens=20, completion_tokens=7)
    client = make_client(openai_double, tmp_path)
    [result] = client.complete([completion()], progress=False)
    assert result.status == "ok" and result.text == '[{"name": "f", "arguments": {}}]'
    assert result.tool_calls is None and (result.prompt_tokens, result.completion_tokens) == (20, 7)
    assert openai_double.paths == ["/v1/completions"]
    [body] = openai_double.bodies
    assert body == {"model": "base-model", "prompt": "### Request\nquestion 0\n### Answer\n", "temperature": 0.0,
                    "max_tokens": 64, "stop": ["\n###"]}
    assert body == completion_body("base-model", completion()) == request_body("base-model", completion())


def test_max_tokens_keeps_its_name_for_completions_whatever_the_chat_setting(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path, token_limit_param="max_completion_tokens")
    client.complete([completion()], progress=False)
    assert openai_double.bodies[0]["max_tokens"] == 64 and "max_completion_tokens" not in openai_double.bodies[0]


def test_the_double_cuts_the_text_at_the_first_stop_sequence(openai_double, tmp_path):
    openai_double.script = Reply(content="Action: f\nAction Input: {}\n### Request\nnext example", finish_reason="length")
    [result] = make_client(openai_double, tmp_path).complete([completion()], progress=False)
    assert result.status == "ok" and result.text == "Action: f\nAction Input: {}"
    assert result.finish_reason == "stop"


def test_truncated_and_failed_completions_are_unscored_and_not_cached(openai_double, tmp_path):
    openai_double.script = [Reply(content="[{", finish_reason="length"), Reply(status=500), Reply(status=500)]
    client = make_client(openai_double, tmp_path, max_retries=1)
    results = client.complete([completion(0), completion(1)], progress=False)
    assert sorted(r.status for r in results) == ["unscored:api_error", "unscored:truncated"]
    assert len(client.cache) == 0


def test_completion_answers_are_cached_and_replayed_offline(openai_double, tmp_path):
    openai_double.script = lambda body: Reply(content=body["prompt"].split("\n")[1].upper())
    client = make_client(openai_double, tmp_path)
    first = client.complete([completion(i) for i in range(3)], progress=False)
    assert [r.text for r in first] == ["QUESTION 0", "QUESTION 1", "QUESTION 2"]
    replay = make_client(openai_double, tmp_path, mode="replay")
    again = replay.complete([completion(i) for i in range(3)], progress=False)
    assert [r.text for r in again] == ["QUESTION 0", "QUESTION 1", "QUESTION 2"] and all(r.cached for r in again)
    assert openai_double.hits == 3
    assert replay.in_cache([completion(0), completion(9)]) == [True, False]


def test_completion_cache_key_never_equals_a_chat_key_and_follows_the_prompt():
    text = "### Request\nquestion 0\n### Answer\n"
    chat = ChatRequest("c0", ({"role": "user", "content": text},), "demo_completion.v1", max_tokens=64)
    assert cache_key("m", completion()) != cache_key("m", chat)
    assert cache_key("m", completion()) == cache_key("m", completion())
    assert cache_key("m", completion()) != cache_key("m", CompletionRequest("c0", text, "demo_completion.v1",
                                                                             stop=("\n\n",), max_tokens=64))
    assert cache_key("m", completion()) != cache_key("other", completion())


def test_chat_tool_choice_is_sent_and_keyed_only_when_set(openai_double, tmp_path):
    plain = ChatRequest("a", ({"role": "user", "content": "hi"},), "p.v1", tools=({"type": "function",
                                                                                  "function": {"name": "f"}},))
    chosen = ChatRequest("a", plain.messages, "p.v1", tools=plain.tools, tool_choice="none")
    assert "tool_choice" not in request_body("m", plain) and request_body("m", chosen)["tool_choice"] == "none"
    assert cache_key("m", plain) != cache_key("m", chosen)


def test_batch_round_trip_for_completions(openai_double, tmp_path):
    client = make_client(openai_double, tmp_path)
    requests = [completion(i) for i in range(3)]
    [path] = client.export_batch(requests, tmp_path / "batch.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["url"] for line in lines] == ["/v1/completions"] * 3
    assert lines[1]["body"] == completion_body("base-model", requests[1]) and lines[1]["custom_id"] == "c1"
    results_file = tmp_path / "results.jsonl"
    with results_file.open("w") as handle:
        for line in lines:
            body = {"object": "text_completion", "choices": [{"index": 0, "text": f"answer {line['custom_id']}",
                                                              "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
            handle.write(json.dumps({"id": "x", "custom_id": line["custom_id"],
                                     "response": {"status_code": 200, "body": body}, "error": None}) + "\n")
    imported = make_client(openai_double, tmp_path, mode="replay").import_batch(results_file, requests)
    assert [r.text for r in imported] == ["answer c0", "answer c1", "answer c2"]
    replayed = make_client(openai_double, tmp_path, mode="replay").complete(requests, progress=False)
    assert [r.text for r in replayed] == ["answer c0", "answer c1", "answer c2"] and openai_double.hits == 0
    assert client.export_batch(requests, tmp_path / "again.jsonl") == []  # everything is cached now


def test_chat_and_completion_requests_cannot_share_a_batch_file(openai_double, tmp_path):
    chat = ChatRequest("x", ({"role": "user", "content": "hi"},), "p.v1")
    with pytest.raises(InputError, match="one endpoint per file"):
        make_client(openai_double, tmp_path).export_batch([chat, completion()], tmp_path / "mixed.jsonl")


def test_mixed_requests_in_one_call_each_take_their_route(openai_double, tmp_path):
    openai_double.script = lambda body: Reply(content="chat" if "messages" in body else "text")
    chat = ChatRequest("x", ({"role": "user", "content": "hi"},), "p.v1")
    results = make_client(openai_double, tmp_path).complete([chat, completion()], progress=False)
    assert [r.text for r in results] == ["chat", "text"]
    assert sorted(openai_double.paths) == ["/v1/chat/completions", "/v1/completions"]


def test_an_empty_prompt_is_refused_before_sending(openai_double, tmp_path):
    with pytest.raises(InputError, match="non-empty prompt"):
        make_client(openai_double, tmp_path).complete([CompletionRequest("e", "", "p.v1")], progress=False)
    assert openai_double.hits == 0


def test_plan_counts_completion_prompts(openai_double, tmp_path):
    plan = make_client(openai_double, tmp_path).plan([completion(i) for i in range(4)])
    assert plan.n_to_send == 4 and plan.est_prompt_tokens > 4 * 5
