"""`toolqual load` on broken inputs: one-paragraph messages naming the file, exit codes, rejects, no tracebacks.

The corpus lives in tests/fixtures/broken/ (see the file names). Each case runs the real CLI in a
subprocess, like a user would.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT

BROKEN = ROOT / "tests" / "fixtures" / "broken"


def run_load(*sources: Path, out: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toolqual_utils.cli", "load", *map(str, sources), "--out", str(out), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


def one_paragraph(text: str) -> str:
    return " ".join(text.split())


BAD_FILES = {
    "empty.json": "the file is empty",
    "blank_lines.jsonl": "the file is empty",
    "truncated.json": "truncated",
    "not_utf8.jsonl": "is not UTF-8 text",
    "unknown_shape.json": "matches none of the known formats",
    "table.csv": "neither JSON Lines nor a valid JSON document",
    "seal_no_pool/dev.jsonl": "no tool.jsonl was found",
    "bfcl_answer_alone/possible_answer/BFCL_v4_simple_demo.json": "possible_answer file",
    "folder_with_broken_file": "truncated",
    "does_not_exist.json": "no such file",
}
#: Broken inputs whose message must also list every supported format.
LISTS_FORMATS = {"empty.json", "blank_lines.jsonl", "truncated.json", "not_utf8.jsonl", "unknown_shape.json",
                 "table.csv"}


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    """Run the CLI on every bad file, a few processes at a time (each start-up imports the whole CLI)."""
    base = tmp_path_factory.mktemp("bad")
    names = list(BAD_FILES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda i: run_load(BROKEN / names[i], out=base / f"out{i}.jsonl"), range(len(names)))
        return {name: (result, base / f"out{i}.jsonl") for i, (name, result) in enumerate(zip(names, results))}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_fails_with_one_paragraph_naming_it(bad_file_runs, name):
    result, out = bad_file_runs[name]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = one_paragraph(result.stderr)
    assert BAD_FILES[name] in message
    assert Path(name).name in message or "zz_truncated.json" in message  # names the file
    assert result.stderr.strip().count("\n\n") == 0  # one paragraph
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()  # nothing half-written
    if name in LISTS_FORMATS:
        for fmt in ("toolalpaca =", "toolbench =", "bfcl =", "seal_tools =", "jsonl =", "openai ="):
            assert fmt in message


def test_bad_records_become_rejects_and_good_ones_are_kept(tmp_path):
    out = tmp_path / "x.jsonl"
    result = run_load(BROKEN / "canonical_one_bad_record.jsonl", out=out)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["ok/0", "ok/2", "ok/4"]
    rejects = [json.loads(line) for line in (tmp_path / "x.rejects.jsonl").read_text().splitlines()]
    assert [r["location"] for r in rejects] == ["line 2", "line 4"]
    assert "not valid JSON" in rejects[0]["reason"]
    assert rejects[1]["field"] == "calls" and rejects[1]["record_id"] == "bad/3"
    assert all(r["file"].endswith("canonical_one_bad_record.jsonl") for r in rejects)
    assert "x.rejects.jsonl" in result.stdout  # the summary says where the rejects went
    # a clean rerun to the same output removes the stale rejects file
    rerun = run_load(ROOT / "tests" / "fixtures" / "loaders" / "handwritten_canonical.jsonl", out=out)
    assert rerun.returncode == 0 and not (tmp_path / "x.rejects.jsonl").exists()


def test_malformed_action_input_is_a_parse_failure_not_a_reject(tmp_path):
    out = tmp_path / "ta.jsonl"
    result = run_load(BROKEN / "toolalpaca_malformed_action_input.json", out=out)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["toolalpaca/toolalpaca_malformed_action_input/Demo API#0",
                                          "toolalpaca/toolalpaca_malformed_action_input/Demo API#1"]
    failed = records[1]["calls"][0]
    assert failed["arguments"] is None and "${item_id from getDetails}" in failed["raw_arguments"]
    assert not (tmp_path / "ta.rejects.jsonl").exists()
    table_row = next(line for line in result.stdout.splitlines() if "toolalpaca_malformed" in line)
    assert table_row.split()[-4:] == ["2", "0", "1", "0"]  # instances, rejects, parse failures, pseudo-calls


def test_missing_golden_answer_is_a_reject_with_its_location(tmp_path):
    out = tmp_path / "ta.jsonl"
    result = run_load(BROKEN / "toolalpaca_missing_golden_answer.json", out=out)
    assert result.returncode == 0
    rejects = [json.loads(line) for line in (tmp_path / "ta.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 1 and rejects[0]["field"] == "Golden_Answers"
    assert "Golden_Answers[1]" in rejects[0]["location"] and rejects[0]["record_id"].endswith("Demo API#1")


def test_toolbench_answer_without_trajectory_is_rejected(tmp_path):
    out = tmp_path / "tb.jsonl"
    result = run_load(BROKEN / "toolbench_no_trajectory", out=out)
    # no instance at all, but a reject explains why: the load still succeeds and writes the reject
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert out.read_text() == ""
    reject = json.loads((tmp_path / "tb.rejects.jsonl").read_text())
    assert reject["record_id"] == "toolbench/G1/69" and "train_messages" in reject["field"]


def test_bfcl_without_possible_answer_loads_with_unknown_calls_and_a_note(tmp_path):
    out = tmp_path / "b.jsonl"
    result = run_load(BROKEN / "bfcl_without_answers", out=out)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    record = json.loads(out.read_text())
    assert record["calls"] is None and record["meta"]["bfcl_possible_answer_missing"] is True
    assert "BFCL_v4_simple_demo.json" in result.stderr and "no possible_answer" in result.stderr


def test_forced_wrong_format_is_refused(tmp_path):
    result = run_load(BROKEN / "canonical_one_bad_record.jsonl", out=tmp_path / "o.jsonl", extra=("--format", "bfcl"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not look like the 'bfcl' format" in one_paragraph(result.stderr)


def test_output_must_be_jsonl(tmp_path):
    result = run_load(BROKEN / "canonical_one_bad_record.jsonl", out=tmp_path / "o.csv")
    assert result.returncode == 2 and "must be a .jsonl file" in one_paragraph(result.stderr)
