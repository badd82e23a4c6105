"""The compiled checks (mypyc): loaded only from a build of exactly this source, the same tables as pure Python,
and a failed build changes nothing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolqual_utils import compiled
from conftest import DATA, ROOT

SUFFIX = compiled._EXT_SUFFIX
PROBE = """\
import json, sys
import toolqual_utils.compiled as c
names = list(c.COMPILED_MODULES)
for name in names:
    __import__(name)
s = c.status()
print(json.dumps({"active": s.active, "reason": s.reason, "files": {n: sys.modules[n].__file__ for n in names}}))
"""


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    """A current build: the repository's own (``make test`` builds it first), else one made here."""
    own = compiled.default_directory()
    if compiled.read_build(own).active:
        return own
    return compiled.build(tmp_path_factory.mktemp("compiled") / "build").directory


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (compiled.ENV_SWITCH, compiled.ENV_DIR)}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _probe(env: dict[str, str], cwd: Path = ROOT) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=cwd, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def _toolqual(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolqual_utils.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)


def test_a_current_build_is_loaded_for_every_compiled_module(build_dir):
    found = _probe(_env(TOOLQUAL_COMPILED_DIR=str(build_dir)))
    assert found["active"], found["reason"]
    for name, file in found["files"].items():
        assert file.endswith(SUFFIX) and Path(file).is_relative_to(build_dir), (name, file)
    status = _toolqual("compile", "--status", env=_env(TOOLQUAL_COMPILED_DIR=str(build_dir)))
    assert status.returncode == 0 and status.stdout.startswith("compiled checks: compiled with mypyc")


def test_compiled_and_pure_checks_write_the_same_tables(build_dir, tmp_path):
    """Every bundled source, rules + heuristics, verdicts and findings: byte for byte the same; the compiled
    run through two worker processes, the pure one in this process's way (one process)."""
    inputs = sorted(str(p) for p in DATA.glob("*.jsonl") if not p.name.endswith(".rejects.jsonl"))
    assert len(inputs) >= 5
    outputs = {}
    for mode, env, jobs in (("compiled", _env(TOOLQUAL_COMPILED_DIR=str(build_dir)), "2"),
                            ("pure", _env(TOOLQUAL_COMPILED_DIR=str(build_dir), TOOLQUAL_COMPILED="0"), "1")):
        out = tmp_path / mode
        out.mkdir()
        result = _toolqual("check", *inputs, "--out", str(out / "v.csv"), "--findings", str(out / "f.csv"),
                           "--jobs", jobs, env=env)
        assert result.returncode == 0, result.stderr
        first, _, rest = result.stdout.partition("\n")
        outputs[mode] = ((out / "v.csv").read_bytes(), (out / "f.csv").read_bytes(), rest, first)
    assert outputs["compiled"][3].endswith("(2 worker processes, compiled checks)")
    assert outputs["pure"][3].endswith("(pure Python checks)")
    assert outputs["compiled"][:3] == outputs["pure"][:3]
    assert outputs["compiled"][0].count(b"\n") > 1680 * 6  # one row per instance and criterion, and a header


