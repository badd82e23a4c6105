"""toolqual evaluate: test items, answer reading, static scoring, and the command end to end against the
OpenAI-compatible TEST DOUBLE (scripted answers, never a model's results)."""
from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from toolqual_utils.evaluate.answers import final_response, parse_model_answer, parse_text_calls
from toolqual_utils.evaluate.engine import OUTCOME_COLUMNS, RunLabels, run_static
from toolqual_utils.evaluate.prompting import ToolNames
from toolqual_utils.evaluate.static import StaticSettings, partial_credit, score_answer, static_request
from toolqual_utils.evaluate.testset import build_test_items, flagged_by_verdicts, possible_answer_for
from toolqual_utils.errors import InputError
from toolqual_utils.io import read_instances, read_table
from toolqual_utils.llm import ChatResult, LLMClient, LLMConfig
from toolqual_utils.schema import Instance
from toolqual_utils.testing import Reply
from conftest import DATA, run_cli

BFCL = DATA / "bfcl.jsonl"
TOOLALPACA = DATA / "toolalpaca_eval.jsonl"
ENV = {**os.environ, "OPENAI_API_KEY": "test-key-not-a-secret"}
ENV.pop("OPENAI_BASE_URL", None)
ENV.pop("TOOLQUAL_BASE_URL", None)


def toolqual(*args, cwd, timeout=300):
    """The command line in-process (same parser, same error handling as the console script)."""
    return run_cli(args, cwd)


def _weather_instance(**overrides) -> Instance:
    record = {
        "id": "t/weather", "source": "t", "instruction": "Weather in Paris in Celsius, and in Oslo?",
        "tools": [{"name": "weather.get", "description": "Current weather.",
                   "parameters": {"type": "object", "properties": {
                       "city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"], "default": "C"},
                       "days": {"type": "integer"}}, "required": ["city"]}}],
        "calls": [{"name": "weather.get", "arguments": {"city": "Paris", "unit": "C"}},
                  {"name": "weather.get", "arguments": {"city": "Oslo", "days": 2}}],
        "meta": {},
    }
    record.update(overrides)
    return Instance.model_validate(record)


def _result(text=None, tool_calls=None, status="ok", error=None):
    return ChatResult("x", status, text, tool_calls, "stop", 1, 1, False, error)


# ---------------------------------------------------------------------------------------------- test items
def test_gold_answers_come_from_bfcl_lists_or_from_the_calls():
    bfcl = read_instances(BFCL)
    answer, origin = possible_answer_for(bfcl[0])
    assert origin == "calls" and answer == ()  # irrelevance: calls == [], the right answer is to call nothing
    parallel = next(i for i in bfcl if i.meta["bfcl_category"] == "parallel_multiple")
    answer, origin = possible_answer_for(parallel)
    assert origin == "bfcl" and list(answer) == parallel.meta["bfcl_possible_answer"]
    # derived: the value is the one acceptable value; "" (may be left out) only for an optional argument
    # equal to its schema default
    answer, origin = possible_answer_for(_weather_instance())
    assert origin == "calls"
    assert answer == ({"weather.get": {"city": ["Paris"], "unit": ["C", ""]}},
                      {"weather.get": {"city": ["Oslo"], "days": [2]}})


def test_unparsed_gold_calls_skip_static_items_but_not_multistep_ones():
    broken = _weather_instance(calls=[{"name": "weather.get", "arguments": {"city": "Paris"}},
                                      {"name": "weather.get", "arguments": None, "raw_arguments": "${city from x}"}])
    no_gold = _weather_instance(id="t/none", calls=None)
    items, skipped = build_test_items([broken, no_gold])
    assert items == [] and [s["id"] for s in skipped] == ["t/weather", "t/none"]
    assert "could not be parsed" in skipped[0]["reason"] and "no gold calls" in skipped[1]["reason"]
    items, _ = build_test_items([broken], partial_gold=True)
    assert items[0].gold_from == "calls (partial)" and not items[0].complete_gold and items[0].n_gold_calls == 2


def test_toolalpaca_empty_arguments_may_be_left_out():
    instance = next(i for i in read_instances(TOOLALPACA) if i.meta.get("dropped_empty_arguments"))
    answer, _ = possible_answer_for(instance)
    dropped = instance.meta["dropped_empty_arguments"][0]
    spec = next(iter(answer[dropped["call_index"]].values()))
    assert all(spec[name] == [""] for name in dropped["names"])


