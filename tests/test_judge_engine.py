"""The judge engine through real HTTP against the OpenAI test double (never a model's judgement)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from toolqual_utils.judge import judge
from toolqual_utils.judge.engine import ENGINE_PROMPT_ID, build_requests
from toolqual_utils.judge.scripted import ScriptedJudge, asked_criteria, data_blocks
from toolqual_utils.llm import LLMClient, LLMConfig
from toolqual_utils.schema import CRITERIA, VERDICT_COLUMNS, Instance
from toolqual_utils.testing import Reply

TOOLS = [
    {"name": "get_weather", "description": "Weather for a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "day": {"type": "string"}},
                    "required": ["city"]}},
    {"name": "translate", "description": "Translate text",
     "parameters": {"type": "object", "properties": {"text": {"type": "string"}, "target": {"type": "string"}},
                    "required": ["text", "target"]}},
]


def _inst(id_: str, instruction: str, calls) -> Instance:
    return Instance.model_validate(
        {"id": id_, "source": "test", "instruction": instruction, "tools": TOOLS, "calls": calls}
    )


def _instances() -> list[Instance]:
    return [
        _inst("t/a", "What is the weather in Oslo tomorrow? Then translate the forecast into Spanish.",
              [{"name": "get_weather", "arguments": {"city": "Oslo", "day": "2024-05-02"}},
               {"name": "translate", "arguments": {"text": "forecast", "target": "es"}}]),
        _inst("t/b", "Translate hello into French.", [{"name": "translate", "arguments": {"text": "hello", "target": "French"}}]),
        _inst("t/c", "Tell me the weather in a famous city. Also translate goodbye.",
              [{"name": "get_weather", "arguments": {"city": "Paris"}}]),
    ]


def _config(double, tmp_path, **overrides) -> LLMConfig:
    options = {"model": "double-judge", "base_url": double.base_url, "cache_path": str(tmp_path / "cache.sqlite"),
               "max_retries": 0, "concurrency": 4}
    options.update(overrides)
    return LLMConfig(**options)


def _rules(rows) -> pd.DataFrame:
    return pd.DataFrame(
        [{"instance_id": i, "criterion": c, "label": label, "status": status, "judge": judge_, "prompt_id": "rules.v1",
          "rationale": "rule", "evidence": [{"check": "test_rule"}]} for i, c, label, status, judge_ in rows],
        columns=list(VERDICT_COLUMNS),
    )


def test_combined_run_verdicts_calls_per_instance_and_ledger(openai_double, tmp_path):
    """v1: the engine settles a one-sentence instruction and arguments found in the instruction itself."""
    script = ScriptedJudge(policy=lambda instruction, criterion: not ("famous" in instruction and criterion == "specificity"))
    openai_double.script = script
    run = judge(_instances(), _config(openai_double, tmp_path), progress=False, prompt_version=1)
    verdicts = run.verdicts
    assert list(verdicts.columns) == list(VERDICT_COLUMNS)
    assert len(verdicts) == 3 * len(CRITERIA)
    # one request per instance that still had something to ask
    calls = run.calls_per_instance.set_index("instance_id")
    assert int(calls["n_requests"].sum()) == openai_double.hits == len(script.asked)
    assert set(calls["n_requests"]) <= {0, 1}
    # t/b is one sentence with every argument found in the instruction: coherence and alignment need no model;
    # the judge's own code decided them, and says so (judge "engine", not "rules")
    b = verdicts[verdicts.instance_id == "t/b"].set_index("criterion")
    assert b.loc["coherence", "prompt_id"] == ENGINE_PROMPT_ID and b.loc["coherence", "judge"] == "engine"
    assert b.loc["parameter_alignment", "label"] == 1 and b.loc["parameter_alignment", "judge"] == "engine"
    assert "coherence" not in calls.loc["t/b", "criteria_asked"]
    c = verdicts[verdicts.instance_id == "t/c"].set_index("criterion")
    assert c.loc["specificity", "label"] == 0 and c.loc["specificity", "judge"] == "double-judge"
    assert c.loc["specificity", "prompt_id"] == "judge_combined.v1"
    assert run.ledger.loc[0, "n_sent"] == openai_double.hits
    assert run.summary()["n_requests"] == openai_double.hits


def test_v2_asks_what_v1_settled_in_code_and_decides_from_structured_answers(openai_double, tmp_path):
    """v2 asks coherence of a one-sentence instruction (it can glue two requests) and the alignment of
    arguments found in the instruction (a found word can still be a placeholder); labels come from parts."""
    def policy(instruction, criterion):
        return not ("famous" in instruction and criterion in ("specificity", "sufficiency"))

    script = ScriptedJudge(policy=policy)
    openai_double.script = script
    run = judge(_instances(), _config(openai_double, tmp_path), progress=False, combine_heuristics=False)
    verdicts = run.verdicts.set_index(["instance_id", "criterion"])
    asked = dict(script.asked)
    assert {"coherence", "parameter_alignment"} <= set(asked["Translate hello into French."])
    assert verdicts.loc[("t/b", "coherence"), "judge"] == "double-judge"
    assert verdicts.loc[("t/b", "parameter_alignment"), "prompt_id"] == "judge_combined.v2"
    assert verdicts.loc[("t/c", "specificity"), "label"] == 0 and verdicts.loc[("t/c", "sufficiency"), "label"] == 0
    assert "#missing" in verdicts.loc[("t/c", "specificity"), "rationale"]
    assert "no call aimed at" in verdicts.loc[("t/c", "sufficiency"), "rationale"]
    evidence = verdicts.loc[("t/c", "sufficiency"), "evidence"]
    assert evidence == [{"check": "sufficiency", "request": "the request", "solvable": True, "served_by": []}]
    assert set(verdicts["status"]) == {"ok"}


def test_rules_decided_criteria_are_not_sent(openai_double, tmp_path):
    script = ScriptedJudge()
    openai_double.script = script
    instances = _instances()
    rules = _rules(
        [("t/a", "sufficiency", 0, "ok", "rules"), ("t/a", "minimality", 1, "ok", "rules"),
         ("t/a", "solvability", None, "unscored:needs-model", "rules"),
         ("t/a", "specificity", 0, "ok", "heuristic")]  # heuristics never decide for the model
        + [("t/b", c, 0, "ok", "rules") for c in CRITERIA]
    )
    run = judge(instances, _config(openai_double, tmp_path), rule_verdicts=rules, progress=False)
    asked = {}
    for body in openai_double.bodies:
        combined, criteria = asked_criteria(body)
        assert combined
        asked[data_blocks(body)["instruction"]] = set(criteria)
    a_instruction = instances[0].instruction
    assert "sufficiency" not in asked[a_instruction] and "minimality" not in asked[a_instruction]
    assert {"solvability", "specificity"} <= asked[a_instruction]
    assert instances[1].instruction not in asked  # everything decided: no request at all
    assert openai_double.hits == 2
    rows = run.verdicts.set_index(["instance_id", "criterion"])
    assert rows.loc[("t/a", "sufficiency"), "judge"] == "rules" and rows.loc[("t/a", "sufficiency"), "label"] == 0
    assert rows.loc[("t/a", "specificity"), "judge"] == "double-judge"
    assert run.calls_per_instance.set_index("instance_id").loc["t/b", "n_requests"] == 0
    assert run.calls_per_instance.set_index("instance_id").loc["t/b", "n_decided_by_rules"] == 6


def test_recheck_sends_decided_criteria_and_keeps_rules_when_unscored(openai_double, tmp_path):
    def override(body):
        combined, criteria = asked_criteria(body)
        if criteria == ["minimality"]:
            return Reply(content="not json at all")
        return None

    openai_double.script = ScriptedJudge(override=override)
    rules = _rules([("t/b", "sufficiency", 0, "ok", "rules"), ("t/b", "minimality", 0, "ok", "rules")])
    instances = [_instances()[1]]
    run = judge(instances, _config(openai_double, tmp_path), criteria=["sufficiency", "minimality"],
                mode="per_criterion", rule_verdicts=rules, recheck=True, progress=False)
    assert openai_double.hits == 2
    rows = run.verdicts.set_index("criterion")
    assert rows.loc["sufficiency", "judge"] == "double-judge" and rows.loc["sufficiency", "label"] == 1
    assert rows.loc["minimality", "judge"] == "rules" and rows.loc["minimality", "label"] == 0
    model = run.model_verdicts.set_index("criterion")
    assert model.loc["minimality", "status"] == "unscored:parse_error"


@pytest.mark.parametrize(
    "reply, status",
    [
        (Reply(content="I think everything is fine."), "unscored:parse_error"),
        (Reply(content=json.dumps({"solvability": {"rationale": "r", "answer": "perhaps"}})), "unscored:parse_error"),
        (Reply(content=None, refusal="I can't help with that."), "unscored:refusal"),
        (Reply(content='{"solvability": {"ration', finish_reason="length"), "unscored:truncated"),
        (Reply(content="server exploded", status=500), "unscored:api_error"),
    ],
)
def test_unscored_statuses_are_never_pass_or_fail(openai_double, tmp_path, reply, status):
    openai_double.script = reply
    run = judge([_instances()[0]], _config(openai_double, tmp_path), criteria=["solvability"], progress=False)
    (row,) = run.verdicts.to_dict("records")
    assert row["status"] == status
    assert pd.isna(row["label"])
    assert row["judge"] == "double-judge" and row["prompt_id"] == "judge_combined.v2"
    if status == "unscored:parse_error":
        assert reply.content in row["rationale"]  # raw reply kept
        assert row["evidence"][0]["raw_reply"] == reply.content


def test_per_criterion_mode_one_request_per_undecided_criterion(openai_double, tmp_path):
    openai_double.script = ScriptedJudge()
    instances = _instances()
    run = judge(instances, _config(openai_double, tmp_path), mode="per_criterion", progress=False, prompt_version=1,
                combine_heuristics=False)
    names = sorted(body["response_format"]["json_schema"]["name"] for body in openai_double.bodies)
    assert all(name.endswith("_v1") and not name.startswith("judge_combined") for name in names)
    calls = run.calls_per_instance.set_index("instance_id")["n_requests"]
    model_rows = run.verdicts[run.verdicts.judge == "double-judge"].groupby("instance_id").size()
    assert calls.sum() == openai_double.hits
    for instance_id, n in model_rows.items():
        assert calls[instance_id] == n
    assert calls["t/b"] == 4  # coherence and parameter alignment were settled in code


def test_per_criterion_mode_v2_asks_the_combined_prompt_one_criterion_at_a_time(openai_double, tmp_path):
    openai_double.script = ScriptedJudge()
    run = judge(_instances(), _config(openai_double, tmp_path), mode="per_criterion", progress=False)
    for body in openai_double.bodies:
        assert body["response_format"]["json_schema"]["name"] == "judge_combined_v2"
        combined, criteria = asked_criteria(body)
        assert combined and len(criteria) == 1
    calls = run.calls_per_instance.set_index("instance_id")["n_requests"]
    assert calls.sum() == openai_double.hits and calls["t/b"] == 6  # v2 settles nothing of t/b in code
    assert set(run.model_verdicts["status"]) == {"ok"}


def test_replay_misses_are_not_cached_and_hits_are_free(openai_double, tmp_path):
    openai_double.script = ScriptedJudge()
    instances = _instances()
    live = judge(instances[:2], _config(openai_double, tmp_path), progress=False)
    hits = openai_double.hits
    replay = judge(instances, _config(openai_double, tmp_path, mode="replay"), progress=False)
    assert openai_double.hits == hits
    statuses = replay.verdicts.groupby("instance_id")["status"].apply(set)
    assert "unscored:not_cached" in statuses["t/c"]
    pd.testing.assert_frame_equal(
        replay.verdicts[replay.verdicts.instance_id != "t/c"].reset_index(drop=True),
        live.verdicts.reset_index(drop=True),
    )
    assert replay.calls_per_instance.set_index("instance_id").loc["t/a", "n_cached"] == 1


def test_empty_input_gives_empty_frames(openai_double, tmp_path):
    run = judge([], _config(openai_double, tmp_path), progress=False)
    assert run.verdicts.empty and list(run.verdicts.columns) == list(VERDICT_COLUMNS)
    assert run.calls_per_instance.empty and openai_double.hits == 0
    assert build_requests([]) == []


def test_same_requests_give_same_cache_keys_across_builds(tmp_path):
    first = build_requests(_instances())
    second = build_requests(_instances())
    client = LLMClient(LLMConfig(model="m", mode="replay", cache_path=None))
    from toolqual_utils.llm import cache_key

    assert [cache_key("m", r) for r in first] == [cache_key("m", r) for r in second]
    client.close()


def test_offline_coherence_heuristic_overrides_a_model_coherent_and_keeps_its_view(openai_double, tmp_path):
    """Requests served by unrelated tool groups (weather, translation) are glued: the offline heuristic's
    error stands over a model's "coherent", and the model's answer stays in the evidence."""
    openai_double.script = ScriptedJudge()  # the scripted "model" finds everything coherent
    glued = _inst("t/g", "Tell me the weather in Oslo. Also translate goodbye into German.",
                  [{"name": "get_weather", "arguments": {"city": "Oslo"}},
                   {"name": "translate", "arguments": {"text": "goodbye", "target": "German"}}])
    run = judge([glued], _config(openai_double, tmp_path), criteria=["coherence"], progress=False)
    (row,) = run.verdicts.to_dict("records")
    assert row["label"] == 0 and row["judge"] == "heuristic" and row["prompt_id"] == "heuristics.v2"
    assert "the model double-judge found the requests related" in row["rationale"]
    assert row["evidence"][-1]["check"] == "model_answer" and row["evidence"][-1]["label"] == 1
    assert run.model_verdicts.iloc[0]["label"] == 1  # the model's own row is kept as it answered
    off = judge([glued], _config(openai_double, tmp_path), criteria=["coherence"], progress=False,
                combine_heuristics=False)
    assert off.verdicts.iloc[0]["label"] == 1 and off.verdicts.iloc[0]["judge"] == "double-judge"


@pytest.mark.parametrize("response_format", ["json_object", "none"])
def test_response_format_choice_is_sent_cached_apart_and_parsed(openai_double, tmp_path, response_format):
    """Servers without json_schema support: json_object sends only the JSON mode; none sends nothing and the
    answer object is found inside prose. The choice is part of each request's cache key."""
    scripted = ScriptedJudge()

    def chatty(body):  # wrap the scripted JSON in prose, as a model without structured output may
        reply = scripted(body)
        return Reply(content=f"Here is my analysis.\n{reply.content}\nI hope this helps {{not json}}.")

    openai_double.script = chatty if response_format == "none" else scripted
    config = _config(openai_double, tmp_path)
    run = judge(_instances(), config, progress=False, response_format=response_format, combine_heuristics=False)
    sent = [body.get("response_format") for body in openai_double.bodies]
    assert sent == ([{"type": "json_object"}] * len(sent) if response_format == "json_object" else [None] * len(sent))
    assert set(run.verdicts["status"]) == {"ok"} and len(run.verdicts) == 18
    hits = openai_double.hits
    openai_double.script = scripted  # the same answers with the default format are NOT served from the cache
    judge(_instances(), config, progress=False, combine_heuristics=False)
    assert openai_double.hits == hits * 2


