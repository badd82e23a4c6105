"""The OpenAI-compatible test double itself (other helpers' tests rely on it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from toolqual_utils.testing import OpenAIDouble, Reply
from conftest import ROOT



def post(double: OpenAIDouble, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        double.base_url + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_models_route_and_unknown_route():
    with OpenAIDouble() as double:
        with urllib.request.urlopen(double.base_url + "/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["owned_by"] == "toolqual-test-double"
        try:
            urllib.request.urlopen(double.base_url + "/embeddings", timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 404
        else:
            raise AssertionError("expected 404")
        assert double.hits == 0


def test_list_script_repeats_last_reply_and_reset_restarts_it():
    with OpenAIDouble([Reply(status=429, content="slow down", headers={"Retry-After": "2"}), Reply(content="ok")]) as double:
        status, headers, body = post(double, {"model": "m", "messages": []})
        assert status == 429 and headers["Retry-After"] == "2"
        assert body["error"]["message"] == "slow down" and body["error"]["type"] == "rate_limit_exceeded"
        assert [post(double, {"model": "m"})[2]["choices"][0]["message"]["content"] for _ in range(2)] == ["ok", "ok"]
        assert double.hits == 3 and double.bodies[0] == {"model": "m", "messages": []}
        double.reset()
        assert double.hits == 0 and double.bodies == [] and post(double, {})[0] == 429


def test_callable_script_tool_calls_and_usage():
    def script(body):
        return Reply(
            tool_calls=[{"name": "f", "arguments": {"x": body["n"]}}],
            finish_reason="tool_calls",
            prompt_tokens=body["n"],
            completion_tokens=2,
        )

    with OpenAIDouble(script) as double:
        status, _, body = post(double, {"model": "mm", "n": 7})
    assert status == 200 and body["model"] == "mm"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "f", "arguments": '{"x": 7}'}
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def test_broken_script_answers_500():
    def script(body):
        raise ValueError("boom")

    with OpenAIDouble(script) as double:
        status, _, body = post(double, {})
    assert status == 500 and "boom" in body["error"]["message"]


def test_standalone_process():
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolqual_utils.testing.openai_double", "--content", "hello"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        tag, base_url = proc.stdout.readline().split()
        assert tag == "BASE_URL"
        double = OpenAIDouble()
        double.port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        assert post(double, {"model": "m"})[2]["choices"][0]["message"]["content"] == "hello"
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