def test_verdicts_flag_items_with_an_error_and_never_for_unscored(tmp_path):
    verdicts = pd.DataFrame([
        ("a", "specificity", 0, "ok"), ("a", "minimality", 1, "ok"),
        ("b", "minimality", 0, "ok"), ("b", "specificity", 1, "ok"),
        ("c", "solvability", None, "unscored:needs-model"), ("c", "coherence", 1, "ok"),
    ], columns=["instance_id", "criterion", "label", "status"])
    path = tmp_path / "v.csv"
    verdicts.to_csv(path, index=False)
    assert flagged_by_verdicts(path) == {"a": ["specificity"], "b": ["minimality"]}
    assert flagged_by_verdicts(path, ["instruction_ok"]) == {"a": ["specificity"]}
    assert flagged_by_verdicts(verdicts, ["minimality", "coherence"]) == {"b": ["minimality"]}
    with pytest.raises(InputError, match="unknown criterion 'nice'"):
        flagged_by_verdicts(verdicts, ["nice"])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"x": [1]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match="bad.csv.*not a verdict table"):
        flagged_by_verdicts(bad)


# ---------------------------------------------------------------------------------------------- answers
def test_calls_are_read_from_text_when_the_server_has_no_tool_parser():
    hermes = 'Sure.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>{"name": "g", "arguments": {}}</tool_call>'
    assert parse_text_calls(hermes).calls == [{"name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": {}}]
    assert parse_text_calls("Action: f\nAction Input: {\"x\": 2}").calls == [{"name": "f", "arguments": {"x": 2}}]
    assert parse_text_calls('[{"name": "f", "arguments": {"x": 3}}]').calls == [{"name": "f", "arguments": {"x": 3}}]
    assert parse_text_calls("It is sunny in Paris.").calls == []
    assert not parse_text_calls("<tool_call>{name: f}</tool_call>").ok
    assert parse_model_answer("tools", "ignored", [{"name": "f", "arguments": "{\"x\": 1}"}]).calls == [
        {"name": "f", "arguments": {"x": 1}}]
    assert not parse_model_answer("json", "I would call f.").ok
    assert final_response("Thought: done\nFinal Answer: It is 20 C.") == "It is 20 C."


# ---------------------------------------------------------------------------------------------- static scoring
def test_static_scoring_exact_partial_and_unreadable():
    [item], _ = build_test_items([_weather_instance()])
    settings = StaticSettings()
    request, names = static_request(item, settings)
    assert [t["function"]["name"] for t in request.tools] == ["weather_get"]  # "." is not allowed in tool names
    assert request.messages == ({"role": "user", "content": item.instance.instruction},)
    both = [{"name": "weather_get", "arguments": json.dumps({"city": "Oslo", "days": 2})},
            {"name": "weather_get", "arguments": json.dumps({"city": "paris"})}]  # order-free; "C" may be left out
    row = score_answer(item, _result(tool_calls=both), settings, names)
    assert (row["passed"], row["score"], row["status"], row["reason"]) == (1.0, 1.0, "ok", None)
    assert json.loads(row["predicted_calls"])[0]["name"] == "weather.get"
    one_wrong = [both[0], {"name": "weather_get", "arguments": json.dumps({"city": "Rome"})}]
    row = score_answer(item, _result(tool_calls=one_wrong), settings, names)
    assert (row["passed"], row["score"]) == (0.0, 0.5) and "'Rome'" in row["reason"]
    row = score_answer(item, _result(tool_calls=both + both[:1]), settings, names)
    assert (row["passed"], row["score"]) == (0.0, 2 / 3)
    row = score_answer(item, _result(tool_calls=[{"name": "weather_get", "arguments": "{city"}]), settings, names)
    assert (row["passed"], row["score"], row["status"]) == (0.0, 0.0, "parse_error")
    unscored = score_answer(item, _result(tool_calls=[{"name": "weather_get", "arguments": "{city"}]),
                            StaticSettings(parse_errors="unscored"), names)
    assert math.isnan(unscored["passed"]) and unscored["status"] == "unscored:parse_error"
    failed = score_answer(item, _result(status="unscored:api_error", error="HTTP 500"), settings, names)
    assert math.isnan(failed["passed"]) and failed["status"] == "unscored:api_error" and failed["reason"] == "HTTP 500"
    assert partial_credit(0, 0, 0) == 1.0 and partial_credit(1, 3, 2) == 1 / 3


