"""The bundled real-model answers (data/judge_runs/): still matched to their requests, and the tables the
reports show are exactly what importing them gives with today's code."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from toolqual_utils.checks import run_checks
from toolqual_utils.io import read_instances
from toolqual_utils.judge.context import build_context
from toolqual_utils.judge.engine import render_messages
from toolqual_utils.judge.scripted import asked_criteria
from conftest import ANNOTATIONS, DATA, ROOT

RUNS = DATA / "judge_runs"
V1_RUNS = ("strong-v1-dev", "strong-v1-sample")


@pytest.mark.parametrize("run", V1_RUNS)
def test_v1_prompt_still_renders_the_requests_the_answers_were_given_to(run):
    """Each stored request, rebuilt from its instance with the criteria it asked, is the same text: the v1
    template and its context blocks have not moved, so the v1 answers still answer today's v1 requests."""
    instances = {i.id: i for i in read_instances(RUNS / run / "instances.jsonl")}
    stored = [json.loads(line) for line in (RUNS / run / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(stored) == len(instances)
    for request in stored:
        instance_id = request["custom_id"].rsplit("::", 1)[0]
        _, criteria = asked_criteria(request["body"])
        context = build_context(instances[instance_id], version=1)
        assert list(render_messages(context, criteria, "combined", "judge_combined.v1")) == request["body"]["messages"], \
            instance_id


@pytest.mark.parametrize("run", V1_RUNS)
def test_today_rules_still_ask_the_v1_criteria_the_answers_cover(run):
    """If a rule starts deciding a criterion the stored request asked, the answer's extra key is ignored;
    if it stops deciding one, that criterion would come back unscored: list such drift here."""
    instances = read_instances(RUNS / run / "instances.jsonl")
    from toolqual_utils.judge.engine import plan_judging

    plan = plan_judging(instances, rule_verdicts=run_checks(instances), prompt_version=1)
    now = {p.request.custom_id: set(p.criteria) for p in plan.planned}
    stored = [json.loads(line) for line in (RUNS / run / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    then = {r["custom_id"]: set(asked_criteria(r["body"])[1]) for r in stored}
    newly_asked = {cid: sorted(now[cid] - then.get(cid, set())) for cid in now if now[cid] - then.get(cid, set())}
    assert newly_asked == {}, f"criteria asked now but not answered by the bundled run: {newly_asked}"


@pytest.mark.parametrize("run", V1_RUNS)
def test_bundled_verdicts_parse_completely_and_cover_the_annotated_instances(run):
    verdicts = pd.read_csv(RUNS / run / "verdicts.csv")
    assert set(verdicts["status"]) == {"ok"}  # every real answer parsed: no unscored row
    instances = read_instances(RUNS / run / "instances.jsonl")
    assert len(verdicts) == 6 * len(instances)
    reference = pd.read_csv(ANNOTATIONS / ("reference_dev.csv" if run.endswith("dev") else "reference_dev2.csv"))
    assert set(reference["instance_id"]) == {i.id for i in instances}
    assert "strong-judge" in set(verdicts["judge"]) and set(verdicts["prompt_id"]) >= {"judge_combined.v1"}


@pytest.mark.slow
def test_tables_regenerate_byte_for_byte(tmp_path):
    """`make data` (scripts/import_judge_runs.sh) reproduces every committed table and the v2 request files."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "import_judge_runs.sh"), str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=900,
                            env={**os.environ, "PY": sys.executable})
    assert result.returncode == 0, result.stderr
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in produced] == [
        "ice-v1-probe/ice.csv", "ice-v1-probe/ice.queries.csv", "strong-v1-dev/verdicts.csv",
        "strong-v1-sample/verdicts.csv", "v2-requests/dev.requests.jsonl", "v2-requests/sample.requests.jsonl",
    ]
    for relative in produced:
        assert (tmp_path / relative).read_bytes() == (RUNS / relative).read_bytes(), (
            f"{relative} changed: rerun `make data` and review the diff (a rule or decision change moves verdicts)")


def test_v2_request_files_are_batch_requests_for_every_instance():
    for name, run in (("dev", "strong-v1-dev"), ("sample", "strong-v1-sample")):
        lines = (RUNS / "v2-requests" / f"{name}.requests.jsonl").read_text(encoding="utf-8").splitlines()
        requests = [json.loads(line) for line in lines]
        ids = {r["custom_id"].rsplit("::", 1)[0] for r in requests}
        assert ids == {i.id for i in read_instances(RUNS / run / "instances.jsonl")}
        for request in requests:
            assert request["url"] == "/v1/chat/completions" and request["body"]["model"] == "strong-judge"
            assert request["body"]["response_format"]["json_schema"]["name"] == "judge_combined_v2"
            assert "Earlier turns of the conversation" in request["body"]["messages"][1]["content"]
