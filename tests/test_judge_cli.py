"""`toolqual judge` end to end in a subprocess against the OpenAI test double (never a model's judgement).

Covers: scripted live run, --plan, resume after a kill (no answered request paid twice), Batch export ->
a fake batch runner -> --import-batch -> verdicts, then --replay from the cache, and errors for people.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from toolqual_utils.cli import main
from toolqual_utils.io import read_table, write_table
from toolqual_utils.judge.scripted import ScriptedJudge
from toolqual_utils.schema import CRITERIA
from conftest import ROOT

TOOLS = [
    {"name": "get_weather", "description": "Weather for a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "day": {"type": "string"}},
                    "required": ["city"]}},
    {"name": "find_hotel", "description": "Hotels in a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "stars": {"type": "integer"}},
                    "required": ["city"]}},
]
CITIES = ["Oslo", "Lima", "Accra", "Hanoi", "Perth", "Quito", "Riga", "Cusco"]


def _write_data(path: Path, n: int = 8) -> Path:
    lines = []
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        instruction = (f"What is the weather in {city} on day {i}? Then find me a hotel there."
                       + (" Also, bad: recite a poem." if i == 2 else ""))
        lines.append(json.dumps({
            "id": f"cli/t/{i}", "source": "test", "instruction": instruction, "tools": TOOLS,
            "calls": [{"name": "get_weather", "arguments": {"city": city, "day": f"day {i}"}},
                      {"name": "find_hotel", "arguments": {"city": city, "stars": 3}}],
        }))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toolqual(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env or os.environ.copy(), timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _policy(instruction: str, criterion: str) -> bool:
    return not ("bad:" in instruction and criterion in ("coherence", "sufficiency"))


def test_live_run_then_plan_shows_everything_cached(openai_double, tmp_path):
    data = _write_data(tmp_path / "data.jsonl")
    openai_double.script = ScriptedJudge(policy=_policy)
    common = [str(data), "--model", "double-judge", "--base-url", openai_double.base_url,
              "--cache", str(tmp_path / "cache.sqlite")]
    plan = _toolqual("judge", *common, "--plan", "--price-in", "1.0", "--price-out", "2.0")
    assert "8 requests (1.00 per instance), 0 already in the cache, 8 to send" in plan.stdout
    assert "estimated cost $" in plan.stdout and openai_double.hits == 0

    out = tmp_path / "verdicts.csv"
    calls_out = tmp_path / "calls.csv"
    proc = _toolqual("judge", *common, "--out", str(out), "--calls-out", str(calls_out), "--quiet")
    assert openai_double.hits == 8
    verdicts = read_table(out)
    assert len(verdicts) == 8 * len(CRITERIA)
    assert set(verdicts["status"]) == {"ok"}
    bad = verdicts[verdicts.instance_id == "cli/t/2"].set_index("criterion")["label"]
    assert bad["coherence"] == 0 and bad["sufficiency"] == 0 and bad["solvability"] == 1
    assert set(verdicts[verdicts.judge == "double-judge"]["prompt_id"]) == {"judge_combined.v2"}
    calls = read_table(calls_out)
    assert calls["n_requests"].tolist() == [1] * 8
    assert "1.00 per instance" in proc.stdout

    again = _toolqual("judge", *common, "--plan")
    assert "8 already in the cache, 0 to send" in again.stdout
    assert openai_double.hits == 8


def test_resume_after_kill_pays_no_answered_request_twice(openai_double, tmp_path):
    n = 8
    data = _write_data(tmp_path / "data.jsonl", n)
    judge_script = ScriptedJudge()
    openai_double.script = lambda body: dataclasses.replace(judge_script(body), delay_s=0.25)
    common = [str(data), "--model", "double-judge", "--base-url", openai_double.base_url,
              "--cache", str(tmp_path / "cache.sqlite"), "--concurrency", "1", "--mode", "per-criterion",
              "--criteria", "solvability"]
    out = tmp_path / "verdicts.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "toolqual_utils.cli", "judge", *common, "--out", str(out),
                             "--quiet"], cwd=ROOT, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while openai_double.hits < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.4)  # let the double finish the request in flight
    first_hits = openai_double.hits
    assert 1 <= first_hits < n and not out.exists()

    plan = _toolqual("judge", *common, "--plan")
    n_cached = int(plan.stdout.split(" already in the cache")[0].rsplit(", ", 1)[1])
    assert 1 <= n_cached <= first_hits < n

    openai_double.script = judge_script
    _toolqual("judge", *common, "--out", str(out), "--quiet")
    second_hits = openai_double.hits - first_hits
    assert second_hits == n - n_cached  # only the unanswered requests were sent again
    verdicts = read_table(out)
    assert len(verdicts) == n and set(verdicts["status"]) == {"ok"}


def _fake_batch_runner(request_file: Path, result_file: Path, script: ScriptedJudge, fail_custom_id: str) -> int:
    """Turn a Batch request file into a Batch result file the way the Batch API would (one error line)."""
    lines = []
    for n, line in enumerate(request_file.read_text(encoding="utf-8").splitlines()):
        request = json.loads(line)
        assert request["method"] == "POST" and request["url"] == "/v1/chat/completions"
        if request["custom_id"] == fail_custom_id:
            lines.append({"id": f"batch_req_{n}", "custom_id": request["custom_id"], "response": None,
                          "error": {"code": "server_error", "message": "the batch worker crashed"}})
            continue
        reply = script(request["body"])
        body = {"id": f"chatcmpl-{n}", "object": "chat.completion", "model": request["body"]["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.content}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}
        lines.append({"id": f"batch_req_{n}", "custom_id": request["custom_id"],
                      "response": {"status_code": 200, "request_id": f"req_{n}", "body": body}, "error": None})
    result_file.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return len(lines)


def test_batch_export_import_then_replay(openai_double, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")  # batch files and replay need no key
    data = _write_data(tmp_path / "data.jsonl")
    common = [str(data), "--model", "batch-judge", "--cache", str(tmp_path / "cache.sqlite"),
              "--base-url", openai_double.base_url]
    requests_file = tmp_path / "batch" / "requests.jsonl"
    export = _toolqual("judge", *common, "--export-batch", str(requests_file))
    assert f"batch request file {requests_file}: 8 requests" in export.stdout
    assert not (tmp_path / "verdicts.csv").exists()

    results_file = tmp_path / "batch" / "results.jsonl"
    n_lines = _fake_batch_runner(requests_file, results_file, ScriptedJudge(policy=_policy), "cli/t/5::combined")
    assert n_lines == 8

    out = tmp_path / "verdicts.csv"
    _toolqual("judge", *common, "--import-batch", str(results_file), "--out", str(out))
    verdicts = read_table(out)
    failed = verdicts[verdicts.instance_id == "cli/t/5"]
    assert set(failed[failed.judge == "batch-judge"]["status"]) == {"unscored:api_error"}
    assert failed[failed.judge == "batch-judge"]["label"].isna().all()
    assert "the batch worker crashed" in failed[failed.judge == "batch-judge"]["rationale"].iloc[0]
    others = verdicts[verdicts.instance_id != "cli/t/5"]
    assert set(others["status"]) == {"ok"}
    assert verdicts.set_index(["instance_id", "criterion"]).loc[("cli/t/2", "coherence"), "label"] == 0

    replay_out = tmp_path / "replay.csv"
    replay = _toolqual("judge", *common, "--replay", "--out", str(replay_out))
    replayed = read_table(replay_out)
    pd.testing.assert_frame_equal(replayed[replayed.instance_id != "cli/t/5"].reset_index(drop=True),
                                  others.reset_index(drop=True))
    assert set(replayed[(replayed.instance_id == "cli/t/5") & (replayed.judge == "batch-judge")]["status"]) == {
        "unscored:not_cached"}
    assert "0 sent now, 0 imported from Batch results, 7 from the cache" in replay.stdout

    # the failed request alone is left to export
    again = _toolqual("judge", *common, "--export-batch", str(tmp_path / "batch" / "retry.jsonl"))
    assert "1 requests" in again.stdout
    assert openai_double.hits == 0


def test_errors_for_people(tmp_path, monkeypatch, capsys):
    data = _write_data(tmp_path / "data.jsonl", 2)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TOOLQUAL_BASE_URL")}
    proc = _toolqual("judge", str(data), "--model", "gpt-4o-mini", "--cache", str(tmp_path / "c.sqlite"),
                     "--out", str(tmp_path / "v.csv"), env=env, check=False)
    assert proc.returncode == 2
    assert "OPENAI_API_KEY is not set" in proc.stderr and "Traceback" not in proc.stderr
    # the rest in-process (same entry point, faster)
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TOOLQUAL_BASE_URL", "TOOLQUAL_JUDGE_MODEL"):
        monkeypatch.delenv(key, raising=False)
    cases = [
        (["--model", "m", "--out", str(tmp_path / "v.txt")], "--out must end in one of"),
        (["--model", "m", "--criteria", "vibes", "--plan"], "unknown criterion 'vibes'"),
        (["--plan"], "TOOLQUAL_JUDGE_MODEL"),
        (["--model", "m"], "--out FILE is required"),
        (["--model", "m", "--plan", "--price-in", "1"], "give both --price-in and --price-out"),
    ]
    for extra, message in cases:
        code = main(["judge", str(data), "--cache", str(tmp_path / "c.sqlite"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in " ".join(err.split()), (extra, err)


def test_rules_file_decides_before_the_model(openai_double, tmp_path, capsys):
    data = _write_data(tmp_path / "data.jsonl", 3)
    rules = pd.DataFrame([
        {"instance_id": f"cli/t/{i}", "criterion": c, "label": 0, "status": "ok", "judge": "rules",
         "prompt_id": "rules.v1", "rationale": "rule fired", "evidence": [{"check": "test_rule", "value": i}]}
        for i in range(3) for c in ("solvability", "sufficiency")
    ] + [{"instance_id": "cli/t/0", "criterion": "specificity", "label": None, "status": "unscored:needs-model",
          "judge": "rules", "prompt_id": "rules.v1", "rationale": "", "evidence": []}])
    rules_file = write_table(rules, tmp_path / "rules.csv")  # evidence as JSON text, labels as floats
    judge_script = ScriptedJudge()
    openai_double.script = judge_script
    out = tmp_path / "verdicts.parquet"
    code = main(["judge", str(data), "--model", "double-judge", "--base-url", openai_double.base_url,
                 "--cache", str(tmp_path / "cache.sqlite"), "--rules", str(rules_file), "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert openai_double.hits == 3
    assert all(not ({"solvability", "sufficiency"} & set(criteria)) for _, criteria in judge_script.asked)
    verdicts = read_table(out).set_index(["instance_id", "criterion"])
    assert verdicts.loc[("cli/t/1", "sufficiency"), "judge"] == "rules"
    assert verdicts.loc[("cli/t/1", "sufficiency"), "label"] == 0
    assert json.loads(verdicts.loc[("cli/t/1", "sufficiency"), "evidence"]) == [{"check": "test_rule", "value": 1}]
    assert verdicts.loc[("cli/t/0", "specificity"), "judge"] == "double-judge"


def test_token_limit_param_reaches_batch_files_and_the_wire(openai_double, tmp_path):
    """--token-limit-param max_completion_tokens and --no-temperature (OpenAI reasoning models) in Batch files
    and live bodies."""
    data = _write_data(tmp_path / "data.jsonl", n=2)
    common = [str(data), "--model", "reasoning-judge", "--cache", str(tmp_path / "cache.sqlite"),
              "--base-url", openai_double.base_url, "--max-tokens", "700",
              "--token-limit-param", "max_completion_tokens", "--no-temperature"]
    requests_file = tmp_path / "requests.jsonl"
    _toolqual("judge", *common, "--export-batch", str(requests_file))
    bodies = [json.loads(line)["body"] for line in requests_file.read_text().splitlines()]
    assert len(bodies) == 2 and all(b.get("max_completion_tokens") == 700 and "max_tokens" not in b for b in bodies)
    assert all("temperature" not in b for b in bodies)

    judge = ScriptedJudge(policy=_policy)
    openai_double.script = judge
    _toolqual("judge", *common, "--out", str(tmp_path / "v.csv"))
    assert openai_double.hits == 2
    assert all(b["max_completion_tokens"] == 700 and "max_tokens" not in b and "temperature" not in b
               for b in openai_double.bodies)


def test_samples_and_a_panel_from_the_command_line_with_confidence_columns(openai_double, tmp_path):
    data = _write_data(tmp_path / "data.jsonl", 3)
    openai_double.script = ScriptedJudge(policy=_policy)
    common = [str(data), "--base-url", openai_double.base_url, "--cache", str(tmp_path / "cache.sqlite")]
    plan = _toolqual("judge", *common, "--model", "m-a", "--samples", "3", "--plan")
    assert "9 model requests" in plan.stdout and "3 samples each" in plan.stdout and openai_double.hits == 0
    out = tmp_path / "samples.csv"
    _toolqual("judge", *common, "--model", "m-a", "--samples", "3", "--out", str(out), "--quiet")
    assert openai_double.hits == 9
    sampled = read_table(out)
    model = sampled[sampled["judge"] == "m-a"]
    assert set(model["n_votes"]) == {3} and set(model["confidence"]) == {1.0}  # the script always agrees
    assert set(sampled.loc[sampled["judge"] != "m-a", "n_votes"]) <= {0, 1}
    panel_out = tmp_path / "panel.csv"
    proc = _toolqual("judge", *common, "--judges", "m-a,m-b", "--out", str(panel_out), "--quiet")
    panel = read_table(panel_out)
    assert set(panel.loc[~panel["judge"].isin(["rules", "engine", "heuristic"]), "judge"]) == {"panel:m-a+m-b"}
    assert "x 2 judges (m-a, m-b)" in proc.stdout
    # m-a's single greedy answers were not cached before (the samples were at temperature 0.7): both asked
    assert openai_double.hits == 9 + 3 + 3
    refused = _toolqual("judge", *common, "--judges", "m-a,m-b", "--export-batch", str(tmp_path / "b.jsonl"),
                        check=False)
    assert refused.returncode == 2 and "one model's requests" in refused.stderr


def test_importing_answers_of_another_prompt_version_warns(tmp_path):
    """The bundled answers are v1; imported as v2 they do not parse: say so instead of failing silently."""
    run = ROOT / "data" / "judge_runs" / "strong-v1-dev"
    out = tmp_path / "v.csv"
    proc = _toolqual("judge", str(run / "instances.jsonl"), "--model", "strong-judge", "--cache", "none",
                     "--import-batch", str(run / "results.jsonl"), "--out", str(out))
    assert "do not parse as answers to judge_combined.v2" in proc.stderr and "--prompt-version v1" in proc.stderr
    assert "35 imported from Batch results" in proc.stdout and "0 sent now" in proc.stdout
    right = _toolqual("judge", str(run / "instances.jsonl"), "--model", "strong-judge", "--cache", "none",
                      "--prompt-version", "v1", "--import-batch", str(run / "results.jsonl"), "--out", str(out))
    assert "warning" not in right.stderr and set(read_table(out)["status"]) == {"ok"}


def test_replay_with_an_empty_cache_credits_no_verdict_to_the_model(tmp_path):
    """`--replay` with nothing cached answered nothing: the summary must not say the model decided."""
    data = _write_data(tmp_path / "data.jsonl", 4)
    out = tmp_path / "v.csv"
    proc = _toolqual("judge", str(data), "--model", "gpt-4o-mini", "--replay", "--cache", str(tmp_path / "empty.sqlite"),
                     "--out", str(out))
    verdicts = read_table(out)
    assert (verdicts.loc[verdicts["judge"] == "gpt-4o-mini", "status"] == "unscored:not_cached").all()
    decided = proc.stdout.split("decided by:", 1)[1].split(")", 1)[0]
    assert "gpt-4o-mini" not in decided and "unscored:not_cached" in proc.stdout


def test_a_judge_run_collects_garbage_for_throughput_then_restores_the_settings(openai_double, tmp_path,
                                                                                   monkeypatch, capsys):
    """A run keeps every answer and row to its end: during it, what was loaded before is frozen out of the
    collector's scans and the young generation is collected every RUN_GC_THRESHOLD allocations (with the
    defaults, the sending process spent a fifth of its CPU in the collector). The caller's settings come
    back afterwards, also when the run fails."""
    import gc

    from toolqual_utils.commands import _gc
    from toolqual_utils.judge import engine

    seen = []
    real = engine.judge_stream

    def spy(*args, **kwargs):
        seen.append((gc.get_threshold()[0], gc.get_freeze_count() > 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "judge_stream", spy)
    openai_double.script = ScriptedJudge()
    before = gc.get_threshold()
    data = _write_data(tmp_path / "data.jsonl", 3)
    command = ["judge", str(data), "--model", "double-judge", "--base-url", openai_double.base_url,
               "--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "v.csv"), "--quiet"]
    assert main(command) == 0, capsys.readouterr().err
    assert seen == [(_gc.RUN_GC_THRESHOLD, True)] and before[0] != _gc.RUN_GC_THRESHOLD
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert len(read_table(tmp_path / "v.csv")) == 3 * len(CRITERIA)

    def fails(*args, **kwargs):
        raise RuntimeError("the run failed")

    monkeypatch.setattr(engine, "judge_stream", fails)
    try:
        main(command)
    except RuntimeError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