def test_static_formats_and_routes():
    [item], _ = build_test_items([_weather_instance()])
    json_request, _ = static_request(item, StaticSettings(call_format="json"))
    assert json_request.tools is None and '"name": "weather.get"' in json_request.messages[0]["content"]
    completion, _ = static_request(item, StaticSettings(api="completions", call_format="react"))
    assert completion.prompt.endswith(f"### Request\n{item.instance.instruction}\n### Answer\n")
    assert completion.stop == ("\n###",) and completion.prompt_id == "evaluate_completion_react.v1"
    with pytest.raises(ValueError, match="needs the chat API"):
        StaticSettings(api="completions", call_format="tools")
    names = ToolNames(item.instance.tools)
    assert names.restore([{"name": "weather_get", "arguments": {}}, {"name": "other"}])[0]["name"] == "weather.get"


# ---------------------------------------------------------------------------------------------- CLI, static
def _bfcl_plan():
    """The scripted target's plan for every BFCL item: right, wrong or unreadable (by position)."""
    instances = read_instances(BFCL)
    plan = {}
    for index, instance in enumerate(instances):
        names = ToolNames(instance.tools)
        key = (instance.instruction, tuple(sorted(names.sent.values())))
        if key in plan:  # two live_simple pairs are the same question with the same gold: same answer
            assert plan[key][0].calls == instance.calls
            plan[key][3].append(instance)
            continue
        plan[key] = (instance, ("right", "wrong", "unreadable")[index % 3], names, [instance])
    assert sum(len(p[3]) for p in plan.values()) == len(instances) == 325
    return plan


def _bfcl_script(plan):
    def script(body):
        instruction = body["messages"][-1]["content"]
        key = (instruction, tuple(sorted(t["function"]["name"] for t in body.get("tools") or [])))
        instance, kind, names, _ = plan[key]
        gold = [{"name": names.sent[c.name], "arguments": c.arguments} for c in instance.calls]
        if kind == "unreadable":
            return Reply(content="<tool_call>{\"name\": oops</tool_call>")
        if kind == "right":
            return Reply(tool_calls=gold, finish_reason="tool_calls") if gold else Reply(content="No tool fits this.")
        if not gold:  # wrong for "call nothing": a call
            return Reply(tool_calls=[{"name": names.sent[instance.tools[0].name], "arguments": {}}])
        wrong = [dict(c) for c in gold]
        wrong[0] = {"name": wrong[0]["name"], "arguments": {**(wrong[0]["arguments"] or {}), "zz_not_an_arg": 1}}
        return Reply(tool_calls=wrong, finish_reason="tool_calls")
    return script


