"""toolqual evaluate --mode multistep: agent, simulator and judge all scripted on the TEST DOUBLE (its
answers are whatever the test wrote; nothing here is a model's result)."""
from __future__ import annotations

import json
import math

import pytest

from toolqual_utils.evaluate.multistep import (MultiStepSettings, parse_simulator_reply, parse_toolalpaca_verdict,
                                               parse_tooleval_verdict)
from toolqual_utils.io import read_table
from toolqual_utils.testing import Reply
from conftest import run_cli


TOOLS = [
    {"name": "get_weather", "description": "Current weather of a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "search_books", "description": "Search books by keyword.",
     "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
]


def _item(name, instruction, calls):
    return {"id": f"ms/{name}", "source": "ms", "instruction": instruction, "tools": TOOLS, "calls": calls, "meta": {}}


ITEMS = [
    _item("gold", "GOLD: weather in Paris?", [{"name": "get_weather", "arguments": {"city": "Paris"},
                                               "observation": "{\"temp_c\": 20}"}]),
    _item("simulated", "SIM: find books about owls", [{"name": "search_books", "arguments": {"q": "owls"}}]),
    _item("endless", "LOOP: keep searching", [{"name": "search_books", "arguments": {"q": "x"}}]),
    _item("uncertain", "UNSURE: weather in Oslo?", [{"name": "get_weather", "arguments": {"city": "Oslo"}}]),
    _item("badsim", "BADSIM: books about cats", [{"name": "search_books", "arguments": {"q": "cats"}}]),
    _item("badjudge", "BADJUDGE: use a tool that does not exist",
          [{"name": "get_weather", "arguments": {"city": "Rome"}}]),
    _item("partial", "PARTIAL: weather where the book is set",
          [{"name": "search_books", "arguments": {"q": "novel"}},
           {"name": "get_weather", "arguments": None, "raw_arguments": "{\"city\": \"${city from search_books}\"}"}]),
]


def _instruction(body):
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def _n_results(body):
    return sum(m["role"] == "tool" for m in body["messages"])


def agent_reply(body):
    instruction, seen = _instruction(body), _n_results(body)
    tag = instruction.split(":")[0]
    call = None
    if tag == "GOLD" and seen == 0:
        call = {"name": "get_weather", "arguments": {"city": "paris"}}  # matches the gold call (normalised)
    elif tag in ("SIM", "BADSIM", "PARTIAL") and seen == 0:
        call = {"name": "search_books", "arguments": {"q": {"SIM": "owls", "BADSIM": "cats"}.get(tag, "novel")}}
    elif tag == "UNSURE" and seen == 0:
        call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    elif tag == "BADJUDGE" and seen == 0:
        call = {"name": "teleport", "arguments": {}}
    elif tag == "LOOP":
        call = {"name": "search_books", "arguments": {"q": f"page {seen}"}}
    if call is not None:
        return Reply(tool_calls=[call], finish_reason="tool_calls")
    last = body["messages"][-1]["content"]
    return Reply(content=f"Here is what I found: {last}")


def simulator_reply(body):
    text = body["messages"][0]["content"]
    assert "API: search_books" in text or "API: get_weather" in text
    if '"cats"' in text:
        return Reply(content="I think the books are great.")
    arguments = json.loads(text.rsplit("Request:\n", 1)[1])["arguments"]
    if "city" in arguments:
        return Reply(content=f"Status Code: 200\nResponse: {json.dumps({'city': arguments['city'], 'temp_c': 3})}")
    query = arguments["q"]
    return Reply(content=f"Status Code: 200\nResponse: {json.dumps({'books': [query + ' 1', query + ' 2', query + ' 3']})}\n"
                         "Explanation: three books.")


def judge_reply(body):
    text = body["messages"][0]["content"]
    if "GOLD:" in text:
        assert "Returns: {\"temp_c\": 20}" in text and "1. Function: get_weather" in text
        return Reply(content="## Analysis\nAll good.\n## Results\nProcess Correctness: Yes\nFinal Response Correctness: Yes")
    if "SIM:" in text:
        return Reply(content="## Analysis\nwrong query\n## Results\nProcess Correctness: No\n**Final Response Correctness:** Yes")
    if "UNSURE:" in text:
        return Reply(content="## Results\nProcess Correctness: Yes\nFinal Response Correctness: Uncertain")
    if "PARTIAL:" in text:
        assert "${city from search_books}" in text  # the reference answer keeps the unparsed gold call as text
        return Reply(content="## Results\nProcess Correctness: No\nFinal Response Correctness: No")
    return Reply(content="Looks fine to me!")


def three_roles(body):
    return {"agent-ft": agent_reply, "sim-model": simulator_reply, "judge-model": judge_reply}[body["model"]](body)


def _run(tmp_path, double, *extra, out="o.csv"):
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ITEMS))
    command = ["evaluate", data, "--mode", "multistep", "--model", "agent-ft", "--judge-model", "judge-model",
               "--simulator-model", "sim-model", "--max-steps", "3", "--run", "hiseq", "--out", tmp_path / out, *extra]
    if double is not None:
        command += ["--base-url", double.base_url]
    return run_cli(command, tmp_path)


