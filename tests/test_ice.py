"""ICE pure parts: test bed validation, prompt building, parsing, scoring, aggregation, distributions."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.ice.distributions import (
    bimodality_coefficient, distribution_summary, k_thresholds, score_histogram,
)
from toolqual_utils.ice.parse import parse_answer, parse_json_calls, parse_react_calls, parse_tool_calls
from toolqual_utils.ice.prompt import build_prompt, build_prompts, render_calls
from toolqual_utils.ice.score import aggregate_instances, canonical_calls, similarity, strict_match, t_interval
from toolqual_utils.ice.testbed import DEFAULT_TESTBED, load_testbed
from toolqual_utils.schema import Instance
from conftest import ROOT



@pytest.fixture(scope="module")
def testbed():
    return load_testbed()


def _instance(calls, instruction="What's the weather in Oslo?", iid="t/demo/1"):
    return Instance(id=iid, source="t", instruction=instruction, tools=[], calls=calls)


# --- test bed --------------------------------------------------------------------------------------

def test_bundled_testbed_shape(testbed):
    assert testbed.version == "v1" and DEFAULT_TESTBED == ROOT / "data" / "ice_testbed" / "v1"
    assert len(testbed.tools) == 10 and len(testbed.queries) >= 12
    shapes = {len(q.calls) for q in testbed.queries}
    assert 0 in shapes and 1 in shapes and max(shapes) >= 2  # no-call, single and multi-call queries
    assert (ROOT / "data/ice_testbed/v1/VERSION").read_text().strip() == "v1"


def test_every_gold_sequence_passes_its_own_strict_match(testbed):
    for query in testbed.queries:
        ok, reasons = strict_match(list(query.calls), query.possible_answer, testbed.tools, order_free=query.order_free)
        assert ok, (query.id, reasons)
        assert similarity(list(query.calls), list(query.calls), order_free=query.order_free) == 1.0


def _copy_testbed(tmp_path):
    target = tmp_path / "tb"
    shutil.copytree(DEFAULT_TESTBED, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.pop("files")  # edited copy: no checksums
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_edited_v1_is_refused_by_checksum(tmp_path):
    target = tmp_path / "tb"
    shutil.copytree(DEFAULT_TESTBED, target)
    with (target / "queries.jsonl").open("a") as handle:
        handle.write("\n")
    with pytest.raises(InputError, match="checksum"):
        load_testbed(target)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda q: q["calls"][0]["arguments"].update(city=5), "calls[0].arguments.city"),
        (lambda q: q["calls"][0].update(name="get_wether"), "calls[0].name"),
        (lambda q: q["possible_answer"][0]["get_weather"].update(date=["2024-06-12"]), "possible_answer[0].get_weather.date"),
        (lambda q: q["calls"][0]["arguments"].pop("city"), "calls[0].arguments.city"),
        (lambda q: q["possible_answer"][0]["get_weather"].update(units=["imperial"]) or q["calls"][0]["arguments"].pop("units"),
         "possible_answer[0].get_weather.units"),
    ],
)
def test_bad_query_names_file_record_and_field(tmp_path, mutate, field):
    target = _copy_testbed(tmp_path)
    lines = (target / "queries.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    mutate(first)
    lines[0] = json.dumps(first)
    (target / "queries.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        load_testbed(target)
    assert info.value.file.endswith("queries.jsonl")
    assert info.value.record == "line 1 (q01)"
    assert info.value.field == field


def test_missing_manifest_field(tmp_path):
    target = _copy_testbed(tmp_path)
    (target / "manifest.json").write_text(json.dumps({"version": "v9"}))
    with pytest.raises(InputError) as info:
        load_testbed(target)
    assert info.value.field == "reference_date"


# --- prompts ---------------------------------------------------------------------------------------

DEMO_CALLS = [{"name": "lookup_city", "arguments": {"city": "Oslo"}, "observation": "{\"temp\": 3}"},
              {"name": "get_forecast", "arguments": {"id": 7}, "observation": "sunny"}]


@pytest.mark.parametrize("call_format", ["json", "react", "tools"])
def test_prompt_prefix_order_and_demo_format(testbed, call_format):
    demo = _instance(DEMO_CALLS)
    prompts = build_prompts([demo], testbed, call_format)
    assert len(prompts) == len(testbed.queries)
    first, second = prompts[0].messages, prompts[1].messages
    # shared prefix: system (instructions + APIs), demo instruction, demo calls; only the last message varies
    assert first[:-1] == second[:-1]
    assert [m["role"] for m in first[:3]] == ["system", "user", "assistant"]
    assert first[1]["content"] == demo.instruction
    assert first[-1] == {"role": "user", "content": testbed.queries[0].query}
    assert "2024-06-10" in first[0]["content"] and "Monday" in first[0]["content"]
    demo_answer = first[2]
    if call_format == "tools":
        assert "get_weather" not in first[0]["content"]  # APIs travel as tools
        assert [t["function"]["name"] for t in prompts[0].tools] == testbed.tool_names
        assert [c["function"]["name"] for c in demo_answer["tool_calls"]] == ["lookup_city", "get_forecast"]
        assert [m["role"] for m in first[3:5]] == ["tool", "tool"]
        parsed = parse_answer("tools", None, [c["function"] for c in demo_answer["tool_calls"]])
    else:
        assert all(name in first[0]["content"] for name in testbed.tool_names)
        assert prompts[0].tools is None
        parsed = parse_answer(call_format, demo_answer["content"])
    # the demonstration parses back, in the answer format, to the instance's calls
    assert parsed.calls == [{"name": c["name"], "arguments": c["arguments"]} for c in DEMO_CALLS]
    assert prompts[0].prompt_id == f"ice_{call_format}.v1"


def test_observations_flag(testbed):
    demo = _instance(DEMO_CALLS)
    hidden = build_prompt(demo, testbed.queries[0], testbed, "react").messages
    shown = build_prompt(demo, testbed.queries[0], testbed, "react", include_observations=True).messages
    assert "Observation: sunny" in shown[2]["content"] and "sunny" not in json.dumps(hidden)
    tools = build_prompt(demo, testbed.queries[0], testbed, "tools", include_observations=True).messages
    assert tools[4]["content"] == "sunny"
    js = build_prompt(demo, testbed.queries[0], testbed, "json", include_observations=True).messages
    assert js[3]["role"] == "user" and "sunny" in js[3]["content"]


def test_unparsed_demo_arguments_shown_raw_and_no_gold_skipped(testbed):
    broken = _instance([{"name": "get_forecast", "arguments": None, "raw_arguments": "{id: ${x from f}}"}])
    prompt = build_prompt(broken, testbed.queries[0], testbed, "react")
    assert "Action Input: {id: ${x from f}}" in prompt.messages[2]["content"]
    assert build_prompts([_instance(None)], testbed) == []
    assert render_calls([], "react").startswith("Final Answer:") and render_calls([], "json") == "[]"


# --- parsing ---------------------------------------------------------------------------------------

def test_parse_json_variants():
    expected = [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert parse_json_calls('[{"name": "get_weather", "arguments": {"city": "Oslo"}}]').calls == expected
    assert parse_json_calls('Here you go:\n```json\n[{"name": "get_weather", "arguments": {"city": "Oslo"}}]\n```').calls == expected
    assert parse_json_calls('{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}').calls == expected
    assert parse_json_calls("[]").calls == []
    bad = parse_json_calls("I would call the weather API for Oslo.")
    assert bad.calls is None and bad.error
    assert parse_json_calls('[{"arguments": {}}]').calls is None  # no name


def test_parse_react_and_tools():
    text = "Thought: need weather\nAction: get_weather\nAction Input: {\"city\": \"Oslo\",\n  \"units\": \"metric\"}\nObservation: 3C\nAction: convert_currency\nAction Input: {\"amount\": 5}"
    assert parse_react_calls(text).calls == [
        {"name": "get_weather", "arguments": {"city": "Oslo", "units": "metric"}},
        {"name": "convert_currency", "arguments": {"amount": 5}},
    ]
    assert parse_react_calls("Final Answer: nothing to call").calls == []
    assert parse_react_calls("Action: get_weather\nAction Input: {city: Oslo}").calls is None
    assert parse_react_calls("Action: get_weather").calls is None
    assert parse_react_calls("just prose").calls is None
    assert parse_tool_calls([{"name": "a", "arguments": "{\"x\": 1}"}]).calls == [{"name": "a", "arguments": {"x": 1}}]
    assert parse_tool_calls([{"name": "a", "arguments": "{x"}]).calls is None
    assert parse_tool_calls(None, "No tool needed.").calls == []


# --- scoring ---------------------------------------------------------------------------------------

def test_similarity_hand_computed():
    gold = [{"name": "f", "arguments": {"a": "xy"}}]
    pred = [{"name": "f", "arguments": {"a": "xz"}}]
    gold_text = '[{"arguments":{"a":"xy"},"name":"f"}]'
    assert canonical_calls(gold) == gold_text and len(gold_text) == 37
    assert similarity(pred, gold) == pytest.approx(1 - 1 / 37)  # one substitution
    assert similarity([], gold) == pytest.approx(2 / 37)  # "[]" -> 35 insertions
    assert similarity([], []) == 1.0
    # whitespace is normalised and integral floats serialise as ints; keys sorted
    assert similarity([{"name": "f", "arguments": {"b": 2.0, "a": "  x   y "}}],
                      [{"arguments": {"a": "x y", "b": 2}, "name": "f"}]) == 1.0
    # order-free queries compare calls in a canonical order
    two = [{"name": "q", "arguments": {"s": "AAPL"}}, {"name": "q", "arguments": {"s": "MSFT"}}]
    assert similarity(two[::-1], two, order_free=True) == 1.0 and similarity(two[::-1], two) < 1.0


def test_strict_match_acceptable_values():
    answer = [{"convert_currency": {"amount": [250], "from_currency": ["EUR"], "to_currency": ["JPY"]}}]
    ok, _ = strict_match([{"name": "convert_currency", "arguments": {"amount": 250.0, "from_currency": "eur", "to_currency": "JPY"}}], answer)
    assert ok
    ok, reasons = strict_match([{"name": "convert_currency", "arguments": {"amount": 25, "from_currency": "EUR", "to_currency": "JPY"}}], answer)
    assert not ok and any("amount" in r for r in reasons)
    assert strict_match([], [])[0] and not strict_match([{"name": "x", "arguments": {}}], [])[0]


def test_t_interval_and_aggregate():
    mean, low, high = t_interval([1.0, 0.5, 0.75])
    half = 4.302652729911275 * 0.25 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert mean == 0.75 and low == pytest.approx(0.75 - half) and high == 1.0  # clipped at 1
    assert math.isnan(t_interval([0.4])[1]) and math.isnan(t_interval([])[0])
    per_query = pd.DataFrame({
        "instance_id": ["a"] * 4 + ["b"] * 2,
        "target_model": "m", "testbed_version": "v1", "source": "s",
        "status": ["ok", "ok", "parse_error", "unscored:api_error", "unscored:api_error", "unscored:api_error"],
        "similarity": [1.0, 0.5, 0.0, np.nan, np.nan, np.nan],
        "strict": [1.0, 0.0, 0.0, np.nan, np.nan, np.nan],
    })
    table = aggregate_instances(per_query).set_index("instance_id")
    assert table.loc["a", "ice_score"] == pytest.approx(0.5)  # the API error is excluded, the parse error counts 0
    assert table.loc["a", ["n_queries", "n_scored", "n_parse_errors", "n_unscored"]].tolist() == [4, 3, 1, 1]
    assert table.loc["a", "strict_score"] == pytest.approx(1 / 3)
    assert table.loc["b", "status"] == "unscored:api_error" and math.isnan(table.loc["b", "ice_score"])


# --- distributions ---------------------------------------------------------------------------------

def test_distributions():
    rng = np.random.default_rng(1)
    bimodal = np.r_[rng.normal(0.2, 0.05, 400), rng.normal(0.85, 0.05, 400)]
    unimodal = rng.normal(0.3, 0.1, 800)
    assert bimodality_coefficient(bimodal) > 5 / 9 > bimodality_coefficient(unimodal)
    assert math.isnan(bimodality_coefficient([0.1, 0.2]))
    table = pd.DataFrame({"ice_score": np.r_[bimodal, unimodal].clip(0, 1), "source": ["ta"] * 800 + ["tb"] * 800})
    summary = distribution_summary(table).set_index("source")
    assert bool(summary.loc["ta", "is_bimodal"]) and not bool(summary.loc["tb", "is_bimodal"])
    hist = score_histogram(table, bins=10)
    assert len(hist) == 20 and hist.groupby("source")["n_instances"].sum().tolist() == [800, 800]
    cuts = k_thresholds([0.1, 0.9, 0.5, 0.3, np.nan], 2)
    assert cuts == {"k": 2, "n_instances": 4, "high_threshold": 0.5, "low_threshold": 0.3}


def test_pure_modules_do_not_import_openai_or_plotly():
    code = ("import sys; import toolqual_utils.ice as ice; ice.load_testbed(); "
            "bad = [m for m in ('openai', 'plotly', 'ipywidgets') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- notebook tables and figures -------------------------------------------------------------------

def test_views_and_plots(testbed):
    from toolqual_utils.ice import plots as ice_plots
    from toolqual_utils.ice import views

    assert views.tools_table(testbed)["tool"].tolist() == testbed.tool_names
    assert len(views.queries_table(testbed)) == len(testbed.queries)
    prompt = build_prompt(_instance(DEMO_CALLS), testbed.queries[0], testbed, "tools")
    table = views.prompt_table(prompt)
    assert table["part"].iloc[0].startswith("instructions") and table["part"].iloc[-2] == "test query"
    assert table["role"].iloc[-1] == "(tools parameter)"
    plan = views.cost_plan_table({"f.jsonl": [_instance(DEMO_CALLS), _instance(None, iid="t/x/2")]}, testbed,
                                 model="m", price_per_1m_input=1.0, price_per_1m_output=2.0)
    assert plan["n_requests"].tolist() == [len(testbed.queries)] * 2 and plan["file"].iloc[-1] == "total"
    assert plan["est_cost_usd"].iloc[0] > 0
    per_query = pd.DataFrame({"query_id": ["q01", "q01", "q02"], "status": ["ok", "parse_error", "unscored:api_error"],
                              "similarity": [1.0, 0.0, np.nan], "strict": [1.0, 0.0, np.nan]})
    summary = views.query_summary(per_query).set_index("query_id")
    assert summary.loc["q01", ["n_scored", "mean_similarity", "n_parse_errors"]].tolist() == [2, 0.5, 1]
    assert summary.loc["q02", "n_unscored"] == 1
    per_instance = pd.DataFrame({"instance_id": ["a", "b"], "source": ["s", "s"], "ice_score": [0.2, 0.9],
                                 "strict_score": [0.0, 1.0]})
    figures = [ice_plots.ice_histogram(score_histogram(per_instance, bins=5), {"top-1 cut": 0.9}),
               ice_plots.query_difficulty(views.query_summary(per_query)),
               ice_plots.similarity_vs_strict(per_instance)]
    assert all(len(fig.data) >= 1 for fig in figures)


def test_live_endpoint_from_env_gives_a_client_config_without_the_key(monkeypatch):
    from toolqual_utils.ice.views import live_endpoint_from_env
    from toolqual_utils.llm import LLMConfig

    for name in ("TOOLQUAL_ICE_MODEL", "TOOLQUAL_BASE_URL", "OPENAI_API_KEY", "TOOLQUAL_TOKEN_LIMIT_PARAM",
                 "TOOLQUAL_NO_TEMPERATURE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOOLQUAL_ICE_MODEL", "target-model")
    assert live_endpoint_from_env() is None            # neither a key nor a local endpoint
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret-123456")
    monkeypatch.setenv("TOOLQUAL_TOKEN_LIMIT_PARAM", "max_completion_tokens")
    monkeypatch.setenv("TOOLQUAL_NO_TEMPERATURE", "1")
    endpoint = live_endpoint_from_env()
    assert "sk-test" not in json.dumps(endpoint)
    config = LLMConfig(**endpoint, cache_path=None)
    assert (config.model, config.base_url) == ("target-model", None)
    assert config.token_limit_param == "max_completion_tokens" and config.send_temperature is False


@pytest.mark.parametrize("damage, message", [
    (lambda text: text.encode("utf-8") + b"\xff\xfe broken\n", "not UTF-8"),
    (lambda text: (text + "{not json\n").encode("utf-8"), "not valid JSON"),
    (lambda text: (text + "[1, 2]\n").encode("utf-8"), "expected a JSON object"),
])
def test_damaged_queries_file_names_file_and_line(tmp_path, damage, message):
    target = _copy_testbed(tmp_path)
    queries = target / "queries.jsonl"
    queries.write_bytes(damage(queries.read_text(encoding="utf-8")))
    with pytest.raises(InputError, match=message) as caught:
        load_testbed(target)
    assert "queries.jsonl" in str(caught.value)


def test_canonical_file_with_a_byte_order_mark_loads(tmp_path):
    from toolqual_utils.io import read_instances

    line = json.dumps({"id": "bom/1", "source": "bom", "instruction": "Say hi.", "tools": [], "calls": []})
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line.encode("utf-8") + b"\n")
    [instance] = read_instances(path, strict=True)
    assert instance.id == "bom/1"
