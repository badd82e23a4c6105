"""The bundled data/ files are exactly what scripts/build_bundled_data.sh makes from data/sources/."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from toolqual_utils.io import read_instances
from conftest import ROOT, SOURCES

BUNDLED = ("toolalpaca_eval", "toolalpaca_train_format", "toolbench_answers", "toolbench_queries",
           "seal_tools_dev", "bfcl")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build_bundled_data.sh"), str(out), str(SOURCES)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600,
                            env={**os.environ, "PY": sys.executable})
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_file_is_regenerated_byte_for_byte(regenerated, name):
    committed = (ROOT / "data" / f"{name}.jsonl").read_bytes()
    assert (regenerated / f"{name}.jsonl").read_bytes() == committed


def test_bundled_files_are_valid_canonical_jsonl_with_unique_ids():
    ids = []
    for name in BUNDLED:
        path = ROOT / "data" / f"{name}.jsonl"
        n_lines = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        instances = read_instances(path, strict=True)
        assert len(instances) == n_lines > 0
        ids += [i.id for i in instances]
    assert len(ids) == len(set(ids))


def test_bundled_data_stays_small_and_credited():
    total = sum((ROOT / "data" / f"{name}.jsonl").stat().st_size for name in BUNDLED)
    assert total < 8 * 1024 * 1024
    notice = (ROOT / "data" / "NOTICE").read_text(encoding="utf-8")
    for repo in ("tangqiaoyu/ToolAlpaca", "Octobrist/ToolAlpaca", "OpenBMB/ToolBench", "THUNLP-MT/StableToolBench",
                 "ShishirPatil/gorilla", "fairyshine/Seal-Tools"):
        assert repo in notice
    assert "REDACTED_CREDENTIAL" in notice and "Apache" in notice


def test_bundled_bfcl_covers_every_category_and_the_reference_instances():
    records = [json.loads(line) for line in (ROOT / "data" / "bfcl.jsonl").read_text(encoding="utf-8").splitlines()]
    categories = {r["meta"]["bfcl_category"] for r in records}
    assert {"irrelevance", "simple_python", "multiple", "parallel", "parallel_multiple", "live_simple",
            "live_multiple", "live_parallel", "live_parallel_multiple"} <= categories
    ids = {r["id"] for r in records}
    assert {"bfcl/live_multiple/live_multiple_372-134-17", "bfcl/multiple/multiple_75"} <= ids


def test_build_script_refuses_to_guess_an_interpreter(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PY"}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build_bundled_data.sh"), str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)
    assert result.returncode == 2 and "set PY" in result.stderr
    assert not list(tmp_path.iterdir())


def test_source_files_match_their_recorded_checksums():
    import hashlib

    sums = (SOURCES / "SHA256SUMS").read_text(encoding="utf-8").split("\n")
    entries = [line.split(None, 1) for line in sums if line.strip()]
    assert len(entries) >= 60
    for digest, name in entries:
        path = SOURCES / name.strip().removeprefix("./")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
    listed = {name.strip().removeprefix("./") for _, name in entries}
    present = {str(p.relative_to(SOURCES)) for p in SOURCES.rglob("*") if p.is_file()}
    assert present - listed == {"SHA256SUMS", "README.md"}