def test_evaluate_bfcl_writes_the_pass_fail_the_script_implies(openai_double, tmp_path):
    plan = _bfcl_plan()
    openai_double.script = _bfcl_script(plan)
    out = tmp_path / "runs" / "a.csv"
    done = toolqual("evaluate", BFCL, "--model", "scripted-ft", "--base-url", openai_double.base_url, "--run", "random",
                    "--out", out, "--cache", tmp_path / "c.sqlite", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outcomes = read_table(out)
    assert list(outcomes.columns) == list(OUTCOME_COLUMNS) and len(outcomes) == 325
    assert openai_double.hits == 325
    assert set(outcomes["run"]) == {"random"} and set(outcomes["benchmark"]) == {"bfcl"}
    by_id = outcomes.set_index("item_id")
    defect = "bfcl/parallel_multiple/parallel_multiple_26"  # its gold calls use an argument the schema lacks
    for _, kind, _, instances in plan.values():
        for instance in instances:
            row = by_id.loc[instance.id]
            if kind == "unreadable":
                assert (row["passed"], row["status"]) == (0, "parse_error"), instance.id
            elif kind == "wrong":
                assert (row["passed"], row["status"]) == (0, "ok"), instance.id
            elif instance.id == defect:
                assert row["passed"] == 0 and "unexpected argument 'type'" in row["reason"]
            else:
                assert (row["passed"], row["score"]) == (1, 1.0), (instance.id, row["reason"])
    n_right = sum(len(same) for _, kind, _, same in plan.values() if kind == "right")
    assert int(outcomes["passed"].sum()) == n_right - 1
    assert f"passed {n_right - 1} of 325 scored items" in done.stdout
    manifest = json.loads((tmp_path / "runs" / "a.csv.manifest.json").read_text())
    n_unreadable = sum(len(same) for _, kind, _, same in plan.values() if kind == "unreadable")
    assert manifest["n_items"] == 325 and manifest["summary"]["n_parse_errors"] == n_unreadable
    assert manifest["test_files"][0]["sha256"] and manifest["base_url"] == openai_double.base_url
    assert "test-key" not in json.dumps(manifest)
    # a rerun answers from the cache: nothing is sent twice
    again = toolqual("evaluate", BFCL, "--model", "scripted-ft", "--base-url", openai_double.base_url, "--run",
                     "random", "--out", tmp_path / "b.csv", "--cache", tmp_path / "c.sqlite", cwd=tmp_path)
    assert again.returncode == 0 and openai_double.hits == 325
    assert read_table(tmp_path / "b.csv")["passed"].tolist() == outcomes["passed"].tolist()


@pytest.mark.slow
def test_killed_evaluate_resumes_without_repeating_answered_requests(openai_double, tmp_path):
    plan = _bfcl_plan()
    script = _bfcl_script(plan)
    openai_double.script = lambda body: Reply(**{**vars(script(body)), "delay_s": 0.1})
    cache = tmp_path / "resume.sqlite"
    command = [sys.executable, "-m", "toolqual_utils.cli", "evaluate", str(BFCL), "--model", "scripted-ft",
               "--base-url", openai_double.base_url, "--concurrency", "4", "--limit", "80",
               "--out", str(tmp_path / "r.csv"), "--cache", str(cache)]
    proc = subprocess.Popen(command, env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n_cached = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if cache.exists():
                try:
                    with sqlite3.connect(cache, timeout=5) as conn:
                        n_cached = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
            if n_cached >= 12:
                break
            time.sleep(0.03)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode != 0, "the run finished before it could be killed"
    with sqlite3.connect(cache) as conn:
        answered = {row[0] for row in conn.execute("SELECT custom_id FROM responses")}
    assert 12 <= len(answered) < 80 and not (tmp_path / "r.csv").exists()
    openai_double.reset()
    resumed = subprocess.run(command, env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    resent = {f"evaluate|static|{plan[(b['messages'][-1]['content'], tuple(sorted(t['function']['name'] for t in b.get('tools') or [])))][0].id}"
              for b in openai_double.bodies}
    assert not resent & answered  # no answered request was sent again
    assert openai_double.hits == 80 - len(answered)
    assert len(read_table(tmp_path / "r.csv")) == 80


def test_export_and_import_batch_round_trip(openai_double, tmp_path):
    plan = _bfcl_plan()
    script = _bfcl_script(plan)
    common = ["--model", "scripted-ft", "--limit", "30", "--cache", tmp_path / "c.sqlite"]
    exported = toolqual("evaluate", BFCL, *common, "--out", tmp_path / "x.csv", "--export-batch",
                        tmp_path / "batch.jsonl", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in (tmp_path / "batch.jsonl").read_text().splitlines()]
    assert len(lines) == 30 and {line["url"] for line in lines} == {"/v1/chat/completions"}
    with (tmp_path / "results.jsonl").open("w") as handle:  # play the Batch API with the scripted target
        for line in lines:
            reply = script(line["body"])
            message = {"role": "assistant", "content": reply.content}
            if reply.tool_calls:
                message["tool_calls"] = [{"id": f"c{i}", "type": "function", "function": {
                    "name": c["name"], "arguments": json.dumps(c["arguments"])}} for i, c in enumerate(reply.tool_calls)]
            body = {"choices": [{"message": message, "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 3}}
            handle.write(json.dumps({"custom_id": line["custom_id"], "response": {"status_code": 200, "body": body}}) + "\n")
    imported = toolqual("evaluate", BFCL, *common, "--out", tmp_path / "x.csv", "--import-batch",
                        tmp_path / "results.jsonl", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    # the same run live against the double gives the same outcomes
    openai_double.script = script
    live = toolqual("evaluate", BFCL, "--model", "scripted-ft", "--limit", "30", "--base-url", openai_double.base_url,
                    "--cache", tmp_path / "live.sqlite", "--out", tmp_path / "live.csv", cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    batch, direct = read_table(tmp_path / "x.csv"), read_table(tmp_path / "live.csv")
    assert batch["passed"].tolist() == direct["passed"].tolist() and batch["status"].tolist() == direct["status"].tolist()
    assert openai_double.hits == 30  # only the live run reached the double
    replay = toolqual("evaluate", BFCL, *common, "--out", tmp_path / "y.csv", "--replay", cwd=tmp_path)
    assert replay.returncode == 0 and read_table(tmp_path / "y.csv")["passed"].tolist() == batch["passed"].tolist()


def test_exclude_verdicts_drops_flagged_items_and_the_manifest_lists_them(openai_double, tmp_path):
    openai_double.script = Reply(content="No tool.")
    instances = read_instances(BFCL)[:6]
    verdicts = pd.DataFrame([(instances[1].id, "specificity", 0), (instances[4].id, "minimality", 0),
                             (instances[2].id, "minimality", 1), (instances[3].id, "solvability", 0)],
                            columns=["instance_id", "criterion", "label"])
    verdicts.to_csv(tmp_path / "judge.csv", index=False)
    done = toolqual("evaluate", BFCL, "--model", "m", "--base-url", openai_double.base_url, "--limit", "4",
                    "--exclude-verdicts", tmp_path / "judge.csv", "--out", tmp_path / "o.jsonl",
                    "--cache", "none", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outcomes = read_table(tmp_path / "o.jsonl")
    assert outcomes["item_id"].tolist() == [instances[i].id for i in (0, 2, 3, 5)]
    manifest = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert manifest["excluded"] == [{"id": instances[1].id, "criteria": ["specificity"]},
                                    {"id": instances[4].id, "criteria": ["minimality"]}]
    assert manifest["n_excluded"] == 2 and manifest["exclude_verdicts"]["criteria"] == ["overall_ok"]
    # irrelevance items (gold: call nothing) answered in plain text pass; instances[3] is unsolvable on
    # purpose (its gold answer is to call nothing), so that flag does not drop it
    assert outcomes["passed"].tolist() == [1, 1, 1, 1]
    assert instances[3].calls == [] and instances[3].id in outcomes["item_id"].tolist()


def test_completions_api_static_run(openai_double, tmp_path):
    def script(body):
        assert "prompt" in body and body["stop"] == ["\n###"]
        return Reply(content="Final Answer: no API fits.\n### Request\nnext")
    openai_double.script = script
    done = toolqual("evaluate", BFCL, "--model", "base", "--base-url", openai_double.base_url, "--limit", "3",
                    "--api", "completions", "--format", "react", "--out", tmp_path / "o.csv", "--cache", "none",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outcomes = read_table(tmp_path / "o.csv")
    assert outcomes["passed"].tolist() == [1, 1, 1] and set(outcomes["prompt_id"]) == {"evaluate_completion_react.v1"}
    assert set(openai_double.paths) == {"/v1/completions"}
    refused = toolqual("evaluate", BFCL, "--model", "base", "--api", "completions", "--out", tmp_path / "p.csv",
                       cwd=tmp_path)
    assert refused.returncode != 0 and "needs the chat API" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_inputs_are_one_paragraph(tmp_path):
    cases = [
        (["evaluate", BFCL, "--model", "m", "--out", tmp_path / "o.txt"], "--out must end in"),
        (["evaluate", BFCL, "--model", "m"], "--out FILE is needed"),
        (["evaluate", BFCL, "--model", "m", "--out", tmp_path / "o.csv", "--mode", "multistep"], "--judge-model"),
        (["evaluate", BFCL, "--model", "m", "--out", tmp_path / "o.csv", "--exclude-verdicts", tmp_path / "nope.csv"],
         "no such verdict file"),
        (["evaluate", DATA / "toolbench_queries.jsonl", "--model", "m", "--out", tmp_path / "o.csv"], "no test item left"),
        (["evaluate", BFCL, "--model", "m", "--out", tmp_path / "o.csv", "--mode", "multistep", "--format", "json",
          "--judge-model", "j"], "one-shot JSON list"),
    ]
    for args, message in cases:
        done = toolqual(*args, cwd=tmp_path)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_plan_sends_nothing_and_needs_no_out(openai_double, tmp_path):
    done = toolqual("evaluate", BFCL, "--model", "m", "--base-url", openai_double.base_url, "--plan", "--price-in",
                    "1", "--price-out", "2", "--cache", tmp_path / "c.sqlite", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "plan: 325 requests, 0 cached, 325 to send" in done.stdout and openai_double.hits == 0
    multi = toolqual("evaluate", TOOLALPACA, "--model", "m", "--mode", "multistep", "--judge-model", "j", "--plan",
                     "--cache", "none", cwd=tmp_path)
    assert multi.returncode == 0 and "plan (first agent round only): 214 requests" in multi.stdout


def test_run_static_in_process_counts_unscored_apart(openai_double, tmp_path):
    openai_double.script = [Reply(content="No tool."), Reply(status=500), Reply(status=500)]
    items, _ = build_test_items(read_instances(BFCL)[:2])
    client = LLMClient(LLMConfig(model="m", base_url=openai_double.base_url, max_retries=1, cache_path=None,
                                 concurrency=1))
    labels = RunLabels("r", "bfcl", "m", "static", "chat", "tools", "evaluate_tools.v1")
    outcomes = run_static(items, client, StaticSettings(), labels)
    assert outcomes["passed"].tolist()[0] == 1 and math.isnan(outcomes["passed"].tolist()[1])
    assert outcomes["status"].tolist() == ["ok", "unscored:api_error"]
