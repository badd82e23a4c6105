"""The HTTP layer under the SDK: aiohttp (the SDK's DefaultAioHttpClient) or httpx (its default).

Both must behave the same for everything the client promises (answers, refused connections, servers that
hang up, deadlines, the body cap): the same failures, said the same way, counted the same way. Each test
runs under both layers, over real HTTP against the test double.
"""
from __future__ import annotations


import pytest

from toolqual_utils import llm
from toolqual_utils.errors import ConfigError
from toolqual_utils.llm import ChatRequest, LLMClient, LLMConfig, resolve_http_transport
from toolqual_utils.testing import Reply, fault_reply

from conftest import closed_port_url

TRANSPORTS = ["httpx", "aiohttp"]


def _request(n: int = 1) -> list[ChatRequest]:
    return [ChatRequest(f"r{i}", ({"role": "user", "content": f"question {i}"},), "p.v1") for i in range(n)]




@pytest.fixture(params=TRANSPORTS)
def transport(request, monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-a-secret")
    if request.param == "aiohttp" and not llm._aiohttp_available():
        pytest.fail("aiohttp is a declared dependency (pyproject.toml) and must be installed")
    return request.param


def _client(url: str, transport: str, **overrides) -> LLMClient:
    settings = dict(model="m", base_url=url, cache_path=None, max_retries=0, timeout_s=10.0,
                    http_transport=transport)
    settings.update(overrides)
    return LLMClient(LLMConfig(**settings))


def test_an_answer_arrives_and_the_layer_is_the_one_asked_for(openai_double, transport):
    openai_double.script = Reply(content="fine")
    client = _client(openai_double.base_url, transport)
    results = client.complete(_request(3), progress=False)
    assert [r.status for r in results] == ["ok"] * 3 and {r.text for r in results} == {"fine"}
    assert client.http_transport == transport
    assert sorted(b["messages"][0]["content"] for b in openai_double.bodies) == [
        "question 0", "question 1", "question 2"]
    assert {h.get("authorization") for h in openai_double.request_headers} == {"Bearer test-key-not-a-secret"}


def test_a_refused_connection_is_a_connection_error_not_a_timeout(transport):
    client = _client(closed_port_url(), transport)
    [result] = client.complete(_request(), progress=False)
    assert result.status == "unscored:api_error"
    assert "connection error" in result.error and "timed out" not in result.error


def test_a_server_that_hangs_up_stops_the_run_after_the_allowed_failures(openai_double, transport):
    openai_double.script = fault_reply("disconnect")
    client = _client(openai_double.base_url, transport, concurrency=1, max_connection_failures=2)
    results = client.complete(_request(5), progress=False)
    assert client.stopped is not None and "2 connection attempts in a row failed" in client.stopped
    assert {r.status for r in results} == {"unscored:api_error", "unscored:not_sent"}
    assert sum(r.status == "unscored:not_sent" for r in results) >= 3


@pytest.mark.timeout(60)
def test_a_dripping_server_is_cut_off_at_the_deadline(openai_double, transport):
    openai_double.script = fault_reply("slow_drip")
    client = _client(openai_double.base_url, transport, timeout_s=1.0, max_retries=1)
    [result] = client.complete(_request(), progress=False)
    assert result.status == "unscored:api_error" and "no complete answer within 1 s per attempt" in result.error
    assert openai_double.hits == 2  # the deadline is a timeout: retried once


def test_a_body_over_the_cap_is_refused_without_retrying(openai_double, transport):
    openai_double.script = Reply(endless=True, drip_s=0.0)
    client = _client(openai_double.base_url, transport, timeout_s=60, max_retries=3)
    [result] = client.complete(_request(), progress=False)
    assert result.status == "unscored:api_error" and "larger than 32 MiB" in result.error
    assert openai_double.hits == 1


def test_a_rate_limit_is_retried_then_answered(openai_double, transport):
    replies = iter([Reply(status=429, headers={"retry-after-ms": "10"}), Reply(content="after the wait")])
    openai_double.script = lambda body: next(replies)
    client = _client(openai_double.base_url, transport, max_retries=2)
    [result] = client.complete(_request(), progress=False)
    assert result.status == "ok" and result.text == "after the wait" and openai_double.hits == 2


# ------------------------------------------------------------------------------------- choosing the layer
def test_auto_prefers_aiohttp_when_installed_and_falls_back_to_httpx(monkeypatch):
    monkeypatch.setattr(llm, "_aiohttp_available", lambda: True)
    assert resolve_http_transport(None, {}) == "aiohttp"
    assert resolve_http_transport("auto", {}) == "aiohttp"
    monkeypatch.setattr(llm, "_aiohttp_available", lambda: False)
    assert resolve_http_transport(None, {}) == "httpx"
    with pytest.raises(ConfigError, match="aiohttp .*not installed.*--http-transport httpx"):
        resolve_http_transport("aiohttp", {})


def test_the_environment_picks_the_layer_unless_the_config_does(monkeypatch):
    monkeypatch.setattr(llm, "_aiohttp_available", lambda: True)
    assert resolve_http_transport(None, {"TOOLQUAL_HTTP_TRANSPORT": "httpx"}) == "httpx"
    assert resolve_http_transport("aiohttp", {"TOOLQUAL_HTTP_TRANSPORT": "httpx"}) == "aiohttp"
    with pytest.raises(ConfigError, match="TOOLQUAL_HTTP_TRANSPORT must be one of auto, aiohttp, httpx"):
        resolve_http_transport(None, {"TOOLQUAL_HTTP_TRANSPORT": "curl"})
    with pytest.raises(ConfigError, match="http_transport must be one of"):
        LLMConfig(model="m", http_transport="curl")


def test_the_cli_option_reaches_the_config_and_refuses_unknown_layers(capsys):
    from toolqual_utils.cli import build_parser
    from toolqual_utils.commands._endpoint import llm_config

    parser = build_parser()
    for command in ("judge", "ice"):
        base = [command, "data.jsonl", "--model", "m", "--out", "v.csv"]
        args = parser.parse_args([*base, "--http-transport", "httpx"])
        assert llm_config(args).http_transport == "httpx"
        assert llm_config(parser.parse_args(base)).http_transport is None  # env, else auto
    with pytest.raises(SystemExit):
        parser.parse_args(["judge", "data.jsonl", "--model", "m", "--out", "v.csv", "--http-transport", "curl"])
    assert "invalid choice: 'curl'" in capsys.readouterr().err
