"""The README's "Quick start on your own data", run verbatim on an OpenAI chat fine-tuning file.

The commands are read from README.md itself, so the README cannot drift from what works. Only three
things are swapped for the test: ``my_data/`` is a temporary folder holding the user's file, the API key
is a dummy, and the endpoint is the local OpenAI-compatible TEST DOUBLE (``TOOLQUAL_BASE_URL``) answering
with scripted judge answers — not a model, and nothing here is presented as a model's judgement.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from toolqual_utils.export import to_openai_record
from toolqual_utils.io import read_instances
from toolqual_utils.judge.scripted import ScriptedJudge
from conftest import ROOT

pytestmark = pytest.mark.slow


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start on your own data", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    block = block.replace("\\\n", " ")  # join continued lines
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [c for c in commands if c]


def test_readme_quickstart_lists_the_whole_pipeline():
    commands = quickstart_commands()
    verbs = [c.split()[1] for c in commands if c.startswith(".venv/bin/toolqual")]
    assert verbs == ["load", "check", "report", "judge", "judge", "select"]
    assert any("--data" in c for c in commands if " report " in c)


@pytest.mark.timeout(900)
def test_readme_quickstart_runs_verbatim_on_an_openai_chat_file(openai_double, tmp_path):
    my_data = tmp_path / "my_data"
    my_data.mkdir()
    instances = [i for i in read_instances(ROOT / "data" / "toolalpaca_eval.jsonl") if i.calls][:15]
    (my_data / "train.jsonl").write_text(
        "".join(json.dumps(to_openai_record(i)) + "\n" for i in instances), encoding="utf-8"
    )
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the commands call .venv/bin/toolqual
    openai_double.script = ScriptedJudge()  # every criterion holds: a scripted answer, not a judgement
    env = {k: v for k, v in os.environ.items() if k != "TOOLQUAL_ROOT"}
    env.update(OPENAI_API_KEY="test-key-not-a-secret", TOOLQUAL_BASE_URL=openai_double.base_url)

    ran = []
    for command in quickstart_commands():
        if command.startswith("make venv") or command.startswith("export OPENAI_API_KEY"):
            continue  # the environment exists; the key is set above
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        ran.append((command, result))

    assert len(ran) == 6
    assert len(read_instances(tmp_path / "work" / "data.jsonl")) == 15
    page = (tmp_path / "work" / "reports" / "00_load_and_profile.html").read_text(encoding="utf-8")
    assert "your data: 15 instances from 1 file" in page and "work/data.jsonl" in page
    assert (tmp_path / "work" / "reports" / "index.html").is_file()
    judge_plan = ran[3][1].stdout
    assert "requests" in judge_plan and openai_double.hits > 0
    clean = [json.loads(line) for line in (tmp_path / "work" / "clean.jsonl").read_text().splitlines()]
    assert clean and all("messages" in record and "tools" in record for record in clean)
