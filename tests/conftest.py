"""Shared paths and fixtures for the whole suite.

Every test reads the repository's own files only (``data/``, ``data/sources/``, ``docs/``): a clone with
nothing beside it must pass. Import the paths with ``from conftest import ROOT, DATA, SOURCES, ...``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from toolqual_utils.testing import OpenAIDouble

#: the repository root (the folder holding pyproject.toml)
ROOT = Path(__file__).resolve().parents[1]
#: bundled canonical data
DATA = ROOT / "data"
#: byte-for-byte copies of the upstream source files the bundled data is built from
SOURCES = DATA / "sources"
#: reference annotations (development splits) and the instances they label
ANNOTATIONS = DATA / "annotations"
#: the 35 instances of the first development split
REFERENCE_INSTANCES = ANNOTATIONS / "reference_dev_instances.jsonl"
#: the project's own documentation
DOCS = ROOT / "docs"


@pytest.fixture
def openai_double(monkeypatch):
    """A started OpenAI-compatible TEST DOUBLE on 127.0.0.1 (see toolqual_utils.testing.openai_double).

    Sets OPENAI_API_KEY to a dummy value and unsets OPENAI_BASE_URL / TOOLQUAL_BASE_URL, so a client
    configured with ``base_url=double.base_url`` talks to the double only.
    """
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-a-secret")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("TOOLQUAL_BASE_URL", raising=False)
    with OpenAIDouble() as double:
        yield double


class CliResult:
    """What a command-line run produced: exit status, standard output and standard error."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (a port just freed): connections are refused."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


def run_cli(args, cwd) -> CliResult:
    """Run ``toolqual ARGS`` in this process (the console script's own ``main``: same parser, same
    one-paragraph errors) from ``cwd``, capturing its output; much faster than a subprocess."""
    import contextlib
    import io
    import os

    from toolqual_utils.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(previous)
    return CliResult(code, out.getvalue(), err.getvalue())


#: notebooks/NN_*.ipynb, the pages ``toolqual report`` writes
REPORT_PAGES = tuple(sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))


class RenderedReports:
    """One ``toolqual report`` run of every notebook on the bundled data (shared by the slow tests)."""

    def __init__(self, out, result, temp_left) -> None:
        self.out, self.result, self.temp_left = out, result, temp_left

    def page(self, name: str) -> str:
        return (self.out / f"{name}.html").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def rendered_reports(tmp_path_factory) -> RenderedReports:
    """Every report rendered once per test session, with the defaults (the bundled data), the way
    `make reports` does, into a temporary folder. Tests that need other parameters render their own."""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    out = tmp_path_factory.mktemp("reports")
    env = {k: v for k, v in os.environ.items() if k not in ("TOOLQUAL_ROOT", "TOOLQUAL_FIGURES_DIR")}
    temp_before = set(Path(tempfile.gettempdir()).glob("toolqual_export_*"))
    result = subprocess.run([str(Path(sys.executable).with_name("toolqual")), "report", "--out", str(out),
                             "--timeout", "240"], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    temp_left = sorted(set(Path(tempfile.gettempdir()).glob("toolqual_export_*")) - temp_before)
    return RenderedReports(out, result, temp_left)