def test_multistep_end_to_end_with_scripted_agent_simulator_and_judge(openai_double, tmp_path):
    openai_double.script = three_roles
    done = _run(tmp_path, openai_double, "--cache", tmp_path / "c.sqlite")
    assert done.returncode == 0, done.stderr
    outcomes = read_table(tmp_path / "o.csv").set_index("item_id")
    assert len(outcomes) == len(ITEMS) and set(outcomes["mode"]) == {"multistep"} and set(outcomes["run"]) == {"hiseq"}
    gold = outcomes.loc["ms/gold"]
    assert (gold["passed"], gold["score"], gold["n_gold_observations"], gold["n_simulated"]) == (1, 1.0, 1, 0)
    simulated = outcomes.loc["ms/simulated"]
    assert (simulated["passed"], simulated["score"], simulated["n_simulated"]) == (0, 0.5, 1)
    assert simulated["reason"] == "process=No; final response=Yes" and "owls 1" in simulated["answer_text"]
    endless = outcomes.loc["ms/endless"]
    assert (endless["passed"], endless["n_steps"]) == (0, 3) and "no final response within 3 steps" in endless["reason"]
    assert outcomes.loc["ms/uncertain", "status"] == "unscored:judge_uncertain"
    assert math.isnan(outcomes.loc["ms/uncertain", "passed"])
    assert outcomes.loc["ms/badsim", "status"] == "unscored:simulator_unparseable"
    assert outcomes.loc["ms/badjudge", "status"] == "unscored:judge_unparseable"
    assert outcomes.loc["ms/partial", "passed"] == 0 and outcomes.loc["ms/partial", "n_gold_calls"] == 2
    # requests per role: the judge never saw the endless item or the ones already unscored
    by_model = [b["model"] for b in openai_double.bodies]
    assert by_model.count("judge-model") == 5
    assert by_model.count("sim-model") == 1 + 3 + 1 + 1 + 1  # simulated, endless x3, uncertain, badsim, partial
    # tool results went back to the agent as tool messages tied to its calls
    second = next(b for b in openai_double.bodies if b["model"] == "agent-ft" and _n_results(b) == 1
                  and _instruction(b).startswith("GOLD"))
    assert second["messages"][1]["tool_calls"][0]["id"] == second["messages"][2]["tool_call_id"]
    assert second["messages"][2]["content"] == "{\"temp_c\": 20}"
    badjudge = json.loads([line for line in (tmp_path / "o.trajectories.jsonl").read_text().splitlines()
                           if "badjudge" in line][0])
    assert badjudge["steps"][0]["observations"][0]["origin"] == "error" and "teleport" in badjudge["steps"][0]["observations"][0]["text"]
    assert badjudge["judge_answer"] == "Looks fine to me!"
    manifest = json.loads((tmp_path / "o.csv.manifest.json").read_text())
    assert manifest["judge_model"] == "judge-model" and manifest["simulator_model"] == "sim-model"
    assert manifest["summary"]["unscored_by_reason"] == {"unscored:judge_uncertain": 1,
                                                         "unscored:simulator_unparseable": 1,
                                                         "unscored:judge_unparseable": 1}
    # a rerun replays the same world from the cache: no request reaches the double
    hits = openai_double.hits
    again = _run(tmp_path, openai_double, "--cache", tmp_path / "c.sqlite", out="again.csv")
    assert again.returncode == 0 and openai_double.hits == hits
    assert read_table(tmp_path / "again.csv")["status"].tolist() == read_table(tmp_path / "o.csv")["status"].tolist()