def test_an_edited_source_turns_the_build_off_until_it_is_rebuilt(build_dir, tmp_path):
    """The build is tied to the content of its sources (not to where they are): a copy of the package runs it;
    the copy with one changed file runs pure Python and says which file changed."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "toolqual_utils", copy / "toolqual_utils",
                    ignore=shutil.ignore_patterns("_compiled*", "__pycache__"))
    env = _env(TOOLQUAL_COMPILED_DIR=str(build_dir), PYTHONPATH=str(copy))
    assert _probe(env, cwd=copy)["active"]

    edited = copy / "toolqual_utils" / "schema.py"  # not compiled itself, but imported by what is
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    found = _probe(env, cwd=copy)
    assert not found["active"]
    assert "toolqual_utils/schema.py changed since the checks were compiled" in found["reason"]
    for name, file in found["files"].items():
        assert file.endswith(".py") and Path(file).is_relative_to(copy), (name, file)


def test_TOOLQUAL_COMPILED_0_runs_pure_python(build_dir):
    found = _probe(_env(TOOLQUAL_COMPILED_DIR=str(build_dir), TOOLQUAL_COMPILED="0"))
    assert not found["active"] and "TOOLQUAL_COMPILED=0" in found["reason"]
    assert all(file.endswith(".py") for file in found["files"].values())
    status = _toolqual("compile", "--status", env=_env(TOOLQUAL_COMPILED_DIR=str(build_dir), TOOLQUAL_COMPILED="0"))
    assert status.returncode == 1 and status.stdout.startswith("pure Python checks: TOOLQUAL_COMPILED=0")


def test_a_build_for_another_python_or_an_incomplete_one_is_not_used(build_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(build_dir, other)
    manifest = json.loads((other / compiled.MANIFEST).read_text(encoding="utf-8"))
    manifest["ext_suffix"] = ".cpython-399-x86_64-linux-gnu.so"
    (other / compiled.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    found = _probe(_env(TOOLQUAL_COMPILED_DIR=str(other)))
    assert not found["active"] and "made for another Python" in found["reason"]

    incomplete = tmp_path / "incomplete"
    shutil.copytree(build_dir, incomplete)
    next(incomplete.rglob(f"heuristics{SUFFIX}")).unlink()
    found = _probe(_env(TOOLQUAL_COMPILED_DIR=str(incomplete)))
    assert not found["active"] and "incomplete" in found["reason"] and f"heuristics{SUFFIX}" in found["reason"]
    assert all(file.endswith(".py") for file in found["files"].values())

    absent = _probe(_env(TOOLQUAL_COMPILED_DIR=str(tmp_path / "nothing")))
    assert not absent["active"] and "no compiled build" in absent["reason"]


def test_a_large_pure_run_says_how_to_compile(tmp_path):
    result = _toolqual("check", str(DATA / "toolalpaca_eval.jsonl"), "--out", str(tmp_path / "v.csv"), "--jobs", "2",
                       env=_env(TOOLQUAL_COMPILED="0"))
    assert result.returncode == 0, result.stderr
    assert "(2 worker processes, pure Python checks)" in result.stdout
    assert "compiled checks need about a quarter less CPU: TOOLQUAL_COMPILED=0" in result.stderr


def test_the_build_depends_on_what_the_compiled_modules_import():
    sources = compiled.source_closure()
    for name in compiled.COMPILED_MODULES:
        assert name.split(".", 1)[1].replace(".", "/") + ".py" in sources
    # imported by the compiled modules (schema: by the scan; io: by the checks package), and their packages
    assert {"schema.py", "io.py", "__init__.py", "checks/__init__.py"} <= sources.keys()
    assert "judge/engine.py" not in sources and "commands/check.py" not in sources
    assert all(len(digest) == 64 for digest in sources.values())


def test_a_missing_compiler_is_named_and_nothing_changes(build_dir, tmp_path):
    kept = tmp_path / "kept"
    shutil.copytree(build_dir, kept)
    before = {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()}
    result = _toolqual("compile", "--out", str(kept), "--force", env=_env(CC="no-such-compiler-here"))
    assert result.returncode != 0
    assert "a C compiler ('no-such-compiler-here' is not on PATH" in " ".join(result.stderr.split())
    assert "Nothing changed: a build that was there stays" in " ".join(result.stderr.split())
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()} == before


def test_a_folder_that_cannot_be_written_is_named_before_compiling(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = _toolqual("compile", "--out", str(blocker / "build"), env=_env())
    text = " ".join(result.stderr.split())
    assert result.returncode != 0 and f"cannot write the build to {blocker / 'build'}" in text
    assert "--out DIR or TOOLQUAL_COMPILED_DIR" in text and "mypyc could not compile" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.slow
def test_a_failed_compilation_keeps_the_build_that_was_there(build_dir, tmp_path):
    """The compiler itself fails (``CC=false``): the error shows the end of its output, the old build stays as it
    was and no half-made folder is left beside it."""
    kept = tmp_path / "kept"
    shutil.copytree(build_dir, kept)
    before = {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()}
    result = _toolqual("compile", "--out", str(kept), "--force", "--log", str(tmp_path / "build.log"),
                       env=_env(CC="false"))
    assert result.returncode != 0
    text = " ".join(result.stderr.split())
    assert "mypyc could not compile the checks (exit status 1): " in text and "failed with exit code 1" in text
    assert "Nothing changed: a build that was there stays as it was." in text
    assert (tmp_path / "build.log").read_text(encoding="utf-8").strip()
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.log", "kept"]


@pytest.mark.slow
def test_a_type_error_in_a_compiled_module_is_named(tmp_path):
    """mypyc compiles only what type-checks: an edit it cannot compile is reported by file, line and reason."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "toolqual_utils", copy / "toolqual_utils",
                    ignore=shutil.ignore_patterns("_compiled*", "__pycache__"))
    values = copy / "toolqual_utils" / "checks" / "values.py"
    values.write_text(values.read_text(encoding="utf-8") + '\n\ndef _count() -> int:\n    return "many"\n',
                      encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "toolqual_utils.cli", "compile", "--out", str(tmp_path / "b")],
                            env=_env(PYTHONPATH=str(copy)), cwd=copy, capture_output=True, text=True)
    text = " ".join(result.stderr.split())
    assert result.returncode != 0 and "mypyc could not compile the checks" in text
    assert "checks/values.py" in text and 'error: Incompatible return value type (got "str", expected "int")' in text
    assert not (tmp_path / "b").exists()


