"""The CLI contract: errors for people, never tracebacks."""
import subprocess
import sys

import pytest

from toolqual_utils import cli
from toolqual_utils.errors import InputError


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "toolqual_utils.cli", *args], capture_output=True, text=True)


def test_help_lists_the_pipeline_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in cli._available_commands():
        assert name in result.stdout


def test_no_command_prints_help_and_fails():
    result = run_cli()
    assert result.returncode == 2 and "usage: toolqual" in result.stdout


def _fake_module(run):
    class Module:
        HELP = "fake"

        @staticmethod
        def add_arguments(parser):
            parser.add_argument("x", nargs="?")

    Module.run = staticmethod(run)
    return Module


@pytest.mark.parametrize(
    "error, code, expected",
    [
        (InputError("expected an object", file="a.jsonl", record="line 3", field="calls"), 2,
         "file a.jsonl, record line 3, field 'calls': expected an object"),
        (RuntimeError("boom"), 1, "This is a bug in toolqual"),
    ],
)
def test_errors_are_one_paragraph_without_traceback(monkeypatch, capsys, error, code, expected):
    def run(args):
        raise error

    monkeypatch.setattr(cli, "_available_commands", lambda only=None: {"fake": _fake_module(run)})
    assert cli.main(["fake"]) == code
    err = capsys.readouterr().err
    assert expected in " ".join(err.split())
    assert "Traceback" not in err
    assert err.strip().count("\n\n") == 0


def test_debug_env_shows_traceback_of_unexpected_errors(monkeypatch):
    def run(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_available_commands", lambda only=None: {"fake": _fake_module(run)})
    monkeypatch.setenv("TOOLQUAL_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["fake"])


def test_running_one_command_imports_only_that_command():
    code = (
        "import sys\n"
        "from toolqual_utils import cli\n"
        "try:\n"
        "    cli.main(['load', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('toolqual_utils.commands.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['toolqual_utils.commands.load']"