def test_strict_parsing_refuses_prose_around_json_by_default(openai_double, tmp_path):
    scripted = ScriptedJudge()
    openai_double.script = lambda body: Reply(content="Sure: " + scripted(body).content)
    run = judge(_instances()[:1], _config(openai_double, tmp_path), progress=False)
    assert set(run.model_verdicts["status"]) == {"unscored:parse_error"}


def test_self_consistency_samples_vote_with_confidence_and_are_each_cached(openai_double, tmp_path):
    """--samples 3: each request is sent 3 times at temperature 0.7; per instance the scripted answers are
    holds, fails, holds (in arrival order), so every criterion holds by 2 of 3 votes."""
    import threading

    scripted = ScriptedJudge()
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def alternating(body):
        instruction = data_blocks(body)["instruction"]
        with lock:
            seen[instruction] = seen.get(instruction, 0) + 1
            nth = seen[instruction]
        if nth == 2:
            return ScriptedJudge(policy=lambda i, c: False)(body)
        return scripted(body)

    openai_double.script = alternating
    instances = _instances()[:2]
    config = _config(openai_double, tmp_path)
    run = judge(instances, config, samples=3, progress=False, combine_heuristics=False)
    assert openai_double.hits == 3 * len(instances)
    assert {body["temperature"] for body in openai_double.bodies} == {0.7}
    model = run.model_verdicts
    assert set(model["status"]) == {"ok"} and set(model["label"]) == {1}
    assert set(model["n_votes"]) == {3} and model["confidence"].round(3).eq(0.667).all()
    assert model["rationale"].str.startswith("2 of 3 votes").all()
    assert len(run.votes) == 3 * len(model) and sorted(set(run.votes["sample_index"])) == [0, 1, 2]
    # every sample has its own cache entry: a replay answers all of them without a request
    replay = judge(instances, _config(openai_double, tmp_path, mode="replay"), samples=3, progress=False,
                   combine_heuristics=False)
    assert openai_double.hits == 6
    pd.testing.assert_frame_equal(replay.verdicts, run.verdicts)


