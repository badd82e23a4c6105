"""The streaming judge (judge.engine.judge_stream) against the OpenAI test double (never a model's judgement):
requests leave while the input is still being read, the queue between planning and the network is bounded,
and the verdicts are those of the batch judge."""
from __future__ import annotations

import signal
import threading
from dataclasses import replace

import pandas as pd
import pytest

from toolqual_utils.checks import load_check_modules, run_checks
from toolqual_utils.errors import InputError
from toolqual_utils.io import read_instances
from toolqual_utils.judge import judge
from toolqual_utils.judge.engine import judge_stream
from toolqual_utils.judge.scripted import ScriptedJudge
from toolqual_utils.llm import LLMConfig
from toolqual_utils.schema import Instance

from conftest import DATA


def _bundled(n: int) -> list[Instance]:
    """``n`` bundled ToolAlpaca instances (copies get new ids and a tagged instruction: distinct prompts)."""
    base = read_instances(DATA / "toolalpaca_eval.jsonl")
    out = []
    for i in range(n):
        instance = base[i % len(base)]
        if i >= len(base):
            instance = instance.model_copy(update={"id": f"{instance.id}~{i}",
                                                   "instruction": f"{instance.instruction} (copy {i // len(base)})"})
        out.append(instance)
    return out


class CountingSource:
    """An iterable of instances that counts how many were taken (as a file being read would)."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.taken = 0

    def __iter__(self):
        for instance in self.instances:
            self.taken += 1
            yield instance


def _config(double, tmp_path, **overrides) -> LLMConfig:
    options = {"model": "double-judge", "base_url": double.base_url, "cache_path": str(tmp_path / "cache.sqlite"),
               "max_retries": 0, "concurrency": 4}
    options.update(overrides)
    return LLMConfig(**options)


def _policy(instruction: str, criterion: str) -> bool:
    return not (criterion == "specificity" and len(instruction) % 3 == 0)


def test_the_first_request_leaves_before_the_input_is_read(openai_double, tmp_path):
    source = CountingSource(_bundled(150))
    taken_at_first_request: list[int] = []
    judge_script = ScriptedJudge(policy=_policy)

    def script(body):
        if not taken_at_first_request:
            taken_at_first_request.append(source.taken)
        return replace(judge_script(body), delay_s=0.02)

    openai_double.script = script
    run = judge_stream(source, _config(openai_double, tmp_path), progress=False, queue_size=4)
    assert source.taken == 150 and len(run.plan.instance_ids) == 150
    assert openai_double.hits == len(run.plan.planned) > 100
    # the first request reached the server while most of the input was still unread
    assert taken_at_first_request and taken_at_first_request[0] < 20


def test_planning_runs_at_most_the_queue_ahead_of_the_network(openai_double, tmp_path):
    judge_script = ScriptedJudge(policy=_policy)
    openai_double.script = lambda body: replace(judge_script(body), delay_s=0.03)
    gaps: list[int] = []
    taken_when_half_answered: list[int] = []
    source = CountingSource(_bundled(120))
    concurrency, queue_size = 2, 3

    def watch(state) -> None:
        gaps.append(state.n_planned - state.n_answered)
        if state.n_answered == 30 and not taken_when_half_answered:
            taken_when_half_answered.append(source.taken)

    run = judge_stream(source, _config(openai_double, tmp_path, concurrency=concurrency), progress=False,
                       queue_size=queue_size, on_progress=watch)
    n_requests = len(run.plan.planned)
    assert n_requests > 100 and run.verdicts["status"].eq("ok").all()
    # requests planned but not answered: in flight, queued, and one hand-over each way; never the whole input
    bound = concurrency + 2 * queue_size + 2
    assert max(gaps) <= bound < n_requests
    assert taken_when_half_answered and taken_when_half_answered[0] <= 30 + bound + 5


@pytest.mark.parametrize("options", [
    {},
    {"samples": 2},
    {"mode": "per_criterion", "prompt_version": 1},
    {"judges": ["m-a", "m-b"]},
])
def test_streaming_gives_the_verdicts_of_the_batch_judge(openai_double, tmp_path, options):
    load_check_modules()
    instances = _bundled(40)
    openai_double.script = ScriptedJudge(policy=_policy)
    rules = run_checks(instances)
    batch_options = dict(options)
    stream_options = dict(options)
    batch = judge(instances, _config(openai_double, tmp_path, cache_path=str(tmp_path / "a.sqlite")),
                  rule_verdicts=rules, progress=False, **batch_options)
    streamed = judge_stream(iter(instances), _config(openai_double, tmp_path, cache_path=str(tmp_path / "b.sqlite")),
                            rules="checks", progress=False, **stream_options)
    pd.testing.assert_frame_equal(streamed.verdicts, batch.verdicts)
    pd.testing.assert_frame_equal(streamed.calls_per_instance, batch.calls_per_instance)
    pd.testing.assert_frame_equal(streamed.votes, batch.votes)
    assert [r.custom_id for r in streamed.results] == [r.custom_id for r in batch.results]
    assert streamed.summary() == batch.summary()


def test_a_streaming_run_lets_each_prompt_and_context_go_once_answered(openai_double, tmp_path):
    """A long run must not hold every prompt (about half of what it kept per instance): once every model has
    answered a request its messages and schema are dropped, and an instance's context once all its answers
    are parsed. Ids, prompt ids, criteria and samples stay; the verdicts are those of the batch judge."""
    instances = _bundled(12)
    openai_double.script = ScriptedJudge(policy=_policy)
    run = judge_stream(instances, _config(openai_double, tmp_path), judges=["m-a", "m-b"], samples=2,
                       temperature=0.7, progress=False)
    assert len(run.plan.planned) > 0 and run.plan.contexts == {}
    assert all(p.request.messages == () and p.request.response_schema is None for p in run.plan.planned)
    assert all(p.request.custom_id and p.request.prompt_id and p.criteria for p in run.plan.planned)
    assert {p.sample_index for p in run.plan.planned} == {0, 1}
    assert openai_double.hits == 2 * len(run.plan.planned)  # both models answered every request
    assert run.verdicts["status"].notna().all() and len(run.votes) > 0


def test_identical_requests_are_sent_once_and_a_replay_sends_nothing(openai_double, tmp_path):
    base = _bundled(10)
    twins = [b.model_copy(update={"id": b.id + "~twin"}) for b in base]  # same prompts, other ids
    openai_double.script = ScriptedJudge(policy=_policy)
    config = _config(openai_double, tmp_path)
    calls: list[int] = []
    run = judge_stream(base + twins, config, progress=False, before_first_send=lambda: calls.append(1))
    n = len(run.plan.planned)
    assert openai_double.hits == n // 2 and calls == [1]
    assert sum(r.cached for r in run.results) == n // 2
    ledger = run.ledger.sum(numeric_only=True)
    assert (ledger["n_shared"], ledger["n_cache_hits"], ledger["n_sent"]) == (n // 2, 0, n // 2)  # twins: shared
    replay = judge_stream(base + twins, replace(config, mode="replay"), progress=False,
                          before_first_send=lambda: calls.append(2))
    assert openai_double.hits == n // 2 and calls == [1]  # nothing sent, no key asked for
    ledger = replay.ledger.sum(numeric_only=True)
    assert (ledger["n_cache_hits"], ledger["n_shared"]) == (n, 0)  # all in the cache, as a batch lookup says
    pd.testing.assert_frame_equal(replay.verdicts, run.verdicts)


def test_bad_input_midway_is_raised_after_the_requests_in_flight_are_answered(openai_double, tmp_path):
    instances = _bundled(30)
    openai_double.script = ScriptedJudge(policy=_policy)
    config = _config(openai_double, tmp_path)
    with pytest.raises(InputError, match="appears twice") as error:
        judge_stream(instances + [instances[3]], config, progress=False)
    assert error.value.record == instances[3].id
    # what was asked before the error is cached: a replay of the good part answers everything it sent
    replay = judge_stream(instances, replace(config, mode="replay"), progress=False)
    sent = openai_double.hits
    assert sent > 0 and (replay.verdicts["status"] != "unscored:not_cached").all()


def test_an_interrupt_stops_planning_and_sending(openai_double, tmp_path):
    """Ctrl-C (SIGINT) midway ends the run: the planner and the requests in flight stop, nothing more is
    read, answers already received stay cached."""
    instances = _bundled(200)
    judge_script = ScriptedJudge(policy=_policy)
    openai_double.script = lambda body: replace(judge_script(body), delay_s=0.02)

    def source():
        for index, instance in enumerate(instances):
            if index == 60:
                signal.raise_signal(signal.SIGINT)
            if index > 60:
                read_after_interrupt.append(index)
            yield instance

    read_after_interrupt: list[int] = []
    config = _config(openai_double, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        judge_stream(source(), config, progress=False)
    assert len(read_after_interrupt) <= 1
    hits = openai_double.hits
    assert 0 < hits <= 60
    assert threading.active_count() < 20  # no planner or sender left behind
    replay = judge_stream(instances[:60], replace(config, mode="replay"), progress=False)
    assert (replay.verdicts["status"] == "ok").sum() > 0


def test_streaming_from_inside_a_running_event_loop(openai_double, tmp_path):
    """In a notebook the kernel's loop is running: judge_stream then runs on a worker thread's loop."""
    import asyncio

    instances = _bundled(12)
    openai_double.script = ScriptedJudge(policy=_policy)

    async def in_a_kernel():
        return judge_stream(instances, _config(openai_double, tmp_path), progress=False)

    run = asyncio.run(in_a_kernel())
    assert len(run.plan.instance_ids) == 12 and openai_double.hits == len(run.plan.planned) > 0
