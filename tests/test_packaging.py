"""Packaging contracts: dependency lists agree, the CLI entry point exists, notebooks are clean,
and the pure modules stay free of heavy/UI/network libraries."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from conftest import DATA, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: conda-forge name -> PyPI name, where they differ (none needed today; keep it small).
CONDA_TO_PYPI: dict[str, str] = {}
#: Environment-only entries that are not Python package dependencies.
CONDA_ONLY = {"python", "pip"}

PURE_MODULES = ("schema", "io", "checks", "matching", "heuristics", "stats", "tables", "selection", "profile",
                "train_config", "analysis", "export", "extrinsic", "verdicts", "formatting", "palette", "views",
                "headlines", "compiled", "dialogue", "criteria")
FORBIDDEN = ("openai", "plotly", "ipywidgets", "seaborn", "matplotlib", "papermill")

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _floors(requirements: list[str]) -> dict[str, str | None]:
    """name -> lower bound (the ``>=`` version), None when unpinned."""
    floors: dict[str, str | None] = {}
    for requirement in requirements:
        match = _REQ.match(requirement.split(";")[0])
        assert match, f"cannot parse requirement {requirement!r}"
        name, spec = match.groups()
        floor = re.search(r">=\s*([^,\s]+)", spec)
        floors[_normalise(name)] = floor.group(1) if floor else None
    return floors


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_environment_yml_and_pyproject_declare_the_same_dependencies():
    project = _pyproject()["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pypi = _floors(requirements)

    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda_specs = [d for d in environment["dependencies"] if isinstance(d, str)]
    conda = {
        _normalise(CONDA_TO_PYPI.get(name, name)): floor
        for name, floor in _floors(conda_specs).items()
        if name not in CONDA_ONLY
    }
    assert sorted(set(pypi) - set(conda)) == [], "in pyproject.toml but not in environment.yml"
    assert sorted(set(conda) - set(pypi)) == [], "in environment.yml but not in pyproject.toml"
    different = {name: (pypi[name], conda[name]) for name in pypi if pypi[name] != conda[name]}
    assert different == {}, "version floors differ (pyproject, environment.yml)"
    pip_section = [d for d in environment["dependencies"] if isinstance(d, dict)]
    assert any("-e ." in entry.get("pip", []) for entry in pip_section), "environment.yml must install the package"


def test_toolqual_entry_point_exists_and_runs():
    assert _pyproject()["project"]["scripts"]["toolqual"] == "toolqual_utils.cli:main"
    entry_points = metadata.entry_points(group="console_scripts")
    (entry,) = [ep for ep in entry_points if ep.name == "toolqual"]
    assert entry.value == "toolqual_utils.cli:main"
    assert callable(entry.load())
    result = subprocess.run(
        [str(Path(sys.executable).with_name("toolqual")), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "report" in result.stdout


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"
    assert all(re.match(r"^\d{2}_[\w\-]+\.ipynb$", p.name) for p in NOTEBOOKS), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_one_literal_parameters_cell_and_no_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters' (want exactly one)"
    assert tagged[0]["cell_type"] == "code"
    source = "".join(tagged[0]["source"])
    for statement in ast.parse(source).body:
        assert isinstance(statement, (ast.Assign, ast.AnnAssign)), f"{path.name}: parameters cell has {ast.dump(statement)[:60]}"
        ast.literal_eval(statement.value)  # literals only: papermill overrides them by name
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {index} has outputs (commit notebooks cleared)"
            assert cell.get("execution_count") is None, f"{path.name}: cell {index} has an execution count"
    assert notebook["metadata"].get("kernelspec", {}).get("name") == "python3"


_EXISTING_PURE = [m for m in PURE_MODULES if (ROOT / "toolqual_utils" / f"{m}.py").is_file()
                  or (ROOT / "toolqual_utils" / m / "__init__.py").is_file()]


def test_pure_module_list_is_not_empty():
    assert {"schema", "io", "profile"} <= set(_EXISTING_PURE)


@pytest.mark.parametrize("module", _EXISTING_PURE)
def test_pure_module_imports_no_heavy_libraries(module):
    code = (
        "import sys, json\n"
        f"import toolqual_utils.{module}\n"
        f"print(json.dumps(sorted(m for m in {list(FORBIDDEN)!r} "
        "if any(k == m or k.startswith(m + '.') for k in sys.modules))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [], f"toolqual_utils.{module} pulls these in"


def test_license_is_an_spdx_string_so_installs_print_no_deprecation_warning():
    """`license = {text = ...}` made setuptools print a deprecation warning (twice) on every install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "Apache-2.0"
    setuptools_req = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools_req == ["setuptools>=77"]  # the first release that reads SPDX license strings
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")


