"""Planning a streaming judge run in a process of its own (judge.planning), against the OpenAI test double
(never a model's judgement): the same verdicts as planning in process, errors that arrive whole, a worker
that never outlives the run, and input read only as far as the network needs."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest
from conftest import DATA, ROOT
from test_judge_stream import _bundled, _policy

from toolqual_utils.checks import load_check_modules
from toolqual_utils.errors import InputError
from toolqual_utils.judge.engine import judge_stream
from toolqual_utils.judge.planning import start_planner
from toolqual_utils.judge.scripted import ScriptedJudge
from toolqual_utils.llm import LLMConfig
from toolqual_utils.testing import Reply


def _config(double, tmp_path, name: str, **overrides) -> LLMConfig:
    options = {"model": "double-judge", "base_url": double.base_url, "cache_path": str(tmp_path / f"{name}.sqlite"),
               "max_retries": 0, "concurrency": 4}
    options.update(overrides)
    return LLMConfig(**options)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-a-secret")


@pytest.mark.parametrize("options", [{}, {"samples": 2}, {"mode": "per_criterion", "prompt_version": 1}])
def test_a_planning_process_gives_the_verdicts_of_planning_in_process(openai_double, tmp_path, options):
    load_check_modules()
    instances = _bundled(40)
    openai_double.script = ScriptedJudge(policy=_policy)
    inline = judge_stream(instances, _config(openai_double, tmp_path, "a"), rules="checks", progress=False,
                          planner="inline", **options)
    n_inline = len(openai_double.bodies)
    process = judge_stream(instances, _config(openai_double, tmp_path, "b"), rules="checks", progress=False,
                           planner="process", **options)
    # the same requests went out (the runs let each prompt go once it is answered: compare what was sent)
    sent = sorted(json.dumps(body, sort_keys=True) for body in openai_double.bodies[:n_inline])
    assert n_inline > 0 and sent == sorted(json.dumps(body, sort_keys=True) for body in openai_double.bodies[n_inline:])
    pd.testing.assert_frame_equal(process.verdicts, inline.verdicts)
    pd.testing.assert_frame_equal(process.votes, inline.votes)
    pd.testing.assert_frame_equal(process.calls_per_instance, inline.calls_per_instance)
    assert process.plan.instance_ids == inline.plan.instance_ids
    assert [p.request for p in process.plan.planned] == [p.request for p in inline.plan.planned]
    assert process.plan.fixed == inline.plan.fixed and process.plan.rule_rows == inline.plan.rule_rows
    assert multiprocessing.active_children() == []  # the worker ended with the run


def test_bad_input_in_the_worker_arrives_whole_after_the_requests_in_flight(openai_double, tmp_path):
    instances = _bundled(30)
    openai_double.script = ScriptedJudge(policy=_policy)
    config = _config(openai_double, tmp_path, "c")
    with pytest.raises(InputError, match="instance id appears twice") as raised:
        judge_stream(instances + [instances[3]], config, progress=False, planner="process")
    assert raised.value.record == instances[3].id and raised.value.field == "id"
    assert multiprocessing.active_children() == []
    replay = judge_stream(instances, replace(config, mode="replay"), progress=False)
    assert (replay.verdicts["status"] == "ok").sum() > 0  # what was answered before the error is cached


def test_an_input_that_cannot_be_sent_to_a_worker_is_planned_in_process(openai_double, tmp_path):
    """Under pytest other threads run (the double), so a worker is spawned and its input must pickle: a
    generator does not, and planning stays in process with the same result."""
    instances = _bundled(12)
    openai_double.script = ScriptedJudge(policy=_policy)
    assert start_planner((i for i in instances), None, None, ()) is None
    run = judge_stream((i for i in instances), _config(openai_double, tmp_path, "d"), progress=False,
                       planner="process")
    assert run.plan.instance_ids == [i.id for i in instances] and openai_double.hits == len(run.plan.planned)


def test_a_worker_that_dies_is_reported(openai_double, tmp_path):
    openai_double.script = ScriptedJudge(policy=_policy)
    with pytest.raises(RuntimeError, match=r"planning process ended without finishing \(exit code 7\)"):
        judge_stream(_DyingSource(_bundled(10), at=4), _config(openai_double, tmp_path, "e"), progress=False,
                     planner="process")
    assert multiprocessing.active_children() == []


def test_an_unknown_planner_is_refused(openai_double, tmp_path):
    with pytest.raises(InputError, match="planner must be one of inline, process"):
        judge_stream(_bundled(2), _config(openai_double, tmp_path, "f"), progress=False, planner="thread")


class _DyingSource:
    """Instances, then the process reading them exits with status 7 (a worker killed midway)."""

    def __init__(self, instances, at: int) -> None:
        self.instances, self.at = instances, at

    def __iter__(self):
        for index, instance in enumerate(self.instances):
            if index == self.at:
                os._exit(7)
            yield instance


# ------------------------------------------------------------------ the command (forked worker, own process)
def _mix(path, n: int) -> None:
    base = [json.loads(line) for line in (DATA / "toolalpaca_eval.jsonl").open(encoding="utf-8") if line.strip()]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            record = dict(base[i % len(base)])
            if i >= len(base):
                record["id"] = f"{record['id']}~{i}"
                record["instruction"] = f"{record['instruction']} (copy {i // len(base)})"
            handle.write(json.dumps(record) + "\n")


@pytest.mark.timeout(300)
def test_the_command_plans_in_a_forked_worker_with_the_same_verdicts(openai_double, tmp_path):
    """As users run it (one thread: the worker is forked), --planner process and inline write the same
    table; --limit reads only that far."""
    openai_double.script = ScriptedJudge(policy=_policy)
    data = tmp_path / "data.jsonl"
    _mix(data, 150)
    env = {**os.environ, "OPENAI_API_KEY": "test-key-not-a-secret"}
    outputs = {}
    for planner in ("inline", "process"):
        out = tmp_path / f"{planner}.csv"
        done = subprocess.run(
            [sys.executable, "-m", "toolqual_utils.cli", "judge", str(data), "--model", "m", "--base-url",
             openai_double.base_url, "--cache", str(tmp_path / f"{planner}.sqlite"), "--planner", planner,
             "--limit", "120", "--concurrency", "8", "--quiet", "--out", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        outputs[planner] = out.read_bytes()
        assert "120 instances x 6 criteria" in done.stdout
    assert outputs["process"] == outputs["inline"]


class _SharedCountingSource:
    """Instances, counting in shared memory how many the (worker) process has taken."""

    def __init__(self, instances) -> None:
        self.instances = instances
        self.taken = multiprocessing.get_context("spawn").Value("i", 0)

    def __iter__(self):
        for instance in self.instances:
            with self.taken.get_lock():
                self.taken.value += 1
            yield instance


def test_the_worker_reads_only_a_bounded_distance_ahead_of_the_network(openai_double, tmp_path):
    judge_script = ScriptedJudge(policy=_policy)
    openai_double.script = lambda body: replace(judge_script(body), delay_s=0.03)
    source = _SharedCountingSource(_bundled(300))
    taken_at_30: list[int] = []

    def watch(state) -> None:
        if state.n_answered == 30 and not taken_at_30:
            taken_at_30.append(source.taken.value)

    run = judge_stream(source, _config(openai_double, tmp_path, "g", concurrency=2), progress=False, queue_size=3,
                       on_progress=watch, planner="process")
    assert source.taken.value == 300 and len(run.plan.instance_ids) == 300
    # in flight + queued + the pipe and the loop's read buffer (about 16 plans of this size): never the input
    assert taken_at_30 and taken_at_30[0] <= 30 + 2 + 2 * 3 + 2 + 40 < 300


# ------------------------------------------------------------------ wire forms made ahead
def _astream(client, requests, prepared):
    import asyncio

    results = {}

    async def chunks():
        yield list(requests)

    async def go():
        await client.astream(chunks(), lambda i, r: results.__setitem__(i, r), prepared=prepared)

    asyncio.run(go())
    return [results[i] for i in range(len(requests))]


def test_a_fitting_wire_form_is_sent_as_made_and_one_that_does_not_fit_is_ignored(openai_double, tmp_path):
    from toolqual_utils.llm import ChatRequest, LLMClient, wire_form

    openai_double.script = Reply(content="ok")
    client = LLMClient(_config(openai_double, tmp_path, "w", cache_path=None))
    requests = [ChatRequest(f"r{i}", ({"role": "user", "content": f"question {i}"},), "p.v1") for i in range(3)]
    marked = replace(requests[0], messages=({"role": "user", "content": "made ahead"},))
    prepared = {
        "r0": replace(wire_form(marked, "double-judge"), request_key=wire_form(requests[0], "double-judge").request_key),
        "r1": wire_form(replace(requests[1], messages=({"role": "user", "content": "other model"},)), "another"),
        "r2": wire_form(replace(requests[2], messages=({"role": "user", "content": "other temperature"},),
                                temperature=0.7), "double-judge"),
    }
    results = _astream(client, requests, prepared)
    assert [r.status for r in results] == ["ok"] * 3 and prepared == {}  # taken out as used
    sent = sorted(b["messages"][0]["content"] for b in openai_double.bodies)
    assert sent == ["made ahead", "question 1", "question 2"]  # r0's bytes as made; r1, r2 built by the client
    assert {h.get("content-type") for h in openai_double.request_headers} == {"application/json"}


def test_the_planning_process_sends_the_bytes_the_client_would_have_built(openai_double, tmp_path):
    instances = _bundled(15)
    openai_double.script = ScriptedJudge(policy=_policy)
    judge_stream(instances, _config(openai_double, tmp_path, "x"), progress=False, planner="inline")
    inline = sorted(json.dumps(b, sort_keys=True) for b in openai_double.bodies)
    openai_double.reset()
    judge_stream(instances, _config(openai_double, tmp_path, "y"), progress=False, planner="process")
    assert sorted(json.dumps(b, sort_keys=True) for b in openai_double.bodies) == inline and inline