def test_tooleval_judge_and_uncertain_as_fail(openai_double, tmp_path):
    def judge(body):
        text = body["messages"][0]["content"]
        status = "Solved" if "GOLD:" in text else "Unsure"
        return Reply(content=json.dumps({"reason": "scripted", "answer_status": status}))
    openai_double.script = lambda body: judge(body) if body["model"] == "judge-model" else three_roles(body)
    done = _run(tmp_path, openai_double, "--cache", "none", "--judge", "tooleval", "--uncertain", "fail")
    assert done.returncode == 0, done.stderr
    outcomes = read_table(tmp_path / "o.csv").set_index("item_id")
    assert outcomes.loc["ms/gold", "passed"] == 1 and outcomes.loc["ms/simulated", "passed"] == 0
    assert outcomes.loc["ms/simulated", "reason"].startswith("answer_status=Unsure")
    assert set(outcomes["prompt_id"]) == {"agent_tools.v1"}
    judge_bodies = [b for b in openai_double.bodies if b["model"] == "judge-model"]
    assert all("answer_status" in b["messages"][0]["content"] for b in judge_bodies)


def test_react_agent_over_chat_and_over_completions(openai_double, tmp_path):
    def react_agent(body):
        if "prompt" in body:  # completions: the scratchpad is in the prompt text
            assert body["stop"] == ["\nObservation:", "\n###"]
            if "Observation:" in body["prompt"].split("### Solution")[1]:
                return Reply(content="Thought: done\nFinal Answer: 20 C")
            return Reply(content="Thought: look it up\nAction: get_weather\nAction Input: {\"city\": \"Paris\"}\n"
                                 "Observation: invented by the model")
        if body["messages"][-1]["content"].startswith("Observation:"):
            return Reply(content="Thought: done\nFinal Answer: 20 C")
        return Reply(content="Thought: look it up\nAction: get_weather\nAction Input: {\"city\": \"Paris\"}\n"
                             "Observation: invented by the model\nAction: search_books\nAction Input: {\"q\": \"x\"}")

    def script(body):
        if body["model"] == "agent-ft":
            return react_agent(body)
        return Reply(content="## Results\nProcess Correctness: Yes\nFinal Response Correctness: Yes")

    openai_double.script = script
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps(ITEMS[0]) + "\n")
    for api in ("chat", "completions"):
        out = tmp_path / f"{api}.csv"
        done = run_cli(["evaluate", data, "--mode", "multistep", "--format", "react", "--api", api, "--model",
                        "agent-ft", "--judge-model", "judge-model", "--base-url", openai_double.base_url, "--cache",
                        "none", "--out", out], tmp_path)
        assert done.returncode == 0, done.stderr
        row = read_table(out).iloc[0]
        # the invented observation (and any call after it) is cut off: one call, answered from the gold
        assert (row["passed"], row["n_steps"], row["n_predicted_calls"], row["n_gold_observations"]) == (1, 1, 1, 1)
        assert row["answer_text"] == "20 C"
    chat_followup = [b for b in openai_double.bodies if b.get("messages") and b["model"] == "agent-ft"][-1]
    assert chat_followup["messages"][-1] == {"role": "user", "content": "Observation: {\"temp_c\": 20}"}
    assert "invented" not in json.dumps(chat_followup)
    completion_followup = [b for b in openai_double.bodies if "prompt" in b][-1]
    assert completion_followup["prompt"].endswith("Action Input: {\"city\": \"Paris\"}\nObservation: {\"temp_c\": 20}\n")


