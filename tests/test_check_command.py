"""`toolqual check` streams: chunked writing, worker processes, the same bytes whatever the route, and errors
that leave no half table behind."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from toolqual_utils.checks import check_findings
from toolqual_utils.cli import main
from toolqual_utils.heuristics import offline_verdicts
from toolqual_utils.io import TableWriter, read_instances, read_table, write_table
from conftest import DATA

SMALL = DATA / "toolalpaca_eval.jsonl"


def _lines(n: int) -> list[str]:
    return SMALL.read_text(encoding="utf-8").splitlines()[:n]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_chunked_writer_equals_one_write(tmp_path, suffix):
    instances = read_instances(SMALL)
    verdicts = offline_verdicts(instances)
    whole = write_table(verdicts, tmp_path / f"whole{suffix}")
    with TableWriter(tmp_path / f"chunks{suffix}", verdicts.columns) as writer:
        for start in range(0, len(verdicts), 97):
            writer.write(verdicts.iloc[start:start + 97])
    assert read_table(whole).equals(read_table(writer.path))
    if suffix != ".parquet":  # parquet keeps one row group per chunk
        assert whole.read_bytes() == writer.path.read_bytes()
    with TableWriter(tmp_path / f"empty{suffix}", ["a", "b"]):
        pass
    assert list(read_table(tmp_path / f"empty{suffix}").columns) in (["a", "b"], [])  # JSONL: an empty file


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "v.csv"
    with pytest.raises(RuntimeError):
        with TableWriter(target, ["a"]) as writer:
            writer.write(pd.DataFrame({"a": [1]}))
            raise RuntimeError("stop")
    assert not target.exists() and not (tmp_path / "v.csv.tmp").exists()


def test_workers_write_the_same_bytes_as_one_process(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(_lines(150)) + "\n", encoding="utf-8")
    outputs = {}
    for jobs in ("1", "2"):
        out, found = tmp_path / f"v{jobs}.csv", tmp_path / f"f{jobs}.csv"
        assert main(["check", str(data), "--out", str(out), "--findings", str(found), "--jobs", jobs]) == 0
        outputs[jobs] = (out.read_bytes(), found.read_bytes(), capsys.readouterr().out.split("\n", 1)[1])
    assert outputs["1"] == outputs["2"]  # verdicts, findings and the printed summary
    instances = read_instances(data)
    assert read_table(tmp_path / "v2.csv")["instance_id"].tolist() == [
        i.id for i in instances for _ in range(6)]
    assert len(read_table(tmp_path / "f2.csv")) == len(check_findings(instances))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_errors_name_the_line_and_write_nothing(tmp_path, capsys, jobs):
    bad = tmp_path / "bad.jsonl"
    lines = _lines(5)
    bad.write_text("\n".join(lines[:3] + ['{"id": "x"}'] + lines[3:]) + "\n", encoding="utf-8")
    out = tmp_path / "v.csv"
    assert main(["check", str(bad), "--out", str(out), "--strict", "--jobs", jobs]) == 2
    assert "record line 4, field 'source'" in " ".join(capsys.readouterr().err.split()) and not out.exists()
    assert main(["check", str(bad), "--out", str(out), "--jobs", jobs]) == 0  # without --strict: skipped
    skipped = capsys.readouterr()
    assert "1 lines skipped" in skipped.out and len(read_table(out)) == 5 * 6
    assert f"skipped {bad} line 4, field 'source':" in skipped.err  # the skip names the field as --strict does
    twice = tmp_path / "twice.jsonl"
    twice.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["check", str(bad), str(twice), "--out", str(tmp_path / "w.csv"), "--jobs", jobs]) == 2
    assert "also appears in" in capsys.readouterr().err and not (tmp_path / "w.csv").exists()
    raw = tmp_path / "raw.jsonl"
    raw.write_text(json.dumps({"question": "not canonical"}) + "\n", encoding="utf-8")
    assert main(["check", str(twice), str(raw), "--out", str(tmp_path / "r.csv"), "--jobs", jobs]) == 2
    assert "contains no valid canonical instance" in " ".join(capsys.readouterr().err.split())


def test_output_into_a_closed_pipe_is_not_reported_as_a_bug(tmp_path):
    command = f"{sys.executable} -m toolqual_utils.cli check {SMALL} --out {tmp_path / 'v.csv'} | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "unexpected error" not in done.stderr