def test_starting_the_cli_imports_no_heavy_library_it_does_not_need():
    """`toolqual <command>` builds its parser before any work: scipy and statsmodels (most of a second
    together) are imported by the code that computes intervals, openai and aiohttp by the first request."""
    code = ("import sys; import toolqual_utils.cli as cli; cli.build_parser(); "
            "print(sorted(m for m in ('scipy', 'statsmodels', 'openai', 'aiohttp', 'plotly', 'seaborn', 'papermill') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


#: what the judge's first request does not wait for: pandas (and what it brings), the checks and the
#: readers, which the planning process imports (see toolqual_utils.judge.planning), and toolqual's pydantic
#: models (the record schema, the answer models), which it needs once answers arrive
NOT_BEFORE_FIRST_REQUEST = ("pandas", "numpy", "pyarrow", "rapidfuzz", "toolqual_utils.checks",
                            "toolqual_utils.heuristics", "toolqual_utils.io", "toolqual_utils.schema",
                            "toolqual_utils.judge.parse", "toolqual_utils.judge.decide")


def test_the_judge_sends_its_first_request_before_loading_pandas_or_the_checks(tmp_path):
    """Everything the sending process imports comes before its first request; pandas alone is most of half a
    second. The test double runs inside the command's process and notes what is loaded when the first request
    arrives; the run then finishes and writes its verdicts."""
    code = (
        "import json, sys\n"
        "from toolqual_utils.judge.scripted import ScriptedJudge\n"
        "from toolqual_utils.testing import OpenAIDouble\n"
        "judge, seen = ScriptedJudge(), []\n"
        "def script(body):\n"
        f"    seen.append(sorted(m for m in {NOT_BEFORE_FIRST_REQUEST!r} if m in sys.modules))\n"
        "    return judge(body)\n"
        "with OpenAIDouble(script) as double:\n"
        "    from toolqual_utils import cli\n"
        f"    status = cli.main(['judge', {str(DATA / 'toolalpaca_eval.jsonl')!r}, '--limit', '6', '--model', 'm',\n"
        f"                       '--base-url', double.base_url, '--cache', {str(tmp_path / 'c.sqlite')!r},\n"
        f"                       '--out', {str(tmp_path / 'v.csv')!r}, '--planner', 'process', '--quiet'])\n"
        "print(json.dumps({'status': status, 'first': seen[0] if seen else None, 'n': len(seen)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 0 and outcome["n"] > 0, (outcome, done.stderr)
    assert outcome["first"] == [], f"loaded before the first request: {outcome['first']}"
    assert (tmp_path / "v.csv").stat().st_size > 0


def test_planning_instances_with_the_checks_loads_no_pandas():
    """The planning process reads, checks and prompts every bundled instance without pandas: the checks, the
    heuristics and the reader import it only in their table functions."""
    code = (
        "import sys\n"
        "from toolqual_utils.commands._inputs import CanonicalInputs\n"
        "from toolqual_utils.judge.engine import _settings, plan_parts\n"
        "from toolqual_utils.schema import CRITERIA\n"
        "settings = _settings(CRITERIA, 'combined', False, max_tokens=None, prompt_id=None, prompt_version=2,\n"
        "                     combine_heuristics=True, response_format='json_schema', samples=1, temperature=None)\n"
        f"files = {[str(p) for p in sorted(DATA.glob('*.jsonl')) if not p.name.endswith('.rejects.jsonl')]!r}\n"
        "parts = list(plan_parts(CanonicalInputs(files), settings, None, None, ('m', 'max_tokens', True)))\n"
        "print(len(parts), sum(len(p.planned) for p in parts), sum(len(p.fixed) for p in parts),\n"
        "      sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    n_parts, n_requests, n_fixed, loaded = done.stdout.strip().splitlines()[-1].split(" ", 3)
    assert int(n_parts) > 1000 and int(n_requests) > 0 and int(n_fixed) > 0  # planned, rules and engine ran
    assert loaded == "[]"


def test_check_written_as_csv_loads_no_pandas(tmp_path):
    """`toolqual check` with CSV tables reads, checks, writes and prints its summary without pandas, numpy or
    pyarrow: importing pandas took about half of a small file's run. (JSON Lines and Parquet go through
    pandas.) The summary table prints as the pandas table printed it."""
    code = (
        "import sys\n"
        "from toolqual_utils import cli\n"
        f"status = cli.main(['check', {str(DATA / 'toolalpaca_eval.jsonl')!r}, '--out', {str(tmp_path / 'v.csv')!r},\n"
        f"                   '--findings', {str(tmp_path / 'f.csv')!r}])\n"
        "print(status, sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"
    import pandas as pd

    from toolqual_utils.io import read_table

    verdicts = read_table(tmp_path / "v.csv")
    assert list(verdicts.columns)[:2] == ["instance_id", "criterion"] and len(verdicts) == 6 * 214
    assert len(read_table(tmp_path / "f.csv")) > 0
    summary = [line for line in done.stdout.splitlines() if line.lstrip().startswith(("criterion", "specificity"))]
    assert len(summary) == 2
    from toolqual_utils.commands.check import CheckSummary

    table = CheckSummary()
    table.counts["minimality"]["n_holds"] = 1_234_567
    assert table.table_text() == table.table().to_string(index=False)
    assert isinstance(table.table(), pd.DataFrame)