def test_multistep_batch_rounds_reach_the_live_outcomes(openai_double, tmp_path):
    openai_double.script = three_roles
    live = _run(tmp_path, openai_double, "--cache", tmp_path / "live.sqlite", out="live.csv")
    assert live.returncode == 0, live.stderr
    hits = openai_double.hits
    cache = tmp_path / "batch.sqlite"
    results: list = []
    roles = []
    for cycle in range(12):
        export = tmp_path / f"round{cycle}.jsonl"
        args = ["--cache", cache, "--export-batch", export] + (["--import-batch", *results] if results else [])
        done = _run(tmp_path, None, *args, out="batch.csv")
        assert done.returncode == 0, done.stderr
        if (tmp_path / "batch.csv").exists():
            break
        [written] = [p for p in tmp_path.glob(f"round{cycle}.*.jsonl")]
        roles.append(written.name.split(".")[1])
        answers = tmp_path / f"answers{cycle}.jsonl"
        with answers.open("w") as handle:  # play the Batch API with the scripted roles
            for line in written.read_text().splitlines():
                request = json.loads(line)
                reply = three_roles(request["body"])
                message = {"role": "assistant", "content": reply.content}
                if reply.tool_calls:
                    message["tool_calls"] = [{"id": f"x{i}", "type": "function", "function": {
                        "name": c["name"], "arguments": json.dumps(c["arguments"])}} for i, c in enumerate(reply.tool_calls)]
                body = {"choices": [{"message": message, "finish_reason": "stop"}], "usage": {}}
                handle.write(json.dumps({"custom_id": request["custom_id"],
                                         "response": {"status_code": 200, "body": body}}) + "\n")
        results.append(answers)
    else:
        pytest.fail("the batch rounds never finished")
    assert openai_double.hits == hits  # the batch cycle never touched the double
    assert roles[:3] == ["agent", "simulator", "agent"] and roles[-1] == "judge"
    batch, direct = read_table(tmp_path / "batch.csv"), read_table(tmp_path / "live.csv")
    assert batch["status"].tolist() == direct["status"].tolist()
    assert batch["passed"].fillna(-1).tolist() == direct["passed"].fillna(-1).tolist()


def test_strict_parsers_of_simulator_and_judge_answers():
    assert parse_simulator_reply("Status Code: 404\nResponse: {\"error\": \"no such city\"}\nExplanation: x") == (
        404, {"error": "no such city"})
    assert parse_simulator_reply("Status Code: 200\nResponse: ```json\n[1, 2]\n```") == (200, [1, 2])
    assert "Status Code" in parse_simulator_reply("Response: {}")
    assert "not valid JSON" in parse_simulator_reply("Status Code: 200\nResponse: {oops}")
    assert parse_toolalpaca_verdict("## Results\nProcess Correctness: yes.\nFinal Response Correctness: **No**") == {
        "process": "Yes", "response": "No"}
    assert "expected one" in parse_toolalpaca_verdict(
        "## Results\nProcess Correctness: Yes\nProcess Correctness: No\nFinal Response Correctness: Yes")
    assert "not Yes, No or Uncertain" in parse_toolalpaca_verdict(
        "## Results\nProcess Correctness: Maybe\nFinal Response Correctness: Yes")
    # the words in the analysis do not count, only the results section
    assert parse_toolalpaca_verdict("## Analysis\nProcess Correctness: No was my first thought\n## Results\n"
                                    "Process Correctness: Yes\nFinal Response Correctness: Yes")["process"] == "Yes"
    assert parse_tooleval_verdict('{"reason": "ok", "answer_status": "Solved"}')["answer_status"] == "Solved"
    assert "not Solved" in parse_tooleval_verdict('{"answer_status": "Done"}')
    with pytest.raises(ValueError, match="one-shot JSON list"):
        MultiStepSettings(call_format="json")