def test_a_panel_of_two_models_ties_and_three_models_decide(openai_double, tmp_path):
    """Judges m-a and m-b disagree on solvability: a tie is unscored (never a pass or a fail), unanimity
    is unscored too; a third model that agrees with m-b decides the majority."""
    def by_model(body):
        holds = body["model"] != "m-b"
        return ScriptedJudge(policy=lambda instruction, criterion: holds or criterion != "solvability")(body)

    openai_double.script = by_model
    instance = _instances()[:1]
    config = _config(openai_double, tmp_path)
    two = judge(instance, config, judges=["m-a", "m-b"], criteria=["solvability", "minimality"], progress=False)
    rows = two.verdicts.set_index("criterion")
    assert two.judge_model == "panel:m-a+m-b" and set(rows["judge"]) == {"panel:m-a+m-b"}
    assert rows.loc["solvability", "status"] == "unscored:no_majority" and pd.isna(rows.loc["solvability", "label"])
    assert rows.loc["solvability", "confidence"] == 0.5 and rows.loc["solvability", "n_votes"] == 2
    assert rows.loc["minimality", "label"] == 1 and rows.loc["minimality", "confidence"] == 1.0
    assert sorted({body["model"] for body in openai_double.bodies}) == ["m-a", "m-b"]
    unanimous = judge(instance, config, judges=["m-a", "m-b"], criteria=["solvability"], agreement="unanimous",
                      progress=False)
    assert unanimous.verdicts.iloc[0]["status"] == "unscored:no_agreement"
    hits = openai_double.hits
    three = judge(instance, config, judges=["m-a", "m-b", "m-c"], criteria=["solvability"], progress=False)
    row = three.verdicts.iloc[0]
    assert row["label"] == 1 and row["confidence"] == pytest.approx(2 / 3) and row["n_votes"] == 3
    assert openai_double.hits == hits + 1  # m-a and m-b answered from the cache; only m-c was asked
    assert set(three.ledger["model"]) == {"m-a", "m-b", "m-c"}