PICKLE_PROBE = """\
import dataclasses, importlib, inspect, json, pickle
import toolqual_utils.compiled as c
from toolqual_utils.checks import instance_findings
from toolqual_utils.checks.registry import CHECKS, Hit, get_check
from toolqual_utils.checks.tool_schema import param_info
from toolqual_utils.io import Reject, read_instances
from toolqual_utils.verdicts import Decision, Status
instances = read_instances("data/toolalpaca_eval.jsonl")
samples = [Reject("f.jsonl", "line 3", "why", field="calls.0.name", record_id="a/b/1"),
           param_info("city", {"type": "string", "enum": ["Paris", "Rome"], "default": "Paris"}),
           Hit("m", severity="suspect", argument="city", value=["x", 1], expected={"k": None}),
           Decision(1, Status.OK, "why", [{"check": "x"}]).row("a/b/1", "coherence", "rules", "rules.v1"),
           next(f for i in instances for f in instance_findings(i)), get_check(next(iter(CHECKS)))]
frozen = sorted(f"{name}.{attr}" for name in c.COMPILED_MODULES for attr, obj in vars(importlib.import_module(name)).items()
                if inspect.isclass(obj) and obj.__module__ == name and dataclasses.is_dataclass(obj)
                and obj.__dataclass_params__.frozen)
print(json.dumps({"active": c.status().active, "frozen": frozen,
                  "covered": sorted(f"{type(s).__module__}.{type(s).__name__}" for s in samples),
                  "same": [pickle.loads(pickle.dumps(s)) == s for s in samples]}))
"""


def test_frozen_dataclasses_pickle_when_compiled(build_dir):
    """Workers send rejects, findings and verdict rows between processes: every frozen dataclass of the compiled
    modules survives pickle there (compiled, unpickling the default way would assign to a frozen field)."""
    result = subprocess.run([sys.executable, "-c", PICKLE_PROBE], env=_env(TOOLQUAL_COMPILED_DIR=str(build_dir)),
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["active"] and all(found["same"])
    assert len(found["same"]) == 6 and set(found["frozen"]) <= set(found["covered"]), found


def test_a_folder_that_is_not_a_build_is_never_replaced(tmp_path):
    """`--out` naming a user's folder or a file must not cost them it: only a build of ours or an empty folder
    is replaced, and the refusal comes before anything is compiled."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    afile = tmp_path / "data.jsonl"
    afile.write_text("{}\n", encoding="utf-8")
    for target in (folder, afile):
        result = _toolqual("compile", "--out", str(target), "--force", env=_env())
        text = " ".join(result.stderr.split())
        assert result.returncode != 0 and f"{target} exists and is not a build of the compiled checks" in text
        assert "it is left alone" in text
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine" and afile.read_text(encoding="utf-8") == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "project"]


def test_bad_compile_options_are_named(tmp_path):
    result = _toolqual("compile", "--out", str(tmp_path / "b"), "--jobs", "0", env=_env())
    assert result.returncode == 2 and "--jobs must be at least 1, got 0" in result.stderr
    result = _toolqual("compile", "--out", str(tmp_path / "b"), "--log", str(tmp_path / "no" / "such" / "x.log"),
                       env=_env())
    assert result.returncode == 2 and "--log" in result.stderr and "does not exist" in " ".join(result.stderr.split())
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_rebuild_replaces_only_the_build(build_dir, tmp_path):
    """A rebuild swaps the build folder whole and touches nothing beside it, not even a folder named like a
    backup of it."""
    kept = tmp_path / "kept"
    shutil.copytree(build_dir, kept)
    neighbour = tmp_path / "kept.old"
    neighbour.mkdir()
    (neighbour / "mine.txt").write_text("mine", encoding="utf-8")
    result = _toolqual("compile", "--out", str(kept), "--force", env=_env())
    assert result.returncode == 0, result.stderr
    assert compiled.read_build(kept).active
    assert (neighbour / "mine.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "kept.old"]
