"""The check registry: a check added here (one function + one registration) shows up in `toolqual check
--help`, in the findings, the flags and the verdicts, in-process and through TOOLQUAL_CHECK_MODULES."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from toolqual_utils.checks import (
    CHECKS, RULE_CRITERIA, Hit, check_findings, check_flags, find_issues, register, registered_checks, rule_criteria,
    run_checks, unregister,
)
from toolqual_utils.cli import main
from toolqual_utils.heuristics import offline_verdicts
from toolqual_utils.io import read_table
from toolqual_utils.schema import Instance
from toolqual_utils.verdicts import Status

TOOLS = [{"name": "order_pizza", "description": "Order pizzas.",
          "parameters": {"type": "object", "properties": {"kind": {"type": "string"}, "quantity": {"type": "integer"}},
                         "required": ["kind", "quantity"]}}]


def _instance(iid: str, quantity: int, instruction: str = "Order 0 margherita pizzas for tonight, please.") -> Instance:
    return Instance.model_validate({
        "id": iid, "source": "t", "instruction": instruction, "tools": TOOLS,
        "calls": [{"name": "order_pizza", "arguments": {"kind": "margherita", "quantity": quantity}}]})


@pytest.fixture
def zero_quantity():
    """Register a check for the duration of one test (and take it away again)."""

    @register("zero_quantity", "parameter_alignment", "a quantity of zero is ordered")
    def check(call):
        """An order call passes quantity 0: nobody orders nothing."""
        return [Hit(f"call {call.index} ({call.name}) orders 0 items", argument=a.name, value=a.value)
                for a in call.open_arguments() if a.name == "quantity" and a.value == 0]

    yield "zero_quantity"
    unregister("zero_quantity")


def test_a_registered_check_is_everywhere(zero_quantity, tmp_path, capsys):
    assert CHECKS["zero_quantity"] == ("parameter_alignment", "a quantity of zero is ordered")
    assert [c.name for c in registered_checks()][-1] == "zero_quantity"
    zero, two = _instance("t/z/0", 0), _instance("t/z/2", 2, "Order 2 margherita pizzas for tonight.")
    assert [f.check for f in find_issues([zero])] == ["zero_quantity"]
    findings = check_findings([zero, two])
    assert findings["check"].tolist() == ["zero_quantity"] and findings["argument"].tolist() == ["quantity"]
    flags = check_flags([zero, two]).set_index("instance_id")
    assert flags.loc["t/z/0", "is_zero_quantity_issue"] and not flags.loc["t/z/2", "is_zero_quantity_issue"]
    verdicts = run_checks([zero, two]).set_index(["instance_id", "criterion"])
    row = verdicts.loc[("t/z/0", "parameter_alignment")]
    assert row["label"] == 0 and row["status"] == Status.OK and row["evidence"][0]["check"] == "zero_quantity"
    assert verdicts.loc[("t/z/2", "parameter_alignment"), "status"] == Status.UNSCORED_NEEDS_MODEL
    assert offline_verdicts([zero]).set_index("criterion").loc["parameter_alignment", "label"] == 0

    help_text = _check_help(capsys)
    assert "zero_quantity" in help_text and "nobody orders nothing" in help_text
    data = tmp_path / "d.jsonl"
    data.write_text(zero.model_dump_json() + "\n" + two.model_dump_json() + "\n", encoding="utf-8")
    assert main(["check", str(data), "--out", str(tmp_path / "v.csv"), "--findings", str(tmp_path / "f.csv")]) == 0
    written = read_table(tmp_path / "v.csv").set_index(["instance_id", "criterion"])
    assert written.loc[("t/z/0", "parameter_alignment"), "label"] == 0
    assert json.loads(written.loc[("t/z/0", "parameter_alignment"), "evidence"])[0]["check"] == "zero_quantity"
    assert read_table(tmp_path / "f.csv")["check"].tolist() == ["zero_quantity"]


def _check_help(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    return capsys.readouterr().out


def test_a_check_for_a_new_criterion_adds_its_rule_verdicts():
    @register("glued_requests", "coherence", "two requests joined by 'and also'", scope="instance")
    def glued(scan):
        """The instruction joins two requests with 'and also'."""
        return Hit("'and also' joins two requests") if "and also" in scan.instance.instruction else None

    try:
        assert "coherence" in rule_criteria() and "coherence" not in RULE_CRITERIA  # built-ins unchanged
        inst = _instance("t/c/1", 2, "Order 2 margherita pizzas and also book a taxi.")
        verdicts = run_checks([inst]).set_index("criterion")
        assert list(verdicts.index) == list(rule_criteria())
        assert verdicts.loc["coherence", "label"] == 0 and verdicts.loc["coherence", "judge"] == "rules"
        assert offline_verdicts([inst]).set_index("criterion").loc["coherence", "judge"] == "rules"
    finally:
        unregister("glued_requests")
    assert "coherence" not in rule_criteria()


def test_registration_is_checked():
    with pytest.raises(ValueError, match="unknown criterion"):
        register("x_check", "helpfulness", "d")
    with pytest.raises(ValueError, match="already registered"):
        register("unknown_function", "sufficiency", "d")
    with pytest.raises(ValueError, match="snake_case"):
        register("Bad Name", "sufficiency", "d")
    with pytest.raises(ValueError, match="severity"):
        register("x_check", "sufficiency", "d", severity="fatal")
    with pytest.raises(KeyError, match="no check named"):
        unregister("never_registered")


def test_a_check_that_returns_the_wrong_thing_is_named():
    @register("sloppy_check", "minimality", "returns strings")
    def sloppy(call):
        return ["not a hit"]

    try:
        with pytest.raises(TypeError, match="sloppy_check"):
            find_issues([_instance("t/s/1", 2)])
    finally:
        unregister("sloppy_check")


def test_check_modules_named_in_the_environment_reach_the_command(tmp_path):
    (tmp_path / "my_checks.py").write_text(textwrap.dedent('''
        from toolqual_utils.checks import Hit, register

        @register("pineapple_ordered", "parameter_alignment", "a pizza with pineapple")
        def pineapple_ordered(call):
            """An order for a pizza with pineapple (a house rule of this team)."""
            return [Hit("pineapple!", argument=a.name, value=a.value)
                    for a in call.open_arguments() if a.name == "kind" and "pineapple" in str(a.value)]
    '''), encoding="utf-8")
    data = tmp_path / "d.jsonl"
    inst = _instance("t/p/1", 1, "Order 1 hawaii pineapple pizza.").model_copy()
    inst.calls[0].arguments = {"kind": "hawaii pineapple", "quantity": 1}
    data.write_text(inst.model_dump_json() + "\n", encoding="utf-8")
    env = {**os.environ, "TOOLQUAL_CHECK_MODULES": "my_checks", "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "toolqual_utils.cli", "check"]
    shown = subprocess.run(command + ["--help"], capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0 and "pineapple_ordered" in shown.stdout and "house rule" in shown.stdout
    done = subprocess.run(command + [str(data), "--out", str(tmp_path / "v.csv")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pineapple_ordered" in read_table(tmp_path / "v.csv").set_index("criterion").loc["parameter_alignment",
                                                                                          "evidence"]
    broken = subprocess.run(command + [str(data), "--out", str(tmp_path / "w.csv")], capture_output=True, text=True,
                            env={**env, "TOOLQUAL_CHECK_MODULES": "no_such_module_here"}, timeout=120)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "no_such_module_here" in broken.stderr and not (tmp_path / "w.csv").exists()


def test_the_readme_example_check_works():
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(# my_checks\.py.*?)```", readme, re.S).group(1)
    exec(compile(block, "README.md: my_checks.py", "exec"), {})
    try:
        (finding,) = find_issues([_instance("t/r/0", 0)])
        assert (finding.check, finding.argument, finding.severity) == ("zero_quantity", "quantity", "error")
    finally:
        unregister("zero_quantity")
